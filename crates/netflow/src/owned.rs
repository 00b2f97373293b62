//! Owned records: a decoded record detached from the packet buffer, to send
//! across threads or keep after the datagram is gone. Serializes (feature
//! `serde`) in the same shape as the borrowed [`crate::serde_impl::RecordSer`].
//!
//! An owned record keeps everything the encoder ([`crate::encode`]) needs to
//! write the record back byte for byte: structured data lists keep their
//! header (semantic, basicList element, sub-template ids, subTemplateMultiList
//! blocks) and variable-length fields remember when the exporter used the
//! 3-byte length form for a value shorter than 255 bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::cache::TemplateScope;
use crate::list::{List, ListKind};
use crate::record::{read_varlen, record_len, Record};
use crate::registry::{self, DataType};
use crate::template::{FieldSpec, Template, VARIABLE_LENGTH};
use crate::value::{NtpTimestamp, Op, Value, ValueKind};

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
    /// Structured data (RFC 6313): basicList values, subTemplateList /
    /// subTemplateMultiList records, with the list header. Serializes as an
    /// array.
    List(Box<OwnedList>),
}

/// A structured data list (RFC 6313 section 4.5) with its header.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedList {
    /// List semantic (RFC 6313 section 4.4): 0 noneOf, 1 exactlyOneOf,
    /// 2 oneOrMoreOf, 3 allOf, 4 ordered, 0xFF undefined
    /// ([`crate::list::semantic_name`]).
    pub semantic: u8,
    pub content: OwnedListContent,
}

/// What an [`OwnedList`] holds.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedListContent {
    /// basicList (RFC 6313 section 4.5.1): values of one Information Element.
    Basic {
        /// The element's field specifier (its length may be variable).
        element: FieldSpec,
        values: Vec<OwnedValue>,
        /// Variable-length elements use the 3-byte length form even when
        /// shorter than 255 bytes (RFC 7011 section 7 allows it). Decoding
        /// sets it when any element shorter than 255 bytes used that form;
        /// encoding then uses it for every element.
        long_lengths: bool,
    },
    /// subTemplateList (RFC 6313 section 4.5.2): records of one template.
    SubTemplate {
        template_id: u16,
        records: Vec<OwnedRecord>,
    },
    /// subTemplateMultiList (RFC 6313 section 4.5.3): blocks of records, each
    /// block with its own template.
    SubTemplateMulti { blocks: Vec<OwnedBlock> },
    /// A list whose header decoded but whose content does not (an unknown
    /// template, an element running past the end): the field's bytes, header
    /// included, kept as they were. Serializes as `""` like the borrowed value.
    Malformed(Vec<u8>),
}

/// One block of a subTemplateMultiList.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedBlock {
    pub template_id: u16,
    pub records: Vec<OwnedRecord>,
}

/// List semantic "undefined" (RFC 6313 section 4.4).
pub const SEMANTIC_UNDEFINED: u8 = 0xFF;

impl OwnedList {
    /// A basicList of `element` values.
    pub fn basic(semantic: u8, element: FieldSpec, values: Vec<OwnedValue>) -> OwnedList {
        OwnedList {
            semantic,
            content: OwnedListContent::Basic {
                element,
                values,
                long_lengths: false,
            },
        }
    }

    /// A subTemplateList of records of template `template_id`.
    pub fn sub_template(semantic: u8, template_id: u16, records: Vec<OwnedRecord>) -> OwnedList {
        OwnedList {
            semantic,
            content: OwnedListContent::SubTemplate {
                template_id,
                records,
            },
        }
    }

    /// A subTemplateMultiList.
    pub fn sub_template_multi(semantic: u8, blocks: Vec<OwnedBlock>) -> OwnedList {
        OwnedList {
            semantic,
            content: OwnedListContent::SubTemplateMulti { blocks },
        }
    }

    /// The values of a basicList (empty for the other kinds).
    pub fn values(&self) -> &[OwnedValue] {
        match &self.content {
            OwnedListContent::Basic { values, .. } => values,
            _ => &[],
        }
    }

    /// The records of a subTemplateList or of all blocks of a
    /// subTemplateMultiList, in order (none for a basicList).
    pub fn records(&self) -> impl Iterator<Item = &OwnedRecord> + '_ {
        let (single, blocks): (&[OwnedRecord], &[OwnedBlock]) = match &self.content {
            OwnedListContent::SubTemplate { records, .. } => (records, &[]),
            OwnedListContent::SubTemplateMulti { blocks } => (&[], blocks),
            _ => (&[], &[]),
        };
        single
            .iter()
            .chain(blocks.iter().flat_map(|b| b.records.iter()))
    }
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
    /// A variable-length field whose value, shorter than 255 bytes, was sent
    /// with the 3-byte length form (RFC 7011 section 7 allows it; libfixbuf
    /// does so for lists). The encoder reproduces the form; `false` means the
    /// shortest form.
    pub long_length: bool,
}

impl OwnedField {
    /// A field with the shortest length form.
    pub fn new(
        name: impl Into<String>,
        id_key: impl Into<String>,
        scope: bool,
        value: OwnedValue,
    ) -> OwnedField {
        OwnedField {
            name: name.into(),
            id_key: id_key.into(),
            scope,
            value,
            long_length: false,
        }
    }
}

/// How the values of a basicList with this element are decoded (the element is
/// named like an IPFIX field whatever the protocol, as [`List::values`] does).
pub(crate) fn basic_element_kind(element: FieldSpec) -> ValueKind {
    let data_type = registry::lookup(element.field.enterprise, element.field.id)
        .map_or(DataType::OctetArray, |ie| ie.data_type);
    ValueKind::for_type(data_type, element.length)
}

fn is_list_kind(kind: ValueKind) -> bool {
    matches!(
        kind,
        ValueKind::BasicList | ValueKind::SubTemplateList | ValueKind::SubTemplateMultiList
    )
}

impl OwnedValue {
    /// Copy a borrowed value. Lists come out with their header and records,
    /// but a borrowed list does not show its blocks, its elements' length
    /// forms or the bytes of a malformed list: adjacent subTemplateMultiList
    /// blocks of one template merge, and a malformed list keeps no bytes. Use
    /// [`Record::to_owned_record`] for an exact copy.
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
                let content = if l.validate().is_err() {
                    OwnedListContent::Malformed(Vec::new())
                } else {
                    match l.kind {
                        ListKind::Basic { element } => OwnedListContent::Basic {
                            element,
                            values: l.values().map(|v| OwnedValue::from_value(&v)).collect(),
                            long_lengths: false,
                        },
                        ListKind::SubTemplate { template_id } => OwnedListContent::SubTemplate {
                            template_id,
                            records: l.records().flatten().map(|r| r.to_owned_record()).collect(),
                        },
                        ListKind::SubTemplateMulti => {
                            let mut blocks: Vec<OwnedBlock> = Vec::new();
                            for r in l.records().flatten() {
                                let id = r.template().id;
                                match blocks.last_mut() {
                                    Some(b) if b.template_id == id => {
                                        b.records.push(r.to_owned_record())
                                    }
                                    _ => blocks.push(OwnedBlock {
                                        template_id: id,
                                        records: vec![r.to_owned_record()],
                                    }),
                                }
                            }
                            OwnedListContent::SubTemplateMulti { blocks }
                        }
                    }
                };
                OwnedValue::List(Box::new(OwnedList {
                    semantic: l.semantic,
                    content,
                }))
            }
        }
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&OwnedList> {
        match self {
            OwnedValue::List(l) => Some(l),
            _ => None,
        }
    }
}

/// An owned copy of a structured data field: `bytes` are the field's bytes,
/// decoded as [`Record::fields`] decodes them (raw bytes when the header is
/// malformed or the nesting limit is reached), plus what the borrowed view
/// does not show: blocks, length forms, the bytes of a malformed list.
fn owned_list(
    kind: ValueKind,
    bytes: &[u8],
    scope: &TemplateScope,
    parent_depth: u8,
) -> OwnedValue {
    let Some(list) = List::parse(kind, bytes, scope, parent_depth) else {
        return OwnedValue::Bytes(bytes.to_vec());
    };
    let semantic = list.semantic;
    let malformed = || {
        OwnedValue::List(Box::new(OwnedList {
            semantic,
            content: OwnedListContent::Malformed(bytes.to_vec()),
        }))
    };
    if list.validate().is_err() {
        return malformed();
    }
    // List::parse checked this fits.
    let depth = parent_depth + 1;
    let content = match list.kind {
        ListKind::Basic { element } => {
            let header = if bytes[1] & 0x80 != 0 { 9 } else { 5 };
            let body = &bytes[header..];
            let ekind = basic_element_kind(element);
            let mut values = Vec::new();
            let mut long_lengths = false;
            let mut pos = 0;
            while pos < body.len() {
                let (start, len) = if element.length == VARIABLE_LENGTH {
                    let Some((start, len)) = read_varlen(body, pos) else {
                        return malformed();
                    };
                    long_lengths |= start - pos == 3 && len < 255;
                    (start, len)
                } else {
                    (pos, element.length as usize)
                };
                let Some(raw) = body.get(start..start + len) else {
                    return malformed();
                };
                if len == 0 && element.length != VARIABLE_LENGTH {
                    return malformed();
                }
                pos = start + len;
                values.push(if is_list_kind(ekind) {
                    owned_list(ekind, raw, scope, depth)
                } else {
                    OwnedValue::from_value(&Value::decode(ekind, raw))
                });
            }
            OwnedListContent::Basic {
                element,
                values,
                long_lengths,
            }
        }
        ListKind::SubTemplate { template_id } => {
            let Some(records) = owned_records(template_id, &bytes[3..], scope, depth) else {
                return malformed();
            };
            OwnedListContent::SubTemplate {
                template_id,
                records,
            }
        }
        ListKind::SubTemplateMulti => {
            let body = &bytes[1..];
            let mut blocks = Vec::new();
            let mut pos = 0;
            while pos < body.len() {
                let Some(h) = body.get(pos..pos + 4) else {
                    return malformed();
                };
                let template_id = u16::from_be_bytes([h[0], h[1]]);
                let len = u16::from_be_bytes([h[2], h[3]]) as usize;
                let Some(block) = body.get(pos + 4..pos + len.max(4)) else {
                    return malformed();
                };
                let Some(records) = owned_records(template_id, block, scope, depth) else {
                    return malformed();
                };
                blocks.push(OwnedBlock {
                    template_id,
                    records,
                });
                pos += len.max(4);
            }
            OwnedListContent::SubTemplateMulti { blocks }
        }
    };
    OwnedValue::List(Box::new(OwnedList { semantic, content }))
}

/// The records of template `template_id` filling `data` exactly, or None if
/// the last one does not fit (or there are records of an unknown template).
fn owned_records(
    template_id: u16,
    mut data: &[u8],
    scope: &TemplateScope,
    depth: u8,
) -> Option<Vec<OwnedRecord>> {
    let mut records = Vec::new();
    if data.is_empty() {
        return Some(records);
    }
    let template: &Template = scope.get(template_id)?;
    while !data.is_empty() {
        let len = record_len(template, data)?;
        if len == 0 {
            return None;
        }
        let (this, rest) = data.split_at(len);
        records.push(
            Record {
                template,
                scope,
                data: this,
                depth,
            }
            .to_owned_record(),
        );
        data = rest;
    }
    Some(records)
}

impl Record<'_> {
    /// Copy the record out of the packet buffer, exactly: with
    /// [`crate::encode`] it gives back the record's bytes (padding fields,
    /// which are not reported, come back as zeros).
    pub fn to_owned_record(&self) -> OwnedRecord {
        let template = self.template;
        let data = self.data;
        let mut fields = Vec::with_capacity(template.fields.len());
        let mut pos = 0usize;
        for (f, plan) in template.fields.iter().zip(template.plan.iter()) {
            let (start, len, long_length) = if plan.length == VARIABLE_LENGTH {
                let Some((start, len)) = read_varlen(data, pos) else {
                    break;
                };
                (start, len, start - pos == 3 && len < 255)
            } else if plan.offset != u32::MAX {
                (plan.offset as usize, plan.length as usize, false)
            } else {
                (pos, plan.length as usize, false)
            };
            let Some(bytes) = data.get(start..start + len) else {
                break;
            };
            pos = start + len;
            let value = match plan.op {
                Op::Skip => continue,
                Op::List => owned_list(f.kind, bytes, self.scope, self.depth),
                op => OwnedValue::from_value(&Value::from_op(op, bytes)),
            };
            fields.push(OwnedField {
                name: f.name.to_string(),
                id_key: f.id_key.to_string(),
                scope: f.scope,
                value,
                long_length,
            });
        }
        OwnedRecord {
            template_id: template.id,
            options: template.kind == crate::TemplateKind::Options,
            fields,
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

    /// A value serialized with nested records keyed by `keys`.
    struct ValueSer<'v> {
        value: &'v OwnedValue,
        keys: KeyMode,
    }

    impl Serialize for ValueSer<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let keys = self.keys;
            match self.value {
                OwnedValue::String(x) => s.serialize_str(x),
                OwnedValue::Bytes(b) => Value::Bytes(b).serialize(s),
                OwnedValue::List(l) => match &l.content {
                    OwnedListContent::Malformed(_) => s.serialize_str(""),
                    OwnedListContent::Basic { values, .. } => {
                        let mut seq = s.serialize_seq(Some(values.len()))?;
                        for value in values {
                            seq.serialize_element(&ValueSer { value, keys })?;
                        }
                        seq.end()
                    }
                    _ => {
                        let mut seq = s.serialize_seq(None)?;
                        for record in l.records() {
                            seq.serialize_element(&OwnedRecordSer { record, keys })?;
                        }
                        seq.end()
                    }
                },
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

    /// Serializes like the borrowed value; records in lists get name keys.
    impl Serialize for OwnedValue {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            ValueSer {
                value: self,
                keys: KeyMode::Name,
            }
            .serialize(s)
        }
    }

    /// An owned record serialized as a map with the chosen keys (also for
    /// the records of its lists).
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
                map.serialize_entry(
                    k,
                    &ValueSer {
                        value: &f.value,
                        keys: self.keys,
                    },
                )?;
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
    use super::*;
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
        assert_eq!(owned.get("IN_PACKETS"), Some(&OwnedValue::Unsigned(3)));
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

    /// IPFIX message: template 300 (sourceIPv4Address/4, octetDeltaCount/2),
    /// template 400 (subTemplateMultiList 293, variable length, 3-byte form;
    /// basicList 291 of interfaceName (82) strings, variable length; a
    /// subTemplateList 292 naming the unknown template 999).
    fn structured_message() -> Vec<u8> {
        let mut m = vec![0, 10, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let templates: &[u8] = &[
            0, 2, 0, 32, // template set
            1, 44, 0, 2, 0, 8, 0, 4, 0, 1, 0, 2, // 300
            1, 144, 0, 3, 1, 37, 255, 255, 1, 35, 255, 255, 1, 36, 255, 255, // 400
        ];
        m.extend_from_slice(templates);
        let mut rec = Vec::new();
        // subTemplateMultiList: semantic allOf, two blocks of template 300 (one and zero records).
        rec.extend_from_slice(&[255, 0, 15, 3]);
        rec.extend_from_slice(&[1, 44, 0, 10, 10, 0, 0, 1, 0, 5]);
        rec.extend_from_slice(&[1, 44, 0, 4]);
        // basicList: ordered, element interfaceName/varlen, "a" short form, "bc" long form.
        rec.extend_from_slice(&[12, 4, 0, 82, 255, 255, 1, b'a', 255, 0, 2, b'b', b'c']);
        // subTemplateList of unknown template 999: malformed.
        rec.extend_from_slice(&[5, 255, 3, 231, 1, 2]);
        let set_len = 4 + rec.len();
        m.extend_from_slice(&[1, 144]);
        m.extend_from_slice(&(set_len as u16).to_be_bytes());
        m.extend_from_slice(&rec);
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn lists_keep_their_headers_blocks_and_length_forms() {
        let m = structured_message();
        let mut cache = TemplateCache::new();
        let p = parse_packet(&m, &mut cache).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let r = p.records().next().unwrap();
        let owned = r.to_owned_record();
        let f = &owned.fields;
        assert_eq!(f.len(), 3);
        assert!(f[0].long_length && !f[1].long_length && !f[2].long_length);
        let multi = f[0].value.as_list().unwrap();
        assert_eq!(multi.semantic, 3);
        match &multi.content {
            OwnedListContent::SubTemplateMulti { blocks } => {
                assert_eq!(blocks.len(), 2);
                assert_eq!(blocks[0].records.len(), 1);
                assert!(blocks[1].records.is_empty());
                assert_eq!(
                    blocks[0].records[0].get("octetDeltaCount"),
                    Some(&OwnedValue::Unsigned(5))
                );
            }
            c => panic!("{c:?}"),
        }
        let basic = f[1].value.as_list().unwrap();
        assert_eq!(
            basic,
            &OwnedList {
                semantic: 4,
                content: OwnedListContent::Basic {
                    element: FieldSpec::new(0, 82, VARIABLE_LENGTH),
                    values: vec![
                        OwnedValue::String("a".into()),
                        OwnedValue::String("bc".into())
                    ],
                    long_lengths: true,
                },
            }
        );
        let bad = f[2].value.as_list().unwrap();
        assert_eq!(
            bad.content,
            OwnedListContent::Malformed(vec![255, 3, 231, 1, 2])
        );
        // The lossy borrowed-value copy merges nothing here but loses the malformed bytes.
        let (_, v) = r.fields().nth(2).unwrap();
        assert_eq!(
            OwnedValue::from_value(&v).as_list().unwrap().content,
            OwnedListContent::Malformed(Vec::new())
        );
        #[cfg(feature = "serde")]
        for keys in [
            crate::serde_impl::KeyMode::Name,
            crate::serde_impl::KeyMode::Id,
        ] {
            let a =
                serde_json::to_string(&crate::serde_impl::RecordSer { record: &r, keys }).unwrap();
            let o = serde_json::to_string(&OwnedRecordSer {
                record: &owned,
                keys,
            })
            .unwrap();
            assert_eq!(a, o);
        }
    }
}
