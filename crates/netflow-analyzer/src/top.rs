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
use std::sync::{Arc, Mutex};

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

/// Rows a [`Parted`] map stages before counting them (384 KiB with `u32`
/// keys). Measured on 363,000 and 1.8 million flows: 16 Ki rows took 5 to
/// 10 % less CPU than 64 Ki (a third fewer page faults), the maps' share
/// of the cache being no worse.
const STAGE_ROWS: usize = 1 << 14;

/// Rows one partition's staging buffer holds: the buffers are allocated
/// once at this capacity and reused, never grown, because first touches of
/// new memory (page faults, ~2.5 µs each in this VM) were a third of a
/// scan's time and growing 128 buffers by doubling touched three times the
/// memory they end up using. A quarter above the mean share of
/// [`STAGE_ROWS`]: a partition that fills first flushes every partition.
const STAGE_PART_ROWS: usize = STAGE_ROWS / PARTS * 5 / 4;

/// Totals per key in [`PARTS`] hash maps, a key's map chosen by its hash.
///
/// Why: ranking 100,000 sources makes a single map of ~4 MiB, larger than
/// this machine's per-core L2 cache, and every row a cache miss somewhere
/// in it (half of `top`'s time, measured). Rows can instead be *staged*
/// per partition ([`Parted::stage`]) and counted partition by partition
/// ([`Parted::flush`]), each map then small enough to stay in the cache
/// while its rows are counted. Rows added one by one ([`Parted::add`]) go
/// straight to their map.
///
/// Threads scanning one file share the maps ([`Parted::share`]): each
/// stages its own rows and counts them into the shared partitions, one
/// lock per partition and flush. Each thread with maps of its own, merged
/// at the end, made every key's entry twice and grew the maps again in the
/// merge: for 100,000 keys 3,000 more page faults (a fault is ~1.7 µs in
/// this VM) and a merge on one core.
#[derive(Debug)]
struct Parted<K> {
    maps: Maps<K>,
    staged: Vec<Vec<(K, u64, u64)>>,
    staged_rows: usize,
    /// The partition [`Parted::flush`] starts at: siblings sharing maps
    /// start at different ones, so that two flushing at the same time do
    /// not queue for the same locks one after the other.
    first_part: usize,
}

/// The partition maps of a [`Parted`]: its own, or shared by the threads
/// of one scan.
#[derive(Debug)]
enum Maps<K> {
    Own(Vec<FastMap<K>>),
    Shared(Arc<[Mutex<FastMap<K>>]>),
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

/// Count `rows` into `map`.
fn count_into<K: std::hash::Hash + Eq>(
    map: &mut FastMap<K>,
    rows: impl Iterator<Item = (K, u64, u64)>,
) {
    for (key, packets, bytes) in rows {
        let t = map.entry(key).or_default();
        t.flows += 1;
        t.packets = t.packets.saturating_add(packets);
        t.bytes = t.bytes.saturating_add(bytes);
    }
}

impl<K: std::hash::Hash + Eq + Copy> Parted<K> {
    fn new() -> Self {
        Parted {
            maps: Maps::Own((0..PARTS).map(|_| FastMap::default()).collect()),
            staged: (0..PARTS).map(|_| Vec::new()).collect(),
            staged_rows: 0,
            first_part: 0,
        }
    }

    /// A sibling that counts into the same maps (from now on both lock a
    /// partition to count into it), with staging of its own; `nth` of the
    /// siblings spreads where their flushes start.
    fn share(&mut self, nth: usize) -> Self {
        self.flush();
        if let Maps::Own(own) = &mut self.maps {
            let maps: Arc<[Mutex<FastMap<K>>]> =
                std::mem::take(own).into_iter().map(Mutex::new).collect();
            self.maps = Maps::Shared(maps);
        }
        let Maps::Shared(maps) = &self.maps else {
            unreachable!("made shared above")
        };
        Parted {
            maps: Maps::Shared(Arc::clone(maps)),
            staged: (0..PARTS).map(|_| Vec::new()).collect(),
            staged_rows: 0,
            first_part: nth * 37 % PARTS,
        }
    }

    /// Back to maps of its own once no sibling shares them (siblings
    /// dropped), so that reading needs no lock.
    fn unshare(&mut self) {
        if let Maps::Shared(maps) = &mut self.maps {
            if let Some(only) = Arc::get_mut(maps) {
                let own = only
                    .iter_mut()
                    .map(|m| std::mem::take(m.get_mut().unwrap_or_else(|p| p.into_inner())))
                    .collect();
                self.maps = Maps::Own(own);
            }
        }
    }

    #[inline]
    fn add(&mut self, key: K, t: &Totals) {
        let p = part_of(&key);
        let add = |map: &mut FastMap<K>| map.entry(key).or_default().add_totals(t);
        match &mut self.maps {
            Maps::Own(maps) => add(&mut maps[p]),
            Maps::Shared(maps) => add(&mut lock(&maps[p])),
        }
    }

    /// Keep one flow's packets and bytes for the next [`Parted::flush`]
    /// (which happens here once [`STAGE_ROWS`] are staged).
    #[inline]
    fn stage(&mut self, key: K, packets: u64, bytes: u64) {
        let rows = &mut self.staged[part_of(&key)];
        if rows.capacity() == 0 {
            // Allocated at its first row: a kind of key with few rows
            // (IPv6 sources among IPv4 ones) touches little memory.
            rows.reserve_exact(STAGE_PART_ROWS);
        }
        rows.push((key, packets, bytes));
        self.staged_rows += 1;
        if rows.len() == STAGE_PART_ROWS || self.staged_rows >= STAGE_ROWS {
            self.flush();
        }
    }

    /// Count every staged row, partition by partition.
    fn flush(&mut self) {
        if self.staged_rows == 0 {
            return;
        }
        match &mut self.maps {
            Maps::Own(maps) => {
                for (map, rows) in maps.iter_mut().zip(&mut self.staged) {
                    count_into(map, rows.drain(..));
                }
            }
            Maps::Shared(maps) => {
                // Partitions a sibling is counting into are left for a
                // second round instead of waited for.
                let mut busy = Vec::new();
                for i in 0..PARTS {
                    let p = (self.first_part + i) % PARTS;
                    if self.staged[p].is_empty() {
                        continue;
                    }
                    match maps[p].try_lock() {
                        Ok(mut map) => count_into(&mut map, self.staged[p].drain(..)),
                        Err(_) => busy.push(p),
                    }
                }
                for p in busy {
                    count_into(&mut lock(&maps[p]), self.staged[p].drain(..));
                }
            }
        }
        self.staged_rows = 0;
    }

    fn merge(&mut self, mut other: Parted<K>) {
        self.flush();
        other.flush();
        if let (Maps::Shared(mine), Maps::Shared(theirs)) = (&self.maps, &other.maps) {
            if Arc::ptr_eq(mine, theirs) {
                // Already counted into the same maps.
                drop(other);
                self.unshare();
                return;
            }
        }
        self.unshare();
        other.unshare();
        if !matches!((&self.maps, &other.maps), (Maps::Own(_), Maps::Own(_))) {
            // Maps still shared with a sibling not merged back yet: count
            // theirs in key by key.
            other.for_each(|k, t| self.add(*k, t));
            return;
        }
        let (Maps::Own(mine), Maps::Own(theirs)) = (&mut self.maps, other.maps) else {
            unreachable!("both checked above")
        };
        for (mine, mut theirs) in mine.iter_mut().zip(theirs) {
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
        match &self.maps {
            Maps::Own(maps) => maps.iter().map(|m| m.len()).sum(),
            Maps::Shared(maps) => maps.iter().map(|m| lock(m).len()).sum(),
        }
    }

    /// Every key with its totals, to `f`.
    fn for_each(&self, mut f: impl FnMut(&K, &Totals)) {
        debug_assert_eq!(self.staged_rows, 0, "entries read before a flush");
        match &self.maps {
            Maps::Own(maps) => maps.iter().flatten().for_each(|(k, t)| f(k, t)),
            Maps::Shared(maps) => maps
                .iter()
                .for_each(|m| lock(m).iter().for_each(|(k, t)| f(k, t))),
        }
    }
}

/// A partition's map, locked; a thread that panicked while holding it
/// left no half-counted row that matters more than the panic itself
/// (which the scan reports), so a poisoned lock is taken as it is.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

/// An IPv6 address as a map key: two `u64` halves, because a `u128`'s
/// 16-byte alignment made every entry 48 bytes instead of 40 (the
/// generator's streams, like many networks', have more IPv6 sources than
/// IPv4 ones).
type V6Key = (u64, u64);

fn v6_key(a: std::net::Ipv6Addr) -> V6Key {
    let bits = u128::from(a);
    ((bits >> 64) as u64, bits as u64)
}

fn v6_addr((high, low): V6Key) -> std::net::Ipv6Addr {
    (u128::from(high) << 64 | u128::from(low)).into()
}

/// Totals per key in stores made for each kind of key: IPv4 addresses as
/// `u32` (and IPv4 pairs as one `u64`) in hash maps of small entries, ports
/// and protocols in arrays. A file with 100,000 sources makes every insert
/// a cache miss, so the smaller the entry the faster `top`.
#[derive(Debug)]
enum KeyTotals {
    Addr {
        v4: Parted<u32>,
        v6: Parted<V6Key>,
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

    /// A sibling for another thread: hash maps shared (see
    /// [`Parted::share`]), arrays its own (small; added up in the merge).
    fn share(&mut self, nth: usize) -> KeyTotals {
        match self {
            KeyTotals::Addr { v4, v6 } => KeyTotals::Addr {
                v4: v4.share(nth),
                v6: v6.share(nth),
            },
            KeyTotals::Pair { v4, other } => KeyTotals::Pair {
                v4: v4.share(nth),
                other: other.share(nth),
            },
            KeyTotals::Exporter(m) => KeyTotals::Exporter(m.share(nth)),
            KeyTotals::Port(_) => KeyTotals::new(TopBy::Port),
            KeyTotals::Proto(_) => KeyTotals::new(TopBy::Proto),
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
                v6.add(v6_key(a), t)
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
                v6.stage(v6_key(a), t.packets, t.bytes)
            }
            (KeyTotals::Pair { v4, other }, FlowKey::Pair(Some(a), Some(b))) => match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) => v4.stage(v4_pair(a, b), t.packets, t.bytes),
                _ => other.stage((a, b), t.packets, t.bytes),
            },
            (KeyTotals::Exporter(m), FlowKey::Exporter(e)) => m.stage(e, t.packets, t.bytes),
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
                m4.for_each(|a, t| f((TopKey::Addr(v4(*a)), *t)));
                v6.for_each(|a, t| f((TopKey::Addr(IpAddr::V6(v6_addr(*a))), *t)));
            }
            KeyTotals::Pair { v4: m4, other } => {
                m4.for_each(|k, t| f((TopKey::Pair(v4((k >> 32) as u32), v4(*k as u32)), *t)));
                other.for_each(|(a, b), t| f((TopKey::Pair(*a, *b), *t)));
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
            KeyTotals::Exporter(m) => m.for_each(|e, t| f((TopKey::Exporter(*e), *t))),
        }
    }
}

/// Both addresses of an IPv4 pair in one key.
fn v4_pair(a: std::net::Ipv4Addr, b: std::net::Ipv4Addr) -> u64 {
    u64::from(u32::from(a)) << 32 | u64::from(u32::from(b))
}

/// Streaming aggregation.
#[derive(Debug)]
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

    /// [`TopN::stage_matching`] for an IPv4 address key (`--by src|dst`),
    /// without making a [`FlowKey`]: the per-row path of the common query
    /// over columns files.
    #[inline]
    pub(crate) fn stage_v4_address(&mut self, addr: u32, packets: u64, bytes: u64) {
        self.total.add_totals(&Totals {
            flows: 1,
            packets,
            bytes,
        });
        match &mut self.keys {
            KeyTotals::Addr { v4, .. } => v4.stage(addr, packets, bytes),
            _ => debug_assert!(false, "an address key for a ranking by {:?}", self.by),
        }
    }

    /// [`TopN::stage_v4_address`] for an IPv6 address (its 16 bytes).
    #[inline]
    pub(crate) fn stage_v6_address(&mut self, addr: [u8; 16], packets: u64, bytes: u64) {
        self.total.add_totals(&Totals {
            flows: 1,
            packets,
            bytes,
        });
        let key = (
            u64::from_be_bytes(addr[..8].try_into().expect("8 bytes")),
            u64::from_be_bytes(addr[8..].try_into().expect("8 bytes")),
        );
        match &mut self.keys {
            KeyTotals::Addr { v6, .. } => v6.stage(key, packets, bytes),
            _ => debug_assert!(false, "an address key for a ranking by {:?}", self.by),
        }
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

    /// A ranking for another thread's share of the same flows: same key
    /// and filter, its own flow counts, counting keys into the same hash
    /// maps as `self` (`nth`, the thread's number, spreads the threads'
    /// lock order). [`TopN::merge`] it back when its thread is done:
    /// that adds its counts and staged rows, and once every sibling is
    /// merged `self` reads its maps without locks again.
    pub(crate) fn share(&mut self, nth: usize) -> TopN {
        TopN {
            by: self.by,
            filter: self.filter.clone(),
            keys: self.keys.share(nth),
            seen: 0,
            total: Totals::default(),
        }
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
    fn threads_sharing_maps_count_every_row_once() {
        use std::collections::BTreeMap;
        // Each thread stages more rows than one flush holds, with keys in
        // every partition, IPv4 and IPv6; the totals are summed here in a
        // plain map for comparison.
        let addr = |t: u64, i: u64| -> IpAddr {
            if i % 7 == 0 {
                IpAddr::V6(std::net::Ipv6Addr::from(
                    0x2001_0db8_u128 << 96 | u128::from(i % 900),
                ))
            } else {
                IpAddr::V4(std::net::Ipv4Addr::from(
                    0x0a00_0000 | ((i * 31 + t) % 20_000) as u32,
                ))
            }
        };
        let rows_per_thread = STAGE_ROWS as u64 * 2 + 12_345;
        let mut expected: BTreeMap<IpAddr, (u64, u64, u64)> = BTreeMap::new();
        for t in 0..3 {
            for i in 0..rows_per_thread {
                let e = expected.entry(addr(t, i)).or_default();
                e.0 += 1;
                e.1 += i % 3;
                e.2 += i + t;
            }
        }
        let mut top = TopN::new(TopBy::Src, Filter::default());
        let shares: Vec<TopN> = (0..3).map(|nth| top.share(nth)).collect();
        let done: Vec<TopN> = std::thread::scope(|s| {
            let handles: Vec<_> = shares
                .into_iter()
                .enumerate()
                .map(|(t, mut mine)| {
                    s.spawn(move || {
                        for i in 0..rows_per_thread {
                            mine.seen += 1;
                            let key = FlowKey::Addr(Some(addr(t as u64, i)));
                            // One row in ten counted directly, the rest staged.
                            if i % 10 == 0 {
                                mine.add_matching(key, i % 3, i + t as u64);
                            } else {
                                mine.stage_matching(key, i % 3, i + t as u64);
                            }
                        }
                        mine.flush();
                        mine
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut done = done.into_iter();
        top.merge(done.next().unwrap());
        // Readable while a sibling is still out (its maps still shared).
        assert_eq!(top.keys(), expected.len());
        for rest in done {
            top.merge(rest);
        }
        assert_eq!(top.seen, 3 * rows_per_thread);
        let got: BTreeMap<IpAddr, (u64, u64, u64)> = top
            .rows(Metric::Bytes, usize::MAX)
            .into_iter()
            .map(|r| match r.key {
                TopKey::Addr(a) => (a, (r.totals.flows, r.totals.packets, r.totals.bytes)),
                other => panic!("key {other:?}"),
            })
            .collect();
        assert_eq!(got, expected);
        assert!(matches!(
            &top.keys,
            KeyTotals::Addr {
                v4: Parted {
                    maps: Maps::Own(_),
                    ..
                },
                ..
            }
        ));
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
