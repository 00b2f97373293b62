//! Top-N talkers (nfdump `-s` style): stream flows through a filter into a
//! hash map of totals per key, then rank by one metric with each row's share.
//!
//! Keys (`--by`):
//! - `src`, `dst`: the source / destination address;
//! - `pair`: (source, destination) as given (each direction separately);
//! - `port`: like nfdump's `-s port`, a flow counts under its source port
//!   and under its destination port (once when they are equal), so shares
//!   add up to more than 100 %; flows without ports are left out;
//! - `proto`: IP protocol number; `exporter`: who sent the export.
//!
//! An IPFIX biflow record (RFC 5103) counts the bytes and packets of both
//! directions. Flow time for `--since`/`--until` is the flow's absolute
//! start when known, else the receive time of its datagram.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::flow::Flow;

/// What rows are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    Src,
    Dst,
    Pair,
    Port,
    Proto,
    Exporter,
}

/// What rows are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Bytes,
    Packets,
    Flows,
}

/// One row's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopKey {
    Addr(IpAddr),
    Pair(IpAddr, IpAddr),
    Port(u16),
    Proto(u8),
    Exporter(Option<SocketAddr>),
}

impl fmt::Display for TopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopKey::Addr(a) => write!(f, "{a}"),
            TopKey::Pair(a, b) => write!(f, "{a} -> {b}"),
            TopKey::Port(p) => write!(f, "{p}"),
            TopKey::Proto(p) => f.write_str(&protocol_text(*p)),
            TopKey::Exporter(Some(e)) => write!(f, "{e}"),
            TopKey::Exporter(None) => f.write_str("unknown"),
        }
    }
}

/// `TCP`, `UDP`, `ICMP`, `ICMPv6` or the number.
pub fn protocol_text(p: u8) -> String {
    match p {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPv6".into(),
        n => n.to_string(),
    }
}

/// `tcp`, `udp`, `icmp`, `icmpv6` (any case) or a number 0-255.
pub fn parse_protocol(s: &str) -> Result<u8, String> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(6),
        "udp" => Ok(17),
        "icmp" => Ok(1),
        "icmpv6" | "ipv6-icmp" => Ok(58),
        n => n
            .parse()
            .map_err(|_| format!("protocol {s:?}: expected tcp, udp, icmp, icmpv6 or 0-255")),
    }
}

/// `--since`/`--until`: RFC 3339 (`2023-11-14T22:13:20Z`) or Unix seconds
/// (`1700000000`, `1700000000.5`), as Unix milliseconds.
pub fn parse_time_ms(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs.abs() < 1e13 {
            return Ok((secs * 1000.0).round() as i64);
        }
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{s:?} is neither RFC 3339 nor Unix seconds: {e}"))
}

/// An address block `IP/len` (a bare IP is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0-{max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                masked(u32::from(net) as u128, self.prefix, 32)
                    == masked(u32::from(a) as u128, self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                masked(u128::from(net), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Which flows count.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Flow time >= since (Unix ms).
    pub since_ms: Option<i64>,
    /// Flow time < until (Unix ms).
    pub until_ms: Option<i64>,
    /// Source or destination in this block.
    pub host: Option<Cidr>,
    /// Source or destination port.
    pub port: Option<u16>,
    pub proto: Option<u8>,
}

impl Filter {
    pub fn matches(&self, f: &Flow) -> bool {
        if self.since_ms.is_some() || self.until_ms.is_some() {
            let t = f.start_ms.unwrap_or((f.received * 1000.0) as i64);
            if self.since_ms.is_some_and(|s| t < s) || self.until_ms.is_some_and(|u| t >= u) {
                return false;
            }
        }
        if let Some(h) = self.host {
            if !f.src.is_some_and(|a| h.contains(a)) && !f.dst.is_some_and(|a| h.contains(a)) {
                return false;
            }
        }
        if let Some(p) = self.port {
            if f.src_port != Some(p) && f.dst_port != Some(p) {
                return false;
            }
        }
        if let Some(p) = self.proto {
            if f.protocol != Some(p) {
                return false;
            }
        }
        true
    }
}

/// Flows, packets and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, f: &Flow) {
        self.flows += 1;
        self.packets = self.packets.saturating_add(f.total_packets());
        self.bytes = self.bytes.saturating_add(f.total_bytes());
    }

    pub fn get(&self, m: Metric) -> u64 {
        match m {
            Metric::Bytes => self.bytes,
            Metric::Packets => self.packets,
            Metric::Flows => self.flows,
        }
    }
}

/// One ranked row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub rank: usize,
    pub key: TopKey,
    pub totals: Totals,
    /// This row's part of the matched total of the ranking metric, percent.
    pub share: f64,
}

/// Streaming aggregation.
#[derive(Debug)]
pub struct TopN {
    by: TopBy,
    filter: Filter,
    map: HashMap<TopKey, Totals, foldhash::fast::RandomState>,
    /// Every flow seen (before the filter).
    pub seen: u64,
    /// Totals of the matching flows.
    pub total: Totals,
}

impl TopN {
    pub fn new(by: TopBy, filter: Filter) -> Self {
        TopN {
            by,
            filter,
            map: HashMap::default(),
            seen: 0,
            total: Totals::default(),
        }
    }

    pub fn add(&mut self, f: &Flow) {
        self.seen += 1;
        if !self.filter.matches(f) {
            return;
        }
        self.total.add(f);
        let mut put = |k: TopKey| self.map.entry(k).or_default().add(f);
        match self.by {
            TopBy::Src => {
                if let Some(a) = f.src {
                    put(TopKey::Addr(a));
                }
            }
            TopBy::Dst => {
                if let Some(a) = f.dst {
                    put(TopKey::Addr(a));
                }
            }
            TopBy::Pair => {
                if let (Some(a), Some(b)) = (f.src, f.dst) {
                    put(TopKey::Pair(a, b));
                }
            }
            TopBy::Port => {
                if let Some(p) = f.src_port {
                    put(TopKey::Port(p));
                }
                if let Some(p) = f.dst_port.filter(|p| Some(*p) != f.src_port) {
                    put(TopKey::Port(p));
                }
            }
            TopBy::Proto => {
                if let Some(p) = f.protocol {
                    put(TopKey::Proto(p));
                }
            }
            TopBy::Exporter => put(TopKey::Exporter(f.exporter)),
        }
    }

    /// What rows are keyed by.
    pub fn by(&self) -> TopBy {
        self.by
    }

    /// Which flows count.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Add the totals of `other` (same key and filter, other flows: e.g.
    /// another thread's share of the blocks).
    pub fn merge(&mut self, mut other: TopN) {
        if self.map.len() < other.map.len() {
            std::mem::swap(&mut self.map, &mut other.map);
        }
        self.seen += other.seen;
        self.total.flows += other.total.flows;
        self.total.packets = self.total.packets.saturating_add(other.total.packets);
        self.total.bytes = self.total.bytes.saturating_add(other.total.bytes);
        self.map
            .reserve(other.map.len().saturating_sub(self.map.len()));
        for (k, t) in other.map {
            let e = self.map.entry(k).or_default();
            e.flows += t.flows;
            e.packets = e.packets.saturating_add(t.packets);
            e.bytes = e.bytes.saturating_add(t.bytes);
        }
    }

    /// Number of distinct keys.
    pub fn keys(&self) -> usize {
        self.map.len()
    }

    /// The `n` largest rows by `metric` (ties: key order).
    pub fn rows(&self, metric: Metric, n: usize) -> Vec<Row> {
        let mut rows: Vec<(&TopKey, &Totals)> = self.map.iter().collect();
        let order = |a: &(&TopKey, &Totals), b: &(&TopKey, &Totals)| {
            b.1.get(metric).cmp(&a.1.get(metric)).then(a.0.cmp(b.0))
        };
        // Only the first n need sorting: select them first (linear).
        if n < rows.len() {
            if n == 0 {
                rows.clear();
            } else {
                rows.select_nth_unstable_by(n - 1, order);
                rows.truncate(n);
            }
        }
        rows.sort_by(order);
        let total = self.total.get(metric);
        rows.into_iter()
            .take(n)
            .enumerate()
            .map(|(i, (k, t))| Row {
                rank: i + 1,
                key: *k,
                totals: *t,
                share: if total == 0 {
                    0.0
                } else {
                    t.get(metric) as f64 * 100.0 / total as f64
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(src: &str, dst: &str, sport: u16, dport: u16, proto: u8, bytes: u64) -> Flow {
        Flow {
            received: 1700000000.0,
            exporter: None,
            version: 9,
            src: src.parse().ok(),
            dst: dst.parse().ok(),
            src_port: Some(sport),
            dst_port: Some(dport),
            protocol: Some(proto),
            bytes,
            packets: 1,
            has_bytes: true,
            has_packets: true,
            reverse_bytes: None,
            reverse_packets: None,
            first_switched: None,
            last_switched: None,
            time_base: None,
            start_ms: None,
            end_ms: None,
            ip_version: None,
        }
    }

    #[test]
    fn ranks_with_shares_and_filters() {
        let mut t = TopN::new(
            TopBy::Src,
            Filter {
                host: Some("10.0.0.0/8".parse().unwrap()),
                ..Default::default()
            },
        );
        t.add(&flow("10.0.0.1", "192.0.2.1", 1000, 80, 6, 300));
        t.add(&flow("10.0.0.2", "192.0.2.1", 1001, 443, 6, 100));
        t.add(&flow("10.0.0.1", "192.0.2.1", 1002, 80, 6, 600));
        t.add(&flow("192.0.2.9", "192.0.2.1", 1003, 80, 6, 5000)); // filtered out
        let rows = t.rows(Metric::Bytes, 10);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].key.to_string(), "10.0.0.1");
        assert_eq!(
            rows[0].totals,
            Totals {
                flows: 2,
                packets: 2,
                bytes: 900
            }
        );
        assert_eq!(rows[0].share, 90.0);
        assert_eq!((t.seen, t.total.flows), (4, 3));
    }

    #[test]
    fn ports_count_both_ends_once() {
        let mut t = TopN::new(TopBy::Port, Filter::default());
        t.add(&flow("10.0.0.1", "10.0.0.2", 53, 53, 17, 10));
        t.add(&flow("10.0.0.1", "10.0.0.2", 5000, 53, 17, 10));
        let rows = t.rows(Metric::Flows, 10);
        assert_eq!(rows[0].key, TopKey::Port(53));
        assert_eq!(rows[0].totals.flows, 2);
        assert_eq!(rows[1].key, TopKey::Port(5000));
    }

    #[test]
    fn cidr() {
        let c: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(c.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!c.contains("2001:db9::1".parse().unwrap()));
        assert!(!c.contains("10.0.0.1".parse().unwrap()));
        assert!("0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert_eq!(parse_protocol("TCP"), Ok(6));
        assert_eq!(parse_time_ms("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time_ms("2023-11-14T23:13:20.5+01:00"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(parse_time_ms("1700000000.25"), Ok(1_700_000_000_250));
        assert!(parse_time_ms("yesterday").is_err());
        assert!(parse_protocol("tcpx").is_err());
    }
}
