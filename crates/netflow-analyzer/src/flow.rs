//! One normalized [`Flow`] per stored data record, whatever the layout and
//! the NetFlow version, and a streaming [`FlowReader`] over a stored file.
//!
//! Two layouts are read (see `netflow_store`):
//! - the Python original's collector line (also `netflow collector --format original`):
//!   `{"<receive ts>": {"client": [host, port], "header": {...}, "flows": [...], "options": [...]}}`;
//!   an object with several timestamp keys is read as several entries (the
//!   original crashes on it);
//! - `--format flows`: one flat object per record,
//!   `{"received": .., "exporter": "ip:port", "version": .., "options": bool, "fields": {...}}`;
//!   consecutive lines of the same datagram (same receive time, exporter,
//!   version and sequence) form one [`Entry`].
//!
//! Field names differ per version, values per layout; both are accepted:
//!
//! | what | v1/v5/v7 | v9 (RFC 3954 section 8) | IPFIX (RFC 7012 / IANA) |
//! |---|---|---|---|
//! | addresses | `IPV4_SRC_ADDR` (integer in the original layout) | `IPV4_SRC_ADDR`, `IPV6_SRC_ADDR` (text) | `sourceIPv4Address`, `sourceIPv6Address` (integer in the original layout) |
//! | ports | `SRC_PORT`/`DST_PORT` | `L4_SRC_PORT`/`L4_DST_PORT` | `sourceTransportPort`/`destinationTransportPort` |
//! | protocol | `PROTO` | `PROTOCOL` | `protocolIdentifier` |
//! | bytes, packets | `IN_OCTETS`, `IN_PACKETS` | `IN_BYTES`, `IN_PKTS` | `octetDeltaCount`, `packetDeltaCount` (and `*TotalCount`) |
//! | start, end | `FIRST_SWITCHED`/`LAST_SWITCHED` (sysUpTime ms) | same, or `flowStart/EndMilliseconds` | `flowStart/EndSysUpTime`, `flowStart/End{Seconds,Milliseconds,Microseconds,Nanoseconds}` |
//!
//! Absolute start/end times are derived when the line allows it: sysUpTime
//! values from the header's uptime and export time (v1/v5/v7/v9, original
//! layout), or from the exporter's `systemInitTimeMilliseconds` announced in
//! IPFIX options data (RFC 7011 section 4.2 / IE 161); the absolute IPFIX
//! elements directly (micro/nanoseconds are NTP timestamps, RFC 7011 section 6.1.9,
//! in the original layout).
//!
//! Options records (v9 options data, IPFIX records without any flow key)
//! are not flows: they are counted per entry ([`Entry::options_records`]).
//! A line that cannot be read is counted with its line number and reading
//! goes on ([`ReadStats`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Seconds between the NTP epoch (1900) and the Unix epoch (RFC 7011 section 6.1.9).
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

/// How a flow's start/end values are expressed, as given in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeBase {
    /// Milliseconds of exporter uptime (v1/v5/v7/v9 FIRST_SWITCHED, IPFIX flowStartSysUpTime); 32-bit, wraps.
    SysUpTimeMs,
    /// Unix seconds.
    UnixSeconds,
    /// Unix milliseconds.
    UnixMillis,
    /// Unix microseconds (or an NTP timestamp packed as `seconds << 32 | fraction`, see [`Flow::first_switched`]).
    UnixMicros,
    /// Unix nanoseconds (idem).
    UnixNanos,
    /// NTP timestamp `seconds << 32 | fraction` (the original layout's `[seconds, fraction]`).
    Ntp,
}

/// One data record, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// When the collector received the datagram, Unix seconds.
    pub received: f64,
    /// Who sent the datagram, when the line says it.
    pub exporter: Option<SocketAddr>,
    /// NetFlow version (1, 5, 7, 9) or 10 for IPFIX.
    pub version: u16,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// IP protocol number (6 TCP, 17 UDP, ...).
    pub protocol: Option<u8>,
    /// Bytes of this direction (0 when the record has no byte counter).
    pub bytes: u64,
    /// Packets of this direction (0 when the record has no packet counter).
    pub packets: u64,
    /// Whether the record had a byte counter / packet counter at all.
    pub has_bytes: bool,
    pub has_packets: bool,
    /// Reverse-direction counters of an IPFIX biflow record (RFC 5103).
    pub reverse_bytes: Option<u64>,
    pub reverse_packets: Option<u64>,
    /// The flow's start and end as given in the record, in [`Flow::time_base`] units.
    pub first_switched: Option<u64>,
    pub last_switched: Option<u64>,
    pub time_base: Option<TimeBase>,
    /// Absolute start and end, Unix milliseconds, when derivable.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// IP_PROTOCOL_VERSION / ipVersion when given.
    pub ip_version: Option<u8>,
}

impl Flow {
    /// Flow duration in milliseconds: for uptime values `LAST - FIRST`, and
    /// when negative the 32-bit wrap `(2^32 - FIRST) + LAST` (the original's
    /// rule); otherwise from the absolute times.
    pub fn duration_ms(&self) -> Option<u64> {
        match (self.time_base, self.first_switched, self.last_switched) {
            (Some(TimeBase::SysUpTimeMs), Some(first), Some(last)) => Some(if last >= first {
                last - first
            } else {
                ((1u64 << 32).wrapping_sub(first)).wrapping_add(last)
            }),
            _ => match (self.start_ms, self.end_ms) {
                (Some(s), Some(e)) => Some(e.saturating_sub(s).max(0) as u64),
                _ => None,
            },
        }
    }

    /// Bytes of both directions (a biflow record counts its reverse direction too).
    pub fn total_bytes(&self) -> u64 {
        self.bytes.saturating_add(self.reverse_bytes.unwrap_or(0))
    }

    /// Packets of both directions.
    pub fn total_packets(&self) -> u64 {
        self.packets
            .saturating_add(self.reverse_packets.unwrap_or(0))
    }
}

/// Per-datagram header facts, for per-exporter accounting (sequence loss).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderInfo {
    pub version: u16,
    /// Header `count` (v1/v5/v7: records; v9: records including templates). Absent in the flows layout.
    pub count: Option<u32>,
    /// Sequence number in the version's unit (v5/v7 flows, v9 packets, IPFIX data records); none for v1.
    pub sequence: Option<u32>,
    /// v9 source id / IPFIX observation domain.
    pub domain: Option<u32>,
    /// Export time, Unix seconds.
    pub export_time: Option<u64>,
    /// Exporter uptime at export, milliseconds (v1/v5/v7/v9, original layout only).
    pub uptime_ms: Option<u32>,
    /// v5 header sampling interval field, raw.
    pub sampling_interval: Option<u16>,
}

/// One stored datagram: a line of the original layout, or the consecutive
/// flow-layout lines of one datagram.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// 1-based number of the (first) line it came from.
    pub line: u64,
    /// The timestamp key as written (original layout), or the Python repr of
    /// `received` (flows layout): the original analyzer orders entries by this text.
    pub key: String,
    pub received: f64,
    pub exporter: Option<SocketAddr>,
    pub header: HeaderInfo,
    /// Data records (options records excluded).
    pub flows: Vec<Flow>,
    /// Options records seen in this datagram (not in `flows`).
    pub options_records: u32,
}

/// What went wrong with the lines of a file.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    /// Lines read (including bad and blank ones).
    pub lines: u64,
    /// Lines that could not be read as an entry.
    pub bad_lines: u64,
    /// The first [`ReadStats::MAX_ERRORS`] problems: (line number, message).
    pub errors: Vec<(u64, String)>,
    /// Records dropped inside otherwise good lines (a record that is not an object).
    pub bad_records: u64,
    /// Columns files: damaged or cut parts (file, byte offset, what; the
    /// rest of the file was read). Their rows are not in `lines`.
    pub damaged: Vec<String>,
}

impl ReadStats {
    pub const MAX_ERRORS: usize = 20;

    fn bad(&mut self, line: u64, message: String) {
        self.bad_lines += 1;
        if self.errors.len() < Self::MAX_ERRORS {
            self.errors.push((line, message));
        }
    }
}

/// Streaming reader: yields one [`Entry`] per stored datagram, in file order,
/// holding at most one datagram in memory. Bad lines are counted in
/// [`FlowReader::stats`], never returned as errors; a read error of the
/// underlying file (I/O, corrupt gzip) ends the iteration and is kept in
/// [`FlowReader::io_error`].
pub struct FlowReader {
    /// `None` for a columns file.
    lines: Option<netflow_store::Lines>,
    columns: Option<crate::columns::ColumnEntries>,
    line_no: u64,
    stats: ReadStats,
    io_error: Option<io::Error>,
    /// Entries parsed but not yet returned (multi-key lines, the flows layout's lookahead).
    queue: std::collections::VecDeque<Entry>,
    /// IPFIX systemInitTimeMilliseconds per exporter, from options data (for flowStartSysUpTime).
    init_time_ms: HashMap<Option<SocketAddr>, i64>,
    done: bool,
    /// Parse timestamps and headers only, no records (a cheap first pass).
    keys_only: bool,
    /// Stop after this many lines (a second pass over a file still being written).
    max_lines: Option<u64>,
}

impl std::fmt::Debug for FlowReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowReader")
            .field("line_no", &self.line_no)
            .field("stats", &self.stats)
            .finish()
    }
}

impl FlowReader {
    /// Read a stored file: plain or multi-member gzip JSON lines, or a
    /// columns file (`--format columns`: its rows are read as lines, one per
    /// record, in [`ReadStats`] and [`FlowReader::lines_read`]).
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        if crate::columns::is_columns_path(path) {
            let mut columns = crate::columns::ColumnEntries::open(path)?;
            let mut reader = Self::with_source(None);
            reader.stats.damaged = columns.take_problems();
            reader.columns = Some(columns);
            return Ok(reader);
        }
        Ok(Self::new(netflow_store::read_lines(path)?))
    }

    /// Read any reader (stdin), plain or gzip.
    pub fn from_reader(reader: impl io::Read + Send + 'static) -> io::Result<Self> {
        Ok(Self::new(netflow_store::lines_from(reader)?))
    }

    fn new(lines: netflow_store::Lines) -> Self {
        Self::with_source(Some(lines))
    }

    fn with_source(lines: Option<netflow_store::Lines>) -> Self {
        FlowReader {
            lines,
            columns: None,
            line_no: 0,
            stats: ReadStats::default(),
            io_error: None,
            queue: Default::default(),
            init_time_ms: HashMap::new(),
            done: false,
            keys_only: false,
            max_lines: None,
        }
    }

    /// Read keys and headers only: entries come without flows (and without
    /// options counts). Much cheaper; entries are the same ones a full read
    /// gives, except that lines whose only fault is in their records
    /// (flows layout) are entries here and bad lines there.
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }

    /// Read at most `lines` lines (e.g. as many as a first pass saw, when the
    /// file may still grow).
    pub fn limit_lines(mut self, lines: u64) -> Self {
        self.max_lines = Some(lines);
        self
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Counters so far (final once the iterator returned `None`).
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// The error that ended reading early, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.io_error.as_ref()
    }

    /// Parse one line into entries appended to `out` (the flows layout merges
    /// into the last entry of `out` when it continues the same datagram).
    fn parse_line(&mut self, line_no: u64, text: &str, out: &mut Vec<Entry>) -> Result<(), String> {
        let TopMap(top) =
            serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
        let has = |k: &str| top.iter().any(|(key, _)| key == k);
        if has("fields") && has("received") {
            let entry = self.parse_flows_line(line_no, &top)?;
            if let Some(last) = out.last_mut() {
                if same_datagram(last, &entry) {
                    last.flows.extend(entry.flows);
                    last.options_records += entry.options_records;
                    return Ok(());
                }
            }
            out.push(entry);
            return Ok(());
        }
        if top.is_empty() {
            return Err("empty object".into());
        }
        // The original layout: every key is a receive time. Several keys are
        // read in text order (the original analyzer crashes on them).
        let mut keys = top;
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        let mut first_err = None;
        for (key, raw) in keys {
            match self.parse_original_entry(line_no, &key, raw) {
                Ok(e) => out.push(e),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn parse_original_entry(
        &mut self,
        line_no: u64,
        key: &str,
        raw: &RawValue,
    ) -> Result<Entry, String> {
        #[derive(Deserialize)]
        struct RawEntry<'a> {
            #[serde(borrow, default)]
            client: Option<Vec<&'a RawValue>>,
            #[serde(borrow)]
            header: Option<HashMap<Cow<'a, str>, &'a RawValue>>,
            #[serde(borrow, default)]
            flows: Vec<&'a RawValue>,
            #[serde(borrow, default)]
            options: Vec<&'a RawValue>,
        }
        let received: f64 = key
            .trim()
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite())
            .ok_or_else(|| format!("timestamp key {key:?} is not a number"))?;
        let e: RawEntry<'_> =
            serde_json::from_str(raw.get()).map_err(|e| format!("entry {key}: {e}"))?;
        let header_map = e
            .header
            .ok_or_else(|| format!("no header dict in entry {key}"))?;
        let hdr = |name: &str| header_map.get(name).and_then(|v| as_u64(v));
        let version =
            hdr("version").ok_or_else(|| format!("entry {key}: header without version"))? as u16;
        let header = HeaderInfo {
            version,
            count: hdr("count").map(|v| v as u32),
            sequence: hdr("sequence")
                .or_else(|| hdr("sequence_number"))
                .map(|v| v as u32),
            domain: hdr("source_id")
                .or_else(|| hdr("obervation_domain_id"))
                .map(|v| v as u32),
            export_time: hdr("timestamp").or_else(|| hdr("export_uptime")),
            uptime_ms: hdr("uptime").map(|v| v as u32),
            sampling_interval: hdr("sampling_interval").map(|v| v as u16),
        };
        let exporter = e.client.as_deref().and_then(client_addr);
        let export_ms = header
            .export_time
            .map(|s| s as i64 * 1000 + hdr("timestamp_nano").map_or(0, |n| (n / 1_000_000) as i64));
        let mut entry = Entry {
            line: line_no,
            key: key.to_string(),
            received,
            exporter,
            header,
            flows: Vec::with_capacity(e.flows.len()),
            options_records: e.options.len() as u32,
        };
        if self.keys_only {
            return Ok(entry);
        }
        for rec in e.flows {
            let Ok(fields) = serde_json::from_str::<Fields<'_>>(rec.get()) else {
                self.stats.bad_records += 1;
                continue;
            };
            self.push_record(&mut entry, &fields, export_ms, false, true);
        }
        Ok(entry)
    }

    fn parse_flows_line(
        &mut self,
        line_no: u64,
        top: &[(Cow<'_, str>, &RawValue)],
    ) -> Result<Entry, String> {
        let get = |k: &str| top.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        let received: f64 = get("received")
            .and_then(|v| serde_json::from_str::<f64>(v.get()).ok())
            .filter(|t| t.is_finite())
            .ok_or("\"received\" is not a number")?;
        let version = get("version").and_then(as_u64).ok_or("no \"version\"")? as u16;
        let exporter = get("exporter")
            .and_then(|v| serde_json::from_str::<Cow<'_, str>>(v.get()).ok())
            .and_then(|s| s.parse().ok());
        let options = get("options").is_some_and(|v| v.get() == "true");
        let fields_raw = get("fields").ok_or("no \"fields\"")?;
        let header = HeaderInfo {
            version,
            count: None,
            sequence: get("sequence").and_then(as_u64).map(|v| v as u32),
            domain: get("domain").and_then(as_u64).map(|v| v as u32),
            export_time: get("export_time").and_then(as_u64),
            uptime_ms: None,
            sampling_interval: None,
        };
        let mut entry = Entry {
            line: line_no,
            key: netflow_store::py_float_repr(received),
            received,
            exporter,
            header,
            flows: Vec::with_capacity(1),
            options_records: 0,
        };
        if !self.keys_only {
            let fields: Fields<'_> =
                serde_json::from_str(fields_raw.get()).map_err(|e| format!("\"fields\": {e}"))?;
            self.push_record(&mut entry, &fields, None, options, false);
        }
        Ok(entry)
    }

    /// Normalize one record into `entry` (or count it as options data).
    fn push_record(
        &mut self,
        entry: &mut Entry,
        f: &Fields<'_>,
        export_ms: Option<i64>,
        options: bool,
        original_layout: bool,
    ) {
        if let Some(init) = f.get("systemInitTimeMilliseconds").and_then(as_u64) {
            self.init_time_ms.insert(entry.exporter, init as i64);
        }
        let src = addr(
            f,
            "IPV4_SRC_ADDR",
            "sourceIPv4Address",
            "IPV6_SRC_ADDR",
            "sourceIPv6Address",
        );
        let dst = addr(
            f,
            "IPV4_DST_ADDR",
            "destinationIPv4Address",
            "IPV6_DST_ADDR",
            "destinationIPv6Address",
        );
        if options || (src.is_none() && dst.is_none()) {
            entry.options_records += 1;
            return;
        }
        let num = |names: &[&str]| names.iter().find_map(|n| f.get(n).and_then(as_u64));
        let bytes = num(&[
            "IN_BYTES",
            "IN_OCTETS",
            "octetDeltaCount",
            "octetTotalCount",
        ]);
        let packets = num(&[
            "IN_PKTS",
            "IN_PACKETS",
            "packetDeltaCount",
            "packetTotalCount",
        ]);
        let (first, last, base) = times(f, original_layout);
        let (start_ms, end_ms) = match base {
            Some(TimeBase::SysUpTimeMs) => {
                // Absolute = export time - (uptime at export - value), in 32-bit uptime arithmetic.
                let boot_ms = match (export_ms, entry.header.uptime_ms) {
                    (Some(ex), Some(up)) => Some(ex - up as i64),
                    _ => self.init_time_ms.get(&entry.exporter).copied(),
                };
                let uptime = entry.header.uptime_ms;
                let abs = |v: Option<u64>| -> Option<i64> {
                    let v = v? as u32;
                    match (export_ms, uptime) {
                        (Some(ex), Some(up)) => Some(ex - up.wrapping_sub(v) as i64),
                        _ => Some(boot_ms? + v as i64),
                    }
                };
                (abs(first), abs(last))
            }
            Some(b) => (
                first.and_then(|v| to_unix_ms(v, b)),
                last.and_then(|v| to_unix_ms(v, b)),
            ),
            None => (None, None),
        };
        entry.flows.push(Flow {
            received: entry.received,
            exporter: entry.exporter,
            version: entry.header.version,
            src,
            dst,
            src_port: num(&["L4_SRC_PORT", "SRC_PORT", "sourceTransportPort"]).map(|v| v as u16),
            dst_port: num(&["L4_DST_PORT", "DST_PORT", "destinationTransportPort"])
                .map(|v| v as u16),
            protocol: num(&["PROTOCOL", "PROTO", "protocolIdentifier"]).map(|v| v as u8),
            bytes: bytes.unwrap_or(0),
            packets: packets.unwrap_or(0),
            has_bytes: bytes.is_some(),
            has_packets: packets.is_some(),
            reverse_bytes: num(&["reverseOctetDeltaCount", "reverseOctetTotalCount"]),
            reverse_packets: num(&["reversePacketDeltaCount", "reversePacketTotalCount"]),
            first_switched: first,
            last_switched: last,
            time_base: base,
            start_ms,
            end_ms,
            ip_version: num(&["IP_PROTOCOL_VERSION", "ipVersion"]).map(|v| v as u8),
        });
    }
}

impl Iterator for FlowReader {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            // The flows layout needs one entry of lookahead (the next line
            // may continue the same datagram), so an entry is only returned
            // once a later one exists or the file ended.
            if self.queue.len() > 1 || (self.done && !self.queue.is_empty()) {
                return self.queue.pop_front();
            }
            if self.done {
                return None;
            }
            if self.max_lines.is_some_and(|m| self.line_no >= m) {
                self.done = true;
                continue;
            }
            if let Some(columns) = &mut self.columns {
                match columns.next_entry(self.keys_only) {
                    None => self.done = true,
                    Some(Ok((entry, rows))) => {
                        self.line_no += rows;
                        self.stats.lines += rows;
                        self.queue.push_back(entry);
                        // One entry at a time (no lookahead needed).
                        return self.queue.pop_front();
                    }
                    Some(Err(e)) => self.stats.damaged.push(e),
                }
                continue;
            }
            let Some(lines) = &mut self.lines else {
                self.done = true;
                continue;
            };
            let line = match lines.next() {
                None => {
                    self.done = true;
                    continue;
                }
                Some(Err(e)) => {
                    self.io_error = Some(e);
                    self.done = true;
                    continue;
                }
                Some(Ok(line)) => line,
            };
            self.line_no += 1;
            self.stats.lines += 1;
            if line.trim().is_empty() {
                continue;
            }
            let mut out: Vec<Entry> = self.queue.pop_back().into_iter().collect();
            let line_no = self.line_no;
            if let Err(msg) = self.parse_line(line_no, &line, &mut out) {
                self.stats.bad(line_no, msg);
            }
            self.queue.extend(out);
        }
    }
}

fn same_datagram(a: &Entry, b: &Entry) -> bool {
    a.received.to_bits() == b.received.to_bits()
        && a.exporter == b.exporter
        && a.header.version == b.header.version
        && a.header.sequence == b.header.sequence
        && a.header.domain == b.header.domain
}

/// A line's top-level object as (key, raw value) pairs in text order
/// (a handful of keys: a vector beats a map).
struct TopMap<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for TopMap<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = TopMap<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<TopMap<'a>, M::Error> {
                let mut pairs = Vec::with_capacity(9);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    pairs.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(TopMap(pairs))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The field names the analyzer reads, in slot order (see [`Fields`]).
const FIELD_NAMES: [&str; 45] = [
    "IPV4_SRC_ADDR",
    "sourceIPv4Address",
    "IPV6_SRC_ADDR",
    "sourceIPv6Address",
    "IPV4_DST_ADDR",
    "destinationIPv4Address",
    "IPV6_DST_ADDR",
    "destinationIPv6Address",
    "IN_BYTES",
    "IN_OCTETS",
    "octetDeltaCount",
    "octetTotalCount",
    "IN_PKTS",
    "IN_PACKETS",
    "packetDeltaCount",
    "packetTotalCount",
    "L4_SRC_PORT",
    "SRC_PORT",
    "sourceTransportPort",
    "L4_DST_PORT",
    "DST_PORT",
    "destinationTransportPort",
    "PROTOCOL",
    "PROTO",
    "protocolIdentifier",
    "reverseOctetDeltaCount",
    "reverseOctetTotalCount",
    "reversePacketDeltaCount",
    "reversePacketTotalCount",
    "IP_PROTOCOL_VERSION",
    "ipVersion",
    "systemInitTimeMilliseconds",
    "FIRST_SWITCHED",
    "LAST_SWITCHED",
    "flowStartSysUpTime",
    "flowEndSysUpTime",
    "flowStartMilliseconds",
    "flowEndMilliseconds",
    "NF_F_FLOW_CREATE_TIME_MSEC",
    "flowStartSeconds",
    "flowEndSeconds",
    "flowStartMicroseconds",
    "flowEndMicroseconds",
    "flowStartNanoseconds",
    "flowEndNanoseconds",
];

/// A record's fields the analyzer reads, values left as JSON text until
/// used; every other field is skipped while parsing (no map, no allocation
/// per field: this is the analyzer's hot loop).
struct Fields<'a> {
    slots: [Option<&'a RawValue>; FIELD_NAMES.len()],
}

impl<'a> Fields<'a> {
    fn slot(name: &str) -> Option<usize> {
        FIELD_NAMES.iter().position(|n| *n == name)
    }

    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.slots[Self::slot(name)?]
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a flow record object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Fields<'a>, M::Error> {
                let mut fields = Fields {
                    slots: [None; FIELD_NAMES.len()],
                };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match Fields::slot(&key) {
                        Some(i) => fields.slots[i] = Some(map.next_value::<&'de RawValue>()?),
                        None => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(fields)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A JSON non-negative integer (or a float with an integral value).
fn as_u64(v: &RawValue) -> Option<u64> {
    let t = v.get();
    t.parse::<u64>().ok().or_else(|| {
        let f: f64 = t.parse().ok()?;
        (f >= 0.0 && f.fract() == 0.0 && f < 1.8e19).then_some(f as u64)
    })
}

fn as_ip(v: &RawValue, v6: bool) -> Option<IpAddr> {
    let t = v.get();
    if t.starts_with('"') {
        let s: Cow<'_, str> = serde_json::from_str(t).ok()?;
        return s.parse().ok();
    }
    let n: u128 = t.parse().ok()?;
    Some(if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(n).ok()?))
    })
}

fn addr(f: &Fields<'_>, v4a: &str, v4b: &str, v6a: &str, v6b: &str) -> Option<IpAddr> {
    [(v4a, false), (v4b, false), (v6a, true), (v6b, true)]
        .iter()
        .find_map(|(n, v6)| f.get(n).and_then(|v| as_ip(v, *v6)))
}

/// Start/end values as given and their base; the first field pair present wins.
fn times(f: &Fields<'_>, original_layout: bool) -> (Option<u64>, Option<u64>, Option<TimeBase>) {
    const PAIRS: [(&str, &str, TimeBase); 8] = [
        ("FIRST_SWITCHED", "LAST_SWITCHED", TimeBase::SysUpTimeMs),
        (
            "flowStartSysUpTime",
            "flowEndSysUpTime",
            TimeBase::SysUpTimeMs,
        ),
        (
            "flowStartMilliseconds",
            "flowEndMilliseconds",
            TimeBase::UnixMillis,
        ),
        (
            "NF_F_FLOW_CREATE_TIME_MSEC",
            "flowEndMilliseconds",
            TimeBase::UnixMillis,
        ),
        ("flowStartSeconds", "flowEndSeconds", TimeBase::UnixSeconds),
        (
            "flowStartMicroseconds",
            "flowEndMicroseconds",
            TimeBase::UnixMicros,
        ),
        (
            "flowStartNanoseconds",
            "flowEndNanoseconds",
            TimeBase::UnixNanos,
        ),
        (
            "NF_F_FLOW_CREATE_TIME_MSEC",
            "NF_F_FLOW_CREATE_TIME_MSEC",
            TimeBase::UnixMillis,
        ),
    ];
    for (s, e, base) in PAIRS {
        let Some(start) = f.get(s) else { continue };
        let end = f.get(e);
        let micro_nano = matches!(base, TimeBase::UnixMicros | TimeBase::UnixNanos);
        if micro_nano && (original_layout || start.get().starts_with('[')) {
            // The original layout writes these as NTP [seconds, fraction].
            return (ntp(start), end.and_then(ntp), Some(TimeBase::Ntp));
        }
        return (as_u64(start), end.and_then(as_u64), Some(base));
    }
    (None, None, None)
}

fn ntp(v: &RawValue) -> Option<u64> {
    let pair: [u64; 2] = serde_json::from_str(v.get()).ok()?;
    Some((pair[0] & 0xffff_ffff) << 32 | (pair[1] & 0xffff_ffff))
}

fn to_unix_ms(raw: u64, base: TimeBase) -> Option<i64> {
    let v = i64::try_from(raw).ok();
    match base {
        TimeBase::SysUpTimeMs => None,
        TimeBase::UnixSeconds => v?.checked_mul(1000),
        TimeBase::UnixMillis => v,
        TimeBase::UnixMicros => Some(v? / 1000),
        TimeBase::UnixNanos => Some(v? / 1_000_000),
        TimeBase::Ntp => {
            let secs = (raw >> 32) as i64 - NTP_UNIX_OFFSET;
            let ms = ((raw & 0xffff_ffff) * 1000) >> 32;
            Some(secs * 1000 + ms as i64)
        }
    }
}

/// `["host", port, ...]` of the original layout.
fn client_addr(client: &[&RawValue]) -> Option<SocketAddr> {
    let host: Cow<'_, str> = serde_json::from_str(client.first()?.get()).ok()?;
    let port = as_u64(client.get(1)?)?;
    Some(SocketAddr::new(
        host.parse().ok()?,
        u16::try_from(port).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Entry>, ReadStats) {
        let mut r =
            FlowReader::from_reader(std::io::Cursor::new(text.as_bytes().to_vec())).unwrap();
        let entries: Vec<Entry> = r.by_ref().collect();
        (entries, r.stats().clone())
    }

    // The v1 example line of the original (spec section 7), values by hand:
    // 2886795266 = 172.17.0.2; uptime 71835 ms at 1585496876.802429 s.
    #[test]
    fn original_v1_line_with_integer_addresses() {
        let line = r#"{"1700000000.123456": {"client": ["192.0.2.10", 50000], "header": {"version": 1, "count": 2, "uptime": 71835, "timestamp": 1585496876, "timestamp_nano": 802429000}, "flows": [{"IPV4_SRC_ADDR": 2886795266, "IPV4_DST_ADDR": 2886795265, "NEXT_HOP": 0, "INPUT": 0, "OUTPUT": 0, "IN_PACKETS": 10, "IN_OCTETS": 840, "FIRST_SWITCHED": 10183, "LAST_SWITCHED": 19185, "SRC_PORT": 0, "DST_PORT": 2048, "PROTO": 1, "TOS": 0, "TCP_FLAGS": 0}]}}"#;
        let (e, stats) = read(line);
        assert_eq!(stats.bad_lines, 0);
        assert_eq!(e.len(), 1);
        let f = &e[0].flows[0];
        assert_eq!(e[0].key, "1700000000.123456");
        assert_eq!(e[0].exporter, Some("192.0.2.10:50000".parse().unwrap()));
        assert_eq!(f.src, Some("172.17.0.2".parse().unwrap()));
        assert_eq!(f.dst, Some("172.17.0.1".parse().unwrap()));
        assert_eq!(
            (f.bytes, f.packets, f.protocol, f.dst_port),
            (840, 10, Some(1), Some(2048))
        );
        assert_eq!(f.duration_ms(), Some(19185 - 10183));
        // export at 1585496876802 ms, uptime 71835: boot at 1585496804967; +10183.
        assert_eq!(f.start_ms, Some(1585496804967 + 10183));
        assert_eq!(f.end_ms, Some(1585496804967 + 19185));
    }

    #[test]
    fn original_ipfix_line_with_128_bit_address_and_options_record() {
        // fde6:6f14:e0f1:9609:0:affe:affe:affe as the original writes it (one integer).
        let v6 = 0xfde66f14e0f196090000affeaffeaffe_u128;
        let line = format!(
            r#"{{"1700000002.25": {{"client": ["2001:db8::1", 50000, 0, 0], "header": {{"version": 10, "length": 448, "export_uptime": 1692447120, "sequence_number": 2, "obervation_domain_id": 0}}, "flows": [{{"systemInitTimeMilliseconds": 1692447120686, "meteringProcessId": 45786}}, {{"sourceIPv6Address": {v6}, "destinationIPv6Address": 1, "octetDeltaCount": 100, "packetDeltaCount": 2, "flowStartSysUpTime": 1000, "flowEndSysUpTime": 3500, "protocolIdentifier": 17}}]}}}}"#
        );
        let (e, _) = read(&line);
        assert_eq!(e[0].options_records, 1);
        assert_eq!(e[0].header.sequence, Some(2));
        assert_eq!(e[0].exporter, Some("[2001:db8::1]:50000".parse().unwrap()));
        let f = &e[0].flows[0];
        assert_eq!(
            f.src,
            Some("fde6:6f14:e0f1:9609:0:affe:affe:affe".parse().unwrap())
        );
        assert_eq!(f.dst, Some("::1".parse().unwrap()));
        assert_eq!(f.start_ms, Some(1692447120686 + 1000));
        assert_eq!(f.duration_ms(), Some(2500));
    }

    #[test]
    fn flows_layout_lines_of_one_datagram_form_one_entry() {
        let a = r#"{"received":1700000000.5,"exporter":"127.0.0.1:2055","version":10,"domain":0,"template_id":256,"options":false,"export_time":1700000000,"sequence":7,"fields":{"sourceIPv4Address":"10.0.0.1","destinationIPv4Address":"10.0.0.2","flowStartNanoseconds":1700000007365545999,"flowEndNanoseconds":1700000008417453999,"octetDeltaCount":5,"packetDeltaCount":1,"reverseOctetDeltaCount":7,"reversePacketDeltaCount":2}}"#;
        let b = a.replace("10.0.0.1", "10.0.0.3");
        let c = a.replace("\"sequence\":7", "\"sequence\":8");
        let (e, stats) = read(&format!("{a}\n{b}\nnot json\n{c}\n"));
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].flows.len(), 2);
        assert_eq!(e[1].flows.len(), 1);
        assert_eq!(e[0].key, "1700000000.5");
        assert_eq!(stats.bad_lines, 1);
        assert_eq!(stats.errors[0].0, 3);
        let f = &e[0].flows[0];
        assert_eq!((f.total_bytes(), f.total_packets()), (12, 3));
        assert_eq!(f.start_ms, Some(1700000007365));
        assert_eq!(f.duration_ms(), Some(1700000008417 - 1700000007365));
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        let (e, stats) = read(
            "[1,2]\n{}\n{\"x\": {\"flows\": []}}\n{\"abc\": {\"header\": {\"version\": 9}}}\n\n",
        );
        assert!(e.is_empty());
        assert_eq!(stats.bad_lines, 4);
        assert_eq!(stats.lines, 5);
        assert_eq!(
            stats.errors.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn multi_key_object_gives_one_entry_per_key() {
        let (e, stats) = read(
            r#"{"2.0": {"header": {"version": 9}, "flows": []}, "1.0": {"header": {"version": 9}, "flows": []}}"#,
        );
        assert_eq!(stats.bad_lines, 0);
        assert_eq!(
            e.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            vec!["1.0", "2.0"]
        );
    }

    #[test]
    fn ntp_timestamps_of_the_original_layout() {
        // 2023-08-19T12:12:00.5Z = 1692447120.5 s; NTP seconds add 2208988800.
        let line = format!(
            r#"{{"1.0": {{"header": {{"version": 10}}, "flows": [{{"sourceIPv4Address": 1, "destinationIPv4Address": 2, "flowStartMicroseconds": [{}, 2147483648], "flowEndMicroseconds": [{}, 0]}}]}}}}"#,
            1692447120u64 + 2208988800,
            1692447122u64 + 2208988800
        );
        let (e, _) = read(&line);
        let f = &e[0].flows[0];
        assert_eq!(f.start_ms, Some(1692447120500));
        assert_eq!(f.duration_ms(), Some(1500));
    }
}
