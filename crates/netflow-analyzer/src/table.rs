//! The Python original's connection table (`python3 -m netflow.analyzer`,
//! netflow 0.12.2), line for line.
//!
//! What it does, as the original (spec section 8):
//! - entries are taken in **lexicographic** order of their timestamp key;
//!   the flows of an entry in FIRST_SWITCHED order (stable);
//! - pairing: a flow waits in `pending[FIRST_SWITCHED][its source address]`
//!   until a flow with the same FIRST_SWITCHED whose *destination* is that
//!   address comes (no port/protocol check; a later flow from the same source
//!   with the same start replaces the waiting one, keeping its place);
//! - a pair is one connection: the flow with more bytes (ties: the later
//!   flow) is the source; size = its bytes; packets = both flows' packets;
//!   duration = its LAST - FIRST (32-bit wrap handled); service = the system
//!   service name of its source port, else of the other flow's destination
//!   port, else `(<sport> <dport>)`, upper-cased;
//! - connections with fewer packets than the threshold are counted as skipped;
//! - the timestamp column is the entry key (receive time) in local time
//!   (`TZ` honoured), `YYYY-MM-DD HH:MM.SS`;
//! - `-v` lists the flows left waiting.
//!
//! Deliberate differences (fixes):
//! - v1/v5/v7 (`IN_OCTETS`/`IN_PACKETS`, integer addresses) and IPFIX (IANA
//!   names, start times of any unit) are analyzed; the original crashes on
//!   v1/v5 pairs (`KeyError: 'IN_PKTS'`) and skips IPFIX. An IPFIX biflow
//!   record (RFC 5103 reverse counters) is a connection by itself.
//! - A line that is not a stored entry is counted and reported on stderr,
//!   never a crash; an object with several timestamp keys gives one entry per
//!   key. Entries with the same key: like the original, only the last one
//!   counts, but the dropped ones are counted ([`TableSummary::overwritten_entries`]).
//! - Records without addresses or start time take no part (counted), instead
//!   of a `KeyError`.
//! - `--match-host` compares addresses, not text (so `::0001` matches `::1`).
//! - Reverse DNS runs concurrently with timeouts before printing (see [`crate::dns`]).
//! - Memory: the original holds every entry; [`write_table`] does too (it
//!   must sort), but [`write_table_sorted`] takes entries one at a time when
//!   the caller knows they are in key order (a collector's file is), holding
//!   only the waiting flows and the connections to print.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;

use chrono::{Local, TimeZone};

use crate::dns::Resolver;
use crate::flow::{Entry, Flow, TimeBase};
use crate::services::Services;

/// Options of the table (the original's flags).
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// `-p`: connections with fewer packets are skipped (default 10).
    pub packets_threshold: i64,
    /// `-v`: list the flows left without a peer.
    pub verbose: bool,
    /// `--match-host`: only flows from or to this address.
    pub match_host: Option<IpAddr>,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            packets_threshold: 10,
            verbose: false,
            match_host: None,
        }
    }
}

/// What happened besides the printed lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSummary {
    pub connections: u64,
    pub printed: u64,
    pub skipped: u64,
    /// Flows still waiting for a peer at the end.
    pub pending_flows: u64,
    /// Records that could not take part (no addresses or no start time).
    pub unusable_flows: u64,
    /// Entries dropped because a later one has the same timestamp key (the
    /// original keeps the last one only; so do we, to print the same table).
    pub overwritten_entries: u64,
}

/// One connection, ready to print.
#[derive(Debug, Clone)]
struct Connection {
    timestamp: String,
    src: IpAddr,
    dest: IpAddr,
    src_port: u16,
    dest_port: u16,
    size: u64,
    duration_ms: u64,
    packets: u64,
}

impl Connection {
    /// The original's `Connection(flow1, flow2)`: the flow with more bytes
    /// is the source (ties: `flow1`, the later one).
    fn pair(timestamp: &str, flow1: &Flow, flow2: &Flow) -> Option<Self> {
        let (src, dest) = if flow1.bytes >= flow2.bytes {
            (flow1, flow2)
        } else {
            (flow2, flow1)
        };
        Some(Connection {
            timestamp: timestamp.to_string(),
            src: src.src?,
            dest: src.dst?,
            src_port: src.src_port.unwrap_or(0),
            dest_port: dest.dst_port.unwrap_or(0),
            size: src.bytes,
            duration_ms: src.duration_ms().unwrap_or(0),
            packets: src.packets.saturating_add(dest.packets),
        })
    }

    /// An RFC 5103 biflow record holds both directions: the one with more
    /// bytes is the source, as for a pair; on a tie the reverse direction,
    /// as if it were the later flow of a pair.
    fn biflow(timestamp: &str, f: &Flow) -> Option<Self> {
        let reverse_bytes = f.reverse_bytes.unwrap_or(0);
        let forward = f.bytes > reverse_bytes;
        let (src, dest, port) = if forward {
            (f.src?, f.dst?, f.src_port.unwrap_or(0))
        } else {
            (f.dst?, f.src?, f.dst_port.unwrap_or(0))
        };
        Some(Connection {
            timestamp: timestamp.to_string(),
            src,
            dest,
            src_port: port,
            dest_port: port,
            size: if forward { f.bytes } else { reverse_bytes },
            duration_ms: f.duration_ms().unwrap_or(0),
            packets: f.total_packets(),
        })
    }
}

/// `pending[first switched]`: flows by source address, in insertion order
/// (a replaced flow keeps its place, like a Python dict).
#[derive(Default)]
struct Bucket {
    flows: HashMap<IpAddr, (u64, Flow)>,
}

/// Pairing key: the start value as given, in its base.
type StartKey = (u64, u8);

fn start_key(f: &Flow) -> Option<StartKey> {
    let base = match f.time_base? {
        TimeBase::SysUpTimeMs => 0,
        TimeBase::UnixSeconds => 1,
        TimeBase::UnixMillis => 2,
        TimeBase::UnixMicros => 3,
        TimeBase::UnixNanos => 4,
        TimeBase::Ntp => 5,
    };
    Some((f.first_switched?, base))
}

/// The pairing state of the original's table: entries go in in key order,
/// connections and waiting flows come out.
struct Pairing<'o> {
    options: &'o TableOptions,
    summary: TableSummary,
    pending: HashMap<StartKey, Bucket>,
    insertion: u64,
    connections: Vec<Connection>,
}

impl<'o> Pairing<'o> {
    fn new(options: &'o TableOptions) -> Self {
        Pairing {
            options,
            summary: TableSummary::default(),
            pending: HashMap::new(),
            insertion: 0,
            connections: Vec::new(),
        }
    }

    /// One entry (the one the original's dict kept for its key).
    fn entry(&mut self, entry: &Entry) {
        let timestamp = local_timestamp(&entry.key);
        let mut flows: Vec<&Flow> = entry.flows.iter().collect();
        flows.retain(|f| {
            let usable = f.src.is_some()
                && f.dst.is_some()
                && (f.reverse_bytes.is_some() || start_key(f).is_some());
            if !usable {
                self.summary.unusable_flows += 1;
            }
            usable
        });
        flows.sort_by_key(|f| start_key(f));
        for flow in flows {
            let (Some(local), Some(remote)) = (flow.src, flow.dst) else {
                continue;
            };
            if let Some(host) = self.options.match_host {
                if local != host && remote != host {
                    continue;
                }
            }
            let conn = if flow.reverse_bytes.is_some() {
                Connection::biflow(&timestamp, flow)
            } else {
                let Some(key) = start_key(flow) else { continue };
                let bucket = self.pending.entry(key).or_default();
                match bucket.flows.remove(&remote) {
                    Some((_, peer)) => {
                        if bucket.flows.is_empty() {
                            self.pending.remove(&key);
                        }
                        Connection::pair(&timestamp, flow, &peer)
                    }
                    None => {
                        self.insertion += 1;
                        bucket
                            .flows
                            .entry(local)
                            .and_modify(|(_, waiting)| *waiting = flow.clone())
                            .or_insert((self.insertion, flow.clone()));
                        continue;
                    }
                }
            };
            let Some(conn) = conn else { continue };
            self.summary.connections += 1;
            if (conn.packets as i128) < self.options.packets_threshold as i128 {
                self.summary.skipped += 1;
                continue;
            }
            self.connections.push(conn);
        }
    }
}

/// Print the table for `entries` (any order; they are sorted by key here,
/// so all of them are held in memory).
/// DNS names come from `resolver` (`None`: `-n`, addresses as text).
pub fn write_table(
    entries: impl IntoIterator<Item = Entry>,
    options: &TableOptions,
    services: &Services,
    resolver: Option<&Resolver>,
    out: &mut dyn Write,
) -> io::Result<TableSummary> {
    // The original keeps every entry in a dict keyed by timestamp text and
    // walks it in sorted key order (the stable sort keeps file order inside
    // a key, so the last one is the one the dict kept).
    let mut entries: Vec<Entry> = entries.into_iter().collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let mut pairing = Pairing::new(options);
    let mut i = 0;
    while i < entries.len() {
        let mut j = i + 1;
        while j < entries.len() && entries[j].key == entries[i].key {
            j += 1;
        }
        pairing.summary.overwritten_entries += (j - i - 1) as u64;
        pairing.entry(&entries[j - 1]);
        i = j;
    }
    finish(pairing, services, resolver, out)
}

/// Like [`write_table`] for entries already in strictly increasing key
/// order (checked: an entry out of order is an `InvalidData` error), one at
/// a time: memory holds the waiting flows and the connections to print,
/// not the file. Callers learn the order with a first
/// [`FlowReader::keys_only`](crate::FlowReader::keys_only) pass.
pub fn write_table_sorted(
    entries: impl IntoIterator<Item = Entry>,
    options: &TableOptions,
    services: &Services,
    resolver: Option<&Resolver>,
    out: &mut dyn Write,
) -> io::Result<TableSummary> {
    let mut pairing = Pairing::new(options);
    let mut last: Option<String> = None;
    for entry in entries {
        if last.as_ref().is_some_and(|k| *k >= entry.key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "entry {} (line {}) is not in key order",
                    entry.key, entry.line
                ),
            ));
        }
        pairing.entry(&entry);
        last = Some(entry.key);
    }
    finish(pairing, services, resolver, out)
}

/// Resolve names, print connections, the skipped line and the `-v` list.
fn finish(
    pairing: Pairing<'_>,
    services: &Services,
    resolver: Option<&Resolver>,
    out: &mut dyn Write,
) -> io::Result<TableSummary> {
    let Pairing {
        options,
        mut summary,
        pending,
        connections,
        ..
    } = pairing;

    // The waiting flows `-v` lists, in the original's order.
    let mut keys: Vec<StartKey> = pending.keys().copied().collect();
    keys.sort();
    let mut waiting: Vec<&Flow> = Vec::new();
    for k in &keys {
        let mut flows: Vec<&(u64, Flow)> = pending[k].flows.values().collect();
        flows.sort_by_key(|(n, _)| *n);
        summary.pending_flows += flows.len() as u64;
        waiting.extend(flows.into_iter().map(|(_, f)| f));
    }
    let listed: Vec<&Flow> = waiting
        .into_iter()
        .filter(|f| (f.packets as i128) >= options.packets_threshold as i128)
        .collect();

    if let Some(resolver) = resolver {
        let mut ips: Vec<IpAddr> = connections.iter().flat_map(|c| [c.src, c.dest]).collect();
        if options.verbose {
            ips.extend(listed.iter().flat_map(|f| [f.src, f.dst]).flatten());
        }
        resolver.resolve_all(ips);
    }
    let host = |ip: IpAddr| {
        resolver
            .and_then(|r| r.resolved(ip))
            .unwrap_or_else(|| ip_text(ip))
    };

    for (n, c) in connections.iter().enumerate() {
        if n == 0 {
            writeln!(
                out,
                "{:19} | {:14} | {:8} | {:9} | {:7} | Involved hosts",
                "Timestamp", "Service", "Size", "Duration", "Packets"
            )?;
            writeln!(out, "{}", "-".repeat(100))?;
        }
        let service = services
            .name(c.src_port)
            .or_else(|| services.name(c.dest_port))
            .map(str::to_string)
            .unwrap_or_else(|| format!("({} {})", c.src_port, c.dest_port))
            .to_uppercase();
        writeln!(
            out,
            "{} | {:<14} | {:8} | {:9} | {:7} | Between {} ({}) and {} ({})",
            c.timestamp,
            service,
            human_size(c.size),
            human_duration(c.duration_ms / 1000),
            c.packets,
            host(c.src),
            ip_text(c.src),
            host(c.dest),
            ip_text(c.dest)
        )?;
        summary.printed += 1;
    }
    if summary.skipped > 0 {
        writeln!(
            out,
            "{} connections skipped, because they had less than {} packets (this value can be set with the -p flag).",
            summary.skipped, options.packets_threshold
        )?;
    }
    if options.verbose && !pending.is_empty() {
        writeln!(
            out,
            "\nThere are {} first_switched entries left in the pending dict!",
            pending.len()
        )?;
        for f in &listed {
            let text = |ip: Option<IpAddr>| match ip {
                None => "None".to_string(),
                Some(ip) => {
                    let name = host(ip);
                    let ip = ip_text(ip);
                    if name == ip {
                        ip
                    } else {
                        format!("{name} ({ip})")
                    }
                }
            };
            writeln!(
                out,
                "From {}:{} to {}:{} with proto {} and size {} ({} packets)",
                text(f.src),
                f.src_port.unwrap_or(0),
                text(f.dst),
                f.dst_port.unwrap_or(0),
                protocol_name(f.protocol),
                human_size(f.bytes),
                f.packets
            )?;
        }
        if listed.is_empty() {
            writeln!(out, "They were all noise!")?;
        }
    }
    Ok(summary)
}

/// An address as Python's `ipaddress` prints it (and as the original's
/// collector stores v9 addresses): IPv6 compressed without the dotted IPv4
/// tail Rust uses for `::ffff:a.b.c.d`.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => netflow_store::pyjson::py_ipv6(a),
    }
}

/// The original's IP_PROTOCOLS table.
fn protocol_name(p: Option<u8>) -> &'static str {
    match p {
        Some(1) => "ICMP",
        Some(6) => "TCP",
        Some(17) => "UDP",
        Some(58) => "ICMPv6",
        _ => "UNKNOWN",
    }
}

/// `human_size`: bytes, then binary K/M/G with two decimals (Rust's `{:.2}`
/// rounds the exact binary value half to even, as Python's `%.2f` does).
pub fn human_size(size: u64) -> String {
    let s = size as f64;
    if size < 1024 {
        format!("{size}B")
    } else if s / 1024.0 < 1024.0 {
        format!("{:.2}K", s / 1024.0)
    } else if s / (1024.0 * 1024.0) < 1024.0 {
        format!("{:.2}M", s / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", s / (1024.0 * 1024.0 * 1024.0))
    }
}

/// `human_duration` of whole seconds: `<s> sec`, `<mm>:<ss> min` up to and
/// including 60 minutes, else `<h>:<mm>.<ss> hours`.
pub fn human_duration(seconds: u64) -> String {
    if seconds < 60 {
        format!("{seconds} sec")
    } else if seconds > 3600 {
        format!(
            "{}:{:02}.{:02} hours",
            seconds / 3600,
            seconds % 3600 / 60,
            seconds % 60
        )
    } else {
        format!("{:02}:{:02} min", seconds / 60, seconds % 60)
    }
}

/// The key as Python's `datetime.fromtimestamp(float(key))` in local time
/// (microseconds rounded half to even first, which can carry into the
/// second), formatted `%Y-%m-%d %H:%M.%S`. A key that is not a time prints as is.
pub fn local_timestamp(key: &str) -> String {
    let Some(t) = key.trim().parse::<f64>().ok().filter(|t| t.is_finite()) else {
        return key.to_string();
    };
    let mut secs = t.floor();
    let micros = ((t - secs) * 1e6).round_ties_even();
    if micros >= 1e6 {
        secs += 1.0;
    }
    match Local.timestamp_opt(secs as i64, 0).earliest() {
        Some(dt) => dt.format("%Y-%m-%d %H:%M.%S").to_string(),
        None => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(keys: &[&str]) -> Vec<Entry> {
        let flow = |s: &str, d: &str, b: u32| {
            format!(
                r#"{{"IPV4_SRC_ADDR": "{s}", "IPV4_DST_ADDR": "{d}", "IN_BYTES": {b}, "IN_PKTS": 9, "FIRST_SWITCHED": 7, "LAST_SWITCHED": 70007, "L4_SRC_PORT": 1, "L4_DST_PORT": 2, "PROTOCOL": 6}}"#
            )
        };
        let text: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let (a, b) = (format!("10.0.0.{i}"), format!("10.0.1.{i}"));
                format!(
                    r#"{{"{k}": {{"header": {{"version": 9}}, "flows": [{}, {}, {}]}}}}"#,
                    flow(&a, &b, 100),
                    flow(&b, &a, 5000),
                    flow("192.0.2.1", &a, 1)
                )
            })
            .collect();
        crate::FlowReader::from_reader(std::io::Cursor::new(text.join("\n").into_bytes()))
            .unwrap()
            .collect()
    }

    /// The streaming variant prints exactly what the sorting one prints, and
    /// refuses entries out of order instead of printing a wrong table.
    #[test]
    fn sorted_streaming_equals_sorting() {
        let options = TableOptions {
            packets_threshold: 0,
            verbose: true,
            match_host: None,
        };
        let services = Services::parse("tcp1 1/tcp\n");
        let keys = ["1.5", "2.25", "3.0"];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let sa = write_table(entries(&keys), &options, &services, None, &mut a).unwrap();
        let sb = write_table_sorted(entries(&keys), &options, &services, None, &mut b).unwrap();
        assert_eq!(
            String::from_utf8(a).unwrap(),
            String::from_utf8(b.clone()).unwrap()
        );
        assert_eq!(sa, sb);
        // The three 192.0.2.1 flows share start and source: the later replace the earlier.
        assert_eq!((sa.connections, sa.pending_flows), (3, 1));
        assert!(String::from_utf8(b)
            .unwrap()
            .contains("| TCP1           | 4.88K    | 01:10 min |      18 |"));
        let err = write_table_sorted(
            entries(&["2.0", "1.0"]),
            &options,
            &services,
            None,
            &mut Vec::new(),
        );
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::InvalidData);
        let err = write_table_sorted(
            entries(&["1.0", "1.0"]),
            &options,
            &services,
            None,
            &mut Vec::new(),
        );
        assert!(err.is_err());
    }

    // Expected texts computed by hand from the original's formulas.
    #[test]
    fn sizes_and_durations_like_the_original() {
        assert_eq!(human_size(1023), "1023B");
        assert_eq!(human_size(1024), "1.00K");
        assert_eq!(human_size(1152), "1.12K"); // 1.125: ties to even
        assert_eq!(human_size(102416), "100.02K");
        assert_eq!(human_size(1024 * 1024 * 3 / 2), "1.50M");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.00G");
        assert_eq!(human_duration(59), "59 sec");
        assert_eq!(human_duration(115), "01:55 min");
        assert_eq!(human_duration(3600), "60:00 min");
        assert_eq!(human_duration(3661), "1:01.01 hours");
    }
}
