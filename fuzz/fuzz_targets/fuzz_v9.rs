//! NetFlow v9: version forced to 9; default and small limits (chosen by the last byte).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mut buf = data.to_vec();
    buf[0] = 0;
    buf[1] = 9;
    let limits = common::limits_for(*data.last().unwrap());
    common::parse_twice(&buf, limits);
});
