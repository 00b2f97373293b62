//! `netflow collector`: receive exports over UDP and store them as gzip JSON lines.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use netflow_collector::{
    Cidr, Collector, ColumnSink, Config, ExporterRateLimit, FileSink, NamePattern, Rotation, Sink,
    TcpConfig, TlsConfig, DEFAULT_COMPRESSION_LEVEL,
};
use netflow_store::Format;
use serde::Deserialize;

const LONG_ABOUT: &str = "\
Receive NetFlow v1/v5/v7/v9 and IPFIX exports over UDP and append them to a
gzip file of JSON lines (the Python original's `python3 -m netflow.collector`).

Templates are kept per exporter (address and port) and observation domain /
source ID. Data that arrives before its template waits (bounded) and is
written when the template comes. A datagram that cannot be decoded is counted
per exporter with the reason and logged at a limited rate; the collector goes
on.

The file is a concatenation of gzip members, one appended at least every
second: read it with zcat, Python's gzip module or any multi-member gzip
reader. A crash (even kill -9) loses at most the last second and never
damages what was written. An existing file is appended to.

--format original (default): one line per export datagram,
  {\"<receive ts>\": {\"client\": [host, port], \"header\": {...}, \"flows\": [...]}}
  as the Python original writes it.
--format flows: one flat JSON object per flow or options record.
--format columns: a binary block-columnar file of normalized records (a
  block per second or per 65,536 records, LZ4, checksummed; default name
  <unix-seconds>.nfcol),
  for `netflow analyzer` on many flows: every field of every record is kept
  (core columns plus an `extra` JSON column). SIGTERM writes everything and
  a footer; after kill -9 the file is readable up to its last complete
  block, and a restart on the same file cuts a torn last block. Not gzip:
  --compression-level does not apply. See the README, \"Columns format\".

--allow CIDR (repeatable): only exporters in these ranges (IPv4 or IPv6,
  `10.0.0.0/8`, `2001:db8::/32`, or one address) are decoded; datagrams from
  other sources are dropped before decoding and counted (`denied` in the
  status and total lines, and a `denied ADDR packets N` line per source).

--metrics ADDR:PORT: serve the counters as Prometheus text at
  http://ADDR:PORT/metrics (netflow_* metrics: per exporter packets, bytes,
  records, decode errors by kind, sequence losses, sets waiting, templates,
  sampling interval, sets expired/evicted; per socket datagrams and kernel
  drops (SO_RXQ_OVFL and /proc); globally datagrams, denied, queue depth,
  socket_drops, sink errors, records dropped after write errors, and
  histograms of the file flush duration, the receive thread's waits on a
  full decode queue and the decode workers' waits on the output).

--tcp-listen ADDR:PORT (repeatable): also accept IPFIX over TCP (RFC 7011
  10.4; IPFIX only: a message whose version is not 10, or whose length is
  under 16, closes that session, counted as `tcp_not_ipfix` /
  `tcp_bad_length`). Each connection is its own exporter (peer address and
  port) and its own template scope: templates are dropped when it closes. At
  most --tcp-max-sessions (256) at once, more are closed and counted; --allow
  applies at accept; a session idle for --tcp-idle-timeout (10m) is closed.
  Nothing is ever sent back. --tls-cert FILE --tls-key FILE (PEM): TLS on
  those addresses (RFC 7011 10.4.2; rustls, TLS 1.2/1.3); --tls-client-ca
  FILE: exporters must present a certificate signed by one of these CAs. A
  failed handshake closes the session (`tls_errors`). A `tcp accepted N active N refused N denied N
  closed_on_error N idle_timeouts N messages N io_errors N tls_errors N
  rate_paused N rate_paused_ms N` line follows the summary.

--rotate DURATION (`30s`, `5m`, `1h`, `1d`) and/or --rotate-size SIZE (`100M`,
  `1G`, `512K`, bytes; powers of 1024): write FILE's name with the Unix time
  the file was opened inserted before `.gz` (`-o flows.gz`:
  flows.1700000000.gz, flows.1700000060.gz, ...; `-N` is added when two are
  opened in the same second). At each flush (every second) where the file is
  old or big enough and not empty, it is synced and closed and the next one
  opened.

--workers N (default 1): N decode threads, each with its own templates and
  sequence tracking; each exporter (address and port) is always decoded by
  the same one (a hash of its address), so its templates and sequence order
  hold. There is still one output file. `queue_full` in the status and total
  lines counts the times a worker's queue was full (the receive thread
  waited).

--compression-level N (0-9, default 1): the deflate level of the gzip
  members. 1 compresses ~4 times faster than 6 (gzip's default) into files
  about twice as large (1/4.6 of the lines' size, vs 1/9.9; 3: 1/7.5 at
  half the speed of 1); 0 stores the lines uncompressed, still as gzip
  members (zcat, Python's gzip and `netflow analyze` read them). The
  compressing runs in a thread of its own, beside the decoding.

--config FILE: settings from a TOML file, with the long flag names as keys
  (host, port, listen, file, format, debug, stats, allow, metrics, rotate,
  rotate-size, rotate-name, workers, receive-buffer, on-write-error,
  compression-level, tcp-listen, tcp-max-sessions, tcp-idle-timeout, tls-cert, tls-key,
  tls-client-ca, no-udp, rate-limit, rate-limit-burst, max-exporters, max-template-scopes,
  max-templates-per-scope); flags given on the command line override it. Example:

    listen = [\"0.0.0.0:2055\", \"[::]:4739\"]
    file = \"/var/lib/netflow/flows.gz\"
    format = \"flows\"
    allow = [\"10.0.0.0/8\", \"2001:db8::/32\"]
    metrics = \"127.0.0.1:9155\"
    rotate = \"1h\"
    rotate-size = \"1G\"
    stats = 10
    workers = 4

--rate-limit N [--rate-limit-burst B]: each exporter address (all its
  ports together) may send N datagrams per second on average, B at once
  after a quiet time (default B = N). Over UDP the datagrams beyond it are
  dropped before decoding and counted (`rate_limited` in the status and
  total lines, a `rate_limited ADDR packets N` line per source, the
  netflow_rate_limited_* metrics): one flooding exporter, or someone
  spoofing its address, cannot take the decode time of the others. Over TCP
  nothing is dropped: the session stops reading until the exporter is under
  the limit, and TCP slows the exporter down (`rate_paused` in the tcp line).

--max-exporters N (default 65536): exporters (address and port) with
  counters of their own. Beyond it the least recently seen eighth is
  removed: their counts stay in the totals (`exporters_evicted` in the total
  line, netflow_exporters_evicted_total). A flood of spoofed sources, or
  many short TCP sessions, cannot grow the collector's memory without end.

--max-template-scopes N (default 65536), --max-templates-per-scope N
  (default 4096): the template cache of each decode worker. Over a limit,
  the least recently used template (or scope: an exporter, protocol and
  domain, with its templates) is evicted; its data then waits for the
  template to be sent again, like data of an unknown template. Evictions
  are counted: a `templates evicted N scopes_evicted N
  templates_in_evicted_scopes N rejected N` line before the total, and
  netflow_template_evictions_total{kind=\"template\"|\"scope\"}.

--rotate-name PATTERN: name the files by a strftime pattern (UTC) instead,
  in the directory of FILE: `-o /data/x.gz --rotate-name '%Y%m%d-%H%M%S.gz'`
  writes /data/20240101-120000.gz, ... (`-N` before `.gz` when the name is
  taken). With or without --rotate: without, a new name only at SIGHUP.
  Rotated files are created at their first write: an idle collector (or a
  kill -9 right after a rotation) leaves no empty file.

Disk full or unwritable output: the error is logged (`cannot write FILE:
  ...; N lines (N records, N bytes) kept in memory, trying again in N s`),
  `write_errors` counts the failed attempts, and the collector keeps
  receiving and counting. --on-write-error retry (default): try again after
  1 s, 2 s, 4 s ... up to 30 s, and resume writing once the disk has room
  (up to 64 MiB of lines are kept meanwhile; beyond that they are dropped
  and counted: `dropped_lines`, `dropped_records` in the total line).
  --on-write-error exit: stop at the first failed write, print the summary
  and exit with status 1.

SIGHUP: at the next flush (within a second), close the file and open it again
  (after logrotate moved it), or with --rotate/--rotate-size start the next
  file.

SIGINT or SIGTERM: stop receiving (what the socket holds is still read),
flush and close the file, print a summary per exporter on standard error,
exit 0.

Standard error: `listening on ADDR (receive buffer N bytes)` per socket at the
start; with --stats (or -D, every 10 s) a status line

  status exporters N packets N records N options N bytes N errors N waiting N dropped N lost N written N buffered N queued N queue_full N queue_wait_ms N sink_wait_ms N flush_avg_us N socket_drops N rxq_drops N sink_errors N denied N rate_limited N

and at the end one line per exporter, then a total:

  exporter 127.0.0.1:40001 version 9 packets 100 records 2400 options 10 bytes 140000 errors 0 waiting 0 replayed 0 dropped 0 expired 0 evicted 0 over_limit 0 lost 0 packets templates 3 sampling 1/8 random
  total exporters 1 packets 100 records 2400 options 10 bytes 140000 errors 0 waiting 0 dropped 0 written 100 write_errors 0 dropped_lines 0 dropped_records 0 receive_errors 0 denied 0 rotations 0 workers 1 queue_full 0 queue_wait_ms 0 sink_wait_ms 12 socket_drops 0 rxq_drops 0 exporters_evicted 0 rate_limited 0

  records   flow data records decoded; options: options data records
  errors    undecodable datagrams and problems within decoded ones, by kind
  waiting   data sets still waiting for their template; replayed: decoded
            after it came; dropped: given up, expired (waited more than
            10 minutes; checked every second even with no traffic) plus
            evicted (buffer full); over_limit: of the evicted, those
            dropped because their exporter held its own limit (16 MiB of
            sets waiting). Sets still waiting at the end get a line
            `waiting ADDR sets N bytes N never written, templates never
            received: v9 domain D template T (N sets), ...` after their
            exporter's line
  lost      sequence numbers never received, in the version's unit
            (v5/v7 flows, v9 packets, IPFIX records)
  templates templates (and options templates) known for the exporter
  sampling  the packet sampling it announced (v5 header, v9/IPFIX options
            records), `-` when none
  written   lines written to the file; buffered: not yet flushed
  denied    datagrams dropped by --allow; rate_limited: by --rate-limit
  socket_drops  datagrams the kernel dropped on the sockets, receive
            buffer full (Linux, /proc/net/udp; raise net.core.rmem_max or
            --receive-buffer); rxq_drops: the same drops as the kernel
            reports them with the datagrams received after them (SO_RXQ_OVFL)
  queue_full  times the receive thread found a decode queue full and
            waited; queue_wait_ms: the total time it waited
  sink_wait_ms  total time the decode workers spent handing exports to the
            output (its lock and writes): a slow disk shows here
  flush_avg_us  mean time to compress and write one batch (a gzip member)

Log messages (warnings, and with -D debug messages) go to standard error as
`<time> - <LEVEL> - <message>`.";

const EXAMPLES: &str = "\
Examples:
  netflow collector
      listen on 0.0.0.0:2055, write <unix-seconds>.gz
  netflow collector --host :: -p 4739 -o ipfix.gz --format flows
      IPv6 and IPv4 (dual-stack) on port 4739, one object per flow
  netflow collector --listen 10.0.0.1:2055 --listen 10.0.0.1:4739 --stats 5
      two sockets, a status line every 5 seconds
  netflow collector --allow 10.0.0.0/8 --metrics 127.0.0.1:9155 -o flows.gz --rotate 1h
      only exporters in 10/8, Prometheus metrics, flows.<unix-seconds>.gz hourly
  netflow collector --config /etc/netflow/collector.toml --stats 5
      settings from a file, a status line every 5 seconds";

/// What to do when the output cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnWriteError {
    /// Keep receiving, keep the lines in memory (up to 64 MiB) and try again
    /// after 1 s, 2 s, 4 s ... 30 s
    Retry,
    /// Flush what can be, print the summary and exit with status 1
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One line per export datagram, as the Python original
    Original,
    /// One flat object per record
    Flows,
    /// Binary block-columnar file (`.nfcol`), for fast analysis
    Columns,
}

#[derive(Debug, Args)]
#[command(
    about = "Receive NetFlow/IPFIX exports over UDP into a gzip JSON-lines file",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES
)]
pub struct CollectorArgs {
    /// Address to listen on; an IPv6 address listens on IPv6 (`::`: IPv6 and IPv4) [default: 0.0.0.0]
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,

    /// UDP port to listen on (0: any free port, shown at the start) [default: 2055]
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Listen on ADDR:PORT (repeatable; replaces --host and --port)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<String>,

    /// Output file, appended to (gzip JSON lines; --format columns: a columns file) [default: <unix-seconds>.gz, .nfcol]
    #[arg(short = 'o', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Line layout of the output file [default: original]
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    /// Debug logging, and a status line every 10 s unless --stats says otherwise
    #[arg(short = 'D', long)]
    pub debug: bool,

    /// Print a status line to standard error every SECONDS
    #[arg(long, value_name = "SECONDS", value_parser = crate::generate::parse_positive)]
    pub stats: Option<f64>,

    /// Accept exports only from sources in CIDR (repeatable; IPv4 or IPv6); others are counted and dropped
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub allow: Vec<Cidr>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,

    /// Start a new file every DURATION (30s, 5m, 1h, 1d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub rotate: Option<Duration>,

    /// Start a new file when the current one reaches SIZE (100M, 1G, 512K, bytes)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub rotate_size: Option<u64>,

    /// When the output cannot be written (disk full, unwritable path) [default: retry]
    #[arg(long, value_enum, value_name = "WHAT")]
    pub on_write_error: Option<OnWriteError>,

    /// Name rotated files by a strftime pattern (UTC) in FILE's directory, e.g. '%Y%m%d-%H%M%S.gz'
    #[arg(long, value_name = "PATTERN", value_parser = parse_name_pattern)]
    pub rotate_name: Option<NamePattern>,

    /// Receive buffer per socket (SO_RCVBUFFORCE as root, else SO_RCVBUF, capped by net.core.rmem_max) [default: 32M]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub receive_buffer: Option<u64>,

    /// Decode workers; an exporter's datagrams always go to the same one [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Deflate level of the gzip members: 0 (stored) to 9 (smallest) [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: Option<u32>,

    /// Read settings from a TOML file (keys: the long flag names); flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Also accept IPFIX over TCP on ADDR:PORT (repeatable; RFC 7011 10.4, IPFIX only)
    #[arg(long, value_name = "ADDR:PORT")]
    pub tcp_listen: Vec<String>,

    /// Do not listen on UDP at all (with --tcp-listen: TCP/TLS only)
    #[arg(long, conflicts_with_all = ["listen", "host", "port"])]
    pub no_udp: bool,

    /// TCP sessions open at once at most; more are closed and counted [default: 256]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tcp_max_sessions: Option<u32>,

    /// Close a TCP session that sent nothing for DURATION (30s, 10m, 1h) [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub tcp_idle_timeout: Option<Duration>,

    /// TLS on the --tcp-listen addresses: the server certificate chain (PEM); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require exporters' client certificates signed by these CAs (PEM)
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// Per exporter address: at most N datagrams (UDP; more are dropped and counted) or messages (TCP; the session waits) per second
    #[arg(long, value_name = "N", value_parser = crate::generate::parse_positive)]
    pub rate_limit: Option<f64>,

    /// With --rate-limit: how many may come at once after a quiet time [default: N of --rate-limit]
    #[arg(long, value_name = "N", requires = "rate_limit", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: Option<u32>,

    /// Exporters with counters of their own; beyond, the least recently seen go (their counts stay in the totals) [default: 65536]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_exporters: Option<u32>,

    /// Template scopes (exporter, protocol, domain) kept per decode worker; the least recently used goes first [default: 65536]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_template_scopes: Option<u32>,

    /// Templates kept per scope; the least recently used goes first [default: 4096]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_templates_per_scope: Option<u32>,
}

fn parse_name_pattern(s: &str) -> Result<NamePattern, String> {
    NamePattern::new(s)
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    s.parse()
}

/// `30s`, `5m`, `1h`, `1d` (a bare number: seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(format!("{s}: expected a duration such as 30s, 5m, 1h, 1d")),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Duration::from_secs_f64(v * mult)),
        _ => Err(format!(
            "{s}: expected a duration greater than 0, such as 30s, 5m, 1h"
        )),
    }
}

/// `100M`, `1G`, `512K`, `1000` (bytes; K/M/G/T are powers of 1024, an optional `B`/`iB` follows).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches("IB").trim_end_matches('B');
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{s}: expected a size such as 100M, 1G, 512K")),
    };
    match num.parse::<u64>() {
        Ok(v) if v > 0 => v
            .checked_mul(1 << shift)
            .ok_or_else(|| format!("{s}: too large")),
        _ => Err(format!("{s}: expected a size greater than 0, such as 100M")),
    }
}

/// A number or a string in the TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(f64),
    Text(String),
}

impl NumOrText {
    fn text(&self) -> String {
        match self {
            NumOrText::Num(n) => n.to_string(),
            NumOrText::Text(t) => t.clone(),
        }
    }
}

/// The `--config` file: the same settings, keyed by the long flag names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSettings {
    host: Option<String>,
    port: Option<u16>,
    listen: Option<Vec<String>>,
    file: Option<PathBuf>,
    format: Option<String>,
    debug: Option<bool>,
    stats: Option<f64>,
    allow: Option<Vec<String>>,
    metrics: Option<String>,
    rotate: Option<NumOrText>,
    rotate_size: Option<NumOrText>,
    workers: Option<u16>,
    receive_buffer: Option<NumOrText>,
    on_write_error: Option<String>,
    rotate_name: Option<String>,
    compression_level: Option<u32>,
    tcp_listen: Option<Vec<String>>,
    no_udp: Option<bool>,
    tcp_max_sessions: Option<u32>,
    tcp_idle_timeout: Option<NumOrText>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    rate_limit: Option<f64>,
    rate_limit_burst: Option<u32>,
    max_exporters: Option<u32>,
    max_template_scopes: Option<u32>,
    max_templates_per_scope: Option<u32>,
}

/// The settings in force: the command line over the config file over the defaults.
#[derive(Debug)]
struct Settings {
    listen: Vec<SocketAddr>,
    file: Option<PathBuf>,
    /// A line layout, or `None` for the columns format.
    format: Option<Format>,
    debug: bool,
    stats: Option<f64>,
    allow: Vec<Cidr>,
    metrics: Option<SocketAddr>,
    rotation: Rotation,
    workers: u16,
    receive_buffer: Option<u64>,
    on_write_error: OnWriteError,
    rotate_name: Option<NamePattern>,
    compression_level: u32,
    tcp: TcpConfig,
    rate_limit: Option<ExporterRateLimit>,
    template_limits: netflow::Limits,
    max_exporters: Option<usize>,
}

fn settings(args: &CollectorArgs) -> Result<Settings, String> {
    let f = match &args.config {
        None => FileSettings::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            toml::from_str::<FileSettings>(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    let in_file = |key: &str, e: String| format!("config file, {key}: {e}");
    let host = args
        .host
        .clone()
        .or(f.host)
        .unwrap_or_else(|| "0.0.0.0".into());
    let port = args.port.or(f.port).unwrap_or(2055);
    // --listen on the command line, else --host/--port on it, else the
    // file's `listen`, else its host and port (and the defaults).
    let file_listen = f.listen.unwrap_or_default();
    let no_udp = args.no_udp || f.no_udp.unwrap_or(false);
    let listen = if no_udp {
        Vec::new()
    } else if !args.listen.is_empty() {
        listen_addresses(&args.listen)?
    } else if args.host.is_none() && args.port.is_none() && !file_listen.is_empty() {
        listen_addresses(&file_listen)?
    } else {
        resolve(&host, port)?
    };
    let format = match (args.format, f.format.as_deref()) {
        (Some(FormatArg::Flows), _) | (None, Some("flows")) => Some(Format::Flows),
        (Some(FormatArg::Original), _) | (None, Some("original") | None) => Some(Format::Original),
        (Some(FormatArg::Columns), _) | (None, Some("columns")) => None,
        (None, Some(other)) => {
            return Err(in_file(
                "format",
                format!("{other}: expected original, flows or columns"),
            ))
        }
    };
    let stats = match args.stats.or(f.stats) {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            return Err(in_file("stats", "expected a number greater than 0".into()))
        }
        s => s,
    };
    let allow = if args.allow.is_empty() {
        f.allow
            .unwrap_or_default()
            .iter()
            .map(|c| c.parse::<Cidr>().map_err(|e| in_file("allow", e)))
            .collect::<Result<_, _>>()?
    } else {
        args.allow.clone()
    };
    let metrics = match args.metrics.as_ref().or(f.metrics.as_ref()) {
        None => None,
        Some(m) => Some(
            parse_addr_port("--metrics", m)?
                .into_iter()
                .next()
                .ok_or_else(|| format!("--metrics {m}: no address"))?,
        ),
    };
    let interval = match (args.rotate, &f.rotate) {
        (Some(d), _) => Some(d),
        (None, Some(r)) => Some(parse_duration(&r.text()).map_err(|e| in_file("rotate", e))?),
        (None, None) => None,
    };
    let size = match (args.rotate_size, &f.rotate_size) {
        (Some(s), _) => Some(s),
        (None, Some(r)) => Some(parse_size(&r.text()).map_err(|e| in_file("rotate-size", e))?),
        (None, None) => None,
    };
    let receive_buffer = match (args.receive_buffer, &f.receive_buffer) {
        (Some(s), _) => Some(s),
        (None, Some(r)) => Some(parse_size(&r.text()).map_err(|e| in_file("receive-buffer", e))?),
        (None, None) => None,
    };
    let on_write_error = match (args.on_write_error, f.on_write_error.as_deref()) {
        (Some(w), _) => w,
        (None, None | Some("retry")) => OnWriteError::Retry,
        (None, Some("exit")) => OnWriteError::Exit,
        (None, Some(other)) => {
            return Err(in_file(
                "on-write-error",
                format!("{other}: expected retry or exit"),
            ))
        }
    };
    let rotate_name = match (&args.rotate_name, &f.rotate_name) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) => Some(NamePattern::new(p).map_err(|e| in_file("rotate-name", e))?),
        (None, None) => None,
    };
    let compression_level = match args.compression_level.or(f.compression_level) {
        None => DEFAULT_COMPRESSION_LEVEL,
        Some(n @ 0..=9) => n,
        Some(n) => {
            return Err(in_file(
                "compression-level",
                format!("{n}: expected 0 to 9"),
            ))
        }
    };
    let mut tcp = TcpConfig {
        listen: if !args.tcp_listen.is_empty() {
            tcp_listen_addresses(&args.tcp_listen)?
        } else {
            tcp_listen_addresses(&f.tcp_listen.unwrap_or_default())?
        },
        ..TcpConfig::default()
    };
    match args.tcp_max_sessions.or(f.tcp_max_sessions) {
        Some(0) => {
            return Err(in_file(
                "tcp-max-sessions",
                "expected a number greater than 0".into(),
            ))
        }
        Some(n) => tcp.max_sessions = n as usize,
        None => {}
    }
    match (args.tcp_idle_timeout, &f.tcp_idle_timeout) {
        (Some(d), _) => tcp.idle_timeout = d,
        (None, Some(t)) => {
            tcp.idle_timeout =
                parse_duration(&t.text()).map_err(|e| in_file("tcp-idle-timeout", e))?
        }
        (None, None) => {}
    }
    let client_ca = args.tls_client_ca.clone().or(f.tls_client_ca);
    tcp.tls = match (
        args.tls_cert.clone().or(f.tls_cert),
        args.tls_key.clone().or(f.tls_key),
    ) {
        (Some(cert), Some(key)) => Some(TlsConfig {
            cert,
            key,
            client_ca,
        }),
        (None, None) if client_ca.is_none() => None,
        _ => return Err("TLS needs both --tls-cert and --tls-key (tls-cert, tls-key)".into()),
    };
    if no_udp && tcp.listen.is_empty() {
        return Err("--no-udp leaves nothing to listen on: add --tcp-listen".into());
    }
    if tcp.tls.is_some() && tcp.listen.is_empty() {
        return Err("--tls-cert applies to --tcp-listen addresses: none given".into());
    }
    let rate_limit = match (
        args.rate_limit.or(f.rate_limit),
        args.rate_limit_burst.or(f.rate_limit_burst),
    ) {
        (Some(n), _) if !(n.is_finite() && n > 0.0) => {
            return Err(in_file(
                "rate-limit",
                "expected a number greater than 0".into(),
            ))
        }
        (Some(_), Some(0)) => {
            return Err(in_file(
                "rate-limit-burst",
                "expected a number greater than 0".into(),
            ))
        }
        (Some(n), burst) => {
            let mut limit = ExporterRateLimit::per_second(n);
            if let Some(b) = burst {
                limit.burst = b;
            }
            Some(limit)
        }
        (None, Some(_)) => return Err("rate-limit-burst needs rate-limit".into()),
        (None, None) => None,
    };
    let mut template_limits = netflow::Limits::default();
    match args.max_template_scopes.or(f.max_template_scopes) {
        Some(0) => {
            return Err(in_file(
                "max-template-scopes",
                "expected a number greater than 0".into(),
            ))
        }
        Some(n) => template_limits.max_scopes = n as usize,
        None => {}
    }
    match args.max_templates_per_scope.or(f.max_templates_per_scope) {
        Some(n) if n == 0 || n > 65_536 => {
            return Err(in_file(
                "max-templates-per-scope",
                format!("{n}: expected 1 to 65536"),
            ))
        }
        Some(n) => template_limits.max_templates_per_scope = n as usize,
        None => {}
    }
    let max_exporters = match args.max_exporters.or(f.max_exporters) {
        Some(0) => {
            return Err(in_file(
                "max-exporters",
                "expected a number greater than 0".into(),
            ))
        }
        n => n.map(|n| n as usize),
    };
    Ok(Settings {
        max_exporters,
        rate_limit,
        template_limits,
        tcp,
        compression_level,
        receive_buffer,
        on_write_error,
        rotate_name,
        listen,
        file: args.file.clone().or(f.file),
        format,
        debug: args.debug || f.debug.unwrap_or(false),
        stats,
        allow,
        metrics,
        rotation: Rotation { interval, size },
        workers: match args.workers.or(f.workers).unwrap_or(1) {
            0 => {
                return Err(in_file(
                    "workers",
                    "expected a number greater than 0".into(),
                ))
            }
            n => n,
        },
    })
}

/// `<time> - <LEVEL> - <message>` on standard error.
struct StderrLogger {
    level: log::LevelFilter,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }
    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARNING",
            log::Level::Info => "INFO",
            log::Level::Debug | log::Level::Trace => "DEBUG",
        };
        let _ = writeln!(io::stderr(), "{} - {level} - {}", asctime(), record.args());
    }
    fn flush(&self) {}
}

/// UTC `YYYY-MM-DD HH:MM:SS,mmm`.
fn asctime() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02},{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_millis()
    )
}

fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    (bare, port)
        .to_socket_addrs()
        .map(|a| a.take(1).collect())
        .map_err(|e| format!("cannot resolve --host {host}: {e}"))
}

/// `ADDR:PORT` (`[v6]:PORT`, or a host name) for `flag`.
fn parse_addr_port(flag: &str, l: &str) -> Result<Vec<SocketAddr>, String> {
    match l.parse::<SocketAddr>() {
        Ok(a) => Ok(vec![a]),
        Err(_) => {
            let (host, port) = l
                .rsplit_once(':')
                .ok_or_else(|| format!("{flag} {l}: expected ADDR:PORT"))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{flag} {l}: bad port"))?;
            resolve(host, port)
        }
    }
}

fn tcp_listen_addresses(listen: &[String]) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for l in listen {
        out.extend(parse_addr_port("--tcp-listen", l)?);
    }
    Ok(out)
}

fn listen_addresses(listen: &[String]) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for l in listen {
        out.extend(parse_addr_port("--listen", l)?);
    }
    Ok(out)
}

/// Set by the SIGHUP handler.
#[cfg(unix)]
static HANGUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_hangup(_: libc::c_int) {
    HANGUP.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// SIGHUP sets [`HANGUP`] (replacing ctrlc's handler, which would stop).
#[cfg(unix)]
fn handle_hangup() -> io::Result<()> {
    // SAFETY: the handler only stores to an atomic (async-signal-safe); the
    // sigaction struct is zero-initialised and then filled in.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_hangup as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(unix)]
fn take_hangup() -> bool {
    HANGUP.swap(false, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(not(unix))]
fn handle_hangup() -> io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn take_hangup() -> bool {
    false
}

pub fn run(args: &CollectorArgs) -> ExitCode {
    let fail = |msg: String| {
        let _ = writeln!(io::stderr(), "netflow collector: {msg}");
        ExitCode::from(1)
    };
    let settings = match settings(args) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let level = if settings.debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { level }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
    if settings.listen.is_empty() && settings.tcp.listen.is_empty() {
        return fail("no address to listen on".into());
    }
    // Before the first allocation of the sinks: freed buffers stay in the
    // heap for the next block instead of being mapped and faulted in again.
    netflow_collector::keep_freed_memory();
    let path = settings.file.clone().unwrap_or_else(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match settings.format {
            Some(_) => PathBuf::from(format!("{secs}.gz")),
            None => PathBuf::from(format!("{secs}.nfcol")),
        }
    });
    let opened: io::Result<(Box<dyn Sink + Send>, PathBuf, Arc<AtomicBool>)> = match settings.format
    {
        Some(format) => match &settings.rotate_name {
            Some(pattern) => {
                FileSink::with_name_pattern(&path, format, settings.rotation, pattern.clone())
            }
            None => FileSink::with_rotation(&path, format, settings.rotation),
        }
        .map(|mut sink| {
            sink.compression_level = settings.compression_level;
            let (p, r) = (sink.path().to_path_buf(), sink.reopen_flag());
            (Box::new(sink) as Box<dyn Sink + Send>, p, r)
        }),
        None => match &settings.rotate_name {
            Some(pattern) => {
                ColumnSink::with_name_pattern(&path, settings.rotation, pattern.clone())
            }
            None => ColumnSink::with_rotation(&path, settings.rotation),
        }
        .map(|sink| {
            let (p, r) = (sink.path().to_path_buf(), sink.reopen_flag());
            (Box::new(sink) as Box<dyn Sink + Send>, p, r)
        }),
    };
    let (sink, path, reopen) = match opened {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot open {}: {e}", path.display())),
    };
    // Signals first: a SIGTERM right after the start must still flush.
    let (sig_tx, sig_rx) = mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = sig_tx.send(());
    }) {
        return fail(format!("cannot handle signals: {e}"));
    }
    if let Err(e) = handle_hangup() {
        return fail(format!("cannot handle SIGHUP: {e}"));
    }
    let mut config = Config::new(settings.listen.clone());
    config.allow = settings.allow.clone();
    config.metrics = settings.metrics;
    config.workers = usize::from(settings.workers);
    config.tcp = settings.tcp.clone();
    config.rate_limit = settings.rate_limit;
    config.template_limits = settings.template_limits;
    if let Some(n) = settings.max_exporters {
        config.max_exporters = n;
    }
    if let Some(size) = settings.receive_buffer {
        config.receive_buffer = usize::try_from(size).unwrap_or(usize::MAX);
    }
    let collector = match Collector::bind_with_sink(config, sink) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    for s in collector.sockets() {
        let _ = writeln!(
            io::stderr(),
            "netflow collector: listening on {} (receive buffer {} bytes{}), writing {}",
            s.local,
            s.receive_buffer,
            if s.receive_buffer_capped() {
                format!(", {} requested", s.receive_buffer_requested)
            } else {
                String::new()
            },
            path.display()
        );
    }
    for a in collector.tcp_addrs() {
        let _ = writeln!(
            io::stderr(),
            "netflow collector: listening on tcp {a} (IPFIX{}), writing {}",
            if settings.tcp.tls.is_some() {
                " over TLS"
            } else {
                ""
            },
            path.display()
        );
    }
    if let Some(m) = collector.metrics_addr() {
        let _ = writeln!(
            io::stderr(),
            "netflow collector: metrics on http://{m}/metrics"
        );
    }
    let interval = match (settings.stats, settings.debug) {
        (Some(s), _) => Some(Duration::from_secs_f64(s)),
        (None, true) => Some(Duration::from_secs(10)),
        (None, false) => None,
    };
    let tick = Duration::from_millis(100);
    let mut next_status = interval.map(|i| Instant::now() + i);
    let mut write_failed = false;
    loop {
        let wait = next_status.map_or(tick, |t| {
            t.saturating_duration_since(Instant::now()).min(tick)
        });
        match sig_rx.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if take_hangup() {
            log::info!("SIGHUP: reopening the output file at the next flush");
            reopen.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if settings.on_write_error == OnWriteError::Exit && collector.stats().global.sink_errors > 0
        {
            let _ = writeln!(
                io::stderr(),
                "netflow collector: cannot write {} (see the error above); exiting (--on-write-error exit)",
                path.display()
            );
            write_failed = true;
            break;
        }
        if let (Some(i), Some(t)) = (interval, next_status) {
            if Instant::now() >= t {
                let line = collector.stats().status_line();
                let _ = writeln!(io::stderr(), "status {line}");
                next_status = Some(Instant::now() + i);
            }
        }
    }
    let (stats, _) = collector.shutdown();
    let mut err = io::stderr().lock();
    for line in stats.summary_lines() {
        let _ = writeln!(err, "{line}");
    }
    if !settings.tcp.listen.is_empty() {
        let _ = writeln!(err, "{}", stats.tcp.summary_line());
    }
    if write_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
