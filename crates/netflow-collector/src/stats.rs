//! Counters: per exporter and global, with the status line and the summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use netflow::sequence::SequenceUnit;
use netflow::{Protocol, SamplingRate, StreamCounters};

use crate::sink::SinkCounters;

/// Sequence accounting of one exporter, summed over its streams (domains).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SequenceSummary {
    /// The unit of the exporter's last stream (v5/v7 flows, v9 packets, IPFIX records).
    pub unit: Option<SequenceUnit>,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub reordered: u64,
    pub duplicates: u64,
    pub restarts: u64,
}

/// Data sets of one template that were still waiting at shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitingSets {
    pub sets: u64,
    /// Bytes of their bodies.
    pub bytes: u64,
}

/// Counters of one exporter (transport address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExporterStats {
    /// Datagrams received.
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Version of the last datagram decoded (0 before any).
    pub version: u16,
    /// Flow data records decoded (including those replayed after their template came).
    pub records: u64,
    /// Options data records decoded.
    pub options: u64,
    /// Datagrams that could not be decoded at all.
    pub bad_packets: u64,
    /// Decode errors by kind ([`netflow::Error::kind_name`]): whole datagrams
    /// and problems within otherwise decoded ones.
    pub errors: BTreeMap<&'static str, u64>,
    /// Data sets waiting for their template now.
    pub sets_waiting: u64,
    /// Data sets decoded after their template arrived.
    pub sets_replayed: u64,
    /// Data sets dropped from the pending buffer (too old, buffer full):
    /// `sets_expired + sets_evicted`.
    pub sets_dropped: u64,
    /// Of those, dropped because they waited longer than
    /// [`netflow::PendingLimits::max_age_ms`] (checked at every datagram and,
    /// with none coming, on a timer).
    pub sets_expired: u64,
    /// Of those, dropped to make room (buffer full, or this exporter over
    /// its own share).
    pub sets_evicted: u64,
    /// Of the evicted, dropped to keep this exporter within
    /// [`netflow::PendingLimits::max_bytes_per_exporter`] (its own oldest
    /// sets, or one larger than the limit).
    pub sets_over_exporter_limit: u64,
    /// Data sets still waiting for their template when the collector
    /// stopped (never written), per (protocol, domain, template id); filled
    /// in at shutdown.
    pub waiting_at_stop: BTreeMap<(Protocol, u32, u16), WaitingSets>,
    /// Sequence accounting, summed over the streams below.
    pub sequence: SequenceSummary,
    /// Sequence counters per (protocol, domain) stream of this exporter.
    pub streams: BTreeMap<(Protocol, u32), StreamCounters>,
    /// Templates (and options templates) known now, over all its domains.
    pub templates: u64,
    /// Templates known per (protocol, domain) template scope.
    pub template_scopes: BTreeMap<(Protocol, u32), u64>,
    /// The packet sampling rate it announced last (v5 header, v9/IPFIX
    /// options records): the domain's default sampler, else its first one.
    pub sampling: Option<SamplingRate>,
    /// When its last datagram was received (Unix microseconds): the least
    /// recently seen exporters' entries go first beyond
    /// [`crate::Config::max_exporters`].
    pub last_seen_us: u64,
}

impl ExporterStats {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Global counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalStats {
    /// Datagrams received on all sockets.
    pub datagrams: u64,
    /// Socket receive errors (other than timeouts), and received messages
    /// longer than the 64 KiB receive buffer (coalesced by UDP GRO; cut).
    pub receive_errors: u64,
    /// Sink write/flush/close failures seen by the receive path.
    pub sink_errors: u64,
    /// The sink's own counters at the last flush.
    pub sink: SinkCounters,
    /// Datagrams queued between the sockets and the decoder now.
    pub queued: u64,
    /// Datagrams dropped before decoding: their source is not in the allowlist.
    pub denied: u64,
    /// Datagrams dropped before decoding: their source sent more than
    /// [`crate::Config::rate_limit`] allows.
    pub rate_limited: u64,
    /// Exporter entries removed (least recently seen first) to stay within
    /// [`crate::Config::max_exporters`]; their counters are in
    /// [`Stats::evicted_exporters`].
    pub exporters_evicted: u64,
    /// What the decode workers' template caches did to stay within their
    /// limits (summed over the workers).
    pub template_cache: TemplateCacheCounters,
    /// Times a receive thread found a decode worker's queue full and waited
    /// (back-pressure).
    pub queue_full: u64,
    /// Decode workers ([`crate::Config::workers`]).
    pub workers: u64,
    /// Datagrams the kernel dropped on the listen sockets (receive buffer
    /// full), summed over them: Linux's `/proc/net/udp{,6}` `drops` counter,
    /// read at every flush (0 where it cannot be read).
    pub socket_drops: u64,
    /// The kernel's `SO_RXQ_OVFL` drop counts of the listen sockets, summed
    /// (see [`SocketStats::rxq_ovfl_drops`]).
    pub rxq_ovfl_drops: u64,
    /// Time the receive threads waited for room in a full decode queue
    /// (one observation per wait; see [`queue_full`](Self::queue_full)).
    pub queue_wait: Histogram,
    /// Time the decode workers spent handing exports to the sink, per
    /// datagram: waiting for the sink's lock (another worker's write, a
    /// flush) and its `write` calls (a slow sink, a full channel).
    pub sink_wait: Histogram,
}

/// Template cache limit events ([`netflow::CacheLimits`]), from
/// [`netflow::CacheStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TemplateCacheCounters {
    /// Templates evicted (least recently used) from a scope holding
    /// `max_templates_per_scope`.
    pub evicted_templates: u64,
    /// Scopes (exporter, protocol, domain) evicted (least recently used,
    /// with their templates) when `max_scopes` were held.
    pub evicted_scopes: u64,
    /// Templates that went with the evicted scopes.
    pub templates_in_evicted_scopes: u64,
    /// Templates or scopes refused (a limit of 0).
    pub rejected: u64,
}

/// Counters of one listen socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Datagrams received on it (before the allowlist).
    pub datagrams: u64,
    /// Receives that handed over several datagrams at once: bursts of
    /// equal-sized datagrams of one source the kernel coalesced (`UDP_GRO`,
    /// Linux 5.0 and later; each still counted in
    /// [`datagrams`](Self::datagrams) and decoded on its own).
    pub coalesced: u64,
    /// Datagrams the kernel dropped on it (receive buffer full), as the
    /// `SO_RXQ_OVFL` count attached to the datagrams received after them
    /// (Linux; 0 elsewhere). Drops after the last datagram received show
    /// only in [`proc_drops`](Self::proc_drops).
    pub rxq_ovfl_drops: u64,
    /// The same drops from Linux's `/proc/net/udp{,6}` (read at every flush).
    pub proc_drops: u64,
}

/// Upper bounds (seconds) of the [`Histogram`] buckets.
pub const HISTOGRAM_BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram with the fixed [`HISTOGRAM_BOUNDS`] (non-cumulative
/// counts; one more bucket for longer times).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram {
    pub buckets: [u64; HISTOGRAM_BOUNDS.len() + 1],
    pub count: u64,
    /// Sum of the observations, nanoseconds.
    pub sum_nanos: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = HISTOGRAM_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(HISTOGRAM_BOUNDS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum_nanos = self
            .sum_nanos
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Add another histogram's observations.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_nanos = self.sum_nanos.saturating_add(other.sum_nanos);
    }

    /// The mean observation in whole microseconds (0 without any).
    pub fn average_micros(&self) -> u64 {
        (self.sum_nanos / 1000).checked_div(self.count).unwrap_or(0)
    }

    /// The sum in whole milliseconds.
    pub fn sum_millis(&self) -> u64 {
        self.sum_nanos / 1_000_000
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }
}

/// A copy of all counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub exporters: BTreeMap<SocketAddr, ExporterStats>,
    pub global: GlobalStats,
    /// Datagrams dropped by the allowlist, per source address (the first
    /// 4096 addresses; [`GlobalStats::denied`] counts them all).
    pub denied: BTreeMap<IpAddr, u64>,
    /// Datagrams dropped by the rate limit, per source address (the first
    /// 4096 addresses; [`GlobalStats::rate_limited`] counts them all).
    pub rate_limited: BTreeMap<IpAddr, u64>,
    /// Per listen socket (its local address).
    pub sockets: BTreeMap<SocketAddr, SocketStats>,
    /// IPFIX-over-TCP sessions ([`crate::Config::tcp`]).
    pub tcp: crate::TcpStats,
    /// The counters of the exporters whose entries were removed to stay
    /// within [`crate::Config::max_exporters`] (least recently seen first),
    /// summed: the totals still count their packets and records.
    /// [`GlobalStats::exporters_evicted`] counts the entries removed.
    pub evicted_exporters: ExporterStats,
}

impl ExporterStats {
    /// Add `e`'s counters (not its gauges: templates, sets waiting) to these.
    fn add_counters(&mut self, e: &ExporterStats) {
        self.packets += e.packets;
        self.bytes += e.bytes;
        self.records += e.records;
        self.options += e.options;
        self.bad_packets += e.bad_packets;
        for (k, v) in &e.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
        self.sets_replayed += e.sets_replayed;
        self.sets_dropped += e.sets_dropped;
        self.sets_expired += e.sets_expired;
        self.sets_evicted += e.sets_evicted;
        self.sets_over_exporter_limit += e.sets_over_exporter_limit;
        self.sequence.lost += e.sequence.lost;
        self.sequence.expected += e.sequence.expected;
        self.sequence.received += e.sequence.received;
    }
}

impl Stats {
    /// The entry of exporter `addr`, created if needed. When that would make
    /// more than `max_exporters` entries, the least recently seen eighth
    /// of them is removed first (one sort per eighth: a flood of spoofed
    /// sources costs O(log n) per new source), their counters kept in
    /// [`evicted_exporters`](Self::evicted_exporters).
    pub(crate) fn exporter_entry(
        &mut self,
        addr: SocketAddr,
        max_exporters: usize,
    ) -> &mut ExporterStats {
        if self.exporters.len() >= max_exporters.max(1) && !self.exporters.contains_key(&addr) {
            let keep = max_exporters.max(1) - max_exporters.max(1).div_ceil(8);
            let mut by_age: Vec<(u64, SocketAddr)> = self
                .exporters
                .iter()
                .map(|(a, e)| (e.last_seen_us, *a))
                .collect();
            let remove = by_age.len() - keep;
            by_age.select_nth_unstable(remove - 1);
            for (_, a) in &by_age[..remove] {
                if let Some(e) = self.exporters.remove(a) {
                    self.evicted_exporters.add_counters(&e);
                    self.global.exporters_evicted += 1;
                }
            }
        }
        self.exporters.entry(addr).or_default()
    }

    /// Sum over all exporters (and those evicted, see
    /// [`evicted_exporters`](Self::evicted_exporters)).
    pub fn totals(&self) -> ExporterStats {
        let mut t = ExporterStats::default();
        t.add_counters(&self.evicted_exporters);
        for e in self.exporters.values() {
            t.add_counters(e);
            t.sets_waiting += e.sets_waiting;
            t.templates += e.templates;
        }
        t
    }

    /// One line: `exporters N packets N records N options N bytes N errors N waiting N dropped N lost N written N buffered N queued N queue_full N queue_wait_ms N sink_wait_ms N flush_avg_us N socket_drops N rxq_drops N sink_errors N denied N rate_limited N`
    /// (`queue_wait_ms`, `sink_wait_ms`: [`GlobalStats::queue_wait`] and
    /// [`GlobalStats::sink_wait`] summed, milliseconds; `flush_avg_us`: the
    /// mean time of a sink flush that wrote a batch, microseconds).
    pub fn status_line(&self) -> String {
        let t = self.totals();
        let g = &self.global;
        format!(
            "exporters {} packets {} records {} options {} bytes {} errors {} waiting {} dropped {} lost {} written {} buffered {} queued {} queue_full {} queue_wait_ms {} sink_wait_ms {} flush_avg_us {} socket_drops {} rxq_drops {} sink_errors {} denied {} rate_limited {}",
            self.exporters.len(),
            t.packets,
            t.records,
            t.options,
            t.bytes,
            t.error_count(),
            t.sets_waiting,
            t.sets_dropped,
            t.sequence.lost,
            g.sink.written,
            g.sink.buffered,
            g.queued,
            g.queue_full,
            g.queue_wait.sum_millis(),
            g.sink_wait.sum_millis(),
            g.sink.flush_seconds.average_micros(),
            g.socket_drops,
            g.rxq_ovfl_drops,
            g.sink_errors,
            g.denied,
            g.rate_limited,
        )
    }

    /// One line per exporter (followed, when data sets were still waiting
    /// for their template at shutdown, by `waiting ADDR sets N bytes N never
    /// written, templates never received: PROTOCOL domain D template T (N sets), ...`),
    /// one per denied source address (`denied ADDR packets N`), one per
    /// rate-limited source address (`rate_limited ADDR packets N`), a
    /// template cache line when a cache limit was hit (`templates evicted N
    /// scopes_evicted N templates_in_evicted_scopes N rejected N`), then a
    /// total line:
    /// `exporter ADDR version V packets N records N options N bytes N errors N [(kind N, ...)] waiting N replayed N dropped N expired N evicted N over_limit N lost N UNIT templates N sampling RATE`
    /// (RATE: e.g. `1/8 random`, `-` when none was announced)
    pub fn summary_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (addr, e) in &self.exporters {
            let mut line = format!(
                "exporter {addr} version {} packets {} records {} options {} bytes {} errors {}",
                e.version,
                e.packets,
                e.records,
                e.options,
                e.bytes,
                e.error_count()
            );
            if !e.errors.is_empty() {
                line.push_str(" (");
                for (i, (k, v)) in e.errors.iter().enumerate() {
                    let _ = write!(line, "{}{k} {v}", if i > 0 { ", " } else { "" });
                }
                line.push(')');
            }
            let _ = write!(
                line,
                " waiting {} replayed {} dropped {} expired {} evicted {} over_limit {} lost {} {} templates {} sampling {}",
                e.sets_waiting,
                e.sets_replayed,
                e.sets_dropped,
                e.sets_expired,
                e.sets_evicted,
                e.sets_over_exporter_limit,
                e.sequence.lost,
                e.sequence.unit.map_or("-", |u| u.name()),
                e.templates,
                e.sampling
                    .map_or_else(|| "-".to_string(), |r| r.to_string())
            );
            out.push(line);
            if !e.waiting_at_stop.is_empty() {
                let mut line = format!(
                    "waiting {addr} sets {} bytes {} never written, templates never received:",
                    e.waiting_at_stop.values().map(|w| w.sets).sum::<u64>(),
                    e.waiting_at_stop.values().map(|w| w.bytes).sum::<u64>()
                );
                for (i, ((protocol, domain, id), w)) in e.waiting_at_stop.iter().enumerate() {
                    let _ = write!(
                        line,
                        "{} {} domain {domain} template {id} ({} sets)",
                        if i > 0 { "," } else { "" },
                        protocol.name(),
                        w.sets
                    );
                }
                out.push(line);
            }
        }
        for (addr, n) in &self.denied {
            out.push(format!("denied {addr} packets {n}"));
        }
        for (addr, n) in &self.rate_limited {
            out.push(format!("rate_limited {addr} packets {n}"));
        }
        let c = &self.global.template_cache;
        if *c != TemplateCacheCounters::default() {
            out.push(format!(
                "templates evicted {} scopes_evicted {} templates_in_evicted_scopes {} rejected {}",
                c.evicted_templates, c.evicted_scopes, c.templates_in_evicted_scopes, c.rejected
            ));
        }
        let t = self.totals();
        let g = &self.global;
        out.push(format!(
            "total exporters {} packets {} records {} options {} bytes {} errors {} waiting {} dropped {} written {} write_errors {} dropped_lines {} dropped_records {} receive_errors {} denied {} rotations {} workers {} queue_full {} queue_wait_ms {} sink_wait_ms {} socket_drops {} rxq_drops {} exporters_evicted {} rate_limited {}",
            self.exporters.len(),
            t.packets,
            t.records,
            t.options,
            t.bytes,
            t.error_count(),
            t.sets_waiting,
            t.sets_dropped,
            g.sink.written,
            g.sink_errors,
            g.sink.dropped,
            g.sink.dropped_records,
            g.receive_errors,
            g.denied,
            g.sink.rotations,
            g.workers,
            g.queue_full,
            g.queue_wait.sum_millis(),
            g.sink_wait.sum_millis(),
            g.socket_drops,
            g.rxq_ovfl_drops,
            g.exporters_evicted,
            g.rate_limited,
        ));
        out
    }
}
