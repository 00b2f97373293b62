//! NetFlow v9 export packets (RFC 3954 section 5) and IPFIX messages
//! (RFC 7011 section 3): a header, then template, options template and data
//! sets.

use super::value::{record_into, Ctx, Source};
use super::{EncodeError, TemplateLookup, MAX_MESSAGE_LEN};
use crate::packet::Header;
use crate::template::{FieldSpec, Template, TemplateKind};
use crate::wire::ipfix::{self, IpfixHeader};
use crate::wire::v9::{self, V9Header};
use crate::{OwnedRecord, OwnedValue, Protocol};

/// The set being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenSet {
    /// Offset of its header in the buffer.
    start: usize,
    id: u16,
    /// Shortest record of a data set (padding must stay below it); 0 for
    /// template sets, whose padding can be any number of zeros.
    min_record_len: usize,
}

/// A point to return to with [`MessageBuilder::rollback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    len: usize,
    set: Option<OpenSet>,
    records: u32,
    data_records: u32,
}

/// Builds one NetFlow v9 packet or IPFIX message into a caller's buffer.
///
/// Template records, options template records and withdrawals go into
/// template sets, records into data sets; consecutive items of one set id
/// share a set ([`MessageBuilder::end_set`] starts a new one). Every method
/// either does all it says or returns an error and leaves the message as it
/// was, so a generator can add records until [`EncodeError::MessageTooLong`]
/// and then [`finish`](MessageBuilder::finish).
///
/// ```
/// use netflow::encode::MessageBuilder;
/// use netflow::wire::ipfix::IpfixHeader;
/// use netflow::{FieldSpec, OwnedValue, Protocol, Template, TemplateKind};
///
/// // sourceIPv4Address/4, octetDeltaCount/8
/// let specs = [FieldSpec::new(0, 8, 4), FieldSpec::new(0, 1, 8)];
/// let t = Template::compile(Protocol::Ipfix, 256, TemplateKind::Data, 0, &specs).unwrap();
/// let mut out = Vec::new();
/// let mut m = MessageBuilder::ipfix(&mut out, IpfixHeader { export_time: 1, ..Default::default() });
/// m.template(&t)?;
/// m.values(&t, &[OwnedValue::Ipv4([10, 0, 0, 1].into()), OwnedValue::Unsigned(1500)])?;
/// let len = m.finish()?;
/// assert_eq!((len, out.len()), (16 + 16 + 16, 48));
/// # Ok::<(), netflow::encode::EncodeError>(())
/// ```
pub struct MessageBuilder<'a> {
    out: &'a mut Vec<u8>,
    /// Offset of the message header in `out`.
    start: usize,
    protocol: Protocol,
    set: Option<OpenSet>,
    /// Records of every kind (the v9 header count).
    records: u32,
    /// Data and options data records (what IPFIX sequence numbers count).
    data_records: u32,
    ctx: Ctx<'a>,
    align: bool,
    max_len: usize,
}

impl std::fmt::Debug for MessageBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageBuilder")
            .field("protocol", &self.protocol)
            .field("len", &self.len())
            .field("open_set", &self.set.map(|s| s.id))
            .field("records", &self.records)
            .field("data_records", &self.data_records)
            .field("align", &self.align)
            .field("force_long", &self.ctx.force_long)
            .field("max_len", &self.max_len)
            .finish()
    }
}

impl<'a> MessageBuilder<'a> {
    /// Start an IPFIX message at the end of `out`. The header is written as
    /// given, with version 10; `length` is filled in by `finish`.
    pub fn ipfix(out: &'a mut Vec<u8>, header: IpfixHeader) -> Self {
        let h = IpfixHeader {
            version: 10,
            length: 0,
            ..header
        };
        Self::start(out, Protocol::Ipfix, &h.to_bytes())
    }

    /// Start a NetFlow v9 packet at the end of `out`. The header is written
    /// as given, with version 9; `count` is filled in by `finish`.
    pub fn v9(out: &'a mut Vec<u8>, header: V9Header) -> Self {
        let h = V9Header {
            version: 9,
            count: 0,
            ..header
        };
        Self::start(out, Protocol::V9, &h.to_bytes())
    }

    /// Start a message with a parsed header (v9 or IPFIX).
    pub fn new(out: &'a mut Vec<u8>, header: &Header) -> Result<Self, EncodeError> {
        match header {
            Header::V9(h) => Ok(Self::v9(out, *h)),
            Header::Ipfix(h) => Ok(Self::ipfix(out, *h)),
            _ => Err(EncodeError::Unsupported(
                "v1/v5/v7 have no sets; use emit_fixed or emit_v5",
            )),
        }
    }

    fn start(out: &'a mut Vec<u8>, protocol: Protocol, header: &[u8]) -> Self {
        let start = out.len();
        out.extend_from_slice(header);
        MessageBuilder {
            out,
            start,
            protocol,
            set: None,
            records: 0,
            data_records: 0,
            ctx: Ctx::default(),
            align: false,
            max_len: MAX_MESSAGE_LEN,
        }
    }

    /// Where sub-template lists find their templates (e.g. a
    /// [`crate::cache::TemplateScope`], a `Vec<Arc<Template>>`).
    pub fn with_templates(mut self, templates: &'a dyn TemplateLookup) -> Self {
        self.ctx.templates = Some(templates);
        self
    }

    /// Pad every set with zeros to a multiple of 4 bytes (RFC 3954 section
    /// 5.3, RFC 7011 section 3.3.1). Off by default. A data set whose
    /// records are shorter than the padding it would need stays unpadded.
    pub fn align_sets(mut self, on: bool) -> Self {
        self.align = on;
        self
    }

    /// Write every variable-length value with the 3-byte length form, as
    /// RFC 7011 section 7 allows for any length.
    pub fn force_long_lengths(mut self, on: bool) -> Self {
        self.ctx.force_long = on;
        self
    }

    /// Largest message to build (e.g. a path MTU less IP and UDP headers);
    /// at most and by default 65535.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.min(MAX_MESSAGE_LEN);
        self
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Bytes written so far, header included (the open set without padding).
    pub fn len(&self) -> usize {
        self.out.len() - self.start
    }

    /// True while nothing but the header is written.
    pub fn is_empty(&self) -> bool {
        self.len() == self.header_len()
    }

    fn header_len(&self) -> usize {
        match self.protocol {
            Protocol::V9 => V9Header::LEN,
            _ => IpfixHeader::LEN,
        }
    }

    /// Records of every kind so far: template, options template and data
    /// records (the v9 header count, RFC 3954 section 5.1).
    pub fn record_count(&self) -> usize {
        self.records as usize
    }

    /// Data and options data records so far (what the next IPFIX message's
    /// sequence number adds, RFC 7011 section 3.1).
    pub fn data_record_count(&self) -> usize {
        self.data_records as usize
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            len: self.out.len(),
            set: self.set,
            records: self.records,
            data_records: self.data_records,
        }
    }

    /// Undo everything since `checkpoint` (taken from this builder). A
    /// checkpoint past the current end (taken after an earlier point rolled
    /// back to) is ignored.
    pub fn rollback(&mut self, checkpoint: Checkpoint) {
        if checkpoint.len > self.out.len() || checkpoint.len < self.start + self.header_len() {
            return;
        }
        self.out.truncate(checkpoint.len);
        self.set = checkpoint.set;
        self.records = checkpoint.records;
        self.data_records = checkpoint.data_records;
    }

    /// Run `f`; on error undo what it wrote.
    fn atomic(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), EncodeError>,
    ) -> Result<&mut Self, EncodeError> {
        let cp = self.checkpoint();
        match f(self).and_then(|()| self.check_len()) {
            Ok(()) => Ok(self),
            Err(e) => {
                self.rollback(cp);
                Err(e)
            }
        }
    }

    /// The message with the open set's padding must fit `max_len`.
    fn check_len(&self) -> Result<(), EncodeError> {
        let pad = self.set.map_or(0, |s| self.auto_padding(&s));
        let length = self.len() + pad;
        if length > self.max_len {
            return Err(EncodeError::MessageTooLong {
                length,
                limit: self.max_len,
            });
        }
        if self.protocol == Protocol::V9 && self.records > u16::MAX as u32 {
            return Err(EncodeError::TooManyRecords {
                count: self.records as usize,
            });
        }
        Ok(())
    }

    fn auto_padding(&self, s: &OpenSet) -> usize {
        if !self.align {
            return 0;
        }
        let pad = (4 - (self.out.len() - s.start) % 4) % 4;
        if s.min_record_len > 0 && pad >= s.min_record_len {
            0
        } else {
            pad
        }
    }

    /// Continue the open set if it has this id, else close it and open one.
    fn open_set(&mut self, id: u16, min_record_len: usize) -> Result<(), EncodeError> {
        if let Some(s) = self.set {
            if s.id == id {
                return Ok(());
            }
            self.close_set(None)?;
        }
        self.set = Some(OpenSet {
            start: self.out.len(),
            id,
            min_record_len,
        });
        self.out.extend_from_slice(&id.to_be_bytes());
        self.out.extend_from_slice(&[0, 0]);
        Ok(())
    }

    fn close_set(&mut self, padding: Option<usize>) -> Result<(), EncodeError> {
        let Some(s) = self.set else {
            return Ok(());
        };
        let pad = match padding {
            Some(p) if s.min_record_len > 0 && p >= s.min_record_len => {
                return Err(EncodeError::PaddingTooLong {
                    set_id: s.id,
                    padding: p,
                    min_record_len: s.min_record_len,
                })
            }
            Some(p) => p,
            None => self.auto_padding(&s),
        };
        let length = self.out.len() - s.start + pad;
        if length > u16::MAX as usize {
            return Err(EncodeError::SetTooLong {
                set_id: s.id,
                length,
            });
        }
        let total = self.len() + pad;
        if total > self.max_len {
            return Err(EncodeError::MessageTooLong {
                length: total,
                limit: self.max_len,
            });
        }
        self.out.resize(self.out.len() + pad, 0);
        self.out[s.start + 2..s.start + 4].copy_from_slice(&(length as u16).to_be_bytes());
        self.set = None;
        Ok(())
    }

    /// Close the open set (padded if [`align_sets`](Self::align_sets)); the
    /// next item starts a new set even if it has the same set id.
    pub fn end_set(&mut self) -> Result<&mut Self, EncodeError> {
        self.atomic(|m| m.close_set(None))
    }

    /// Close the open set with exactly `padding` zero bytes. A data set's
    /// padding must be shorter than its shortest record.
    pub fn end_set_padded(&mut self, padding: usize) -> Result<&mut Self, EncodeError> {
        self.atomic(|m| m.close_set(Some(padding)))
    }

    /// Announce a template: a template record, or an options template
    /// record for an options template.
    pub fn template(&mut self, template: &Template) -> Result<&mut Self, EncodeError> {
        let specs: Vec<FieldSpec> = template.specs().collect();
        match template.kind {
            TemplateKind::Data => self.template_record(template.id, &specs),
            TemplateKind::Options => {
                self.options_template_record(template.id, template.scope_count, &specs)
            }
        }
    }

    /// A template record (RFC 3954 section 5.2, RFC 7011 section 3.4.1).
    pub fn template_record(
        &mut self,
        template_id: u16,
        fields: &[FieldSpec],
    ) -> Result<&mut Self, EncodeError> {
        self.any_template_record(template_id, None, fields)
    }

    /// An options template record (RFC 3954 section 6.1, RFC 7011 section
    /// 3.4.2.2): the first `scope_count` fields are scope fields.
    pub fn options_template_record(
        &mut self,
        template_id: u16,
        scope_count: u16,
        fields: &[FieldSpec],
    ) -> Result<&mut Self, EncodeError> {
        self.any_template_record(template_id, Some(scope_count), fields)
    }

    fn any_template_record(
        &mut self,
        template_id: u16,
        scope_count: Option<u16>,
        fields: &[FieldSpec],
    ) -> Result<&mut Self, EncodeError> {
        check_template(self.protocol, template_id, scope_count, fields)?;
        let v9 = self.protocol == Protocol::V9;
        let set_id = match (v9, scope_count.is_some()) {
            (true, false) => v9::TEMPLATE_SET_ID,
            (true, true) => v9::OPTIONS_TEMPLATE_SET_ID,
            (false, false) => ipfix::TEMPLATE_SET_ID,
            (false, true) => ipfix::OPTIONS_TEMPLATE_SET_ID,
        };
        self.atomic(|m| {
            m.open_set(set_id, 0)?;
            if v9 && scope_count == Some(0) {
                // An options template without scope fields: the wire emitter
                // takes scope count 0 for a plain template record.
                m.out.extend_from_slice(&template_id.to_be_bytes());
                m.out.extend_from_slice(&0u16.to_be_bytes());
                m.out
                    .extend_from_slice(&(4 * fields.len() as u16).to_be_bytes());
                for f in fields {
                    m.out.extend_from_slice(&f.field.id.to_be_bytes());
                    m.out.extend_from_slice(&f.length.to_be_bytes());
                }
            } else if v9 {
                v9::TemplateRecord {
                    template_id,
                    scope_count: scope_count.unwrap_or(0),
                    fields: fields.to_vec(),
                }
                .emit(m.out);
            } else {
                ipfix::TemplateRecord {
                    template_id,
                    scope_count,
                    fields: fields.to_vec(),
                }
                .emit(m.out);
            }
            m.records += 1;
            Ok(())
        })
    }

    /// Withdraw a template (IPFIX only, RFC 7011 section 8.1): a template
    /// record with no fields, in a template set (`Data`) or options template
    /// set (`Options`).
    pub fn withdraw(
        &mut self,
        template_id: u16,
        kind: TemplateKind,
    ) -> Result<&mut Self, EncodeError> {
        if template_id < 256 {
            return Err(EncodeError::InvalidTemplate {
                template_id,
                reason: "template ids below 256 are reserved",
            });
        }
        self.withdrawal(template_id, kind)
    }

    /// Withdraw all templates (`Data`) or all options templates (`Options`)
    /// of the observation domain (IPFIX only, RFC 7011 section 8.1).
    pub fn withdraw_all(&mut self, kind: TemplateKind) -> Result<&mut Self, EncodeError> {
        let id = match kind {
            TemplateKind::Data => ipfix::TEMPLATE_SET_ID,
            TemplateKind::Options => ipfix::OPTIONS_TEMPLATE_SET_ID,
        };
        self.withdrawal(id, kind)
    }

    fn withdrawal(
        &mut self,
        template_id: u16,
        kind: TemplateKind,
    ) -> Result<&mut Self, EncodeError> {
        if self.protocol != Protocol::Ipfix {
            return Err(EncodeError::Unsupported(
                "template withdrawal is IPFIX only (RFC 7011 section 8.1)",
            ));
        }
        let set_id = match kind {
            TemplateKind::Data => ipfix::TEMPLATE_SET_ID,
            TemplateKind::Options => ipfix::OPTIONS_TEMPLATE_SET_ID,
        };
        self.atomic(|m| {
            m.open_set(set_id, 0)?;
            ipfix::TemplateRecord {
                template_id,
                scope_count: None,
                fields: Vec::new(),
            }
            .emit(m.out);
            Ok(())
        })
    }

    /// Start a new data set for `template` (closing the open set, even one
    /// of the same template). Records added next go into it; a set left
    /// without records is sent empty.
    pub fn data_set(&mut self, template: &Template) -> Result<&mut Self, EncodeError> {
        check_data_template(template)?;
        self.atomic(|m| {
            m.close_set(None)?;
            m.open_set(template.id, template.min_record_len.max(1))
        })
    }

    fn data_record(&mut self, template: &Template, src: Source<'_>) -> Result<(), EncodeError> {
        check_data_template(template)?;
        self.open_set(template.id, template.min_record_len.max(1))?;
        record_into(self.out, template, src, self.ctx, 0)?;
        self.records += 1;
        self.data_records += 1;
        Ok(())
    }

    /// A data record (options data record for an options template) from an
    /// [`OwnedRecord`] as the decoder gives it: fields in template order,
    /// padding fields left out.
    pub fn record(
        &mut self,
        template: &Template,
        record: &OwnedRecord,
    ) -> Result<&mut Self, EncodeError> {
        self.atomic(|m| m.data_record(template, Source::Fields(&record.fields)))
    }

    /// A data record from values in template order (padding fields left out).
    pub fn values(
        &mut self,
        template: &Template,
        values: &[OwnedValue],
    ) -> Result<&mut Self, EncodeError> {
        self.atomic(|m| m.data_record(template, Source::Values(values)))
    }

    /// Data records of one template; all or none are added.
    pub fn records<'r>(
        &mut self,
        template: &Template,
        records: impl IntoIterator<Item = &'r OwnedRecord>,
    ) -> Result<&mut Self, EncodeError> {
        self.atomic(|m| {
            for r in records {
                m.data_record(template, Source::Fields(&r.fields))?;
            }
            Ok(())
        })
    }

    /// Close the open set and fill in the IPFIX message length or the v9
    /// record count. Returns the message length. On error the buffer holds
    /// an unfinished message: truncate it.
    pub fn finish(mut self) -> Result<usize, EncodeError> {
        self.close_set(None)?;
        self.check_len()?;
        let len = self.len();
        let field = self.start + 2..self.start + 4;
        match self.protocol {
            Protocol::V9 => self.out[field].copy_from_slice(&(self.records as u16).to_be_bytes()),
            _ => self.out[field].copy_from_slice(&(len as u16).to_be_bytes()),
        }
        Ok(len)
    }
}

fn check_data_template(template: &Template) -> Result<(), EncodeError> {
    if template.id < 256 {
        return Err(EncodeError::InvalidTemplate {
            template_id: template.id,
            reason: "data sets need a template id of 256 or more",
        });
    }
    Ok(())
}

/// What the decoder needs of a template record.
fn check_template(
    protocol: Protocol,
    template_id: u16,
    scope_count: Option<u16>,
    fields: &[FieldSpec],
) -> Result<(), EncodeError> {
    let bad = |reason| {
        Err(EncodeError::InvalidTemplate {
            template_id,
            reason,
        })
    };
    if template_id < 256 {
        return bad("template ids below 256 are reserved");
    }
    if fields.is_empty() {
        return bad("a template needs fields (IPFIX: no fields is a withdrawal)");
    }
    let max = if protocol == Protocol::V9 {
        // v9 options templates give lengths in bytes, 4 per field.
        u16::MAX as usize / 4
    } else {
        u16::MAX as usize
    };
    if fields.len() > max {
        return bad("too many fields");
    }
    let min_len: usize = fields
        .iter()
        .map(|f| {
            if f.is_variable() {
                1
            } else {
                f.length as usize
            }
        })
        .sum();
    if min_len == 0 {
        return bad("records of zero length");
    }
    match scope_count {
        Some(0) if protocol == Protocol::Ipfix => {
            return bad("options templates need a scope field (RFC 7011 section 3.4.2.2)")
        }
        Some(n) if n as usize > fields.len() => return bad("more scope fields than fields"),
        _ => {}
    }
    for f in fields {
        match protocol {
            Protocol::V9 if f.field.enterprise != 0 => {
                return bad("NetFlow v9 has no enterprise-specific fields")
            }
            Protocol::Ipfix if f.field.id > 0x7fff => {
                return bad("IPFIX element ids are 15 bits (the top bit marks enterprise fields)")
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::VARIABLE_LENGTH;
    use crate::{parse_packet, TemplateCache, TemplateChange};

    fn ipfix_template(id: u16, specs: &[FieldSpec]) -> Template {
        Template::compile(Protocol::Ipfix, id, TemplateKind::Data, 0, specs).unwrap()
    }

    #[test]
    fn ipfix_message_matches_rfc7011_layout() {
        // Template 256: sourceIPv4Address(8)/4, interfaceName(82)/varlen.
        let t = ipfix_template(
            256,
            &[
                FieldSpec::new(0, 8, 4),
                FieldSpec::new(0, 82, VARIABLE_LENGTH),
            ],
        );
        let header = IpfixHeader {
            export_time: 0x01020304,
            sequence: 5,
            observation_domain: 6,
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut m = MessageBuilder::ipfix(&mut out, header);
        m.template(&t).unwrap();
        m.values(
            &t,
            &[
                OwnedValue::Ipv4([10, 0, 0, 1].into()),
                OwnedValue::String("ab".into()),
            ],
        )
        .unwrap();
        // The same string in the 3-byte form (RFC 7011 section 7, figure R).
        let rec = OwnedRecord {
            template_id: 256,
            options: false,
            fields: vec![
                crate::OwnedField::new(
                    "sourceIPv4Address",
                    "8",
                    false,
                    OwnedValue::Ipv4([10, 0, 0, 2].into()),
                ),
                crate::OwnedField {
                    long_length: true,
                    ..crate::OwnedField::new(
                        "interfaceName",
                        "82",
                        false,
                        OwnedValue::String("ab".into()),
                    )
                },
            ],
        };
        m.record(&t, &rec).unwrap();
        assert_eq!(m.data_record_count(), 2);
        assert_eq!(m.finish().unwrap(), 52);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            // message header: version 10, length 57, export time, sequence 5, domain 6
            0, 10, 0, 52, 1, 2, 3, 4, 0, 0, 0, 5, 0, 0, 0, 6,
            // template set (id 2, length 16): template 256, 2 fields
            0, 2, 0, 16, 1, 0, 0, 2, 0, 8, 0, 4, 0, 82, 0xff, 0xff,
            // data set 256, length 20
            1, 0, 0, 20,
            10, 0, 0, 1, 2, b'a', b'b',
            10, 0, 0, 2, 255, 0, 2, b'a', b'b',
        ];
        assert_eq!(out, expected);
        let mut cache = TemplateCache::new();
        let p = parse_packet(&out, &mut cache).unwrap();
        assert!(p.errors.is_empty());
        let recs: Vec<_> = p.records().map(|r| r.to_owned_record()).collect();
        assert!(!recs[0].fields[1].long_length);
        assert_eq!(recs[1], rec);
    }

    #[test]
    fn v9_count_includes_template_records_and_options() {
        // RFC 3954 section 6.1: options template 257, scope System(1)/4, SAMPLING_INTERVAL(34)/4.
        let specs = [FieldSpec::new(0, 1, 4), FieldSpec::new(0, 34, 4)];
        let ot = Template::compile(Protocol::V9, 257, TemplateKind::Options, 1, &specs).unwrap();
        let t = Template::compile(
            Protocol::V9,
            256,
            TemplateKind::Data,
            0,
            &[FieldSpec::new(0, 4, 1)],
        )
        .unwrap();
        let mut out = Vec::new();
        let mut m = MessageBuilder::v9(
            &mut out,
            V9Header {
                sequence: 3,
                source_id: 9,
                ..Default::default()
            },
        )
        .align_sets(true);
        m.template(&t).unwrap().template(&ot).unwrap();
        m.values(
            &ot,
            &[OwnedValue::Unsigned(0x0a000001), OwnedValue::Unsigned(100)],
        )
        .unwrap();
        m.values(&t, &[OwnedValue::Unsigned(6)]).unwrap();
        m.values(&t, &[OwnedValue::Unsigned(17)]).unwrap();
        assert!(m.withdraw(300, TemplateKind::Data).is_err());
        assert_eq!(m.finish().unwrap(), 20 + 12 + 20 + 12 + 6);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0, 9, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9,
            // template flowset
            0, 0, 0, 12, 1, 0, 0, 1, 0, 4, 0, 1,
            // options template flowset: 257, scope length 4, option length 4; 18 bytes padded to 20
            0, 1, 0, 20, 1, 1, 0, 4, 0, 4, 0, 1, 0, 4, 0, 34, 0, 4, 0, 0,
            // options data
            1, 1, 0, 12, 10, 0, 0, 1, 0, 0, 0, 100,
            // data: 4 + 2 records of 1 byte; padding 2 would read as records: none
            1, 0, 0, 6, 6, 17,
        ];
        assert_eq!(out, expected);
        let p = parse_packet(&out, &mut TemplateCache::new()).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.record_count(), 3);
    }

    #[test]
    fn withdrawals_and_padding() {
        let t = ipfix_template(300, &[FieldSpec::new(0, 1, 4)]);
        let mut out = Vec::new();
        let mut m = MessageBuilder::ipfix(&mut out, IpfixHeader::default());
        m.template(&t).unwrap().end_set().unwrap();
        m.values(&t, &[OwnedValue::Unsigned(1)]).unwrap();
        assert!(matches!(
            m.end_set_padded(4),
            Err(EncodeError::PaddingTooLong {
                set_id: 300,
                padding: 4,
                min_record_len: 4
            })
        ));
        m.end_set_padded(3).unwrap();
        m.withdraw(300, TemplateKind::Data).unwrap();
        m.withdraw_all(TemplateKind::Options).unwrap();
        m.finish().unwrap();
        #[rustfmt::skip]
        assert_eq!(&out[16..], &[
            0, 2, 0, 12, 1, 44, 0, 1, 0, 1, 0, 4,
            1, 44, 0, 11, 0, 0, 0, 1, 0, 0, 0,
            0, 2, 0, 8, 1, 44, 0, 0,
            0, 3, 0, 8, 0, 3, 0, 0,
        ]);
        let mut cache = TemplateCache::new();
        let p = parse_packet(&out, &mut cache).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.record_count(), 1);
        assert_eq!(p.templates.len(), 2);
        assert_eq!(p.templates[1].change, TemplateChange::Withdrawn);
    }

    #[test]
    fn errors_leave_the_message_unchanged() {
        let t = ipfix_template(256, &[FieldSpec::new(0, 7, 2)]);
        let mut out = Vec::new();
        let mut m = MessageBuilder::ipfix(&mut out, IpfixHeader::default()).max_len(16 + 4 + 4);
        m.values(&t, &[OwnedValue::Unsigned(1)]).unwrap();
        let before = m.len();
        assert!(m.values(&t, &[OwnedValue::Unsigned(70000)]).is_err());
        assert_eq!(m.len(), before);
        m.values(&t, &[OwnedValue::Unsigned(2)]).unwrap();
        assert!(matches!(
            m.values(&t, &[OwnedValue::Unsigned(3)]),
            Err(EncodeError::MessageTooLong {
                length: 26,
                limit: 24
            })
        ));
        // A record that opens a new set is undone with its set header.
        let t2 = ipfix_template(257, &[FieldSpec::new(0, 4, 1)]);
        assert!(m.values(&t2, &[OwnedValue::Unsigned(1)]).is_err());
        assert_eq!(m.len(), 24);
        assert!(m.template_record(255, &[FieldSpec::new(0, 1, 4)]).is_err());
        assert!(m.template_record(256, &[FieldSpec::new(0, 1, 0)]).is_err());
        assert!(m
            .options_template_record(256, 0, &[FieldSpec::new(0, 1, 4)])
            .is_err());
        assert!(m
            .template_record(256, &[FieldSpec::new(0, 0x8001, 4)])
            .is_err());
        assert_eq!(m.data_record_count(), 2);
        assert_eq!(m.finish().unwrap(), 24);
        assert_eq!(&out[16..], &[1, 0, 0, 8, 0, 1, 0, 2]);
    }
}
