//! Prometheus text exposition of the counters, and a minimal HTTP server
//! answering `GET /metrics`.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::stats::{Histogram, Stats, HISTOGRAM_BOUNDS};

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    header(out, name, "histogram", help);
    let mut cumulative = 0;
    for (i, bound) in HISTOGRAM_BOUNDS.iter().enumerate() {
        cumulative += h.buckets[i];
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum {}", h.sum_seconds());
    let _ = writeln!(out, "{name}_count {}", h.count);
}

/// All counters in the Prometheus text format (version 0.0.4). Metric names
/// start with `netflow_`; per exporter ones carry an `exporter="ADDR:PORT"`
/// label.
pub fn render(stats: &Stats) -> String {
    let mut out = String::new();
    type Get = fn(&crate::ExporterStats) -> u64;
    let per_exporter: [(&str, &str, &str, Get); 13] = [
        (
            "netflow_exporter_templates",
            "gauge",
            "Templates (and options templates) known for the exporter.",
            |e| e.templates,
        ),
        (
            "netflow_exporter_packets_total",
            "counter",
            "Datagrams received from the exporter.",
            |e| e.packets,
        ),
        (
            "netflow_exporter_bytes_total",
            "counter",
            "Payload bytes received from the exporter.",
            |e| e.bytes,
        ),
        (
            "netflow_exporter_records_total",
            "counter",
            "Flow data records decoded.",
            |e| e.records,
        ),
        (
            "netflow_exporter_options_records_total",
            "counter",
            "Options data records decoded.",
            |e| e.options,
        ),
        (
            "netflow_exporter_bad_packets_total",
            "counter",
            "Datagrams that could not be decoded at all.",
            |e| e.bad_packets,
        ),
        (
            "netflow_exporter_sequence_lost_total",
            "counter",
            "Sequence numbers never received, in the version's unit.",
            |e| e.sequence.lost,
        ),
        (
            "netflow_exporter_sets_waiting",
            "gauge",
            "Data sets waiting for their template now.",
            |e| e.sets_waiting,
        ),
        (
            "netflow_exporter_sets_replayed_total",
            "counter",
            "Data sets decoded after their template arrived.",
            |e| e.sets_replayed,
        ),
        (
            "netflow_exporter_sets_dropped_total",
            "counter",
            "Data sets given up while waiting for their template.",
            |e| e.sets_dropped,
        ),
        (
            "netflow_exporter_sets_expired_total",
            "counter",
            "Data sets dropped because they waited for their template longer than the age limit.",
            |e| e.sets_expired,
        ),
        (
            "netflow_exporter_sets_evicted_total",
            "counter",
            "Data sets dropped to make room in the buffer of sets waiting for templates.",
            |e| e.sets_evicted,
        ),
        (
            "netflow_exporter_sets_over_limit_total",
            "counter",
            "Of the evicted data sets, those dropped to keep the exporter within its own byte limit of sets waiting for templates.",
            |e| e.sets_over_exporter_limit,
        ),
    ];
    for (name, kind, help, get) in per_exporter {
        header(&mut out, name, kind, help);
        for (addr, e) in &stats.exporters {
            let _ = writeln!(
                out,
                "{name}{{exporter=\"{}\"}} {}",
                escape(&addr.to_string()),
                get(e)
            );
        }
    }
    let name = "netflow_exporter_decode_errors_total";
    header(
        &mut out,
        name,
        "counter",
        "Decode errors by kind (whole datagrams and problems within decoded ones).",
    );
    for (addr, e) in &stats.exporters {
        for (kind, n) in &e.errors {
            let _ = writeln!(
                out,
                "{name}{{exporter=\"{}\",kind=\"{}\"}} {n}",
                escape(&addr.to_string()),
                escape(kind)
            );
        }
    }
    let name = "netflow_exporter_sampling_interval";
    header(
        &mut out,
        name,
        "gauge",
        "Packet sampling the exporter announced: 1 in this many packets (population / selected).",
    );
    for (addr, e) in &stats.exporters {
        if let Some(r) = &e.sampling {
            let _ = writeln!(
                out,
                "{name}{{exporter=\"{}\",algorithm=\"{}\"}} {}",
                escape(&addr.to_string()),
                escape(r.algorithm.name()),
                r.factor()
            );
        }
    }
    let name = "netflow_denied_by_source_total";
    header(
        &mut out,
        name,
        "counter",
        "Datagrams dropped by the allowlist, per source address.",
    );
    for (addr, n) in &stats.denied {
        let _ = writeln!(
            out,
            "{name}{{source=\"{}\"}} {n}",
            escape(&addr.to_string())
        );
    }
    let name = "netflow_rate_limited_by_source_total";
    header(
        &mut out,
        name,
        "counter",
        "Datagrams dropped by the per-exporter rate limit, per source address.",
    );
    for (addr, n) in &stats.rate_limited {
        let _ = writeln!(
            out,
            "{name}{{source=\"{}\"}} {n}",
            escape(&addr.to_string())
        );
    }
    let name = "netflow_template_evictions_total";
    header(
        &mut out,
        name,
        "counter",
        "Least recently used templates (kind=template) or template scopes of an exporter and domain (kind=scope) evicted to stay within the template cache limits.",
    );
    let c = &stats.global.template_cache;
    for (kind, n) in [
        ("template", c.evicted_templates),
        ("scope", c.evicted_scopes),
    ] {
        let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
    }
    type GetSocket = fn(&crate::SocketStats) -> u64;
    let per_socket: [(&str, &str, GetSocket); 4] = [
        (
            "netflow_socket_datagrams_total",
            "Datagrams received on the listen socket.",
            |s| s.datagrams,
        ),
        (
            "netflow_socket_coalesced_receives_total",
            "Receives on the listen socket that held several datagrams of one source, coalesced by the kernel (UDP GRO); each datagram is still decoded on its own.",
            |s| s.coalesced,
        ),
        (
            "netflow_socket_rxq_ovfl_drops_total",
            "Datagrams the kernel dropped on the listen socket (receive buffer full), from the SO_RXQ_OVFL count on later datagrams.",
            |s| s.rxq_ovfl_drops,
        ),
        (
            "netflow_socket_proc_drops_total",
            "Datagrams the kernel dropped on the listen socket (receive buffer full), from /proc/net/udp.",
            |s| s.proc_drops,
        ),
    ];
    for (name, help, get) in per_socket {
        header(&mut out, name, "counter", help);
        for (addr, s) in &stats.sockets {
            let _ = writeln!(
                out,
                "{name}{{socket=\"{}\"}} {}",
                escape(&addr.to_string()),
                get(s)
            );
        }
    }
    let g = &stats.global;
    let globals: [(&str, &str, &str, u64); 31] = [
        (
            "netflow_socket_drops_total",
            "counter",
            "Datagrams the kernel dropped on the listen sockets (receive buffer full).",
            g.socket_drops,
        ),
        (
            "netflow_rxq_ovfl_drops_total",
            "counter",
            "Datagrams the kernel dropped on the listen sockets, from their SO_RXQ_OVFL counts.",
            g.rxq_ovfl_drops,
        ),
        ("netflow_workers", "gauge", "Decode workers.", g.workers),
        (
            "netflow_queue_full_total",
            "counter",
            "Times a receive thread found a decode worker's queue full and waited.",
            g.queue_full,
        ),
        (
            "netflow_exporters",
            "gauge",
            "Exporters seen.",
            stats.exporters.len() as u64,
        ),
        (
            "netflow_datagrams_total",
            "counter",
            "Datagrams received and decoded or counted as bad.",
            g.datagrams,
        ),
        (
            "netflow_denied_total",
            "counter",
            "Datagrams dropped before decoding: source not in the allowlist.",
            g.denied,
        ),
        (
            "netflow_exporters_evicted_total",
            "counter",
            "Exporter entries removed (least recently seen first) to stay within the exporter limit; their counters stay in the totals.",
            g.exporters_evicted,
        ),
        (
            "netflow_rate_limited_total",
            "counter",
            "Datagrams dropped before decoding: their source was over the per-exporter rate limit.",
            g.rate_limited,
        ),
        (
            "netflow_templates_in_evicted_scopes_total",
            "counter",
            "Templates that went with template scopes evicted from a decode worker's cache.",
            g.template_cache.templates_in_evicted_scopes,
        ),
        (
            "netflow_template_rejections_total",
            "counter",
            "Templates or scopes refused by a template cache limit of 0.",
            g.template_cache.rejected,
        ),
        (
            "netflow_receive_errors_total",
            "counter",
            "Socket receive errors.",
            g.receive_errors,
        ),
        (
            "netflow_queue_depth",
            "gauge",
            "Datagrams queued between the sockets and the decoder.",
            g.queued,
        ),
        (
            "netflow_sink_errors_total",
            "counter",
            "Sink write, flush or close failures.",
            g.sink_errors,
        ),
        (
            "netflow_sink_written_total",
            "counter",
            "Lines (or items) the sink has written.",
            g.sink.written,
        ),
        (
            "netflow_sink_buffered",
            "gauge",
            "Lines the sink holds, not yet written.",
            g.sink.buffered,
        ),
        (
            "netflow_sink_bytes_total",
            "counter",
            "Bytes the sink has written.",
            g.sink.bytes,
        ),
        (
            "netflow_sink_dropped_total",
            "counter",
            "Lines the sink gave up after write errors.",
            g.sink.dropped,
        ),
        (
            "netflow_sink_dropped_records_total",
            "counter",
            "Records in the lines the sink gave up after write errors.",
            g.sink.dropped_records,
        ),
        (
            "netflow_sink_rotations_total",
            "counter",
            "Output files rotated.",
            g.sink.rotations,
        ),
        (
            "netflow_tcp_sessions_accepted_total",
            "counter",
            "IPFIX-over-TCP sessions accepted.",
            stats.tcp.accepted,
        ),
        (
            "netflow_tcp_sessions_active",
            "gauge",
            "IPFIX-over-TCP sessions open now.",
            stats.tcp.active,
        ),
        (
            "netflow_tcp_sessions_refused_total",
            "counter",
            "TCP connections closed at once: the session limit was reached.",
            stats.tcp.refused,
        ),
        (
            "netflow_tcp_sessions_denied_total",
            "counter",
            "TCP connections closed at once: peer not in the allowlist.",
            stats.tcp.denied,
        ),
        (
            "netflow_tcp_sessions_closed_on_error_total",
            "counter",
            "TCP sessions closed on a framing error (not IPFIX, length under 16, truncated).",
            stats.tcp.closed_on_error,
        ),
        (
            "netflow_tcp_sessions_idle_timeouts_total",
            "counter",
            "TCP sessions closed after the idle timeout.",
            stats.tcp.idle_timeouts,
        ),
        (
            "netflow_tcp_messages_total",
            "counter",
            "IPFIX messages read from TCP sessions.",
            stats.tcp.messages,
        ),
        (
            "netflow_tcp_io_errors_total",
            "counter",
            "TCP accept and read errors.",
            stats.tcp.io_errors,
        ),
        (
            "netflow_tcp_tls_errors_total",
            "counter",
            "TLS sessions that failed (handshake, certificate, record).",
            stats.tcp.tls_errors,
        ),
        (
            "netflow_tcp_rate_paused_total",
            "counter",
            "IPFIX messages a TCP session held back (not reading) until the exporter was under the rate limit again.",
            stats.tcp.rate_paused,
        ),
        (
            "netflow_tcp_rate_paused_seconds_total",
            "counter",
            "Time TCP sessions spent paused by the rate limit.",
            stats.tcp.rate_paused_ms / 1000,
        ),
    ];
    for (name, kind, help, v) in globals {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    histogram(
        &mut out,
        "netflow_sink_flush_duration_seconds",
        "Time to compress and write one buffered batch (file sink flush).",
        &g.sink.flush_seconds,
    );
    histogram(
        &mut out,
        "netflow_queue_wait_seconds",
        "Time a receive thread waited for room in a full decode queue (back-pressure), per wait.",
        &g.queue_wait,
    );
    histogram(
        &mut out,
        "netflow_sink_wait_seconds",
        "Time a decode worker spent handing one datagram's exports to the sink (its lock and writes; a slow sink shows here).",
        &g.sink_wait,
    );
    out
}

/// Serves [`render`] over HTTP until `stop` is set.
pub(crate) struct MetricsServer {
    pub(crate) listener: TcpListener,
    pub(crate) stats: Arc<Mutex<Stats>>,
    pub(crate) queued: Arc<AtomicU64>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) drops: Arc<crate::drops::SocketDrops>,
}

impl MetricsServer {
    pub(crate) fn run(self) {
        if let Err(e) = self.listener.set_nonblocking(true) {
            log::error!("metrics: {e}");
            return;
        }
        while !self.stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(e) = self.answer(stream) {
                        log::debug!("metrics: {peer}: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    log::warn!("metrics: accept: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn answer(&self, mut stream: TcpStream) -> io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&req);
        let mut words = line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("");
        let (status, body) = if method != "GET" && method != "HEAD" {
            ("405 Method Not Allowed", "GET only\n".to_string())
        } else if path == "/metrics" || path == "/" {
            self.drops.refresh(&self.stats);
            let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
            s.global.queued = self.queued.load(Ordering::Relaxed);
            ("200 OK", render(&s))
        } else {
            ("404 Not Found", "not found; try /metrics\n".to_string())
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        if method != "HEAD" {
            stream.write_all(body.as_bytes())?;
        }
        stream.flush()
    }
}
