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
    #[inline]
    fn add_totals(&mut self, t: &Totals) {
        self.flows += t.flows;
        self.packets = self.packets.saturating_add(t.packets);
        self.bytes = self.bytes.saturating_add(t.bytes);
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

/// Foldhash: keys are the analyst's own stored flows, not attacker-chosen
/// input to a long-running service, and the map is where `top` spends its
/// time.
type FastMap<K> = HashMap<K, Totals, foldhash::fast::RandomState>;

/// Partitions of a [`Parted`] map.
const PARTS: usize = 128;

/// Rows a [`Parted`] map stages before counting them (1.5 MiB of `u32`
/// keys): the staging buffers are then reused, not grown (first touches of
/// new memory, page faults, were a third of a scan's time).
const STAGE_ROWS: usize = 1 << 16;

/// Totals per key in [`PARTS`] hash maps, a key's map chosen by its hash.
///
/// Why: ranking 100,000 sources makes a single map of ~4 MiB, larger than
/// this machine's per-core L2 cache, and every row a cache miss somewhere
/// in it (half of `top`'s time, measured). Rows can instead be *staged*
/// per partition ([`Parted::stage`]) and counted partition by partition
/// ([`Parted::flush`]), each map then small enough to stay in the cache
/// while its rows are counted. Rows added one by one ([`Parted::add`]) go
/// straight to their map.
#[derive(Debug, Clone)]
struct Parted<K> {
    parts: Vec<FastMap<K>>,
    staged: Vec<Vec<(K, u64, u64)>>,
    staged_rows: usize,
}

/// Which partition a key is in. A fixed seed, so that two [`Parted`] maps
/// (threads' shares of a file) partition alike and merge partition by
/// partition; another hash than the maps' own (randomly seeded), so that
/// the keys of one partition do not collide in its map.
fn part_of<K: std::hash::Hash>(key: &K) -> usize {
    use std::hash::BuildHasher;
    const PARTITIONING: foldhash::fast::FixedState =
        foldhash::fast::FixedState::with_seed(0x9e37_79b9_7f4a_7c15);
    (PARTITIONING.hash_one(key) >> 57) as usize % PARTS
}

impl<K: std::hash::Hash + Eq + Copy> Parted<K> {
    fn new() -> Self {
        Parted {
            parts: (0..PARTS).map(|_| FastMap::default()).collect(),
            staged: (0..PARTS).map(|_| Vec::new()).collect(),
            staged_rows: 0,
        }
    }

    #[inline]
    fn add(&mut self, key: K, t: &Totals) {
        self.parts[part_of(&key)]
            .entry(key)
            .or_default()
            .add_totals(t);
    }

    /// Keep one flow's packets and bytes for the next [`Parted::flush`]
    /// (which happens here once [`STAGE_ROWS`] are staged).
    #[inline]
    fn stage(&mut self, key: K, packets: u64, bytes: u64) {
        self.staged[part_of(&key)].push((key, packets, bytes));
        self.staged_rows += 1;
        if self.staged_rows >= STAGE_ROWS {
            self.flush();
        }
    }

    /// Count every staged row, partition by partition.
    fn flush(&mut self) {
        if self.staged_rows == 0 {
            return;
        }
        for (map, rows) in self.parts.iter_mut().zip(&mut self.staged) {
            for (key, packets, bytes) in rows.drain(..) {
                let t = map.entry(key).or_default();
                t.flows += 1;
                t.packets = t.packets.saturating_add(packets);
                t.bytes = t.bytes.saturating_add(bytes);
            }
        }
        self.staged_rows = 0;
    }

    fn merge(&mut self, mut other: Parted<K>) {
        self.flush();
        other.flush();
        for (mine, mut theirs) in self.parts.iter_mut().zip(other.parts) {
            if mine.len() < theirs.len() {
                std::mem::swap(mine, &mut theirs);
            }
            for (k, t) in theirs {
                mine.entry(k).or_default().add_totals(&t);
            }
        }
    }

    /// Distinct keys (staged rows not counted yet are not included).
    fn len(&self) -> usize {
        self.parts.iter().map(|m| m.len()).sum()
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &Totals)> {
        debug_assert_eq!(self.staged_rows, 0, "entries read before a flush");
        self.parts.iter().flatten()
    }
}

/// The key of one flow in its compact form, as [`KeyTotals`] stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKey {
    /// `--by src`/`dst`: the address (none: the flow is not ranked).
    Addr(Option<IpAddr>),
    /// `--by pair`.
    Pair(Option<IpAddr>, Option<IpAddr>),
    /// `--by port`: source and destination port.
    Ports(Option<u16>, Option<u16>),
    /// `--by proto`.
    Proto(Option<u8>),
    /// `--by exporter`.
    Exporter(Option<SocketAddr>),
}

/// Totals per key in stores made for each kind of key: IPv4 addresses as
/// `u32` (and IPv4 pairs as one `u64`) in hash maps of small entries, ports
/// and protocols in arrays. A file with 100,000 sources makes every insert
/// a cache miss, so the smaller the entry the faster `top`.
#[derive(Debug, Clone)]
enum KeyTotals {
    Addr {
        v4: Parted<u32>,
        v6: Parted<u128>,
    },
    Pair {
        v4: Parted<u64>,
        other: Parted<(IpAddr, IpAddr)>,
    },
    /// Indexed by port; empty until the first flow with a port.
    Port(Vec<Totals>),
    /// Indexed by protocol number.
    Proto(Box<[Totals; 256]>),
    Exporter(Parted<Option<SocketAddr>>),
}

impl KeyTotals {
    fn new(by: TopBy) -> KeyTotals {
        match by {
            TopBy::Src | TopBy::Dst => KeyTotals::Addr {
                v4: Parted::new(),
                v6: Parted::new(),
            },
            TopBy::Pair => KeyTotals::Pair {
                v4: Parted::new(),
                other: Parted::new(),
            },
            TopBy::Port => KeyTotals::Port(Vec::new()),
            TopBy::Proto => KeyTotals::Proto(Box::new([Totals::default(); 256])),
            TopBy::Exporter => KeyTotals::Exporter(Parted::new()),
        }
    }

    /// Count `t` under `key` (a key of another kind than the store's is
    /// not counted: [`TopN`] makes keys of its own kind only).
    #[inline]
    fn add(&mut self, key: FlowKey, t: &Totals) {
        match (self, key) {
            (KeyTotals::Addr { v4, .. }, FlowKey::Addr(Some(IpAddr::V4(a)))) => {
                v4.add(u32::from(a), t)
            }
            (KeyTotals::Addr { v6, .. }, FlowKey::Addr(Some(IpAddr::V6(a)))) => {
                v6.add(u128::from(a), t)
            }
            (KeyTotals::Pair { v4, other }, FlowKey::Pair(Some(a), Some(b))) => match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) => v4.add(v4_pair(a, b), t),
                _ => other.add((a, b), t),
            },
            (KeyTotals::Port(ports), FlowKey::Ports(src, dst)) => {
                if src.is_none() && dst.is_none() {
                    return;
                }
                if ports.is_empty() {
                    ports.resize(1 << 16, Totals::default());
                }
                if let Some(p) = src {
                    ports[p as usize].add_totals(t);
                }
                // Like nfdump's `-s port`: a flow counts once under each
                // of its ports, once when both are the same.
                if let Some(p) = dst.filter(|p| Some(*p) != src) {
                    ports[p as usize].add_totals(t);
                }
            }
            (KeyTotals::Proto(protos), FlowKey::Proto(Some(p))) => protos[p as usize].add_totals(t),
            (KeyTotals::Exporter(m), FlowKey::Exporter(e)) => m.add(e, t),
            _ => {}
        }
    }

    /// Like [`KeyTotals::add`] for one flow, staging what the maps count
    /// (see [`Parted`]); call [`KeyTotals::flush`] before reading.
    #[inline]
    fn stage(&mut self, key: FlowKey, t: &Totals) {
        match (self, key) {
            (KeyTotals::Addr { v4, .. }, FlowKey::Addr(Some(IpAddr::V4(a)))) => {
                v4.stage(u32::from(a), t.packets, t.bytes)
            }
            (KeyTotals::Addr { v6, .. }, FlowKey::Addr(Some(IpAddr::V6(a)))) => {
                v6.stage(u128::from(a), t.packets, t.bytes)
            }
            (KeyTotals::Pair { v4, other }, FlowKey::Pair(Some(a), Some(b))) => match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) => v4.stage(v4_pair(a, b), t.packets, t.bytes),
                _ => other.stage((a, b), t.packets, t.bytes),
            },
            (keys, key) => keys.add(key, t),
        }
    }

    fn flush(&mut self) {
        match self {
            KeyTotals::Addr { v4, v6 } => {
                v4.flush();
                v6.flush();
            }
            KeyTotals::Pair { v4, other } => {
                v4.flush();
                other.flush();
            }
            KeyTotals::Exporter(m) => m.flush(),
            KeyTotals::Port(_) | KeyTotals::Proto(_) => {}
        }
    }

    fn merge(&mut self, other: KeyTotals) {
        fn maps<K: std::hash::Hash + Eq + Copy>(mine: &mut Parted<K>, theirs: Parted<K>) {
            mine.merge(theirs)
        }
        fn arrays(mine: &mut [Totals], theirs: &[Totals]) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                m.add_totals(t);
            }
        }
        match (self, other) {
            (KeyTotals::Addr { v4, v6 }, KeyTotals::Addr { v4: v4b, v6: v6b }) => {
                maps(v4, v4b);
                maps(v6, v6b);
            }
            (
                KeyTotals::Pair { v4, other },
                KeyTotals::Pair {
                    v4: v4b,
                    other: otherb,
                },
            ) => {
                maps(v4, v4b);
                maps(other, otherb);
            }
            (KeyTotals::Port(mine), KeyTotals::Port(theirs)) => {
                if mine.is_empty() {
                    *mine = theirs;
                } else {
                    arrays(mine, &theirs);
                }
            }
            (KeyTotals::Proto(mine), KeyTotals::Proto(theirs)) => {
                arrays(&mut mine[..], &theirs[..])
            }
            (KeyTotals::Exporter(mine), KeyTotals::Exporter(theirs)) => maps(mine, theirs),
            _ => unreachable!("TopN::merge checks that both rank by the same key"),
        }
    }

    fn len(&self) -> usize {
        let used = |a: &[Totals]| a.iter().filter(|t| t.flows > 0).count();
        match self {
            KeyTotals::Addr { v4, v6 } => v4.len() + v6.len(),
            KeyTotals::Pair { v4, other } => v4.len() + other.len(),
            KeyTotals::Port(p) => used(p),
            KeyTotals::Proto(p) => used(&p[..]),
            KeyTotals::Exporter(m) => m.len(),
        }
    }

    /// Every key with its totals, to `f`.
    fn for_each(&self, mut f: impl FnMut((TopKey, Totals))) {
        let v4 = |a: u32| IpAddr::V4(a.into());
        match self {
            KeyTotals::Addr { v4: m4, v6 } => {
                m4.iter().for_each(|(a, t)| f((TopKey::Addr(v4(*a)), *t)));
                v6.iter()
                    .for_each(|(a, t)| f((TopKey::Addr(IpAddr::V6((*a).into())), *t)));
            }
            KeyTotals::Pair { v4: m4, other } => {
                m4.iter()
                    .for_each(|(k, t)| f((TopKey::Pair(v4((k >> 32) as u32), v4(*k as u32)), *t)));
                other
                    .iter()
                    .for_each(|((a, b), t)| f((TopKey::Pair(*a, *b), *t)));
            }
            KeyTotals::Port(ports) => ports
                .iter()
                .enumerate()
                .filter(|(_, t)| t.flows > 0)
                .for_each(|(p, t)| f((TopKey::Port(p as u16), *t))),
            KeyTotals::Proto(protos) => protos
                .iter()
                .enumerate()
                .filter(|(_, t)| t.flows > 0)
                .for_each(|(p, t)| f((TopKey::Proto(p as u8), *t))),
            KeyTotals::Exporter(m) => m.iter().for_each(|(e, t)| f((TopKey::Exporter(*e), *t))),
        }
    }
}

/// Both addresses of an IPv4 pair in one key.
fn v4_pair(a: std::net::Ipv4Addr, b: std::net::Ipv4Addr) -> u64 {
    u64::from(u32::from(a)) << 32 | u64::from(u32::from(b))
}

/// Streaming aggregation.
#[derive(Debug, Clone)]
pub struct TopN {
    by: TopBy,
    filter: Filter,
    keys: KeyTotals,
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
            keys: KeyTotals::new(by),
            seen: 0,
            total: Totals::default(),
        }
    }

    pub fn add(&mut self, f: &Flow) {
        self.seen += 1;
        if !self.filter.matches(f) {
            return;
        }
        let key = match self.by {
            TopBy::Src => FlowKey::Addr(f.src),
            TopBy::Dst => FlowKey::Addr(f.dst),
            TopBy::Pair => FlowKey::Pair(f.src, f.dst),
            TopBy::Port => FlowKey::Ports(f.src_port, f.dst_port),
            TopBy::Proto => FlowKey::Proto(f.protocol),
            TopBy::Exporter => FlowKey::Exporter(f.exporter),
        };
        self.add_matching(key, f.total_packets(), f.total_bytes());
    }

    /// Count one flow that passed the filter: its key (of this ranking's
    /// kind, see [`TopN::by`]), packets and bytes of both directions. For
    /// readers that apply [`Filter`] themselves, without making a [`Flow`];
    /// they also count every flow they read in [`TopN::seen`].
    #[inline]
    pub fn add_matching(&mut self, key: FlowKey, packets: u64, bytes: u64) {
        let t = Totals {
            flows: 1,
            packets,
            bytes,
        };
        self.total.add_totals(&t);
        self.keys.add(key, &t);
    }

    /// Like [`TopN::add_matching`], for a reader that adds many flows in a
    /// row: the counting of keys that need a hash map may wait until
    /// [`TopN::flush`], which the reader must call before the `TopN` is
    /// read or merged (rankings would miss the staged flows).
    #[inline]
    pub(crate) fn stage_matching(&mut self, key: FlowKey, packets: u64, bytes: u64) {
        let t = Totals {
            flows: 1,
            packets,
            bytes,
        };
        self.total.add_totals(&t);
        self.keys.stage(key, &t);
    }

    /// Count the flows [`TopN::stage_matching`] kept.
    pub(crate) fn flush(&mut self) {
        self.keys.flush();
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
    ///
    /// # Panics
    /// When `other` ranks by another key than `self`.
    pub fn merge(&mut self, other: TopN) {
        assert_eq!(self.by, other.by, "merging rankings by different keys");
        self.seen += other.seen;
        self.total.add_totals(&other.total);
        self.keys.merge(other.keys);
    }

    /// Number of distinct keys.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// The `n` largest rows by `metric` (ties: key order).
    pub fn rows(&self, metric: Metric, n: usize) -> Vec<Row> {
        let order = |a: &(TopKey, Totals), b: &(TopKey, Totals)| {
            b.1.get(metric).cmp(&a.1.get(metric)).then(a.0.cmp(&b.0))
        };
        // The best n so far, kept sorted: most keys are worse than the
        // n-th and cost one comparison (a list of every key would be as
        // large as the maps, all of it new memory).
        let mut best: Vec<(TopKey, Totals)> = Vec::with_capacity(n.min(self.keys()) + 1);
        if n > 64 {
            // Many rows asked for: every key, selected and sorted.
            self.keys.for_each(|entry| best.push(entry));
            if n < best.len() {
                best.select_nth_unstable_by(n - 1, order);
                best.truncate(n);
            }
            best.sort_by(order);
        } else if n > 0 {
            self.keys.for_each(|entry| {
                if best.len() == n {
                    let worst = best.last().expect("n > 0");
                    if order(&entry, worst) != std::cmp::Ordering::Less {
                        return;
                    }
                    best.pop();
                }
                let at = best.partition_point(|b| order(b, &entry) == std::cmp::Ordering::Less);
                best.insert(at, entry);
            });
        }
        let total = self.total.get(metric);
        best.into_iter()
            .enumerate()
            .map(|(i, (key, totals))| Row {
                rank: i + 1,
                key,
                totals,
                share: if total == 0 {
                    0.0
                } else {
                    totals.get(metric) as f64 * 100.0 / total as f64
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
    fn both_address_families_rank_together_and_merge() {
        let key = |r: &Row| (r.key.to_string(), r.totals.flows, r.totals.bytes);
        let mut a = TopN::new(TopBy::Pair, Filter::default());
        a.add(&flow("10.0.0.1", "10.0.0.2", 1, 2, 6, 100));
        a.add(&flow("2001:db8::1", "10.0.0.2", 1, 2, 6, 300));
        let mut b = TopN::new(TopBy::Pair, Filter::default());
        b.add(&flow("10.0.0.1", "10.0.0.2", 1, 2, 6, 250));
        b.add(&flow("2001:db8::1", "2001:db8::2", 1, 2, 6, 50));
        a.merge(b);
        let rows: Vec<_> = a.rows(Metric::Bytes, 10).iter().map(key).collect();
        assert_eq!(
            rows,
            [
                ("10.0.0.1 -> 10.0.0.2".to_string(), 2, 350),
                ("2001:db8::1 -> 10.0.0.2".to_string(), 1, 300),
                ("2001:db8::1 -> 2001:db8::2".to_string(), 1, 50),
            ]
        );
        assert_eq!((a.keys(), a.seen, a.total.bytes), (3, 4, 700));

        // An IPv4-mapped IPv6 address is not the IPv4 address; equal
        // totals rank in key order (IPv4 first).
        let mut s = TopN::new(TopBy::Src, Filter::default());
        s.add(&flow("::ffff:10.0.0.1", "10.0.0.2", 1, 2, 6, 70));
        s.add(&flow("10.0.0.1", "10.0.0.2", 1, 2, 6, 70));
        let rows: Vec<_> = s.rows(Metric::Bytes, 10).iter().map(key).collect();
        assert_eq!(
            rows,
            [
                ("10.0.0.1".to_string(), 1, 70),
                ("::ffff:10.0.0.1".to_string(), 1, 70),
            ]
        );
        // The first n only.
        assert_eq!(s.rows(Metric::Bytes, 1).len(), 1);
        assert!(s.rows(Metric::Bytes, 0).is_empty());
    }

    #[test]
    fn protocols_and_ports_without_values_are_not_ranked() {
        let mut f = flow("10.0.0.1", "10.0.0.2", 1, 2, 6, 10);
        f.protocol = None;
        f.src_port = None;
        f.dst_port = None;
        for by in [TopBy::Proto, TopBy::Port] {
            let mut t = TopN::new(by, Filter::default());
            t.add(&f);
            t.add(&flow("10.0.0.1", "10.0.0.2", 7, 7, 17, 5));
            assert_eq!((t.seen, t.total.flows, t.keys()), (2, 2, 1), "{by:?}");
            assert_eq!(t.rows(Metric::Flows, 5)[0].totals.bytes, 5, "{by:?}");
        }
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
