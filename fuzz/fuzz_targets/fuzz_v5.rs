//! NetFlow v1/v5/v7: the version field is forced so every input reaches a fixed-record parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mut buf = data.to_vec();
    // Versions 1, 5 and 7 stay as they are (so seeds keep their meaning); anything else maps onto one.
    let version = match data[1] {
        v @ (1 | 5 | 7) if data[0] == 0 => v,
        v => [1u8, 5, 7][v as usize % 3],
    };
    buf[0] = 0;
    buf[1] = version;
    common::parse_twice(&buf, netflow::Limits::default());
});
