//! IPFIX (RFC 7011): the 16-byte message header (section 3.1), field
//! specifiers with the enterprise bit (section 3.2), template records
//! (section 3.4.1) and options template records (section 3.4.2.2).

use crate::template::FieldSpec;
use crate::wire::fixed_header;

fixed_header! {
    /// IPFIX message header.
    view HeaderView, repr IpfixHeader, len 16, {
        /// Always 10.
        version: u16 = 0,
        /// Total message length in bytes, header included.
        length: u16 = 2,
        /// Export time, seconds since the Unix epoch.
        export_time: u32 = 4,
        /// Count of data records sent before this message in this domain (mod 2^32).
        sequence: u32 = 8,
        observation_domain: u32 = 12,
    }
}

/// Set ID of template sets.
pub const TEMPLATE_SET_ID: u16 = 2;
/// Set ID of options template sets.
pub const OPTIONS_TEMPLATE_SET_ID: u16 = 3;

/// An IPFIX template or options template record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    pub template_id: u16,
    /// Scope field count; `Some` marks an options template record.
    pub scope_count: Option<u16>,
    /// Field specifiers; empty = template withdrawal (section 8.1).
    pub fields: Vec<FieldSpec>,
}

/// Why a template record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplateParse {
    Truncated(Option<u16>),
    TooManyFields {
        template_id: u16,
        count: usize,
    },
    BadScopeCount {
        template_id: u16,
        scope_count: u16,
        field_count: u16,
    },
}

/// Read `count` field specifiers from `b` into `fields`; returns bytes used or None if short.
fn parse_specs(b: &[u8], count: usize, fields: &mut Vec<FieldSpec>) -> Option<usize> {
    let mut pos = 0;
    for _ in 0..count {
        let s = b.get(pos..pos + 4)?;
        let raw = u16::from_be_bytes([s[0], s[1]]);
        let length = u16::from_be_bytes([s[2], s[3]]);
        if raw & 0x8000 != 0 {
            let p = b.get(pos + 4..pos + 8)?;
            fields.push(FieldSpec::new(
                u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
                raw & 0x7fff,
                length,
            ));
            pos += 8;
        } else {
            fields.push(FieldSpec::new(0, raw, length));
            pos += 4;
        }
    }
    Some(pos)
}

/// Read a template record from the start of `b`. Returns (template id, bytes used);
/// an empty `fields` is a withdrawal.
pub(crate) fn parse_template(
    b: &[u8],
    max_fields: usize,
    fields: &mut Vec<FieldSpec>,
) -> Result<(u16, usize), TemplateParse> {
    fields.clear();
    if b.len() < 4 {
        return Err(TemplateParse::Truncated(None));
    }
    let id = u16::from_be_bytes([b[0], b[1]]);
    let count = u16::from_be_bytes([b[2], b[3]]) as usize;
    if count > max_fields {
        return Err(TemplateParse::TooManyFields {
            template_id: id,
            count,
        });
    }
    let used = parse_specs(&b[4..], count, fields).ok_or(TemplateParse::Truncated(Some(id)))?;
    Ok((id, 4 + used))
}

/// Read an options template record. Returns (template id, scope count, bytes used).
/// A record with field count 0 is a withdrawal and has no scope count field.
pub(crate) fn parse_options_template(
    b: &[u8],
    max_fields: usize,
    fields: &mut Vec<FieldSpec>,
) -> Result<(u16, u16, usize), TemplateParse> {
    fields.clear();
    if b.len() < 4 {
        return Err(TemplateParse::Truncated(None));
    }
    let id = u16::from_be_bytes([b[0], b[1]]);
    let count = u16::from_be_bytes([b[2], b[3]]);
    if count == 0 {
        return Ok((id, 0, 4));
    }
    if b.len() < 6 {
        return Err(TemplateParse::Truncated(Some(id)));
    }
    let scope_count = u16::from_be_bytes([b[4], b[5]]);
    if scope_count == 0 || scope_count > count {
        return Err(TemplateParse::BadScopeCount {
            template_id: id,
            scope_count,
            field_count: count,
        });
    }
    if count as usize > max_fields {
        return Err(TemplateParse::TooManyFields {
            template_id: id,
            count: count as usize,
        });
    }
    let used =
        parse_specs(&b[6..], count as usize, fields).ok_or(TemplateParse::Truncated(Some(id)))?;
    Ok((id, scope_count, 6 + used))
}

impl TemplateRecord {
    /// Append the record in wire format.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.template_id.to_be_bytes());
        out.extend_from_slice(&(self.fields.len() as u16).to_be_bytes());
        if let (Some(sc), false) = (self.scope_count, self.fields.is_empty()) {
            out.extend_from_slice(&sc.to_be_bytes());
        }
        for f in &self.fields {
            if f.field.enterprise != 0 {
                out.extend_from_slice(&(f.field.id | 0x8000).to_be_bytes());
                out.extend_from_slice(&f.length.to_be_bytes());
                out.extend_from_slice(&f.field.enterprise.to_be_bytes());
            } else {
                out.extend_from_slice(&f.field.id.to_be_bytes());
                out.extend_from_slice(&f.length.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_deconstruct_and_construct() {
        // First 16 bytes of the upstream PACKET_IPFIX_PADDING vector.
        let b = [
            0x00, 0x0a, 0x01, 0xc0, 0x64, 0xe0, 0xb1, 0x90, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
            0x00, 0x00,
        ];
        let h = IpfixHeader::parse(&b).unwrap();
        assert_eq!(
            h,
            IpfixHeader {
                version: 10,
                length: 448,
                export_time: 1692447120,
                sequence: 2,
                observation_domain: 0
            }
        );
        assert_eq!(h.to_bytes(), b);
    }

    #[test]
    fn enterprise_field_specifier() {
        // RFC 7011 section 3.2: enterprise bit set, id 14, length 1, PEN 6871; then IANA 8/4.
        let b = [
            0x01, 0x00, 0x00, 0x02, 0x80, 0x0e, 0x00, 0x01, 0x00, 0x00, 0x1a, 0xd7, 0x00, 0x08,
            0x00, 0x04,
        ];
        let mut fields = Vec::new();
        let (id, used) = parse_template(&b, 10, &mut fields).unwrap();
        assert_eq!((id, used), (256, 16));
        assert_eq!(
            fields,
            vec![FieldSpec::new(6871, 14, 1), FieldSpec::new(0, 8, 4)]
        );
        let mut out = Vec::new();
        TemplateRecord {
            template_id: 256,
            scope_count: None,
            fields,
        }
        .emit(&mut out);
        assert_eq!(out, b);
    }

    #[test]
    fn options_template_and_withdrawal() {
        // Options template 300: 2 fields, 1 scope: observationDomainId(149)/4, exportedMessageTotalCount(41)/8.
        let b = [
            0x01, 0x2c, 0x00, 0x02, 0x00, 0x01, 0x00, 0x95, 0x00, 0x04, 0x00, 0x29, 0x00, 0x08,
        ];
        let mut fields = Vec::new();
        assert_eq!(
            parse_options_template(&b, 10, &mut fields).unwrap(),
            (300, 1, 14)
        );
        let mut out = Vec::new();
        TemplateRecord {
            template_id: 300,
            scope_count: Some(1),
            fields: fields.clone(),
        }
        .emit(&mut out);
        assert_eq!(out, b);
        // Withdrawal: id + count 0 only.
        assert_eq!(
            parse_options_template(&[0x01, 0x2c, 0, 0], 10, &mut fields).unwrap(),
            (300, 0, 4)
        );
        // Scope count 0 is invalid (section 3.4.2.2).
        let bad = [0x01, 0x2c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x95, 0x00, 0x04];
        assert!(matches!(
            parse_options_template(&bad, 10, &mut fields),
            Err(TemplateParse::BadScopeCount { .. })
        ));
    }
}
