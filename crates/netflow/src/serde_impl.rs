//! Serialization of values and records (feature `serde`), in the shape
//! `netflow decode` prints: integers as numbers, addresses as text, MACs as
//! `aa:bb:cc:dd:ee:ff`, octet arrays as lowercase hex, strings as text,
//! zero-length values as `""`, timestamps as the integer on the wire (NTP
//! ones as nanoseconds since the Unix epoch), lists as arrays.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::list::{List, ListKind};
use crate::record::Record;
use crate::value::{ipv4_text, mac_text, push_hex, Value};

/// Which key a field gets in a serialized record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyMode {
    /// Names: `IPV4_SRC_ADDR` (v1/v5/v7/v9), `sourceIPv4Address` (IPFIX).
    #[default]
    Name,
    /// Element ids: `"8"`, `"6871:14"`, `"scope:1"`, `"8#2"`.
    Id,
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Unsigned(v) => s.serialize_u64(*v),
            Value::Signed(v) => s.serialize_i64(*v),
            Value::Float(v) if v.is_finite() => s.serialize_f64(*v),
            Value::Float(v) => s.collect_str(v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::String(v) => s.serialize_str(v),
            Value::DateTimeSeconds(v) | Value::DateTimeMilliseconds(v) => s.serialize_u64(*v),
            Value::DateTimeMicroseconds(t) | Value::DateTimeNanoseconds(t) => {
                s.serialize_i64(t.unix_nanos())
            }
            Value::List(l) => ListSer {
                list: *l,
                keys: KeyMode::Name,
            }
            .serialize(s),
            // The text `Display` writes, made without `core::fmt` (the
            // formatter a digit pair at a time was most of writing a MAC).
            Value::Mac(m) => s.serialize_str(std::str::from_utf8(&mac_text(m)).unwrap_or_default()),
            Value::Ipv4(a) => {
                let (text, len) = ipv4_text(*a);
                s.serialize_str(std::str::from_utf8(&text[..len]).unwrap_or_default())
            }
            Value::Bytes(b) => {
                let mut text = Vec::new();
                push_hex(b, &mut text);
                s.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
            }
            other => s.collect_str(other),
        }
    }
}

/// A record serialized as a map with the chosen keys.
#[derive(Clone, Copy)]
pub struct RecordSer<'r, 'a> {
    pub record: &'r Record<'a>,
    pub keys: KeyMode,
}

impl Serialize for RecordSer<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (field, value) in self.record.fields() {
            let key: &str = match self.keys {
                KeyMode::Name => &field.name,
                KeyMode::Id => &field.id_key,
            };
            match value {
                Value::List(l) => map.serialize_entry(
                    key,
                    &ListSer {
                        list: l,
                        keys: self.keys,
                    },
                )?,
                v => map.serialize_entry(key, &v)?,
            }
        }
        map.end()
    }
}

/// A structured data list as a JSON array: values (basicList) or records.
/// A malformed list is written as its raw bytes in hex.
struct ListSer<'a> {
    list: List<'a>,
    keys: KeyMode,
}

impl Serialize for ListSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.list.validate().is_err() {
            return s.serialize_str("");
        }
        let mut seq = s.serialize_seq(None)?;
        match self.list.kind {
            ListKind::Basic { .. } => {
                for v in self.list.values() {
                    match v {
                        Value::List(l) => seq.serialize_element(&ListSer {
                            list: l,
                            keys: self.keys,
                        })?,
                        v => seq.serialize_element(&v)?,
                    }
                }
            }
            _ => {
                for r in self.list.records().flatten() {
                    seq.serialize_element(&RecordSer {
                        record: &r,
                        keys: self.keys,
                    })?;
                }
            }
        }
        seq.end()
    }
}
