//! NetFlow v9 (RFC 3954): the 20-byte packet header (section 5.1), template
//! records (section 5.2) and options template records (section 6.1).

use crate::template::FieldSpec;
use crate::wire::fixed_header;

fixed_header! {
    /// NetFlow v9 packet header.
    view HeaderView, repr V9Header, len 20, {
        version: u16 = 0,
        /// Total records in the packet (template, options and data records).
        count: u16 = 2,
        /// SysUptime at export, milliseconds.
        uptime: u32 = 4,
        /// Export time, seconds since the Unix epoch.
        timestamp: u32 = 8,
        /// Export packet sequence number.
        sequence: u32 = 12,
        /// Source ID: the exporting observation domain.
        source_id: u32 = 16,
    }
}

/// FlowSet ID of template flowsets.
pub const TEMPLATE_SET_ID: u16 = 0;
/// FlowSet ID of options template flowsets.
pub const OPTIONS_TEMPLATE_SET_ID: u16 = 1;

/// A v9 template or options template record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    pub template_id: u16,
    /// Number of leading scope fields (options templates only).
    pub scope_count: u16,
    pub fields: Vec<FieldSpec>,
}

/// Why a template record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplateParse {
    /// Not enough bytes for the record; `template_id` if it could be read.
    Truncated(Option<u16>),
    TooManyFields {
        template_id: u16,
        count: usize,
    },
    BadOptionsLengths {
        template_id: u16,
        scope_len: u16,
        option_len: u16,
    },
}

/// Read a template record from the start of `b` into `fields` (cleared first).
/// Returns (template id, bytes consumed).
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
    let end = 4 + count * 4;
    if b.len() < end {
        return Err(TemplateParse::Truncated(Some(id)));
    }
    fields.extend(b[4..end].chunks_exact(4).map(|c| {
        FieldSpec::new(
            0,
            u16::from_be_bytes([c[0], c[1]]),
            u16::from_be_bytes([c[2], c[3]]),
        )
    }));
    Ok((id, end))
}

/// Read an options template record (scope fields first) into `fields`.
/// Returns (template id, scope field count, bytes consumed).
pub(crate) fn parse_options_template(
    b: &[u8],
    max_fields: usize,
    fields: &mut Vec<FieldSpec>,
) -> Result<(u16, u16, usize), TemplateParse> {
    fields.clear();
    if b.len() < 6 {
        return Err(TemplateParse::Truncated(None));
    }
    let id = u16::from_be_bytes([b[0], b[1]]);
    let scope_len = u16::from_be_bytes([b[2], b[3]]);
    let option_len = u16::from_be_bytes([b[4], b[5]]);
    if scope_len % 4 != 0 || option_len % 4 != 0 {
        return Err(TemplateParse::BadOptionsLengths {
            template_id: id,
            scope_len,
            option_len,
        });
    }
    let count = (scope_len as usize + option_len as usize) / 4;
    if count > max_fields {
        return Err(TemplateParse::TooManyFields {
            template_id: id,
            count,
        });
    }
    let end = 6 + scope_len as usize + option_len as usize;
    if b.len() < end {
        return Err(TemplateParse::Truncated(Some(id)));
    }
    fields.extend(b[6..end].chunks_exact(4).map(|c| {
        FieldSpec::new(
            0,
            u16::from_be_bytes([c[0], c[1]]),
            u16::from_be_bytes([c[2], c[3]]),
        )
    }));
    Ok((id, scope_len / 4, end))
}

impl TemplateRecord {
    /// Bytes this record takes in a template flowset (options: without flowset padding).
    pub fn buffer_len(&self) -> usize {
        if self.scope_count > 0 {
            6 + 4 * self.fields.len()
        } else {
            4 + 4 * self.fields.len()
        }
    }

    /// Append the record: a template record, or an options template record
    /// when `scope_count > 0`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.template_id.to_be_bytes());
        if self.scope_count > 0 {
            let scope_len = 4 * self.scope_count;
            let option_len = 4 * (self.fields.len() as u16 - self.scope_count);
            out.extend_from_slice(&scope_len.to_be_bytes());
            out.extend_from_slice(&option_len.to_be_bytes());
        } else {
            out.extend_from_slice(&(self.fields.len() as u16).to_be_bytes());
        }
        for f in &self.fields {
            out.extend_from_slice(&f.field.id.to_be_bytes());
            out.extend_from_slice(&f.length.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_deconstruct_and_construct() {
        // First 20 bytes of the upstream PACKET_V9_TEMPLATE vector.
        let b = [
            0x00, 0x09, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x03, 0x5c, 0x9f, 0x55, 0x98, 0x00, 0x00,
            0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        ];
        let h = V9Header::parse(&b).unwrap();
        assert_eq!(
            h,
            V9Header {
                version: 9,
                count: 10,
                uptime: 3,
                timestamp: 1553946008,
                sequence: 1,
                source_id: 0
            }
        );
        assert_eq!(h.to_bytes(), b);
    }

    #[test]
    fn template_record_round_trip() {
        // RFC 3954 section 5.2: template 256, two fields: IPV4_SRC_ADDR(8)/4, IN_PKTS(2)/4.
        let b = [
            0x01, 0x00, 0x00, 0x02, 0x00, 0x08, 0x00, 0x04, 0x00, 0x02, 0x00, 0x04,
        ];
        let mut fields = Vec::new();
        let (id, used) = parse_template(&b, 100, &mut fields).unwrap();
        assert_eq!((id, used), (256, 12));
        assert_eq!(
            fields,
            vec![FieldSpec::new(0, 8, 4), FieldSpec::new(0, 2, 4)]
        );
        let rec = TemplateRecord {
            template_id: id,
            scope_count: 0,
            fields,
        };
        let mut out = Vec::new();
        rec.emit(&mut out);
        assert_eq!(out, b);
    }

    #[test]
    fn options_template_record_round_trip() {
        // RFC 3954 section 6.1: template 257, scope Interface(2)/4, option SAMPLING_INTERVAL(34)/4.
        let b = [
            0x01, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00, 0x02, 0x00, 0x04, 0x00, 0x22, 0x00, 0x04,
        ];
        let mut fields = Vec::new();
        let (id, scopes, used) = parse_options_template(&b, 100, &mut fields).unwrap();
        assert_eq!((id, scopes, used), (257, 1, 14));
        let rec = TemplateRecord {
            template_id: id,
            scope_count: scopes,
            fields,
        };
        let mut out = Vec::new();
        rec.emit(&mut out);
        assert_eq!(out, b);
    }

    #[test]
    fn options_lengths_must_be_multiples_of_4() {
        let b = [0x01, 0x01, 0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            parse_options_template(&b, 100, &mut Vec::new()),
            Err(TemplateParse::BadOptionsLengths { .. })
        ));
    }
}
