//! Reading columns files (`netflow collector --format columns`,
//! [`netflow_store::columns`]) into normalized [`Flow`]s, and the fast path
//! of `netflow analyzer top` on them: only the columns the query needs are
//! read and decompressed, blocks outside `--since`/`--until` are skipped by
//! their time range, and blocks are spread over threads.
//!
//! The rows map to [`Flow`] as the JSON layouts do: a row that is an options
//! record, or has neither a source nor a destination address, is not a flow
//! (it counts in [`Entry::options_records`]); bytes and packets are 0 when
//! absent; start/end as stored (sysUpTime made absolute at collection, from
//! the header or the exporter's `systemInitTimeMilliseconds`).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use netflow_store::columns::ColumnFile;
use netflow_store::columns::{flags, time_unit, Batch, BlockScratch, Column};

use crate::flow::{Entry, Flow, HeaderInfo, TimeBase};
use crate::top::{Filter, FlowKey, TopBy, TopN};

/// Whether the file at `path` starts with the columns magic.
pub fn is_columns_path(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| netflow_store::columns::is_columns_file(&head))
}

/// Every column a [`Flow`] and an [`Entry`] are made of (not `extra`).
pub const FLOW_COLUMNS: &[Column] = &[
    Column::Received,
    Column::ExporterAddr,
    Column::ExporterPort,
    Column::Version,
    Column::Domain,
    Column::Sequence,
    Column::ExportTime,
    Column::Uptime,
    Column::HeaderSampling,
    Column::Flags,
    Column::StartMs,
    Column::EndMs,
    Column::FirstRaw,
    Column::LastRaw,
    Column::TimeUnit,
    Column::SrcAddr,
    Column::DstAddr,
    Column::SrcPort,
    Column::DstPort,
    Column::Protocol,
    Column::Bytes,
    Column::Packets,
    Column::ReverseBytes,
    Column::ReversePackets,
    Column::IpVersion,
];

/// The row as a flow; `None` for options records and rows without addresses.
/// Columns not read leave their fields empty.
#[inline]
pub fn flow_from_row(b: &Batch, row: usize) -> Option<Flow> {
    let fl = b.flags(row);
    if fl & flags::OPTIONS != 0 {
        return None;
    }
    if !b.present(Column::SrcAddr, row) && !b.present(Column::DstAddr, row) {
        return None;
    }
    let src = b.addr(Column::SrcAddr, row, fl & flags::SRC_V6 != 0);
    let dst = b.addr(Column::DstAddr, row, fl & flags::DST_V6 != 0);
    let bytes = b.u64(Column::Bytes, row);
    let packets = b.u64(Column::Packets, row);
    let time_base = b.u64(Column::TimeUnit, row).and_then(|u| match u as u8 {
        time_unit::SYS_UPTIME_MS => Some(TimeBase::SysUpTimeMs),
        time_unit::UNIX_SECONDS => Some(TimeBase::UnixSeconds),
        time_unit::UNIX_MILLIS => Some(TimeBase::UnixMillis),
        time_unit::NTP_MICROS | time_unit::NTP_NANOS => Some(TimeBase::Ntp),
        _ => None,
    });
    Some(Flow {
        received: b.received(row).unwrap_or(0.0),
        exporter: b.exporter(row),
        version: b.u64(Column::Version, row).unwrap_or(0) as u16,
        src,
        dst,
        src_port: b.u64(Column::SrcPort, row).map(|v| v as u16),
        dst_port: b.u64(Column::DstPort, row).map(|v| v as u16),
        protocol: b.u64(Column::Protocol, row).map(|v| v as u8),
        bytes: bytes.unwrap_or(0),
        packets: packets.unwrap_or(0),
        has_bytes: bytes.is_some(),
        has_packets: packets.is_some(),
        reverse_bytes: b.u64(Column::ReverseBytes, row),
        reverse_packets: b.u64(Column::ReversePackets, row),
        first_switched: b.u64(Column::FirstRaw, row),
        last_switched: b.u64(Column::LastRaw, row),
        time_base,
        start_ms: b.i64(Column::StartMs, row),
        end_ms: b.i64(Column::EndMs, row),
        ip_version: b.u64(Column::IpVersion, row).map(|v| v as u8),
    })
}

fn header_from_row(b: &Batch, row: usize) -> HeaderInfo {
    HeaderInfo {
        version: b.u64(Column::Version, row).unwrap_or(0) as u16,
        count: None,
        sequence: b.u64(Column::Sequence, row).map(|v| v as u32),
        domain: b.u64(Column::Domain, row).map(|v| v as u32),
        export_time: b.u64(Column::ExportTime, row),
        uptime_ms: b.u64(Column::Uptime, row).map(|v| v as u32),
        sampling_interval: b.u64(Column::HeaderSampling, row).map(|v| v as u16),
    }
}

/// Rows of one datagram: same receive time, exporter, version, sequence, domain.
fn same_datagram(b: &Batch, a: usize, c: usize) -> bool {
    let k = |r: usize| {
        (
            b.u64(Column::Received, r),
            b.exporter(r),
            b.u64(Column::Version, r),
            b.u64(Column::Sequence, r),
            b.u64(Column::Domain, r),
        )
    };
    k(a) == k(c)
}

/// Entries of a columns file, one per stored datagram (consecutive rows of
/// one datagram), for [`crate::FlowReader`].
#[derive(Debug)]
pub(crate) struct ColumnEntries {
    file: ColumnFile,
    next_block: usize,
    batch: Option<Batch>,
    row: usize,
    /// Rows before the current block.
    rows_before: u64,
    /// Problems found when opening, reported once.
    opening_problems: Vec<String>,
}

impl ColumnEntries {
    pub(crate) fn open(path: &Path) -> std::io::Result<ColumnEntries> {
        let file = ColumnFile::open(path)?;
        let opening_problems = file.problems().iter().map(|p| p.to_string()).collect();
        Ok(ColumnEntries {
            file,
            next_block: 0,
            batch: None,
            row: 0,
            rows_before: 0,
            opening_problems,
        })
    }

    /// Problems found while opening (taken once).
    pub(crate) fn take_problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.opening_problems)
    }

    /// The next entry, with its flows unless `keys_only`; a block that
    /// cannot be read gives `Err` (with the file and offset) and reading
    /// goes on with the next one. `(entry, rows it took)`.
    pub(crate) fn next_entry(&mut self, keys_only: bool) -> Option<Result<(Entry, u64), String>> {
        loop {
            if let Some(b) = &self.batch {
                if self.row < b.rows() {
                    let first = self.row;
                    let mut end = first + 1;
                    while end < b.rows() && same_datagram(b, first, end) {
                        end += 1;
                    }
                    self.row = end;
                    let received = b.received(first).unwrap_or(0.0);
                    let mut entry = Entry {
                        line: self.rows_before + first as u64 + 1,
                        key: netflow_store::py_float_repr(received),
                        received,
                        exporter: b.exporter(first),
                        header: header_from_row(b, first),
                        flows: Vec::new(),
                        options_records: 0,
                    };
                    if !keys_only {
                        for r in first..end {
                            match flow_from_row(b, r) {
                                Some(f) => entry.flows.push(f),
                                None => entry.options_records += 1,
                            }
                        }
                    }
                    return Some(Ok((entry, (end - first) as u64)));
                }
                self.rows_before += b.rows() as u64;
                self.batch = None;
            }
            if self.next_block >= self.file.block_count() {
                return None;
            }
            let i = self.next_block;
            self.next_block += 1;
            self.row = 0;
            match self.file.read_block(i, FLOW_COLUMNS) {
                Ok(b) => self.batch = Some(b),
                Err(e) => return Some(Err(e.to_string())),
            }
        }
    }
}

/// The columns `top` needs for `by` and `filter`: (values, presence only).
pub fn top_columns(by: TopBy, filter: &Filter) -> (Vec<Column>, Vec<Column>) {
    // Flags (options, address families) and the counters (every row's
    // totals); whether a row has a source or destination address decides
    // whether it is a flow, so both are read at least for their presence.
    let mut c = vec![
        Column::Flags,
        Column::Bytes,
        Column::Packets,
        Column::ReverseBytes,
        Column::ReversePackets,
    ];
    match by {
        TopBy::Src => c.push(Column::SrcAddr),
        TopBy::Dst => c.push(Column::DstAddr),
        TopBy::Pair => c.extend([Column::SrcAddr, Column::DstAddr]),
        TopBy::Port => c.extend([Column::SrcPort, Column::DstPort]),
        TopBy::Proto => c.push(Column::Protocol),
        TopBy::Exporter => c.extend([Column::ExporterAddr, Column::ExporterPort]),
    }
    if filter.since_ms.is_some() || filter.until_ms.is_some() {
        c.extend([Column::StartMs, Column::Received]);
    }
    if filter.host.is_some() {
        c.extend([Column::SrcAddr, Column::DstAddr]);
    }
    if filter.port.is_some() {
        c.extend([Column::SrcPort, Column::DstPort]);
    }
    if filter.proto.is_some() {
        c.push(Column::Protocol);
    }
    c.sort();
    c.dedup();
    let presence = [Column::SrcAddr, Column::DstAddr]
        .into_iter()
        .filter(|a| !c.contains(a))
        .collect();
    (c, presence)
}

/// What [`top_files`] read.
#[derive(Debug, Default)]
pub struct ScanSummary {
    pub files: usize,
    pub blocks: usize,
    /// Blocks skipped by their time range.
    pub blocks_skipped: usize,
    pub rows: u64,
    /// Damage found (file, offset, what); the rest was read.
    pub problems: Vec<String>,
}

/// Aggregate the flows of columns files into `top` with `threads` threads
/// (blocks shared out largest first; each thread counts its flows, the keys
/// into hash maps the threads share, see [`TopN::share`]).
pub fn top_files(files: &[ColumnFile], top: &mut TopN, threads: usize) -> ScanSummary {
    let mut summary = ScanSummary {
        files: files.len(),
        ..Default::default()
    };
    for f in files {
        summary
            .problems
            .extend(f.problems().iter().map(|p| p.to_string()));
    }
    let filter = top.filter().clone();
    let (columns, presence) = top_columns(top.by(), &filter);
    // Addresses needed for their presence only: the first is read with
    // the block, the second (16 bytes a row to decompress for a bitmap)
    // only for blocks where some record lacks the first.
    let (first, eager, lazy): (Column, &[Column], Option<Column>) = match presence[..] {
        [] => (Column::SrcAddr, &[], None),
        [one] => (
            if one == Column::SrcAddr {
                Column::DstAddr
            } else {
                Column::SrcAddr
            },
            &[],
            Some(one),
        ),
        _ => (Column::SrcAddr, &[Column::SrcAddr], Some(Column::DstAddr)),
    };
    // Blocks whose time range is outside the window hold no matching flow,
    // but their flows are still seen (TopN::seen counts every flow).
    let mut work: Vec<(usize, usize)> = files
        .iter()
        .enumerate()
        .flat_map(|(fi, f)| (0..f.block_count()).map(move |bi| (fi, bi)))
        .collect();
    // Largest blocks first, so that the threads end together (a large
    // block taken last would leave the others idle while it is read).
    work.sort_by_key(|&(fi, bi)| std::cmp::Reverse(files[fi].block(bi).map_or(0, |b| b.rows)));
    summary.blocks = work.len();
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, work.len().max(1));
    let shares: Vec<TopN> = (0..threads).map(|nth| top.share(nth)).collect();
    let results: Vec<(TopN, u64, usize, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|mut mine| {
                let (work, next, columns, filter) = (&work, &next, &columns, &filter);
                s.spawn(move || {
                    let mut rows = 0u64;
                    let mut skipped = 0usize;
                    let mut problems = Vec::new();
                    let mut b = Batch::empty();
                    let mut scratch = BlockScratch::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(fi, bi)) = work.get(i) else { break };
                        let file = &files[fi];
                        let info = file.block(bi).copied();
                        let outside = info.is_some_and(|b| {
                            filter.since_ms.is_some_and(|s| b.max_time_ms < s)
                                || filter.until_ms.is_some_and(|u| b.min_time_ms >= u)
                        });
                        let (cols, pres): (&[Column], &[Column]) = if outside {
                            skipped += 1;
                            (&[Column::Flags], &[Column::SrcAddr])
                        } else {
                            (columns, eager)
                        };
                        let read = file
                            .read_block_with(bi, cols, pres, &mut b, &mut scratch)
                            .and_then(|()| {
                                // Whether a row is a flow needs the other
                                // address only where the first is null.
                                let (first, second) = if outside {
                                    (Column::SrcAddr, Some(Column::DstAddr))
                                } else {
                                    (first, lazy)
                                };
                                match second {
                                    Some(c) if some_record_lacks(&b, first) => {
                                        file.read_presence_into(bi, c, &mut b, &mut scratch)
                                    }
                                    _ => Ok(()),
                                }
                            });
                        match read {
                            Ok(()) => {
                                rows += b.rows() as u64;
                                add_block(&b, &mut mine, outside);
                            }
                            Err(e) => problems.push(e.to_string()),
                        }
                    }
                    mine.flush();
                    (mine, rows, skipped, problems)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a top thread panicked"))
            .collect()
    });
    for (t, rows, skipped, problems) in results {
        top.merge(t);
        summary.rows += rows;
        summary.blocks_skipped += skipped;
        summary.problems.extend(problems);
    }
    summary
}

/// One fixed-width column of a read block as slices: a value per row
/// (null rows hold zeros) and the validity bitmap. A column read for its
/// presence only has no values; one the block lacks has neither.
#[derive(Clone, Copy)]
struct Fixed<'a, const W: usize> {
    values: &'a [u8],
    valid: &'a [u8],
}

impl<'a, const W: usize> Fixed<'a, W> {
    fn of(b: &'a Batch, c: Column) -> Self {
        debug_assert_eq!(c.width(), W, "{}", c.name());
        match b.column(c) {
            Some(d) => Fixed {
                values: if d.values.len() == b.rows() * W {
                    &d.values
                } else {
                    &[]
                },
                valid: &d.valid,
            },
            None => Fixed {
                values: &[],
                valid: &[],
            },
        }
    }

    #[inline]
    fn present(&self, row: usize) -> bool {
        self.valid
            .get(row >> 3)
            .is_some_and(|b| b >> (row & 7) & 1 != 0)
    }

    #[inline]
    fn get(&self, row: usize) -> Option<&'a [u8; W]> {
        if self.present(row) {
            self.values
                .get(row * W..row * W + W)
                .and_then(|v| v.try_into().ok())
        } else {
            None
        }
    }
}

impl Fixed<'_, 16> {
    #[inline]
    fn addr(&self, row: usize, v6: bool) -> Option<std::net::IpAddr> {
        let b = self.get(row)?;
        Some(if v6 {
            std::net::Ipv6Addr::from(*b).into()
        } else {
            std::net::Ipv4Addr::new(b[12], b[13], b[14], b[15]).into()
        })
    }
}

impl Fixed<'_, 8> {
    #[inline]
    fn u64(&self, row: usize) -> Option<u64> {
        self.get(row).map(|b| u64::from_le_bytes(*b))
    }
}

impl Fixed<'_, 2> {
    #[inline]
    fn u16(&self, row: usize) -> Option<u16> {
        self.get(row).map(|b| u16::from_le_bytes(*b))
    }
}

/// Whether a record that is not an options record has no value in `c`.
fn some_record_lacks(b: &Batch, c: Column) -> bool {
    let Some(col) = b.column(c) else {
        return true;
    };
    if col.nulls == 0 && col.valid.len() * 8 >= b.rows() {
        return false;
    }
    let flag_col = Fixed::<2>::of(b, Column::Flags);
    let present = Fixed::<16>::of(b, c);
    (0..b.rows()).any(|r| flag_col.u16(r).unwrap_or(0) & flags::OPTIONS == 0 && !present.present(r))
}

/// Count a block's flows into `top` straight from its column slices, as
/// [`flow_from_row`] then [`TopN::add`] would (same flows, same filter,
/// same keys) without making a [`Flow`] per row. `outside`: the block is
/// outside the time window, its flows are only seen.
fn add_block(b: &Batch, top: &mut TopN, outside: bool) {
    if !outside && add_block_by_address(b, top) {
        return;
    }
    let flag_col = Fixed::<2>::of(b, Column::Flags);
    let src = Fixed::<16>::of(b, Column::SrcAddr);
    let dst = Fixed::<16>::of(b, Column::DstAddr);
    let bytes = Fixed::<8>::of(b, Column::Bytes);
    let packets = Fixed::<8>::of(b, Column::Packets);
    let reverse_bytes = Fixed::<8>::of(b, Column::ReverseBytes);
    let reverse_packets = Fixed::<8>::of(b, Column::ReversePackets);
    let src_port = Fixed::<2>::of(b, Column::SrcPort);
    let dst_port = Fixed::<2>::of(b, Column::DstPort);
    let protocol = Fixed::<1>::of(b, Column::Protocol);
    let exporter_addr = Fixed::<16>::of(b, Column::ExporterAddr);
    let exporter_port = Fixed::<2>::of(b, Column::ExporterPort);
    let start_ms = Fixed::<8>::of(b, Column::StartMs);
    let received = Fixed::<8>::of(b, Column::Received);
    let filter = top.filter().clone();
    let by = top.by();
    let timed = filter.since_ms.is_some() || filter.until_ms.is_some();
    for r in 0..b.rows() {
        let fl = flag_col.u16(r).unwrap_or(0);
        if fl & flags::OPTIONS != 0 || !(src.present(r) || dst.present(r)) {
            continue;
        }
        top.seen += 1;
        if outside {
            continue;
        }
        let src_addr = || src.addr(r, fl & flags::SRC_V6 != 0);
        let dst_addr = || dst.addr(r, fl & flags::DST_V6 != 0);
        // Filter::matches, column by column.
        if timed {
            let t = start_ms
                .u64(r)
                .map(|v| v as i64)
                .unwrap_or_else(|| (received.u64(r).map_or(0.0, f64::from_bits) * 1000.0) as i64);
            if filter.since_ms.is_some_and(|s| t < s) || filter.until_ms.is_some_and(|u| t >= u) {
                continue;
            }
        }
        if let Some(h) = filter.host {
            if !src_addr().is_some_and(|a| h.contains(a))
                && !dst_addr().is_some_and(|a| h.contains(a))
            {
                continue;
            }
        }
        if let Some(p) = filter.port {
            if src_port.u16(r) != Some(p) && dst_port.u16(r) != Some(p) {
                continue;
            }
        }
        if let Some(p) = filter.proto {
            if protocol.get(r).map(|b| b[0]) != Some(p) {
                continue;
            }
        }
        let key = match by {
            TopBy::Src => FlowKey::Addr(src_addr()),
            TopBy::Dst => FlowKey::Addr(dst_addr()),
            TopBy::Pair => FlowKey::Pair(src_addr(), dst_addr()),
            TopBy::Port => FlowKey::Ports(src_port.u16(r), dst_port.u16(r)),
            TopBy::Proto => FlowKey::Proto(protocol.get(r).map(|b| b[0])),
            TopBy::Exporter => FlowKey::Exporter(
                exporter_addr
                    .addr(r, fl & flags::EXPORTER_V6 != 0)
                    .zip(exporter_port.u16(r))
                    .map(|(a, p)| std::net::SocketAddr::new(a, p)),
            ),
        };
        let total_packets = packets
            .u64(r)
            .unwrap_or(0)
            .saturating_add(reverse_packets.u64(r).unwrap_or(0));
        let total_bytes = bytes
            .u64(r)
            .unwrap_or(0)
            .saturating_add(reverse_bytes.u64(r).unwrap_or(0));
        top.stage_matching(key, total_packets, total_bytes);
    }
}

/// A counter column (u64) read as 0 where null, like
/// `Batch::u64(..).unwrap_or(0)`: the bitmap is consulted only when some
/// rows are null.
#[derive(Clone, Copy)]
struct Counter<'a> {
    values: &'a [u8],
    /// Validity bitmap when some rows are null; `None` when all are valid.
    valid: Option<&'a [u8]>,
}

impl<'a> Counter<'a> {
    /// `None` when the column's values do not cover the rows (a column
    /// without values reads as zeros only if no row claims one).
    fn of(b: &'a Batch, c: Column) -> Option<Counter<'a>> {
        let rows = b.rows();
        match b.column(c) {
            None => Some(Counter {
                values: &[],
                valid: None,
            }),
            Some(d) if d.nulls == rows || d.valid.iter().all(|b| *b == 0) => Some(Counter {
                values: &[],
                valid: None,
            }),
            Some(d) if d.values.len() == rows * 8 => Some(Counter {
                values: &d.values,
                valid: (d.nulls > 0).then_some(&d.valid[..]),
            }),
            Some(_) => None,
        }
    }

    #[inline]
    fn get(&self, row: usize) -> u64 {
        if self.values.is_empty() {
            return 0;
        }
        if let Some(valid) = self.valid {
            if valid.get(row >> 3).is_none_or(|b| b >> (row & 7) & 1 == 0) {
                return 0;
            }
        }
        u64::from_le_bytes(
            self.values[row * 8..row * 8 + 8]
                .try_into()
                .expect("8 bytes"),
        )
    }
}

/// The common query, `top --by src|dst` without a filter, in one loop over
/// the values of the few columns it needs; `false` (nothing counted) when
/// the query or the block does not fit (counters null in some rows only),
/// for [`add_block`]'s general loop.
fn add_block_by_address(b: &Batch, top: &mut TopN) -> bool {
    let f = top.filter();
    if f.since_ms.is_some() || f.until_ms.is_some() || f.host.is_some() || f.port.is_some() {
        return false;
    }
    if f.proto.is_some() {
        return false;
    }
    let (key_col, other_col, v6_flag) = match top.by() {
        TopBy::Src => (Column::SrcAddr, Column::DstAddr, flags::SRC_V6),
        TopBy::Dst => (Column::DstAddr, Column::SrcAddr, flags::DST_V6),
        _ => return false,
    };
    let rows = b.rows();
    let flag_values = match b.column(Column::Flags) {
        Some(d) if d.nulls == 0 && d.values.len() == rows * 2 => &d.values[..],
        _ => return false,
    };
    let (Some(bytes), Some(packets), Some(r_bytes), Some(r_packets)) = (
        Counter::of(b, Column::Bytes),
        Counter::of(b, Column::Packets),
        Counter::of(b, Column::ReverseBytes),
        Counter::of(b, Column::ReversePackets),
    ) else {
        return false;
    };
    let key = Fixed::<16>::of(b, key_col);
    let other = Fixed::<16>::of(b, other_col);
    if key.values.len() != rows * 16 && !key.valid.iter().all(|v| *v == 0) {
        return false;
    }
    for r in 0..rows {
        let fl = u16::from_le_bytes([flag_values[r * 2], flag_values[r * 2 + 1]]);
        let has_key = key.present(r);
        if fl & flags::OPTIONS != 0 || !(has_key || other.present(r)) {
            continue;
        }
        top.seen += 1;
        let packets = packets.get(r).saturating_add(r_packets.get(r));
        let bytes = bytes.get(r).saturating_add(r_bytes.get(r));
        if !has_key {
            top.stage_matching(FlowKey::Addr(None), packets, bytes);
            continue;
        }
        let a: &[u8; 16] = key.values[r * 16..r * 16 + 16]
            .try_into()
            .expect("16 bytes");
        if fl & v6_flag != 0 {
            top.stage_v6_address(*a, packets, bytes);
        } else {
            top.stage_v4_address(
                u32::from_be_bytes([a[12], a[13], a[14], a[15]]),
                packets,
                bytes,
            );
        }
    }
    true
}
