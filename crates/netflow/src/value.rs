//! Typed field values per the IANA abstract data types (RFC 7012 section 3.1)
//! and their encodings (RFC 7011 section 6.1), including reduced-size encoding
//! of integers and float64 (RFC 7011 section 6.2).

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::registry::DataType;

/// Seconds between the NTP era 0 epoch (1900-01-01) and the Unix epoch.
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// NTP 64-bit timestamp (RFC 7011 section 6.1.9 / 6.1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtpTimestamp {
    pub seconds: u32,
    pub fraction: u32,
}

impl NtpTimestamp {
    /// Nanoseconds since the Unix epoch (negative before 1970).
    pub fn unix_nanos(self) -> i64 {
        let secs = self.seconds as i64 - NTP_UNIX_OFFSET as i64;
        let frac_ns = ((self.fraction as u64 * 1_000_000_000) >> 32) as i64;
        secs * 1_000_000_000 + frac_ns
    }
}

/// How a field's bytes are turned into a [`Value`]; chosen once per template
/// field from its data type and length, so the record loop never re-decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Big-endian unsigned integer of 1..=8 bytes (reduced-size encoding allowed).
    Unsigned,
    /// Big-endian two's complement integer of 1..=8 bytes.
    Signed,
    Float32,
    /// float64, or float64 reduced to 4 bytes.
    Float64,
    Boolean,
    Mac,
    Ipv4,
    Ipv6,
    String,
    /// Opaque bytes: octetArray, unknown elements, and lengths a type cannot have.
    Bytes,
    DateTimeSeconds,
    DateTimeMilliseconds,
    DateTimeMicroseconds,
    DateTimeNanoseconds,
    BasicList,
    SubTemplateList,
    SubTemplateMultiList,
}

impl ValueKind {
    /// The decode plan for a data type at a given encoded length
    /// (`u16::MAX` = variable length). Lengths the type cannot have fall back
    /// to [`ValueKind::Bytes`] so nothing is lost.
    pub fn for_type(data_type: DataType, length: u16) -> ValueKind {
        use DataType as D;
        let var = length == crate::template::VARIABLE_LENGTH;
        let int_ok = !var && (1..=8).contains(&length);
        match data_type {
            D::Unsigned8 | D::Unsigned16 | D::Unsigned32 | D::Unsigned64 if int_ok => {
                ValueKind::Unsigned
            }
            D::Signed8 | D::Signed16 | D::Signed32 | D::Signed64 if int_ok => ValueKind::Signed,
            D::Float32 if length == 4 => ValueKind::Float32,
            D::Float64 if length == 4 || length == 8 => ValueKind::Float64,
            D::Boolean if length == 1 => ValueKind::Boolean,
            D::MacAddress if length == 6 => ValueKind::Mac,
            D::Ipv4Address if length == 4 => ValueKind::Ipv4,
            D::Ipv6Address if length == 16 => ValueKind::Ipv6,
            D::String => ValueKind::String,
            D::DateTimeSeconds if int_ok => ValueKind::DateTimeSeconds,
            D::DateTimeMilliseconds if int_ok => ValueKind::DateTimeMilliseconds,
            D::DateTimeMicroseconds if length == 8 => ValueKind::DateTimeMicroseconds,
            D::DateTimeNanoseconds if length == 8 => ValueKind::DateTimeNanoseconds,
            D::BasicList => ValueKind::BasicList,
            D::SubTemplateList => ValueKind::SubTemplateList,
            D::SubTemplateMultiList => ValueKind::SubTemplateMultiList,
            _ => ValueKind::Bytes,
        }
    }
}

/// One decode step of a compiled template: the data type and the field
/// length folded into one dispatch, so the record loop takes one branch per
/// field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    U8,
    U16,
    U32,
    U64,
    /// Unsigned of 3, 5, 6 or 7 bytes (reduced-size encoding).
    UInt,
    Signed,
    F32,
    /// float64 on 8 bytes.
    F64,
    /// float64 reduced to 4 bytes.
    F64From32,
    Bool,
    Mac,
    Ipv4,
    Ipv6,
    Str,
    Bytes,
    DtSec,
    DtMilli,
    DtMicro,
    DtNano,
    /// RFC 6313 list: needs the record's template scope.
    List,
    /// Padding: not reported.
    Skip,
}

impl Op {
    pub(crate) fn new(kind: ValueKind, length: u16, skip: bool) -> Op {
        if skip {
            return Op::Skip;
        }
        match (kind, length) {
            (ValueKind::Unsigned, 1) => Op::U8,
            (ValueKind::Unsigned, 2) => Op::U16,
            (ValueKind::Unsigned, 4) => Op::U32,
            (ValueKind::Unsigned, 8) => Op::U64,
            (ValueKind::Unsigned, _) => Op::UInt,
            (ValueKind::Signed, _) => Op::Signed,
            (ValueKind::Float32, _) => Op::F32,
            (ValueKind::Float64, 4) => Op::F64From32,
            (ValueKind::Float64, _) => Op::F64,
            (ValueKind::Boolean, _) => Op::Bool,
            (ValueKind::Mac, _) => Op::Mac,
            (ValueKind::Ipv4, _) => Op::Ipv4,
            (ValueKind::Ipv6, _) => Op::Ipv6,
            (ValueKind::String, _) => Op::Str,
            (ValueKind::Bytes, _) => Op::Bytes,
            (ValueKind::DateTimeSeconds, _) => Op::DtSec,
            (ValueKind::DateTimeMilliseconds, _) => Op::DtMilli,
            (ValueKind::DateTimeMicroseconds, _) => Op::DtMicro,
            (ValueKind::DateTimeNanoseconds, _) => Op::DtNano,
            (
                ValueKind::BasicList | ValueKind::SubTemplateList | ValueKind::SubTemplateMultiList,
                _,
            ) => Op::List,
        }
    }
}

/// A decoded field value borrowing from the packet.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Mac([u8; 6]),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// Valid UTF-8 text with trailing NUL bytes removed.
    String(&'a str),
    /// Raw bytes: octetArray, unknown IEs, invalid UTF-8 strings (lossless), odd lengths.
    Bytes(&'a [u8]),
    /// dateTimeSeconds: seconds since the Unix epoch.
    DateTimeSeconds(u64),
    /// dateTimeMilliseconds: milliseconds since the Unix epoch.
    DateTimeMilliseconds(u64),
    DateTimeMicroseconds(NtpTimestamp),
    DateTimeNanoseconds(NtpTimestamp),
    /// Structured data (RFC 6313), decoded lazily; see [`crate::list`].
    List(crate::list::List<'a>),
}

/// Lowercase hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// A MAC address as [`Value`]'s `Display` writes it: `02:00:5e:b0:bb:fd`.
/// (Without `core::fmt`: the collector writes MACs of records into JSON,
/// and through the formatter two of pmacct's a record took a third of the
/// time of building its columns row, BENCHMARKS.md, session 15.)
pub fn mac_text(m: &[u8; 6]) -> [u8; 17] {
    let mut t = [b':'; 17];
    for (i, b) in m.iter().enumerate() {
        t[3 * i] = HEX[(b >> 4) as usize];
        t[3 * i + 1] = HEX[(b & 15) as usize];
    }
    t
}

/// An IPv4 address in dotted decimal (`192.0.2.10`, as `Ipv4Addr`'s
/// `Display` writes it): the text's bytes, the first `len` of them.
pub fn ipv4_text(a: Ipv4Addr) -> ([u8; 15], usize) {
    let mut t = [0u8; 15];
    let mut len = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            t[len] = b'.';
            len += 1;
        }
        if o >= 100 {
            t[len] = b'0' + o / 100;
            len += 1;
        }
        if o >= 10 {
            t[len] = b'0' + o / 10 % 10;
            len += 1;
        }
        t[len] = b'0' + o % 10;
        len += 1;
    }
    (t, len)
}

/// Append `bytes` as [`Value::Bytes`]' `Display` writes them: two
/// lowercase hex digits a byte.
pub fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
    }
}

#[inline(always)]
pub(crate) fn be_uint(b: &[u8]) -> u64 {
    // Lengths are 1..=8 by construction of ValueKind.
    match b.len() {
        1 => b[0] as u64,
        2 => u16::from_be_bytes([b[0], b[1]]) as u64,
        4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64,
        8 => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        _ => b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64),
    }
}

#[inline(always)]
fn be_int(b: &[u8]) -> i64 {
    let u = be_uint(b);
    let shift = 64 - 8 * b.len() as u32;
    ((u << shift) as i64) >> shift
}

impl<'a> Value<'a> {
    /// Decode `bytes` (exactly the field's bytes) with a precomputed plan.
    /// List kinds are not handled here (they need template context); they
    /// come back as [`Value::Bytes`].
    #[inline]
    pub fn decode(kind: ValueKind, bytes: &'a [u8]) -> Value<'a> {
        match kind {
            ValueKind::Unsigned if !bytes.is_empty() && bytes.len() <= 8 => {
                Value::Unsigned(be_uint(bytes))
            }
            ValueKind::Signed if !bytes.is_empty() && bytes.len() <= 8 => {
                Value::Signed(be_int(bytes))
            }
            ValueKind::Float32 if bytes.len() == 4 => {
                Value::Float(f32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as f64)
            }
            ValueKind::Float64 if bytes.len() == 8 => Value::Float(f64::from_be_bytes([
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            ])),
            ValueKind::Float64 if bytes.len() == 4 => {
                Value::Float(f32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as f64)
            }
            // RFC 7011 section 6.1.5: true = 1, false = 2; anything else is kept raw.
            ValueKind::Boolean if bytes.len() == 1 && bytes[0] == 1 => Value::Bool(true),
            ValueKind::Boolean if bytes.len() == 1 && bytes[0] == 2 => Value::Bool(false),
            ValueKind::Mac if bytes.len() == 6 => {
                Value::Mac([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]])
            }
            ValueKind::Ipv4 if bytes.len() == 4 => {
                Value::Ipv4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
            }
            ValueKind::Ipv6 if bytes.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(bytes);
                Value::Ipv6(Ipv6Addr::from(a))
            }
            ValueKind::String => {
                let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                match core::str::from_utf8(&bytes[..end]) {
                    Ok(s) => Value::String(s),
                    Err(_) => Value::Bytes(bytes),
                }
            }
            ValueKind::DateTimeSeconds if !bytes.is_empty() && bytes.len() <= 8 => {
                Value::DateTimeSeconds(be_uint(bytes))
            }
            ValueKind::DateTimeMilliseconds if !bytes.is_empty() && bytes.len() <= 8 => {
                Value::DateTimeMilliseconds(be_uint(bytes))
            }
            ValueKind::DateTimeMicroseconds | ValueKind::DateTimeNanoseconds
                if bytes.len() == 8 =>
            {
                let ts = NtpTimestamp {
                    seconds: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
                    fraction: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
                };
                if kind == ValueKind::DateTimeMicroseconds {
                    Value::DateTimeMicroseconds(ts)
                } else {
                    Value::DateTimeNanoseconds(ts)
                }
            }
            _ => Value::Bytes(bytes),
        }
    }

    /// Decode with a compiled step. `bytes` has the field's template length
    /// (checked per field: a mismatch falls back to raw bytes, never panics).
    /// `Op::List` and `Op::Skip` are handled by the caller.
    #[inline(always)]
    pub(crate) fn from_op(op: Op, bytes: &'a [u8]) -> Value<'a> {
        match op {
            Op::U8 => match bytes {
                [a] => Value::Unsigned(*a as u64),
                _ => Value::Bytes(bytes),
            },
            Op::U16 => match <[u8; 2]>::try_from(bytes) {
                Ok(a) => Value::Unsigned(u16::from_be_bytes(a) as u64),
                Err(_) => Value::Bytes(bytes),
            },
            Op::U32 => match <[u8; 4]>::try_from(bytes) {
                Ok(a) => Value::Unsigned(u32::from_be_bytes(a) as u64),
                Err(_) => Value::Bytes(bytes),
            },
            Op::U64 => match <[u8; 8]>::try_from(bytes) {
                Ok(a) => Value::Unsigned(u64::from_be_bytes(a)),
                Err(_) => Value::Bytes(bytes),
            },
            Op::Ipv4 => match <[u8; 4]>::try_from(bytes) {
                Ok(a) => Value::Ipv4(Ipv4Addr::from(a)),
                Err(_) => Value::Bytes(bytes),
            },
            Op::Ipv6 => match <[u8; 16]>::try_from(bytes) {
                Ok(a) => Value::Ipv6(Ipv6Addr::from(a)),
                Err(_) => Value::Bytes(bytes),
            },
            Op::Mac => match <[u8; 6]>::try_from(bytes) {
                Ok(a) => Value::Mac(a),
                Err(_) => Value::Bytes(bytes),
            },
            Op::DtMilli => match <[u8; 8]>::try_from(bytes) {
                Ok(a) => Value::DateTimeMilliseconds(u64::from_be_bytes(a)),
                Err(_) => Value::decode(ValueKind::DateTimeMilliseconds, bytes),
            },
            Op::DtSec => match <[u8; 4]>::try_from(bytes) {
                Ok(a) => Value::DateTimeSeconds(u32::from_be_bytes(a) as u64),
                Err(_) => Value::decode(ValueKind::DateTimeSeconds, bytes),
            },
            Op::UInt => Value::decode(ValueKind::Unsigned, bytes),
            Op::Signed => Value::decode(ValueKind::Signed, bytes),
            Op::F32 => Value::decode(ValueKind::Float32, bytes),
            Op::F64 | Op::F64From32 => Value::decode(ValueKind::Float64, bytes),
            Op::Bool => Value::decode(ValueKind::Boolean, bytes),
            Op::Str => Value::decode(ValueKind::String, bytes),
            Op::DtMicro => Value::decode(ValueKind::DateTimeMicroseconds, bytes),
            Op::DtNano => Value::decode(ValueKind::DateTimeNanoseconds, bytes),
            Op::Bytes | Op::List | Op::Skip => Value::Bytes(bytes),
        }
    }

    /// The value as an unsigned integer, when it is one (counters, ports, ids, timestamps).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Unsigned(v) | Value::DateTimeSeconds(v) | Value::DateTimeMilliseconds(v) => {
                Some(v)
            }
            Value::Signed(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }

    /// The value as an IP address, when it is one.
    pub fn as_ip(&self) -> Option<std::net::IpAddr> {
        match *self {
            Value::Ipv4(a) => Some(a.into()),
            Value::Ipv6(a) => Some(a.into()),
            _ => None,
        }
    }
}

/// Writes values the way `netflow decode` prints them (addresses as text,
/// MACs colon-separated, bytes as lowercase hex).
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unsigned(v) => write!(f, "{v}"),
            Value::Signed(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Mac(m) => f.write_str(std::str::from_utf8(&mac_text(m)).unwrap_or_default()),
            Value::Ipv4(a) => write!(f, "{a}"),
            Value::Ipv6(a) => write!(f, "{a}"),
            Value::String(s) => f.write_str(s),
            Value::Bytes(b) => {
                for x in b.iter() {
                    write!(f, "{x:02x}")?;
                }
                Ok(())
            }
            Value::DateTimeSeconds(v) | Value::DateTimeMilliseconds(v) => write!(f, "{v}"),
            Value::DateTimeMicroseconds(t) | Value::DateTimeNanoseconds(t) => {
                write!(f, "{}", t.unix_nanos())
            }
            Value::List(l) => write!(f, "{l:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text helpers against `core::fmt`: every byte value in every
    /// position of a MAC, IPv4 addresses with octets of one, two and three
    /// digits, byte strings of every length up to 40.
    #[test]
    fn text_without_fmt_is_fmts() {
        // Test values: a multiplicative (Weyl) sequence, its high bits.
        let mut k = 0u64;
        let mut next = move || {
            k += 1;
            k.wrapping_mul(0x2545_f491_4f6c_dd1d).rotate_left(31)
        };
        for b in 0..=255u8 {
            let m = [b, b.wrapping_add(1), 0, 255, b ^ 0x5a, (next() as u8)];
            let want = format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            );
            assert_eq!(&mac_text(&m)[..], want.as_bytes());
            assert_eq!(Value::Mac(m).to_string(), want);
        }
        let mut addrs = vec![Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(255, 255, 255, 255)];
        addrs.extend([9u8, 10, 99, 100, 199, 200, 255].map(|o| Ipv4Addr::new(o, 0, o, 1)));
        addrs.extend((0..1000).map(|_| Ipv4Addr::from(next() as u32)));
        for a in addrs {
            let (text, len) = ipv4_text(a);
            assert_eq!(&text[..len], a.to_string().as_bytes());
        }
        for len in 0..40 {
            let b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut hex = vec![b'x'];
            push_hex(&b, &mut hex);
            let want: String = b.iter().map(|x| format!("{x:02x}")).collect();
            assert_eq!(&hex[1..], want.as_bytes());
            assert_eq!(Value::Bytes(&b).to_string(), want);
        }
    }

    #[test]
    fn reduced_size_unsigned_and_signed() {
        // RFC 7011 section 6.2: a 64-bit counter sent in 3 bytes.
        assert_eq!(
            Value::decode(ValueKind::Unsigned, &[0x01, 0x02, 0x03]),
            Value::Unsigned(0x010203)
        );
        assert_eq!(
            Value::decode(ValueKind::Signed, &[0xff, 0xfe]),
            Value::Signed(-2)
        );
        assert_eq!(
            Value::decode(ValueKind::Signed, &[0x7f, 0xff, 0xff]),
            Value::Signed(0x7fffff)
        );
        assert_eq!(
            Value::decode(ValueKind::Unsigned, &[0xff; 8]),
            Value::Unsigned(u64::MAX)
        );
    }

    #[test]
    fn float64_reduced_to_float32() {
        let b = 1.5f32.to_be_bytes();
        assert_eq!(Value::decode(ValueKind::Float64, &b), Value::Float(1.5));
        let b = (-0.25f64).to_be_bytes();
        assert_eq!(Value::decode(ValueKind::Float64, &b), Value::Float(-0.25));
    }

    #[test]
    fn boolean_per_rfc7011() {
        assert_eq!(Value::decode(ValueKind::Boolean, &[1]), Value::Bool(true));
        assert_eq!(Value::decode(ValueKind::Boolean, &[2]), Value::Bool(false));
        assert_eq!(Value::decode(ValueKind::Boolean, &[0]), Value::Bytes(&[0]));
    }

    #[test]
    fn strings_trim_nul_and_keep_invalid_utf8() {
        assert_eq!(
            Value::decode(ValueKind::String, b"eth0\0\0\0"),
            Value::String("eth0")
        );
        assert_eq!(
            Value::decode(ValueKind::String, b"\xff\x00"),
            Value::Bytes(b"\xff\x00")
        );
        assert_eq!(Value::decode(ValueKind::String, b""), Value::String(""));
    }

    #[test]
    fn ntp_timestamps_to_unix_nanos() {
        // 2023-11-14T22:13:20Z = 1700000000 Unix = 3908988800 NTP; fraction 0x80000000 = 0.5 s.
        let t = NtpTimestamp {
            seconds: 3_908_988_800,
            fraction: 0x8000_0000,
        };
        assert_eq!(t.unix_nanos(), 1_700_000_000_500_000_000);
        let b = [0xe8, 0xff, 0xa0, 0x80, 0x80, 0, 0, 0];
        assert_eq!(
            Value::decode(ValueKind::DateTimeNanoseconds, &b),
            Value::DateTimeNanoseconds(NtpTimestamp {
                seconds: 0xe8ffa080,
                fraction: 0x8000_0000
            })
        );
    }

    #[test]
    fn plan_falls_back_to_bytes_for_impossible_lengths() {
        assert_eq!(
            ValueKind::for_type(DataType::Ipv4Address, 16),
            ValueKind::Bytes
        );
        assert_eq!(
            ValueKind::for_type(DataType::Unsigned64, 16),
            ValueKind::Bytes
        );
        assert_eq!(
            ValueKind::for_type(DataType::Unsigned64, 3),
            ValueKind::Unsigned
        );
        assert_eq!(ValueKind::for_type(DataType::MacAddress, 6), ValueKind::Mac);
        assert_eq!(
            ValueKind::for_type(DataType::String, u16::MAX),
            ValueKind::String
        );
    }
}
