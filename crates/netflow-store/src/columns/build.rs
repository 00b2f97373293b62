//! Records of decoded exports into column [`Batch`]es, and back
//! ([`record_fields`]).

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use netflow::template::REVERSE_PEN;
use netflow::{DataSet, Header, Protocol, Template, Value};

use super::{flags, set_bit, set_ones, time_unit, Batch, Column, ColumnData, COLUMNS};
use crate::Export;

/// IE 160 systemInitTimeMilliseconds (IPFIX options data).
const SYSTEM_INIT_TIME_MS: u16 = 160;

/// Builds [`Batch`]es from exports: one row per data record (flow and
/// options records), see the [module documentation](super) for the mapping.
///
/// Keeps, per exporter, the last `systemInitTimeMilliseconds` announced in
/// options data, to make IPFIX sysUpTime start/end absolute; so an exporter's
/// exports should go through one builder (the collector sends each exporter
/// to one decode worker).
#[derive(Debug)]
pub struct BatchBuilder {
    batch: Batch,
    init_time_ms: HashMap<SocketAddr, i64>,
    extra: Vec<u8>,
    /// Set at a time ([`add_set`](Self::add_set)): the rows' `extra`
    /// objects, reused.
    row_extras: Vec<Vec<u8>>,
    /// Where the fields of recent templates go.
    plans: Vec<SetPlan>,
    /// Set at a time: each record's raw start and end time, reused.
    starts: Vec<Option<u64>>,
    ends: Vec<Option<u64>>,
    /// Column by column: the index, plan index and row count of each set
    /// of the export that has rows, reused.
    column_sets: Vec<(usize, usize, usize)>,
    /// Column by column: the rows taken but not yet written, and how many
    /// are written at once (when there are no fewer).
    staged: Staged,
    stage_rows: usize,
    /// Per plan, its staged records: offset in [`Staged::bodies`] and
    /// row, reused.
    plan_records: Vec<RecordList>,
    /// [`Build::Exports`] but in tests, to compare the three ways.
    build: Build,
}

/// How [`BatchBuilder::add_export`] builds rows: the three give the same
/// rows (the tests compare them byte for byte).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Build {
    /// Column by column over the export's sets where their plans allow it
    /// ([`BatchBuilder::add_export_by_column`]), else set at a time.
    #[default]
    Exports,
    /// Set at a time where a set's plan allows it
    /// ([`BatchBuilder::add_set`]), else record at a time.
    #[cfg_attr(not(test), allow(dead_code))]
    Sets,
    /// Record at a time ([`BatchBuilder::add_record`]).
    Records,
}

/// One record's core values while its fields are read.
#[derive(Debug, Default, Clone)]
struct Row {
    flags: u16,
    src: Option<[u8; 16]>,
    dst: Option<[u8; 16]>,
    next_hop: Option<[u8; 16]>,
    src_port: Option<u64>,
    dst_port: Option<u64>,
    protocol: Option<u64>,
    bytes: Option<u64>,
    packets: Option<u64>,
    tcp_flags: Option<u64>,
    tos: Option<u64>,
    input_if: Option<u64>,
    output_if: Option<u64>,
    src_as: Option<u64>,
    dst_as: Option<u64>,
    direction: Option<u64>,
    reverse_bytes: Option<u64>,
    reverse_packets: Option<u64>,
    sampling: Option<u64>,
    ip_version: Option<u64>,
    src_mask: Option<u64>,
    dst_mask: Option<u64>,
    icmp_type: Option<u64>,
    flow_label: Option<u64>,
    end_reason: Option<u64>,
    vlan: Option<u64>,
    src_mac: Option<[u8; 6]>,
    dst_mac: Option<[u8; 6]>,
    v7_flags1: Option<u64>,
    v7_flags2: Option<u64>,
    router_sc: Option<u64>,
    /// Start/end candidates per unit (index = time unit - 1): (start, end).
    times: [(Option<u64>, Option<u64>); 5],
}

fn mapped(a: IpAddr) -> ([u8; 16], bool) {
    match a {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), false),
        IpAddr::V6(v6) => (v6.octets(), true),
    }
}

/// Which core slot a field goes to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Src,
    Dst,
    NextHop,
    /// A MAC address column (6 bytes as on the wire).
    Mac(Column),
    /// An unsigned column: the column, the max width in bytes of the
    /// field, and the flag that says which of two elements it came from
    /// (0: the column has one).
    U(Column, u32, u16),
    /// Total counters (85/86, reverse 85/86): only when the delta one is absent.
    Total(Column, u16),
    /// An IPv4 address kept as a 32-bit number (v7's `router_sc`).
    Ipv4Number(Column),
    /// Time field: unit index, start?
    Time(usize, bool),
}

fn slot(enterprise: u32, id: u16) -> Option<Slot> {
    use Column as C;
    if enterprise == REVERSE_PEN {
        return match id {
            1 => Some(Slot::U(C::ReverseBytes, 8, 0)),
            2 => Some(Slot::U(C::ReversePackets, 8, 0)),
            85 => Some(Slot::Total(C::ReverseBytes, flags::REVERSE_BYTES_TOTAL)),
            86 => Some(Slot::Total(C::ReversePackets, flags::REVERSE_PACKETS_TOTAL)),
            _ => None,
        };
    }
    if enterprise != 0 {
        return None;
    }
    Some(match id {
        1 => Slot::U(C::Bytes, 8, 0),
        2 => Slot::U(C::Packets, 8, 0),
        4 => Slot::U(C::Protocol, 1, 0),
        5 => Slot::U(C::Tos, 1, 0),
        6 => Slot::U(C::TcpFlags, 2, 0),
        7 => Slot::U(C::SrcPort, 2, 0),
        8 | 27 => Slot::Src,
        10 => Slot::U(C::InputIf, 4, 0),
        11 => Slot::U(C::DstPort, 2, 0),
        12 | 28 => Slot::Dst,
        14 => Slot::U(C::OutputIf, 4, 0),
        15 | 62 => Slot::NextHop,
        16 => Slot::U(C::SrcAs, 4, 0),
        17 => Slot::U(C::DstAs, 4, 0),
        34 => Slot::U(C::SamplingInterval, 4, 0),
        9 => Slot::U(C::SrcMask, 1, 0),
        29 => Slot::U(C::SrcMask, 1, flags::SRC_MASK_V6),
        13 => Slot::U(C::DstMask, 1, 0),
        30 => Slot::U(C::DstMask, 1, flags::DST_MASK_V6),
        32 => Slot::U(C::IcmpType, 2, 0),
        139 => Slot::U(C::IcmpType, 2, flags::ICMP_V6),
        31 => Slot::U(C::FlowLabel, 4, 0),
        136 => Slot::U(C::EndReason, 1, 0),
        56 => Slot::Mac(C::SrcMac),
        80 => Slot::Mac(C::DstMac),
        58 => Slot::U(C::Vlan, 2, 0),
        59 => Slot::U(C::Vlan, 2, flags::VLAN_POST),
        60 => Slot::U(C::IpVersion, 1, 0),
        61 => Slot::U(C::Direction, 1, 0),
        85 => Slot::Total(C::Bytes, flags::BYTES_TOTAL),
        86 => Slot::Total(C::Packets, flags::PACKETS_TOTAL),
        22 => Slot::Time(0, true),
        21 => Slot::Time(0, false),
        150 => Slot::Time(1, true),
        151 => Slot::Time(1, false),
        152 => Slot::Time(2, true),
        153 => Slot::Time(2, false),
        154 => Slot::Time(3, true),
        155 => Slot::Time(3, false),
        156 => Slot::Time(4, true),
        157 => Slot::Time(4, false),
        _ => return None,
    })
}

/// The slot of a v7 record's own fields (`FLAGS1`, `FLAGS2`, `ROUTER_SC`),
/// which have no element of their own: the fixed v7 template names them and
/// gives them id 210 (paddingOctets, which no other record field takes a
/// name of), so they are told apart by name.
fn v7_slot(field: &netflow::TemplateField) -> Option<Slot> {
    if field.spec.field.enterprise != 0 || field.spec.field.id != V7_OWN_ID {
        return None;
    }
    match &*field.name {
        "FLAGS1" => Some(Slot::U(Column::V7Flags1, 1, 0)),
        "FLAGS2" => Some(Slot::U(Column::V7Flags2, 2, 0)),
        "ROUTER_SC" => Some(Slot::Ipv4Number(Column::RouterSc)),
        _ => None,
    }
}

/// The id the fixed v7 template gives the fields of no element.
const V7_OWN_ID: u16 = 210;

/// The slot of a field of a record: by element, else a v7 field by name.
fn field_slot(field: &netflow::TemplateField) -> Option<Slot> {
    slot(field.spec.field.enterprise, field.spec.field.id).or_else(|| v7_slot(field))
}

impl Row {
    fn u(&mut self, c: Column) -> &mut Option<u64> {
        use Column as C;
        match c {
            C::Bytes => &mut self.bytes,
            C::Packets => &mut self.packets,
            C::Protocol => &mut self.protocol,
            C::Tos => &mut self.tos,
            C::TcpFlags => &mut self.tcp_flags,
            C::SrcPort => &mut self.src_port,
            C::DstPort => &mut self.dst_port,
            C::InputIf => &mut self.input_if,
            C::OutputIf => &mut self.output_if,
            C::SrcAs => &mut self.src_as,
            C::DstAs => &mut self.dst_as,
            C::SamplingInterval => &mut self.sampling,
            C::IpVersion => &mut self.ip_version,
            C::Direction => &mut self.direction,
            C::ReverseBytes => &mut self.reverse_bytes,
            C::SrcMask => &mut self.src_mask,
            C::DstMask => &mut self.dst_mask,
            C::IcmpType => &mut self.icmp_type,
            C::FlowLabel => &mut self.flow_label,
            C::EndReason => &mut self.end_reason,
            C::Vlan => &mut self.vlan,
            C::V7Flags1 => &mut self.v7_flags1,
            C::V7Flags2 => &mut self.v7_flags2,
            C::RouterSc => &mut self.router_sc,
            _ => &mut self.reverse_packets,
        }
    }

    /// Take the value into its slot; false when it must go to `extra`.
    fn take(&mut self, slot: Slot, value: &Value<'_>, width: usize) -> bool {
        match slot {
            Slot::Src | Slot::Dst | Slot::NextHop => {
                let Some(a) = value.as_ip() else { return false };
                let (bytes, v6) = mapped(a);
                let (place, bit) = match slot {
                    Slot::Src => (&mut self.src, flags::SRC_V6),
                    Slot::Dst => (&mut self.dst, flags::DST_V6),
                    _ => (&mut self.next_hop, flags::NEXT_HOP_V6),
                };
                if place.is_some() {
                    return false;
                }
                *place = Some(bytes);
                if v6 {
                    self.flags |= bit;
                }
                true
            }
            Slot::Ipv4Number(c) => {
                let Some(IpAddr::V4(a)) = value.as_ip() else {
                    return false;
                };
                let place = self.u(c);
                if place.is_some() {
                    return false;
                }
                *place = Some(u32::from(a) as u64);
                true
            }
            Slot::Mac(c) => {
                let Value::Mac(m) = *value else {
                    return false;
                };
                let place = if c == Column::SrcMac {
                    &mut self.src_mac
                } else {
                    &mut self.dst_mac
                };
                if place.is_some() {
                    return false;
                }
                *place = Some(m);
                true
            }
            Slot::U(c, max, bit) => {
                let Value::Unsigned(v) = *value else {
                    return false;
                };
                // The field's encoded width must fit the column (a wider
                // field would not come back the same).
                if width > max as usize || width == 0 {
                    return false;
                }
                let place = self.u(c);
                if place.is_some() {
                    return false;
                }
                *place = Some(v);
                self.flags |= bit;
                true
            }
            Slot::Total(c, bit) => {
                let Value::Unsigned(v) = *value else {
                    return false;
                };
                let place = self.u(c);
                if place.is_some() {
                    return false;
                }
                *place = Some(v);
                self.flags |= bit;
                true
            }
            Slot::Time(unit, start) => {
                let expected = match unit {
                    0 => matches!(value, Value::Unsigned(_)) && width <= 4,
                    1 => matches!(value, Value::DateTimeSeconds(_)),
                    2 => matches!(value, Value::DateTimeMilliseconds(_)),
                    3 => matches!(value, Value::DateTimeMicroseconds(_)),
                    _ => matches!(value, Value::DateTimeNanoseconds(_)),
                };
                if !expected {
                    return false;
                }
                let pair = &mut self.times[unit];
                let place = if start { &mut pair.0 } else { &mut pair.1 };
                if place.is_some() {
                    return false;
                }
                *place = raw_time(value);
                true
            }
        }
    }
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder {
            batch: Batch::default(),
            init_time_ms: HashMap::new(),
            extra: Vec::new(),
            row_extras: Vec::new(),
            plans: Vec::new(),
            starts: Vec::new(),
            ends: Vec::new(),
            column_sets: Vec::new(),
            staged: Staged::default(),
            stage_rows: STAGE_ROWS,
            plan_records: Vec::new(),
            build: Build::default(),
        }
    }
}

/// Rows staged before they are written column by column
/// ([`BatchBuilder::settle`]): about 57 of the generator's v9 datagrams.
const STAGE_ROWS: usize = 1024;

impl BatchBuilder {
    pub fn new() -> BatchBuilder {
        BatchBuilder::default()
    }

    /// The rows built so far.
    pub fn batch(&mut self) -> &Batch {
        self.settle();
        &self.batch
    }

    /// How many rows were built so far.
    pub fn rows(&self) -> usize {
        self.batch.rows + self.staged.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }

    /// Hand over the rows built so far (the builder is empty after; exporter
    /// state is kept).
    pub fn take(&mut self) -> Batch {
        self.settle();
        std::mem::take(&mut self.batch)
    }

    /// Give the rows built so far to `f` (which may keep them by
    /// exchanging the batch for another); the builder goes on in whatever
    /// batch `f` leaves, cleared.
    pub fn hand_over<R>(&mut self, f: impl FnOnce(&mut Batch) -> R) -> R {
        self.settle();
        let result = f(&mut self.batch);
        self.batch.clear();
        result
    }

    /// Forget the rows built so far (keeping allocations and exporter state).
    pub fn clear(&mut self) {
        self.staged.clear();
        self.batch.clear();
    }

    /// Append one row per data record of `export`; returns the rows added.
    pub fn add_export(&mut self, export: &Export<'_>) -> usize {
        if self.build == Build::Exports {
            if let Some(n) = self.add_export_by_column(export) {
                return n;
            }
            // Rows in the order of the exports.
            self.settle();
        }
        // The ways below add to every column: each must hold all rows.
        self.batch.fill_values();
        let first = self.batch.rows;
        let mut n = 0;
        for set in export.sets {
            if self.build != Build::Records {
                if let Some(rows) = self.add_set(export, set) {
                    n += rows;
                    continue;
                }
            }
            let options = set.is_options();
            for record in set.records() {
                self.add_record(export, set.template_id(), options, &record);
                n += 1;
            }
        }
        push_export_columns(&mut self.batch, export, first, n);
        n
    }

    /// The rows of a data set read field by field ([`DataSet::columns`]):
    /// where each field goes (a core column or `extra`) is worked out once
    /// per template ([`SetPlan`]), from the first record seen, instead of
    /// for every record. The rows are the same as
    /// [`add_record`](Self::add_record)'s: only sets where that holds for
    /// every record are taken; `None` (nothing added) for the others:
    /// options data (scope fields, system init times), templates of
    /// variable-length fields or lists, 8-byte sysUpTime fields (whose fit
    /// depends on the value), and any set where a field that may go to a
    /// column has a value of another kind than in the plan's first record.
    fn add_set(&mut self, export: &Export<'_>, set: &DataSet<'_>) -> Option<usize> {
        if set.is_options() {
            return None;
        }
        let count = set.record_count;
        let columns = set.columns()?;
        // Every column walks the same records (`DataSet::columns` cuts
        // them once per set), so one column's length is all of theirs
        // (each `len` is a division: worth not doing for every field).
        if count == 0 || columns.clone().next().is_some_and(|c| c.len() != count) {
            return None;
        }
        let (at, _) = self.plan_for(set)?;
        let plan = &self.plans[at];
        if !plan.usable || !plan.kinds_match(columns.clone()) {
            return None;
        }
        if self.row_extras.len() < count {
            self.row_extras.resize_with(count, Vec::new);
        }
        plan.extras(columns.clone(), &mut self.row_extras[..count]);
        write_set_rows(
            &mut self.batch,
            &self.init_time_ms,
            export,
            set.template_id(),
            columns,
            plan,
            &self.row_extras[..count],
            (&mut self.starts, &mut self.ends),
        );
        Some(count)
    }

    /// The index of the plan of `set`'s template in `self.plans`, made
    /// when there is none (and whether an older plan was dropped for it,
    /// which moves the others' indices); `None` when the set has no
    /// columns.
    fn plan_for(&mut self, set: &DataSet<'_>) -> Option<(usize, bool)> {
        if let Some(at) = self
            .plans
            .iter()
            .position(|p| Arc::ptr_eq(&p.template, &set.template))
        {
            return Some((at, false));
        }
        let plan = SetPlan::new(set)?;
        let dropped = self.plans.len() >= PLANS;
        if dropped {
            self.plans.remove(0);
        }
        self.plans.push(plan);
        Some((self.plans.len() - 1, dropped))
    }

    /// Takes an export whose data sets all follow plans that read their
    /// values straight from the records ([`RawLayout`]): its rows are
    /// staged ([`Staged`]: the sets' record bytes, the export's header
    /// values, each row's times and `extra`) and written column by column
    /// for many exports at once by [`settle`](Self::settle). `None`
    /// (nothing added) when any set cannot be read so (options data, a
    /// template without such a plan, values of an unexpected kind): then
    /// the sets are added one by one as before, after the staged rows. The
    /// rows are the same as [`add_set`](Self::add_set)'s and
    /// [`add_record`](Self::add_record)'s (the tests compare all three byte
    /// for byte).
    fn add_export_by_column(&mut self, export: &Export<'_>) -> Option<usize> {
        // A plan dropped for a new template would move the plan indices of
        // the staged sets: those are written first.
        if self.staged.rows > 0
            && self.plans.len() >= PLANS
            && export.sets.iter().any(|s| {
                !self
                    .plans
                    .iter()
                    .any(|p| Arc::ptr_eq(&p.template, &s.template))
            })
        {
            self.settle();
        }
        self.column_sets.clear();
        let base = self.staged.rows;
        let mut total = 0;
        // The field columns every set feeds, and those some set feeds.
        let (mut fed_all, mut fed_any) = (u64::MAX, 0u64);
        for (i, set) in export.sets.iter().enumerate() {
            if set.is_options() {
                return None;
            }
            let count = set.record_count;
            if count == 0 {
                continue;
            }
            let (at, dropped) = self.plan_for(set)?;
            if dropped && !self.column_sets.is_empty() {
                // The indices already noted moved.
                return None;
            }
            let plan = &self.plans[at];
            let raw = plan.raw.as_ref().filter(|_| plan.usable)?;
            if set.bytes().len() < count * raw.stride {
                return None;
            }
            let from = base + total;
            if self.row_extras.len() < from + count {
                self.row_extras.resize_with(from + count, Vec::new);
            }
            let extras = &mut self.row_extras[from..from + count];
            if plan.any_checked || plan.passes.contains(&true) {
                // Values to check or to write to `extra`: read by the
                // decoder (the others are read from the bytes at settling).
                let columns = set.columns()?;
                if columns.clone().next().is_some_and(|c| c.len() != count)
                    || !plan.kinds_match(columns.clone())
                {
                    return None;
                }
                plan.extras(columns, extras);
            } else {
                extras.iter_mut().for_each(Vec::clear);
            }
            fed_all &= raw.fed;
            fed_any |= raw.fed;
            self.column_sets.push((i, at, count));
            total += count;
        }
        if total == 0 {
            return Some(0);
        }
        let s = &mut self.staged;
        let exporter_flag = if export.exporter.is_ipv6() {
            flags::EXPORTER_V6
        } else {
            0
        };
        let received_ms = (export.received * 1000.0) as i64;
        for &(i, at, n) in &self.column_sets {
            let (Some(set), Some(raw)) = (export.sets.get(i), self.plans[at].raw.as_ref()) else {
                continue;
            };
            let plan = &self.plans[at];
            // Times: raw from the records, made absolute now (with the
            // exporter's boot time as it is now).
            let shared = ExportValues::new(export, &self.init_time_ms, plan.chosen);
            let records = set.bytes().chunks_exact(raw.stride).take(n);
            let [starts, ends, firsts, lasts] = &mut s.times;
            let from = firsts.len();
            // The raw times are fields of the plan: every record of the
            // set has each or none does. Each read in a loop of its own.
            for (field, raw_times, t) in [(raw.start, &mut *firsts, 2), (raw.end, &mut *lasts, 3)] {
                match field {
                    Some(f) => {
                        raw_times.extend(records.clone().map(|r| f.read(r)));
                        s.times_present[t] += n;
                    }
                    None => raw_times.resize(from + n, 0),
                }
            }
            let raw_missing = u8::from(raw.start.is_none()) << 2 | u8::from(raw.end.is_none()) << 3;
            starts.reserve(n);
            ends.reserve(n);
            s.times_missing.reserve(n);
            for (&first, &last) in firsts[from..].iter().zip(&lasts[from..]) {
                let (start, end) = shared.absolute(raw.start.map(|_| first), raw.end.map(|_| last));
                let time_ms = start.unwrap_or(received_ms);
                s.min_time_ms = s.min_time_ms.min(time_ms);
                s.max_time_ms = s.max_time_ms.max(time_ms);
                s.times_present[0] += usize::from(start.is_some());
                s.times_present[1] += usize::from(end.is_some());
                starts.push(start.unwrap_or(0) as u64);
                ends.push(end.unwrap_or(0) as u64);
                s.times_missing
                    .push(raw_missing | u8::from(start.is_none()) | u8::from(end.is_none()) << 1);
            }
            let body = s.bodies.len();
            let bytes = set.bytes();
            s.bodies
                .extend_from_slice(&bytes[..(n * raw.stride).min(bytes.len())]);
            s.sets.push(StagedSet {
                plan: at,
                rows: n,
                body,
                values: [
                    Some(set.template_id() as u64),
                    plan.chosen.map(|u| u as u64 + 1),
                    Some((plan.flags | exporter_flag) as u64),
                ],
            });
        }
        s.fed_all &= fed_all;
        s.fed_any |= fed_any;
        s.exports.push(StagedExport::new(export, total));
        s.rows += total;
        if s.rows >= self.stage_rows {
            self.settle();
        }
        Some(total)
    }

    /// Write the staged rows ([`add_export_by_column`](Self::add_export_by_column))
    /// to the batch, column by column: each column is grown and given its
    /// validity bits once for all the staged exports. Written an export at
    /// a time, growing and marking all 43 columns for the ~18 rows of one
    /// of the generator's v9 datagrams was most of the collector's decode
    /// thread (callgrind).
    fn settle(&mut self) {
        let s = &mut self.staged;
        let total = s.rows;
        if total == 0 {
            return;
        }
        let b = &mut self.batch;
        let row = b.rows;
        let plans = &self.plans;
        // Values the same for every row of an export, or of a set: each
        // run appended (zeros for a run of nulls), none while no row of the
        // column has a value.
        let mut runs_of =
            |c: Column, runs: &mut dyn Iterator<Item = (usize, Option<u64>)>, any: bool| {
                let mut valid = ValidRuns::new(row);
                let w = c.width();
                let d = b.column_mut(c);
                let materialized = any || !d.values.is_empty();
                if materialized {
                    d.values.resize(row * w, 0);
                }
                // Neighbouring runs of one value written as one (the
                // generator's v9 datagrams: 8 sets of 2 records, most of
                // their values the same as the set's before).
                let mut put = |n: usize, value: Option<u64>| {
                    if materialized {
                        append_same(&mut d.values, value.unwrap_or(0), w, n);
                    }
                    match value {
                        Some(_) => valid.values(n),
                        None => valid.nulls(&mut d.valid, &mut d.nulls, n),
                    }
                };
                let mut run = (0, None);
                for (n, value) in runs {
                    if value != run.1 {
                        put(run.0, run.1);
                        run = (0, value);
                    }
                    run.0 += n;
                }
                put(run.0, run.1);
                valid.finish(&mut d.valid);
            };
        for (k, c) in EXPORT_COLUMNS.into_iter().enumerate() {
            let any = s.exports.iter().any(|e| e.values[k].is_some());
            runs_of(c, &mut s.exports.iter().map(|e| (e.rows, e.values[k])), any);
        }
        for (k, c) in [Column::TemplateId, Column::TimeUnit, Column::Flags]
            .into_iter()
            .enumerate()
        {
            let any = s.sets.iter().any(|set| set.values[k].is_some());
            runs_of(
                c,
                &mut s.sets.iter().map(|set| (set.rows, set.values[k])),
                any,
            );
        }
        let d = b.column_mut(Column::ExporterAddr);
        d.values.resize(row * 16, 0);
        for e in &s.exports {
            append_values(&mut d.values, std::iter::repeat_n(e.address, e.rows));
        }
        set_ones(&mut d.valid, row, total);
        for (t, c) in [
            Column::StartMs,
            Column::EndMs,
            Column::FirstRaw,
            Column::LastRaw,
        ]
        .into_iter()
        .enumerate()
        {
            let d = b.column_mut(c);
            d.values.resize(row * 8, 0);
            append_values(&mut d.values, s.times[t].iter().map(|v| v.to_le_bytes()));
            let mut valid = ValidRuns::new(row);
            match s.times_present[t] {
                n if n == total => valid.values(total),
                0 => valid.nulls(&mut d.valid, &mut d.nulls, total),
                _ => {
                    for missing in &s.times_missing {
                        match missing & (1 << t) {
                            0 => valid.values(1),
                            _ => valid.nulls(&mut d.valid, &mut d.nulls, 1),
                        }
                    }
                }
            }
            valid.finish(&mut d.valid);
        }
        // All the rows of one template (the usual stream: one exporter,
        // one template) whose fields feed a column each: the staged bodies
        // are its records one after the other, and each fed column is its
        // values appended in row order.
        let single = s
            .sets
            .first()
            .filter(|first| s.sets.iter().all(|set| set.plan == first.plan))
            .and_then(|first| plans.get(first.plan)?.raw.as_ref())
            .filter(|raw| {
                raw.program.len() == raw.fed.count_ones() as usize
                    && s.bodies.len() == total * raw.stride
            });
        // The field columns: grown once, then each set's fields written
        // into their rows (zeros, the nulls' values, left where no field
        // feeds a column), then the validity bits of each column. A column
        // no record fed yet is not grown: zeros are not written for
        // nothing (v5 feeds 13 of the 27, 90 of their 133 bytes a row).
        for c in FIELD_COLUMNS {
            let bit = 1u64 << c as usize;
            let d = b.column_mut(c);
            if single.is_some_and(|raw| raw.fed & bit != 0) {
                // Appended to below (after its earlier rows' zeros, when
                // it had no values).
                d.values.resize(row * c.width(), 0);
            } else if s.fed_any & bit != 0 || !d.values.is_empty() {
                d.values.resize((row + total) * c.width(), 0);
            }
        }
        if let Some(raw) = single {
            for f in &raw.program {
                f.append(&s.bodies, raw.stride, &mut b.column_mut(f.column).values);
            }
        } else {
            // Each template's records (where in `bodies`, which row), then
            // each field of each template for all its records.
            let records = &mut self.plan_records;
            records.resize_with(plans.len().max(records.len()), RecordList::default);
            for list in records.iter_mut() {
                list.clear();
            }
            let mut k = row;
            for set in &s.sets {
                if let (Some(raw), Some(list)) = (
                    plans.get(set.plan).and_then(|p| p.raw.as_ref()),
                    records.get_mut(set.plan),
                ) {
                    list.extend(set.body, raw.stride, k, set.rows);
                }
                k += set.rows;
            }
            for (plan, list) in plans.iter().zip(records.iter()) {
                let Some(raw) = plan.raw.as_ref().filter(|_| !list.records.is_empty()) else {
                    continue;
                };
                for f in &raw.program {
                    f.scatter(&s.bodies, list, &mut b.column_mut(f.column).values);
                }
            }
        }
        for c in FIELD_COLUMNS {
            let bit = 1u64 << c as usize;
            let d = b.column_mut(c);
            if s.fed_all & bit != 0 {
                set_ones(&mut d.valid, row, total);
            } else if s.fed_any & bit == 0 {
                set_bit(&mut d.valid, row + total - 1, false);
                d.nulls += total;
            } else {
                let mut valid = ValidRuns::new(row);
                for set in &s.sets {
                    let fed = plans
                        .get(set.plan)
                        .and_then(|p| p.raw.as_ref())
                        .is_some_and(|r| r.fed & bit != 0);
                    if fed {
                        valid.values(set.rows);
                    } else {
                        valid.nulls(&mut d.valid, &mut d.nulls, set.rows);
                    }
                }
                valid.finish(&mut d.valid);
            }
        }
        push_extras(b, &self.row_extras[..total]);
        b.min_time_ms = b.min_time_ms.min(s.min_time_ms);
        b.max_time_ms = b.max_time_ms.max(s.max_time_ms);
        b.rows += total;
        s.clear();
    }

    fn add_record(
        &mut self,
        export: &Export<'_>,
        template_id: u16,
        options: bool,
        record: &netflow::Record<'_>,
    ) {
        let mut row = Row::default();
        if options {
            row.flags |= flags::OPTIONS;
        }
        let exporter = export.exporter;
        self.extra.clear();
        let extra = &mut self.extra;
        let init_time_ms = &mut self.init_time_ms;
        // Total counters count only when the record has no delta counter,
        // and time fields are placed once the record's time unit is known:
        // both are only counted in this first pass over the fields, and
        // placed in a pass of their own (below) when there are any that do
        // not go to the row. The extra fields keep the order of before: the
        // others, then the totals, then the time fields, each in record order.
        let (mut time_fields, mut totals) = (0usize, 0usize);
        record.for_each_field(|field, value| {
            let spec = field.spec;
            if field.scope {
                put_extra(extra, &field.name, &value);
                return;
            }
            if spec.field.enterprise == 0 && spec.field.id == SYSTEM_INIT_TIME_MS {
                if let Some(ms) = value.as_u64() {
                    init_time_ms.insert(exporter, ms as i64);
                }
            }
            let width = if spec.is_variable() {
                0
            } else {
                spec.length as usize
            };
            match field_slot(field) {
                Some(s @ Slot::Time(..)) => {
                    // The first start and end of each unit (of the type the
                    // unit has) are its candidates.
                    time_fields += 1;
                    row.take(s, &value, time_width(&value));
                }
                Some(Slot::Total(..)) => totals += 1,
                Some(s) if row.take(s, &value, width) => {}
                _ => put_extra(extra, &field.name, &value),
            }
        });
        if totals > 0 {
            record.for_each_field(|field, value| {
                let id = field.spec.field;
                let Some(s @ Slot::Total(..)) = slot(id.enterprise, id.id) else {
                    return;
                };
                if !field.scope && !row.take(s, &value, 8) {
                    put_extra(extra, &field.name, &value);
                }
            });
        }
        // The record's time unit: the first, in the analyzer's order
        // (sysUpTime, ms, s, us, ns), with a start value of the expected
        // type; its first start and end are core, other time fields `extra`.
        let chosen = [0usize, 2, 1, 3, 4]
            .into_iter()
            .find(|&u| row.times[u].0.is_some());
        let in_row = chosen.map_or(0, |u| {
            usize::from(row.times[u].0.is_some()) + usize::from(row.times[u].1.is_some())
        });
        if time_fields > in_row {
            let mut placed = Row::default();
            record.for_each_field(|field, value| {
                let id = field.spec.field;
                let Some(Slot::Time(unit, start)) = slot(id.enterprise, id.id) else {
                    return;
                };
                if field.scope
                    || (Some(unit) == chosen
                        && placed.take(Slot::Time(unit, start), &value, time_width(&value)))
                {
                    return;
                }
                put_extra(extra, &field.name, &value);
            });
        }
        if !self.extra.is_empty() {
            self.extra.push(b'}');
        }
        write_rows(
            &mut self.batch,
            &self.init_time_ms,
            export,
            template_id,
            std::slice::from_mut(&mut row),
            chosen,
            &[&self.extra[..]],
        );
    }
}

/// Plans kept at most (the templates an exporter alternates between).
const PLANS: usize = 8;

/// Where the fields of a template's data sets go, worked out from the
/// first record seen as [`BatchBuilder::add_record`] decides it for every
/// record ([`BatchBuilder::add_set`]).
#[derive(Debug)]
struct SetPlan {
    /// Held, so that no other template can have its address meanwhile.
    template: Arc<Template>,
    /// False when the template's sets are always read record at a time.
    usable: bool,
    /// Per field (of [`DataSet::columns`]): where it goes,
    places: Vec<Place>,
    /// whether its values must be checked to be of the kind `variants`
    /// says (a field that may go to a column, of a type whose values'
    /// kind depends on the bytes: see [`kind_varies`]),
    checked: Vec<bool>,
    variants: Vec<u8>,
    /// Whether any field is checked.
    any_checked: bool,
    /// its name as a JSON string (for `extra`).
    keys: Vec<Vec<u8>>,
    /// The time unit index of the rows.
    chosen: Option<usize>,
    /// Per field: the column its values are written to, set at a time
    /// ([`write_set_rows`]),
    targets: Vec<Target>,
    /// and per column, whether a field is written to it (else nulls).
    fed: [bool; COLUMNS],
    /// Per field: in which pass over the fields it goes to `extra` (1:
    /// [`Place::Extra`], 2: [`Place::TotalExtra`], 3: [`Place::TimeExtra`],
    /// 0: not), and whether each pass has any.
    extra_pass: Vec<u8>,
    passes: [bool; 3],
    /// The rows' flags (the same for every record of the template: which
    /// addresses are IPv6 and which counters are totals follow from the
    /// kinds of the values, which are checked).
    flags: u16,
    /// Where the values of the columns are in a record, when all can be
    /// read straight from its bytes ([`BatchBuilder::add_export_by_column`]).
    raw: Option<RawLayout>,
}

/// Where a template's core values are in each record, for the plans whose
/// column values can be read from the bytes without the decoder: unsigned
/// fields of 1 to 8 bytes (`Value::Unsigned`, big-endian), IPv4 and IPv6
/// addresses, and times that are unsigned, seconds or milliseconds (the
/// raw value is the big-endian number: [`raw_time`]).
#[derive(Debug)]
struct RawLayout {
    /// The record length.
    stride: usize,
    /// The field columns the template's fields feed, with where each
    /// value is, in field order.
    program: Vec<RawTarget>,
    /// The columns in `program` (bit `Column as usize`).
    fed: u64,
    /// The chosen unit's start and end fields.
    start: Option<RawField>,
    end: Option<RawField>,
}

/// A field's place in a record (`offset + len <= stride`, checked when
/// the layout is made).
#[derive(Debug, Clone, Copy)]
struct RawField {
    offset: usize,
    /// 1 to 8 for numbers, 4 or 16 for addresses.
    len: usize,
}

impl RawField {
    /// The field of `record` as a big-endian number.
    #[inline(always)]
    fn read(self, record: &[u8]) -> u64 {
        let Some(b) = record.get(self.offset..self.offset + self.len) else {
            return 0;
        };
        // The usual lengths as one load each (times: 4 or 8 bytes).
        match *b {
            [a, b, c, d] => u32::from_be_bytes([a, b, c, d]) as u64,
            [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
            _ => b.iter().fold(0u64, |v, &x| v << 8 | x as u64),
        }
    }
}

/// How a field's values become a column's: the field's length and the
/// column's width, worked out once per template so that writing a set's
/// values is one jump to a loop whose sizes are constants.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ValueCopy {
    /// An IPv4 address to a v4-mapped IPv6 one; an IPv6 address.
    V4,
    V6,
    /// A MAC address, its 6 bytes as they are.
    Mac,
    /// A big-endian number of `L` bytes to a little-endian one of `W`.
    N1W1,
    N1W2,
    N1W4,
    N1W8,
    N2W2,
    N2W4,
    N2W8,
    N4W4,
    N4W8,
    N8W8,
    /// Other lengths and widths (odd lengths, a number wider than its
    /// column: its low bytes).
    Any,
}

impl ValueCopy {
    fn new(len: usize, w: usize, address: bool) -> ValueCopy {
        match (address, len, w) {
            (true, 4, _) => ValueCopy::V4,
            (true, _, _) => ValueCopy::V6,
            (_, 1, 1) => ValueCopy::N1W1,
            (_, 1, 2) => ValueCopy::N1W2,
            (_, 1, 4) => ValueCopy::N1W4,
            (_, 1, 8) => ValueCopy::N1W8,
            (_, 2, 2) => ValueCopy::N2W2,
            (_, 2, 4) => ValueCopy::N2W4,
            (_, 2, 8) => ValueCopy::N2W8,
            (_, 4, 4) => ValueCopy::N4W4,
            (_, 4, 8) => ValueCopy::N4W8,
            (_, 8, 8) => ValueCopy::N8W8,
            _ => ValueCopy::Any,
        }
    }
}

/// A field column and the field that feeds it.
#[derive(Debug, Clone, Copy)]
struct RawTarget {
    column: Column,
    /// The column's width.
    w: usize,
    field: RawField,
    copy: ValueCopy,
}

impl RawTarget {
    /// [`scatter`](Self::scatter) for records that are the next rows of
    /// `out`, all of `bodies` (`stride` bytes each), in order: their
    /// values appended, where `scatter` writes over zeros written first (a
    /// `memset` of every fed column, a fifth of building the generator's
    /// v5 rows), and each record where the last ended, where `scatter`
    /// loads it from the offset its [`RecordList`] entry gives.
    #[inline]
    fn append(&self, bodies: &[u8], stride: usize, out: &mut Vec<u8>) {
        let o = self.field.offset;
        macro_rules! each {
            ($l:literal, |$a:ident| $value:expr) => {{
                append_values(
                    out,
                    bodies.chunks_exact(stride.max(1)).map(|record| {
                        // Inside the record by construction (`o + $l <=
                        // stride`, `RawLayout`): the zeros are not used.
                        let $a = record
                            .get(o..)
                            .and_then(|r| r.first_chunk::<$l>())
                            .unwrap_or(&[0; $l]);
                        $value
                    }),
                )
            }};
            ($l:literal, $n:ty, $c:ty) => {
                each!($l, |a| (<$n>::from_be_bytes(*a) as $c).to_le_bytes())
            };
        }
        match self.copy {
            ValueCopy::V4 => each!(4, |a| {
                let mut v = [0u8; 16];
                v[10] = 0xff;
                v[11] = 0xff;
                v[12..].copy_from_slice(a);
                v
            }),
            ValueCopy::V6 => each!(16, |a| *a),
            ValueCopy::Mac => each!(6, |a| *a),
            ValueCopy::N1W1 => each!(1, u8, u8),
            ValueCopy::N1W2 => each!(1, u8, u16),
            ValueCopy::N1W4 => each!(1, u8, u32),
            ValueCopy::N1W8 => each!(1, u8, u64),
            ValueCopy::N2W2 => each!(2, u16, u16),
            ValueCopy::N2W4 => each!(2, u16, u32),
            ValueCopy::N2W8 => each!(2, u16, u64),
            ValueCopy::N4W4 => each!(4, u32, u32),
            ValueCopy::N4W8 => each!(4, u32, u64),
            ValueCopy::N8W8 => each!(8, u64, u64),
            ValueCopy::Any => {
                let w = self.w;
                let m = w.min(8);
                for record in bodies.chunks_exact(stride.max(1)) {
                    let start = out.len();
                    out.extend_from_slice(&self.field.read(record).to_le_bytes()[..m]);
                    out.resize(start + w, 0);
                }
            }
        }
    }

    /// The field of each record of `bodies` at the offsets of `records`
    /// into its row of `out` (`w` bytes a value, little-endian: the low
    /// bytes of the number; addresses as 16 bytes, IPv4 v4-mapped), as
    /// [`write_set_rows`] writes the decoded values. The records of one
    /// template over many exports at once: one jump to a loop whose sizes
    /// are constants, instead of one per set of a couple of records.
    ///
    /// `records.last` is the largest record offset and the largest row in
    /// `records` ([`RecordList`]): when the last ones are inside `bodies`
    /// and `out`, all are, and the values are read and written without a
    /// check each (two per value were a fifth of writing the generator's
    /// v9 rows, 8 templates' sets a datagram).
    #[inline]
    // `$l` is 1 for some copies: the bound then reads as the others' do.
    #[allow(clippy::int_plus_one)]
    fn scatter(&self, bodies: &[u8], records: &RecordList, out: &mut [u8]) {
        let o = self.field.offset;
        let RecordList { records, last } = records;
        macro_rules! each {
            ($l:literal, $w:literal, |$a:ident| $value:expr) => {{
                if last.0 + o + $l <= bodies.len() && (last.1 + 1) * $w <= out.len() {
                    let (from, to) = (bodies.as_ptr(), out.as_mut_ptr());
                    for &(at, row) in records {
                        // SAFETY: `at <= last.0` and `row <= last.1` (their
                        // maxima, `RecordList`), so the `$l` bytes at `at +
                        // o` end at or before `last.0 + o + $l <=
                        // bodies.len()`, and the `$w` at `row * $w` at or
                        // before `(last.1 + 1) * $w <= out.len()`; both
                        // arrays have alignment 1.
                        let value = unsafe {
                            from.add(at as usize + o)
                                .cast::<[u8; $l]>()
                                .read_unaligned()
                        };
                        let $a = &value;
                        let value = $value;
                        // SAFETY: as above.
                        unsafe {
                            to.add(row as usize * $w)
                                .cast::<[u8; $w]>()
                                .write_unaligned(value)
                        };
                    }
                    return;
                }
                for &(at, row) in records {
                    let Some($a) = bodies
                        .get(at as usize + o..)
                        .and_then(|r| r.first_chunk::<$l>())
                    else {
                        continue;
                    };
                    let Some(place) = out
                        .get_mut(row as usize * $w..)
                        .and_then(|p| p.first_chunk_mut::<$w>())
                    else {
                        continue;
                    };
                    *place = $value;
                }
            }};
            // A big-endian number of type `$n` to a little-endian one of `$c`.
            ($l:literal, $w:literal, $n:ty, $c:ty) => {
                each!($l, $w, |a| (<$n>::from_be_bytes(*a) as $c).to_le_bytes())
            };
        }
        match self.copy {
            ValueCopy::V4 => each!(4, 16, |a| {
                let mut v = [0u8; 16];
                v[10] = 0xff;
                v[11] = 0xff;
                v[12..].copy_from_slice(a);
                v
            }),
            ValueCopy::V6 => each!(16, 16, |a| *a),
            ValueCopy::Mac => each!(6, 6, |a| *a),
            ValueCopy::N1W1 => each!(1, 1, u8, u8),
            ValueCopy::N1W2 => each!(1, 2, u8, u16),
            ValueCopy::N1W4 => each!(1, 4, u8, u32),
            ValueCopy::N1W8 => each!(1, 8, u8, u64),
            ValueCopy::N2W2 => each!(2, 2, u16, u16),
            ValueCopy::N2W4 => each!(2, 4, u16, u32),
            ValueCopy::N2W8 => each!(2, 8, u16, u64),
            ValueCopy::N4W4 => each!(4, 4, u32, u32),
            ValueCopy::N4W8 => each!(4, 8, u32, u64),
            ValueCopy::N8W8 => each!(8, 8, u64, u64),
            ValueCopy::Any => {
                let w = self.w;
                let m = w.min(8);
                for &(at, row) in records.iter() {
                    let Some(record) = bodies.get(at as usize..) else {
                        continue;
                    };
                    let le = self.field.read(record).to_le_bytes();
                    if let Some(place) = out.get_mut(row as usize * w..row as usize * w + m) {
                        place.copy_from_slice(&le[..m]);
                    }
                }
            }
        }
    }
}

/// A template's staged records ([`BatchBuilder::settle`]): where each is
/// in the staged bodies and which row it is, and the largest of each
/// (what [`RawTarget::scatter`] checks instead of every record).
#[derive(Debug, Default)]
struct RecordList {
    records: Vec<(u32, u32)>,
    last: (usize, usize),
}

impl RecordList {
    fn clear(&mut self) {
        self.records.clear();
        self.last = (0, 0);
    }

    /// Records `0..n` of `stride` bytes from `body`, rows from `row`.
    fn extend(&mut self, body: usize, stride: usize, row: usize, n: usize) {
        if n == 0 {
            return;
        }
        self.records
            .extend((0..n).map(|r| ((body + r * stride) as u32, (row + r) as u32)));
        let (at, row) = (body + (n - 1) * stride, row + n - 1);
        self.last = (self.last.0.max(at), self.last.1.max(row));
    }
}

/// Validity bits appended a run of valid values at a time
/// ([`BatchBuilder::add_export_by_column`]): the bits of a column's valid
/// rows are set when a null or the end comes, with one [`set_ones`].
struct ValidRuns {
    /// The next row, and the first of the current run of valid ones.
    row: usize,
    run: usize,
}

impl ValidRuns {
    fn new(row: usize) -> ValidRuns {
        ValidRuns { row, run: row }
    }

    fn values(&mut self, n: usize) {
        self.row += n;
    }

    fn nulls(&mut self, valid: &mut Vec<u8>, nulls: &mut usize, n: usize) {
        if n == 0 {
            return;
        }
        self.finish(valid);
        self.row += n;
        set_bit(valid, self.row - 1, false);
        *nulls += n;
        self.run = self.row;
    }

    fn finish(&mut self, valid: &mut Vec<u8>) {
        set_ones(valid, self.run, self.row - self.run);
        self.run = self.row;
    }
}

/// Appends `values` to `out`, each written once into the room reserved
/// for them: growing `out` with zeros first and writing the values over
/// them (`memset`, then the stores) was a fifth of building the
/// generator's v5 rows, and pushing them one by one a capacity check
/// each.
#[inline(always)]
fn append_values<const W: usize>(
    out: &mut Vec<u8>,
    values: impl ExactSizeIterator<Item = [u8; W]>,
) {
    let n = values.len();
    out.reserve(n * W);
    let start = out.len();
    let mut written = 0;
    for (place, value) in out.spare_capacity_mut()[..n * W]
        .chunks_exact_mut(W)
        .zip(values)
    {
        // The value as one copy of `W` bytes: one store (written byte by
        // byte, a 2-byte number widened to 4 was two 2-byte stores).
        place.copy_from_slice(&value.map(MaybeUninit::new));
        written += 1;
    }
    // SAFETY: `written` chunks of `W` bytes after `start`, each written in
    // full above, within the capacity reserved.
    unsafe { out.set_len(start + written * W) };
}

/// Appends `n` copies of `v`'s low `w` bytes, little-endian.
#[inline(always)]
fn append_same(out: &mut Vec<u8>, v: u64, w: usize, n: usize) {
    let bytes = v.to_le_bytes();
    macro_rules! same {
        ($w:literal) => {{
            let value: [u8; $w] = bytes[..$w].try_into().unwrap_or_default();
            append_values(out, std::iter::repeat_n(value, n))
        }};
    }
    match w {
        1 => same!(1),
        2 => same!(2),
        4 => same!(4),
        8 => same!(8),
        _ => {
            let start = out.len();
            out.resize(start + n * w, 0);
            fill_same(&mut out[start..], v, w);
        }
    }
}

/// `out` filled with `v`'s low `w` bytes, little-endian, one after the
/// other. The width a constant in each loop: a store a value, where a
/// width known only at run time is a call to memcpy (that was most of
/// writing the export's columns, 10 for every row).
#[inline(always)]
fn fill_same(out: &mut [u8], v: u64, w: usize) {
    let bytes = v.to_le_bytes();
    macro_rules! fill {
        ($w:literal) => {{
            let value: [u8; $w] = bytes[..$w].try_into().unwrap_or_default();
            for place in out.chunks_exact_mut($w) {
                place.copy_from_slice(&value);
            }
        }};
    }
    match w {
        1 => out.fill(bytes[0]),
        2 => fill!(2),
        4 => fill!(4),
        8 => fill!(8),
        _ => {
            let m = w.min(8);
            for place in out.chunks_exact_mut(w.max(1)) {
                place[..m].copy_from_slice(&bytes[..m]);
            }
        }
    }
}

/// Where a field's values are written ([`write_set_rows`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    /// Nowhere (`extra`, written before).
    None,
    /// An unsigned column, the value's low bytes.
    Unsigned(Column),
    /// An address column, IPv4 as v4-mapped IPv6.
    Address(Column),
    /// A MAC address column.
    Mac(Column),
    /// An unsigned column of an IPv4 address's 32-bit number.
    Ipv4Number(Column),
    /// The start or end time of the chosen unit (raw, then absolute).
    Start,
    End,
}

/// The columns a field of a record can be written to (the others are the
/// export's, the times and `extra`).
const FIELD_COLUMNS: [Column; 30] = [
    Column::SrcAddr,
    Column::DstAddr,
    Column::NextHop,
    Column::SrcPort,
    Column::DstPort,
    Column::Protocol,
    Column::Bytes,
    Column::Packets,
    Column::TcpFlags,
    Column::Tos,
    Column::InputIf,
    Column::OutputIf,
    Column::SrcAs,
    Column::DstAs,
    Column::Direction,
    Column::ReverseBytes,
    Column::ReversePackets,
    Column::SamplingInterval,
    Column::IpVersion,
    Column::SrcMask,
    Column::DstMask,
    Column::IcmpType,
    Column::FlowLabel,
    Column::EndReason,
    Column::Vlan,
    Column::SrcMac,
    Column::DstMac,
    Column::V7Flags1,
    Column::V7Flags2,
    Column::RouterSc,
];

impl SetPlan {
    fn new(set: &DataSet<'_>) -> Option<SetPlan> {
        let mut plan = SetPlan {
            template: set.template.clone(),
            usable: false,
            places: Vec::new(),
            checked: Vec::new(),
            variants: Vec::new(),
            any_checked: false,
            keys: Vec::new(),
            chosen: None,
            targets: Vec::new(),
            fed: [false; COLUMNS],
            extra_pass: Vec::new(),
            passes: [false; 3],
            flags: 0,
            raw: None,
        };
        let mut probe = Row::default();
        let mut firsts = Vec::new();
        // Per field: its offset, length and kind (for the raw layout).
        let mut layout = Vec::new();
        for c in set.columns()? {
            let field = c.field();
            let spec = field.spec;
            if field.scope || (spec.field.enterprise == 0 && spec.field.id == SYSTEM_INIT_TIME_MS) {
                return Some(plan);
            }
            let first = c.values().next()?;
            layout.push((field.offset, spec.length as usize, field.kind));
            let width = if spec.is_variable() {
                0
            } else {
                spec.length as usize
            };
            let slot = field_slot(field);
            let place = match slot {
                Some(Slot::Time(0, _)) if spec.length > 4 => return Some(plan),
                Some(s @ Slot::Time(..)) => {
                    if probe.take(s, &first, time_width(&first)) {
                        Place::Row(s)
                    } else {
                        Place::TimeExtra
                    }
                }
                Some(Slot::Total(..)) => Place::Total,
                Some(s) if probe.take(s, &first, width) => Place::Row(s),
                _ => Place::Extra,
            };
            plan.places.push(place);
            let checked = slot.is_some() && kind_varies(field.kind);
            plan.any_checked |= checked;
            plan.checked.push(checked);
            plan.variants.push(variant(&first));
            let mut key = Vec::new();
            json_key(&mut key, &field.name);
            plan.keys.push(key);
            firsts.push((slot, first));
        }
        for (place, (slot, first)) in plan.places.iter_mut().zip(&firsts) {
            if *place == Place::Total {
                let s = (*slot)?;
                *place = if probe.take(s, first, 8) {
                    Place::Row(s)
                } else {
                    Place::TotalExtra
                };
            }
        }
        plan.chosen = [0usize, 2, 1, 3, 4]
            .into_iter()
            .find(|&u| probe.times[u].0.is_some());
        for place in plan.places.iter_mut() {
            if let Place::Row(Slot::Time(unit, _)) = *place {
                if Some(unit) != plan.chosen {
                    *place = Place::TimeExtra;
                }
            }
        }
        for place in &plan.places {
            let target = match *place {
                Place::Row(Slot::U(c, ..) | Slot::Total(c, _)) => Target::Unsigned(c),
                Place::Row(Slot::Src) => Target::Address(Column::SrcAddr),
                Place::Row(Slot::Dst) => Target::Address(Column::DstAddr),
                Place::Row(Slot::NextHop) => Target::Address(Column::NextHop),
                Place::Row(Slot::Mac(c)) => Target::Mac(c),
                Place::Row(Slot::Ipv4Number(c)) => Target::Ipv4Number(c),
                Place::Row(Slot::Time(_, true)) => Target::Start,
                Place::Row(Slot::Time(_, false)) => Target::End,
                _ => Target::None,
            };
            if let Target::Unsigned(c)
            | Target::Address(c)
            | Target::Mac(c)
            | Target::Ipv4Number(c) = target
            {
                plan.fed[c as usize] = true;
            }
            plan.targets.push(target);
            let pass = match place {
                Place::Extra => 1,
                Place::TotalExtra => 2,
                Place::TimeExtra => 3,
                _ => 0,
            };
            if pass > 0 {
                plan.passes[pass as usize - 1] = true;
            }
            plan.extra_pass.push(pass);
        }
        plan.flags = probe.flags;
        plan.usable = true;
        plan.raw = plan.raw_layout(set.template.record_len, &layout);
        Some(plan)
    }

    /// Where each target's values are in a record, when every one can be
    /// read from the bytes as the decoder would decode it (see
    /// [`RawLayout`]); `None` otherwise.
    fn raw_layout(
        &self,
        stride: Option<usize>,
        layout: &[(Option<usize>, usize, netflow::value::ValueKind)],
    ) -> Option<RawLayout> {
        use netflow::value::ValueKind as K;
        let stride = stride.filter(|&s| s > 0)?;
        let mut raw = RawLayout {
            stride,
            program: Vec::new(),
            fed: 0,
            start: None,
            end: None,
        };
        for (target, &(offset, len, kind)) in self.targets.iter().zip(layout) {
            if *target == Target::None {
                continue;
            }
            let offset = offset.filter(|o| o + len <= stride)?;
            let address = matches!(target, Target::Address(_));
            let fits = match target {
                Target::Address(_) => {
                    (kind == K::Ipv4 && len == 4) || (kind == K::Ipv6 && len == 16)
                }
                Target::Unsigned(_) => kind == K::Unsigned && (1..=8).contains(&len),
                Target::Mac(_) => kind == K::Mac && len == 6,
                Target::Ipv4Number(_) => kind == K::Ipv4 && len == 4,
                _ => {
                    matches!(
                        kind,
                        K::Unsigned | K::DateTimeSeconds | K::DateTimeMilliseconds
                    ) && (1..=8).contains(&len)
                }
            };
            if !fits {
                return None;
            }
            let field = RawField { offset, len };
            match *target {
                Target::Unsigned(column)
                | Target::Address(column)
                | Target::Mac(column)
                | Target::Ipv4Number(column) => {
                    let w = column.width();
                    let copy = if matches!(target, Target::Mac(_)) {
                        ValueCopy::Mac
                    } else {
                        ValueCopy::new(len, w, address)
                    };
                    raw.program.push(RawTarget {
                        column,
                        w,
                        field,
                        copy,
                    });
                    raw.fed |= 1 << column as usize;
                }
                Target::Start => raw.start = Some(field),
                _ => raw.end = Some(field),
            }
        }
        Some(raw)
    }

    /// Whether every value of the set's fields that may go to a column is
    /// of the kind this plan saw (then it goes where the plan says, as
    /// `add_record` would place it). Only the fields whose kind may vary
    /// from value to value are read for it (see `SetPlan::checked`).
    fn kinds_match(&self, columns: netflow::record::Columns<'_>) -> bool {
        if !self.any_checked {
            return true;
        }
        for (i, c) in columns.enumerate() {
            if !self.checked[i] {
                continue;
            }
            let mut same = true;
            c.for_each(|v| same &= variant(&v) == self.variants[i]);
            if !same {
                return false;
            }
        }
        true
    }

    /// Each row's `extra` object (`extras`, one a record of the set): the
    /// fields that go to no column, then the totals that did not, then the
    /// time fields that did not, as `add_record` orders them.
    fn extras(&self, columns: netflow::record::Columns<'_>, extras: &mut [Vec<u8>]) {
        for e in extras.iter_mut() {
            e.clear();
        }
        for pass in 1..=3 {
            if !self.passes[pass as usize - 1] {
                continue;
            }
            for (i, c) in columns.clone().enumerate() {
                if self.extra_pass[i] != pass {
                    continue;
                }
                let key = &self.keys[i][..];
                let mut r = 0;
                c.for_each(|v| {
                    if let Some(e) = extras.get_mut(r) {
                        put_extra_key(e, key, &v);
                    }
                    r += 1;
                });
            }
        }
        for extra in extras.iter_mut() {
            if !extra.is_empty() {
                extra.push(b'}');
            }
        }
    }
}

/// Whether the values of a fixed-length field of this kind may be of
/// different [`Value`] variants from record to record. The decoder
/// (`Value::decode` and its fast paths) picks the variant from the field's
/// kind and length alone, which a template fixes, except for booleans (1
/// and 2 are `Bool`, other bytes `Bytes`) and strings (`Bytes` when not
/// UTF-8). Reading every value of every core field a second time only to
/// find its variant was 9 % of the collector's decode thread (callgrind,
/// the generator's v9 stream).
fn kind_varies(kind: netflow::value::ValueKind) -> bool {
    use netflow::value::ValueKind as K;
    matches!(kind, K::Boolean | K::String)
}

/// A value's kind, as a number (plans compare the values of later sets
/// with it).
fn variant(v: &Value<'_>) -> u8 {
    match v {
        Value::Unsigned(_) => 0,
        Value::Signed(_) => 1,
        Value::Float(_) => 2,
        Value::Bool(_) => 3,
        Value::Mac(_) => 4,
        Value::Ipv4(_) => 5,
        Value::Ipv6(_) => 6,
        Value::String(_) => 7,
        Value::Bytes(_) => 8,
        Value::DateTimeSeconds(_) => 9,
        Value::DateTimeMilliseconds(_) => 10,
        Value::DateTimeMicroseconds(_) => 11,
        Value::DateTimeNanoseconds(_) => 12,
        Value::List(_) => 13,
    }
}

/// Where the fields of a set go ([`BatchBuilder::add_set`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// Its slot of the row.
    Row(Slot),
    /// `extra` (in field order, first).
    Extra,
    /// A total counter, while the delta counters are not all placed.
    Total,
    /// A total counter to `extra` (after the others).
    TotalExtra,
    /// A time field to `extra` (last).
    TimeExtra,
}

/// What the rows of one export and template share: their time unit and
/// what makes their times absolute (the header's own columns:
/// [`push_export_columns`]).
struct ExportValues {
    received: f64,
    uptime: Option<u32>,
    export_ms: i64,
    /// The rows' time unit (1-based, [`time_unit`]).
    unit: Option<u8>,
    /// The exporter's boot time (IPFIX sysUpTime without a header uptime).
    boot: Option<i64>,
}

impl ExportValues {
    fn new(
        export: &Export<'_>,
        init_time_ms: &HashMap<SocketAddr, i64>,
        chosen: Option<usize>,
    ) -> ExportValues {
        let header = export.header;
        let export_nanos = match header {
            Header::V1(h) => Some(h.timestamp_nano),
            Header::V5(h) => Some(h.timestamp_nano),
            Header::V7(h) => Some(h.timestamp_nano),
            _ => None,
        };
        let unit = chosen.map(|u| u as u8 + 1);
        ExportValues {
            received: export.received,
            uptime: header.uptime(),
            export_ms: header.export_time() as i64 * 1000
                + export_nanos.map_or(0, |n| (n / 1_000_000) as i64),
            unit,
            boot: match unit {
                Some(time_unit::SYS_UPTIME_MS) => init_time_ms.get(&export.exporter).copied(),
                _ => None,
            },
        }
    }

    /// A row's absolute start and end from its raw ones.
    #[inline(always)]
    fn absolute(&self, first: Option<u64>, last: Option<u64>) -> (Option<i64>, Option<i64>) {
        match self.unit {
            Some(time_unit::SYS_UPTIME_MS) => {
                let abs = |v: Option<u64>| -> Option<i64> {
                    let v = v? as u32;
                    match self.uptime {
                        Some(up) => Some(self.export_ms - up.wrapping_sub(v) as i64),
                        None => Some(self.boot? + v as i64),
                    }
                };
                (abs(first), abs(last))
            }
            Some(u) => (
                first.and_then(|v| to_unix_ms(v, u)),
                last.and_then(|v| to_unix_ms(v, u)),
            ),
            None => (None, None),
        }
    }

    /// The columns that are the same for every row of a template: `n`
    /// rows of each (the export's own: [`push_export_columns`]).
    fn push_shared(&self, b: &mut Batch, template_id: u16, n: usize) {
        push_same(b, Column::TemplateId, Some(template_id as u64), n);
        push_same(b, Column::TimeUnit, self.unit.map(u64::from), n);
    }

    /// The time columns of rows with these raw starts and ends, and the
    /// batch's time range.
    fn push_times(
        &self,
        b: &mut Batch,
        raw: impl Iterator<Item = (Option<u64>, Option<u64>)> + Clone,
    ) {
        use Column as C;
        let absolute = raw.clone().map(|(f, l)| self.absolute(f, l));
        push_all(
            b,
            C::StartMs,
            absolute.clone().map(|t| t.0.map(|v| v as u64)),
        );
        push_all(b, C::EndMs, absolute.clone().map(|t| t.1.map(|v| v as u64)));
        push_all(b, C::FirstRaw, raw.clone().map(|t| t.0));
        push_all(b, C::LastRaw, raw.map(|t| t.1));
        let received_ms = (self.received * 1000.0) as i64;
        for (start, _) in absolute {
            let time_ms = start.unwrap_or(received_ms);
            b.min_time_ms = b.min_time_ms.min(time_ms);
            b.max_time_ms = b.max_time_ms.max(time_ms);
        }
    }
}

/// Append one `extra` object per row.
fn push_extras<E: AsRef<[u8]>>(b: &mut Batch, extras: &[E]) {
    let base = b.rows;
    let extra_column = b.column_mut(Column::Extra);
    extra_column.offsets.reserve(extras.len());
    for extra in extras {
        extra_column.values.extend_from_slice(extra.as_ref());
        extra_column.offsets.push(extra_column.values.len() as u32);
    }
    // Every row has one (an empty object is "").
    set_ones(&mut extra_column.valid, base, extras.len());
}

/// Append rows: each record's core values (`rows`, with the time fields of
/// unit index `chosen`), the export's, and its `extra` object (`extras`,
/// one per row). Column by column: each column is looked up once for all
/// the rows, and the export's values are worked out once.
#[allow(clippy::too_many_arguments)]
fn write_rows<E: AsRef<[u8]>>(
    b: &mut Batch,
    init_time_ms: &HashMap<SocketAddr, i64>,
    export: &Export<'_>,
    template_id: u16,
    rows: &mut [Row],
    chosen: Option<usize>,
    extras: &[E],
) {
    let shared = ExportValues::new(export, init_time_ms, chosen);
    if export.exporter.is_ipv6() {
        for row in rows.iter_mut() {
            row.flags |= flags::EXPORTER_V6;
        }
    }
    let n = rows.len();
    let rows = &*rows;
    use Column as C;
    shared.push_shared(b, template_id, n);
    push_all(b, C::Flags, rows.iter().map(|r| Some(r.flags as u64)));
    shared.push_times(
        b,
        rows.iter().map(|r| match chosen {
            Some(u) => r.times[u],
            None => (None, None),
        }),
    );
    push_all_bytes(b, C::SrcAddr, rows.iter().map(|r| r.src.as_ref()));
    push_all_bytes(b, C::DstAddr, rows.iter().map(|r| r.dst.as_ref()));
    push_all(b, C::SrcPort, rows.iter().map(|r| r.src_port));
    push_all(b, C::DstPort, rows.iter().map(|r| r.dst_port));
    push_all(b, C::Protocol, rows.iter().map(|r| r.protocol));
    push_all(b, C::Bytes, rows.iter().map(|r| r.bytes));
    push_all(b, C::Packets, rows.iter().map(|r| r.packets));
    push_all(b, C::TcpFlags, rows.iter().map(|r| r.tcp_flags));
    push_all(b, C::Tos, rows.iter().map(|r| r.tos));
    push_all(b, C::InputIf, rows.iter().map(|r| r.input_if));
    push_all(b, C::OutputIf, rows.iter().map(|r| r.output_if));
    push_all(b, C::SrcAs, rows.iter().map(|r| r.src_as));
    push_all(b, C::DstAs, rows.iter().map(|r| r.dst_as));
    push_all_bytes(b, C::NextHop, rows.iter().map(|r| r.next_hop.as_ref()));
    push_all(b, C::Direction, rows.iter().map(|r| r.direction));
    push_all(b, C::ReverseBytes, rows.iter().map(|r| r.reverse_bytes));
    push_all(b, C::ReversePackets, rows.iter().map(|r| r.reverse_packets));
    push_all(b, C::SamplingInterval, rows.iter().map(|r| r.sampling));
    push_all(b, C::IpVersion, rows.iter().map(|r| r.ip_version));
    push_all(b, C::SrcMask, rows.iter().map(|r| r.src_mask));
    push_all(b, C::DstMask, rows.iter().map(|r| r.dst_mask));
    push_all(b, C::IcmpType, rows.iter().map(|r| r.icmp_type));
    push_all(b, C::FlowLabel, rows.iter().map(|r| r.flow_label));
    push_all(b, C::EndReason, rows.iter().map(|r| r.end_reason));
    push_all(b, C::Vlan, rows.iter().map(|r| r.vlan));
    push_all_bytes(b, C::SrcMac, rows.iter().map(|r| r.src_mac.as_ref()));
    push_all_bytes(b, C::DstMac, rows.iter().map(|r| r.dst_mac.as_ref()));
    push_all(b, C::V7Flags1, rows.iter().map(|r| r.v7_flags1));
    push_all(b, C::V7Flags2, rows.iter().map(|r| r.v7_flags2));
    push_all(b, C::RouterSc, rows.iter().map(|r| r.router_sc));
    push_extras(b, &extras[..n.min(extras.len())]);
    b.rows += n;
}

/// The rows of a data set, field by field straight into their columns
/// ([`BatchBuilder::add_set`], after the kinds of the values were checked
/// against `plan`): each field's values are read once and written to the
/// column the plan says, the columns no field feeds get nulls, the
/// export's columns its values, and the times are made absolute from the
/// raw ones. The same rows as [`write_rows`] of the records one by one
/// (the tests compare them byte for byte), without an intermediate row per
/// record: at two records per set (the generator's), writing each record
/// into a row and then each row's 37 values into their columns was a third
/// of the collector's CPU time.
#[allow(clippy::too_many_arguments)]
fn write_set_rows(
    b: &mut Batch,
    init_time_ms: &HashMap<SocketAddr, i64>,
    export: &Export<'_>,
    template_id: u16,
    columns: netflow::record::Columns<'_>,
    plan: &SetPlan,
    extras: &[Vec<u8>],
    (starts, ends): (&mut Vec<Option<u64>>, &mut Vec<Option<u64>>),
) {
    let n = extras.len();
    let row = b.rows;
    let shared = ExportValues::new(export, init_time_ms, plan.chosen);
    shared.push_shared(b, template_id, n);
    let mut row_flags = plan.flags;
    if export.exporter.is_ipv6() {
        row_flags |= flags::EXPORTER_V6;
    }
    push_same(b, Column::Flags, Some(row_flags as u64), n);
    starts.clear();
    starts.resize(n, None);
    ends.clear();
    ends.resize(n, None);
    for (c, target) in columns.zip(&plan.targets) {
        match *target {
            Target::None => {}
            Target::Unsigned(col) => {
                let w = col.width();
                let d = b.column_mut(col);
                // The width a constant in each: a store per value, not a
                // call to memcpy.
                let k = match w {
                    1 => put_values::<1>(d, &c, n, unsigned_bytes),
                    2 => put_values::<2>(d, &c, n, unsigned_bytes),
                    4 => put_values::<4>(d, &c, n, unsigned_bytes),
                    _ => put_values::<8>(d, &c, n, unsigned_bytes),
                };
                set_ones(&mut d.valid, row, k);
                push_nulls(d, row + k, n - k, w);
            }
            Target::Address(col) => {
                let d = b.column_mut(col);
                // An address, as the kinds were checked.
                let k = put_values::<16>(d, &c, n, |v| v.as_ip().map_or([0; 16], |a| mapped(a).0));
                set_ones(&mut d.valid, row, k);
                push_nulls(d, row + k, n - k, 16);
            }
            Target::Mac(col) => {
                let d = b.column_mut(col);
                // A MAC (the kind a 6-byte macAddress field always has).
                let k = put_values::<6>(d, &c, n, |v| match *v {
                    Value::Mac(m) => m,
                    _ => [0; 6],
                });
                set_ones(&mut d.valid, row, k);
                push_nulls(d, row + k, n - k, 6);
            }
            Target::Ipv4Number(col) => {
                let d = b.column_mut(col);
                // An IPv4 address, as the kinds were checked.
                let k = put_values::<4>(d, &c, n, |v| match v.as_ip() {
                    Some(IpAddr::V4(a)) => u32::from(a).to_le_bytes(),
                    _ => [0; 4],
                });
                set_ones(&mut d.valid, row, k);
                push_nulls(d, row + k, n - k, 4);
            }
            Target::Start | Target::End => {
                let out = if *target == Target::Start {
                    &mut starts[..]
                } else {
                    &mut ends[..]
                };
                let mut k = 0;
                c.for_each(|v| {
                    if let Some(slot) = out.get_mut(k) {
                        *slot = raw_time(&v);
                    }
                    k += 1;
                });
            }
        }
    }
    for col in FIELD_COLUMNS {
        if !plan.fed[col as usize] {
            push_nulls(b.column_mut(col), row, n, col.width());
        }
    }
    shared.push_times(b, starts.iter().copied().zip(ends.iter().copied()));
    push_extras(b, extras);
    b.rows += n;
}

/// Append the first `n` values of `c` to `d`, each as `bytes` makes it
/// (`W` bytes); returns how many there were (at most `n`). Their validity
/// bits are the caller's, set in one step. A value's bytes appended with
/// the column's width known only at run time (a call to memcpy) and its
/// bit set alone (the bitmap's length checked for each) cost 8 % more
/// instructions in the decode thread (callgrind, the generator's v9
/// stream).
#[inline(always)]
fn put_values<const W: usize>(
    d: &mut ColumnData,
    c: &netflow::record::Column<'_>,
    n: usize,
    bytes: impl Fn(&Value<'_>) -> [u8; W],
) -> usize {
    let start = d.values.len();
    d.values.resize(start + n * W, 0);
    let out = &mut d.values[start..];
    let mut k = 0;
    c.for_each(|v| {
        if let Some(place) = out.get_mut(k * W..k * W + W) {
            place.copy_from_slice(&bytes(&v));
            k += 1;
        }
    });
    d.values.truncate(start + k * W);
    k
}

/// An unsigned value's `W` low bytes, little-endian (0 for another kind,
/// which the plan's checks rule out).
#[inline(always)]
fn unsigned_bytes<const W: usize>(v: &Value<'_>) -> [u8; W] {
    let x = if let Value::Unsigned(x) = *v { x } else { 0 };
    let mut out = [0u8; W];
    out.copy_from_slice(&x.to_le_bytes()[..W]);
    out
}

/// The columns of the export's header and exporter (but its address), the
/// same for all its rows, in [`StagedExport::values`]' order.
const EXPORT_COLUMNS: [Column; 9] = [
    Column::Received,
    Column::ExporterPort,
    Column::Version,
    Column::Domain,
    Column::Sequence,
    Column::ExportTime,
    Column::ExportNanos,
    Column::Uptime,
    Column::HeaderSampling,
];

/// Rows taken column by column ([`BatchBuilder::add_export_by_column`])
/// and not yet written to the batch ([`BatchBuilder::settle`]). Their
/// `extra` objects are the builder's `row_extras`, from the first.
#[derive(Debug)]
struct Staged {
    rows: usize,
    /// The record bytes of the sets, one after the other.
    bodies: Vec<u8>,
    sets: Vec<StagedSet>,
    exports: Vec<StagedExport>,
    /// Per row: absolute start and end ms, raw first and last, each in
    /// its own list (0 where the row has none) as its column's values are
    /// (copied as they are: a row's four as `Option`s were 64 bytes, read
    /// back four times), and which of the four each row has not (bit `t`
    /// for `times[t]`; read only when some rows have one and some not).
    times: [Vec<u64>; 4],
    times_missing: Vec<u8>,
    /// How many rows have each of the four times (mostly all or none:
    /// then their validity bits are written without reading every row's).
    times_present: [usize; 4],
    /// The field columns every set feeds, and those some set feeds.
    fed_all: u64,
    fed_any: u64,
    min_time_ms: i64,
    max_time_ms: i64,
}

impl Default for Staged {
    fn default() -> Self {
        Staged {
            rows: 0,
            bodies: Vec::new(),
            sets: Vec::new(),
            exports: Vec::new(),
            times: Default::default(),
            times_missing: Vec::new(),
            times_present: [0; 4],
            fed_all: u64::MAX,
            fed_any: 0,
            min_time_ms: i64::MAX,
            max_time_ms: i64::MIN,
        }
    }
}

impl Staged {
    fn clear(&mut self) {
        self.rows = 0;
        self.bodies.clear();
        self.sets.clear();
        self.exports.clear();
        self.times.iter_mut().for_each(Vec::clear);
        self.times_missing.clear();
        self.times_present = [0; 4];
        self.fed_all = u64::MAX;
        self.fed_any = 0;
        self.min_time_ms = i64::MAX;
        self.max_time_ms = i64::MIN;
    }
}

/// A staged set: its plan (index in the builder's), rows, where its
/// records start in [`Staged::bodies`], and its template id, time unit and
/// flags (the same for all its rows).
#[derive(Debug)]
struct StagedSet {
    plan: usize,
    rows: usize,
    body: usize,
    values: [Option<u64>; 3],
}

/// A staged export: its rows, and the values of [`EXPORT_COLUMNS`] and
/// the exporter's address (v4-mapped) its rows have.
#[derive(Debug)]
struct StagedExport {
    rows: usize,
    values: [Option<u64>; 9],
    address: [u8; 16],
}

impl StagedExport {
    fn new(export: &Export<'_>, rows: usize) -> StagedExport {
        let header = export.header;
        let (export_nanos, header_sampling) = match header {
            Header::V1(h) => (Some(h.timestamp_nano), None),
            Header::V5(h) => (Some(h.timestamp_nano), Some(h.sampling_interval)),
            Header::V7(h) => (Some(h.timestamp_nano), None),
            _ => (None, None),
        };
        StagedExport {
            rows,
            values: [
                Some(export.received.to_bits()),
                Some(export.exporter.port() as u64),
                Some(header.version() as u64),
                header.domain().map(u64::from),
                header.sequence().map(u64::from),
                Some(header.export_time() as u64),
                export_nanos.map(u64::from),
                header.uptime().map(u64::from),
                header_sampling.map(u64::from),
            ],
            address: mapped(export.exporter.ip()).0,
        }
    }
}

/// The columns of the export's header and exporter, the same for all
/// its `n` rows from row `first` on: written once for the export after its
/// sets, not once per set (a set of the usual exporters holds 2 to 5
/// records, and these 10 columns for each set were a tenth of the decode
/// thread).
fn push_export_columns(b: &mut Batch, export: &Export<'_>, first: usize, n: usize) {
    if n == 0 {
        return;
    }
    let e = StagedExport::new(export, n);
    for (c, value) in EXPORT_COLUMNS.into_iter().zip(e.values) {
        push_same_at(b, c, value, first, n);
    }
    let d = b.column_mut(Column::ExporterAddr);
    let start = d.values.len();
    d.values.resize(start + n * 16, 0);
    for place in d.values[start..].chunks_exact_mut(16) {
        place.copy_from_slice(&e.address);
    }
    set_ones(&mut d.valid, first, n);
}

/// `n` rows of the same value (or null) in column `c`, from row `b.rows` on.
#[inline(always)]
fn push_same(b: &mut Batch, c: Column, value: Option<u64>, n: usize) {
    push_same_at(b, c, value, b.rows, n);
}

/// `n` rows of the same value (or null) in column `c`, from row `row` on.
#[inline(always)]
fn push_same_at(b: &mut Batch, c: Column, value: Option<u64>, row: usize, n: usize) {
    let w = c.width();
    let d = b.column_mut(c);
    match value {
        Some(v) => {
            let start = d.values.len();
            d.values.resize(start + n * w, 0);
            fill_same(&mut d.values[start..], v, w);
            set_ones(&mut d.valid, row, n);
        }
        None => push_nulls(d, row, n, w),
    }
}

/// `n` null values from row `row` on.
fn push_nulls(d: &mut ColumnData, row: usize, n: usize, w: usize) {
    if n == 0 {
        return;
    }
    d.values.resize(d.values.len() + n * w, 0);
    set_bit(&mut d.valid, row + n - 1, false);
    d.nulls += n;
}

/// A time field's value as `first_raw`/`last_raw` hold it.
fn raw_time(v: &Value<'_>) -> Option<u64> {
    match *v {
        Value::Unsigned(x) => Some(x),
        Value::DateTimeSeconds(x) | Value::DateTimeMilliseconds(x) => Some(x),
        Value::DateTimeMicroseconds(t) | Value::DateTimeNanoseconds(t) => {
            Some((t.seconds as u64) << 32 | t.fraction as u64)
        }
        _ => None,
    }
}

/// Encoded width for the time checks: sysUpTime fields must fit 32 bits.
fn time_width(v: &Value<'_>) -> usize {
    match v {
        Value::Unsigned(x) if *x <= u32::MAX as u64 => 4,
        _ => 8,
    }
}

/// Absolute Unix ms of a raw start/end value in `unit` (not sysUpTime).
pub(crate) fn to_unix_ms(raw: u64, unit: u8) -> Option<i64> {
    let v = i64::try_from(raw).ok();
    match unit {
        time_unit::UNIX_SECONDS => v?.checked_mul(1000),
        time_unit::UNIX_MILLIS => v,
        time_unit::NTP_MICROS | time_unit::NTP_NANOS => {
            let secs = (raw >> 32) as i64 - netflow::value::NTP_UNIX_OFFSET as i64;
            let ms = ((raw & 0xffff_ffff) * 1000) >> 32;
            Some(secs * 1000 + ms as i64)
        }
        _ => None,
    }
}

/// Append a value per row to column `c` (rows from `b.rows` on, which the
/// caller moves on after the last column). Always inlined: with the column
/// known at the call, the value's width is a constant and its bytes a
/// single store, not a call to memcpy.
#[inline(always)]
fn push_all(b: &mut Batch, c: Column, values: impl Iterator<Item = Option<u64>>) {
    let row = b.rows;
    let w = c.width();
    let d = b.column_mut(c);
    d.values.reserve(values.size_hint().0 * w);
    for (k, v) in values.enumerate() {
        match v {
            Some(v) => {
                d.values.extend_from_slice(&v.to_le_bytes()[..w]);
                set_bit(&mut d.valid, row + k, true);
            }
            None => {
                d.values.extend(std::iter::repeat_n(0u8, w));
                set_bit(&mut d.valid, row + k, false);
                d.nulls += 1;
            }
        }
    }
}

/// [`push_all`] for the 16-byte address columns.
#[inline(always)]
fn push_all_bytes<'v, const W: usize>(
    b: &mut Batch,
    c: Column,
    values: impl Iterator<Item = Option<&'v [u8; W]>>,
) {
    let row = b.rows;
    let d = b.column_mut(c);
    d.values.reserve(values.size_hint().0 * W);
    for (k, v) in values.enumerate() {
        match v {
            Some(v) => {
                d.values.extend_from_slice(v);
                set_bit(&mut d.valid, row + k, true);
            }
            None => {
                d.values.extend_from_slice(&[0u8; W]);
                set_bit(&mut d.valid, row + k, false);
                d.nulls += 1;
            }
        }
    }
}

/// Append `"name":value` to the `extra` object being built (opened at the first).
fn put_extra(out: &mut Vec<u8>, name: &str, value: &Value<'_>) {
    out.push(if out.is_empty() { b'{' } else { b',' });
    json_key(out, name);
    out.push(b':');
    json_value(out, value);
}

/// `name` as a JSON string.
fn json_key(out: &mut Vec<u8>, name: &str) {
    // Field names are printable ASCII without quotes or backslashes, which
    // JSON writes as they are: no escaping to look for. Writing into a Vec
    // cannot fail.
    if name
        .bytes()
        .all(|c| (b' '..=b'~').contains(&c) && c != b'"' && c != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, name);
    }
}

/// [`put_extra`] with the name already a JSON string (`key`).
#[inline]
fn put_extra_key(out: &mut Vec<u8>, key: &[u8], value: &Value<'_>) {
    out.push(if out.is_empty() { b'{' } else { b',' });
    out.extend_from_slice(key);
    out.push(b':');
    json_value(out, value);
}

/// A value as JSON.
#[inline]
fn json_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match *value {
        // What serde_json writes for an unsigned integer, without its
        // serializer: the decimal digits.
        Value::Unsigned(mut v) => {
            let mut digits = [0u8; 20];
            let mut at = digits.len();
            loop {
                at -= 1;
                digits[at] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            out.extend_from_slice(&digits[at..]);
        }
        Value::Signed(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Value::DateTimeSeconds(v) | Value::DateTimeMilliseconds(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes())
        }
        // Text that needs no escaping, written as the serializer would
        // write it but without it and `core::fmt` (MACs through both were
        // two thirds of the row of a pmacct record, BENCHMARKS.md, session 15).
        Value::Mac(m) => {
            out.push(b'"');
            out.extend_from_slice(&netflow::value::mac_text(&m));
            out.push(b'"');
        }
        Value::Ipv4(a) => {
            let (text, len) = netflow::value::ipv4_text(a);
            out.push(b'"');
            out.extend_from_slice(&text[..len]);
            out.push(b'"');
        }
        Value::Bytes(b) => {
            out.push(b'"');
            netflow::value::push_hex(b, out);
            out.push(b'"');
        }
        // Every value serializes, and writing into a Vec cannot fail.
        _ => {
            let _ = serde_json::to_writer(&mut *out, value);
        }
    }
}

/// The name a core field has in a record of this version (as the decoder
/// names it: v1/v5/v7 fixed layouts, v9 field types, IPFIX elements).
fn field_name(version: u16, enterprise: u32, id: u16) -> Option<&'static str> {
    let protocol = match version {
        1 => Protocol::V1,
        5 => Protocol::V5,
        7 => Protocol::V7,
        9 => Protocol::V9,
        _ => Protocol::Ipfix,
    };
    match protocol {
        Protocol::V1 | Protocol::V5 | Protocol::V7 => {
            let t = netflow::packet::fixed_record_template(protocol)?;
            t.fields
                .iter()
                .find(|f| f.spec.field.id == id && !f.skip)
                .and_then(|f| match &f.name {
                    std::borrow::Cow::Borrowed(s) => Some(*s),
                    std::borrow::Cow::Owned(_) => None,
                })
        }
        Protocol::V9 if enterprise == 0 => netflow::registry::v9_field_type(id)
            .map(|t| t.name)
            .or_else(|| netflow::registry::lookup(0, id).map(|e| e.name)),
        _ => netflow::registry::lookup(enterprise, id).map(|e| e.name),
    }
}

/// See [`Batch::record_fields`].
pub(crate) fn record_fields(b: &Batch, row: usize) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value as J;
    use Column as C;
    let mut out = serde_json::Map::new();
    let version = b.u64(C::Version, row).unwrap_or(0) as u16;
    let fl = b.flags(row);
    let mut put = |enterprise: u32, id: u16, v: J| {
        if let Some(name) = field_name(version, enterprise, id) {
            out.insert(name.to_string(), v);
        }
    };
    let addr = |c: Column, bit: u16| b.addr(c, row, fl & bit != 0);
    for (c, id) in [(C::SrcMac, 56), (C::DstMac, 80)] {
        if let Some(m) = b.mac(c, row) {
            let text = netflow::value::mac_text(&m);
            put(
                0,
                id,
                J::String(String::from_utf8_lossy(&text).into_owned()),
            );
        }
    }
    for (c, bit, v4, v6) in [
        (C::SrcAddr, flags::SRC_V6, 8, 27),
        (C::DstAddr, flags::DST_V6, 12, 28),
        (C::NextHop, flags::NEXT_HOP_V6, 15, 62),
    ] {
        if let Some(a) = addr(c, bit) {
            put(
                0,
                if a.is_ipv6() { v6 } else { v4 },
                J::String(a.to_string()),
            );
        }
    }
    // The element of a column shared by two: by the row's flag.
    let either = |bit: u16, a: u16, b: u16| if fl & bit != 0 { b } else { a };
    let plain: [(Column, u32, u16); 24] = [
        (
            C::Bytes,
            0,
            if fl & flags::BYTES_TOTAL != 0 { 85 } else { 1 },
        ),
        (
            C::Packets,
            0,
            if fl & flags::PACKETS_TOTAL != 0 {
                86
            } else {
                2
            },
        ),
        (C::Protocol, 0, 4),
        (C::Tos, 0, 5),
        (C::TcpFlags, 0, 6),
        (C::SrcPort, 0, 7),
        (C::InputIf, 0, 10),
        (C::DstPort, 0, 11),
        (C::OutputIf, 0, 14),
        (C::SrcAs, 0, 16),
        (C::DstAs, 0, 17),
        (C::SamplingInterval, 0, 34),
        (C::IpVersion, 0, 60),
        (C::Direction, 0, 61),
        (
            C::ReverseBytes,
            REVERSE_PEN,
            if fl & flags::REVERSE_BYTES_TOTAL != 0 {
                85
            } else {
                1
            },
        ),
        (
            C::ReversePackets,
            REVERSE_PEN,
            if fl & flags::REVERSE_PACKETS_TOTAL != 0 {
                86
            } else {
                2
            },
        ),
        (C::SrcMask, 0, either(flags::SRC_MASK_V6, 9, 29)),
        (C::DstMask, 0, either(flags::DST_MASK_V6, 13, 30)),
        (C::IcmpType, 0, either(flags::ICMP_V6, 32, 139)),
        (C::FlowLabel, 0, 31),
        (C::EndReason, 0, 136),
        (C::Vlan, 0, either(flags::VLAN_POST, 58, 59)),
        (C::FirstRaw, 0, 0),
        (C::LastRaw, 0, 0),
    ];
    let unit = b.u64(C::TimeUnit, row).map(|u| u as u8);
    for (c, enterprise, id) in plain {
        let Some(v) = b.u64(c, row) else { continue };
        let id = match (c, unit) {
            (C::FirstRaw | C::LastRaw, Some(u)) => {
                let start = c == C::FirstRaw;
                match u {
                    time_unit::SYS_UPTIME_MS => [21, 22][start as usize],
                    time_unit::UNIX_SECONDS => [151, 150][start as usize],
                    time_unit::UNIX_MILLIS => [153, 152][start as usize],
                    time_unit::NTP_MICROS => [155, 154][start as usize],
                    _ => [157, 156][start as usize],
                }
            }
            (C::FirstRaw | C::LastRaw, None) => continue,
            _ => id,
        };
        let value = match unit {
            Some(time_unit::NTP_MICROS | time_unit::NTP_NANOS)
                if matches!(c, C::FirstRaw | C::LastRaw) =>
            {
                J::from(
                    netflow::value::NtpTimestamp {
                        seconds: (v >> 32) as u32,
                        fraction: v as u32,
                    }
                    .unix_nanos(),
                )
            }
            _ => J::from(v),
        };
        put(enterprise, id, value);
    }
    // v7's own fields, under the names the fixed v7 template gives them.
    for (c, name) in [
        (C::V7Flags1, "FLAGS1"),
        (C::V7Flags2, "FLAGS2"),
        (C::RouterSc, "ROUTER_SC"),
    ] {
        let Some(v) = b.u64(c, row) else { continue };
        let value = if c == C::RouterSc {
            J::String(std::net::Ipv4Addr::from(v as u32).to_string())
        } else {
            J::from(v)
        };
        out.insert(name.to_string(), value);
    }
    if let Some(extra) = b.extra(row).filter(|e| !e.is_empty()) {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(extra) {
            out.extend(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use netflow::{Decoder, ExporterId};

    /// The three ways of building rows ([`Build`]) for one builder each.
    fn builders() -> [BatchBuilder; 3] {
        [Build::Exports, Build::Sets, Build::Records].map(|build| BatchBuilder {
            build,
            ..Default::default()
        })
    }

    /// The test captures (`testdata/captures/*.pcap`), by name.
    fn capture_paths() -> Vec<std::path::PathBuf> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures");
        let mut captures: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
            .collect();
        captures.sort();
        captures
    }

    /// Calls `f` with every export of the capture at `path` that `decoder`
    /// decodes (received at the datagram's capture time).
    fn for_each_export(
        path: &std::path::Path,
        decoder: &mut Decoder,
        mut f: impl FnMut(&Export<'_>),
    ) {
        let mut reader = netflow_capture::CaptureReader::open(path, Default::default()).unwrap();
        while let Some(d) = reader.next_datagram() {
            let d = d.unwrap();
            let Ok(decoded) = decoder.decode(ExporterId(d.source), d.payload, d.index, d.time_ms)
            else {
                continue;
            };
            let p = &decoded.packet;
            f(&Export {
                received: d.time_ms as f64 / 1000.0,
                exporter: d.source,
                header: &p.header,
                sets: &p.data_sets,
            });
        }
    }

    /// Every capture's records, column by column over an export's sets
    /// where it may be (the default), set at a time where it may be and
    /// record at a time: the same rows, byte for byte.
    #[test]
    fn exports_sets_and_records_give_the_same_rows() {
        let captures = capture_paths();
        assert!(captures.len() >= 10, "{captures:?}");
        let (mut by_set, mut by_export) = (0, 0);
        for path in captures {
            let mut builders = builders();
            // Staged rows written every export or two, rather than for
            // many exports at once.
            let mut small = BatchBuilder {
                stage_rows: 3,
                ..Default::default()
            };
            for_each_export(&path, &mut Decoder::default(), |export| {
                for set in export.sets {
                    let mut probe = BatchBuilder::new();
                    by_set += usize::from(probe.add_set(export, set).is_some());
                }
                let mut probe = BatchBuilder::new();
                by_export += usize::from(probe.add_export_by_column(export).is_some_and(|n| n > 0));
                let [a, b, c] = &mut builders;
                let n = a.add_export(export);
                assert_eq!(n, b.add_export(export));
                assert_eq!(n, c.add_export(export));
                assert_eq!(n, small.add_export(export));
            });
            let [a, b, c] = &mut builders;
            assert!(
                a.batch() == c.batch(),
                "{}: other rows by export",
                path.display()
            );
            assert!(
                small.batch() == c.batch(),
                "{}: other rows by export, staged a few at a time",
                path.display()
            );
            assert!(
                b.batch() == c.batch(),
                "{}: other rows set at a time",
                path.display()
            );
        }
        assert!(by_set > 100, "{by_set} sets read set at a time");
        assert!(by_export > 100, "{by_export} exports read column by column");
    }

    /// Every capture's records one after the other into the same
    /// builders: columns no record fed yet are left without values by the
    /// column-by-column build (v5 feeds no MAC column) and get them when a
    /// later capture's records feed them, or are filled with zeros when
    /// a later export is built set or record at a time. The rows, and the
    /// blocks written of them, are the same each way.
    #[test]
    fn rows_of_many_exporters_in_one_builder_are_the_same_each_way() {
        let mut captures = capture_paths();
        // v5 first (no MAC, no direction), then the captures that feed
        // them, column by column or not (options data: record at a time).
        captures.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (!name.contains("v5"), name)
        });
        let mut builders = builders();
        let mut decoder = Decoder::default();
        let mut unfed_seen = false;
        for path in &captures {
            for_each_export(path, &mut decoder, |export| {
                let [a, b, c] = &mut builders;
                let n = a.add_export(export);
                assert_eq!(n, b.add_export(export));
                assert_eq!(n, c.add_export(export));
            });
            // After the v5 captures: the MAC columns have no values yet.
            let a = builders[0].batch();
            let mac = a.column(Column::SrcMac).unwrap();
            if a.rows() > 0 && mac.nulls == a.rows() {
                unfed_seen |= mac.values.is_empty();
            }
        }
        assert!(unfed_seen, "no column was left without values");
        let [a, b, c] = &mut builders;
        let (a, b, c) = (a.take(), b.take(), c.take());
        assert!(a.rows() > 1000, "{} rows", a.rows());
        assert!(a == c, "other rows by export");
        assert!(b == c, "other rows set at a time");
        // Every fixed-width column holds all rows (the zeros of the
        // unfed ones were written once a record fed them).
        for col in Column::ALL.iter().filter(|col| col.width() > 0) {
            let d = a.column(*col).unwrap();
            assert_eq!(d.values.len(), a.rows() * col.width(), "{}", col.name());
        }
        let (mut ea, mut ec) = (
            crate::columns::file::BlockEncoder::default(),
            crate::columns::file::BlockEncoder::default(),
        );
        assert!(ea.encode(&a).0 == ec.encode(&c).0, "other blocks");
    }

    /// A batch without the values of a column no row has a value in
    /// equals one with their zeros, and appends as it; not one with other
    /// values, or other nulls.
    #[test]
    fn a_column_without_values_is_its_zeros() {
        let mut rows = BatchBuilder::new();
        let v5 = [
            0u8, 5, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 10, 0, 0, 1,
            10, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 5, 0, 0, 1, 0, 0, 0, 0, 9, 0, 0, 0, 10,
            0, 80, 1, 187, 0, 0x12, 6, 0, 0, 0, 0, 0, 24, 24, 0, 0,
        ];
        let header = netflow::parse_packet(&v5, &mut netflow::TemplateCache::new()).unwrap();
        rows.add_export(&Export {
            received: 1.5,
            exporter: "192.0.2.1:2055".parse().unwrap(),
            header: &header.header,
            sets: &header.data_sets,
        });
        let lazy = rows.take();
        assert_eq!(lazy.rows(), 1);
        let mac = lazy.column(Column::SrcMac).unwrap();
        assert!(mac.values.is_empty() && mac.nulls == 1);
        let mut zeros = lazy.clone();
        zeros.fill_values();
        assert_eq!(zeros.column(Column::SrcMac).unwrap().values, [0; 6]);
        assert!(lazy == zeros);
        assert!(zeros == lazy, "not symmetric");
        let mut other = zeros.clone();
        other.column_mut(Column::SrcMac).values[0] = 1;
        assert!(lazy != other);
        assert!(other != lazy, "not symmetric");
        let mut other = lazy.clone();
        other.column_mut(Column::SrcMac).nulls = 0;
        assert!(lazy != other);
        // Appended each way: the same rows; to a batch with values, the
        // zeros are written.
        for (first, second) in [(&lazy, &lazy), (&lazy, &zeros), (&zeros, &lazy)] {
            let mut joined = first.clone();
            joined.append(second);
            let mut expected = zeros.clone();
            expected.append(&zeros);
            assert!(joined == expected);
            let values = &joined.column(Column::SrcMac).unwrap().values;
            assert!(values.is_empty() || values.len() == 12, "{values:?}");
        }
        let mut mixed = lazy.clone();
        mixed.append(&other_mac(&zeros));
        assert_eq!(
            mixed.column(Column::SrcMac).unwrap().values,
            [0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6]
        );
    }

    /// `batch` with a source MAC address in its one row.
    fn other_mac(batch: &Batch) -> Batch {
        let mut b = batch.clone();
        let d = b.column_mut(Column::SrcMac);
        d.values = vec![1, 2, 3, 4, 5, 6];
        d.valid = vec![1];
        d.nulls = 0;
        b
    }

    /// `extra` values as the serializer writes them (what `--format
    /// flows` and `netflow decode` print), byte for byte: every variant
    /// `json_value` writes itself, with edge values, and some it leaves to
    /// the serializer (strings to escape, floats).
    #[test]
    fn json_values_are_the_serializers() {
        // Test values: a multiplicative (Weyl) sequence, its high bits.
        let mut k = 0u64;
        let mut next = move || {
            k += 1;
            k.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
        };
        let bytes: Vec<Vec<u8>> = (0..20)
            .map(|n| (0..n).map(|_| next() as u8).collect())
            .collect();
        let mut values = vec![
            Value::Unsigned(0),
            Value::Unsigned(u64::MAX),
            Value::Signed(0),
            Value::Signed(-1),
            Value::Signed(i64::MIN),
            Value::Signed(i64::MAX),
            Value::DateTimeSeconds(1_700_000_000),
            Value::DateTimeMilliseconds(u64::MAX),
            Value::Bool(true),
            Value::Bool(false),
            Value::Float(-0.5),
            Value::Float(f64::NAN),
            Value::String("a \"quoted\" \\ line\n\u{1}"),
            Value::String(""),
            Value::Ipv4(std::net::Ipv4Addr::new(0, 0, 0, 0)),
            Value::Ipv4(std::net::Ipv4Addr::new(255, 255, 255, 255)),
            Value::Ipv6("2001:db8::1".parse().unwrap()),
        ];
        for _ in 0..300 {
            let r = next();
            values.push(Value::Unsigned(r >> (r % 64)));
            values.push(Value::Signed((r as i64) >> (r % 64)));
            values.push(Value::Mac(r.to_le_bytes()[..6].try_into().unwrap()));
            values.push(Value::Ipv4(std::net::Ipv4Addr::from((r >> 7) as u32)));
        }
        values.extend(bytes.iter().map(|b| Value::Bytes(b)));
        for v in &values {
            let mut got = Vec::new();
            json_value(&mut got, v);
            // Addresses and bytes: their `Display` text as a JSON string
            // (the serializer's own text now comes from the same helpers).
            let want = match v {
                Value::Mac(_) | Value::Ipv4(_) | Value::Ipv6(_) | Value::Bytes(_) => {
                    serde_json::to_vec(&v.to_string()).unwrap()
                }
                _ => serde_json::to_vec(v).unwrap(),
            };
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{v:?}"
            );
        }
    }

    /// `kind_varies` against the decoder: for every kind it says is fixed,
    /// the values decoded from any bytes of one length are all of one
    /// variant (so a plan need not read them to check); and the kinds it
    /// names do vary.
    #[test]
    fn kinds_that_vary_are_the_decoders() {
        use netflow::value::ValueKind as K;
        let kinds = [
            K::Unsigned,
            K::Signed,
            K::Float32,
            K::Float64,
            K::Boolean,
            K::Mac,
            K::Ipv4,
            K::Ipv6,
            K::String,
            K::Bytes,
            K::DateTimeSeconds,
            K::DateTimeMilliseconds,
            K::DateTimeMicroseconds,
            K::DateTimeNanoseconds,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        for kind in kinds {
            let mut varied = false;
            for len in 1..=16usize {
                let mut seen = None;
                for round in 0..2000 {
                    let bytes: Vec<u8> = match round {
                        0 => vec![0; len],
                        1 => vec![1; len],
                        2 => vec![2; len],
                        3 => vec![0xff; len],
                        _ => (0..len).map(|_| next()).collect(),
                    };
                    let v = variant(&Value::decode(kind, &bytes));
                    if *seen.get_or_insert(v) != v {
                        varied = true;
                        assert!(kind_varies(kind), "{kind:?}, {len} bytes: variants vary");
                    }
                }
            }
            assert_eq!(varied, kind_varies(kind), "{kind:?}");
        }
    }

    /// A run of set bits as `set_bit` one at a time would set them, from
    /// every start within a byte and over byte boundaries, a few bytes
    /// (pushed one by one) and many (grown at once).
    #[test]
    fn set_ones_is_set_bit_repeated() {
        // With the bits before `from` there, and without (bytes to add
        // before the run's first).
        for prefix in [true, false] {
            for from in 0..40 {
                for n in (0..40).chain([255, 256, 257, 263, 264, 265, 300, 1000]) {
                    let mut want = Vec::new();
                    let mut got = Vec::new();
                    for i in (0..from).filter(|_| prefix) {
                        set_bit(&mut want, i, i % 3 == 0);
                        set_bit(&mut got, i, i % 3 == 0);
                    }
                    for i in from..from + n {
                        set_bit(&mut want, i, true);
                    }
                    set_ones(&mut got, from, n);
                    if n == 0 {
                        want.resize(from.div_ceil(8), 0);
                        got.resize(from.div_ceil(8), 0);
                    }
                    assert_eq!(got, want, "from {from}, {n} bits, prefix {prefix}");
                }
            }
        }
    }

    /// Rows of `export` the three ways; whether it was read set at a time
    /// and column by column.
    fn three_ways(export: &Export<'_>) -> (bool, bool) {
        let by_set = export
            .sets
            .iter()
            .all(|set| BatchBuilder::new().add_set(export, set).is_some());
        let by_export = BatchBuilder::new().add_export_by_column(export).is_some();
        let [mut a, mut b, mut c] = builders();
        let n = c.add_export(export);
        assert_eq!(a.add_export(export), n);
        assert_eq!(b.add_export(export), n);
        assert!(
            a.batch() == c.batch(),
            "other rows by export:\n{:?}\n{:?}",
            a.batch(),
            c.batch()
        );
        assert!(
            b.batch() == c.batch(),
            "other rows set at a time:\n{:?}\n{:?}",
            b.batch(),
            c.batch()
        );
        (by_set, by_export)
    }

    /// An IPFIX message (export time 1,700,000,000) with `templates`, then
    /// the data records `records` writes.
    fn ipfix_message(
        sequence: u32,
        observation_domain: u32,
        templates: &[&netflow::Template],
        records: impl FnOnce(&mut netflow::encode::MessageBuilder<'_>),
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut m = netflow::encode::MessageBuilder::ipfix(
            &mut out,
            netflow::wire::ipfix::IpfixHeader {
                export_time: 1_700_000_000,
                sequence,
                observation_domain,
                ..Default::default()
            },
        );
        for t in templates {
            m.template(t).unwrap();
        }
        records(&mut m);
        m.finish().unwrap();
        out
    }

    /// An export of sets of two templates taking turns, 1 to 3 records
    /// each, as the generator sends them: columns fed by one template and
    /// not the other (validity runs), IPv4 and IPv6 addresses, numbers
    /// narrower than their column, a 3-byte (reduced-size) number, a
    /// 2-byte field into a 1-byte column, sysUpTime times without a boot
    /// time (null start and end), millisecond ones, and a start without an
    /// end. Column by column,
    /// set at a time and record at a time give the same rows.
    #[test]
    fn sets_of_three_templates_column_by_column() {
        use netflow::{FieldSpec, OwnedValue as V, Template, TemplateKind};
        let f = |id, len| FieldSpec::new(0, id, len);
        let t4 = [
            f(8, 4),
            f(12, 4),
            f(22, 4),
            f(21, 4),
            f(1, 4),
            f(2, 8),
            f(7, 2),
            f(11, 2),
            f(4, 1),
            f(10, 2),
            f(16, 3),
            f(5, 2),
        ];
        let t6 = [
            f(27, 16),
            f(28, 16),
            f(31, 4),
            f(152, 8),
            f(153, 8),
            f(1, 8),
            f(6, 1),
            f(139, 2),
            f(58, 2),
        ];
        // A start time without an end time.
        let t7 = [f(8, 4), f(152, 8), f(1, 4)];
        let t4 = Template::compile(Protocol::Ipfix, 300, TemplateKind::Data, 0, &t4).unwrap();
        let t6 = Template::compile(Protocol::Ipfix, 301, TemplateKind::Data, 0, &t6).unwrap();
        let t7 = Template::compile(Protocol::Ipfix, 302, TemplateKind::Data, 0, &t7).unwrap();
        let mut records = 0;
        let out = ipfix_message(9, 1, &[&t4, &t6, &t7], |m| {
            for (k, &(template, n)) in [(4, 2), (6, 1), (4, 3), (7, 2), (6, 2), (6, 1), (4, 1)]
                .iter()
                .enumerate()
            {
                for i in 0..n as u64 {
                    let i = i + 10 * k as u64;
                    records += 1;
                    if template == 7 {
                        m.values(
                            &t7,
                            &[
                                V::Ipv4([10, 0, 7, i as u8].into()),
                                V::DateTimeMilliseconds(1_699_999_998_000 + i),
                                V::Unsigned(700 + i),
                            ],
                        )
                        .unwrap();
                    } else if template == 6 {
                        m.values(
                            &t6,
                            &[
                                V::Ipv6(std::net::Ipv6Addr::new(
                                    0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16,
                                )),
                                V::Ipv6(std::net::Ipv6Addr::LOCALHOST),
                                V::Unsigned(0xf_0000 + i),
                                V::DateTimeMilliseconds(1_699_999_999_000 + i),
                                V::DateTimeMilliseconds(1_700_000_000_000 + i),
                                V::Unsigned(1 << 40 | i),
                                V::Unsigned(0x12),
                                V::Unsigned(0x8000 + i),
                                V::Unsigned(100 + i),
                            ],
                        )
                        .unwrap();
                    } else {
                        m.values(
                            &t4,
                            &[
                                V::Ipv4([10, 0, 0, i as u8].into()),
                                V::Ipv4([192, 0, 2, 255 - i as u8].into()),
                                V::Unsigned(1000 + i),
                                V::Unsigned(2000 + i),
                                V::Unsigned(0xfff0_0000 + i),
                                V::Unsigned(u64::MAX - i),
                                V::Unsigned(443),
                                V::Unsigned(50_000 + i),
                                V::Unsigned(6),
                                V::Unsigned(0x0102 + i),
                                V::Unsigned(0x01_0203 + i),
                                V::Unsigned(0x1234),
                            ],
                        )
                        .unwrap();
                    }
                }
            }
        });
        let mut decoder = Decoder::default();
        let exporter: SocketAddr = "192.0.2.1:2055".parse().unwrap();
        let decoded = decoder.decode(ExporterId(exporter), &out, 1, 0).unwrap();
        let p = &decoded.packet;
        assert_eq!(p.record_count(), records);
        assert_eq!(p.data_sets.len(), 6, "one set per run of a template");
        let export = Export {
            received: 1_700_000_000.75,
            exporter,
            header: &p.header,
            sets: &p.data_sets,
        };
        assert_eq!(
            three_ways(&export),
            (true, true),
            "read set at a time, by export"
        );
        // Twice in one builder: rows after rows.
        let [mut a, _, mut c] = builders();
        for _ in 0..2 {
            a.add_export(&export);
            c.add_export(&export);
        }
        assert!(
            a.batch() == c.batch(),
            "other rows by export after other rows"
        );
    }

    /// Fields that go elsewhere than their column: duplicates, total
    /// counters with and without their delta counter, several time units,
    /// an IPv6 source after an IPv4 one, fields of no column, a second
    /// source MAC.
    #[test]
    fn every_place_of_a_field_set_at_a_time() {
        use netflow::{FieldSpec, OwnedValue as V, Template, TemplateKind};
        let f = |id, len| FieldSpec::new(0, id, len);
        let specs = [
            f(8, 4),
            f(12, 4),
            f(27, 16),
            f(1, 8),
            f(85, 8),
            f(86, 8),
            f(152, 8),
            f(153, 8),
            f(150, 4),
            f(22, 4),
            f(21, 4),
            f(22, 4),
            f(7, 2),
            f(7, 2),
            f(9, 1),
            f(82, 8),
            f(6, 2),
            f(56, 6),
            f(80, 6),
            f(56, 6),
        ];
        let t = Template::compile(Protocol::Ipfix, 300, TemplateKind::Data, 0, &specs).unwrap();
        let out = ipfix_message(5, 3, &[&t], |m| {
            for i in 0..7u64 {
                m.values(
                    &t,
                    &[
                        V::Ipv4([10, 0, 0, i as u8].into()),
                        V::Ipv4([192, 0, 2, i as u8].into()),
                        V::Ipv6(std::net::Ipv6Addr::LOCALHOST),
                        V::Unsigned(1000 + i),
                        V::Unsigned(5000 + i),
                        V::Unsigned(7 + i),
                        V::DateTimeMilliseconds(1_699_999_999_000 + i),
                        V::DateTimeMilliseconds(1_700_000_000_000 + i),
                        V::DateTimeSeconds(1_699_999_990 + i),
                        V::Unsigned(100 + i),
                        V::Unsigned(200 + i),
                        V::Unsigned(300 + i),
                        V::Unsigned(443),
                        V::Unsigned(8443),
                        V::Unsigned(24),
                        V::String(format!("ge-0/{i}")),
                        V::Unsigned(0x12),
                        V::Mac([2, 0, 0x5e, 0, 1, i as u8]),
                        V::Mac([0, 0x1b, 0x21, 0x3a, 0x4f, 1]),
                        V::Mac([0xaa, 0xbb, 0xcc, 0, 0, i as u8]),
                    ],
                )
                .unwrap();
            }
        });
        let mut decoder = Decoder::default();
        let exporter: SocketAddr = "[2001:db8::1]:4739".parse().unwrap();
        let decoded = decoder.decode(ExporterId(exporter), &out, 1, 0).unwrap();
        let p = &decoded.packet;
        assert_eq!(p.record_count(), 7);
        let export = Export {
            received: 1_700_000_000.25,
            exporter,
            header: &p.header,
            sets: &p.data_sets,
        };
        assert_eq!(
            three_ways(&export),
            (true, true),
            "read set at a time, by export"
        );
        // The first source MAC and the destination MAC in their columns,
        // the second source MAC in `extra`.
        let mut b = BatchBuilder::new();
        b.add_export(&export);
        let batch = b.take();
        assert_eq!(batch.mac(Column::SrcMac, 6), Some([2, 0, 0x5e, 0, 1, 6]));
        assert_eq!(
            batch.mac(Column::DstMac, 6),
            Some([0, 0x1b, 0x21, 0x3a, 0x4f, 1])
        );
        assert!(
            batch
                .extra(6)
                .unwrap()
                .contains(r#""sourceMacAddress#2":"aa:bb:cc:00:00:06""#),
            "{:?}",
            batch.extra(6)
        );
        assert_eq!(
            batch.record_fields(6)["destinationMacAddress"],
            "00:1b:21:3a:4f:01"
        );
    }

    /// A v7 record's own fields (`FLAGS1`, `FLAGS2`, `ROUTER_SC`, which no
    /// element names) in their columns, each way of building rows, not in
    /// `extra`; given back under their names. The values have every byte
    /// different, so a byte order mistake shows.
    #[test]
    fn v7_own_fields_have_columns() {
        use netflow::encode::{emit_v7, FixedFlow};
        use netflow::wire::v7::V7Header;
        use std::net::Ipv4Addr;
        let flows = [
            FixedFlow {
                flags1: 0x11,
                flags2: 0x2233,
                router_sc: Ipv4Addr::new(5, 6, 7, 8),
                ..FixedFlow::default()
            },
            FixedFlow {
                flags1: 0x80,
                flags2: 0xfe01,
                router_sc: Ipv4Addr::new(192, 0, 2, 1),
                ..FixedFlow::default()
            },
        ];
        let header = V7Header {
            version: 7,
            count: 0,
            uptime: 1000,
            timestamp: 1_700_000_000,
            timestamp_nano: 0,
            sequence: 1,
            reserved: 0,
        };
        let mut out = Vec::new();
        emit_v7(&header, &flows, &mut out).unwrap();
        // Where the v7 record layout puts them (24-byte header, 52-byte
        // records: flags1 at 36, flags2 at 46, router_sc at 48).
        assert_eq!(out[24 + 36], 0x11);
        assert_eq!(out[24 + 46..24 + 52], [0x22, 0x33, 5, 6, 7, 8]);
        let mut decoder = Decoder::default();
        let exporter: SocketAddr = "192.0.2.9:9995".parse().unwrap();
        let decoded = decoder.decode(ExporterId(exporter), &out, 1, 0).unwrap();
        let p = &decoded.packet;
        let export = Export {
            received: 1_700_000_000.5,
            exporter,
            header: &p.header,
            sets: &p.data_sets,
        };
        assert_eq!(three_ways(&export), (true, true));
        let mut b = BatchBuilder::new();
        assert_eq!(b.add_export(&export), 2);
        let batch = b.take();
        let want = [(0x11, 0x2233, 0x0506_0708), (0x80, 0xfe01, 0xc000_0201)];
        for (row, (f1, f2, sc)) in want.into_iter().enumerate() {
            assert_eq!(batch.u64(Column::V7Flags1, row), Some(f1));
            assert_eq!(batch.u64(Column::V7Flags2, row), Some(f2));
            assert_eq!(batch.u64(Column::RouterSc, row), Some(sc));
            assert!(
                batch.extra(row).is_none_or(str::is_empty),
                "{:?}",
                batch.extra(row)
            );
        }
        let fields = batch.record_fields(1);
        assert_eq!(fields["FLAGS1"], 0x80);
        assert_eq!(fields["FLAGS2"], 0xfe01);
        assert_eq!(fields["ROUTER_SC"], "192.0.2.1");
    }

    /// A batch made in the place of a full one is empty and has room for
    /// as many bytes in each column as the full one holds and a quarter
    /// more (no column of the next, a little larger, block grows by
    /// reallocation); a spare batch given that room keeps what it had
    /// where it had enough.
    #[test]
    fn an_empty_batch_with_the_room_of_a_full_one() {
        let path = capture_paths()
            .into_iter()
            .find(|p| p.ends_with("pmacct-v9.pcap"))
            .unwrap();
        let mut b = BatchBuilder::new();
        for_each_export(&path, &mut Decoder::default(), |e| {
            b.add_export(e);
        });
        let full = b.take();
        assert!(full.rows() > 100, "{}", full.rows());
        let with_room = |f: usize| f + f / 4;
        let has_room = |empty: &Batch| {
            assert_eq!(empty.rows(), 0);
            assert!(*empty == Batch::new());
            let mut fed = 0;
            for c in Column::ALL {
                let (Some(f), Some(e)) = (full.column(*c), empty.column(*c)) else {
                    panic!("{}: a column missing", c.name());
                };
                let name = c.name();
                assert!(e.values.capacity() >= with_room(f.values.len()), "{name}");
                assert!(e.valid.capacity() >= with_room(f.valid.len()), "{name}");
                assert!(e.offsets.capacity() >= with_room(f.offsets.len()), "{name}");
                fed += usize::from(!f.values.is_empty());
            }
            assert!(fed > 20, "{fed} columns with values");
        };
        has_room(&full.empty_with_room_of());

        // A spare: emptied, its columns the room of a smaller batch.
        let mut small = BatchBuilder::new();
        let mut exports = 0;
        for_each_export(&path, &mut Decoder::default(), |e| {
            if exports < 2 {
                small.add_export(e);
            }
            exports += 1;
        });
        let mut spare = small.take();
        assert!(spare.rows() > 0 && spare.rows() < full.rows() / 4);
        spare.clear();
        spare.make_room_of(&full);
        has_room(&spare);

        // Room enough already: the same allocations kept.
        let at = |b: &Batch| b.column(Column::SrcPort).unwrap().values.as_ptr();
        let before = at(&spare);
        spare.make_room_of(&full);
        assert_eq!(at(&spare), before, "a column with room enough reallocated");
        has_room(&spare);
    }
}
