//! Field values, records and structured data lists (RFC 7011 section 6,
//! RFC 6313 section 4.5) into bytes: the inverse of [`crate::value::Value::decode`]
//! and [`crate::Record::to_owned_record`].

use super::{EncodeError, TemplateLookup, MAX_LIST_DEPTH};
use crate::owned::{basic_element_kind, OwnedField, OwnedList, OwnedListContent};
use crate::template::{FieldSpec, Template, TemplateField, VARIABLE_LENGTH};
use crate::value::ValueKind;
use crate::{OwnedRecord, OwnedValue};

/// What nested encodings need: the templates of sub-template lists and
/// whether every variable-length value takes the 3-byte length form.
#[derive(Clone, Copy, Default)]
pub(crate) struct Ctx<'t> {
    pub templates: Option<&'t dyn TemplateLookup>,
    pub force_long: bool,
}

/// A record's values: an [`OwnedRecord`]'s fields (with their length forms)
/// or bare values.
#[derive(Clone, Copy)]
pub(crate) enum Source<'v> {
    Fields(&'v [OwnedField]),
    Values(&'v [OwnedValue]),
}

impl<'v> Source<'v> {
    #[inline]
    fn len(&self) -> usize {
        match self {
            Source::Fields(f) => f.len(),
            Source::Values(v) => v.len(),
        }
    }
    #[inline]
    fn get(&self, i: usize) -> Option<(&'v OwnedValue, bool)> {
        match self {
            Source::Fields(f) => f.get(i).map(|f| (&f.value, f.long_length)),
            Source::Values(v) => v.get(i).map(|v| (v, false)),
        }
    }
}

/// Append one field value encoded for `field` (its length, or the length
/// prefix of a variable-length field, included). `long_length` asks for the
/// 3-byte length form of a variable-length field even below 255 bytes.
/// `templates` resolves the records of sub-template lists. On error `out` is
/// left as it was.
pub fn encode_value(
    out: &mut Vec<u8>,
    field: &TemplateField,
    value: &OwnedValue,
    long_length: bool,
    templates: Option<&dyn TemplateLookup>,
) -> Result<(), EncodeError> {
    let at = out.len();
    let ctx = Ctx {
        templates,
        force_long: false,
    };
    value_into(out, field.kind, field.spec, value, long_length, ctx, 0).inspect_err(|_| {
        out.truncate(at);
    })
}

/// Append one data record of `template` from an [`OwnedRecord`] (fields in
/// template order, padding fields left out, as
/// [`crate::Record::to_owned_record`] gives them). The record's
/// `template_id` and field names are not checked. On error `out` is left as
/// it was.
pub fn encode_record(
    out: &mut Vec<u8>,
    template: &Template,
    record: &OwnedRecord,
    templates: Option<&dyn TemplateLookup>,
) -> Result<(), EncodeError> {
    let at = out.len();
    let ctx = Ctx {
        templates,
        force_long: false,
    };
    record_into(out, template, Source::Fields(&record.fields), ctx, 0).inspect_err(|_| {
        out.truncate(at);
    })
}

/// Append one data record of `template` from values in template order
/// (padding fields left out). On error `out` is left as it was.
pub fn encode_values(
    out: &mut Vec<u8>,
    template: &Template,
    values: &[OwnedValue],
    templates: Option<&dyn TemplateLookup>,
) -> Result<(), EncodeError> {
    let at = out.len();
    let ctx = Ctx {
        templates,
        force_long: false,
    };
    record_into(out, template, Source::Values(values), ctx, 0).inspect_err(|_| {
        out.truncate(at);
    })
}

/// Append a record at list nesting `depth` (0 = top level). May leave a
/// partial record on error.
pub(crate) fn record_into(
    out: &mut Vec<u8>,
    template: &Template,
    src: Source<'_>,
    ctx: Ctx<'_>,
    depth: usize,
) -> Result<(), EncodeError> {
    let mut i = 0;
    for f in template.fields.iter() {
        if f.skip {
            // Padding: zeros (an empty value when variable-length).
            let n = if f.spec.is_variable() {
                1
            } else {
                f.spec.length as usize
            };
            out.resize(out.len() + n, 0);
            continue;
        }
        let Some((value, long)) = src.get(i) else {
            return Err(field_count(template, src));
        };
        i += 1;
        value_into(
            out,
            f.kind,
            f.spec,
            value,
            long || ctx.force_long,
            ctx,
            depth,
        )?;
    }
    if i != src.len() {
        return Err(field_count(template, src));
    }
    Ok(())
}

#[cold]
fn field_count(template: &Template, src: Source<'_>) -> EncodeError {
    EncodeError::FieldCount {
        template_id: template.id,
        expected: template.fields.iter().filter(|f| !f.skip).count(),
        got: src.len(),
    }
}

fn is_list_kind(kind: ValueKind) -> bool {
    matches!(
        kind,
        ValueKind::BasicList | ValueKind::SubTemplateList | ValueKind::SubTemplateMultiList
    )
}

/// Append `value` for a field of `kind` and `spec`. May leave partial output on error.
pub(crate) fn value_into(
    out: &mut Vec<u8>,
    kind: ValueKind,
    spec: FieldSpec,
    value: &OwnedValue,
    long: bool,
    ctx: Ctx<'_>,
    depth: usize,
) -> Result<(), EncodeError> {
    use OwnedValue as V;
    use ValueKind as K;
    let field = spec.field;
    let wrong = || EncodeError::WrongType { field, kind };
    if spec.length == VARIABLE_LENGTH {
        return match value {
            V::String(s) if matches!(kind, K::String | K::Bytes) => {
                varlen(out, s.as_bytes(), long, spec)
            }
            V::Bytes(b) => varlen(out, b, long, spec),
            V::List(l) if is_list_kind(kind) => {
                let at = out.len();
                out.extend_from_slice(&[255, 0, 0]);
                list_into(out, kind, spec, l, ctx, depth)?;
                let n = out.len() - at - 3;
                if n > u16::MAX as usize {
                    return Err(EncodeError::ValueTooLarge {
                        field,
                        length: spec.length,
                    });
                }
                if n < 255 && !long {
                    out[at] = n as u8;
                    out.copy_within(at + 3.., at + 1);
                    out.truncate(out.len() - 2);
                } else {
                    out[at + 1..at + 3].copy_from_slice(&(n as u16).to_be_bytes());
                }
                Ok(())
            }
            _ => Err(wrong()),
        };
    }
    let len = spec.length as usize;
    match (kind, value) {
        (K::Unsigned, V::Unsigned(v))
        | (K::DateTimeSeconds, V::DateTimeSeconds(v))
        | (K::DateTimeMilliseconds, V::DateTimeMilliseconds(v))
            if (1..=8).contains(&len) =>
        {
            if len < 8 && *v >> (8 * len) != 0 {
                return Err(EncodeError::ValueTooLarge {
                    field,
                    length: spec.length,
                });
            }
            out.extend_from_slice(&v.to_be_bytes()[8 - len..]);
        }
        (K::Signed, V::Signed(v)) if (1..=8).contains(&len) => {
            let bits = 8 * len as u32;
            if bits < 64 {
                let half = 1i64 << (bits - 1);
                if *v < -half || *v >= half {
                    return Err(EncodeError::ValueTooLarge {
                        field,
                        length: spec.length,
                    });
                }
            }
            out.extend_from_slice(&v.to_be_bytes()[8 - len..]);
        }
        (K::Float32 | K::Float64, V::Float(x)) if len == 4 => {
            let y = *x as f32;
            if x.is_finite() && y.is_infinite() {
                return Err(EncodeError::ValueTooLarge {
                    field,
                    length: spec.length,
                });
            }
            out.extend_from_slice(&y.to_be_bytes());
        }
        (K::Float64, V::Float(x)) if len == 8 => out.extend_from_slice(&x.to_be_bytes()),
        (K::Boolean, V::Bool(b)) if len == 1 => out.push(if *b { 1 } else { 2 }),
        (K::Mac, V::Mac(m)) if len == 6 => out.extend_from_slice(m),
        (K::Ipv4, V::Ipv4(a)) if len == 4 => out.extend_from_slice(&a.octets()),
        (K::Ipv6, V::Ipv6(a)) if len == 16 => out.extend_from_slice(&a.octets()),
        (K::DateTimeMicroseconds, V::DateTimeMicroseconds(t))
        | (K::DateTimeNanoseconds, V::DateTimeNanoseconds(t))
            if len == 8 =>
        {
            out.extend_from_slice(&t.seconds.to_be_bytes());
            out.extend_from_slice(&t.fraction.to_be_bytes());
        }
        // Text in an octet array is taken as its UTF-8 bytes.
        (K::String | K::Bytes, V::String(s)) => padded(out, s.as_bytes(), spec)?,
        (K::String | K::Bytes, V::Bytes(b)) => padded(out, b, spec)?,
        (_, V::Bytes(b)) if b.len() == len => out.extend_from_slice(b),
        (_, V::Bytes(b)) => {
            return Err(EncodeError::LengthMismatch {
                field,
                length: spec.length,
                encoded: b.len(),
            })
        }
        (K::BasicList | K::SubTemplateList | K::SubTemplateMultiList, V::List(l)) => {
            let at = out.len();
            list_into(out, kind, spec, l, ctx, depth)?;
            let encoded = out.len() - at;
            if encoded != len {
                return Err(EncodeError::LengthMismatch {
                    field,
                    length: spec.length,
                    encoded,
                });
            }
        }
        _ => return Err(wrong()),
    }
    Ok(())
}

/// A fixed-length string or octet array: the bytes, then zeros.
#[inline]
fn padded(out: &mut Vec<u8>, b: &[u8], spec: FieldSpec) -> Result<(), EncodeError> {
    let len = spec.length as usize;
    if b.len() > len {
        return Err(EncodeError::ValueTooLarge {
            field: spec.field,
            length: spec.length,
        });
    }
    out.extend_from_slice(b);
    out.resize(out.len() + (len - b.len()), 0);
    Ok(())
}

/// A variable-length value with its length prefix (RFC 7011 section 7).
#[inline]
fn varlen(out: &mut Vec<u8>, b: &[u8], long: bool, spec: FieldSpec) -> Result<(), EncodeError> {
    if b.len() < 255 && !long {
        out.push(b.len() as u8);
    } else if b.len() <= u16::MAX as usize {
        out.push(255);
        out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    } else {
        return Err(EncodeError::ValueTooLarge {
            field: spec.field,
            length: spec.length,
        });
    }
    out.extend_from_slice(b);
    Ok(())
}

/// The list header and content (RFC 6313 section 4.5) without a length prefix.
fn list_into(
    out: &mut Vec<u8>,
    kind: ValueKind,
    spec: FieldSpec,
    list: &OwnedList,
    ctx: Ctx<'_>,
    depth: usize,
) -> Result<(), EncodeError> {
    let depth = depth + 1;
    if depth > MAX_LIST_DEPTH {
        return Err(EncodeError::ListTooDeep {
            limit: MAX_LIST_DEPTH,
        });
    }
    let lookup = |id: u16| -> Result<&Template, EncodeError> {
        ctx.templates
            .and_then(|t| t.template(id))
            .ok_or(EncodeError::UnknownTemplate(id))
    };
    match (&list.content, kind) {
        (OwnedListContent::Malformed(raw), _) => out.extend_from_slice(raw),
        (
            OwnedListContent::Basic {
                element,
                values,
                long_lengths,
            },
            ValueKind::BasicList,
        ) => {
            let e = element.field;
            if e.id > 0x7fff || (element.length == 0 && !values.is_empty()) {
                return Err(EncodeError::BadListElement { element: e });
            }
            out.push(list.semantic);
            if e.enterprise != 0 {
                out.extend_from_slice(&(e.id | 0x8000).to_be_bytes());
                out.extend_from_slice(&element.length.to_be_bytes());
                out.extend_from_slice(&e.enterprise.to_be_bytes());
            } else {
                out.extend_from_slice(&e.id.to_be_bytes());
                out.extend_from_slice(&element.length.to_be_bytes());
            }
            let ekind = basic_element_kind(*element);
            let long = *long_lengths || ctx.force_long;
            for v in values {
                value_into(out, ekind, *element, v, long, ctx, depth)?;
            }
        }
        (
            OwnedListContent::SubTemplate {
                template_id,
                records,
            },
            ValueKind::SubTemplateList,
        ) => {
            out.push(list.semantic);
            out.extend_from_slice(&template_id.to_be_bytes());
            if !records.is_empty() {
                let t = lookup(*template_id)?;
                for r in records {
                    record_into(out, t, Source::Fields(&r.fields), ctx, depth)?;
                }
            }
        }
        (OwnedListContent::SubTemplateMulti { blocks }, ValueKind::SubTemplateMultiList) => {
            out.push(list.semantic);
            for b in blocks {
                let at = out.len();
                out.extend_from_slice(&b.template_id.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                if !b.records.is_empty() {
                    let t = lookup(b.template_id)?;
                    for r in &b.records {
                        record_into(out, t, Source::Fields(&r.fields), ctx, depth)?;
                    }
                }
                let n = out.len() - at;
                if n > u16::MAX as usize {
                    return Err(EncodeError::SetTooLong {
                        set_id: b.template_id,
                        length: n,
                    });
                }
                out[at + 2..at + 4].copy_from_slice(&(n as u16).to_be_bytes());
            }
        }
        _ => {
            return Err(EncodeError::WrongType {
                field: spec.field,
                kind,
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owned::OwnedBlock;
    use crate::template::TemplateKind;
    use crate::value::NtpTimestamp;
    use crate::{FieldId, Protocol};

    fn template(id: u16, specs: &[FieldSpec]) -> Template {
        Template::compile(Protocol::Ipfix, id, TemplateKind::Data, 0, specs).unwrap()
    }

    fn enc(spec: FieldSpec, v: OwnedValue) -> Result<Vec<u8>, EncodeError> {
        let t = template(256, &[spec]);
        let mut out = vec![0xaa];
        encode_values(&mut out, &t, &[v], None)?;
        assert_eq!(out[0], 0xaa);
        Ok(out[1..].to_vec())
    }

    #[test]
    fn reduced_size_integers() {
        // RFC 7011 section 6.2: octetDeltaCount (unsigned64) in 3 bytes.
        assert_eq!(
            enc(FieldSpec::new(0, 1, 3), OwnedValue::Unsigned(0x010203)).unwrap(),
            [1, 2, 3]
        );
        assert_eq!(
            enc(FieldSpec::new(0, 1, 3), OwnedValue::Unsigned(0x01000000)),
            Err(EncodeError::ValueTooLarge {
                field: FieldId::iana(1),
                length: 3
            })
        );
        assert_eq!(
            enc(FieldSpec::new(0, 1, 8), OwnedValue::Unsigned(u64::MAX)).unwrap(),
            [0xff; 8]
        );
        // mibObjectValueInteger (434) is signed32: -2 in 2 bytes, and the bounds.
        let s2 = FieldSpec::new(0, 434, 2);
        assert_eq!(enc(s2, OwnedValue::Signed(-2)).unwrap(), [0xff, 0xfe]);
        assert_eq!(enc(s2, OwnedValue::Signed(-32768)).unwrap(), [0x80, 0]);
        assert!(enc(s2, OwnedValue::Signed(32768)).is_err());
        assert!(enc(s2, OwnedValue::Signed(-32769)).is_err());
        assert_eq!(
            enc(FieldSpec::new(0, 434, 8), OwnedValue::Signed(i64::MIN)).unwrap(),
            i64::MIN.to_be_bytes()
        );
    }

    #[test]
    fn typed_values() {
        // sourceIPv4Address, sourceMacAddress, sourceIPv6Address.
        assert_eq!(
            enc(
                FieldSpec::new(0, 8, 4),
                OwnedValue::Ipv4([192, 0, 2, 1].into())
            )
            .unwrap(),
            [192, 0, 2, 1]
        );
        assert_eq!(
            enc(
                FieldSpec::new(0, 56, 6),
                OwnedValue::Mac([1, 2, 3, 4, 5, 6])
            )
            .unwrap(),
            [1, 2, 3, 4, 5, 6]
        );
        let v6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            enc(FieldSpec::new(0, 27, 16), OwnedValue::Ipv6(v6)).unwrap(),
            v6.octets()
        );
        // dataRecordsReliability (276) is boolean: true 1, false 2 (RFC 7011 section 6.1.5).
        assert_eq!(
            enc(FieldSpec::new(0, 276, 1), OwnedValue::Bool(true)).unwrap(),
            [1]
        );
        assert_eq!(
            enc(FieldSpec::new(0, 276, 1), OwnedValue::Bool(false)).unwrap(),
            [2]
        );
        // samplingProbability (311) is float64: 8 bytes, or reduced to 4.
        assert_eq!(
            enc(FieldSpec::new(0, 311, 8), OwnedValue::Float(0.5)).unwrap(),
            0.5f64.to_be_bytes()
        );
        assert_eq!(
            enc(FieldSpec::new(0, 311, 4), OwnedValue::Float(0.5)).unwrap(),
            0.5f32.to_be_bytes()
        );
        assert!(enc(FieldSpec::new(0, 311, 4), OwnedValue::Float(1e300)).is_err());
        // flowStartSeconds (150), flowStartMilliseconds (152), flowStartNanoseconds (156).
        assert_eq!(
            enc(FieldSpec::new(0, 150, 4), OwnedValue::DateTimeSeconds(7)).unwrap(),
            [0, 0, 0, 7]
        );
        assert_eq!(
            enc(
                FieldSpec::new(0, 152, 8),
                OwnedValue::DateTimeMilliseconds(1)
            )
            .unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 1]
        );
        let ts = NtpTimestamp {
            seconds: 0xe8ffa080,
            fraction: 0x8000_0000,
        };
        assert_eq!(
            enc(
                FieldSpec::new(0, 156, 8),
                OwnedValue::DateTimeNanoseconds(ts)
            )
            .unwrap(),
            [0xe8, 0xff, 0xa0, 0x80, 0x80, 0, 0, 0]
        );
        // Raw bytes of the field length go anywhere (a boolean 0 decodes as bytes).
        assert_eq!(
            enc(FieldSpec::new(0, 276, 1), OwnedValue::Bytes(vec![0])).unwrap(),
            [0]
        );
        assert!(matches!(
            enc(FieldSpec::new(0, 276, 1), OwnedValue::Bytes(vec![0, 0])),
            Err(EncodeError::LengthMismatch { .. })
        ));
        assert_eq!(
            enc(
                FieldSpec::new(0, 7, 2),
                OwnedValue::Ipv4([1, 2, 3, 4].into())
            ),
            Err(EncodeError::WrongType {
                field: FieldId::iana(7),
                kind: ValueKind::Unsigned
            })
        );
    }

    #[test]
    fn strings_and_octet_arrays() {
        // interfaceName (82): fixed 6 bytes pads with zeros, 2 bytes is too short.
        assert_eq!(
            enc(FieldSpec::new(0, 82, 6), OwnedValue::String("eth0".into())).unwrap(),
            b"eth0\0\0"
        );
        assert!(enc(FieldSpec::new(0, 82, 2), OwnedValue::String("eth0".into())).is_err());
        // Variable length: 1-byte prefix below 255, 3-byte form from 255 on.
        assert_eq!(
            enc(
                FieldSpec::new(0, 82, VARIABLE_LENGTH),
                OwnedValue::String("ab".into())
            )
            .unwrap(),
            [2, b'a', b'b']
        );
        let long = vec![7u8; 255];
        let out = enc(
            FieldSpec::new(0, 313, VARIABLE_LENGTH),
            OwnedValue::Bytes(long.clone()),
        )
        .unwrap();
        assert_eq!(&out[..3], &[255, 0, 255]);
        assert_eq!(&out[3..], &long[..]);
        // The 3-byte form on request.
        let t = template(256, &[FieldSpec::new(0, 82, VARIABLE_LENGTH)]);
        let mut out = Vec::new();
        encode_value(
            &mut out,
            &t.fields[0],
            &OwnedValue::String("ab".into()),
            true,
            None,
        )
        .unwrap();
        assert_eq!(out, [255, 0, 2, b'a', b'b']);
        assert!(enc(
            FieldSpec::new(0, 82, VARIABLE_LENGTH),
            OwnedValue::Bytes(vec![0; 65536])
        )
        .is_err());
    }

    #[test]
    fn padding_fields_are_zeros_and_field_count_is_checked() {
        // paddingOctets (210) is not a value.
        let t = template(256, &[FieldSpec::new(0, 4, 1), FieldSpec::new(0, 210, 3)]);
        let mut out = Vec::new();
        encode_values(&mut out, &t, &[OwnedValue::Unsigned(6)], None).unwrap();
        assert_eq!(out, [6, 0, 0, 0]);
        assert_eq!(
            encode_values(&mut out, &t, &[], None),
            Err(EncodeError::FieldCount {
                template_id: 256,
                expected: 1,
                got: 0
            })
        );
        assert!(encode_values(
            &mut out,
            &t,
            &[OwnedValue::Unsigned(6), OwnedValue::Unsigned(6)],
            None
        )
        .is_err());
        assert_eq!(out, [6, 0, 0, 0], "a failed record leaves nothing");
    }

    #[test]
    fn structured_data_per_rfc6313() {
        // RFC 6313 section 4.5.1: basicList, semantic allOf (3), of
        // ingressInterface (10)/4, two values; in a variable-length field.
        let basic = OwnedValue::List(Box::new(OwnedList::basic(
            3,
            FieldSpec::new(0, 10, 4),
            vec![OwnedValue::Unsigned(1), OwnedValue::Unsigned(2)],
        )));
        assert_eq!(
            enc(FieldSpec::new(0, 291, VARIABLE_LENGTH), basic).unwrap(),
            [13, 3, 0, 10, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2]
        );
        // An enterprise element: the enterprise bit and the PEN follow.
        let yaf = OwnedValue::List(Box::new(OwnedList::basic(
            0xff,
            FieldSpec::new(6871, 14, 1),
            vec![OwnedValue::Unsigned(0x12)],
        )));
        assert_eq!(
            enc(FieldSpec::new(0, 291, VARIABLE_LENGTH), yaf).unwrap(),
            [10, 0xff, 0x80, 14, 0, 1, 0, 0, 0x1a, 0xd7, 0x12]
        );
        // Section 4.5.2: subTemplateList of template 300 (sourceIPv4Address/4),
        // one record, in a fixed-length field of 7 bytes.
        let sub = template(300, &[FieldSpec::new(0, 8, 4)]);
        let rec = OwnedRecord {
            template_id: 300,
            options: false,
            fields: vec![OwnedField::new(
                "sourceIPv4Address",
                "8",
                false,
                OwnedValue::Ipv4([10, 0, 0, 1].into()),
            )],
        };
        let stl = OwnedValue::List(Box::new(OwnedList::sub_template(4, 300, vec![rec.clone()])));
        let t = template(256, &[FieldSpec::new(0, 292, 7)]);
        let mut out = Vec::new();
        assert_eq!(
            encode_values(&mut out, &t, std::slice::from_ref(&stl), None),
            Err(EncodeError::UnknownTemplate(300))
        );
        encode_values(&mut out, &t, std::slice::from_ref(&stl), Some(&sub)).unwrap();
        assert_eq!(out, [4, 1, 44, 10, 0, 0, 1]);
        let t8 = template(256, &[FieldSpec::new(0, 292, 8)]);
        assert!(matches!(
            encode_values(&mut out, &t8, &[stl], Some(&sub)),
            Err(EncodeError::LengthMismatch { encoded: 7, .. })
        ));
        // Section 4.5.3: subTemplateMultiList, two blocks (the second empty).
        let multi = OwnedValue::List(Box::new(OwnedList::sub_template_multi(
            0xff,
            vec![
                OwnedBlock {
                    template_id: 300,
                    records: vec![rec],
                },
                OwnedBlock {
                    template_id: 301,
                    records: vec![],
                },
            ],
        )));
        let t = template(256, &[FieldSpec::new(0, 293, VARIABLE_LENGTH)]);
        let mut out = Vec::new();
        encode_values(&mut out, &t, &[multi], Some(&sub)).unwrap();
        assert_eq!(
            out,
            [
                13, 0xff, 1, 44, 0, 8, 10, 0, 0, 1, // block 300
                1, 45, 0, 4 // block 301
            ]
        );
    }

    #[test]
    fn nesting_is_capped() {
        let mut v = OwnedValue::Unsigned(1);
        let mut element = FieldSpec::new(0, 10, 4);
        for _ in 0..=MAX_LIST_DEPTH {
            v = OwnedValue::List(Box::new(OwnedList::basic(0, element, vec![v])));
            element = FieldSpec::new(0, 291, VARIABLE_LENGTH);
        }
        assert_eq!(
            enc(element, v),
            Err(EncodeError::ListTooDeep {
                limit: MAX_LIST_DEPTH
            })
        );
    }
}
