//! Data sets and data records: zero-copy views decoded with a compiled
//! [`Template`] (RFC 3954 section 5.3, RFC 7011 section 3.4.3).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::cache::TemplateScope;
use crate::list::List;
use crate::template::VARIABLE_LENGTH;
use crate::template::{ColumnStep, Template, TemplateField, TemplateKind};
use crate::value::{Op, Value, ValueKind};
use crate::wire::{v1, v5, v7};
use crate::{ErrorKind, Protocol};

/// Reads the length prefix of a variable-length field at `pos`
/// (RFC 7011 section 7: one byte < 255, or 255 followed by a 16-bit length).
/// Returns (start of the value, value length), or None if it runs past `data`.
#[inline]
pub(crate) fn read_varlen(data: &[u8], pos: usize) -> Option<(usize, usize)> {
    let first = *data.get(pos)?;
    let (start, len) = if first < 255 {
        (pos + 1, first as usize)
    } else {
        let hi = *data.get(pos + 1)?;
        let lo = *data.get(pos + 2)?;
        (pos + 3, u16::from_be_bytes([hi, lo]) as usize)
    };
    if start + len > data.len() {
        None
    } else {
        Some((start, len))
    }
}

/// Length of the record of `template` starting at `data[0]`, or None if it runs past the end.
#[inline]
pub(crate) fn record_len(template: &Template, data: &[u8]) -> Option<usize> {
    if let Some(len) = template.record_len {
        return (len <= data.len()).then_some(len);
    }
    let mut pos = 0usize;
    for f in template.fields.iter() {
        if f.spec.is_variable() {
            let (start, len) = read_varlen(data, pos)?;
            pos = start + len;
        } else {
            pos += f.spec.length as usize;
            if pos > data.len() {
                return None;
            }
        }
    }
    Some(pos)
}

/// Outcome of scanning a data set body: how many whole records it holds, how
/// many bytes they take, and a problem with what follows them, if any.
pub(crate) struct SetScan {
    pub count: usize,
    pub used: usize,
    pub problem: Option<ErrorKind>,
}

/// Counts the records of a data set body. Bytes after the last record that
/// cannot hold another record are padding (RFC 7011 section 3.3.1); if they
/// are not zero they are reported, never silently taken as data.
///
/// Inlined for the fixed-length records of nearly every template (a
/// division and a padding check per set); variable-length records are
/// walked out of line.
#[inline(always)]
pub(crate) fn scan_records(template: &Template, body: &[u8]) -> SetScan {
    if let Some(len) = template.record_len {
        // compile() guarantees len > 0.
        let count = body.len() / len;
        let used = count * len;
        let rest = &body[used..];
        let problem = if rest.iter().any(|&b| b != 0) {
            Some(ErrorKind::NonZeroPadding {
                template_id: template.id,
                length: rest.len(),
            })
        } else {
            None
        };
        return SetScan {
            count,
            used,
            problem,
        };
    }
    scan_variable_records(template, body)
}

/// [`scan_records`] for templates with variable-length fields.
#[inline(never)]
fn scan_variable_records(template: &Template, body: &[u8]) -> SetScan {
    let mut pos = 0;
    let mut count = 0;
    while pos < body.len() {
        let rest = &body[pos..];
        if rest.len() < template.min_record_len {
            break;
        }
        match record_len(template, rest) {
            Some(len) => {
                pos += len;
                count += 1;
            }
            None => {
                if rest.iter().all(|&b| b == 0) {
                    break;
                }
                return SetScan {
                    count,
                    used: pos,
                    problem: Some(ErrorKind::RecordTruncated {
                        template_id: template.id,
                    }),
                };
            }
        }
    }
    let rest = &body[pos..];
    let problem = if rest.iter().any(|&b| b != 0) {
        Some(ErrorKind::NonZeroPadding {
            template_id: template.id,
            length: rest.len(),
        })
    } else {
        None
    };
    SetScan {
        count,
        used: pos,
        problem,
    }
}

/// A data set (data flowset) with its template: a view of the records it holds.
#[derive(Debug, Clone)]
pub struct DataSet<'a> {
    /// The template the records follow.
    pub template: Arc<Template>,
    /// Template scope at decode time, kept only for templates with RFC 6313
    /// lists (sub-template lists name other templates); saves an atomic
    /// reference count per set for all others.
    pub(crate) scope: Option<Arc<TemplateScope>>,
    /// Byte offset of the set header in the export packet (0 for v1/v5/v7).
    pub offset: usize,
    /// The records region (set header and padding excluded).
    pub(crate) body: &'a [u8],
    /// Number of records in the set.
    pub record_count: usize,
}

impl<'a> DataSet<'a> {
    pub(crate) fn new(
        template: Arc<Template>,
        scope: Option<Arc<TemplateScope>>,
        offset: usize,
        body: &'a [u8],
        record_count: usize,
    ) -> Self {
        DataSet {
            template,
            scope,
            offset,
            body,
            record_count,
        }
    }

    /// The set as a [`DataSetView`]: the same records, columns and bytes.
    #[inline]
    pub fn view(&self) -> DataSetView<'_> {
        DataSetView {
            template: &self.template,
            scope: self
                .scope
                .as_deref()
                .unwrap_or_else(|| TemplateScope::empty_static()),
            offset: self.offset,
            body: self.body,
            record_count: self.record_count,
        }
    }

    /// Iterate the records without allocating.
    #[inline]
    pub fn records(&self) -> Records<'_> {
        self.view().records()
    }

    /// The records column by column, for templates whose fields all have a
    /// fixed length and hold no RFC 6313 list (every v1/v5/v7 template and
    /// most v9 and IPFIX ones; None otherwise: use [`records`](Self::records)).
    /// One [`Column`] per field of [`Record::fields`] (padding skipped), in
    /// template order; a column yields that field's value in every record,
    /// in record order: the same values as `records()` then `fields()`,
    /// transposed. Reading a set column by column decodes each field with one
    /// dispatch per set instead of one per record.
    pub fn columns(&self) -> Option<Columns<'_>> {
        // Not through `view()`: columns need no scope, and finding the
        // empty one is an atomic load per set.
        columns_of(&self.template, self.body, self.record_count)
    }

    /// True for options data (records of an options template).
    pub fn is_options(&self) -> bool {
        self.template.kind == TemplateKind::Options
    }

    /// The template id (0 for v1/v5/v7 fixed records).
    pub fn template_id(&self) -> u16 {
        self.template.id
    }

    /// The bytes of the records region.
    pub fn bytes(&self) -> &'a [u8] {
        self.body
    }
}

/// A data set whose template is borrowed (from the [`TemplateCache`] while
/// [`visit_packet`] walks a packet, or from a [`DataSet`] through
/// [`DataSet::view`]): the records of one data set (RFC 3954 section 5.3,
/// RFC 7011 section 3.3), read as [`DataSet`] reads them, without the
/// reference count a [`DataSet`] holds on its template.
///
/// [`TemplateCache`]: crate::TemplateCache
/// [`visit_packet`]: crate::packet::visit_packet
#[derive(Debug, Clone, Copy)]
pub struct DataSetView<'s> {
    template: &'s Template,
    /// For the sub-template lists of RFC 6313 (an empty scope for templates
    /// without lists).
    scope: &'s TemplateScope,
    /// Byte offset of the set header in the export packet (0 for v1/v5/v7).
    pub offset: usize,
    /// The whole records (set header and padding excluded).
    body: &'s [u8],
    /// Number of records in the set.
    pub record_count: usize,
}

impl<'s> DataSetView<'s> {
    #[inline]
    pub(crate) fn new(
        template: &'s Template,
        scope: &'s TemplateScope,
        offset: usize,
        body: &'s [u8],
        record_count: usize,
    ) -> Self {
        DataSetView {
            template,
            scope,
            offset,
            body,
            record_count,
        }
    }

    /// The template the records follow.
    pub fn template(&self) -> &'s Template {
        self.template
    }

    /// Iterate the records without allocating.
    #[inline]
    pub fn records(&self) -> Records<'s> {
        Records {
            template: self.template,
            scope: self.scope,
            rest: self.body,
            remaining: self.record_count,
        }
    }

    /// The records column by column: see [`DataSet::columns`] (the same
    /// columns).
    #[inline]
    pub fn columns(&self) -> Option<Columns<'s>> {
        columns_of(self.template, self.body, self.record_count)
    }

    /// True for options data (records of an options template).
    pub fn is_options(&self) -> bool {
        self.template.kind == TemplateKind::Options
    }

    /// The template id (0 for v1/v5/v7 fixed records).
    pub fn template_id(&self) -> u16 {
        self.template.id
    }

    /// The bytes of the records region (whole records only).
    pub fn bytes(&self) -> &'s [u8] {
        self.body
    }

    /// NetFlow v5 only (empty otherwise): the flow records as typed views
    /// with every field at a constant offset, as
    /// [`ExportPacket::v5_records`](crate::ExportPacket::v5_records).
    pub fn v5_records(&self) -> impl Iterator<Item = v5::record::RecordView<&'s [u8]>> {
        self.fixed_bytes(Protocol::V5)
            .chunks_exact(v5::RECORD_LEN)
            .map(v5::record::RecordView::new_unchecked)
    }

    /// NetFlow v1 only (empty otherwise): see [`v5_records`](Self::v5_records).
    pub fn v1_records(&self) -> impl Iterator<Item = v1::record::RecordView<&'s [u8]>> {
        self.fixed_bytes(Protocol::V1)
            .chunks_exact(v1::RECORD_LEN)
            .map(v1::record::RecordView::new_unchecked)
    }

    /// NetFlow v7 only (empty otherwise): see [`v5_records`](Self::v5_records).
    pub fn v7_records(&self) -> impl Iterator<Item = v7::record::RecordView<&'s [u8]>> {
        self.fixed_bytes(Protocol::V7)
            .chunks_exact(v7::RECORD_LEN)
            .map(v7::record::RecordView::new_unchecked)
    }

    /// The records of a v1/v5/v7 set of `protocol` (fixed templates only:
    /// a v9 or IPFIX template of the same length is not such a set), else
    /// empty.
    fn fixed_bytes(&self, protocol: Protocol) -> &'s [u8] {
        let fixed = self.template.protocol == protocol
            && matches!(protocol, Protocol::V1 | Protocol::V5 | Protocol::V7);
        if fixed {
            self.body
        } else {
            &[]
        }
    }
}

/// The columns of `record_count` records of `template` in `body`, if the
/// template has them (see [`DataSet::columns`]).
#[inline]
fn columns_of<'s>(
    template: &'s Template,
    body: &'s [u8],
    record_count: usize,
) -> Option<Columns<'s>> {
    template.record_len?;
    if template.has_lists {
        return None;
    }
    // The template's record length as the column reads rely on it (see
    // `Template::column_stride`; equal to `record_len`, which its owner
    // may change). 0: no column is read.
    let stride = template.column_stride as usize;
    // Whole records only (scan_records cut the body at the last one); the
    // column reads rely on `body` being exactly `count` records of `stride`
    // bytes.
    let (body, count) = match record_count
        .checked_mul(stride)
        .filter(|&n| n > 0)
        .and_then(|n| body.get(..n))
    {
        Some(body) => (body, record_count),
        None => (&[][..], 0),
    };
    Some(Columns {
        steps: template.columns.iter(),
        fields: &template.fields,
        body,
        count,
        stride,
        by_spans: template.by_spans,
        fixed_only: template.fixed_only,
    })
}

/// Iterator over the records of a [`DataSet`].
#[derive(Debug, Clone)]
pub struct Records<'s> {
    template: &'s Template,
    scope: &'s TemplateScope,
    rest: &'s [u8],
    remaining: usize,
}

impl<'s> Iterator for Records<'s> {
    type Item = Record<'s>;

    #[inline]
    fn next(&mut self) -> Option<Record<'s>> {
        if self.remaining == 0 {
            return None;
        }
        // scan_records() proved `remaining` records fit; record_len cannot fail here,
        // but fall back to ending the iteration rather than panicking.
        let len = record_len(self.template, self.rest)?;
        let (data, rest) = self.rest.split_at(len);
        self.rest = rest;
        self.remaining -= 1;
        Some(Record {
            template: self.template,
            scope: self.scope,
            data,
            depth: 0,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Records<'_> {}

/// One data record: a view over its bytes and template.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub(crate) template: &'a Template,
    pub(crate) scope: &'a TemplateScope,
    pub(crate) data: &'a [u8],
    /// Structured data nesting depth of this record (0 = top level).
    pub(crate) depth: u8,
}

impl<'a> Record<'a> {
    pub fn template(&self) -> &'a Template {
        self.template
    }

    /// The record's raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Iterate `(field, value)` in template order, skipping padding fields.
    #[inline]
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            record: *self,
            index: 0,
            pos: 0,
        }
    }

    /// Calls `f` with every `(field, value)` pair of [`fields`](Self::fields),
    /// in the same order, with the same values (padding skipped; a record cut
    /// short ends early, as the iterator does). Faster than the iterator: for
    /// templates whose fields all have a fixed length (every v5 and most v9
    /// and IPFIX templates) it walks the compiled plan with each field at its
    /// precomputed offset, and inlined into the caller the [`Value`] is
    /// usually never built (the caller's `match` on it folds into the decode
    /// step of each field).
    #[inline]
    pub fn for_each_field<F: FnMut(&'a TemplateField, Value<'a>)>(&self, mut f: F) {
        let template = self.template;
        let data = self.data;
        match template.record_len {
            Some(len) if !template.has_lists && data.len() >= len => {}
            _ => {
                self.fields().for_each(|(field, value)| f(field, value));
                return;
            }
        }
        for (plan, field) in template.plan.iter().zip(template.fields.iter()) {
            // All fields have a fixed length, so every offset is known (not
            // u32::MAX) and offset + length <= record_len <= data.len(), as
            // checked once above: value_at's own check never fails here.
            if plan.op == Op::Skip {
                continue;
            }
            let start = plan.offset as usize;
            if !visit_at(plan.op, data, start, plan.length as usize, field, &mut f) {
                return;
            }
        }
    }

    /// The value of the first field with this output name (e.g. `"IN_BYTES"`,
    /// `"sourceIPv4Address"`).
    pub fn get(&self, name: &str) -> Option<Value<'a>> {
        self.fields().find(|(f, _)| f.name == name).map(|(_, v)| v)
    }

    /// The value of the first field with this IANA element id (enterprise 0).
    pub fn get_id(&self, id: u16) -> Option<Value<'a>> {
        self.fields()
            .find(|(f, _)| f.spec.field.enterprise == 0 && f.spec.field.id == id && !f.scope)
            .map(|(_, v)| v)
    }

    #[inline]
    pub(crate) fn value_of(&self, field: &TemplateField, bytes: &'a [u8]) -> Value<'a> {
        match field.kind {
            ValueKind::BasicList | ValueKind::SubTemplateList | ValueKind::SubTemplateMultiList => {
                match List::parse(field.kind, bytes, self.scope, self.depth) {
                    Some(list) => Value::List(list),
                    None => Value::Bytes(bytes),
                }
            }
            kind => Value::decode(kind, bytes),
        }
    }
}

/// Iterator over the fields of a [`Record`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    record: Record<'a>,
    index: usize,
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a TemplateField, Value<'a>);

    // Always inlined: out of line (as it became once for_each_field also
    // used it) every field's 56-byte (field, Value) pair went through memory
    // and the iterator cost twice the instructions.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let template = self.record.template;
        let data = self.record.data;
        loop {
            let plan = *template.plan.get(self.index)?;
            let field = template.fields.get(self.index)?;
            self.index += 1;
            let (start, len) = if plan.length == VARIABLE_LENGTH {
                read_varlen(data, self.pos)?
            } else if plan.offset != u32::MAX {
                (plan.offset as usize, plan.length as usize)
            } else {
                (self.pos, plan.length as usize)
            };
            let end = start + len;
            let bytes = data.get(start..end)?;
            self.pos = end;
            let value = match plan.op {
                Op::Skip => continue,
                Op::List => self.record.value_of(field, bytes),
                op => Value::from_op(op, bytes),
            };
            return Some((field, value));
        }
    }
}

/// Calls `f` with the value of a field of `len` bytes at `data[start..]`
/// decoded with `op` (not `Op::List`, `Op::Skip`); false if it runs past
/// `data`. One bounds check per field: the fixed-size ops load exactly their
/// length, which is the field's length by construction of [`Op::new`]. `f`
/// is called in each arm, so once inlined the `Value` it gets has a known
/// variant and the caller's `match` on it folds away.
#[inline(always)]
fn visit_at<'a, F: FnMut(&'a TemplateField, Value<'a>)>(
    op: Op,
    data: &'a [u8],
    start: usize,
    len: usize,
    field: &'a TemplateField,
    f: &mut F,
) -> bool {
    #[inline(always)]
    fn array<const N: usize>(data: &[u8], start: usize) -> Option<[u8; N]> {
        data.get(start..start.checked_add(N)?)?.try_into().ok()
    }
    macro_rules! emit {
        ($e:expr) => {
            match $e {
                Some(v) => {
                    f(field, v);
                    true
                }
                None => false,
            }
        };
    }
    match op {
        Op::U8 => emit!(data.get(start).map(|&b| Value::Unsigned(b as u64))),
        Op::U16 => emit!(array(data, start).map(|a| Value::Unsigned(u16::from_be_bytes(a) as u64))),
        Op::U32 => emit!(array(data, start).map(|a| Value::Unsigned(u32::from_be_bytes(a) as u64))),
        Op::U64 => emit!(array(data, start).map(|a| Value::Unsigned(u64::from_be_bytes(a)))),
        Op::Ipv4 => emit!(array::<4>(data, start).map(|a| Value::Ipv4(Ipv4Addr::from(a)))),
        Op::Ipv6 => emit!(array::<16>(data, start).map(|a| Value::Ipv6(Ipv6Addr::from(a)))),
        Op::Mac => emit!(array(data, start).map(Value::Mac)),
        Op::DtSec if len == 4 => {
            emit!(array(data, start).map(|a| Value::DateTimeSeconds(u32::from_be_bytes(a) as u64)))
        }
        Op::DtMilli if len == 8 => {
            emit!(array(data, start).map(|a| Value::DateTimeMilliseconds(u64::from_be_bytes(a))))
        }
        op => emit!(start
            .checked_add(len)
            .and_then(|end| data.get(start..end))
            .map(|b| Value::from_op(op, b))),
    }
}

/// The columns of a [`DataSet`]: see [`DataSet::columns`].
#[derive(Debug, Clone)]
pub struct Columns<'s> {
    /// The template's column steps (padding left out when it was compiled).
    steps: core::slice::Iter<'s, ColumnStep>,
    fields: &'s [TemplateField],
    /// The records as one slice (`count` records of `stride` bytes, as
    /// `columns_of` cuts it), how many there are and their length: no
    /// `chunks_exact` (its division per set, its 4-instruction step per
    /// value).
    body: &'s [u8],
    count: usize,
    stride: usize,
    /// The template's `by_spans`.
    by_spans: bool,
    /// The template's `fixed_only`: every column is of a fixed-size op.
    fixed_only: bool,
}

impl<'s> Columns<'s> {
    /// Calls `f` with the field and the value of every remaining column, in
    /// column order, each column's values in record order: the pairs
    /// `for c in columns { c.for_each(|v| f(c.field(), v)) }` gives, with
    /// fewer dispatches where that pays. Consecutive columns decoded the
    /// same way that lie side by side in the record (six 4-byte counters,
    /// two addresses, ...) make a span; in a set of one or two records of a
    /// template with at most half as many spans as columns, each span is
    /// read with one dispatch, its columns' values one after the other
    /// from the record(s). Such sets (some exporters send one or two
    /// records a set) spent most of their time starting columns: one
    /// dispatch, an indirect jump, per column. Other sets are read column
    /// by column, as [`Column::for_each`] reads them.
    #[inline]
    pub fn for_each_value<F: FnMut(&'s TemplateField, Value<'s>)>(self, f: F) {
        // Templates of fixed-size ops only (nearly all) get column loops
        // with no rare op's reader in them (see `few_columns`).
        if self.fixed_only {
            self.for_each_value_of::<true, F>(f)
        } else {
            self.for_each_value_of::<false, F>(f)
        }
    }

    /// [`for_each_value`](Self::for_each_value), with `FIXED` true only if
    /// every column is of a fixed-size op (`fixed_only`).
    #[inline(always)]
    fn for_each_value_of<const FIXED: bool, F: FnMut(&'s TemplateField, Value<'s>)>(
        self,
        mut f: F,
    ) {
        let Columns {
            steps,
            fields,
            body,
            count,
            stride,
            by_spans,
            fixed_only,
        } = self;
        if count == 0 {
            return;
        }
        if count <= 2 && by_spans {
            // Span by span (`span_columns`), this path before the column
            // by column one: either way round cost 14 to 50 instructions a
            // record more, on one path or the other (registers). One walk
            // for sets of one record, one for two: `count` and its test
            // then stay out of the span loop (a register and two
            // instructions a span).
            if count == 1 {
                span_columns::<false, FIXED, F>(steps.as_slice(), fields, body, stride, f);
            } else {
                span_columns::<true, FIXED, F>(steps.as_slice(), fields, body, stride, f);
            }
            return;
        }
        // Column by column. The fields of the columns left: in a template without padding
        // (the usual case) the column steps name the fields from the
        // first one on, one each, so the steps and those fields go in
        // step (no index to check per column).
        let steps = steps.as_slice();
        let tail = steps
            .first()
            .and_then(|s| fields.get(s.field as usize..))
            .unwrap_or(&[]);
        if tail.len() == steps.len() {
            // Sets of 1 to 6 records by `few_columns`, longer ones by loops.
            match count {
                1 => few_columns::<1, FIXED, F>(steps, tail, body, stride, f),
                2 => few_columns::<2, FIXED, F>(steps, tail, body, stride, f),
                3 => few_columns::<3, FIXED, F>(steps, tail, body, stride, f),
                4 => few_columns::<4, FIXED, F>(steps, tail, body, stride, f),
                5 => few_columns::<5, FIXED, F>(steps, tail, body, stride, f),
                6 => few_columns::<6, FIXED, F>(steps, tail, body, stride, f),
                _ => many_columns::<FIXED, F>(steps, tail, body, stride, f),
            }
        } else {
            for c in (Columns {
                steps: steps.iter(),
                fields,
                body,
                count,
                stride,
                by_spans,
                fixed_only,
            }) {
                let field = c.field();
                c.for_each(|v| f(field, v));
            }
        }
    }
}

/// The ops read by [`rare_column`] and [`rare_span`]: every op but the
/// fixed-size ones, each named (no `op =>` arm), so that a `match` on the
/// op is a jump table that covers all of them and needs no range check.
/// (`DtSec` and `DtMilli` of their standard lengths are matched by guarded
/// arms before this one in `read_column`.)
macro_rules! rare_ops {
    () => {
        Op::UInt
            | Op::Signed
            | Op::F32
            | Op::F64
            | Op::F64From32
            | Op::Bool
            | Op::Str
            | Op::Bytes
            | Op::DtSec
            | Op::DtMilli
            | Op::DtMicro
            | Op::DtNano
            | Op::List
            | Op::Skip
    };
}

/// The columns of a set of one record (`TWO` false) or two read by
/// spans ([`Columns::for_each_value`]): one dispatch a span, then its
/// columns' values one after the other. An index into the steps, not a
/// slice cut at each span (a slice cost more: registers).
///
/// Out of line, as [`few_columns`] and [`many_columns`]: once the rare
/// ops' reads were out of line ([`rare_span`]), this walk inlined into the
/// caller cost the seed IPFIX packet 413.6 instructions a record, out of
/// line 401.1 (callgrind, `decode_loop`).
#[inline(never)]
fn span_columns<'s, const TWO: bool, const FIXED: bool, F: FnMut(&'s TemplateField, Value<'s>)>(
    steps: &'s [ColumnStep],
    fields: &'s [TemplateField],
    body: &'s [u8],
    stride: usize,
    mut f: F,
) {
    // The records of the set (`body` holds them).
    let count = if TWO { 2 } else { 1 };
    let mut i = 0;
    while let Some(first) = steps.get(i) {
        // A span is `first` and the `run` steps after it
        // (template::spans).
        let n = first.run as usize + 1;
        i += n;
        // The span's columns: `$n` bytes each from `first.offset` on,
        // fields `first.field` on (template::spans).
        macro_rules! span {
            ($n:literal, |$a:ident| $value:expr) => {{
                let i = first.field as usize;
                let Some(span_fields) = fields.get(i..i + n) else {
                    return;
                };
                // The span's bytes, `$n` a column from `first.offset`,
                // end within the record (`Template::column_stride`
                // checks every span when the template is built):
                // no check here, in the first record or the second.
                let span = body.as_ptr().wrapping_add(first.offset as usize);
                for (k, field) in span_fields.iter().enumerate() {
                    // SAFETY: `k < n`, so the `$n` bytes at `k * $n`
                    // from the span's start are inside the span, so
                    // inside the first record, which `body` holds
                    // (`count >= 1`).
                    let $a = unsafe { span.add(k * $n).cast::<[u8; $n]>().read_unaligned() };
                    f(field, $value);
                    if TWO {
                        // Two records: each column's value in the
                        // first, then in the second.
                        // SAFETY: as above, in the second record
                        // (`count == 2`: `body` is two records).
                        let $a = unsafe {
                            span.add(stride + k * $n)
                                .cast::<[u8; $n]>()
                                .read_unaligned()
                        };
                        f(field, $value);
                    }
                }
            }};
        }
        match first.op {
            Op::U8 => span!(1, |a| Value::Unsigned(a[0] as u64)),
            Op::U16 => span!(2, |a| Value::Unsigned(u16::from_be_bytes(a) as u64)),
            Op::U32 => span!(4, |a| Value::Unsigned(u32::from_be_bytes(a) as u64)),
            Op::U64 => span!(8, |a| Value::Unsigned(u64::from_be_bytes(a))),
            Op::Ipv4 => span!(4, |a| Value::Ipv4(Ipv4Addr::from(a))),
            Op::Ipv6 => span!(16, |a| Value::Ipv6(Ipv6Addr::from(a))),
            Op::Mac => span!(6, |a| Value::Mac(a)),
            // Spans of these are only ever one column long. Dates of their
            // standard lengths read as `read_column` reads them (they are
            // `FIXED` ops).
            Op::DtSec if first.length == 4 => {
                span!(4, |a| Value::DateTimeSeconds(u32::from_be_bytes(a) as u64))
            }
            Op::DtMilli if first.length == 8 => {
                span!(8, |a| Value::DateTimeMilliseconds(u64::from_be_bytes(a)))
            }
            // Never with `FIXED`: no call in the loop (see `few_columns`).
            rare_ops!() if FIXED => {}
            rare_ops!() => {
                // Record by record, each value decoded by `from_op`
                // (`rare_span`).
                let span_steps = steps.get(i - n..i).unwrap_or(&[]);
                rare_span(span_steps, fields, body, stride, count, &mut f);
            }
        }
    }
}

/// The columns of a set of `COUNT` records (1 to 6: exporters that send a
/// set per template as flows end, pmacct), each column's values read by
/// straight-line code, one load a record: no per-value end test and step,
/// and no loop exit whose trip count changes from set to set (mispredicted
/// about once a column).
///
/// The rare ops' columns are read out of line ([`rare_column`]): inlined,
/// their checked loop took registers from every column's common path (the
/// offset spilled and reloaded, more moves): 326 -> 275 instructions a
/// record on pmacct's v9 sets once out.
///
/// Out of line, as [`many_columns`]: with both paths inlined into the
/// caller, LLVM kept the caller's accumulator in memory in the loop path
/// (a store per value: +8 % instructions on softflowd's sets, +14 % on the
/// seed v9 packets); with only this one out of line, it did so too (the
/// accumulator's address escapes into the call). Each out of line, each
/// gets `f` as its own argument.
///
/// `FIXED` (the template's `fixed_only`: every column of a fixed-size op,
/// nearly every template) leaves the rare ops' call out of the loop. With
/// the call in it, LLVM kept what `f` updates (the decode bench's
/// accumulator) in memory across the columns: each column loaded it,
/// waiting for the previous column's store. Without, it stays in a
/// register: pmacct's v9 sets (3.1 records) 44.5 -> 49.9 M records/s
/// (`decode_loop` mode `visit_columns_bench`, best of 3 alternated runs).
#[inline(never)]
fn few_columns<
    's,
    const COUNT: usize,
    const FIXED: bool,
    F: FnMut(&'s TemplateField, Value<'s>),
>(
    steps: &'s [ColumnStep],
    fields: &'s [TemplateField],
    body: &'s [u8],
    stride: usize,
    mut f: F,
) {
    for (step, field) in steps.iter().zip(fields) {
        // SAFETY: `body` is `COUNT` records of `stride` bytes (the caller's
        // `count`), and `stride` and `step` are those of one template as
        // `columns_of` set them (see `column_values`).
        unsafe { read_column::<COUNT, FIXED, _>(step, body, stride, |v| f(field, v)) };
    }
}

/// The columns of a set of 7 records or more, each read by a loop (two
/// records a turn, see [`column_values`]). Out of line: see
/// [`few_columns`].
#[inline(never)]
fn many_columns<'s, const FIXED: bool, F: FnMut(&'s TemplateField, Value<'s>)>(
    steps: &'s [ColumnStep],
    fields: &'s [TemplateField],
    body: &'s [u8],
    stride: usize,
    mut f: F,
) {
    for (step, field) in steps.iter().zip(fields) {
        // SAFETY: `body` is one or more records of `stride` bytes, and
        // `stride` and `step` are those of one template as `columns_of`
        // set them (see `column_values`).
        unsafe { read_column::<0, FIXED, _>(step, body, stride, |v| f(field, v)) };
    }
}

impl<'s> Iterator for Columns<'s> {
    type Item = Column<'s>;

    #[inline]
    fn next(&mut self) -> Option<Column<'s>> {
        Some(Column {
            step: self.steps.next()?,
            fields: self.fields,
            body: self.body,
            count: self.count,
            stride: self.stride,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.steps.size_hint()
    }
}

impl ExactSizeIterator for Columns<'_> {}

/// One field of every record of a data set of a fixed-length template
/// (see [`DataSet::columns`]).
#[derive(Debug, Clone)]
pub struct Column<'s> {
    /// Borrowed, not copied: the offset and the decode step are then two
    /// loads where a copy of the packed step was loaded and taken apart.
    step: &'s ColumnStep,
    /// The template's fields (`step.field` indexes them).
    fields: &'s [TemplateField],
    /// The whole records of the set: `count` records of `stride` bytes
    /// (as `columns_of` cuts them).
    body: &'s [u8],
    count: usize,
    stride: usize,
}

impl<'s> Column<'s> {
    /// The template field of this column.
    pub fn field(&self) -> &'s TemplateField {
        // `step.field` indexes the template's fields by construction
        // (template::column_steps).
        &self.fields[self.step.field as usize]
    }

    /// Number of values (the data set's record count).
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the data set has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with this field's value in every record, in record order:
    /// the values [`Record::fields`] yields for this field. The field's
    /// decode step is chosen once for the column, so inlined into the caller
    /// each value is a load, a byte swap and the caller's own work.
    #[inline]
    pub fn for_each<F: FnMut(Value<'s>)>(&self, f: F) {
        if self.count == 0 {
            return;
        }
        // SAFETY: `count > 0`, and `body`, `stride` and `step` are those of
        // one template as `columns_of` set them (see `column_values`).
        unsafe { read_column::<0, false, _>(self.step, self.body, self.stride, f) }
    }

    /// This field's value in every record, in record order (the values of
    /// [`for_each`](Self::for_each), as an iterator).
    pub fn values(&self) -> impl Iterator<Item = Value<'s>> + 's {
        let (start, len, op) = (
            self.step.offset as usize,
            self.step.length as usize,
            self.step.op,
        );
        self.body
            .chunks_exact(self.stride.max(1))
            .take(self.count)
            .map_while(move |r| r.get(start..start + len).map(|b| Value::from_op(op, b)))
    }
}

/// Calls `f` with the value of the column of `step` in every record of
/// `body`, in record order (as [`Column::for_each`]). The decode step is
/// chosen once for the column; the fixed-size values are read by
/// [`column_values`].
///
/// `COUNT` 0 reads the records in a loop; any other `COUNT` is the number
/// of records in `body`, each read by its own load (see [`column_values`]).
///
/// # Safety
///
/// `body` is one or more whole records of `stride` bytes (so `stride >
/// 0`), `COUNT` of them unless `COUNT` is 0, `stride` is the
/// `column_stride` of the template `step` belongs to: as `columns_of` sets
/// up a [`Columns`] with records (see [`column_values`]).
#[inline(always)]
unsafe fn read_column<'s, const COUNT: usize, const FIXED: bool, F: FnMut(Value<'s>)>(
    step: &ColumnStep,
    body: &'s [u8],
    stride: usize,
    mut f: F,
) {
    let start = step.offset as usize;
    // SAFETY (every arm): `column_values`' conditions are this function's,
    // and each arm reads `N == column_read_len(step)` bytes (the fixed-size
    // ops are read with their own size, DtSec and DtMilli only when the
    // field has that length).
    unsafe {
        match step.op {
            Op::U8 => column_values::<COUNT, _>(body, stride, start, |a: [u8; 1]| {
                f(Value::Unsigned(a[0] as u64))
            }),
            Op::U16 => column_values::<COUNT, _>(body, stride, start, |a| {
                f(Value::Unsigned(u16::from_be_bytes(a) as u64))
            }),
            Op::U32 => column_values::<COUNT, _>(body, stride, start, |a| {
                f(Value::Unsigned(u32::from_be_bytes(a) as u64))
            }),
            Op::U64 => column_values::<COUNT, _>(body, stride, start, |a| {
                f(Value::Unsigned(u64::from_be_bytes(a)))
            }),
            Op::Ipv4 => column_values::<COUNT, _>(body, stride, start, |a: [u8; 4]| {
                f(Value::Ipv4(Ipv4Addr::from(a)))
            }),
            Op::Ipv6 => column_values::<COUNT, _>(body, stride, start, |a: [u8; 16]| {
                f(Value::Ipv6(Ipv6Addr::from(a)))
            }),
            Op::Mac => column_values::<COUNT, _>(body, stride, start, |a| f(Value::Mac(a))),
            Op::DtSec if step.length == 4 => column_values::<COUNT, _>(body, stride, start, |a| {
                f(Value::DateTimeSeconds(u32::from_be_bytes(a) as u64))
            }),
            Op::DtMilli if step.length == 8 => {
                column_values::<COUNT, _>(body, stride, start, |a| {
                    f(Value::DateTimeMilliseconds(u64::from_be_bytes(a)))
                })
            }
            // Never with `FIXED`: no call in the column loops.
            rare_ops!() if FIXED => {}
            op @ (rare_ops!()) => {
                rare_column(op, step.length as usize, body, stride, start, &mut f)
            }
        }
    }
}

/// The values of the columns of `steps`, spans of rare ops in a set of
/// `count` records read by spans ([`Columns::for_each_value`]), record by
/// record, each value decoded by `from_op`. Not through
/// `Column::for_each`: LLVM hoisted the checks of its fixed-size loops
/// (never taken here) into every set read by spans (8 instructions a set).
/// Out of line and cold, as [`rare_column`].
#[cold]
#[inline(never)]
fn rare_span<'s, F: FnMut(&'s TemplateField, Value<'s>)>(
    steps: &'s [ColumnStep],
    fields: &'s [TemplateField],
    body: &'s [u8],
    stride: usize,
    count: usize,
    f: &mut F,
) {
    for step in steps {
        let Some(field) = fields.get(step.field as usize) else {
            continue;
        };
        let (start, len) = (step.offset as usize, step.length as usize);
        for r in body.chunks_exact(stride.max(1)).take(count) {
            let Some(b) = r.get(start..start + len) else {
                return;
            };
            f(field, Value::from_op(step.op, b));
        }
    }
}

/// The values of a column of a rare op (not a fixed-size number, address
/// or MAC), record by record, each value checked (no `chunks_exact`: its
/// stride made nonzero was hoisted into the start of every set; `stride >
/// 0` here). Out of line and cold: inlined, its loop took registers from
/// the common ops' paths of every column read (spills per column).
#[cold]
#[inline(never)]
fn rare_column<'s, F: FnMut(Value<'s>)>(
    op: Op,
    len: usize,
    body: &'s [u8],
    stride: usize,
    start: usize,
    f: &mut F,
) {
    let mut at = 0;
    while at < body.len() {
        let Some(b) = body.get(at + start..at + start + len) else {
            return;
        };
        f(Value::from_op(op, b));
        at += stride;
    }
}

/// Calls `f` with the `N` bytes at `start` of each record of `stride`
/// bytes in `body`, in record order: a column of fixed-size values.
///
/// No check at all, per value or per column: a value is the load, the
/// byte swap, the caller's work and half the loop's step (an add, a
/// compare and a branch a turn of two values), and starting a column is
/// finding its first value. The
/// checks the previous version made per column (the value inside its
/// record, the body long enough for one value: 7 to 9 instructions a
/// column with their spills, a column started ~22 times a set on
/// pmacct's templates) are made once, when the template is built
/// (`Template::column_stride`) and when the set's columns are cut
/// (`columns_of`).
///
/// With `COUNT` other than 0, `body` is `COUNT` records and each is read
/// by its own load: no loop.
///
/// # Safety
///
/// `stride > 0`, `body.len()` is a multiple of `stride` and at least
/// `stride` (`COUNT * stride` unless `COUNT` is 0), and `start + N <=
/// stride`.
#[inline(always)]
unsafe fn column_values<const COUNT: usize, const N: usize>(
    body: &[u8],
    stride: usize,
    start: usize,
    mut f: impl FnMut([u8; N]),
) {
    debug_assert!(body.len() >= stride && stride > 0 && body.len() % stride == 0);
    debug_assert!(start + N <= stride);
    debug_assert!(COUNT == 0 || body.len() == COUNT * stride);
    if COUNT > 0 {
        let column = body.as_ptr().wrapping_add(start);
        // A constant trip count: unrolled, one load a record.
        for r in 0..COUNT {
            // SAFETY: record `r < COUNT` starts at `r * stride`, and its N
            // bytes at `start` end at `r * stride + start + N <= (r + 1) *
            // stride <= body.len()`.
            let a = unsafe { column.add(r * stride).cast::<[u8; N]>().read_unaligned() };
            f(a);
        }
        return;
    }
    // The records start at 0, stride, ... below body.len(): a record
    // starts at `at` exactly when `at < body.len()`, the loop's one test
    // (at the end: there is at least one record).
    // Two records a turn: one step and one end test for two values (on
    // sets of 12 records, the seed v9 packets, -2 % instructions a record).
    // The records start at 0, stride, ..., `last`; a turn reads the
    // records at `at` and `at + stride` while `at < last` (so both start
    // at or before `last`), and an odd count leaves `at == last` for one
    // more read.
    let column = body.as_ptr().wrapping_add(start);
    let last = body.len() - stride;
    let mut at = 0;
    while at < last {
        // SAFETY: `at < last` and both are multiples of `stride`, so
        // records start at `at` and at `at + stride <= last`; the N bytes
        // at `start` of a record starting at `r` end at `r + start + N <=
        // r + stride <= body.len()`: inside `body`. `[u8; N]` has
        // alignment 1 and every bit pattern is valid.
        let (a, b) = unsafe {
            (
                column.add(at).cast::<[u8; N]>().read_unaligned(),
                column.add(at + stride).cast::<[u8; N]>().read_unaligned(),
            )
        };
        f(a);
        f(b);
        at += 2 * stride;
    }
    if at == last {
        // SAFETY: the last record starts at `last` (as above).
        let a = unsafe { column.add(at).cast::<[u8; N]>().read_unaligned() };
        f(a);
    }
}
