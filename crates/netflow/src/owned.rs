//! Owned records: a decoded record detached from the packet buffer, to send
//! across threads or keep after the datagram is gone. Serializes (feature
//! `serde`) in the same shape as the borrowed [`crate::serde_impl::RecordSer`].

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::list::ListKind;
use crate::record::Record;
use crate::value::{NtpTimestamp, Value};

/// An owned field value.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Mac([u8; 6]),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    String(String),
    Bytes(Vec<u8>),
    DateTimeSeconds(u64),
    DateTimeMilliseconds(u64),
    DateTimeMicroseconds(NtpTimestamp),
    DateTimeNanoseconds(NtpTimestamp),
    /// basicList values.
    List(Vec<OwnedValue>),
    /// subTemplateList / subTemplateMultiList records.
    Records(Vec<OwnedRecord>),
}

/// An owned record: output keys (names and ids) with values, in template order.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRecord {
    pub template_id: u16,
    pub options: bool,
    /// (name key, id key, value).
    pub fields: Vec<OwnedField>,
}

/// One field of an [`OwnedRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedField {
    pub name: String,
    pub id_key: String,
    pub scope: bool,
    pub value: OwnedValue,
}

impl OwnedValue {
    pub fn from_value(v: &Value<'_>) -> OwnedValue {
        match v {
            Value::Unsigned(x) => OwnedValue::Unsigned(*x),
            Value::Signed(x) => OwnedValue::Signed(*x),
            Value::Float(x) => OwnedValue::Float(*x),
            Value::Bool(x) => OwnedValue::Bool(*x),
            Value::Mac(x) => OwnedValue::Mac(*x),
            Value::Ipv4(x) => OwnedValue::Ipv4(*x),
            Value::Ipv6(x) => OwnedValue::Ipv6(*x),
            Value::String(x) => OwnedValue::String((*x).to_owned()),
            Value::Bytes(x) => OwnedValue::Bytes(x.to_vec()),
            Value::DateTimeSeconds(x) => OwnedValue::DateTimeSeconds(*x),
            Value::DateTimeMilliseconds(x) => OwnedValue::DateTimeMilliseconds(*x),
            Value::DateTimeMicroseconds(x) => OwnedValue::DateTimeMicroseconds(*x),
            Value::DateTimeNanoseconds(x) => OwnedValue::DateTimeNanoseconds(*x),
            Value::List(l) => {
                if l.validate().is_err() {
                    return OwnedValue::Bytes(Vec::new());
                }
                match l.kind {
                    ListKind::Basic { .. } => {
                        OwnedValue::List(l.values().map(|v| OwnedValue::from_value(&v)).collect())
                    }
                    _ => OwnedValue::Records(
                        l.records().flatten().map(|r| r.to_owned_record()).collect(),
                    ),
                }
            }
        }
    }
}

impl Record<'_> {
    /// Copy the record out of the packet buffer.
    pub fn to_owned_record(&self) -> OwnedRecord {
        OwnedRecord {
            template_id: self.template.id,
            options: self.template.kind == crate::TemplateKind::Options,
            fields: self
                .fields()
                .map(|(f, v)| OwnedField {
                    name: f.name.to_string(),
                    id_key: f.id_key.to_string(),
                    scope: f.scope,
                    value: OwnedValue::from_value(&v),
                })
                .collect(),
        }
    }
}

impl OwnedRecord {
    /// The value of the first field with this name key.
    pub fn get(&self, name: &str) -> Option<&OwnedValue> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.value)
    }
}

#[cfg(feature = "serde")]
mod ser {
    use super::*;
    use crate::serde_impl::KeyMode;
    use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

    impl Serialize for OwnedValue {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                OwnedValue::String(x) => s.serialize_str(x),
                OwnedValue::Bytes(b) => Value::Bytes(b).serialize(s),
                OwnedValue::List(vs) => {
                    let mut seq = s.serialize_seq(Some(vs.len()))?;
                    for v in vs {
                        seq.serialize_element(v)?;
                    }
                    seq.end()
                }
                OwnedValue::Records(rs) => {
                    let mut seq = s.serialize_seq(Some(rs.len()))?;
                    for r in rs {
                        seq.serialize_element(&OwnedRecordSer {
                            record: r,
                            keys: KeyMode::Name,
                        })?;
                    }
                    seq.end()
                }
                OwnedValue::Unsigned(x) => s.serialize_u64(*x),
                OwnedValue::Signed(x) => s.serialize_i64(*x),
                OwnedValue::Float(x) => Value::Float(*x).serialize(s),
                OwnedValue::Bool(x) => s.serialize_bool(*x),
                OwnedValue::Mac(x) => Value::Mac(*x).serialize(s),
                OwnedValue::Ipv4(x) => s.collect_str(x),
                OwnedValue::Ipv6(x) => s.collect_str(x),
                OwnedValue::DateTimeSeconds(x) | OwnedValue::DateTimeMilliseconds(x) => {
                    s.serialize_u64(*x)
                }
                OwnedValue::DateTimeMicroseconds(t) | OwnedValue::DateTimeNanoseconds(t) => {
                    s.serialize_i64(t.unix_nanos())
                }
            }
        }
    }

    /// An owned record serialized as a map with the chosen keys.
    pub struct OwnedRecordSer<'r> {
        pub record: &'r OwnedRecord,
        pub keys: KeyMode,
    }

    impl Serialize for OwnedRecordSer<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.record.fields.len()))?;
            for f in &self.record.fields {
                let k = match self.keys {
                    KeyMode::Name => &f.name,
                    KeyMode::Id => &f.id_key,
                };
                map.serialize_entry(k, &f.value)?;
            }
            map.end()
        }
    }

    /// Serializes with name keys.
    impl Serialize for OwnedRecord {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            OwnedRecordSer {
                record: self,
                keys: KeyMode::Name,
            }
            .serialize(s)
        }
    }
}

#[cfg(feature = "serde")]
pub use ser::OwnedRecordSer;

#[cfg(test)]
mod tests {
    use crate::{parse_packet, TemplateCache};

    #[test]
    fn owned_record_serializes_like_the_borrowed_one() {
        // One v5 record: 10.0.0.1 -> 10.0.0.2, 3 packets.
        let mut b = vec![0u8; 24 + 48];
        b[1] = 5;
        b[3] = 1;
        b[24..28].copy_from_slice(&[10, 0, 0, 1]);
        b[28..32].copy_from_slice(&[10, 0, 0, 2]);
        b[24 + 19] = 3;
        let p = parse_packet(&b, &mut TemplateCache::new()).unwrap();
        let r = p.records().next().unwrap();
        let owned = r.to_owned_record();
        assert_eq!(
            owned.get("IN_PACKETS"),
            Some(&super::OwnedValue::Unsigned(3))
        );
        #[cfg(feature = "serde")]
        {
            let a = serde_json::to_string(&crate::serde_impl::RecordSer {
                record: &r,
                keys: Default::default(),
            })
            .unwrap();
            let o = serde_json::to_string(&owned).unwrap();
            assert_eq!(a, o);
            assert!(
                a.starts_with(r#"{"IPV4_SRC_ADDR":"10.0.0.1","IPV4_DST_ADDR":"10.0.0.2""#),
                "{a}"
            );
        }
    }
}
