//! How the decode bench (`benches/decode.rs`) and `examples/decode_loop.rs`
//! (mode `columns_bench`, used by `bench/decode_vs_python.py`) fold every
//! decoded value into a checksum: the content of every value is read, MACs
//! and IPv6 addresses included, so no decode work can be optimized away.
//! One file included by both (`#[path]`), so the two measure the same work.

use netflow::Value;

#[inline(always)]
pub fn fold_value(v: Value<'_>) -> u64 {
    match v {
        Value::Unsigned(x) | Value::DateTimeMilliseconds(x) | Value::DateTimeSeconds(x) => x,
        Value::Ipv4(a) => u32::from(a) as u64,
        Value::Ipv6(a) => u128::from(a) as u64,
        Value::Mac(m) => m[5] as u64,
        Value::String(s) => s.len() as u64,
        Value::Bytes(b) => b.len() as u64,
        _ => 1,
    }
}
