//! The receive threads (one per socket) and the decode thread.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{
    Receiver as ChanReceiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, TrySendError,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netflow::cache::CacheStats;
use netflow::sequence::SequenceUnit;
use netflow::{
    DataSet, Decoded, Decoder, ExporterId, PendingBuffer, PendingSet, SamplingTable, ScopeKey,
    SequenceTracker, StreamKey, TemplateCache, TrackerLimits,
};
use netflow_store::columns::BatchBuilder;
use netflow_store::{write_export, Export, Format};

use crate::drops::{OverflowCount, SocketDrops};
use crate::rate::TokenBuckets;
use crate::recv;
use crate::stats::{SequenceSummary, Stats};
use crate::{Cidr, Config, Sink};

/// Source addresses counted one by one in [`Stats::denied`] and
/// [`Stats::rate_limited`] at most.
pub(crate) const MAX_DENIED_SOURCES: usize = 4096;

/// Add `n` to `source`'s count in `per_source`. Bounded: a flood from
/// spoofed sources must not grow it without end (beyond
/// [`MAX_DENIED_SOURCES`] sources only the caller's global counter counts).
pub(crate) fn count_per_source(per_source: &mut BTreeMap<IpAddr, u64>, source: IpAddr, n: u64) {
    if per_source.len() < MAX_DENIED_SOURCES || per_source.contains_key(&source) {
        *per_source.entry(source).or_insert(0) += n;
    }
}

/// Whether `ip` may send: no allowlist, or in one of its ranges.
pub(crate) fn allowed(allow: &[Cidr], ip: IpAddr) -> bool {
    allow.is_empty() || allow.iter().any(|c| c.contains(ip))
}

/// One received datagram.
pub(crate) struct Datagram {
    /// Receive time, microseconds since the Unix epoch.
    pub(crate) received_us: u64,
    pub(crate) from: SocketAddr,
    /// A buffer of the receive thread's pool: given back after decoding.
    pub(crate) payload: Vec<u8>,
    /// The index of the socket it came on (whose pool the buffer is from;
    /// none for TCP messages: `usize::MAX`).
    pub(crate) socket: usize,
    /// TCP ([`crate::tcp`]): not a message but the end of the session of
    /// `from`; its worker forgets the session's templates.
    pub(crate) session_end: bool,
}

/// A decode worker hands its rows (columns sinks) or lines to the sink when
/// no datagram is waiting and the first of them was built at least
/// [`HAND_OVER_DELAY`] ago, or once it holds this many rows or bytes of
/// lines (bounding the memory and the delay of a worker that is never idle).
/// A block's worth of rows: the columns sink then keeps the worker's batch
/// whole ([`Sink::take_batch`]) instead of copying it into its own.
const HAND_OVER_ROWS: usize = crate::columns::BLOCK_ROWS;
const HAND_OVER_BYTES: usize = 1 << 20;
/// How long a worker with no datagram waiting may keep what it built
/// before handing it to the sink (then it waits at most that long for the
/// next datagram). Handed over whenever no datagram was waiting, a worker
/// that keeps up gave the sink a datagram's rows or a few at a time, and
/// appending them to the sink's batch, 43 columns each time, cost 10 % of
/// its instructions (callgrind, 400 v9 datagrams/s). A small delay against
/// the flush interval (1 s): rows reach the file at most this much later.
/// A worker receiving 23,000 v9 datagrams/s or more builds a block of its
/// own in that time (the columns sink's `OWN_BLOCK_PART`: not copied).
/// Not longer: at 100 ms, the batches of the 10-minute soak's mix (6,000
/// datagrams/s) were sometimes blocks of their own and sometimes copied,
/// and the collector's RSS moved with their sizes (+24 % over the soak).
const HAND_OVER_DELAY: Duration = Duration::from_millis(20);

/// Spare payload buffers a receive thread keeps at most (more are freed).
const POOL_MAX: usize = 4096;

/// Payload buffers are made with room for a multiple of this many bytes:
/// a v9 exporter's datagrams differ by a few records' bytes (the
/// generator's from 1,368 to 1,472), and a buffer made for one would be
/// grown for the next. At most 511 bytes more a datagram queued.
const BUFFER_ROUNDING: usize = 512;

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// IPv4-mapped IPv6 source addresses (dual-stack sockets and listeners) as
/// plain IPv4.
pub(crate) fn normalize(addr: SocketAddr) -> SocketAddr {
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

/// The sink shared by the decode workers (one sink, written under its lock).
pub(crate) type SharedSink = Arc<Mutex<Box<dyn Sink + Send>>>;

/// The decode worker of an exporter: a hash of its address and port, so all
/// its datagrams go to the same worker, in order.
pub(crate) fn worker_for(from: SocketAddr, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let mut h = DefaultHasher::new();
    from.hash(&mut h);
    (h.finish() % workers as u64) as usize
}

pub(crate) struct Receiver {
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
    /// Its index among the sockets.
    pub(crate) index: usize,
    /// Payload buffers given back by the decode workers.
    pub(crate) free: ChanReceiver<Vec<u8>>,
    /// One bounded queue per decode worker.
    pub(crate) tx: Vec<SyncSender<Datagram>>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) stats: Arc<Mutex<Stats>>,
    pub(crate) queued: Arc<AtomicU64>,
    /// Allowed source ranges; empty: all.
    pub(crate) allow: Arc<[Cidr]>,
    pub(crate) drops: Arc<SocketDrops>,
    /// Per-exporter rate limit ([`crate::Config::rate_limit`]), shared by
    /// all sockets and TCP sessions.
    pub(crate) buckets: Option<Arc<Mutex<TokenBuckets>>>,
}

/// How long a receive thread pauses after it drained its socket
/// ([`coalesce_for`]).
const COALESCE: Duration = Duration::from_millis(1);

/// Receive buffers (as the kernel reports them: twice the usable bytes)
/// from which a receive thread pauses after draining its socket.
const COALESCE_MIN_BUFFER: usize = 8 << 20;

/// The pause after a receive call that drained the socket, for a socket
/// whose receive buffer the kernel reports as `receive_buffer` bytes.
/// Without it, a collector that keeps up waits in `recvmmsg` for every
/// datagram, and its decode worker in the queue: two threads woken per
/// datagram (at 30,000 v9 datagrams/s, 65,000 context switches in 5 s,
/// and the kernel's scheduling the largest cost of the receive thread,
/// `perf`). Pausing [`COALESCE`] lets the datagrams of that time gather in
/// the socket buffer, taken then by one call and handed on in one burst.
/// Only with a buffer that holds a pause's datagrams many times over:
/// 4 MiB usable holds ~1,800 datagrams of 1,400 bytes (kernel accounting
/// ~2.3 KiB each), 1 ms at 300,000 datagrams/s is 300. The default (32
/// MiB, granted to root) qualifies; an unprivileged socket capped by
/// `net.core.rmem_max` (Debian: 208 KiB) does not pause. Longer pauses
/// were tried (4 ms with the default buffer; 4 ms only after fewer than
/// 256 datagrams): at 40,000 fprobe v5 datagrams/s a third fewer context
/// switches, but CPU -9 % in one set of alternated runs and -0 to -4 %
/// in the next two, and the generator's v5 zero-loss rate a search step
/// lower in four of five alternated searches (BENCHMARKS.md, session 22).
fn coalesce_for(receive_buffer: usize) -> Option<Duration> {
    (receive_buffer >= COALESCE_MIN_BUFFER).then_some(COALESCE)
}

/// Count datagrams of `from` dropped by the rate limit.
pub(crate) fn count_rate_limited(stats: &Mutex<Stats>, from: IpAddr, n: u64) {
    let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
    s.global.rate_limited += n;
    count_per_source(&mut s.rate_limited, from, n);
}

impl Receiver {
    /// Count a datagram from a source not in the allowlist.
    fn deny(&self, from: SocketAddr, log: &mut RateLimit) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.global.denied += 1;
        count_per_source(&mut s.denied, from.ip(), 1);
        drop(s);
        if log.allow(log::Level::Warn) {
            log::warn!(
                "{}: datagram from {from} dropped: not in the allowlist",
                self.local
            );
        }
    }

    fn allowed(&self, from: SocketAddr) -> bool {
        allowed(&self.allow, from.ip())
    }

    /// Which datagrams of the batch (allowed by the allowlist) are over
    /// their source's rate limit, with a count per source in `limited`. The
    /// buckets are locked once per batch, and not while dispatching (which
    /// may wait for a full queue).
    fn over_rate_limit(
        &self,
        batch: &recv::Batch,
        limited: &mut Vec<(IpAddr, u64)>,
        over: &mut Vec<bool>,
    ) {
        over.clear();
        over.resize(batch.len(), false);
        let Some(buckets) = &self.buckets else {
            return;
        };
        let mut buckets = buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for (i, over) in over.iter_mut().enumerate().take(batch.len()) {
            let Some(r) = batch.get(i) else { continue };
            let from = normalize(r.from);
            if !self.allowed(from) || buckets.admit(from.ip(), now) {
                continue;
            }
            *over = true;
            match limited.iter_mut().find(|(ip, _)| *ip == from.ip()) {
                Some((_, n)) => *n += 1,
                None => limited.push((from.ip(), 1)),
            }
        }
    }

    pub(crate) fn run(self) {
        self.receive();
        // The last count of this socket, while it is still open.
        self.drops.refresh(&self.stats);
    }

    /// A payload buffer holding `bytes`: a returned one when there is one
    /// (no allocation once the pipeline is warm), else a new one.
    fn buffer(&self, pool: &mut Vec<Vec<u8>>, bytes: &[u8]) -> Vec<u8> {
        while let Ok(b) = self.free.try_recv() {
            if pool.len() < POOL_MAX {
                pool.push(b);
            }
        }
        let mut b = pool.pop().unwrap_or_default();
        b.clear();
        if b.capacity() < bytes.len() {
            // A new buffer rather than a grown one (growing copies the old
            // bytes, of no use here), rounded up so that the stream's next
            // datagrams, a few bytes longer, fit it too.
            b = Vec::with_capacity(bytes.len().next_multiple_of(BUFFER_ROUNDING));
        }
        b.extend_from_slice(bytes);
        b
    }

    fn receive(&self) {
        let mut batch = recv::Batch::new();
        let coalesce = coalesce_for(
            socket2::SockRef::from(&self.socket)
                .recv_buffer_size()
                .unwrap_or(0),
        );
        let mut pool: Vec<Vec<u8>> = Vec::new();
        let mut overflow = OverflowCount::default();
        let counters = &self.drops.sockets[self.index];
        let mut errors = RateLimit::new(Duration::from_secs(10), 5);
        let mut denied_log = RateLimit::new(Duration::from_secs(10), 5);
        let mut limited_log = RateLimit::new(Duration::from_secs(10), 5);
        // Sources over the rate limit in the current batch: counted once per batch.
        let mut limited: Vec<(IpAddr, u64)> = Vec::new();
        // Per datagram of the batch: over its source's rate limit.
        let mut over_limit: Vec<bool> = Vec::new();
        let mut stopping = false;
        loop {
            if !stopping && self.stop.load(Ordering::Relaxed) {
                // Read what the socket holds, then end.
                stopping = true;
                if self.socket.set_nonblocking(true).is_err() {
                    return;
                }
            }
            match batch.recv(&self.socket) {
                Ok(_) => {
                    let received_us = now_us();
                    counters
                        .datagrams
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if batch.coalesced() > 0 {
                        counters
                            .coalesced
                            .fetch_add(batch.coalesced() as u64, Ordering::Relaxed);
                    }
                    if batch.truncated() > 0 {
                        // Never expected (coalesced messages stay within
                        // 64 KiB); counted and said rather than lost quietly.
                        self.stats
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .global
                            .receive_errors += batch.truncated() as u64;
                        if errors.allow(log::Level::Warn) {
                            log::warn!(
                                "{}: {} received message(s) longer than the 64 KiB buffer: datagrams past its end are lost",
                                self.local,
                                batch.truncated()
                            );
                        }
                    }
                    self.over_rate_limit(&batch, &mut limited, &mut over_limit);
                    for (i, &over_limit) in over_limit.iter().enumerate() {
                        let Some(r) = batch.get(i) else { continue };
                        if let Some(v) = r.overflow {
                            counters
                                .rxq_ovfl
                                .store(overflow.observe(v), Ordering::Relaxed);
                        }
                        let from = normalize(r.from);
                        if !self.allowed(from) {
                            self.deny(from, &mut denied_log);
                            continue;
                        }
                        if over_limit {
                            continue;
                        }
                        let d = Datagram {
                            received_us,
                            from,
                            payload: self.buffer(&mut pool, r.payload),
                            socket: self.index,
                            session_end: false,
                        };
                        if self.dispatch(d).is_err() {
                            return;
                        }
                    }
                    for (ip, n) in limited.drain(..) {
                        count_rate_limited(&self.stats, ip, n);
                        if limited_log.allow(log::Level::Warn) {
                            log::warn!(
                                "{}: {n} datagrams from {ip} dropped: over the rate limit",
                                self.local
                            );
                        }
                    }
                    // The socket is drained: let datagrams gather in its
                    // buffer before the next call rather than waking (and
                    // waking a decode worker) for each one.
                    if let Some(pause) =
                        coalesce.filter(|_| batch.messages() < recv::BATCH && !stopping)
                    {
                        std::thread::sleep(pause);
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

    /// Queue a datagram for its exporter's worker; a full queue is waited
    /// for (back-pressure), counted and timed. `Err` once the workers are gone.
    fn dispatch(&self, d: Datagram) -> Result<(), ()> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let tx = &self.tx[worker_for(d.from, self.tx.len())];
        match tx.try_send(d) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(d)) => {
                // Counted before the wait (which may be long), timed after.
                self.stats
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .global
                    .queue_full += 1;
                let start = Instant::now();
                let sent = tx.send(d).map_err(|_| ());
                self.stats
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .global
                    .queue_wait
                    .observe(start.elapsed());
                sent
            }
            Err(TrySendError::Disconnected(_)) => Err(()),
        }
    }
}

/// Count a failed sink call and log it (rate-limited).
fn sink_result(stats: &Mutex<Stats>, log: &mut RateLimit, result: io::Result<()>) {
    if let Err(e) = result {
        stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .global
            .sink_errors += 1;
        if log.allow(log::Level::Error) {
            log::error!("{e} (still receiving; lines are kept in memory, up to a limit, and written at the next flush)");
        }
    }
}

/// Flushes the shared sink every flush interval; once every decode worker
/// has ended, flushes and closes it.
pub(crate) struct SinkLoop {
    pub(crate) sink: SharedSink,
    pub(crate) stats: Arc<Mutex<Stats>>,
    pub(crate) queued: Arc<AtomicU64>,
    pub(crate) flush_interval: Duration,
    /// Disconnected once every worker has dropped its sender (ended).
    pub(crate) done: ChanReceiver<()>,
    pub(crate) drops: Arc<SocketDrops>,
}

impl SinkLoop {
    pub(crate) fn run(self) {
        let mut log = RateLimit::new(Duration::from_secs(10), 3);
        let mut last_flush = Instant::now();
        let mut last_trim = Instant::now();
        let tick = self.flush_interval.min(Duration::from_millis(200));
        loop {
            let wait = self
                .flush_interval
                .saturating_sub(last_flush.elapsed())
                .min(tick);
            match self.done.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_flush.elapsed() >= self.flush_interval {
                self.flush(&mut log);
                last_flush = Instant::now();
            }
            if last_trim.elapsed() >= crate::memory::TRIM_INTERVAL
                && self.queued.load(Ordering::Relaxed) == 0
            {
                crate::memory::release_free_memory();
                last_trim = Instant::now();
            }
        }
        self.flush(&mut log);
        let result = self.lock().close();
        sink_result(&self.stats, &mut log, result);
        self.publish();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Sink + Send>> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn flush(&self, log: &mut RateLimit) {
        let result = self.lock().flush();
        sink_result(&self.stats, log, result);
        self.publish();
    }

    fn publish(&self) {
        self.drops.refresh(&self.stats);
        let counters = self.lock().counters();
        let queued = self.queued.load(Ordering::Relaxed);
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.global.sink = counters;
        s.global.queued = queued;
    }
}

/// Start loading `bytes` into this core's caches, without waiting for
/// them. A datagram's bytes were written by its receive thread, most often
/// on the other core: the decode thread's first reads of each one waited
/// for them (`perf` at 220,000 v9 datagrams/s: two loads at the start of
/// `parse_packet_from`, the version and the first set's length, were 9 %
/// of the collector's CPU). Loaded while the datagram before it is
/// decoded, they are there when it is decoded in turn.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch hint neither reads nor faults; the address is
        // in `bytes`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// One decode worker: its own decoder (templates, pending buffer) and
/// sequence tracker, for the exporters routed to it ([`worker_for`]).
pub(crate) struct DecodeLoop {
    rx: ChanReceiver<Datagram>,
    sink: SharedSink,
    decoder: Decoder,
    tracker: SequenceTracker,
    sampling: SamplingTable,
    stats: Arc<Mutex<Stats>>,
    queued: Arc<AtomicU64>,
    /// The last tag handed out by any worker (tags are unique over all).
    last_tag: Arc<AtomicU64>,
    /// Dropped when the worker ends (see [`SinkLoop::done`]).
    _done: Sender<()>,
    /// Per socket: where payload buffers go back to after decoding.
    recycle: Vec<Sender<Vec<u8>>>,
    /// How long a set may wait for its template ([`PendingLimits::max_age_ms`]).
    max_age_ms: u64,
    /// How often an idle worker wakes up to expire waiting sets.
    expire_tick: Duration,
    bad_log: RateLimit,
    sink_log: RateLimit,
    drop_log: RateLimit,
    /// The sink's [`Sink::line_format`]: when set, this worker formats the
    /// lines itself (outside the sink's lock) into `lines`.
    line_format: Option<Format>,
    /// Lines formatted and not yet handed to the sink, with the lines and
    /// records they hold.
    lines: Vec<u8>,
    pending_lines: u64,
    pending_records: u64,
    /// [`Config::max_exporters`].
    max_exporters: usize,
    /// The decoder's counters when last added to the stats.
    last_cache: CacheStats,
    last_over_exporter_limit: u64,
    /// The sink's [`Sink::takes_batches`]: when set, this worker builds the
    /// column rows itself (outside the sink's lock) with `builder`.
    batches: bool,
    builder: BatchBuilder,
    /// When the first rows or lines not handed over yet were built.
    built_since: Option<Instant>,
}

impl DecodeLoop {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: &Config,
        rx: ChanReceiver<Datagram>,
        sink: SharedSink,
        stats: Arc<Mutex<Stats>>,
        queued: Arc<AtomicU64>,
        last_tag: Arc<AtomicU64>,
        done: Sender<()>,
        recycle: Vec<Sender<Vec<u8>>>,
    ) -> DecodeLoop {
        let (line_format, batches) = {
            let sink = sink.lock().unwrap_or_else(|e| e.into_inner());
            (sink.line_format(), sink.takes_batches())
        };
        DecodeLoop {
            line_format,
            batches,
            builder: BatchBuilder::new(),
            built_since: None,
            lines: Vec::new(),
            pending_lines: 0,
            pending_records: 0,
            max_exporters: config.max_exporters,
            last_cache: CacheStats::default(),
            last_over_exporter_limit: 0,
            rx,
            sink,
            decoder: Decoder::new(
                TemplateCache::with_limits(config.template_limits),
                PendingBuffer::new(config.pending),
            ),
            tracker: SequenceTracker::new(TrackerLimits::default()),
            sampling: SamplingTable::default(),
            stats,
            queued,
            last_tag,
            _done: done,
            recycle,
            max_age_ms: config.pending.max_age_ms,
            // A quarter of the age limit (so a set is dropped at most 25 %
            // late), between 10 ms and 1 s.
            expire_tick: Duration::from_millis(config.pending.max_age_ms / 4)
                .clamp(Duration::from_millis(10), Duration::from_secs(1)),
            bad_log: RateLimit::new(Duration::from_secs(10), 10),
            sink_log: RateLimit::new(Duration::from_secs(10), 3),
            drop_log: RateLimit::new(Duration::from_secs(10), 3),
        }
    }

    pub(crate) fn run(mut self) {
        // The datagram after the one being decoded, when it was already
        // queued: its bytes are being loaded meanwhile ([`prefetch`]).
        let mut ahead: Option<Datagram> = None;
        loop {
            let next = match ahead.take().map_or_else(|| self.rx.try_recv(), Ok) {
                Ok(d) => Ok(d),
                Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {
                    // Nothing more waiting: what was built goes to the sink
                    // before this worker waits, unless it is recent (then
                    // it waits until it is due at most).
                    let wait = match self.built_since.map(|t| t.elapsed()) {
                        Some(age) if age < HAND_OVER_DELAY => {
                            (HAND_OVER_DELAY - age).min(self.expire_tick)
                        }
                        _ => {
                            self.hand_over();
                            self.expire_tick
                        }
                    };
                    self.rx.recv_timeout(wait)
                }
            };
            match next {
                Ok(d) => {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    if let Ok(n) = self.rx.try_recv() {
                        prefetch(&n.payload);
                        ahead = Some(n);
                    }
                    if d.session_end {
                        self.end_session(d.from);
                        continue;
                    }
                    let socket = d.socket;
                    let payload = self.handle(d);
                    // Its receive thread may have ended (shutdown): then it
                    // is freed (and TCP messages have no pool).
                    if let Some(recycle) = self.recycle.get(socket) {
                        let _ = recycle.send(payload);
                    }
                }
                // Idle: sets waiting for a template must still expire
                // (otherwise they would only when the next datagram comes).
                Err(RecvTimeoutError::Timeout) => self.expire_idle(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.hand_over();
        self.report_waiting();
    }

    /// A TCP session ended (after its last message): forget its templates,
    /// sequence and sampling state, and drop the sets still waiting for a
    /// template (RFC 7011 10.4: templates are per session).
    fn end_session(&mut self, peer: SocketAddr) {
        let exporter = ExporterId(peer);
        self.decoder.cache.remove_exporter(exporter);
        self.tracker.remove_exporter(exporter);
        self.sampling.remove_exporter(exporter);
        let dropped = self
            .decoder
            .pending
            .take_where(|k| k.scope.exporter == exporter);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = stats.exporters.get_mut(&peer) {
            e.templates = 0;
            e.template_scopes.clear();
            e.sampling = None;
            e.sets_dropped += dropped.len() as u64;
            e.sets_waiting = e.sets_waiting.saturating_sub(dropped.len() as u64);
        }
        if !dropped.is_empty() {
            log::warn!(
                "tcp session from {peer} ended with {} data sets still waiting for their templates: dropped",
                dropped.len()
            );
        }
    }

    /// Drop the sets that waited too long, with no datagram to trigger it.
    fn expire_idle(&mut self) {
        let mut dropped = self.decoder.take_dropped();
        dropped.extend(self.decoder.pending.expire(now_us() / 1000));
        if dropped.is_empty() {
            return;
        }
        let now_ms = now_us() / 1000;
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        count_dropped(
            &mut stats,
            &dropped,
            now_ms,
            self.max_age_ms,
            None,
            &mut self.drop_log,
        );
    }
}

/// Count dropped pending sets per exporter, with the reason.
/// `over_limit`: how many of them the buffer dropped to keep an exporter
/// within its own byte limit (only ever that exporter's own sets).
fn count_dropped(
    stats: &mut Stats,
    dropped: &[PendingSet],
    now_ms: u64,
    max_age_ms: u64,
    over_limit: Option<(SocketAddr, u64)>,
    log: &mut RateLimit,
) {
    {
        let (limited, mut left) = over_limit.unwrap_or((SocketAddr::from(([0, 0, 0, 0], 0)), 0));
        for p in dropped {
            let exporter = p.key.scope.exporter.0;
            let owner = stats.exporters.entry(exporter).or_default();
            owner.sets_dropped += 1;
            owner.sets_waiting = owner.sets_waiting.saturating_sub(1);
            // The buffer says only that a set left it; older than the limit
            // means it expired, else it was evicted to make room: for its
            // exporter's own limit (the buffer's counter says how many), or
            // the whole buffer's.
            let expired = now_ms.saturating_sub(p.received_ms) > max_age_ms;
            let reason = if expired {
                owner.sets_expired += 1;
                "waited longer than the age limit"
            } else if left > 0 && exporter == limited {
                left -= 1;
                owner.sets_evicted += 1;
                owner.sets_over_exporter_limit += 1;
                "its exporter holds its limit of bytes waiting for templates"
            } else {
                owner.sets_evicted += 1;
                "the buffer of sets waiting for templates is full"
            };
            if log.allow(log::Level::Warn) {
                log::warn!(
                    "dropped a data set that waited for its template ({}) since {:.3}: {reason}",
                    p.key,
                    p.tag as f64 / 1e6
                );
            }
        }
    }
}

impl DecodeLoop {
    /// At shutdown: the sets still waiting, per exporter and template, into
    /// [`ExporterStats::waiting_at_stop`](crate::ExporterStats::waiting_at_stop), and a warning.
    fn report_waiting(&mut self) {
        if self.decoder.pending.is_empty() {
            return;
        }
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        for p in self.decoder.pending.iter() {
            let k = &p.key;
            let e = stats.exporters.entry(k.scope.exporter.0).or_default();
            let w = e
                .waiting_at_stop
                .entry((k.scope.protocol, k.scope.domain, k.template_id))
                .or_default();
            w.sets += 1;
            w.bytes += p.body.len() as u64;
        }
        for (addr, e) in &stats.exporters {
            if !e.waiting_at_stop.is_empty() {
                log::warn!(
                    "{addr}: {} data sets still waiting for their templates at shutdown are not written",
                    e.waiting_at_stop.values().map(|w| w.sets).sum::<u64>()
                );
            }
        }
    }

    fn sink_result(&mut self, result: io::Result<()>) {
        sink_result(&self.stats, &mut self.sink_log, result);
    }

    /// A unique, increasing tag per datagram over all workers: its receive
    /// time in microseconds (bumped by 1 µs when two arrive in the same one).
    fn next_tag(&self, received_us: u64) -> u64 {
        let mut tag = received_us;
        let _ = self
            .last_tag
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                tag = received_us.max(last + 1);
                Some(tag)
            });
        tag
    }

    /// Decode and deliver a datagram; returns its buffer for reuse.
    fn handle(&mut self, d: Datagram) -> Vec<u8> {
        self.decode_and_write(&d);
        d.payload
    }

    fn decode_and_write(&mut self, d: &Datagram) {
        let tag = self.next_tag(d.received_us);
        let received = tag as f64 / 1e6;
        let exporter = ExporterId(d.from);
        let result = self.decoder.decode(exporter, &d.payload, tag, tag / 1000);
        let mut sampling_learned = 0;
        if let Ok(decoded) = &result {
            self.tracker.observe_packet(&decoded.packet);
            sampling_learned += self.sampling.observe_packet(&decoded.packet);
            for r in &decoded.replayed {
                let p = &r.pending;
                sampling_learned +=
                    self.sampling
                        .observe_data_set(p.key.scope.exporter, &p.header, &r.data_set());
            }
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
        self.update_stats(d, &result, &groups, sampling_learned > 0);
        let Ok(decoded) = result else { return };
        let mut results = Vec::new();
        if self.batches {
            // Rows built here, without the lock (in parallel with several
            // workers); the sink gets them once no datagram is waiting
            // ([`hand_over`](Self::hand_over)).
            let builder = &mut self.builder;
            for_each_export(d.from, received, &decoded, &groups, |e| {
                builder.add_export(e);
            });
            self.built_since.get_or_insert_with(Instant::now);
            if self.builder.rows() >= HAND_OVER_ROWS {
                self.hand_over();
            }
            return;
        }
        if let Some(format) = self.line_format {
            // Formatted here, without the lock: with several workers the
            // formatting runs in parallel and the sink only stores.
            let out = &mut self.lines;
            let (lines, records) = (&mut self.pending_lines, &mut self.pending_records);
            for_each_export(d.from, received, &decoded, &groups, |e| {
                *lines += write_export(format, out, e) as u64;
                *records += record_count(e.sets);
            });
            self.built_since.get_or_insert_with(Instant::now);
            if self.lines.len() >= HAND_OVER_BYTES {
                self.hand_over();
            }
            return;
        }
        // From before the lock (another worker's write or a flush may hold
        // it) to the last write returned: the time this path spent waiting
        // on the sink.
        let start = Instant::now();
        {
            let sink = self.sink.clone();
            let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
            for_each_export(d.from, received, &decoded, &groups, |e| {
                results.push(sink.write(e))
            });
        }
        self.observe_sink_wait(start.elapsed());
        for r in results {
            self.sink_result(r);
        }
    }

    /// Give the rows or lines built since the last call to the sink (one
    /// lock and one append for many datagrams while they come faster than
    /// one at a time).
    fn hand_over(&mut self) {
        self.built_since = None;
        let start = Instant::now();
        let result = if self.batches {
            if self.builder.is_empty() {
                return;
            }
            let sink = &self.sink;
            self.builder.hand_over(|batch| {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take_batch(batch)
            })
        } else {
            if self.pending_lines == 0 {
                return;
            }
            let result = self
                .sink
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_lines(&self.lines, self.pending_lines, self.pending_records);
            self.lines.clear();
            self.pending_lines = 0;
            self.pending_records = 0;
            result
        };
        self.observe_sink_wait(start.elapsed());
        self.sink_result(result);
    }

    fn observe_sink_wait(&self, waited: Duration) {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .global
            .sink_wait
            .observe(waited);
    }

    fn update_stats(
        &mut self,
        d: &Datagram,
        result: &Result<Decoded<'_>, netflow::Error>,
        groups: &[(usize, usize)],
        sampling_learned: bool,
    ) {
        let exporter = ExporterId(d.from);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.global.datagrams += 1;
        stats.global.queued = self.queued.load(Ordering::Relaxed);
        let e = stats.exporter_entry(d.from, self.max_exporters);
        e.last_seen_us = d.received_us;
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
        if let Some(domain) = packet.header.domain() {
            // Templates known in this datagram's scope (a template datagram
            // changes only its own scope).
            let protocol = packet.header.protocol();
            let key = ScopeKey {
                exporter,
                protocol,
                domain,
            };
            let n = self.decoder.cache.scope(&key).map_or(0, |s| s.len() as u64);
            if n > 0 || e.template_scopes.contains_key(&(protocol, domain)) {
                e.template_scopes.insert((protocol, domain), n);
                e.templates = e.template_scopes.values().sum();
            }
        }
        if sampling_learned {
            let stream = StreamKey::new(exporter, &packet.header);
            if let Some((_, r)) = self.sampling.samplers_of(stream).next() {
                e.sampling = Some(*r);
            }
        }
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
        // What the template cache and the pending buffer did to stay within
        // their limits while handling this datagram.
        let cache = *self.decoder.cache.stats();
        let c = &mut stats.global.template_cache;
        c.evicted_templates += cache
            .evicted_templates
            .saturating_sub(self.last_cache.evicted_templates);
        c.evicted_scopes += cache
            .evicted_scopes
            .saturating_sub(self.last_cache.evicted_scopes);
        c.templates_in_evicted_scopes += cache
            .templates_in_evicted_scopes
            .saturating_sub(self.last_cache.templates_in_evicted_scopes);
        c.rejected += (cache.rejected_template_limit + cache.rejected_scope_limit).saturating_sub(
            self.last_cache.rejected_template_limit + self.last_cache.rejected_scope_limit,
        );
        self.last_cache = cache;
        let over_exporter_limit = self.decoder.pending.stats().dropped_exporter_capacity;
        let over_limit = over_exporter_limit.saturating_sub(self.last_over_exporter_limit);
        self.last_over_exporter_limit = over_exporter_limit;
        count_dropped(
            &mut stats,
            &decoded.dropped,
            d.received_us / 1000,
            self.max_age_ms,
            Some((d.from, over_limit)),
            &mut self.drop_log,
        );
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

/// The exports of one decoded datagram, in order: the datagram itself (also
/// with no data sets: the original writes a line per datagram), then the sets
/// that waited for their template, one export per datagram they came in
/// (`groups`: ranges of `decoded.replayed`).
fn for_each_export(
    from: SocketAddr,
    received: f64,
    decoded: &Decoded<'_>,
    groups: &[(usize, usize)],
    mut f: impl FnMut(&Export<'_>),
) {
    f(&Export {
        received,
        exporter: from,
        header: &decoded.packet.header,
        sets: &decoded.packet.data_sets,
    });
    for &(i, j) in groups {
        let group = &decoded.replayed[i..j];
        let first = &group[0].pending;
        let sets: Vec<DataSet<'_>> = group.iter().map(|r| r.data_set()).collect();
        f(&Export {
            received: first.tag as f64 / 1e6,
            exporter: first.key.scope.exporter.0,
            header: &first.header,
            sets: &sets,
        });
    }
}

/// Flow and options records in `sets`.
fn record_count(sets: &[DataSet<'_>]) -> u64 {
    sets.iter().map(|s| s.record_count as u64).sum()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A pause only where the buffer holds its datagrams many times over:
    /// at 300,000 datagrams/s (above this machine's generator) of ~2.3 KiB
    /// each in the kernel's accounting, a pause fills at most a third of
    /// the usable half of the smallest buffer that pauses; Debian's
    /// unprivileged cap (208 KiB, reported as 416 KiB) does not pause.
    #[test]
    fn pauses_only_with_room_for_them() {
        let pause = coalesce_for(COALESCE_MIN_BUFFER).expect("a pause");
        let gathered = 300_000.0 * pause.as_secs_f64() * 2.3 * 1024.0;
        assert!(
            gathered * 3.0 <= (COALESCE_MIN_BUFFER / 2) as f64,
            "{gathered}"
        );
        assert_eq!(coalesce_for(2 * 212_992), None);
        assert_eq!(coalesce_for(COALESCE_MIN_BUFFER - 1), None);
        assert_eq!(coalesce_for(64 << 20), Some(COALESCE));
    }
}
