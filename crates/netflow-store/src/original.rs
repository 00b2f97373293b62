//! [`Format::Original`](crate::Format::Original): the Python original's
//! collector line, byte for byte where the original is deterministic.
//!
//! Value rules (the original's, per version):
//! - v1/v5/v7: every value a JSON integer (addresses too: `2886795266`).
//! - v9: field types 8, 12, 15, 18, 27, 28, 62, 63 as address text (1/2/4-byte
//!   values as IPv4 `"0.0.10.0"`, 16-byte ones as compressed IPv6 without a
//!   dotted tail: `"::ffff:102:304"`); every other value is the big-endian
//!   unsigned integer of its bytes (MACs, NAT addresses, signed and float
//!   fields too), except strings, which are JSON strings.
//! - IPFIX: integers (signed ones signed), floats as Python's repr, booleans
//!   as 1/2, MAC/IPv4/IPv6/octetArray as one big-endian unsigned integer,
//!   strings as text with their trailing NULs kept (`\u0000`), invalid UTF-8
//!   strings as the Python bytes repr text (`"b'eth0\\xff'"`), dateTime
//!   micro/nanoseconds as `[seconds, fraction]`, RFC 6313 lists as arrays.
//! - Raw values longer than [`MAX_INT_BYTES`] are written as lowercase hex
//!   text instead of an integer (Python refuses to read or write integers of
//!   more than 4300 digits).
//!
//! Deliberate differences from the original's lines:
//! - v9 options records are written under an extra `"options": [...]` key of
//!   the same line (the original drops them; the analyzer ignores the key,
//!   and would crash on them in `"flows"` as they lack FIRST_SWITCHED).
//!   IPFIX options records stay in `"flows"`, as in the original (the
//!   analyzer skips IPFIX lines).
//! - IPFIX record keys are in template order (the original's order is Python
//!   set order, different per run).
//! - Field names are ours where the original has none or collapses: unknown
//!   v9 types keep their IANA name or id (`"136"` / `flowEndReason`) instead
//!   of one shared `UNKNOWN_FIELD_TYPE`; enterprise IPFIX elements are named
//!   `pen:id` or by our vendor table instead of the IANA element with the same
//!   id; a repeated element is `name#2` instead of overwriting; v9 options
//!   scope fields are `scope:System` etc.
//! - v9 string fields (IF_NAME, ...) are JSON strings, not the integer of
//!   their bytes; a v9 address field of a length other than 1/2/4/16 is an
//!   integer (the original drops it and misreads the rest of the flowset).
//! - Whatever the original cannot decode at all (v7, variable-length and
//!   RFC 6313 list fields, reduced-size encodings of 3/5/6/7 bytes,
//!   PACKET_V9_WITH_ZEROS-style trailing zeros) we write.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netflow::list::{List, ListKind};
use netflow::registry::DataType;
use netflow::{Header, Protocol, Record, TemplateField, Value};

use crate::pyjson::{big_uint_decimal, py_bytes_repr, py_float_repr, py_ipv6, write_str};
use crate::Export;

/// Longest raw value (bytes) written as a JSON integer; longer ones become hex text.
pub const MAX_INT_BYTES: usize = 1024;

/// v9 field types the original writes as address text (`V9_FIELD_TYPES_CONTAINING_IP`).
pub const V9_FIELD_TYPES_CONTAINING_IP: [u16; 8] = [8, 12, 15, 18, 27, 28, 62, 63];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// v1/v5/v7: integers only.
    Fixed,
    V9,
    Ipfix,
}

/// Append the one line of `export`.
pub(crate) fn write_line(out: &mut Vec<u8>, export: &Export<'_>) {
    out.push(b'{');
    write_str(out, &py_float_repr(export.received));
    out.extend_from_slice(b": {\"client\": ");
    write_client(out, export.exporter);
    out.extend_from_slice(b", \"header\": ");
    write_header(out, export.header);
    let style = match export.header.protocol() {
        Protocol::V9 => Style::V9,
        Protocol::Ipfix => Style::Ipfix,
        _ => Style::Fixed,
    };
    out.extend_from_slice(b", \"flows\": [");
    let mut first = true;
    // v9 options records are not flows (the original drops them; the
    // analyzer sorts every flow by FIRST_SWITCHED): they go under "options".
    // IPFIX options records are flows in the original, and stay there.
    let split_options = style == Style::V9;
    for set in export.sets {
        if split_options && set.is_options() {
            continue;
        }
        for record in set.records() {
            sep(out, &mut first);
            write_record(out, &record, style);
        }
    }
    out.push(b']');
    if split_options && export.sets.iter().any(|s| s.is_options()) {
        out.extend_from_slice(b", \"options\": [");
        let mut first = true;
        for set in export.sets.iter().filter(|s| s.is_options()) {
            for record in set.records() {
                sep(out, &mut first);
                write_record(out, &record, style);
            }
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}}\n");
}

fn sep(out: &mut Vec<u8>, first: &mut bool) {
    if !std::mem::take(first) {
        out.extend_from_slice(b", ");
    }
}

/// `[host, port]` (IPv4) or `[host, port, flowinfo, scope_id]` (IPv6), as
/// Python's socket module gives the peer address.
fn write_client(out: &mut Vec<u8>, addr: SocketAddr) {
    out.push(b'[');
    match addr {
        SocketAddr::V4(a) => {
            write_str(out, &a.ip().to_string());
            let _ = write!(out, ", {}]", a.port());
        }
        SocketAddr::V6(a) => {
            write_str(out, &a.ip().to_string());
            let _ = write!(out, ", {}, {}, {}]", a.port(), a.flowinfo(), a.scope_id());
        }
    }
}

/// The original's `header.to_dict()` (v7, which the original does not decode,
/// gets the v5 keys up to `sequence`).
fn write_header(out: &mut Vec<u8>, header: &Header) {
    let pairs: Vec<(&str, u64)> = match header {
        Header::V1(h) => vec![
            ("version", h.version as u64),
            ("count", h.count as u64),
            ("uptime", h.uptime as u64),
            ("timestamp", h.timestamp as u64),
            ("timestamp_nano", h.timestamp_nano as u64),
        ],
        Header::V5(h) => vec![
            ("version", h.version as u64),
            ("count", h.count as u64),
            ("uptime", h.uptime as u64),
            ("timestamp", h.timestamp as u64),
            ("timestamp_nano", h.timestamp_nano as u64),
            ("sequence", h.sequence as u64),
            ("engine_type", h.engine_type as u64),
            ("engine_id", h.engine_id as u64),
            ("sampling_interval", h.sampling_interval as u64),
        ],
        Header::V7(h) => vec![
            ("version", h.version as u64),
            ("count", h.count as u64),
            ("uptime", h.uptime as u64),
            ("timestamp", h.timestamp as u64),
            ("timestamp_nano", h.timestamp_nano as u64),
            ("sequence", h.sequence as u64),
        ],
        Header::V9(h) => vec![
            ("version", h.version as u64),
            ("count", h.count as u64),
            ("uptime", h.uptime as u64),
            ("timestamp", h.timestamp as u64),
            ("sequence", h.sequence as u64),
            ("source_id", h.source_id as u64),
        ],
        Header::Ipfix(h) => vec![
            ("version", h.version as u64),
            ("length", h.length as u64),
            ("export_uptime", h.export_time as u64),
            ("sequence_number", h.sequence as u64),
            ("obervation_domain_id", h.observation_domain as u64),
        ],
    };
    out.push(b'{');
    let mut first = true;
    for (k, v) in pairs {
        sep(out, &mut first);
        write_str(out, k);
        let _ = write!(out, ": {v}");
    }
    out.push(b'}');
}

fn write_record(out: &mut Vec<u8>, record: &Record<'_>, style: Style) {
    out.push(b'{');
    let mut first = true;
    for (field, value) in record.fields() {
        sep(out, &mut first);
        write_str(out, &field.name);
        out.extend_from_slice(b": ");
        match style {
            Style::Fixed => write_raw_int(out, Some(field), &value),
            Style::V9 => write_v9(out, field, &value),
            Style::Ipfix => write_ipfix(out, Some(field), &value),
        }
    }
    out.push(b'}');
}

fn write_u128(out: &mut Vec<u8>, v: u128) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// An integer in decimal (itoa: the same digits as `{v}`, without `core::fmt`,
/// which was ~12 % of a collector decode thread).
#[inline]
fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Raw bytes as the original's integer (hex text past [`MAX_INT_BYTES`]).
fn write_bytes_int(out: &mut Vec<u8>, b: &[u8]) {
    if b.len() <= MAX_INT_BYTES {
        out.extend_from_slice(big_uint_decimal(b).as_bytes());
    } else {
        out.push(b'"');
        for x in b {
            let _ = write!(out, "{x:02x}");
        }
        out.push(b'"');
    }
}

fn write_v9(out: &mut Vec<u8>, field: &TemplateField, value: &Value<'_>) {
    let id = field.spec.field.id;
    if !field.scope
        && field.spec.field.enterprise == 0
        && V9_FIELD_TYPES_CONTAINING_IP.contains(&id)
    {
        let ip: Option<IpAddr> = match *value {
            Value::Ipv4(a) => Some(a.into()),
            Value::Ipv6(a) => Some(a.into()),
            Value::Unsigned(v) if field.spec.length <= 4 => Some(Ipv4Addr::from(v as u32).into()),
            Value::Bytes(b) if matches!(b.len(), 1 | 2 | 4) => {
                Some(Ipv4Addr::from(b.iter().fold(0u32, |acc, &x| (acc << 8) | x as u32)).into())
            }
            Value::Bytes(b) if b.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Some(Ipv6Addr::from(a).into())
            }
            _ => None,
        };
        match ip {
            // Digits and dots only: nothing to escape, no String needed.
            Some(IpAddr::V4(a)) => {
                let _ = write!(out, "\"{a}\"");
                return;
            }
            Some(IpAddr::V6(a)) => {
                write_str(out, &py_ipv6(a));
                return;
            }
            None => {}
        }
    }
    write_raw_int(out, Some(field), value);
}

/// The big-endian unsigned integer of the value's bytes (v1/v5/v7/v9 rule);
/// strings stay strings.
fn write_raw_int(out: &mut Vec<u8>, field: Option<&TemplateField>, value: &Value<'_>) {
    let len = field
        .map(|f| f.spec.length)
        .filter(|l| (1..=8).contains(l))
        .unwrap_or(8) as u32;
    match *value {
        Value::Unsigned(v) | Value::DateTimeSeconds(v) | Value::DateTimeMilliseconds(v) => {
            write_int(out, v);
        }
        Value::Signed(v) => {
            let mask = if len >= 8 {
                u64::MAX
            } else {
                (1u64 << (8 * len)) - 1
            };
            write_int(out, (v as u64) & mask);
        }
        Value::Float(f) => {
            let bits = if len == 4 {
                (f as f32).to_bits() as u64
            } else {
                f.to_bits()
            };
            write_int(out, bits);
        }
        Value::Bool(b) => out.push(if b { b'1' } else { b'2' }),
        Value::Mac(m) => out.extend_from_slice(big_uint_decimal(&m).as_bytes()),
        Value::Ipv4(a) => {
            write_int(out, u32::from(a));
        }
        Value::Ipv6(a) => write_u128(out, u128::from(a)),
        Value::String(s) => write_string(out, field, s),
        Value::Bytes(b) => write_bytes_int(out, b),
        Value::DateTimeMicroseconds(t) | Value::DateTimeNanoseconds(t) => {
            write_int(out, (t.seconds as u64) << 32 | t.fraction as u64);
        }
        Value::List(l) => write_list(out, l),
    }
}

/// A string with the trailing NULs our decoder trimmed put back (the original keeps them).
fn write_string(out: &mut Vec<u8>, field: Option<&TemplateField>, s: &str) {
    let nuls = match field {
        Some(f) if !f.spec.is_variable() => (f.spec.length as usize).saturating_sub(s.len()),
        _ => 0,
    };
    if nuls == 0 {
        write_str(out, s);
    } else {
        let mut t = String::with_capacity(s.len() + nuls);
        t.push_str(s);
        t.extend(std::iter::repeat_n('\0', nuls));
        write_str(out, &t);
    }
}

fn write_ipfix(out: &mut Vec<u8>, field: Option<&TemplateField>, value: &Value<'_>) {
    match *value {
        Value::Signed(v) => {
            write_int(out, v);
        }
        Value::Float(f) => out.extend_from_slice(py_float_repr(f).as_bytes()),
        Value::Bytes(b) if field.is_some_and(|f| f.data_type == DataType::String) => {
            write_str(out, &py_bytes_repr(b))
        }
        Value::DateTimeMicroseconds(t) | Value::DateTimeNanoseconds(t) => {
            let _ = write!(out, "[{}, {}]", t.seconds, t.fraction);
        }
        ref v => write_raw_int(out, field, v),
    }
}

/// An RFC 6313 list (which the original cannot decode): a basicList as an
/// array of values, a subTemplate(Multi)List as an array of records; a
/// malformed list as `""`.
fn write_list(out: &mut Vec<u8>, list: List<'_>) {
    if list.validate().is_err() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    out.push(b'[');
    let mut first = true;
    match list.kind {
        ListKind::Basic { .. } => {
            for v in list.values() {
                sep(out, &mut first);
                write_ipfix(out, None, &v);
            }
        }
        _ => {
            for r in list.records().flatten() {
                sep(out, &mut first);
                write_record(out, &r, Style::Ipfix);
            }
        }
    }
    out.push(b']');
}
