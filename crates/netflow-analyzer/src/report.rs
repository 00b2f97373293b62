//! `netflow analyzer report`: one self-contained HTML page about stored flows.
//!
//! Two steps, so each can be tested on its own:
//!
//! 1. [`ReportBuilder`] streams over flows and export headers and keeps
//!    aggregates in bounded memory: traffic per time bucket
//!    ([`timeline`]), the heaviest sources, destinations, pairs, protocols
//!    and services ([`topn`]), and per exporter and sequence stream the
//!    export count and the sequence-number accounting of
//!    [`netflow::sequence::SequenceTracker`] (loss in the unit each version
//!    counts: v5/v7 flows, v9 export packets, IPFIX data records; RFC 3954
//!    section 5.1, RFC 7011 section 3.1). [`ReportBuilder::finish`] gives a
//!    [`ReportData`], plain serializable numbers.
//! 2. [`render`] turns a [`ReportData`] into HTML: inline CSS and inline SVG
//!    charts drawn here, no script, no external resource. A
//!    Content-Security-Policy of `default-src 'none'` makes the browser refuse
//!    any request the page could make, so it opens offline and leaks nothing.
//!
//! All times are UTC.

pub mod html;
pub mod input;
pub mod timeline;
pub mod topn;
pub mod units;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use netflow::sequence::{SequenceTracker, StreamKey, TrackerLimits};
use netflow::{ExporterId, Header};
use serde::{Deserialize, Serialize};

pub use html::render;
pub use input::{write_report, FileError};
pub use timeline::{Bucket, Timeline, TimelineBuilder};
pub use topn::{Tally, TopCounter, TopRow, TopTable};

/// Rows shown in each top-N table.
pub const TOP_ROWS: usize = 10;

/// Unparsable lines quoted in the report (all are counted).
pub const MAX_PROBLEM_EXAMPLES: usize = 20;

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReportData {
    pub title: String,
    /// The input files, as given.
    pub inputs: Vec<String>,
    pub totals: Totals,
    /// Earliest and latest flow time (seconds since the epoch), `None` without flows.
    pub first_flow: Option<i64>,
    pub last_flow: Option<i64>,
    pub timeline: Timeline,
    /// Flows placed in time by their datagram's export or receive time (no usable start time).
    pub flows_timed_by_receive: u64,
    pub top_sources: TopTable,
    pub top_destinations: TopTable,
    /// Source → destination, one direction each.
    pub top_pairs: TopTable,
    pub protocols: TopTable,
    /// By service port (see [`service_port`]).
    pub services: TopTable,
    /// One per sequence stream (exporter, version, domain), by exporter.
    pub exporters: Vec<ExporterHealth>,
    /// Streams the sequence tracker forgot because there were too many.
    pub exporter_streams_evicted: u64,
    /// Lines that could not be read, and the first few of them.
    pub unparsable_lines: u64,
    pub problems: Vec<Problem>,
}

/// Grand totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    pub flows: u64,
    pub bytes: u64,
    pub packets: u64,
    /// Export datagrams (stored entries).
    pub exports: u64,
    /// Of which with a version the report does not know (not in `exporters`).
    pub exports_unknown_version: u64,
    /// Distinct exporter addresses.
    pub exporters: u64,
}

/// Health of one sequence stream of one exporter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExporterHealth {
    /// Transport address, `"192.0.2.1:2055"`.
    pub exporter: String,
    /// `"v5"`, `"v9"`, `"IPFIX"`, ...
    pub protocol: String,
    /// v9 source id, IPFIX observation domain, else 0 (the stored lines keep no v5 engine).
    pub domain: u32,
    /// What the sequence number counts: `"flows"`, `"packets"`, `"records"`, `"none"`.
    pub unit: String,
    pub exports: u64,
    /// Records the exports held (options records included).
    pub records: u64,
    /// Sequence accounting, in `unit`s.
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub reordered: u64,
    pub duplicates: u64,
    pub late: u64,
    pub restarts: u64,
    /// Receive time of the first and last export, seconds since the epoch.
    pub first_seen: f64,
    pub last_seen: f64,
    /// Read from `--format flows` lines, which store nothing for datagrams
    /// without data records: v9 template-only packets then count as lost.
    pub from_flows_layout: bool,
    /// v5: the largest sampling interval the headers announced (1 in N
    /// packets; 0 or 1 = not sampled). Counters in the report are as
    /// exported, not scaled up.
    pub sampling_interval: u16,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub file: String,
    /// 1-based line number (0 when the file as a whole failed).
    pub line: u64,
    pub message: String,
}

/// The facts of one flow the report needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowFacts {
    /// When the flow happened (its start if known), seconds since the epoch.
    pub time: i64,
    /// False when `time` is the receive time (the flow's start was unknown).
    pub start_known: bool,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// IP protocol number.
    pub protocol: Option<u8>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub bytes: u64,
    pub packets: u64,
    /// The reverse direction of an IPFIX biflow record (RFC 5103), else 0.
    pub reverse_bytes: u64,
    pub reverse_packets: u64,
}

/// Streams flows and exports into a [`ReportData`] (see the module docs).
#[derive(Debug)]
pub struct ReportBuilder {
    totals: Totals,
    timeline: TimelineBuilder,
    sources: TopCounter<IpAddr>,
    destinations: TopCounter<IpAddr>,
    pairs: TopCounter<(IpAddr, IpAddr)>,
    protocols: TopCounter<Option<u8>>,
    services: TopCounter<ServiceKey>,
    sequences: SequenceTracker,
    /// Per stream: first and last receive time, and whether from the flows layout.
    seen: HashMap<StreamKey, StreamSeen>,
    flows_timed_by_receive: u64,
    exporters: HashSet<SocketAddr>,
    unparsable_lines: u64,
    problems: Vec<Problem>,
}

/// What the report keeps per stream besides the tracker's counters.
#[derive(Debug, Clone, Copy, Default)]
struct StreamSeen {
    first: f64,
    last: f64,
    flows_layout: bool,
    /// Largest v5 sampling interval announced (0 or 1: not sampled).
    sampling_interval: u16,
}

/// Service key: protocol and service port (`None` for protocols without ports).
type ServiceKey = (Option<u8>, Option<u16>);

impl Default for ReportBuilder {
    fn default() -> Self {
        Self::with_capacity(topn::DEFAULT_CAPACITY)
    }
}

impl ReportBuilder {
    /// Keep at most about `2 * capacity` distinct keys per top-N table (see [`topn`]).
    pub fn with_capacity(capacity: usize) -> Self {
        ReportBuilder {
            totals: Totals::default(),
            timeline: TimelineBuilder::default(),
            sources: TopCounter::new(capacity),
            destinations: TopCounter::new(capacity),
            pairs: TopCounter::new(capacity),
            protocols: TopCounter::new(256),
            services: TopCounter::new(capacity),
            sequences: SequenceTracker::new(TrackerLimits::default()),
            seen: HashMap::new(),
            flows_timed_by_receive: 0,
            exporters: HashSet::new(),
            unparsable_lines: 0,
            problems: Vec::new(),
        }
    }

    /// Account one export datagram received at `received` (seconds) from
    /// `exporter`, holding `data_records` data records (options included).
    /// `complete` is false when some of its sets could not be decoded (an
    /// IPFIX set without its template): its extent in sequence space is then unknown.
    /// `flows_layout`: it was read from `--format flows` lines (see [`ExporterHealth::from_flows_layout`]).
    pub fn add_export(
        &mut self,
        received: f64,
        exporter: SocketAddr,
        header: &Header,
        data_records: u64,
        complete: bool,
        flows_layout: bool,
    ) {
        self.totals.exports += 1;
        // Bounded: past a million exporters the count is a lower bound.
        if self.exporters.len() < 1_000_000 {
            self.exporters.insert(exporter);
        }
        let id = ExporterId(exporter);
        if complete {
            self.sequences.observe(id, header, data_records);
        } else {
            self.sequences.observe_incomplete(id, header, data_records);
        }
        let key = StreamKey::new(id, header);
        // Bounded like the tracker: past its stream limit, first/last seen
        // times of new streams are not kept (the row then shows none).
        let limit = self.sequences.limits().max_streams;
        if self.seen.len() < limit || self.seen.contains_key(&key) {
            let e = self.seen.entry(key).or_insert(StreamSeen {
                first: received,
                last: received,
                ..StreamSeen::default()
            });
            e.first = e.first.min(received);
            e.last = e.last.max(received);
            e.flows_layout |= flows_layout;
            // v5 header: 2 bits of sampling mode, 14 bits of interval
            // (Cisco's NetFlow v5 format); v9/IPFIX announce it in options data.
            if let Header::V5(h) = header {
                e.sampling_interval = e.sampling_interval.max(h.sampling_interval & 0x3fff);
            }
        }
    }

    /// Count an export whose version is none of 1, 5, 7, 9, 10.
    pub fn add_unknown_version_export(&mut self) {
        self.totals.exports += 1;
        self.totals.exports_unknown_version += 1;
    }

    /// Count one flow.
    pub fn add_flow(&mut self, flow: &FlowFacts) {
        // Both directions of a biflow count in the totals, the timeline and
        // the mix; in the talker tables each direction goes to its sender.
        let bytes = flow.bytes.saturating_add(flow.reverse_bytes);
        let packets = flow.packets.saturating_add(flow.reverse_packets);
        self.totals.flows += 1;
        self.totals.bytes = self.totals.bytes.saturating_add(bytes);
        self.totals.packets = self.totals.packets.saturating_add(packets);
        if !flow.start_known {
            self.flows_timed_by_receive += 1;
        }
        self.timeline.add(flow.time, bytes, packets);
        self.direction(flow.src, flow.dst, flow.bytes, flow.packets);
        if flow.reverse_bytes > 0 || flow.reverse_packets > 0 {
            self.direction(flow.dst, flow.src, flow.reverse_bytes, flow.reverse_packets);
        }
        self.protocols.add(flow.protocol, bytes, packets);
        let port = flow
            .protocol
            .filter(|p| has_ports(*p))
            .and_then(|_| service_port(flow.src_port, flow.dst_port));
        self.services.add((flow.protocol, port), bytes, packets);
    }

    fn direction(&mut self, src: Option<IpAddr>, dst: Option<IpAddr>, bytes: u64, packets: u64) {
        if let Some(src) = src {
            self.sources.add(src, bytes, packets);
        }
        if let Some(dst) = dst {
            self.destinations.add(dst, bytes, packets);
        }
        if let (Some(src), Some(dst)) = (src, dst) {
            self.pairs.add((src, dst), bytes, packets);
        }
    }

    /// Count lines that could not be read, without quoting them.
    pub fn add_unquoted_problems(&mut self, lines: u64) {
        self.unparsable_lines = self.unparsable_lines.saturating_add(lines);
    }

    /// Count a line that could not be read; the first few are quoted.
    pub fn add_bad_line(&mut self, file: &str, line: u64, message: impl Into<String>) {
        self.unparsable_lines += 1;
        self.add_problem(file, line, message);
    }

    /// Quote a problem with the input (the first few are kept).
    pub fn add_problem(&mut self, file: &str, line: u64, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEM_EXAMPLES {
            self.problems.push(Problem {
                file: file.to_string(),
                line,
                message: message.into(),
            });
        }
    }

    pub fn finish(self, title: &str, inputs: &[String]) -> ReportData {
        let span = self.timeline.span();
        let mut exporters: Vec<ExporterHealth> = self
            .sequences
            .streams()
            .map(|(key, c)| {
                let seen = self.seen.get(&key).copied().unwrap_or_default();
                ExporterHealth {
                    exporter: key.exporter.0.to_string(),
                    protocol: key.protocol.name().to_string(),
                    domain: key.domain,
                    unit: key.unit().name().to_string(),
                    exports: c.datagrams,
                    records: c.records,
                    expected: c.expected,
                    received: c.received,
                    lost: c.lost,
                    reordered: c.reordered,
                    duplicates: c.duplicates,
                    late: c.late,
                    restarts: c.restarts,
                    first_seen: seen.first,
                    last_seen: seen.last,
                    from_flows_layout: seen.flows_layout,
                    sampling_interval: seen.sampling_interval,
                }
            })
            .collect();
        // Numeric address order (":9995" after ":2055"), then stream.
        exporters.sort_by(|a, b| {
            let addr = |e: &ExporterHealth| e.exporter.parse::<SocketAddr>().ok();
            (addr(a), &a.exporter, &a.protocol, a.domain).cmp(&(
                addr(b),
                &b.exporter,
                &b.protocol,
                b.domain,
            ))
        });
        let mut totals = self.totals;
        totals.exporters = self.exporters.len() as u64;
        ReportData {
            title: title.to_string(),
            inputs: inputs.to_vec(),
            totals,
            first_flow: span.map(|s| s.0),
            last_flow: span.map(|s| s.1),
            timeline: self.timeline.finish(),
            flows_timed_by_receive: self.flows_timed_by_receive,
            top_sources: self
                .sources
                .table(TOP_ROWS, |a| (a.to_string(), String::new())),
            top_destinations: self
                .destinations
                .table(TOP_ROWS, |a| (a.to_string(), String::new())),
            top_pairs: self
                .pairs
                .table(TOP_ROWS, |(s, d)| (format!("{s} → {d}"), String::new())),
            protocols: self.protocols.table(TOP_ROWS, |p| protocol_label(*p)),
            services: self
                .services
                .table(TOP_ROWS, |(p, port)| service_label(*p, *port)),
            exporters,
            exporter_streams_evicted: self.sequences.evicted(),
            unparsable_lines: self.unparsable_lines,
            problems: self.problems,
        }
    }
}

/// TCP, UDP, SCTP, DCCP, UDP-Lite: protocols whose flows have ports.
fn has_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 33 | 132 | 136)
}

/// The port that names a flow's service: the destination port if it is a
/// well-known service (in [`WELL_KNOWN_PORTS`]), else the source port if it
/// is one (a reply), else the lower port if below 1024, else the destination port.
pub fn service_port(src: Option<u16>, dst: Option<u16>) -> Option<u16> {
    let known = |p: Option<u16>| p.filter(|p| service_name(*p).is_some());
    known(dst).or(known(src)).or_else(|| match (src, dst) {
        (Some(s), Some(d)) if s.min(d) < 1024 => Some(s.min(d)),
        _ => dst.or(src),
    })
}

/// Common services by port (IANA service names), for labels.
pub const WELL_KNOWN_PORTS: &[(u16, &str)] = &[
    (20, "ftp-data"),
    (21, "ftp"),
    (22, "ssh"),
    (23, "telnet"),
    (25, "smtp"),
    (53, "domain"),
    (67, "bootps"),
    (68, "bootpc"),
    (69, "tftp"),
    (80, "http"),
    (110, "pop3"),
    (123, "ntp"),
    (143, "imap"),
    (161, "snmp"),
    (162, "snmptrap"),
    (179, "bgp"),
    (389, "ldap"),
    (443, "https"),
    (445, "microsoft-ds"),
    (465, "submissions"),
    (500, "isakmp"),
    (514, "syslog"),
    (587, "submission"),
    (636, "ldaps"),
    (853, "domain-s"),
    (993, "imaps"),
    (995, "pop3s"),
    (1194, "openvpn"),
    (1812, "radius"),
    (2055, "netflow"),
    (3306, "mysql"),
    (3389, "ms-wbt-server"),
    (4739, "ipfix"),
    (5060, "sip"),
    (5432, "postgresql"),
    (6379, "redis"),
    (6443, "kubernetes-api"),
    (8080, "http-alt"),
    (8443, "https-alt"),
    (9100, "jetdirect"),
    (9200, "elasticsearch"),
    (9995, "netflow-alt"),
];

pub fn service_name(port: u16) -> Option<&'static str> {
    WELL_KNOWN_PORTS
        .binary_search_by_key(&port, |(p, _)| *p)
        .ok()
        .map(|i| WELL_KNOWN_PORTS[i].1)
}

/// IANA protocol keywords for the common IP protocol numbers.
pub fn protocol_name(protocol: u8) -> Option<&'static str> {
    Some(match protocol {
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        17 => "UDP",
        33 => "DCCP",
        41 => "IPv6",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "ICMPv6",
        88 => "EIGRP",
        89 => "OSPF",
        103 => "PIM",
        112 => "VRRP",
        115 => "L2TP",
        132 => "SCTP",
        136 => "UDPLite",
        _ => return None,
    })
}

fn protocol_label(protocol: Option<u8>) -> (String, String) {
    match protocol {
        None => ("unknown".to_string(), "no protocol field".to_string()),
        Some(p) => match protocol_name(p) {
            Some(name) => (name.to_string(), format!("protocol {p}")),
            None => (format!("protocol {p}"), String::new()),
        },
    }
}

fn service_label(protocol: Option<u8>, port: Option<u16>) -> (String, String) {
    let proto = match protocol {
        Some(p) => protocol_name(p)
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| format!("proto-{p}")),
        None => "unknown".to_string(),
    };
    match port {
        Some(port) => (
            format!("{proto}/{port}"),
            service_name(port).unwrap_or("").to_string(),
        ),
        None => (proto, String::new()),
    }
}

/// Group rows by exporter address, in order (used by the page).
pub(crate) fn by_exporter(rows: &[ExporterHealth]) -> BTreeMap<&str, Vec<&ExporterHealth>> {
    let mut map: BTreeMap<&str, Vec<&ExporterHealth>> = BTreeMap::new();
    for r in rows {
        map.entry(r.exporter.as_str()).or_default().push(r);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_ports_are_sorted_for_binary_search() {
        for w in WELL_KNOWN_PORTS.windows(2) {
            assert!(w[0].0 < w[1].0, "{:?} {:?}", w[0], w[1]);
        }
        assert_eq!(service_name(443), Some("https"));
        assert_eq!(service_name(444), None);
    }

    #[test]
    fn service_port_prefers_known_then_low_ports() {
        assert_eq!(service_port(Some(51000), Some(443)), Some(443));
        // A reply from a web server.
        assert_eq!(service_port(Some(80), Some(51000)), Some(80));
        // Neither known: the privileged one.
        assert_eq!(service_port(Some(40000), Some(999)), Some(999));
        // Neither known nor privileged: the destination.
        assert_eq!(service_port(Some(40000), Some(50000)), Some(50000));
        assert_eq!(service_port(None, None), None);
    }

    #[test]
    fn builder_totals_and_tables() {
        let mut b = ReportBuilder::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let c: IpAddr = "198.51.100.7".parse().unwrap();
        for (src, dst, bytes) in [(a, c, 1000), (c, a, 50), (a, c, 24)] {
            b.add_flow(&FlowFacts {
                time: 100,
                start_known: true,
                reverse_bytes: 0,
                reverse_packets: 0,
                src: Some(src),
                dst: Some(dst),
                protocol: Some(6),
                src_port: Some(40000),
                dst_port: Some(443),
                bytes,
                packets: 2,
            });
        }
        b.add_bad_line("f.gz", 3, "bad json");
        let r = b.finish("t", &["f.gz".to_string()]);
        assert_eq!(r.totals.flows, 3);
        assert_eq!(r.totals.bytes, 1074);
        assert_eq!(r.top_sources.rows[0].label, "192.0.2.1");
        assert_eq!(r.top_sources.rows[0].tally.bytes, 1024);
        assert_eq!(r.top_pairs.rows[1].label, "198.51.100.7 → 192.0.2.1");
        assert_eq!(r.protocols.rows[0].label, "TCP");
        assert_eq!(r.services.rows[0].label, "tcp/443");
        assert_eq!(r.services.rows[0].detail, "https");
        assert_eq!(r.unparsable_lines, 1);
        assert_eq!(r.first_flow, Some(100));
    }
}
