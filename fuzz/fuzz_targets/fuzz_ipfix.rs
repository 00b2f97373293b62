//! IPFIX: version forced to 10. Parsed as is, and again with the message
//! length patched to the input length so set walks are reached even when a
//! mutation broke the header length.
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
    buf[1] = 10;
    let limits = common::limits_for(*data.last().unwrap());
    common::parse_twice(&buf, limits);
    if buf.len() >= 4 && buf.len() <= u16::MAX as usize {
        let len = (buf.len() as u16).to_be_bytes();
        if buf[2..4] != len {
            buf[2..4].copy_from_slice(&len);
            common::parse_twice(&buf, limits);
        }
    }
});
