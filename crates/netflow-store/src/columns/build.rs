//! Records of decoded exports into column [`Batch`]es, and back
//! ([`record_fields`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use netflow::template::REVERSE_PEN;
use netflow::{DataSet, Header, Protocol, Value};

use super::{flags, set_bit, time_unit, Batch, Column};
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
#[derive(Debug, Default)]
pub struct BatchBuilder {
    batch: Batch,
    init_time_ms: HashMap<SocketAddr, i64>,
    extra: Vec<u8>,
    /// Set at a time ([`add_set`](Self::add_set)): the rows and their
    /// `extra` objects, reused.
    rows: Vec<Row>,
    row_extras: Vec<Vec<u8>>,
    /// Off in tests, to compare with the record-at-a-time path.
    record_at_a_time: bool,
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
    /// Start/end candidates per unit (index = time unit - 1): (start, end).
    times: [(Option<u64>, Option<u64>); 5],
}

fn mapped(a: IpAddr) -> ([u8; 16], bool) {
    match a {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), false),
        IpAddr::V6(v6) => (v6.octets(), true),
    }
}

/// Which core slot a field goes to: (slot, max width in bytes of the value).
#[derive(Clone, Copy, PartialEq)]
enum Slot {
    Src,
    Dst,
    NextHop,
    U(Column, u32),
    /// Total counters (85/86, reverse 85/86): only when the delta one is absent.
    Total(Column, u16),
    /// Time field: unit index, start?
    Time(usize, bool),
}

fn slot(enterprise: u32, id: u16) -> Option<Slot> {
    use Column as C;
    if enterprise == REVERSE_PEN {
        return match id {
            1 => Some(Slot::U(C::ReverseBytes, 8)),
            2 => Some(Slot::U(C::ReversePackets, 8)),
            85 => Some(Slot::Total(C::ReverseBytes, flags::REVERSE_BYTES_TOTAL)),
            86 => Some(Slot::Total(C::ReversePackets, flags::REVERSE_PACKETS_TOTAL)),
            _ => None,
        };
    }
    if enterprise != 0 {
        return None;
    }
    Some(match id {
        1 => Slot::U(C::Bytes, 8),
        2 => Slot::U(C::Packets, 8),
        4 => Slot::U(C::Protocol, 1),
        5 => Slot::U(C::Tos, 1),
        6 => Slot::U(C::TcpFlags, 2),
        7 => Slot::U(C::SrcPort, 2),
        8 | 27 => Slot::Src,
        10 => Slot::U(C::InputIf, 4),
        11 => Slot::U(C::DstPort, 2),
        12 | 28 => Slot::Dst,
        14 => Slot::U(C::OutputIf, 4),
        15 | 62 => Slot::NextHop,
        16 => Slot::U(C::SrcAs, 4),
        17 => Slot::U(C::DstAs, 4),
        34 => Slot::U(C::SamplingInterval, 4),
        60 => Slot::U(C::IpVersion, 1),
        61 => Slot::U(C::Direction, 1),
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
            _ => &mut self.reverse_packets,
        }
    }

    /// Take the value into its slot; false when it must go to `extra`.
    fn take(&mut self, slot: Slot, value: &Value<'_>, width: usize) -> bool {
        let raw = |v: &Value<'_>| -> Option<u64> {
            match *v {
                Value::Unsigned(x) => Some(x),
                Value::DateTimeSeconds(x) | Value::DateTimeMilliseconds(x) => Some(x),
                Value::DateTimeMicroseconds(t) | Value::DateTimeNanoseconds(t) => {
                    Some((t.seconds as u64) << 32 | t.fraction as u64)
                }
                _ => None,
            }
        };
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
            Slot::U(c, max) => {
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
                *place = raw(value);
                true
            }
        }
    }
}

impl BatchBuilder {
    pub fn new() -> BatchBuilder {
        BatchBuilder::default()
    }

    /// The rows built so far.
    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    /// Hand over the rows built so far (the builder is empty after; exporter
    /// state is kept).
    pub fn take(&mut self) -> Batch {
        std::mem::take(&mut self.batch)
    }

    /// Forget the rows built so far (keeping allocations and exporter state).
    pub fn clear(&mut self) {
        self.batch.clear();
    }

    /// Append one row per data record of `export`; returns the rows added.
    pub fn add_export(&mut self, export: &Export<'_>) -> usize {
        let mut n = 0;
        for set in export.sets {
            if !self.record_at_a_time {
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
        n
    }

    /// The rows of a data set read field by field ([`DataSet::columns`]):
    /// where each field goes (a core column or `extra`) is worked out once
    /// for the set, from its first record, instead of for every record.
    /// The rows are the same as [`add_record`](Self::add_record)'s: only
    /// sets where that holds for every record are taken; `None` (nothing
    /// added) for the others: options data (scope fields, system init
    /// times), templates of variable-length fields or lists, 8-byte
    /// sysUpTime fields (whose fit depends on the value), and any set where
    /// a field's value is not of the kind of the first record's.
    fn add_set(&mut self, export: &Export<'_>, set: &DataSet<'_>) -> Option<usize> {
        if set.is_options() {
            return None;
        }
        let columns: Vec<netflow::Column<'_>> = set.columns()?.collect();
        let count = set.record_count;
        if count == 0 || columns.iter().any(|c| c.len() != count) {
            return None;
        }
        // Where each field goes, decided on the first record's values as
        // add_record decides it for every record.
        let mut probe = Row::default();
        let mut places: Vec<Place> = Vec::with_capacity(columns.len());
        let mut firsts: Vec<Value<'_>> = Vec::with_capacity(columns.len());
        for c in &columns {
            let field = c.field();
            let spec = field.spec;
            if field.scope || (spec.field.enterprise == 0 && spec.field.id == SYSTEM_INIT_TIME_MS) {
                return None;
            }
            let first = c.values().next()?;
            let width = if spec.is_variable() {
                0
            } else {
                spec.length as usize
            };
            let slot = slot(spec.field.enterprise, spec.field.id);
            let place = match slot {
                Some(Slot::Time(0, _)) if spec.length > 4 => return None,
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
            places.push(place);
            firsts.push(first);
        }
        for (place, (c, first)) in places.iter_mut().zip(columns.iter().zip(&firsts)) {
            if *place == Place::Total {
                let id = c.field().spec.field;
                let s = slot(id.enterprise, id.id)?;
                *place = if probe.take(s, first, 8) {
                    Place::Row(s)
                } else {
                    Place::TotalExtra
                };
            }
        }
        let chosen = [0usize, 2, 1, 3, 4]
            .into_iter()
            .find(|&u| probe.times[u].0.is_some());
        for place in places.iter_mut() {
            if let Place::Row(Slot::Time(unit, _)) = *place {
                if Some(unit) != chosen {
                    *place = Place::TimeExtra;
                }
            }
        }

        // The rows, field by field. A value that would not go where the
        // first record's did ends it: the set is then read record by record.
        self.rows.clear();
        self.rows.resize(count, Row::default());
        if self.row_extras.len() < count {
            self.row_extras.resize_with(count, Vec::new);
        }
        for e in &mut self.row_extras[..count] {
            e.clear();
        }
        let rows = &mut self.rows[..];
        let extras = &mut self.row_extras[..count];
        for (i, (c, first)) in columns.iter().zip(&firsts).enumerate() {
            let Place::Row(s) = places[i] else { continue };
            let width = match s {
                Slot::Time(..) => None,
                _ if c.field().spec.is_variable() => Some(0),
                _ => Some(c.field().spec.length as usize),
            };
            let kind = std::mem::discriminant(first);
            let mut r = 0;
            let mut same = true;
            c.for_each(|v| {
                same &= std::mem::discriminant(&v) == kind
                    && rows[r].take(s, &v, width.unwrap_or_else(|| time_width(&v)));
                r += 1;
            });
            if !same {
                return None;
            }
        }
        // `extra`: the fields that go to no column, then the totals that
        // did not, then the time fields that did not, as add_record orders them.
        for pass in [Place::Extra, Place::TotalExtra, Place::TimeExtra] {
            for (i, (c, first)) in columns.iter().zip(&firsts).enumerate() {
                if places[i] != pass {
                    continue;
                }
                let id = c.field().spec.field;
                // A field that may go to a column goes to `extra` only for
                // values of the first record's kind.
                let checked = slot(id.enterprise, id.id).is_some();
                let kind = std::mem::discriminant(first);
                let name: &str = &c.field().name;
                let mut r = 0;
                let mut same = true;
                c.for_each(|v| {
                    same &= !checked || std::mem::discriminant(&v) == kind;
                    put_extra(&mut extras[r], name, &v);
                    r += 1;
                });
                if !same {
                    return None;
                }
            }
        }
        for (row, extra) in self.rows.iter_mut().zip(self.row_extras.iter_mut()) {
            if !extra.is_empty() {
                extra.push(b'}');
            }
            write_row(
                &mut self.batch,
                &self.init_time_ms,
                export,
                set.template_id(),
                row,
                chosen,
                extra,
            );
        }
        Some(count)
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
            match slot(spec.field.enterprise, spec.field.id) {
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
        write_row(
            &mut self.batch,
            &self.init_time_ms,
            export,
            template_id,
            &mut row,
            chosen,
            &self.extra,
        );
    }
}

/// Where the fields of a set go ([`BatchBuilder::add_set`]).
#[derive(Clone, Copy, PartialEq)]
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

/// Append a row: the record's core values (`row`, with the time fields of
/// unit index `chosen`), the export's, and its `extra` object.
fn write_row(
    b: &mut Batch,
    init_time_ms: &HashMap<SocketAddr, i64>,
    export: &Export<'_>,
    template_id: u16,
    row: &mut Row,
    chosen: Option<usize>,
    extra: &[u8],
) {
    let exporter = export.exporter;
    let header = export.header;
    let (export_nanos, header_sampling) = match header {
        Header::V1(h) => (Some(h.timestamp_nano), None),
        Header::V5(h) => (Some(h.timestamp_nano), Some(h.sampling_interval)),
        Header::V7(h) => (Some(h.timestamp_nano), None),
        _ => (None, None),
    };
    let uptime = header.uptime();
    let export_ms =
        header.export_time() as i64 * 1000 + export_nanos.map_or(0, |n| (n / 1_000_000) as i64);
    let (first, last, unit) = match chosen {
        Some(u) => (row.times[u].0, row.times[u].1, Some(u as u8 + 1)),
        None => (None, None, None),
    };
    let (start_ms, end_ms) = match unit {
        Some(time_unit::SYS_UPTIME_MS) => {
            let boot = init_time_ms.get(&exporter).copied();
            let abs = |v: Option<u64>| -> Option<i64> {
                let v = v? as u32;
                match uptime {
                    Some(up) => Some(export_ms - up.wrapping_sub(v) as i64),
                    None => Some(boot? + v as i64),
                }
            };
            (abs(first), abs(last))
        }
        Some(u) => (
            first.and_then(|v| to_unix_ms(v, u)),
            last.and_then(|v| to_unix_ms(v, u)),
        ),
        None => (None, None),
    };

    let (exp_addr, exp_v6) = mapped(exporter.ip());
    if exp_v6 {
        row.flags |= flags::EXPORTER_V6;
    }
    let received = export.received;
    let time_ms = start_ms.unwrap_or((received * 1000.0) as i64);

    let i = b.rows;
    use Column as C;
    push(b, i, C::Received, Some(received.to_bits()));
    push_bytes(b, i, C::ExporterAddr, Some(&exp_addr));
    push(b, i, C::ExporterPort, Some(exporter.port() as u64));
    push(b, i, C::Version, Some(header.version() as u64));
    push(b, i, C::Domain, header.domain().map(u64::from));
    push(b, i, C::TemplateId, Some(template_id as u64));
    push(b, i, C::Sequence, header.sequence().map(u64::from));
    push(b, i, C::ExportTime, Some(header.export_time() as u64));
    push(b, i, C::ExportNanos, export_nanos.map(u64::from));
    push(b, i, C::Uptime, uptime.map(u64::from));
    push(b, i, C::HeaderSampling, header_sampling.map(u64::from));
    push(b, i, C::Flags, Some(row.flags as u64));
    push(b, i, C::StartMs, start_ms.map(|v| v as u64));
    push(b, i, C::EndMs, end_ms.map(|v| v as u64));
    push(b, i, C::FirstRaw, first);
    push(b, i, C::LastRaw, last);
    push(b, i, C::TimeUnit, unit.map(u64::from));
    push_bytes(b, i, C::SrcAddr, row.src.as_ref());
    push_bytes(b, i, C::DstAddr, row.dst.as_ref());
    push(b, i, C::SrcPort, row.src_port);
    push(b, i, C::DstPort, row.dst_port);
    push(b, i, C::Protocol, row.protocol);
    push(b, i, C::Bytes, row.bytes);
    push(b, i, C::Packets, row.packets);
    push(b, i, C::TcpFlags, row.tcp_flags);
    push(b, i, C::Tos, row.tos);
    push(b, i, C::InputIf, row.input_if);
    push(b, i, C::OutputIf, row.output_if);
    push(b, i, C::SrcAs, row.src_as);
    push(b, i, C::DstAs, row.dst_as);
    push_bytes(b, i, C::NextHop, row.next_hop.as_ref());
    push(b, i, C::Direction, row.direction);
    push(b, i, C::ReverseBytes, row.reverse_bytes);
    push(b, i, C::ReversePackets, row.reverse_packets);
    push(b, i, C::SamplingInterval, row.sampling);
    push(b, i, C::IpVersion, row.ip_version);
    let extra_column = b.column_mut(C::Extra);
    extra_column.values.extend_from_slice(extra);
    extra_column.offsets.push(extra_column.values.len() as u32);
    set_bit(&mut extra_column.valid, i, true);
    b.rows += 1;
    b.min_time_ms = b.min_time_ms.min(time_ms);
    b.max_time_ms = b.max_time_ms.max(time_ms);
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

// Always inlined: with the column known at the call, the value's width is a
// constant and its bytes a single store, not a call to memcpy.
#[inline(always)]
fn push(b: &mut Batch, row: usize, c: Column, v: Option<u64>) {
    let w = c.width();
    let d = b.column_mut(c);
    match v {
        Some(v) => {
            d.values.extend_from_slice(&v.to_le_bytes()[..w]);
            set_bit(&mut d.valid, row, true);
        }
        None => {
            d.values.extend(std::iter::repeat_n(0u8, w));
            set_bit(&mut d.valid, row, false);
            d.nulls += 1;
        }
    }
}

#[inline(always)]
fn push_bytes(b: &mut Batch, row: usize, c: Column, v: Option<&[u8; 16]>) {
    let d = b.column_mut(c);
    match v {
        Some(v) => {
            d.values.extend_from_slice(v);
            set_bit(&mut d.valid, row, true);
        }
        None => {
            d.values.extend_from_slice(&[0u8; 16]);
            set_bit(&mut d.valid, row, false);
            d.nulls += 1;
        }
    }
}

/// Append `"name":value` to the `extra` object being built (opened at the first).
fn put_extra(out: &mut Vec<u8>, name: &str, value: &Value<'_>) {
    out.push(if out.is_empty() { b'{' } else { b',' });
    // Field names are printable ASCII without quotes or backslashes, which
    // JSON writes as they are: no escaping to look for. Writing into a Vec
    // cannot fail, and every value serializes.
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
    out.push(b':');
    let _ = serde_json::to_writer(&mut *out, value);
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
    let plain: [(Column, u32, u16); 18] = [
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

    /// Every capture's records, set at a time where it may be (the default)
    /// and record at a time: the same rows, byte for byte.
    #[test]
    fn sets_and_records_give_the_same_rows() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures");
        let mut captures: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
            .collect();
        captures.sort();
        assert!(captures.len() >= 10, "{captures:?}");
        let mut by_set = 0;
        for path in captures {
            let mut reader =
                netflow_capture::CaptureReader::open(&path, Default::default()).unwrap();
            let mut decoder = Decoder::default();
            let mut sets = BatchBuilder::new();
            let mut records = BatchBuilder {
                record_at_a_time: true,
                ..Default::default()
            };
            while let Some(d) = reader.next_datagram() {
                let d = d.unwrap();
                let Ok(decoded) =
                    decoder.decode(ExporterId(d.source), d.payload, d.index, d.time_ms)
                else {
                    continue;
                };
                let p = &decoded.packet;
                let export = Export {
                    received: d.time_ms as f64 / 1000.0,
                    exporter: d.source,
                    header: &p.header,
                    sets: &p.data_sets,
                };
                for set in &p.data_sets {
                    let mut probe = BatchBuilder::new();
                    by_set += usize::from(probe.add_set(&export, set).is_some());
                }
                assert_eq!(sets.add_export(&export), records.add_export(&export));
            }
            assert!(
                sets.batch() == records.batch(),
                "{}: other rows set at a time",
                path.display()
            );
        }
        assert!(by_set > 100, "{by_set} sets read set at a time");
    }

    /// Rows of `export` both ways; true when it was read set at a time.
    fn both_ways(export: &Export<'_>) -> bool {
        let mut sets = BatchBuilder::new();
        let mut records = BatchBuilder {
            record_at_a_time: true,
            ..Default::default()
        };
        let by_set = export
            .sets
            .iter()
            .all(|set| BatchBuilder::new().add_set(export, set).is_some());
        assert_eq!(sets.add_export(export), records.add_export(export));
        assert!(
            sets.batch() == records.batch(),
            "other rows set at a time:\n{:?}\n{:?}",
            sets.batch(),
            records.batch()
        );
        by_set
    }

    /// Fields that go elsewhere than their column: duplicates, total
    /// counters with and without their delta counter, several time units,
    /// an IPv6 source after an IPv4 one, fields of no column.
    #[test]
    fn every_place_of_a_field_set_at_a_time() {
        use netflow::encode::MessageBuilder;
        use netflow::wire::ipfix::IpfixHeader;
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
        ];
        let t = Template::compile(Protocol::Ipfix, 300, TemplateKind::Data, 0, &specs).unwrap();
        let mut out = Vec::new();
        let mut m = MessageBuilder::ipfix(
            &mut out,
            IpfixHeader {
                export_time: 1_700_000_000,
                sequence: 5,
                observation_domain: 3,
                ..Default::default()
            },
        );
        m.template(&t).unwrap();
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
                ],
            )
            .unwrap();
        }
        m.finish().unwrap();
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
        assert!(both_ways(&export), "read set at a time");
    }
}
