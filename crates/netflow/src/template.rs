//! Templates compiled into decode plans.
//!
//! A template record (RFC 3954 section 5.2, RFC 7011 section 3.4) is compiled
//! once, when it arrives, into a [`Template`]: per field the value decoder, the
//! output keys and — while all preceding fields have a fixed length — the byte
//! offset within the record. Every data record of that template is then
//! decoded with this plan and no further lookups.

use std::borrow::Cow;

use crate::registry::{self, DataType};
use crate::value::ValueKind;
use crate::Protocol;

/// Field length announcing a variable-length field (RFC 7011 section 7).
pub const VARIABLE_LENGTH: u16 = 0xFFFF;

/// Enterprise number of RFC 5103 reverse Information Elements.
pub const REVERSE_PEN: u32 = 29305;

/// The identity of an Information Element: enterprise number (0 = IANA / v9
/// field type) and element id (enterprise bit already cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId {
    pub enterprise: u32,
    pub id: u16,
}

impl FieldId {
    pub const fn iana(id: u16) -> FieldId {
        FieldId { enterprise: 0, id }
    }
}

/// A field specifier exactly as it appears in a template record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    pub field: FieldId,
    /// Encoded length in bytes, or [`VARIABLE_LENGTH`].
    pub length: u16,
}

impl FieldSpec {
    pub const fn new(enterprise: u32, id: u16, length: u16) -> FieldSpec {
        FieldSpec {
            field: FieldId { enterprise, id },
            length,
        }
    }
    pub fn is_variable(&self) -> bool {
        self.length == VARIABLE_LENGTH
    }
}

/// One field of a compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateField {
    pub spec: FieldSpec,
    /// A scope field of an options template.
    pub scope: bool,
    /// Abstract data type from the registry (`OctetArray` when unknown).
    pub data_type: DataType,
    /// How the bytes are decoded.
    pub kind: ValueKind,
    /// Byte offset within the record, if every earlier field has a fixed length.
    pub offset: Option<usize>,
    /// Output key with names (`IPV4_SRC_ADDR`, `sourceIPv4Address`, `scope:System`, `name#2`).
    pub name: Cow<'static, str>,
    /// Output key with element ids (`8`, `6871:14`, `scope:1`, `8#2`).
    pub id_key: Cow<'static, str>,
    /// Padding (IE 210 paddingOctets, v1/v5/v7 pad bytes): not reported as a field.
    pub skip: bool,
}

/// The hot part of a field's decode plan, kept apart from names so the
/// record loop walks a dense array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldPlan {
    /// Offset in the record, or `u32::MAX` after a variable-length field.
    pub offset: u32,
    /// Encoded length, or [`VARIABLE_LENGTH`].
    pub length: u16,
    pub op: crate::value::Op,
}

/// One column of a fixed-length template without lists: a field that is
/// not padding, at a known offset. Kept in its own array (no padding
/// entries to skip, 8 bytes an entry read with plain loads), because a
/// column is started once per field per data set, and with the 1 to 5
/// records a set of the usual exporters that start cost as much as reading
/// the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnStep {
    /// Offset in the record. 16 bits (the entry fits 8 bytes, kept in every
    /// cached template): a set is at most 65,535 bytes with its header (RFC
    /// 3954 section 5.3, RFC 7011 section 3.3.2), so a record of a
    /// template whose fields reach further is never in one, its columns
    /// never have values, and its offsets (stored as 65,535) are never read.
    pub offset: u16,
    pub length: u16,
    pub op: crate::value::Op,
    /// Number of steps after this one in its span (see [`spans`]), read
    /// with one dispatch by [`crate::Columns::for_each_value`]; at most
    /// 255. Kept in the byte the entry had as padding (still 8 bytes).
    pub run: u8,
    /// Index of the field in [`Template::fields`].
    pub field: u16,
}

/// The column steps of a template: empty unless every field has a fixed
/// length and none is a list (the only templates with columns, see
/// [`crate::DataSet::columns`]). A template record has at most 65,535
/// fields (its field count is 16 bits in v9 and IPFIX).
fn column_steps(fields: &[TemplateField], plan: &[FieldPlan]) -> Box<[ColumnStep]> {
    let fixed = plan.iter().all(|p| {
        p.offset != u32::MAX && p.length != VARIABLE_LENGTH && p.op != crate::value::Op::List
    });
    if !fixed || fields.len() > u16::MAX as usize + 1 {
        return Box::new([]);
    }
    let mut steps: Box<[ColumnStep]> = plan
        .iter()
        .enumerate()
        .filter(|(_, p)| p.op != crate::value::Op::Skip)
        .map(|(i, p)| ColumnStep {
            offset: u16::try_from(p.offset).unwrap_or(u16::MAX),
            length: p.length,
            op: p.op,
            run: 0,
            field: i as u16,
        })
        .collect();
    spans(&mut steps);
    steps
}

/// Marks the spans of `steps`: a step continues the span of the one before
/// when it is the next field of the template, right after it in the
/// record, decoded with the same fixed-size op (so the same length). Set
/// from the end: each step's `run` counts the steps after it to the end of
/// its span (at most 255: a longer span is cut).
fn spans(steps: &mut [ColumnStep]) {
    for i in (0..steps.len().saturating_sub(1)).rev() {
        let (step, next) = (steps[i], steps[i + 1]);
        let continued = fixed_size_op(step.op)
            && next.op == step.op
            && next.length == step.length
            && u32::from(next.field) == u32::from(step.field) + 1
            && u32::from(next.offset) == u32::from(step.offset) + u32::from(step.length)
            && next.run < u8::MAX;
        if continued {
            steps[i].run = next.run + 1;
        }
    }
}

/// How many bytes from its offset reading a column of `step` takes: the
/// fixed-size ops read exactly their size (which [`crate::value::Op::new`]
/// gives only to fields of that length), the others the field's length.
pub(crate) fn column_read_len(step: &ColumnStep) -> usize {
    use crate::value::Op;
    match step.op {
        Op::U8 => 1,
        Op::U16 => 2,
        Op::U32 | Op::Ipv4 => 4,
        Op::U64 => 8,
        Op::Ipv6 => 16,
        Op::Mac => 6,
        _ => step.length as usize,
    }
}

/// The record length the columns of `steps` are read with
/// ([`Template::column_stride`]): `record_len` when every column's read,
/// and every span's, ends within it, else 0 (no column is read). Always the former for
/// compiled templates, which is checked here rather than assumed, because
/// the unchecked reads of `record::column_values` rely on it.
fn column_stride(steps: &[ColumnStep], record_len: Option<usize>) -> u32 {
    let Some(len) = record_len.and_then(|len| u32::try_from(len).ok()) else {
        return 0;
    };
    // Each column's read, and each span's (`run + 1` columns read side by
    // side, `Columns::for_each_value`), ends within the record.
    let inside = steps.iter().all(|s| {
        let end = s.offset as usize + column_read_len(s) * (s.run as usize + 1);
        end <= len as usize
    });
    if inside {
        len
    } else {
        0
    }
}

/// Whether every column of `steps` is of a fixed-size op: a number,
/// address or MAC, or a date of its standard length (what
/// `record::read_column` reads inline). The column loops of such
/// templates have no call to the rare ops' readers in them, so LLVM keeps
/// what the caller's closure updates in registers across the columns (see
/// `record::few_columns`).
fn fixed_only(steps: &[ColumnStep]) -> bool {
    use crate::value::Op;
    steps.iter().all(|s| match s.op {
        Op::DtSec => s.length == 4,
        Op::DtMilli => s.length == 8,
        op => fixed_size_op(op),
    })
}

/// The ops read with their own size whatever the field's length: numbers
/// of 1, 2, 4 and 8 bytes, IPv4 and IPv6 addresses, MACs (the ops spans
/// are made of, see [`spans`]).
fn fixed_size_op(op: crate::value::Op) -> bool {
    use crate::value::Op;
    matches!(
        op,
        Op::U8 | Op::U16 | Op::U32 | Op::U64 | Op::Ipv4 | Op::Ipv6 | Op::Mac
    )
}

/// Whether a set of one or two records is read span by span rather than
/// column by column: when the template has at most half as many spans as
/// columns. A span costs a dispatch plus a loop over its columns (~30
/// instructions with two records) where a column costs ~20 and its
/// values; with more spans than that, spans save nothing (pmacct's 22
/// fields make 13 spans: measured 17 instructions a record slower).
fn by_spans(steps: &[ColumnStep]) -> bool {
    let mut spans = 0usize;
    let mut i = 0;
    while let Some(step) = steps.get(i) {
        spans += 1;
        i += step.run as usize + 1;
    }
    spans * 2 <= steps.len()
}

/// The field specifiers of a template record as they are on the wire: v9
/// (RFC 3954 section 5.2) type and length; IPFIX (RFC 7011 section 3.2)
/// element id and length, with the enterprise bit and number when the
/// enterprise is not 0. Reading these bytes back gives `specs` again, so a
/// template record whose specifiers are these bytes announces this same
/// layout: exporters resend their templates every few packets (RFC 3954
/// section 5.2, RFC 7011 section 8.2 over UDP), and comparing the bytes
/// recognizes a refresh without reading the record field by field. Empty
/// when `specs` has no such encoding (a v9 field of an enterprise, an IPFIX
/// element id of 15 bits and more): such a template is never refreshed
/// this way, only the slow way.
fn wire_specs(protocol: Protocol, specs: &[FieldSpec]) -> Box<[u8]> {
    let mut wire = Vec::with_capacity(4 * specs.len());
    for s in specs {
        let (enterprise, id) = (s.field.enterprise, s.field.id);
        match protocol {
            Protocol::Ipfix if id < 0x8000 && enterprise != 0 => {
                wire.extend_from_slice(&(id | 0x8000).to_be_bytes());
                wire.extend_from_slice(&s.length.to_be_bytes());
                wire.extend_from_slice(&enterprise.to_be_bytes());
            }
            Protocol::Ipfix if id < 0x8000 => {
                wire.extend_from_slice(&id.to_be_bytes());
                wire.extend_from_slice(&s.length.to_be_bytes());
            }
            Protocol::V9 if enterprise == 0 => {
                wire.extend_from_slice(&id.to_be_bytes());
                wire.extend_from_slice(&s.length.to_be_bytes());
            }
            _ => return Box::new([]),
        }
    }
    wire.into_boxed_slice()
}

fn plans(fields: &[TemplateField]) -> Box<[FieldPlan]> {
    fields
        .iter()
        .map(|f| FieldPlan {
            offset: f.offset.map_or(u32::MAX, |o| o as u32),
            length: f.spec.length,
            op: crate::value::Op::new(f.kind, f.spec.length, f.skip),
        })
        .collect()
}

/// Whether a template describes flow records or options records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    Data,
    Options,
}

/// A compiled template: the decode plan for its data records.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub protocol: Protocol,
    pub id: u16,
    pub kind: TemplateKind,
    /// Number of leading scope fields (options templates).
    pub scope_count: u16,
    pub fields: Box<[TemplateField]>,
    /// Per field, the decode step (same order as `fields`).
    pub(crate) plan: Box<[FieldPlan]>,
    /// The fields read as columns (see [`ColumnStep`]).
    pub(crate) columns: Box<[ColumnStep]>,
    /// Whether sets of one or two records are read span by span by
    /// [`crate::Columns::for_each_value`] (see [`by_spans`]).
    pub(crate) by_spans: bool,
    /// Whether every column is of a fixed-size op (see [`fixed_only`]).
    pub(crate) fixed_only: bool,
    /// The field specifiers as a template record carries them (see
    /// [`wire_specs`]); empty if they have no such encoding.
    pub(crate) wire: Box<[u8]>,
    /// Record length when no field is variable-length.
    pub record_len: Option<usize>,
    /// The record length the columns are read with: `record_len`, kept
    /// apart from it (which is public, and may be changed by its owner)
    /// because every column step's read (and every span's) ends within it,
    /// checked when the
    /// template is built ([`column_stride`]); 0 when there are no columns
    /// or that check failed. Column values are read without a bound check
    /// each (`record::column_values`), and this is their bound.
    pub(crate) column_stride: u32,
    /// `record_len`'s reciprocal for [`Template::records_in`] (0 when
    /// there is no record length or it is longer than a set can be).
    pub(crate) record_len_recip: u64,
    /// Smallest possible record length (variable-length fields count 1 byte).
    pub min_record_len: usize,
    /// Some field is a structured data list (RFC 6313) and needs the template scope.
    pub has_lists: bool,
}

/// `ceil(2^32 / len)`, for [`Template::records_in`]; 0 without a length
/// or for a length of 0 or of more than 65,535 bytes (no such record fits
/// a set).
fn reciprocal(len: Option<usize>) -> u64 {
    match len {
        Some(len @ 1..=0xFFFF) => (1u64 << 32).div_ceil(len as u64),
        _ => 0,
    }
}

/// `n / d` for `n` below 65,536, given `recip == reciprocal(Some(d))`
/// (see [`Template::records_in`]; a larger `n` is cut to 16 bits).
#[inline(always)]
fn divide(n: usize, recip: u64) -> usize {
    debug_assert!(n <= 0xFFFF);
    ((((n as u64) & 0xFFFF) * recip) >> 32) as usize
}

impl Template {
    /// How many whole records of `record_len` bytes `n` bytes hold (`n`
    /// below 65,536: the body of one set), as `n / record_len`, without
    /// dividing: `n * ceil(2^32 / d) / 2^32` is `n / d` exactly while
    /// `n * e < 2^32`, where `e = d * ceil(2^32 / d) - 2^32 < d`, so for
    /// every `n` and `d` below 2^16 (`tests::records_in_divides`). A
    /// division is ~8 instructions with LLVM's 32-bit fast path, and
    /// 20 to 40 cycles, once a data set.
    #[inline(always)]
    pub(crate) fn records_in(&self, n: usize) -> usize {
        divide(n, self.record_len_recip)
    }

    /// The field specifiers as they were on the wire (scope fields first).
    pub fn specs(&self) -> impl ExactSizeIterator<Item = FieldSpec> + '_ {
        self.fields.iter().map(|f| f.spec)
    }

    /// True if `specs` (with `scope_count` and `kind`) describe this same template,
    /// i.e. a re-announcement is a refresh rather than a redefinition.
    pub fn same_layout(&self, kind: TemplateKind, scope_count: u16, specs: &[FieldSpec]) -> bool {
        self.kind == kind
            && self.scope_count == scope_count
            && self.fields.len() == specs.len()
            && self.fields.iter().zip(specs).all(|(f, s)| f.spec == *s)
    }

    /// Compile a template record. Fails only for records that cannot describe data
    /// (zero total length).
    pub fn compile(
        protocol: Protocol,
        id: u16,
        kind: TemplateKind,
        scope_count: u16,
        specs: &[FieldSpec],
    ) -> Result<Template, crate::ErrorKind> {
        let mut fields = Vec::with_capacity(specs.len());
        let mut offset = Some(0usize);
        let mut min_len = 0usize;
        for (i, spec) in specs.iter().enumerate() {
            let scope = i < scope_count as usize;
            let (name, id_key, data_type) = field_naming(protocol, spec.field, scope);
            let kind_ = ValueKind::for_type(data_type, spec.length);
            let skip = protocol == Protocol::Ipfix && spec.field == FieldId::iana(210);
            fields.push(TemplateField {
                spec: *spec,
                scope,
                data_type,
                kind: kind_,
                offset,
                name,
                id_key,
                skip,
            });
            if spec.is_variable() {
                offset = None;
                min_len += 1;
            } else {
                offset = offset.map(|o| o + spec.length as usize);
                min_len += spec.length as usize;
            }
        }
        if min_len == 0 {
            return Err(crate::ErrorKind::EmptyTemplate(id));
        }
        dedup_keys(&mut fields);
        let has_lists = fields.iter().any(|f| {
            matches!(
                f.kind,
                ValueKind::BasicList | ValueKind::SubTemplateList | ValueKind::SubTemplateMultiList
            )
        });
        let plan = plans(&fields);
        let columns = column_steps(&fields, &plan);
        Ok(Template {
            by_spans: by_spans(&columns),
            fixed_only: fixed_only(&columns),
            column_stride: column_stride(&columns, offset),
            has_lists,
            columns,
            wire: wire_specs(protocol, specs),
            plan,
            protocol,
            id,
            kind,
            scope_count,
            fields: fields.into_boxed_slice(),
            record_len: offset,
            record_len_recip: reciprocal(offset),
            min_record_len: min_len,
        })
    }

    /// A fixed-layout template for v1/v5/v7 records: `(name, iana id or None, length)`.
    pub(crate) fn fixed(
        protocol: Protocol,
        layout: &[(&'static str, Option<u16>, u16)],
    ) -> Template {
        let mut fields = Vec::with_capacity(layout.len());
        let mut offset = 0usize;
        for &(name, iana, length) in layout {
            let data_type = match iana {
                Some(id) => registry::lookup(0, id).map_or(DataType::OctetArray, |ie| ie.data_type),
                None if length == 4 && name.ends_with("ROUTER_SC") => DataType::Ipv4Address,
                None => DataType::Unsigned32,
            };
            let id_key: Cow<'static, str> = match iana {
                Some(id) => Cow::Owned(id.to_string()),
                None => Cow::Borrowed(name),
            };
            fields.push(TemplateField {
                spec: FieldSpec::new(0, iana.unwrap_or(210), length),
                scope: false,
                data_type,
                kind: ValueKind::for_type(data_type, length),
                offset: Some(offset),
                name: Cow::Borrowed(name),
                id_key,
                skip: name.is_empty(),
            });
            offset += length as usize;
        }
        let plan = plans(&fields);
        let columns = column_steps(&fields, &plan);
        Template {
            by_spans: by_spans(&columns),
            fixed_only: fixed_only(&columns),
            column_stride: column_stride(&columns, Some(offset)),
            columns,
            wire: Box::new([]),
            plan,
            protocol,
            id: 0,
            kind: TemplateKind::Data,
            scope_count: 0,
            fields: fields.into_boxed_slice(),
            record_len: Some(offset),
            record_len_recip: reciprocal(Some(offset)),
            min_record_len: offset,
            has_lists: false,
        }
    }
}

/// Output keys and data type of a field.
pub(crate) fn field_naming(
    protocol: Protocol,
    field: FieldId,
    scope: bool,
) -> (Cow<'static, str>, Cow<'static, str>, DataType) {
    if protocol == Protocol::V9 {
        if scope {
            // RFC 3954 section 6.1: scope field types 1..=5.
            let name = registry::v9_scope_name(field.id)
                .map_or_else(|| format!("scope:{}", field.id), |n| format!("scope:{n}"));
            return (
                Cow::Owned(name),
                Cow::Owned(format!("scope:{}", field.id)),
                DataType::Unsigned64,
            );
        }
        let id_key = Cow::Owned(field.id.to_string());
        if let Some(v9) = registry::v9_field_type(field.id) {
            return (Cow::Borrowed(v9.name), id_key, v9.data_type);
        }
        if let Some(ie) = registry::lookup(0, field.id) {
            return (Cow::Borrowed(ie.name), id_key, ie.data_type);
        }
        return (id_key.clone(), id_key, DataType::OctetArray);
    }
    let id_key = if field.enterprise == 0 {
        Cow::Owned(field.id.to_string())
    } else {
        Cow::Owned(format!("{}:{}", field.enterprise, field.id))
    };
    match registry::lookup(field.enterprise, field.id) {
        Some(ie) => (Cow::Borrowed(ie.name), id_key, ie.data_type),
        None => (id_key.clone(), id_key, DataType::OctetArray),
    }
}

/// A second occurrence of the same key becomes `key#2`, a third `key#3`, ...
fn dedup_keys(fields: &mut [TemplateField]) {
    let mut seen: std::collections::HashMap<(FieldId, bool), u32> =
        std::collections::HashMap::new();
    for f in fields.iter_mut() {
        let n = seen.entry((f.spec.field, f.scope)).or_insert(0);
        *n += 1;
        if *n > 1 {
            f.name = Cow::Owned(format!("{}#{}", f.name, n));
            f.id_key = Cow::Owned(format!("{}#{}", f.id_key, n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reciprocal division is `n / d` for every set body length `n`
    /// and every record length `d` that fits a set; no record of a longer
    /// template fits one.
    #[test]
    fn records_in_divides() {
        for d in 1..=0xFFFFusize {
            let recip = reciprocal(Some(d));
            // Every n for the short records of real templates, a sample
            // (the ends, around multiples of d) for the others.
            if d <= 256 {
                for n in 0..=0xFFFF {
                    assert_eq!(divide(n, recip), n / d, "{n} / {d}");
                }
            } else {
                let ks = (0..=0xFFFF / d).step_by((0xFFFF / d / 64).max(1));
                for n in
                    ks.flat_map(|k| [k * d, (k * d).saturating_sub(1), k * d + 1, k * d + d - 1])
                {
                    let n = n.min(0xFFFF);
                    assert_eq!(divide(n, recip), n / d, "{n} / {d}");
                }
                assert_eq!(divide(0xFFFF, recip), 0xFFFF / d, "65535 / {d}");
            }
        }
        assert_eq!(reciprocal(Some(0x10000)), 0);
        assert_eq!(reciprocal(None), 0);
        let t = Template::compile(
            Protocol::V9,
            256,
            TemplateKind::Data,
            0,
            &[FieldSpec::new(0, 1, 4), FieldSpec::new(0, 2, 8)],
        )
        .unwrap();
        assert_eq!(t.records_in(120), 10);
        assert_eq!(t.records_in(131), 10);
        let long = Template::compile(
            Protocol::V9,
            256,
            TemplateKind::Data,
            0,
            &[FieldSpec::new(0, 1, 0xFFFE), FieldSpec::new(0, 2, 3)],
        )
        .unwrap();
        assert_eq!(long.record_len, Some(0x10001));
        assert_eq!(long.records_in(0xFFFF), 0);
    }

    /// The columns are read with the record length when every column's
    /// read ends within it (every compiled template), and not at all when
    /// one would not.
    #[test]
    fn column_stride_bounds_every_read() {
        use crate::value::Op;
        let t = Template::compile(
            Protocol::V9,
            256,
            TemplateKind::Data,
            0,
            &[
                FieldSpec::new(0, 8, 4),
                FieldSpec::new(0, 56, 6),
                FieldSpec::new(0, 27, 16),
                FieldSpec::new(0, 152, 8),
                FieldSpec::new(0, 4, 1),
            ],
        )
        .unwrap();
        assert_eq!(t.column_stride as usize, t.record_len.unwrap());
        let step = |offset, length, op| ColumnStep {
            offset,
            length,
            op,
            run: 0,
            field: 0,
        };
        // A MAC column read with 6 bytes from offset 5 of an 11-byte record
        // ends at 11: inside. From offset 6 it would not be.
        assert_eq!(column_stride(&[step(5, 6, Op::Mac)], Some(11)), 11);
        assert_eq!(column_stride(&[step(6, 6, Op::Mac)], Some(11)), 0);
        // Fixed-size ops read their own size whatever the step's length says.
        assert_eq!(column_stride(&[step(0, 2, Op::Ipv6)], Some(8)), 0);
        assert_eq!(column_stride(&[step(0, 8, Op::U8)], Some(1)), 1);
        assert_eq!(column_stride(&[step(2, 3, Op::UInt)], Some(4)), 0);
        // A span reads `run + 1` values side by side from its first step.
        let span = ColumnStep {
            run: 1,
            ..step(0, 4, Op::U32)
        };
        assert_eq!(column_stride(&[span, step(4, 4, Op::U32)], Some(8)), 8);
        assert_eq!(column_stride(&[span], Some(4)), 0);
        assert_eq!(column_stride(&[], None), 0);
        assert_eq!(column_stride(&[], Some(1 << 40)), 0);
    }
}
