//! IPFIX over TCP (RFC 7011 section 10.4).
//!
//! - One listener thread per [`TcpConfig::listen`] address accepts
//!   connections; each accepted session gets a thread of its own, up to
//!   [`TcpConfig::max_sessions`] at once (connections beyond that are closed
//!   at once and counted in [`TcpStats::refused`]). The exporter allowlist
//!   ([`crate::Config::allow`]) is applied at accept: a denied peer is closed
//!   before anything is read and counted ([`TcpStats::denied`], and like a
//!   denied UDP datagram in [`crate::GlobalStats::denied`] and
//!   [`crate::Stats::denied`]).
//! - Framing (RFC 7011 10.4.1 / 10.4.2): a TCP connection carries IPFIX
//!   messages back to back; each is delimited by the Length field of its
//!   16-byte message header. The session reads the header, checks that the
//!   version is 10 (NetFlow v5/v9 over TCP are not standard) and that the
//!   length is at least 16, then reads the rest of the message. A header
//!   that fails either check, or a connection that ends in the middle of a
//!   message, closes the session; the error is counted for the peer
//!   ([`crate::ExporterStats::errors`], kinds [`ERROR_NOT_IPFIX`],
//!   [`ERROR_BAD_LENGTH`], [`ERROR_TRUNCATED`]) and in
//!   [`TcpStats::closed_on_error`].
//! - Each complete message goes through the same path as a UDP datagram:
//!   the decode worker of its exporter, then the sink. The exporter is the
//!   peer address and port, unique per connection, so a session is its own
//!   template scope (RFC 7011 10.4: templates are per session; the same
//!   exporter reconnecting starts with none). When the session ends, its
//!   decode worker forgets its templates and drops the data sets still
//!   waiting for one (counted in [`crate::ExporterStats::sets_dropped`]).
//!   Template withdrawals are handled by the decoder as for UDP.
//! - Idle sessions are closed after [`TcpConfig::idle_timeout`]
//!   ([`TcpStats::idle_timeouts`]).
//! - The collector never writes to a session: only the TCP handshake is
//!   ever sent back (and, with [`TcpConfig::tls`], the TLS handshake and
//!   alerts: see [`crate::TlsConfig`]). A failed TLS handshake closes the
//!   session, counted in [`TcpStats::tls_errors`].

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::rate::TokenBuckets;
use crate::stats::Stats;
use crate::tls::TlsConfig;
use crate::worker::{
    allowed, count_per_source, normalize, now_us, worker_for, Datagram, RateLimit,
};
use crate::Cidr;

/// Error kind of a session whose message header is not IPFIX (version not 10).
pub const ERROR_NOT_IPFIX: &str = "tcp_not_ipfix";
/// Error kind of a session whose message header has a length under 16.
pub const ERROR_BAD_LENGTH: &str = "tcp_bad_length";
/// Error kind of a session that ended in the middle of a message.
pub const ERROR_TRUNCATED: &str = "tcp_truncated";

/// The IPFIX message header: version, length, export time, sequence, domain.
const HEADER_LEN: usize = 16;
/// The largest IPFIX message (its length field is 16 bits).
const MAX_MESSAGE: usize = 65_535;
/// How often blocked reads and accepts look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// IPFIX-over-TCP settings ([`crate::Config::tcp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Addresses to accept IPFIX-over-TCP sessions on (none: no TCP).
    pub listen: Vec<SocketAddr>,
    /// Sessions open at once at most (over all TCP listen addresses); more
    /// connections are closed at once and counted ([`TcpStats::refused`]).
    pub max_sessions: usize,
    /// A session with nothing received for this long is closed.
    pub idle_timeout: Duration,
    /// TLS on every TCP listen address (RFC 7011 10.4.2); `None`: plain TCP.
    pub tls: Option<TlsConfig>,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            listen: Vec::new(),
            max_sessions: 256,
            idle_timeout: Duration::from_secs(600),
            tls: None,
        }
    }
}

/// Counters of the TCP sessions ([`crate::Stats::tcp`]); per session, the
/// usual per-exporter counters under the peer address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Sessions accepted (allowed and under the session limit).
    pub accepted: u64,
    /// Sessions open now.
    pub active: u64,
    /// Connections closed at once: [`TcpConfig::max_sessions`] were open.
    pub refused: u64,
    /// Connections closed at once: the peer is not in the allowlist.
    pub denied: u64,
    /// Sessions closed by the collector on a framing error (not IPFIX,
    /// length under 16, or a message cut short by the end of the connection).
    pub closed_on_error: u64,
    /// Sessions closed after [`TcpConfig::idle_timeout`] without data.
    pub idle_timeouts: u64,
    /// IPFIX messages read from the sessions.
    pub messages: u64,
    /// Errors accepting or reading connections (other than the above).
    pub io_errors: u64,
    /// TLS sessions that failed (handshake refused, bad certificate, a
    /// record that does not decrypt).
    pub tls_errors: u64,
    /// Messages held back by the per-exporter rate limit
    /// ([`crate::Config::rate_limit`]): the session stopped reading until
    /// the exporter's bucket refilled (nothing is dropped).
    pub rate_paused: u64,
    /// Time the sessions spent paused by the rate limit, milliseconds.
    pub rate_paused_ms: u64,
}

impl TcpStats {
    /// `tcp accepted N active N refused N denied N closed_on_error N idle_timeouts N messages N io_errors N tls_errors N rate_paused N rate_paused_ms N`.
    pub fn summary_line(&self) -> String {
        format!(
            "tcp accepted {} active {} refused {} denied {} closed_on_error {} idle_timeouts {} messages {} io_errors {} tls_errors {} rate_paused {} rate_paused_ms {}",
            self.accepted,
            self.active,
            self.refused,
            self.denied,
            self.closed_on_error,
            self.idle_timeouts,
            self.messages,
            self.io_errors,
            self.tls_errors,
            self.rate_paused,
            self.rate_paused_ms
        )
    }
}

/// The TLS server configuration of `config`, when TLS is on (files read now).
pub(crate) fn tls(config: &TcpConfig) -> io::Result<Option<Arc<rustls::ServerConfig>>> {
    match &config.tls {
        Some(t) if !config.listen.is_empty() => crate::tls::server_config(t).map(Some),
        _ => Ok(None),
    }
}

/// Bind the TCP listen addresses (non-blocking: the accept loop polls the
/// stop flag).
pub(crate) fn bind(config: &TcpConfig) -> io::Result<Vec<(TcpListener, SocketAddr)>> {
    let mut out = Vec::new();
    for addr in &config.listen {
        let listener = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on tcp {addr}: {e}")))?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        out.push((listener, local));
    }
    Ok(out)
}

/// What the listener and session threads share.
#[derive(Clone)]
pub(crate) struct Shared {
    /// One bounded queue per decode worker (as for UDP).
    pub(crate) tx: Vec<SyncSender<Datagram>>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) stats: Arc<Mutex<Stats>>,
    pub(crate) queued: Arc<AtomicU64>,
    pub(crate) allow: Arc<[Cidr]>,
    pub(crate) max_sessions: usize,
    pub(crate) idle_timeout: Duration,
    /// Sessions open now, over all listeners.
    pub(crate) active: Arc<AtomicUsize>,
    /// TLS on the sessions ([`TcpConfig::tls`]).
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Per-exporter rate limit, shared with the UDP sockets.
    pub(crate) buckets: Option<Arc<Mutex<TokenBuckets>>>,
    /// [`crate::Config::max_exporters`].
    pub(crate) max_exporters: usize,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until `peer` may send one more message under the rate limit
    /// (TCP back-pressure: the session does not read meanwhile). When the
    /// collector stops, the wait ends: a message already read is never lost.
    fn wait_for_rate_limit(&self, peer: SocketAddr) {
        let Some(buckets) = &self.buckets else {
            return;
        };
        let mut paused: Option<Instant> = None;
        loop {
            let wait = buckets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take_or_wait(peer.ip(), Instant::now());
            let Some(wait) = wait else { break };
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            paused.get_or_insert_with(Instant::now);
            std::thread::sleep(wait.min(POLL));
        }
        if let Some(start) = paused {
            let mut s = self.stats();
            s.tcp.rate_paused += 1;
            s.tcp.rate_paused_ms += start.elapsed().as_millis() as u64;
        }
    }

    /// Queue a message (or a session end) for the peer's decode worker; a
    /// full queue is waited for (TCP back-pressure) and counted. `Err` once
    /// the workers are gone.
    fn dispatch(&self, d: Datagram) -> Result<(), ()> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let tx = &self.tx[worker_for(d.from, self.tx.len())];
        match tx.try_send(d) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(d)) => {
                self.stats().global.queue_full += 1;
                let start = Instant::now();
                let sent = tx.send(d).map_err(|_| ());
                self.stats().global.queue_wait.observe(start.elapsed());
                sent
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(())
            }
        }
    }
}

/// Accepts sessions on one listen address until stopped, then waits for
/// its sessions to end.
pub(crate) struct Listener {
    pub(crate) listener: TcpListener,
    pub(crate) local: SocketAddr,
    pub(crate) shared: Shared,
}

impl Listener {
    pub(crate) fn run(self) {
        let mut sessions: Vec<JoinHandle<()>> = Vec::new();
        let mut log = RateLimit::new(Duration::from_secs(10), 5);
        while !self.shared.stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if let Some(h) = self.admit(stream, normalize(peer), &mut log) {
                        sessions.push(h);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL / 4),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // E.g. EMFILE: count, wait a little, go on.
                    self.shared.stats().tcp.io_errors += 1;
                    if log.allow(log::Level::Warn) {
                        log::warn!("tcp {}: accept error: {e}", self.local);
                    }
                    std::thread::sleep(POLL);
                }
            }
            sessions.retain(|h| !h.is_finished());
        }
        for h in sessions {
            let _ = h.join();
        }
    }

    /// Check a new connection against the allowlist and the session limit;
    /// start its session thread.
    fn admit(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        log: &mut RateLimit,
    ) -> Option<JoinHandle<()>> {
        let shared = &self.shared;
        if !allowed(&shared.allow, peer.ip()) {
            let mut s = shared.stats();
            s.global.denied += 1;
            s.tcp.denied += 1;
            count_per_source(&mut s.denied, peer.ip(), 1);
            drop(s);
            if log.allow(log::Level::Warn) {
                log::warn!(
                    "tcp {}: connection from {peer} closed: not in the allowlist",
                    self.local
                );
            }
            return None;
        }
        // Reserve a session slot, or refuse.
        let reserved = shared
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < shared.max_sessions).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            shared.stats().tcp.refused += 1;
            if log.allow(log::Level::Warn) {
                log::warn!(
                    "tcp {}: connection from {peer} closed: {} sessions open already",
                    self.local,
                    shared.max_sessions
                );
            }
            return None;
        }
        {
            let mut s = shared.stats();
            s.tcp.accepted += 1;
            s.tcp.active = shared.active.load(Ordering::Acquire) as u64;
        }
        let session = Session {
            stream,
            peer,
            local: self.local,
            shared: shared.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("netflow-tcp {peer}"))
            .spawn(move || session.run());
        match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                let n = shared.active.fetch_sub(1, Ordering::AcqRel) - 1;
                let mut s = shared.stats();
                s.tcp.io_errors += 1;
                s.tcp.active = n as u64;
                drop(s);
                log::warn!(
                    "tcp {}: cannot start a session thread for {peer}: {e}",
                    self.local
                );
                None
            }
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The peer closed the connection between messages.
    Closed,
    /// The collector is stopping.
    Stopped,
    /// Nothing received for [`TcpConfig::idle_timeout`].
    Idle,
    /// A framing error (its error kind).
    Framing(&'static str),
    /// A read error.
    Io,
    /// A TLS error (handshake, certificate, record).
    Tls,
    /// The decode workers are gone.
    Gone,
}

/// Reads the IPFIX messages of one TCP connection.
struct Session {
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    shared: Shared,
}

impl Session {
    fn run(self) {
        let end = match &self.shared.tls {
            None => self.read_messages(&mut &self.stream),
            Some(config) => match rustls::ServerConnection::new(config.clone()) {
                Ok(mut conn) => {
                    let mut sock = &self.stream;
                    let end = self.read_messages(&mut rustls::Stream::new(&mut conn, &mut sock));
                    if end == End::Tls {
                        // The alert rustls queued (e.g. bad certificate), best effort.
                        let _ = conn.write_tls(&mut sock);
                    }
                    end
                }
                Err(_) => End::Tls,
            },
        };
        let shared = &self.shared;
        let n = shared.active.fetch_sub(1, Ordering::AcqRel) - 1;
        {
            let mut s = shared.stats();
            s.tcp.active = n as u64;
            match end {
                End::Framing(kind) => {
                    s.tcp.closed_on_error += 1;
                    let e = s.exporter_entry(self.peer, shared.max_exporters);
                    e.bad_packets += 1;
                    *e.errors.entry(kind).or_insert(0) += 1;
                }
                End::Idle => s.tcp.idle_timeouts += 1,
                End::Io => s.tcp.io_errors += 1,
                End::Tls => s.tcp.tls_errors += 1,
                End::Closed | End::Stopped | End::Gone => {}
            }
        }
        match end {
            End::Framing(kind) => log::warn!(
                "tcp {}: session from {} closed: {kind}",
                self.local,
                self.peer
            ),
            End::Idle => log::info!(
                "tcp {}: session from {} closed: idle for {:?}",
                self.local,
                self.peer,
                shared.idle_timeout
            ),
            End::Tls => log::warn!("tcp {}: TLS session from {} failed", self.local, self.peer),
            _ => log::debug!(
                "tcp {}: session from {} ended ({end:?})",
                self.local,
                self.peer
            ),
        }
        // After every message of the session (same queue, in order): its
        // worker forgets the session's templates and waiting sets.
        let _ = shared.dispatch(Datagram {
            received_us: now_us(),
            from: self.peer,
            payload: Vec::new(),
            socket: usize::MAX,
            session_end: true,
        });
    }

    /// Read and hand on messages from `reader` (the connection, or the TLS
    /// stream over it) until the session ends.
    fn read_messages(&self, reader: &mut dyn Read) -> End {
        let socket = &self.stream;
        // The write timeout bounds the TLS handshake's writes (nothing else
        // is ever written) to a peer that does not read.
        if socket.set_nonblocking(false).is_err()
            || socket.set_read_timeout(Some(POLL)).is_err()
            || socket
                .set_write_timeout(Some(Duration::from_secs(10)))
                .is_err()
        {
            return End::Io;
        }
        let mut buf = vec![0u8; MAX_MESSAGE];
        // Bytes of the current message read so far, and its length (the
        // header's until the header is complete).
        let mut filled = 0usize;
        let mut need = HEADER_LEN;
        let mut header_done = false;
        let mut last_data = Instant::now();
        let mut stopping = false;
        loop {
            if !stopping && self.shared.stop.load(Ordering::Relaxed) {
                // Read what the socket holds, then end.
                stopping = true;
                if socket.set_nonblocking(true).is_err() {
                    return End::Stopped;
                }
            }
            match reader.read(&mut buf[filled..need]) {
                Ok(0) => {
                    return if filled == 0 {
                        End::Closed
                    } else {
                        End::Framing(ERROR_TRUNCATED)
                    };
                }
                Ok(n) => {
                    last_data = Instant::now();
                    filled += n;
                    if filled < need {
                        continue;
                    }
                    if !header_done {
                        let version = u16::from_be_bytes([buf[0], buf[1]]);
                        let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                        if version != 10 {
                            return End::Framing(ERROR_NOT_IPFIX);
                        }
                        if length < HEADER_LEN {
                            return End::Framing(ERROR_BAD_LENGTH);
                        }
                        header_done = true;
                        need = length;
                        if filled < need {
                            continue;
                        }
                    }
                    self.shared.wait_for_rate_limit(self.peer);
                    let d = Datagram {
                        received_us: now_us(),
                        from: self.peer,
                        payload: buf[..need].to_vec(),
                        socket: usize::MAX,
                        session_end: false,
                    };
                    self.shared.stats().tcp.messages += 1;
                    if self.shared.dispatch(d).is_err() {
                        return End::Gone;
                    }
                    filled = 0;
                    need = HEADER_LEN;
                    header_done = false;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if stopping {
                        return End::Stopped;
                    }
                    if last_data.elapsed() >= self.shared.idle_timeout {
                        return End::Idle;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("tcp {}: read error from {}: {e}", self.local, self.peer);
                    return match e.kind() {
                        // A TLS peer gone without close_notify, between messages.
                        io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
                            if filled == 0 =>
                        {
                            End::Closed
                        }
                        io::ErrorKind::UnexpectedEof => End::Framing(ERROR_TRUNCATED),
                        // rustls: handshake or record errors.
                        io::ErrorKind::InvalidData if self.shared.tls.is_some() => End::Tls,
                        _ => End::Io,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::{Collector, Config};

    #[test]
    fn metrics_show_the_tcp_counters() {
        let mut s = Stats::default();
        s.tcp.denied = 3;
        s.tcp.active = 2;
        let text = crate::render_metrics(&s);
        assert!(
            text.contains("netflow_tcp_sessions_denied_total 3"),
            "{text}"
        );
        assert!(text.contains("netflow_tcp_sessions_active 2"), "{text}");
    }

    /// An IPFIX message with one template set (256: sourceIPv4Address) and
    /// one data set of `records` records.
    fn message(records: u8) -> Vec<u8> {
        let mut sets = vec![0, 2, 0, 12, 1, 0, 0, 1, 0, 8, 0, 4];
        sets.extend_from_slice(&[1, 0, 0, 4 + 4 * records]);
        for i in 0..records {
            sets.extend_from_slice(&[10, 0, 0, i]);
        }
        let mut m = vec![0, 10];
        m.extend_from_slice(&(16 + sets.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&sets);
        m
    }

    #[test]
    fn a_tcp_only_collector_delivers_the_messages_of_a_session() {
        let mut config = Config::new(Vec::new());
        config.tcp.listen = vec!["127.0.0.1:0".parse().unwrap()];
        let collector = Collector::bind(config).unwrap();
        assert!(collector.sockets().is_empty());
        let addr = collector.tcp_addrs()[0];
        assert_eq!(collector.local_addr(), addr);
        let mut s = TcpStream::connect(addr).unwrap();
        // Two messages in one write, a third split in the middle.
        let mut bytes = message(2);
        bytes.extend(message(3));
        s.write_all(&bytes).unwrap();
        let third = message(1);
        s.write_all(&third[..7]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&third[7..]).unwrap();
        let peer = s.local_addr().unwrap();
        let mut records = Vec::new();
        for _ in 0..3 {
            let e = collector.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(e.exporter, peer);
            records.push(e.records.len());
        }
        assert_eq!(records, [2, 3, 1]);
        drop(s);
        let (stats, _) = collector.shutdown();
        assert_eq!(stats.tcp.accepted, 1);
        assert_eq!(stats.tcp.messages, 3);
        assert_eq!(stats.tcp.active, 0);
        assert_eq!(stats.exporters[&peer].records, 6);
        assert_eq!(stats.exporters[&peer].templates, 0, "dropped at close");
    }

    /// RFC 7011 section 10.4.1: a session's state ends with it, the
    /// sampling rate it announced included.
    #[test]
    fn a_closed_session_forgets_its_sampling_rate() {
        // Options template 256 (scope selectorId(302)/8; selectorAlgorithm(304)/1,
        // samplingSize(309)/4, samplingPopulation(310)/4) and its record:
        // selector 5, random, 1 in 8.
        let mut sets = vec![0, 3, 0, 26, 1, 0, 0, 4, 0, 1];
        for (ie, len) in [(302u16, 8u16), (304, 1), (309, 4), (310, 4)] {
            sets.extend_from_slice(&ie.to_be_bytes());
            sets.extend_from_slice(&len.to_be_bytes());
        }
        sets.extend_from_slice(&[
            1, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 5, 3, 0, 0, 0, 1, 0, 0, 0, 8,
        ]);
        let mut m = vec![0, 10];
        m.extend_from_slice(&(16 + sets.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&sets);
        let mut config = Config::new(Vec::new());
        config.tcp.listen = vec!["127.0.0.1:0".parse().unwrap()];
        let collector = Collector::bind(config).unwrap();
        let mut s = TcpStream::connect(collector.tcp_addrs()[0]).unwrap();
        s.write_all(&m).unwrap();
        let peer = s.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let rate = loop {
            let stats = collector.stats();
            if let Some(r) = stats.exporters.get(&peer).and_then(|e| e.sampling) {
                break r;
            }
            assert!(Instant::now() < deadline, "{stats:#?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!((rate.selected, rate.population), (1, 8));
        drop(s);
        let deadline = Instant::now() + Duration::from_secs(30);
        while collector.stats().exporters[&peer].sampling.is_some() {
            assert!(
                Instant::now() < deadline,
                "sampling still known after close"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let (stats, _) = collector.shutdown();
        assert_eq!(stats.exporters[&peer].options, 1);
        assert_eq!(stats.exporters[&peer].errors.len(), 0, "{stats:#?}");
    }
}
