//! Export packet parsing: the version dispatch and the set walks of NetFlow
//! v9 (RFC 3954 section 5) and IPFIX (RFC 7011 section 3), fixed-record
//! NetFlow v1/v5/v7, template handling against a [`TemplateCache`].

use std::sync::{Arc, OnceLock};

use crate::cache::{
    ExporterId, ScopeKey, TemplateCache, TemplateChange, TemplateKey, TemplateScope,
};
use crate::record::{scan_records, DataSet, DataSetView, Record};
use crate::template::{FieldSpec, Template, TemplateKind};
use crate::wire::{ipfix, set::SetHeader, v1, v5, v7, v9};
use crate::{Error, ErrorKind, Protocol};

/// The header of an export packet, per version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum Header {
    V1(v1::V1Header),
    V5(v5::V5Header),
    V7(v7::V7Header),
    V9(v9::V9Header),
    Ipfix(ipfix::IpfixHeader),
}

impl Header {
    pub fn protocol(&self) -> Protocol {
        match self {
            Header::V1(_) => Protocol::V1,
            Header::V5(_) => Protocol::V5,
            Header::V7(_) => Protocol::V7,
            Header::V9(_) => Protocol::V9,
            Header::Ipfix(_) => Protocol::Ipfix,
        }
    }
    /// The version number on the wire (1, 5, 7, 9, 10).
    pub fn version(&self) -> u16 {
        self.protocol().version()
    }
    /// Export time, seconds since the Unix epoch.
    pub fn export_time(&self) -> u32 {
        match self {
            Header::V1(h) => h.timestamp,
            Header::V5(h) => h.timestamp,
            Header::V7(h) => h.timestamp,
            Header::V9(h) => h.timestamp,
            Header::Ipfix(h) => h.export_time,
        }
    }
    /// Sequence number (v1 has none).
    pub fn sequence(&self) -> Option<u32> {
        match self {
            Header::V1(_) => None,
            Header::V5(h) => Some(h.sequence),
            Header::V7(h) => Some(h.sequence),
            Header::V9(h) => Some(h.sequence),
            Header::Ipfix(h) => Some(h.sequence),
        }
    }
    /// v9 source ID or IPFIX observation domain (None for v1/v5/v7).
    pub fn domain(&self) -> Option<u32> {
        match self {
            Header::V9(h) => Some(h.source_id),
            Header::Ipfix(h) => Some(h.observation_domain),
            _ => None,
        }
    }
    /// System uptime at export in milliseconds (not in IPFIX).
    pub fn uptime(&self) -> Option<u32> {
        match self {
            Header::V1(h) => Some(h.uptime),
            Header::V5(h) => Some(h.uptime),
            Header::V7(h) => Some(h.uptime),
            Header::V9(h) => Some(h.uptime),
            Header::Ipfix(_) => None,
        }
    }
}

/// A template record seen in a packet and what it did to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateEvent {
    pub template_id: u16,
    pub kind: TemplateKind,
    pub change: TemplateChange,
    /// Offset of the template record in the packet.
    pub offset: usize,
}

/// A data set whose template is not known (yet): the caller can buffer it
/// (see [`crate::Decoder`]) and decode it when the template arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSet<'a> {
    /// The template it waits for.
    pub key: TemplateKey,
    /// Offset of the set header in the packet.
    pub offset: usize,
    /// The set body (after the 4-byte set header).
    pub body: &'a [u8],
}

/// A decoded export packet.
#[derive(Debug, Clone)]
pub struct ExportPacket<'a> {
    pub exporter: ExporterId,
    pub header: Header,
    /// Data and options data sets, in wire order (v1/v5/v7: one set).
    pub data_sets: Vec<DataSet<'a>>,
    /// Data sets whose template is unknown.
    pub missing: Vec<MissingSet<'a>>,
    /// Template and options template records in this packet.
    pub templates: Vec<TemplateEvent>,
    /// Problems that did not stop decoding the rest of the packet.
    pub errors: Vec<Error>,
}

impl<'a> ExportPacket<'a> {
    /// All records of all data sets, in wire order.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.data_sets.iter().flat_map(|s| s.records())
    }
    /// NetFlow v1 only (empty otherwise): the flow records as typed views with
    /// every field at a constant offset. The same records as [`records`](Self::records),
    /// read without the generic per-field dispatch.
    pub fn v1_records(&self) -> impl Iterator<Item = v1::record::RecordView<&'a [u8]>> {
        self.fixed_bytes(Protocol::V1)
            .chunks_exact(v1::RECORD_LEN)
            .map(v1::record::RecordView::new_unchecked)
    }
    /// NetFlow v5 only (empty otherwise): the flow records as typed views with
    /// every field at a constant offset. The same records as [`records`](Self::records),
    /// read without the generic per-field dispatch.
    pub fn v5_records(&self) -> impl Iterator<Item = v5::record::RecordView<&'a [u8]>> {
        self.fixed_bytes(Protocol::V5)
            .chunks_exact(v5::RECORD_LEN)
            .map(v5::record::RecordView::new_unchecked)
    }
    /// NetFlow v7 only (empty otherwise): the flow records as typed views with
    /// every field at a constant offset. The same records as [`records`](Self::records),
    /// read without the generic per-field dispatch.
    pub fn v7_records(&self) -> impl Iterator<Item = v7::record::RecordView<&'a [u8]>> {
        self.fixed_bytes(Protocol::V7)
            .chunks_exact(v7::RECORD_LEN)
            .map(v7::record::RecordView::new_unchecked)
    }
    /// The record bytes of a v1/v5/v7 packet of `protocol` (whole records only,
    /// as `parse_fixed` cut them), else empty. `chunks_exact` over them yields
    /// slices of exactly one record, so no view accessor can go out of bounds.
    fn fixed_bytes(&self, protocol: Protocol) -> &'a [u8] {
        let matches = matches!(
            (&self.header, protocol),
            (Header::V1(_), Protocol::V1)
                | (Header::V5(_), Protocol::V5)
                | (Header::V7(_), Protocol::V7)
        );
        match self.data_sets.first() {
            Some(set) if matches => set.bytes(),
            _ => &[],
        }
    }
    /// Number of records decoded (flows and options).
    pub fn record_count(&self) -> usize {
        self.data_sets.iter().map(|s| s.record_count).sum()
    }
    /// True if this packet announced a template id not known before, or changed one.
    pub fn has_new_templates(&self) -> bool {
        has_new_templates(&self.templates)
    }
}

/// Parse an export packet of any version with templates kept in `cache`,
/// as from an unnamed exporter. See [`parse_packet_from`].
pub fn parse_packet<'a>(
    bytes: &'a [u8],
    cache: &mut TemplateCache,
) -> Result<ExportPacket<'a>, Error> {
    parse_packet_from(ExporterId::UNSPECIFIED, bytes, cache)
}

/// Parse an export packet sent by `exporter`. Fails only when nothing can be
/// decoded (short or unknown header); problems within the packet are listed
/// in [`ExportPacket::errors`] and the rest is decoded.
pub fn parse_packet_from<'a>(
    exporter: ExporterId,
    bytes: &'a [u8],
    cache: &mut TemplateCache,
) -> Result<ExportPacket<'a>, Error> {
    if bytes.len() < 2 {
        return Err(Error::truncated(0, 2, bytes.len()));
    }
    match u16::from_be_bytes([bytes[0], bytes[1]]) {
        1 => parse_fixed(exporter, bytes, Protocol::V1),
        5 => parse_fixed(exporter, bytes, Protocol::V5),
        7 => parse_fixed(exporter, bytes, Protocol::V7),
        9 => walk_v9(exporter, bytes, cache, PacketSets::presized),
        10 => walk_ipfix(exporter, bytes, cache, PacketSets::presized),
        v => Err(Error::new(ErrorKind::UnknownVersion(v), 0)),
    }
}

/// Walk an export packet of any version with templates kept in `cache`, as
/// from an unnamed exporter, handing each data set to `visit`. See
/// [`visit_packet_from`].
pub fn visit_packet<'a, F>(
    bytes: &'a [u8],
    cache: &mut TemplateCache,
    visit: F,
) -> Result<VisitedPacket<'a>, Error>
where
    F: FnMut(DataSetView<'_>),
{
    visit_packet_from(ExporterId::UNSPECIFIED, bytes, cache, visit)
}

/// Walk an export packet sent by `exporter` as [`parse_packet_from`] does
/// (the same templates learned, refreshed and withdrawn in `cache`, the same
/// template events, errors and data sets still waiting for their template),
/// but hand each decodable data set to `visit` as a [`DataSetView`] instead
/// of collecting [`DataSet`]s into an [`ExportPacket`]: no allocation for a
/// packet of data sets whose templates are known, and the template is
/// borrowed from the cache rather than reference-counted per set. What
/// `visit` gets holds exactly the records, columns and values the
/// [`ExportPacket`] of [`parse_packet_from`] would have held.
///
/// Order: data sets are visited in wire order as the walk reaches them,
/// except two kinds, visited at the end of the packet in wire order among
/// themselves: sets whose template is defined later in the same packet
/// (RFC 7011 section 8 allows templates after their data within a message),
/// and sets of templates with RFC 6313 lists (whose sub-template lists
/// resolve against the templates known at the end of the packet, as in
/// [`parse_packet_from`]). v1/v5/v7 packets are one data set.
///
/// Fails only when nothing can be decoded (short or unknown header), as
/// [`parse_packet_from`] does; then `visit` is not called.
///
/// ```
/// use netflow::{visit_packet, TemplateCache, Value};
///
/// // A NetFlow v5 packet with two flows from 10.0.0.1 and 10.0.0.3.
/// let mut bytes = vec![0u8; 24 + 2 * 48];
/// bytes[1] = 5; // version
/// bytes[3] = 2; // count
/// bytes[24..28].copy_from_slice(&[10, 0, 0, 1]);
/// bytes[72..76].copy_from_slice(&[10, 0, 0, 3]);
/// let mut cache = TemplateCache::new();
/// let mut sources = Vec::new();
/// let packet = visit_packet(&bytes, &mut cache, |set| {
///     // Column by column (every v5 set, most v9/IPFIX ones), else record by record.
///     if let Some(columns) = set.columns() {
///         for column in columns.filter(|c| c.field().name == "IPV4_SRC_ADDR") {
///             column.for_each(|v| sources.push(v.to_string()));
///         }
///     }
/// })
/// .unwrap();
/// assert_eq!(sources, ["10.0.0.1", "10.0.0.3"]);
/// assert_eq!((packet.data_sets, packet.records), (1, 2));
/// assert!(packet.errors.is_empty());
/// ```
pub fn visit_packet_from<'a, F>(
    exporter: ExporterId,
    bytes: &'a [u8],
    cache: &mut TemplateCache,
    visit: F,
) -> Result<VisitedPacket<'a>, Error>
where
    F: FnMut(DataSetView<'_>),
{
    if bytes.len() < 2 {
        return Err(Error::truncated(0, 2, bytes.len()));
    }
    let sink = |_: &[u8], _| VisitSets {
        visit,
        data_sets: 0,
        records: 0,
        held: None,
    };
    match u16::from_be_bytes([bytes[0], bytes[1]]) {
        1 => visit_fixed(exporter, bytes, Protocol::V1, sink(bytes, (0, 0))),
        5 => visit_fixed(exporter, bytes, Protocol::V5, sink(bytes, (0, 0))),
        7 => visit_fixed(exporter, bytes, Protocol::V7, sink(bytes, (0, 0))),
        9 => walk_v9(exporter, bytes, cache, sink),
        10 => walk_ipfix(exporter, bytes, cache, sink),
        v => Err(Error::new(ErrorKind::UnknownVersion(v), 0)),
    }
}

/// What [`visit_packet_from`] found in a packet besides the data sets it
/// handed to the visitor: the lists of an [`ExportPacket`] but the data
/// sets, which are counted. Empty lists do not allocate.
#[derive(Debug, Clone)]
pub struct VisitedPacket<'a> {
    pub exporter: ExporterId,
    pub header: Header,
    /// Number of data sets handed to the visitor.
    pub data_sets: usize,
    /// Number of records in them (flows and options): as
    /// [`ExportPacket::record_count`].
    pub records: usize,
    /// Data sets whose template is unknown (not visited).
    pub missing: Vec<MissingSet<'a>>,
    /// Template and options template records in this packet.
    pub templates: Vec<TemplateEvent>,
    /// Problems that did not stop decoding the rest of the packet.
    pub errors: Vec<Error>,
}

impl VisitedPacket<'_> {
    /// Number of records decoded (flows and options).
    pub fn record_count(&self) -> usize {
        self.records
    }
    /// True if this packet announced a template id not known before, or changed one.
    pub fn has_new_templates(&self) -> bool {
        has_new_templates(&self.templates)
    }
}

fn has_new_templates(templates: &[TemplateEvent]) -> bool {
    templates.iter().any(|t| {
        matches!(
            t.change,
            TemplateChange::Learned | TemplateChange::Redefined
        )
    })
}

/// The fixed template and (empty) scope of v1/v5/v7 records.
fn fixed_template(protocol: Protocol) -> &'static (Arc<Template>, Arc<TemplateScope>) {
    static V1: OnceLock<(Arc<Template>, Arc<TemplateScope>)> = OnceLock::new();
    static V5: OnceLock<(Arc<Template>, Arc<TemplateScope>)> = OnceLock::new();
    static V7: OnceLock<(Arc<Template>, Arc<TemplateScope>)> = OnceLock::new();
    let (cell, layout) = match protocol {
        Protocol::V1 => (&V1, v1::RECORD_LAYOUT),
        Protocol::V5 => (&V5, v5::RECORD_LAYOUT),
        _ => (&V7, v7::RECORD_LAYOUT),
    };
    cell.get_or_init(|| {
        (
            Arc::new(Template::fixed(protocol, layout)),
            Arc::new(TemplateScope::empty(0)),
        )
    })
}

/// The record template of NetFlow v1, v5 or v7 (fixed layouts).
pub fn fixed_record_template(protocol: Protocol) -> Option<&'static Arc<Template>> {
    matches!(protocol, Protocol::V1 | Protocol::V5 | Protocol::V7)
        .then(|| &fixed_template(protocol).0)
}

/// A v1/v5/v7 packet cut into its parts (see [`fixed_records`]).
struct FixedRecords<'a> {
    header: Header,
    /// Whole records only, at most the header's count.
    records: &'a [u8],
    /// Number of records in `records`.
    count: usize,
    /// The problem with what follows the records, if any.
    errors: Vec<Error>,
}

/// The header of a v1/v5/v7 packet, its record bytes (whole records only,
/// at most `count`), their number and the problem with what follows them.
#[inline(always)]
fn fixed_records(bytes: &[u8], protocol: Protocol) -> Result<FixedRecords<'_>, Error> {
    let (header, count, hlen, rlen) = match protocol {
        Protocol::V1 => {
            let h = v1::V1Header::parse(bytes)?;
            (Header::V1(h), h.count, v1::V1Header::LEN, v1::RECORD_LEN)
        }
        Protocol::V5 => {
            let h = v5::V5Header::parse(bytes)?;
            (Header::V5(h), h.count, v5::V5Header::LEN, v5::RECORD_LEN)
        }
        _ => {
            let h = v7::V7Header::parse(bytes)?;
            (Header::V7(h), h.count, v7::V7Header::LEN, v7::RECORD_LEN)
        }
    };
    let available = (bytes.len() - hlen) / rlen;
    let present = available.min(count as usize);
    let mut errors = Vec::new();
    let end = hlen + present * rlen;
    if present < count as usize {
        errors.push(Error::new(ErrorKind::CountMismatch { count, present }, end));
    } else if bytes[end..].iter().any(|&b| b != 0) {
        errors.push(Error::new(ErrorKind::TrailingBytes(bytes.len() - end), end));
    }
    Ok(FixedRecords {
        header,
        records: &bytes[hlen..end],
        count: present,
        errors,
    })
}

fn parse_fixed(
    exporter: ExporterId,
    bytes: &[u8],
    protocol: Protocol,
) -> Result<ExportPacket<'_>, Error> {
    let FixedRecords {
        header,
        records,
        count,
        errors,
    } = fixed_records(bytes, protocol)?;
    let (template, _) = fixed_template(protocol);
    Ok(ExportPacket {
        exporter,
        header,
        data_sets: vec![DataSet::new(template.clone(), None, 0, records, count)],
        missing: Vec::new(),
        templates: Vec::new(),
        errors,
    })
}

/// [`visit_packet_from`] for v1/v5/v7: one data set of the fixed template.
fn visit_fixed<'a, F: FnMut(DataSetView<'_>)>(
    exporter: ExporterId,
    bytes: &'a [u8],
    protocol: Protocol,
    mut sink: VisitSets<'a, F>,
) -> Result<VisitedPacket<'a>, Error> {
    let FixedRecords {
        header,
        records,
        count,
        errors,
    } = fixed_records(bytes, protocol)?;
    let (template, _) = fixed_template(protocol);
    sink.known(template, 0, records, count);
    Ok(VisitedPacket {
        exporter,
        header,
        data_sets: sink.data_sets,
        records: sink.records,
        missing: Vec::new(),
        templates: Vec::new(),
        errors,
    })
}

/// Where a packet's scope is in the cache, once looked up. Positions hold
/// until the cache changes (storing a template can evict a scope, which
/// moves another), so a walk forgets it whenever it stores or withdraws.
#[derive(Debug, Clone, Copy)]
enum ScopeAt {
    NotLookedUp,
    Absent,
    At(usize),
}

/// Where a walk puts the data sets it decodes: into an [`ExportPacket`]'s
/// list ([`PacketSets`], for [`parse_packet`]) or to a visitor
/// ([`VisitSets`], for [`visit_packet`]). The walk itself (set headers,
/// templates, template lookups, record counts, errors) is the same code for
/// both.
trait SetSink<'a> {
    /// What the walk returns.
    type Output;
    /// A data set whose template is known when the walk reaches it: `body`
    /// holds exactly `count` whole records (padding checked already).
    fn known(&mut self, template: &Arc<Template>, offset: usize, body: &'a [u8], count: usize);
    /// The same for a data set whose template was defined later in the packet
    /// (handed over at the end of the walk).
    fn late(&mut self, template: &Arc<Template>, offset: usize, body: &'a [u8], count: usize);
    /// The walk is over: build the output from the packet's exporter,
    /// header and other lists. By reference, as [`Walk::finish`].
    ///
    /// The lists come as arguments, not in a struct: built into a struct
    /// and moved into the output, they were stored as 8-byte words and
    /// copied with 16-byte loads that straddled two of those stores, a
    /// store-forwarding stall each (AMD EPYC: a packet with no set in it
    /// 21.6 -> 13.6 ns, `bench/v9_budget.py`'s empty packet).
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        cache: &mut TemplateCache,
        scope_key: &ScopeKey,
        exporter: ExporterId,
        header: Header,
        missing: Vec<MissingSet<'a>>,
        templates: Vec<TemplateEvent>,
        errors: Vec<Error>,
    ) -> Self::Output;
}

/// The data sets of an [`ExportPacket`], each holding its template.
struct PacketSets<'a> {
    data_sets: Vec<DataSet<'a>>,
    /// Some set was decoded at the end of the walk: out of wire order.
    late: bool,
}

impl PacketSets<'_> {
    /// The data set list of the sets of `bytes[header_len..end]`, allocated
    /// once, sized by a pre-count of their set headers.
    #[inline(always)]
    fn presized(bytes: &[u8], (header_len, end): (usize, usize)) -> Self {
        PacketSets {
            data_sets: Vec::with_capacity(count_data_sets(bytes, header_len, end)),
            late: false,
        }
    }

    /// Sets decoded at the end of the walk back in wire order, and data
    /// sets whose template has lists given the scope snapshot, once per
    /// packet: holding it during the walk would make every later template
    /// change in the packet copy the whole scope. Sub-template lists
    /// resolve against the templates known at the end of the packet.
    #[cold]
    #[inline(never)]
    fn settle(&mut self, cache: &mut TemplateCache, scope_key: &ScopeKey) {
        if self.late {
            self.data_sets.sort_by_key(|s| s.offset);
        }
        if self.data_sets.iter().any(|s| s.template.has_lists) {
            let scope = cache.snapshot(scope_key);
            for set in self.data_sets.iter_mut().filter(|s| s.template.has_lists) {
                set.scope = Some(scope.clone());
            }
        }
    }
}

impl<'a> SetSink<'a> for PacketSets<'a> {
    type Output = ExportPacket<'a>;

    #[inline(always)]
    fn known(&mut self, template: &Arc<Template>, offset: usize, body: &'a [u8], count: usize) {
        self.data_sets
            .push(DataSet::new(template.clone(), None, offset, body, count));
    }

    fn late(&mut self, template: &Arc<Template>, offset: usize, body: &'a [u8], count: usize) {
        self.known(template, offset, body, count);
        self.late = true;
    }

    /// Inlined, as `VisitSets::finish`: out of line, the header went to it
    /// as an argument stored in two 4-byte words (the enum's tag and first
    /// field) and read back as one 8-byte word, a store-forwarding stall a
    /// packet.
    #[inline(always)]
    fn finish(
        &mut self,
        cache: &mut TemplateCache,
        scope_key: &ScopeKey,
        exporter: ExporterId,
        header: Header,
        missing: Vec<MissingSet<'a>>,
        templates: Vec<TemplateEvent>,
        errors: Vec<Error>,
    ) -> ExportPacket<'a> {
        if self.late || self.data_sets.iter().any(|s| s.template.has_lists) {
            self.settle(cache, scope_key);
        }
        ExportPacket {
            exporter,
            header,
            data_sets: std::mem::take(&mut self.data_sets),
            missing,
            templates,
            errors,
        }
    }
}

/// A data set handed to the visitor at the end of the walk (see [`VisitSets`]).
struct HeldSet<'a> {
    template: Arc<Template>,
    offset: usize,
    body: &'a [u8],
    count: usize,
}

/// Hands each data set to a visitor as the walk reaches it, with its
/// template borrowed from the cache (no reference count, no list).
struct VisitSets<'a, F> {
    visit: F,
    data_sets: usize,
    records: usize,
    /// Sets visited at the end of the walk, in wire order: those whose
    /// template has RFC 6313 lists (their sub-template lists resolve against
    /// the templates known at the end of the packet, as in
    /// [`parse_packet`]) and those whose template came later in the packet.
    /// Rare, and only they allocate. An `Option`, taken by `finish`: the
    /// walk's drop then sees `None` and drops nothing (a `Vec` left empty
    /// by `mem::take` was still dropped by an out-of-line
    /// `drop_in_place::<Vec<HeldSet>>`, ~20 instructions a packet).
    held: Option<Vec<HeldSet<'a>>>,
}

impl<'a, F: FnMut(DataSetView<'_>)> SetSink<'a> for VisitSets<'a, F> {
    type Output = VisitedPacket<'a>;

    #[inline(always)]
    fn known(&mut self, template: &Arc<Template>, offset: usize, body: &'a [u8], count: usize) {
        if template.has_lists {
            self.late(template, offset, body, count);
            return;
        }
        self.data_sets += 1;
        self.records += count;
        (self.visit)(DataSetView::new(
            template,
            TemplateScope::empty_static(),
            offset,
            body,
            count,
        ));
    }

    #[cold]
    fn late(&mut self, template: &Arc<Template>, offset: usize, body: &'a [u8], count: usize) {
        self.held.get_or_insert_with(Vec::new).push(HeldSet {
            template: template.clone(),
            offset,
            body,
            count,
        });
    }

    #[inline(always)]
    fn finish(
        &mut self,
        cache: &mut TemplateCache,
        scope_key: &ScopeKey,
        exporter: ExporterId,
        header: Header,
        missing: Vec<MissingSet<'a>>,
        templates: Vec<TemplateEvent>,
        errors: Vec<Error>,
    ) -> VisitedPacket<'a> {
        if let Some(held) = self.held.take() {
            self.visit_held(held, cache, scope_key);
        }
        VisitedPacket {
            exporter,
            header,
            data_sets: self.data_sets,
            records: self.records,
            missing,
            templates,
            errors,
        }
    }
}

impl<'a, F: FnMut(DataSetView<'_>)> VisitSets<'a, F> {
    /// Visit the held sets, in wire order, with the scope as it is at the
    /// end of the packet.
    #[cold]
    #[inline(never)]
    fn visit_held(
        &mut self,
        mut held: Vec<HeldSet<'a>>,
        cache: &mut TemplateCache,
        scope_key: &ScopeKey,
    ) {
        held.sort_by_key(|s| s.offset);
        // As `PacketSets::finish` takes its snapshot: marks the scope used.
        let at = cache.use_scope(scope_key);
        let empty = cache.empty_scope();
        let scope = at.and_then(|at| cache.scope_in(at)).unwrap_or(&empty);
        for s in &held {
            self.data_sets += 1;
            self.records += s.count;
            (self.visit)(DataSetView::new(
                &s.template,
                scope,
                s.offset,
                s.body,
                s.count,
            ));
        }
    }
}

/// State of one set walk.
struct Walk<'a, 'c, S> {
    bytes: &'a [u8],
    cache: &'c mut TemplateCache,
    scope_key: ScopeKey,
    /// The scope's position, looked up (and marked used) at the first data
    /// set rather than hashed again for every set.
    scope_at: ScopeAt,
    /// Where the data sets go.
    sink: S,
    /// Data sets whose template was unknown when reached: retried at the
    /// end of the walk, those still unknown then left here. One list for
    /// both (a second one, empty in nearly every packet, was made, taken
    /// and dropped every packet).
    missing: Vec<MissingSet<'a>>,
    templates: Vec<TemplateEvent>,
    errors: Vec<Error>,
    /// The field specifiers of the template record being read (the cache's
    /// buffer, lent from the first template record on, see
    /// [`spec_buffer`](Self::spec_buffer): no allocation per packet).
    specs: Vec<FieldSpec>,
}

impl<'a, 'c, S: SetSink<'a>> Walk<'a, 'c, S> {
    /// A walk over the sets of `bytes`, in `scope_key`.
    /// Always inlined: returned out of line, the 232-byte walk was copied.
    #[inline(always)]
    fn new(scope_key: ScopeKey, bytes: &'a [u8], cache: &'c mut TemplateCache, sink: S) -> Self {
        Walk {
            bytes,
            cache,
            scope_key,
            scope_at: ScopeAt::NotLookedUp,
            sink,
            missing: Vec::new(),
            templates: Vec::new(),
            errors: Vec::new(),
            specs: Vec::new(),
        }
    }

    /// The position of the packet's scope, looked up (and marked used) once.
    #[inline(always)]
    fn scope_at(&mut self) -> Option<usize> {
        if let ScopeAt::NotLookedUp = self.scope_at {
            self.scope_at = match self.cache.use_scope(&self.scope_key) {
                Some(at) => ScopeAt::At(at),
                None => ScopeAt::Absent,
            };
        }
        match self.scope_at {
            ScopeAt::At(at) => Some(at),
            _ => None,
        }
    }

    /// The buffer for the field specifiers of a template record: the
    /// cache's, lent at the first template record read the slow way (most
    /// packets have none: no take and return of it for those).
    #[inline]
    fn spec_buffer(&mut self) -> &mut Vec<FieldSpec> {
        if self.specs.capacity() == 0 {
            self.specs = self.cache.take_spec_buffer();
        }
        &mut self.specs
    }

    /// The cache is about to change: positions go stale.
    fn forget_scope(&mut self) {
        self.scope_at = ScopeAt::NotLookedUp;
    }

    fn error(&mut self, kind: ErrorKind, offset: usize) {
        self.errors.push(Error::new(kind, offset));
    }

    fn store_template(
        &mut self,
        template_id: u16,
        kind: TemplateKind,
        scope_count: u16,
        offset: usize,
    ) {
        if template_id < 256 {
            self.error(ErrorKind::ReservedTemplateId(template_id), offset);
            return;
        }
        self.forget_scope();
        match self
            .cache
            .insert(self.scope_key, template_id, kind, scope_count, &self.specs)
        {
            Ok(change) => {
                self.templates.push(TemplateEvent {
                    template_id,
                    kind,
                    change,
                    offset,
                });
            }
            Err(e) => self.error(e, offset),
        }
    }

    /// A template record (`record`: its header of `header` bytes, then its
    /// field specifiers) that repeats a template the scope holds, byte for
    /// byte: what [`store_template`](Self::store_template) would do for it
    /// (a refresh: the same cache changes, the same event), without reading
    /// its specifiers one by one. Returns the record's length, or None (the
    /// cache unchanged) for a record to read the usual way.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn refresh_unchanged(
        &mut self,
        record: &[u8],
        header: usize,
        template_id: u16,
        kind: TemplateKind,
        scope_count: u16,
        field_count: usize,
        offset: usize,
    ) -> Option<usize> {
        let n = self.cache.refresh_unchanged(
            &self.scope_key,
            template_id,
            kind,
            scope_count,
            field_count,
            record.get(header..)?,
        )?;
        self.forget_scope();
        self.templates.push(TemplateEvent {
            template_id,
            kind,
            change: TemplateChange::Refreshed,
            offset,
        });
        Some(header + n)
    }

    fn withdraw(&mut self, template_id: u16, kind: TemplateKind, offset: usize) {
        self.forget_scope();
        self.cache.withdraw(self.scope_key, template_id);
        self.templates.push(TemplateEvent {
            template_id,
            kind,
            change: TemplateChange::Withdrawn,
            offset,
        });
    }

    /// RFC 7011 section 8.1: withdraw all (options) templates of the scope.
    fn withdraw_all(&mut self, kind: TemplateKind, offset: usize) {
        self.forget_scope();
        for template_id in self.cache.withdraw_all(self.scope_key, kind) {
            self.templates.push(TemplateEvent {
                template_id,
                kind,
                change: TemplateChange::Withdrawn,
                offset,
            });
        }
    }

    /// Decode a data set now, or defer it if its template is not known yet.
    /// The template is borrowed from the cache (marked used) and handed to
    /// the sink, which takes a reference count only if it keeps it.
    #[inline(always)]
    fn data_set(&mut self, template_id: u16, offset: usize, body: &'a [u8]) {
        let at = self.scope_at();
        match at.and_then(|at| self.cache.template_in(at, template_id)) {
            // Fixed-length records (nearly every template): counted here, the
            // padding error (RFC 7011 section 3.3.1, as scan_records reports
            // it) built out of line, so that no `Option<ErrorKind>` is
            // assembled and tested per set.
            Some(template) => match template.record_len {
                // compile() makes no template of length 0; checked anyway.
                Some(len) if len > 0 => {
                    // A set body is at most 65,531 bytes (16-bit set length).
                    let count = template.records_in(body.len());
                    let used = count * len;
                    if body[used..].iter().any(|&b| b != 0) {
                        let error = padding_error(template, offset, body.len() - used, used);
                        self.errors.push(error);
                    }
                    self.sink.known(template, offset, &body[..used], count);
                }
                _ => {
                    let scan = scan_records(template, body);
                    if let Some(kind) = scan.problem {
                        self.errors.push(Error::new(kind, offset + 4 + scan.used));
                    }
                    self.sink
                        .known(template, offset, &body[..scan.used], scan.count);
                }
            },
            None => self.missing.push(MissingSet {
                key: TemplateKey {
                    scope: self.scope_key,
                    template_id,
                },
                offset,
                body,
            }),
        }
    }

    /// Retry deferred sets against the templates known at the end of the
    /// packet: those found go to the sink, the others back to `missing`
    /// (in wire order, as they came).
    #[cold]
    #[inline(never)]
    fn resolve_deferred(&mut self) {
        let deferred = std::mem::take(&mut self.missing);
        for m in deferred {
            let at = self.scope_at();
            match at.and_then(|at| self.cache.template_in(at, m.key.template_id)) {
                Some(template) => {
                    let scan = scan_records(template, m.body);
                    if let Some(kind) = scan.problem {
                        self.errors.push(Error::new(kind, m.offset + 4 + scan.used));
                    }
                    self.sink
                        .late(template, m.offset, &m.body[..scan.used], scan.count);
                }
                None => self.missing.push(m),
            }
        }
    }

    /// Retry deferred sets, and let the sink build what the walk returns.
    /// By reference, the lists taken out: by value, the whole walk (256
    /// bytes) was copied with `memcpy` once a packet.
    #[inline(always)]
    fn finish(&mut self, exporter: ExporterId, header: Header) -> S::Output {
        if self.specs.capacity() != 0 {
            self.cache
                .return_spec_buffer(std::mem::take(&mut self.specs));
        }
        if !self.missing.is_empty() {
            self.resolve_deferred();
        }
        self.sink.finish(
            self.cache,
            &self.scope_key,
            exporter,
            header,
            std::mem::take(&mut self.missing),
            std::mem::take(&mut self.templates),
            std::mem::take(&mut self.errors),
        )
    }
}

/// The error of a data set whose bytes after its last record (`length` of
/// them, from `used`) are not all zero, as `scan_records` reports it.
#[cold]
#[inline(never)]
fn padding_error(template: &Template, offset: usize, length: usize, used: usize) -> Error {
    Error::new(
        ErrorKind::NonZeroPadding {
            template_id: template.id,
            length,
        },
        offset + 4 + used,
    )
}

/// Number of data sets (set ID >= 256, in v9 and IPFIX alike) in the sets
/// of `bytes[header_len..end]`, up to the first set that cannot be walked,
/// at most [`PRESIZED_DATA_SETS`]: the capacity of the packet's data set
/// list, so that it is allocated once. Costs a few instructions a set; a
/// `Vec` that grows reallocates (softflowd sends 7 or 8 sets a datagram).
fn count_data_sets(bytes: &[u8], header_len: usize, end: usize) -> usize {
    let mut offset = header_len;
    let mut count = 0;
    while let Some(set) = bytes
        .get(offset..end)
        .and_then(|b| SetHeader::parse(b).ok())
    {
        if set.length < 4 || count == PRESIZED_DATA_SETS {
            break;
        }
        count += (set.id >= 256) as usize;
        offset += set.length as usize;
    }
    count
}

/// A datagram of empty data sets (4 bytes each) of templates not known
/// must not reserve room for thousands of sets it will not hold.
const PRESIZED_DATA_SETS: usize = 64;

/// The big-endian 16-bit number at `b[at..at + 2]` (the caller checked
/// the length).
#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// The set walk of a NetFlow v9 packet (RFC 3954 section 5), data sets to `sink`.
#[inline(always)]
fn walk_v9<'a, S: SetSink<'a>>(
    exporter: ExporterId,
    bytes: &'a [u8],
    cache: &mut TemplateCache,
    sink: impl FnOnce(&[u8], (usize, usize)) -> S,
) -> Result<S::Output, Error> {
    let header = v9::V9Header::parse(bytes)?;
    let max_fields = cache.limits().max_fields_per_template;
    let scope_key = ScopeKey {
        exporter,
        protocol: Protocol::V9,
        domain: header.source_id,
    };
    let sink = sink(bytes, (v9::V9Header::LEN, bytes.len()));
    let mut w = Walk::new(scope_key, bytes, cache, sink);
    let end = bytes.len();
    let mut offset = v9::V9Header::LEN;
    while offset < end {
        let rest = &w.bytes[offset..];
        if rest.len() < SetHeader::LEN {
            if !all_zero(rest) {
                w.error(ErrorKind::TrailingBytes(rest.len()), offset);
            }
            break;
        }
        let set = SetHeader::parse(rest)?;
        let length = set.length as usize;
        if length == 0 && all_zero(rest) {
            // Zero padding after the last flowset (upstream issue #36).
            break;
        }
        if length < SetHeader::LEN || length > rest.len() {
            w.error(
                ErrorKind::BadSetLength {
                    set_id: set.id,
                    length: set.length,
                },
                offset,
            );
            break;
        }
        let body = &w.bytes[offset + SetHeader::LEN..offset + length];
        match set.id {
            v9::TEMPLATE_SET_ID => {
                let mut pos = 0;
                while body.len() - pos >= 4 && !all_zero(&body[pos..]) {
                    let at = offset + 4 + pos;
                    let record = &body[pos..];
                    let (id, count) = (be16(record, 0), be16(record, 2));
                    let kind = TemplateKind::Data;
                    if let Some(used) =
                        w.refresh_unchanged(record, 4, id, kind, 0, count as usize, at)
                    {
                        pos += used;
                        continue;
                    }
                    match v9::parse_template(&body[pos..], max_fields, w.spec_buffer()) {
                        Ok((id, used)) => {
                            pos += used;
                            w.store_template(id, TemplateKind::Data, 0, at);
                        }
                        Err(e) => {
                            w.error(v9_template_error(e, max_fields), at);
                            break;
                        }
                    }
                }
            }
            v9::OPTIONS_TEMPLATE_SET_ID => {
                let mut pos = 0;
                while body.len() - pos >= 6 && !all_zero(&body[pos..]) {
                    let at = offset + 4 + pos;
                    let record = &body[pos..];
                    let id = be16(record, 0);
                    let (scope_len, option_len) = (be16(record, 2), be16(record, 4));
                    if scope_len % 4 == 0 && option_len % 4 == 0 {
                        let count = (scope_len as usize + option_len as usize) / 4;
                        let (kind, scopes) = (TemplateKind::Options, scope_len / 4);
                        if let Some(used) =
                            w.refresh_unchanged(record, 6, id, kind, scopes, count, at)
                        {
                            pos += used;
                            continue;
                        }
                    }
                    match v9::parse_options_template(&body[pos..], max_fields, w.spec_buffer()) {
                        Ok((id, scopes, used)) => {
                            pos += used;
                            w.store_template(id, TemplateKind::Options, scopes, at);
                        }
                        Err(e) => {
                            w.error(v9_template_error(e, max_fields), at);
                            break;
                        }
                    }
                }
            }
            2..=255 => w.error(ErrorKind::ReservedSetId(set.id), offset),
            id => w.data_set(id, offset, body),
        }
        offset += length;
    }
    Ok(w.finish(exporter, Header::V9(header)))
}

fn v9_template_error(e: v9::TemplateParse, limit: usize) -> ErrorKind {
    match e {
        v9::TemplateParse::Truncated(id) => ErrorKind::TemplateTruncated(id.unwrap_or(0)),
        v9::TemplateParse::TooManyFields { template_id, count } => ErrorKind::TooManyFields {
            template_id,
            count,
            limit,
        },
        v9::TemplateParse::BadOptionsLengths {
            template_id,
            scope_len,
            option_len,
        } => ErrorKind::BadOptionsLengths {
            template_id,
            scope_len,
            option_len,
        },
    }
}

fn ipfix_template_error(e: ipfix::TemplateParse, limit: usize) -> ErrorKind {
    match e {
        ipfix::TemplateParse::Truncated(id) => ErrorKind::TemplateTruncated(id.unwrap_or(0)),
        ipfix::TemplateParse::TooManyFields { template_id, count } => ErrorKind::TooManyFields {
            template_id,
            count,
            limit,
        },
        ipfix::TemplateParse::BadScopeCount {
            template_id,
            scope_count,
            field_count,
        } => ErrorKind::BadScopeCount {
            template_id,
            scope_count,
            field_count,
        },
    }
}

/// The set walk of an IPFIX message (RFC 7011 section 3), data sets to `sink`.
#[inline(always)]
fn walk_ipfix<'a, S: SetSink<'a>>(
    exporter: ExporterId,
    bytes: &'a [u8],
    cache: &mut TemplateCache,
    sink: impl FnOnce(&[u8], (usize, usize)) -> S,
) -> Result<S::Output, Error> {
    let header = ipfix::IpfixHeader::parse(bytes)?;
    let length = header.length as usize;
    if length < ipfix::IpfixHeader::LEN || length > bytes.len() {
        return Err(Error::new(
            ErrorKind::BadMessageLength {
                length: header.length,
                datagram: bytes.len(),
            },
            2,
        ));
    }
    let max_fields = cache.limits().max_fields_per_template;
    let scope_key = ScopeKey {
        exporter,
        protocol: Protocol::Ipfix,
        domain: header.observation_domain,
    };
    let sink = sink(bytes, (ipfix::IpfixHeader::LEN, length));
    let mut w = Walk::new(scope_key, bytes, cache, sink);
    if !all_zero(&bytes[length..]) {
        w.error(ErrorKind::TrailingBytes(bytes.len() - length), length);
    }
    let mut offset = ipfix::IpfixHeader::LEN;
    while offset < length {
        let rest = &w.bytes[offset..length];
        if rest.len() < SetHeader::LEN {
            if !all_zero(rest) {
                w.error(ErrorKind::TrailingBytes(rest.len()), offset);
            }
            break;
        }
        let set = SetHeader::parse(rest)?;
        let set_len = set.length as usize;
        if set_len < SetHeader::LEN || set_len > rest.len() {
            w.error(
                ErrorKind::BadSetLength {
                    set_id: set.id,
                    length: set.length,
                },
                offset,
            );
            break;
        }
        let body = &w.bytes[offset + SetHeader::LEN..offset + set_len];
        match set.id {
            ipfix::TEMPLATE_SET_ID | ipfix::OPTIONS_TEMPLATE_SET_ID => {
                let options = set.id == ipfix::OPTIONS_TEMPLATE_SET_ID;
                let kind = if options {
                    TemplateKind::Options
                } else {
                    TemplateKind::Data
                };
                let mut pos = 0;
                while body.len() - pos >= 4 && !all_zero(&body[pos..]) {
                    let at = offset + 4 + pos;
                    let record = &body[pos..];
                    let (id, count) = (be16(record, 0), be16(record, 2) as usize);
                    // Field count 0 is a withdrawal; an options template
                    // record has its scope count after the field count.
                    let fast = match (count, options) {
                        (0, _) => None,
                        (_, false) => Some((4, 0)),
                        (_, true) => (record.len() >= 6).then(|| (6, be16(record, 4))),
                    };
                    if let Some((header, scopes)) = fast {
                        if let Some(used) =
                            w.refresh_unchanged(record, header, id, kind, scopes, count, at)
                        {
                            pos += used;
                            continue;
                        }
                    }
                    let parsed = if options {
                        ipfix::parse_options_template(&body[pos..], max_fields, w.spec_buffer())
                    } else {
                        ipfix::parse_template(&body[pos..], max_fields, w.spec_buffer())
                            .map(|(id, used)| (id, 0, used))
                    };
                    match parsed {
                        Ok((id, scopes, used)) => {
                            pos += used;
                            if !w.specs.is_empty() {
                                w.store_template(id, kind, scopes, at);
                            } else if id == set.id {
                                w.withdraw_all(kind, at);
                            } else if id >= 256 {
                                w.withdraw(id, kind, at);
                            } else {
                                w.error(ErrorKind::ReservedTemplateId(id), at);
                            }
                        }
                        Err(e) => {
                            w.error(ipfix_template_error(e, max_fields), at);
                            break;
                        }
                    }
                }
            }
            0..=255 => w.error(ErrorKind::ReservedSetId(set.id), offset),
            id => w.data_set(id, offset, body),
        }
        offset += set_len;
    }
    Ok(w.finish(exporter, Header::Ipfix(header)))
}

/// Decode a data set body that waited for its template (see [`crate::Decoder`]).
pub(crate) fn decode_waiting<'b>(
    template: Arc<Template>,
    scope: Arc<TemplateScope>,
    offset: usize,
    body: &'b [u8],
) -> (DataSet<'b>, Option<Error>) {
    let scan = scan_records(&template, body);
    let err = scan.problem.map(|k| Error::new(k, offset + 4 + scan.used));
    let scope = template.has_lists.then_some(scope);
    (
        DataSet::new(template, scope, offset, &body[..scan.used], scan.count),
        err,
    )
}
