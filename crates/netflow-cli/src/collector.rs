//! `netflow collector`: receive exports over UDP and store them as gzip JSON lines.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use netflow_collector::{Collector, Config, FileSink};
use netflow_store::Format;

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

SIGINT or SIGTERM: stop receiving (what the socket holds is still read),
flush and close the file, print a summary per exporter on standard error,
exit 0.

Standard error: `listening on ADDR (receive buffer N bytes)` per socket at the
start; with --stats (or -D, every 10 s) a status line

  status exporters N packets N records N options N bytes N errors N waiting N dropped N lost N written N buffered N queued N sink_errors N

and at the end one line per exporter, then a total:

  exporter 127.0.0.1:40001 version 9 packets 100 records 2400 options 10 bytes 140000 errors 0 waiting 0 replayed 0 dropped 0 lost 0 packets
  total exporters 1 packets 100 records 2400 options 10 bytes 140000 errors 0 waiting 0 dropped 0 written 100 write_errors 0 dropped_lines 0 receive_errors 0

  records   flow data records decoded; options: options data records
  errors    undecodable datagrams and problems within decoded ones, by kind
  waiting   data sets still waiting for their template; replayed: decoded
            after it came; dropped: given up (too old, buffer full)
  lost      sequence numbers never received, in the version's unit
            (v5/v7 flows, v9 packets, IPFIX records)
  written   lines written to the file; buffered: not yet flushed

Log messages (warnings, and with -D debug messages) go to standard error as
`<time> - <LEVEL> - <message>`.";

const EXAMPLES: &str = "\
Examples:
  netflow collector
      listen on 0.0.0.0:2055, write <unix-seconds>.gz
  netflow collector --host :: -p 4739 -o ipfix.gz --format flows
      IPv6 and IPv4 (dual-stack) on port 4739, one object per flow
  netflow collector --listen 10.0.0.1:2055 --listen 10.0.0.1:4739 --stats 5
      two sockets, a status line every 5 seconds";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One line per export datagram, as the Python original
    Original,
    /// One flat object per record
    Flows,
}

#[derive(Debug, Args)]
#[command(
    about = "Receive NetFlow/IPFIX exports over UDP into a gzip JSON-lines file",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES
)]
pub struct CollectorArgs {
    /// Address to listen on; an IPv6 address listens on IPv6 (`::`: IPv6 and IPv4)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub host: String,

    /// UDP port to listen on (0: any free port, shown at the start)
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = 2055)]
    pub port: u16,

    /// Listen on ADDR:PORT (repeatable; replaces --host and --port)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<String>,

    /// Output file (gzip JSON lines, appended to) [default: <unix-seconds>.gz]
    #[arg(short = 'o', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Line layout of the output file
    #[arg(long, value_enum, default_value_t = FormatArg::Original)]
    pub format: FormatArg,

    /// Debug logging, and a status line every 10 s unless --stats says otherwise
    #[arg(short = 'D', long)]
    pub debug: bool,

    /// Print a status line to standard error every SECONDS
    #[arg(long, value_name = "SECONDS", value_parser = crate::generate::parse_positive)]
    pub stats: Option<f64>,
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

fn listen_addresses(args: &CollectorArgs) -> Result<Vec<SocketAddr>, String> {
    if args.listen.is_empty() {
        return resolve(&args.host, args.port);
    }
    let mut out = Vec::new();
    for l in &args.listen {
        match l.parse::<SocketAddr>() {
            Ok(a) => out.push(a),
            Err(_) => {
                let (host, port) = l
                    .rsplit_once(':')
                    .ok_or_else(|| format!("--listen {l}: expected ADDR:PORT"))?;
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("--listen {l}: bad port"))?;
                out.extend(resolve(host, port)?);
            }
        }
    }
    Ok(out)
}

pub fn run(args: &CollectorArgs) -> ExitCode {
    let level = if args.debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { level }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
    let fail = |msg: String| {
        let _ = writeln!(io::stderr(), "netflow collector: {msg}");
        ExitCode::from(1)
    };
    let listen = match listen_addresses(args) {
        Ok(l) if !l.is_empty() => l,
        Ok(_) => return fail("no address to listen on".into()),
        Err(e) => return fail(e),
    };
    let path = args.file.clone().unwrap_or_else(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("{secs}.gz"))
    });
    let format = match args.format {
        FormatArg::Original => Format::Original,
        FormatArg::Flows => Format::Flows,
    };
    let sink = match FileSink::create(&path, format) {
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
    let collector = match Collector::bind_with_sink(Config::new(listen), sink) {
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
    let interval = match (args.stats, args.debug) {
        (Some(s), _) => Some(Duration::from_secs_f64(s)),
        (None, true) => Some(Duration::from_secs(10)),
        (None, false) => None,
    };
    loop {
        let wait = interval.unwrap_or(Duration::from_secs(3600));
        match sig_rx.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                if interval.is_some() {
                    let line = collector.stats().status_line();
                    let _ = writeln!(io::stderr(), "status {line}");
                }
            }
        }
    }
    let (stats, _) = collector.shutdown();
    let mut err = io::stderr().lock();
    for line in stats.summary_lines() {
        let _ = writeln!(err, "{line}");
    }
    ExitCode::SUCCESS
}
