//! The receive threads (one per socket) and the decode thread.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver as ChanReceiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netflow::sequence::SequenceUnit;
use netflow::{
    DataSet, Decoded, Decoder, ExporterId, PendingBuffer, SequenceTracker, StreamKey,
    TemplateCache, TrackerLimits,
};
use netflow_store::Export;

use crate::stats::{SequenceSummary, Stats};
use crate::{Cidr, Config, Sink, MAX_DATAGRAM};

/// Source addresses counted one by one in [`Stats::denied`] at most.
pub(crate) const MAX_DENIED_SOURCES: usize = 4096;

/// One received datagram.
pub(crate) struct Datagram {
    /// Receive time, microseconds since the Unix epoch.
    received_us: u64,
    from: SocketAddr,
    payload: Vec<u8>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// IPv4-mapped IPv6 source addresses (dual-stack sockets) as plain IPv4.
fn normalize(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// Logs at most `burst` messages per `period`, then says how many it held back.
pub(crate) struct RateLimit {
    period: Duration,
    burst: u32,
    window_start: Instant,
    in_window: u32,
    suppressed: u64,
}

impl RateLimit {
    pub(crate) fn new(period: Duration, burst: u32) -> RateLimit {
        RateLimit {
            period,
            burst,
            window_start: Instant::now(),
            in_window: 0,
            suppressed: 0,
        }
    }

    /// Whether to log now; a message about what was held back is logged first.
    pub(crate) fn allow(&mut self, level: log::Level) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= self.period {
            if self.suppressed > 0 {
                log::log!(
                    level,
                    "{} similar messages suppressed in the last {:?}",
                    self.suppressed,
                    self.period
                );
            }
            self.window_start = now;
            self.in_window = 0;
            self.suppressed = 0;
        }
        if self.in_window < self.burst {
            self.in_window += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

pub(crate) struct Receiver {
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
    pub(crate) tx: SyncSender<Datagram>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) stats: Arc<Mutex<Stats>>,
    pub(crate) queued: Arc<AtomicU64>,
    /// Allowed source ranges; empty: all.
    pub(crate) allow: Arc<[Cidr]>,
}

impl Receiver {
    /// Count a datagram from a source not in the allowlist.
    fn deny(&self, from: SocketAddr, log: &mut RateLimit) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.global.denied += 1;
        // Bounded: a flood from spoofed sources must not grow it without end
        // (beyond the limit only the global counter counts).
        if s.denied.len() < MAX_DENIED_SOURCES || s.denied.contains_key(&from.ip()) {
            *s.denied.entry(from.ip()).or_insert(0) += 1;
        }
        drop(s);
        if log.allow(log::Level::Warn) {
            log::warn!(
                "{}: datagram from {from} dropped: not in the allowlist",
                self.local
            );
        }
    }

    pub(crate) fn run(self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut errors = RateLimit::new(Duration::from_secs(10), 5);
        let mut denied_log = RateLimit::new(Duration::from_secs(10), 5);
        let mut stopping = false;
        loop {
            if !stopping && self.stop.load(Ordering::Relaxed) {
                // Read what the socket holds, then end.
                stopping = true;
                if self.socket.set_nonblocking(true).is_err() {
                    return;
                }
            }
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let from = normalize(from);
                    if !self.allow.is_empty() && !self.allow.iter().any(|c| c.contains(from.ip())) {
                        self.deny(from, &mut denied_log);
                        continue;
                    }
                    let d = Datagram {
                        received_us: now_us(),
                        from,
                        payload: buf[..n].to_vec(),
                    };
                    self.queued.fetch_add(1, Ordering::Relaxed);
                    if self.tx.send(d).is_err() {
                        return;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if stopping {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // E.g. ICMP errors reported on the socket: count, go on.
                    if let Ok(mut s) = self.stats.lock() {
                        s.global.receive_errors += 1;
                    }
                    if errors.allow(log::Level::Warn) {
                        log::warn!("{}: receive error: {e}", self.local);
                    }
                    if stopping {
                        return;
                    }
                }
            }
        }
    }
}

pub(crate) struct DecodeLoop {
    rx: ChanReceiver<Datagram>,
    sink: Box<dyn Sink + Send>,
    decoder: Decoder,
    tracker: SequenceTracker,
    stats: Arc<Mutex<Stats>>,
    queued: Arc<AtomicU64>,
    flush_interval: Duration,
    last_tag: u64,
    bad_log: RateLimit,
    sink_log: RateLimit,
    drop_log: RateLimit,
}

impl DecodeLoop {
    pub(crate) fn new(
        config: &Config,
        rx: ChanReceiver<Datagram>,
        sink: Box<dyn Sink + Send>,
        stats: Arc<Mutex<Stats>>,
        queued: Arc<AtomicU64>,
    ) -> DecodeLoop {
        DecodeLoop {
            rx,
            sink,
            decoder: Decoder::new(TemplateCache::new(), PendingBuffer::new(config.pending)),
            tracker: SequenceTracker::new(TrackerLimits::default()),
            stats,
            queued,
            flush_interval: config.flush_interval,
            last_tag: 0,
            bad_log: RateLimit::new(Duration::from_secs(10), 10),
            sink_log: RateLimit::new(Duration::from_secs(10), 3),
            drop_log: RateLimit::new(Duration::from_secs(10), 3),
        }
    }

    pub(crate) fn run(mut self) {
        let mut last_flush = Instant::now();
        let tick = self.flush_interval.min(Duration::from_millis(200));
        loop {
            match self.rx.recv_timeout(tick) {
                Ok(d) => {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    self.handle(d);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_flush.elapsed() >= self.flush_interval {
                self.flush();
                last_flush = Instant::now();
            }
        }
        self.flush();
        let result = self.sink.close();
        self.sink_result(result);
        self.publish_sink();
    }

    fn flush(&mut self) {
        let result = self.sink.flush();
        self.sink_result(result);
        self.publish_sink();
    }

    fn publish_sink(&mut self) {
        let counters = self.sink.counters();
        let queued = self.queued.load(Ordering::Relaxed);
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.global.sink = counters;
        s.global.queued = queued;
    }

    fn sink_result(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            self.stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .global
                .sink_errors += 1;
            if self.sink_log.allow(log::Level::Error) {
                log::error!("{e} (still receiving; lines are kept in memory, up to a limit, and written at the next flush)");
            }
        }
    }

    fn handle(&mut self, d: Datagram) {
        // A unique, increasing tag per datagram: its receive time in
        // microseconds (bumped by 1 µs when two arrive in the same one).
        let tag = d.received_us.max(self.last_tag + 1);
        self.last_tag = tag;
        let received = tag as f64 / 1e6;
        let exporter = ExporterId(d.from);
        let result = self.decoder.decode(exporter, &d.payload, tag, tag / 1000);
        if let Ok(decoded) = &result {
            self.tracker.observe_packet(&decoded.packet);
        }
        // Replayed sets grouped by the datagram they came in (consecutive).
        let mut groups: Vec<(usize, usize)> = Vec::new();
        if let Ok(decoded) = &result {
            let r = &decoded.replayed;
            let mut i = 0;
            while i < r.len() {
                let mut j = i + 1;
                while j < r.len()
                    && r[j].pending.tag == r[i].pending.tag
                    && r[j].pending.key.scope.exporter == r[i].pending.key.scope.exporter
                {
                    j += 1;
                }
                groups.push((i, j));
                i = j;
            }
        }
        // Counters first, under the lock; the sink is called without it (a
        // sink may block, e.g. a full channel, and `stats()` must not).
        self.update_stats(&d, &result, &groups);
        let Ok(decoded) = result else { return };
        let packet = &decoded.packet;
        // The datagram itself (also with no data sets: the original writes a
        // line per datagram), then the sets that waited, per datagram.
        let r = self.sink.write(&Export {
            received,
            exporter: d.from,
            header: &packet.header,
            sets: &packet.data_sets,
        });
        self.sink_result(r);
        for &(i, j) in &groups {
            let group = &decoded.replayed[i..j];
            let first = &group[0].pending;
            let sets: Vec<DataSet<'_>> = group.iter().map(|r| r.data_set()).collect();
            let r = self.sink.write(&Export {
                received: first.tag as f64 / 1e6,
                exporter: first.key.scope.exporter.0,
                header: &first.header,
                sets: &sets,
            });
            self.sink_result(r);
        }
    }

    fn update_stats(
        &mut self,
        d: &Datagram,
        result: &Result<Decoded<'_>, netflow::Error>,
        groups: &[(usize, usize)],
    ) {
        let exporter = ExporterId(d.from);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.global.datagrams += 1;
        stats.global.queued = self.queued.load(Ordering::Relaxed);
        let e = stats.exporters.entry(d.from).or_default();
        e.packets += 1;
        e.bytes += d.payload.len() as u64;
        let decoded = match result {
            Err(err) => {
                e.bad_packets += 1;
                *e.errors.entry(err.kind_name()).or_insert(0) += 1;
                if self.bad_log.allow(log::Level::Warn) {
                    log::warn!(
                        "undecodable datagram of {} bytes from {}: {err}; ignored",
                        d.payload.len(),
                        d.from
                    );
                }
                return;
            }
            Ok(decoded) => decoded,
        };
        let packet = &decoded.packet;
        e.version = packet.header.version();
        for err in &packet.errors {
            *e.errors.entry(err.kind_name()).or_insert(0) += 1;
        }
        count_sets(e, &packet.data_sets);
        e.sets_waiting += packet.missing.len() as u64;
        log::debug!(
            "{} from {}: {} bytes, {} records, {} sets waiting for templates",
            packet.header.protocol().name(),
            d.from,
            d.payload.len(),
            packet.record_count(),
            packet.missing.len()
        );
        for &(i, j) in groups {
            let group = &decoded.replayed[i..j];
            let owner = stats
                .exporters
                .entry(group[0].pending.key.scope.exporter.0)
                .or_default();
            for r in group {
                let set = r.data_set();
                count_sets(owner, std::slice::from_ref(&set));
                if let Some(err) = &r.error {
                    *owner.errors.entry(err.kind_name()).or_insert(0) += 1;
                }
            }
            owner.sets_replayed += group.len() as u64;
            owner.sets_waiting = owner.sets_waiting.saturating_sub(group.len() as u64);
        }
        for p in &decoded.dropped {
            let owner = stats.exporters.entry(p.key.scope.exporter.0).or_default();
            owner.sets_dropped += 1;
            owner.sets_waiting = owner.sets_waiting.saturating_sub(1);
            if self.drop_log.allow(log::Level::Warn) {
                log::warn!(
                    "dropped a data set that waited for its template ({}) since {:.3}",
                    p.key,
                    p.tag as f64 / 1e6
                );
            }
        }
        // Sequence accounting of this exporter, summed over its streams.
        let key = StreamKey::new(exporter, &packet.header);
        if let (Some(c), Some(e)) = (self.tracker.stream(&key), stats.exporters.get_mut(&d.from)) {
            e.streams.insert((key.protocol, key.domain), *c);
            let mut seq = SequenceSummary::default();
            if key.unit() != SequenceUnit::Unsequenced {
                seq.unit = Some(key.unit());
            }
            for c in e.streams.values() {
                seq.expected += c.expected;
                seq.received += c.received;
                seq.lost += c.lost;
                seq.reordered += c.reordered;
                seq.duplicates += c.duplicates;
                seq.restarts += c.restarts;
            }
            e.sequence = seq;
        }
    }
}

fn count_sets(e: &mut crate::ExporterStats, sets: &[DataSet<'_>]) {
    for s in sets {
        if s.is_options() {
            e.options += s.record_count as u64;
        } else {
            e.records += s.record_count as u64;
        }
    }
}
