//! # netflow-collector
//!
//! A NetFlow v1/v5/v7/v9 and IPFIX collector over UDP: the counterpart of the
//! Python original's `ThreadedNetFlowListener` / `get_export_packets`.
//!
//! - [`Collector::bind`] binds the listen sockets and starts receiving at once;
//!   decoded exports come out of [`Collector::recv_timeout`] / [`Collector::iter`]
//!   as owned [`ExportItem`]s (bounded channel: a slow reader applies back-pressure).
//! - `Collector::bind_stream` (cargo feature `tokio`, off by default): the
//!   same exports as an async stream (`ExportStream`, a
//!   `futures_core::Stream` with an inherent `next_export().await`), stopped
//!   with `stop()` / `shutdown().await` without blocking the runtime.
//!   `examples/collect.rs` (blocking iterator) and `examples/collect_async.rs`
//!   (tokio) print every export received.
//! - [`Collector::bind_with_sink`] hands every decoded export to a [`Sink`]
//!   instead, e.g. the gzip JSON-lines [`FileSink`]. A sink that stores
//!   JSON lines ([`Sink::line_format`]) gets them formatted by the decode
//!   workers, in parallel and outside its lock; the [`FileSink`] compresses
//!   them in a thread of its own, so the decode path neither formats under
//!   a lock nor deflates.
//! - [`Collector::stop`] then [`Collector::join`] end it cleanly: what the
//!   sockets hold is still read and decoded, the sink is flushed and closed.
//! - [`Config::allow`]: an exporter allowlist ([`Cidr`] ranges); datagrams
//!   from other sources are dropped before decoding and counted.
//! - [`Config::metrics`]: the counters as Prometheus text over HTTP
//!   (`GET /metrics`, [`render_metrics`]).
//! - [`FileSink::with_rotation`]: a new file every [`Rotation::interval`]
//!   and/or [`Rotation::size`] bytes.
//! - [`Config::workers`]: decode threads, each with its own decoder and
//!   sequence tracker; an exporter (address and port) always goes to the same
//!   one (hash of its address), the sink stays single. Bounded queues;
//!   [`GlobalStats::queue_full`] counts the waits.
//! - Receive path: one thread per listen socket takes up to 32 messages per
//!   `recvmmsg(2)` call into buffers allocated once (with `UDP_GRO`, Linux
//!   5.0 and later, a message may be a burst of equal-sized datagrams of one
//!   source the kernel coalesced: cut back into its datagrams here, counted
//!   in [`SocketStats::coalesced`]), and copies each datagram into a
//!   payload buffer that the decode worker gives back after decoding (no
//!   allocation per datagram once warm). Receive buffers are set with
//!   SO_RCVBUFFORCE when permitted (root, CAP_NET_ADMIN), else SO_RCVBUF
//!   (a warning when the kernel caps it: raise `net.core.rmem_max`).
//!   A receive thread that drained its socket pauses 1 ms before the next
//!   call when the buffer holds that many datagrams many times over (8 MiB
//!   as the kernel reports it, i.e. the default 32 MiB granted to root), so
//!   that datagrams arriving one by one are taken and handed on in bursts
//!   instead of waking two threads for each.
//!   No SO_REUSEPORT: decoding, not receiving, is what takes the time (one
//!   receive thread feeds several decode workers), and one socket per
//!   address keeps an exporter on one worker by our own hash, whatever the
//!   kernel's REUSEPORT hash does when sockets come and go.
//! - [`keep_freed_memory`]: glibc allocator settings for a long-running
//!   collector (freed buffers reused, not mapped and faulted in again at
//!   every block); `netflow collector` calls it at start.
//! - Kernel drops (receive buffer full), per socket ([`Stats::sockets`]):
//!   the SO_RXQ_OVFL count the kernel attaches to datagrams received after
//!   drops ([`SocketStats::rxq_ovfl_drops`]) and Linux's
//!   `/proc/net/udp{,6}` counter ([`SocketStats::proc_drops`]); summed in
//!   [`GlobalStats::rxq_ovfl_drops`] and [`GlobalStats::socket_drops`].
//! - Back-pressure, measured: [`GlobalStats::queue_wait`] (receive thread
//!   waiting on a full decode queue), [`GlobalStats::sink_wait`] (decode
//!   workers waiting on the sink), the file sink's flush latency in
//!   [`SinkCounters::flush_seconds`].
//! - Data sets waiting for their template expire after
//!   [`netflow::PendingLimits::max_age_ms`], checked at every datagram and by
//!   the idle workers on a timer; counted per exporter
//!   ([`ExporterStats::sets_expired`], [`ExporterStats::sets_evicted`]); the
//!   sets still waiting at shutdown are listed per exporter and template
//!   ([`ExporterStats::waiting_at_stop`], [`Stats::summary_lines`]).
//! - Per exporter, [`ExporterStats::templates`] and [`ExporterStats::sampling`].
//! - [`Config::tcp`]: IPFIX over TCP (RFC 7011 section 10.4), a session per
//!   connection and its own template scope; see [`TcpConfig`] and the
//!   counters in [`Stats::tcp`] ([`TcpStats`]); optionally over TLS
//!   ([`TcpConfig::tls`], [`TlsConfig`]).
//!
//! ## Prometheus metrics ([`render_metrics`])
//!
//! Per exporter (label `exporter="ADDR:PORT"`): `netflow_exporter_templates`,
//! `netflow_exporter_packets_total`, `netflow_exporter_bytes_total`,
//! `netflow_exporter_records_total`, `netflow_exporter_options_records_total`,
//! `netflow_exporter_bad_packets_total`, `netflow_exporter_sequence_lost_total`,
//! `netflow_exporter_sets_waiting`, `netflow_exporter_sets_replayed_total`,
//! `netflow_exporter_sets_dropped_total`, `netflow_exporter_sets_expired_total`,
//! `netflow_exporter_sets_evicted_total`,
//! `netflow_exporter_decode_errors_total{kind}`,
//! `netflow_exporter_sampling_interval{algorithm}`.
//! Per listen socket (label `socket="ADDR:PORT"`):
//! `netflow_socket_datagrams_total`, `netflow_socket_rxq_ovfl_drops_total`,
//! `netflow_socket_proc_drops_total`. Per denied source:
//! `netflow_denied_by_source_total{source}`. Global:
//! `netflow_socket_drops_total`, `netflow_rxq_ovfl_drops_total`,
//! `netflow_workers`, `netflow_queue_full_total`, `netflow_exporters`,
//! `netflow_datagrams_total`, `netflow_denied_total`,
//! `netflow_receive_errors_total`, `netflow_queue_depth`,
//! `netflow_sink_errors_total`, `netflow_sink_written_total`,
//! `netflow_sink_buffered`, `netflow_sink_bytes_total`,
//! `netflow_sink_dropped_total`, `netflow_sink_dropped_records_total`,
//! `netflow_sink_rotations_total`, the TCP session counters
//! `netflow_tcp_sessions_accepted_total`, `netflow_tcp_sessions_active`,
//! `netflow_tcp_sessions_refused_total`, `netflow_tcp_sessions_denied_total`,
//! `netflow_tcp_sessions_closed_on_error_total`,
//! `netflow_tcp_sessions_idle_timeouts_total`, `netflow_tcp_messages_total`,
//! `netflow_tcp_io_errors_total`, `netflow_tcp_tls_errors_total`, and the histograms
//! `netflow_sink_flush_duration_seconds`, `netflow_queue_wait_seconds`,
//! `netflow_sink_wait_seconds`.
//!
//! Templates are kept per exporter (address and port), protocol and
//! observation domain / source ID, in one [`netflow::Decoder`]; data that
//! arrives before its template waits in its bounded pending buffer and is
//! delivered when the template comes (only the waiting sets, not the whole
//! datagram). A datagram that cannot be decoded is counted per exporter with
//! the reason and logged at a limited rate; nothing stops the collector.
//!
//! ```no_run
//! use std::time::Duration;
//! use netflow_collector::{Collector, Config};
//!
//! let collector = Collector::bind(Config::new(vec!["0.0.0.0:2055".parse().unwrap()]))?;
//! for export in collector.iter().take(10) {
//!     println!("{} {} records from {}", export.received, export.records.len(), export.exporter);
//! }
//! collector.stop();
//! let rest = collector.join();
//! # Ok::<(), std::io::Error>(())
//! ```

mod cidr;
mod columns;
mod drops;
mod gzip;
mod memory;
mod metrics;
mod rate;
mod recv;
mod sink;
mod stats;
#[cfg(feature = "tokio")]
mod stream;
mod tcp;
mod tls;
mod worker;

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use netflow::PendingLimits;
use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

pub use cidr::Cidr;
pub use columns::{ColumnSink, BLOCK_ROWS};
pub use memory::keep_freed_memory;
pub use metrics::render as render_metrics;
pub use rate::{ExporterRateLimit, MAX_BUCKETS as MAX_RATE_LIMITED_SOURCES};
pub use sink::{
    patterned_path, rotated_path, ChannelSink, ExportItem, FileSink, NamePattern, Rotation, Sink,
    SinkCounters, DEFAULT_COMPRESSION_LEVEL,
};
pub use stats::{
    ExporterStats, GlobalStats, Histogram, SequenceSummary, SocketStats, Stats,
    TemplateCacheCounters, WaitingSets, HISTOGRAM_BOUNDS,
};
#[cfg(feature = "tokio")]
pub use stream::ExportStream;
pub use tcp::{TcpConfig, TcpStats, ERROR_BAD_LENGTH, ERROR_NOT_IPFIX, ERROR_TRUNCATED};
pub use tls::TlsConfig;

/// Largest UDP payload.
pub const MAX_DATAGRAM: usize = 65_535;

/// Collector settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (UDP). An IPv6 unspecified address (`[::]`) is
    /// dual-stack: it receives IPv4 too.
    pub listen: Vec<SocketAddr>,
    /// SO_RCVBUF requested per socket, bytes. The kernel may cap it (Linux:
    /// `net.core.rmem_max`); the value granted is in [`BoundSocket`] and a
    /// warning is logged when it is smaller.
    pub receive_buffer: usize,
    /// Datagrams queued between the sockets and the decoders (shared out
    /// evenly between the workers' queues).
    pub queue: usize,
    /// Decode workers (at least 1). Each has its own decoder (templates,
    /// pending buffer) and sequence tracker; an exporter (address and port)
    /// always goes to the same worker, chosen by a hash of its address, so
    /// its templates and sequence order hold. The sink stays single.
    pub workers: usize,
    /// Exports queued for the embedder ([`Collector::bind`] only).
    pub channel: usize,
    /// Longest time lines stay in the sink's buffer before a flush.
    pub flush_interval: Duration,
    /// Limits of the buffer of data waiting for templates.
    pub pending: PendingLimits,
    /// Limits of each decode worker's template cache (scopes, templates per
    /// scope, fields, list depth): over them the least recently used
    /// template or scope is evicted and counted
    /// ([`GlobalStats::template_cache`]). Each worker holds the templates of
    /// the exporters routed to it, so the whole collector holds at most
    /// `workers` times `max_scopes` scopes.
    pub template_limits: netflow::Limits,
    /// Exporter allowlist: when not empty, datagrams from source addresses in
    /// none of these ranges are dropped before decoding and counted
    /// ([`GlobalStats::denied`], [`Stats::denied`]).
    pub allow: Vec<Cidr>,
    /// Serve the counters as Prometheus text on this TCP address
    /// (`GET /metrics`); see [`render_metrics`] and [`Collector::metrics_addr`].
    pub metrics: Option<SocketAddr>,
    /// IPFIX over TCP (RFC 7011 10.4): listen addresses, session limit, idle
    /// timeout. No address: no TCP.
    pub tcp: TcpConfig,
    /// Per-exporter (source address) rate limit: over UDP, datagrams beyond
    /// it are dropped before decoding and counted
    /// ([`GlobalStats::rate_limited`], [`Stats::rate_limited`]); over TCP
    /// the session pauses reading ([`TcpStats::rate_paused`]). `None`: no limit.
    pub rate_limit: Option<ExporterRateLimit>,
    /// Exporters (transport addresses) with counters of their own at most:
    /// beyond it the least recently seen ones' entries are removed (their
    /// counters summed in [`Stats::evicted_exporters`], counted in
    /// [`GlobalStats::exporters_evicted`]). Bounds the collector's memory
    /// under a flood of spoofed sources or many short TCP sessions.
    pub max_exporters: usize,
}

impl Config {
    pub fn new(listen: Vec<SocketAddr>) -> Config {
        Config {
            listen,
            receive_buffer: 32 << 20,
            queue: 65_536,
            workers: 1,
            channel: 1_024,
            flush_interval: Duration::from_secs(1),
            pending: PendingLimits::default(),
            template_limits: netflow::Limits::default(),
            allow: Vec::new(),
            metrics: None,
            tcp: TcpConfig::default(),
            rate_limit: None,
            max_exporters: 65_536,
        }
    }
}

/// A socket the collector listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundSocket {
    /// Its local address (the port is known even when 0 was asked for).
    pub local: SocketAddr,
    /// SO_RCVBUF requested.
    pub receive_buffer_requested: usize,
    /// SO_RCVBUF as read back from the kernel (Linux reports twice the
    /// usable size it grants).
    pub receive_buffer: usize,
}

impl BoundSocket {
    /// True when the kernel granted less than requested.
    pub fn receive_buffer_capped(&self) -> bool {
        self.receive_buffer < self.receive_buffer_requested
    }
}

/// A running collector. Dropping it stops it and waits for its threads.
pub struct Collector {
    sockets: Vec<BoundSocket>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    drops: Arc<drops::SocketDrops>,
    threads: Vec<JoinHandle<()>>,
    exports: Option<Receiver<ExportItem>>,
    metrics: Option<SocketAddr>,
    /// The TCP listen addresses ([`Config::tcp`]).
    tcp: Vec<SocketAddr>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("sockets", &self.sockets)
            .field("stopping", &self.stop.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Set the receive buffer: SO_RCVBUFFORCE first (Linux, root or
/// CAP_NET_ADMIN: not capped by `net.core.rmem_max`), else SO_RCVBUF.
fn set_receive_buffer(socket: &Socket, addr: SocketAddr, size: usize) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let v = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: a valid socket descriptor and an int option value of the size given.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return;
        }
        // EPERM without the privilege: the capped SO_RCVBUF below.
    }
    if let Err(e) = socket.set_recv_buffer_size(size) {
        log::warn!("{addr}: cannot set the receive buffer to {size} bytes: {e}");
    }
}

/// Bind one UDP socket with a large receive buffer and drop counts
/// (SO_RXQ_OVFL) attached to received datagrams.
fn bind_socket(addr: SocketAddr, receive_buffer: usize) -> io::Result<(UdpSocket, BoundSocket)> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM,
        Some(SockProtocol::UDP),
    )?;
    if addr.is_ipv6() {
        // `::` receives IPv4 too; a specific IPv6 address only IPv6.
        socket.set_only_v6(!addr.ip().is_unspecified())?;
    }
    set_receive_buffer(&socket, addr, receive_buffer);
    let granted = socket.recv_buffer_size().unwrap_or(0);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    if let Err(e) = recv::enable_rxq_ovfl(&socket) {
        log::debug!("{addr}: no SO_RXQ_OVFL drop counts: {e}");
    }
    if let Err(e) = recv::enable_gro(&socket) {
        log::debug!("{addr}: no UDP GRO (one receive per datagram): {e}");
    }
    let bound = BoundSocket {
        local: socket.local_addr()?,
        receive_buffer_requested: receive_buffer,
        receive_buffer: granted,
    };
    if bound.receive_buffer_capped() {
        log::warn!(
            "{}: the kernel granted a receive buffer of {} bytes, not {} (raise net.core.rmem_max, or run as root); bursts may be dropped",
            bound.local,
            granted,
            receive_buffer
        );
    }
    Ok((socket, bound))
}

impl Collector {
    /// Bind `config.listen` and start; decoded exports are read with
    /// [`recv_timeout`](Self::recv_timeout) or [`iter`](Self::iter).
    pub fn bind(config: Config) -> io::Result<Collector> {
        let (tx, rx) = mpsc::sync_channel(config.channel.max(1));
        let mut c = Collector::start(config, ChannelSink::new(tx))?;
        c.exports = Some(rx);
        Ok(c)
    }

    /// Bind `config.listen` and start; every decoded export goes to `sink`.
    pub fn bind_with_sink(
        config: Config,
        sink: impl Sink + Send + 'static,
    ) -> io::Result<Collector> {
        Collector::start(config, sink)
    }

    fn start(config: Config, sink: impl Sink + Send + 'static) -> io::Result<Collector> {
        if config.listen.is_empty() && config.tcp.listen.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no listen address",
            ));
        }
        let mut sockets = Vec::new();
        let mut bound = Vec::new();
        for addr in &config.listen {
            let (s, b) = bind_socket(*addr, config.receive_buffer)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            sockets.push((s, b.local));
            bound.push(b);
        }
        let tcp_tls = tcp::tls(&config.tcp)?;
        let tcp_listeners = tcp::bind(&config.tcp)?;
        let tcp_addrs: Vec<SocketAddr> = tcp_listeners.iter().map(|(_, a)| *a).collect();
        let metrics_listener = match config.metrics {
            Some(addr) => Some(TcpListener::bind(addr).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot serve metrics on {addr}: {e}"))
            })?),
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let workers = config.workers.max(1);
        let stats = Arc::new(Mutex::new(Stats::default()));
        stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .global
            .workers = workers as u64;
        let per_worker = (config.queue / workers).max(1);
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers)
            .map(|_| mpsc::sync_channel::<worker::Datagram>(per_worker))
            .unzip();
        let queued = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let allow: Arc<[Cidr]> = config.allow.clone().into();
        let drops = Arc::new(drops::SocketDrops::new(&sockets));
        let buckets = config.rate_limit.map(|l| {
            Arc::new(Mutex::new(rate::TokenBuckets::new(
                l,
                std::time::Instant::now(),
            )))
        });
        // Payload buffers go back from the decode workers to the receive
        // thread of their socket, to be used again.
        let (recycle, free): (Vec<_>, Vec<_>) =
            sockets.iter().map(|_| mpsc::channel::<Vec<u8>>()).unzip();
        let mut threads = Vec::new();
        for (index, ((socket, local), free)) in sockets.into_iter().zip(free).enumerate() {
            let r = worker::Receiver {
                socket,
                local,
                index,
                free,
                tx: txs.clone(),
                stop: stop.clone(),
                stats: stats.clone(),
                queued: queued.clone(),
                allow: allow.clone(),
                drops: drops.clone(),
                buckets: buckets.clone(),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("netflow-recv {local}"))
                    .spawn(move || r.run())?,
            );
        }
        let tcp_shared = tcp::Shared {
            tx: txs.clone(),
            stop: stop.clone(),
            stats: stats.clone(),
            queued: queued.clone(),
            allow: allow.clone(),
            max_sessions: config.tcp.max_sessions,
            idle_timeout: config.tcp.idle_timeout,
            active: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            tls: tcp_tls,
            buckets: buckets.clone(),
            max_exporters: config.max_exporters,
        };
        for (listener, local) in tcp_listeners {
            let l = tcp::Listener {
                listener,
                local,
                shared: tcp_shared.clone(),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("netflow-tcp-accept {local}"))
                    .spawn(move || l.run())?,
            );
        }
        drop(tcp_shared);
        drop(txs);
        if let Some(listener) = metrics_listener {
            let m = metrics::MetricsServer {
                listener,
                stats: stats.clone(),
                queued: queued.clone(),
                stop: stop.clone(),
                drops: drops.clone(),
            };
            threads.push(
                std::thread::Builder::new()
                    .name("netflow-metrics".into())
                    .spawn(move || m.run())?,
            );
        }
        let sink: worker::SharedSink = Arc::new(Mutex::new(Box::new(sink)));
        let last_tag = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (done_tx, done_rx) = mpsc::channel();
        for (i, rx) in rxs.into_iter().enumerate() {
            let d = worker::DecodeLoop::new(
                &config,
                rx,
                sink.clone(),
                stats.clone(),
                queued.clone(),
                last_tag.clone(),
                done_tx.clone(),
                recycle.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("netflow-decode {i}"))
                    .spawn(move || d.run())?,
            );
        }
        drop(done_tx);
        let s = worker::SinkLoop {
            sink,
            stats: stats.clone(),
            queued,
            flush_interval: config.flush_interval,
            done: done_rx,
            drops: drops.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name("netflow-sink".into())
                .spawn(move || s.run())?,
        );
        Ok(Collector {
            sockets: bound,
            stop,
            stats,
            drops,
            threads,
            exports: None,
            metrics: metrics_addr,
            tcp: tcp_addrs,
        })
    }

    /// Where the Prometheus metrics are served ([`Config::metrics`]), with
    /// the port the system chose when 0 was asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The sockets listened on.
    pub fn sockets(&self) -> &[BoundSocket] {
        &self.sockets
    }

    /// The first socket's local address (the first TCP one when there is
    /// no UDP socket).
    pub fn local_addr(&self) -> SocketAddr {
        self.sockets
            .first()
            .map(|s| s.local)
            .or_else(|| self.tcp.first().copied())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The TCP listen addresses ([`Config::tcp`]), with the ports the system
    /// chose when 0 was asked for.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// A copy of the counters now.
    pub fn stats(&self) -> Stats {
        if !self.threads.is_empty() {
            // Sockets still open: read the kernel's drop counts now.
            self.drops.refresh(&self.stats);
        }
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The next decoded export ([`bind`](Self::bind) only; `None` with
    /// [`bind_with_sink`](Self::bind_with_sink)). `Err(Timeout)` when none
    /// came within `timeout`, `Err(Disconnected)` once stopped and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<ExportItem, RecvTimeoutError> {
        match &self.exports {
            Some(rx) => rx.recv_timeout(timeout),
            None => Err(RecvTimeoutError::Disconnected),
        }
    }

    /// Decoded exports as they come; ends once the collector is stopped and drained.
    pub fn iter(&self) -> impl Iterator<Item = ExportItem> + '_ {
        self.exports.iter().flat_map(|rx| rx.iter())
    }

    /// Ask the threads to stop (returns at once). The sockets are read until
    /// empty, what they held is decoded and delivered, and the sink is flushed
    /// and closed.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// True once [`stop`](Self::stop) was called.
    pub fn is_stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Wait for the threads to end (after [`stop`](Self::stop)) and return the
    /// exports not read yet. Returns the final counters in [`stats`](Self::stats).
    pub fn join(mut self) -> Vec<ExportItem> {
        self.finish()
    }

    fn finish(&mut self) -> Vec<ExportItem> {
        let mut rest = Vec::new();
        if let Some(rx) = self.exports.take() {
            // Drain while the decoder finishes so a full channel cannot block it.
            rest.extend(rx.iter());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        rest
    }

    /// [`stop`](Self::stop), [`join`](Self::join) and the final counters.
    pub fn shutdown(mut self) -> (Stats, Vec<ExportItem>) {
        self.stop();
        let rest = self.finish();
        (self.stats(), rest)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
        self.finish();
    }
}
