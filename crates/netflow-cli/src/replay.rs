//! `netflow replay`: re-send the exports of captures to a collector, one
//! source socket per original exporter.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use netflow_capture::{CaptureError, CaptureReader, Options};

use crate::generate::{
    exporter_socket, in_batches, parse_non_negative, parse_positive, resolve_target, send_batch,
    send_gso, wait_until, SendClock, SEND_BATCH,
};

const LONG_ABOUT: &str = "\
Re-send the UDP payloads of captured NetFlow/IPFIX exports to a collector.

Each FILE is a pcap or pcapng capture or a hex text file, read as by
netflow decode (all UDP datagrams, or only those from or to --port). The
payloads are sent unchanged, in capture order. Every original exporter (UDP
source address:port in the capture) gets its own UDP socket, bound to port 0
of --source (default: the unspecified address of the target's family), so
the collector sees as many exporters as the capture held, each on its own
source port. All FILEs are one stream: an exporter that appears in several
keeps its socket.

Timing: by default the capture's timing, scaled by --speed (2: twice as
fast; 0: as fast as possible). Each FILE's datagrams are timed from that
FILE's first datagram, and a FILE starts where the previous one ended, so a
gap between captures is not reproduced; a datagram with an earlier time than
the one before goes at once. With --rate P, datagram i goes at i / P seconds
instead. Hex text has no times: its datagrams go at once (unless --rate).

--prebuild (with --rate): every datagram is read first (all FILEs, held in
memory, at most 4 GiB), then sent on the --rate schedule in batches: the
datagrams due within the same millisecond (at most 64) go together, once
the first of them is due, with one sendmmsg per exporter (Linux). Each
exporter's datagrams keep their order; datagrams of different exporters
within one batch may be reordered. For rates a send per datagram does not
reach (about 130,000 datagrams/s here), e.g. a collector's zero-loss rate
on a real exporter's stream (bench/collector.py --replay). With --gso
(Linux), each exporter's runs of equal-sized datagrams in a batch (and one
shorter datagram after a run) go to the kernel as one UDP GSO send
(UDP_SEGMENT), which the kernel cuts back into the same datagrams, as
`netflow generate --gso` sends: less of the sender's CPU per datagram.

Output (standard output), at the end, one line per original exporter (in
order of appearance), a total and a rate line (with --prebuild, first a line
`prebuild datagrams N bytes B seconds S`: the reading, before the schedule
starts):

  exporter 192.0.2.1:2055 via 127.0.0.1:40001 datagrams 120 bytes 81234 errors 0
  total exporters 2 datagrams 240 bytes 162468 errors 0
  rate achieved 812.345 elapsed 0.294

Exit status: 0 when every input was read and every datagram sent; 1 when an
input could not be read completely or datagrams could not be sent (the rest
is still sent); 2 for usage errors.";

const EXAMPLES: &str = "\
Examples:
  netflow replay exports.pcap --target 127.0.0.1:2055
      the capture at its own pace
  netflow replay --speed 0 day1.pcap day2.pcapng --target collector:2055
      as fast as possible
  netflow replay --speed 10 --port 4739 ipfix.pcap --target [::1]:4739
      only UDP port 4739, ten times faster
  netflow replay --rate 500 exports.pcap --target 127.0.0.1:2055
      500 datagrams per second, whatever the capture's timing
  netflow replay --rate 400000 --prebuild exports.pcap exports.pcap --target 127.0.0.1:2055
      the capture twice, read first, then 400,000 datagrams per second";

#[derive(Debug, Args)]
#[command(
    about = "Re-send captured exports to a collector, one socket per original exporter",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES
)]
pub struct ReplayArgs {
    /// Collector to send to
    #[arg(long, value_name = "HOST:PORT")]
    pub target: String,

    /// Time scale of the capture's timing: 2 twice as fast, 0 as fast as possible
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_non_negative, conflicts_with = "rate")]
    pub speed: f64,

    /// Send at this fixed rate (datagrams per second) instead
    #[arg(long, value_name = "P", value_parser = parse_positive)]
    pub rate: Option<f64>,

    /// With --rate: read every datagram first, then send them in batches
    /// (sendmmsg per exporter), for rates one send a datagram cannot reach
    #[arg(long, requires = "rate")]
    pub prebuild: bool,

    /// With --prebuild (Linux): runs of equal-sized datagrams of an
    /// exporter as one UDP GSO send each (UDP_SEGMENT), cut back into the
    /// same datagrams by the kernel
    #[arg(long, requires = "prebuild")]
    pub gso: bool,

    /// Only datagrams from or to this UDP port (captures)
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,

    /// Local address to bind the sockets to (port 0)
    /// [default: the unspecified address of the target's family]
    #[arg(long, value_name = "IP")]
    pub source: Option<IpAddr>,

    /// pcap, pcapng or hex text files; - for standard input
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// One original exporter.
struct Sender {
    original: SocketAddr,
    socket: UdpSocket,
    local: String,
    datagrams: u64,
    bytes: u64,
    errors: u64,
}

impl Sender {
    /// A datagram the socket refused: counted, the exporter's first reported.
    fn refused(&mut self, target: SocketAddr, err: &io::Error) {
        if self.errors == 0 {
            let _ = writeln!(
                io::stderr(),
                "netflow replay: exporter {} via {}: cannot send to {target}: {err} (further errors of this exporter are only counted)",
                self.original, self.local
            );
        }
        self.errors += 1;
    }
}

/// Bytes of datagrams --prebuild holds at most.
const PREBUILD_MAX_BYTES: usize = 4 << 30;

/// The datagrams of a --prebuild run, in capture order.
#[derive(Default)]
struct Prebuilt {
    /// The payloads back to back.
    bytes: Vec<u8>,
    /// Per datagram: where it ends in `bytes`, and its exporter's sender.
    ends: Vec<(usize, usize)>,
}

impl Prebuilt {
    fn get(&self, i: usize) -> (&[u8], usize) {
        let start = if i == 0 { 0 } else { self.ends[i - 1].0 };
        let (end, sender) = self.ends[i];
        (&self.bytes[start..end], sender)
    }
}

/// Send `built` at `rate` datagrams/s: the datagrams due within the same
/// millisecond (at most [`SEND_BATCH`]) together once the first is due,
/// one `sendmmsg` per exporter in the order of its first datagram in the
/// batch (as `generate --prebuild` sends).
fn send_prebuilt(
    built: &Prebuilt,
    senders: &mut [Sender],
    rate: f64,
    gso: bool,
    clock: &mut SendClock,
    target: SocketAddr,
) {
    let mut order: Vec<usize> = Vec::new();
    let mut datagrams: Vec<&[u8]> = Vec::with_capacity(SEND_BATCH);
    in_batches(built.ends.len(), rate, |first, end| {
        order.clear();
        for i in first..end {
            let sender = built.get(i).1;
            if !order.contains(&sender) {
                order.push(sender);
            }
        }
        for &e in &order {
            datagrams.clear();
            datagrams.extend(
                (first..end)
                    .map(|i| built.get(i))
                    .filter(|&(_, s)| s == e)
                    .map(|(d, _)| d),
            );
            let s = &mut senders[e];
            let mut sent = 0;
            while sent < datagrams.len() {
                let result = if gso {
                    send_gso(&s.socket, &datagrams[sent..])
                } else {
                    send_batch(&s.socket, &datagrams[sent..]).map_err(|err| (err, 1))
                };
                match result {
                    Ok(k) => {
                        clock.mark_n(k as u64);
                        sent += k;
                    }
                    Err((err, _)) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err((err, refused)) => {
                        // The first datagram (or GSO send) of the rest was
                        // refused: counted (as sent, as one send a datagram
                        // counts it), the others tried.
                        for _ in 0..refused {
                            s.refused(target, &err);
                        }
                        clock.mark_n(refused as u64);
                        sent += refused;
                    }
                }
            }
        }
    });
}

/// Runs `netflow replay`.
pub fn run(args: &ReplayArgs) -> ExitCode {
    let say = |msg: &dyn std::fmt::Display| {
        let _ = writeln!(io::stderr(), "netflow replay: {msg}");
    };
    let target = match resolve_target(&args.target) {
        Ok(t) => t,
        Err(e) => {
            say(&format_args!("--target {e}"));
            return ExitCode::from(2);
        }
    };
    let mut senders: Vec<Sender> = Vec::new();
    let mut by_source: HashMap<SocketAddr, usize> = HashMap::new();
    let mut clock = SendClock::default();
    let mut failed = false;
    let mut start: Option<Instant> = None;
    // Schedule offset (seconds since start) where the current file begins,
    // and of the last datagram.
    let mut file_base = 0.0f64;
    let mut last_offset = 0.0f64;
    let mut index = 0u64;
    let mut prebuilt = Prebuilt::default();
    let reading = Instant::now();
    'files: for path in &args.files {
        let options = Options {
            port: args.port,
            first_index: index,
        };
        let mut reader = match CaptureReader::open(path, options) {
            Ok(r) => r,
            Err(e) => {
                say(&e);
                failed = true;
                continue;
            }
        };
        let mut file_t0: Option<u64> = None;
        while let Some(item) = reader.next_datagram() {
            let d = match item {
                Ok(d) => d,
                Err(CaptureError::InvalidHex { file, line, .. }) => {
                    say(&format_args!(
                        "{file}: line {line}: invalid hex text, skipped"
                    ));
                    failed = true;
                    continue;
                }
                Err(e) => {
                    say(&e);
                    failed = true;
                    if e.is_fatal() {
                        break;
                    }
                    continue;
                }
            };
            let offset = match args.rate {
                Some(rate) => (clock.sent as f64) / rate,
                None if args.speed == 0.0 => 0.0,
                None => {
                    let t0 = *file_t0.get_or_insert(d.time_ms);
                    let at = file_base + d.time_ms.saturating_sub(t0) as f64 / 1000.0 / args.speed;
                    at.max(last_offset)
                }
            };
            last_offset = offset;
            let which = match by_source.get(&d.source) {
                Some(&i) => i,
                None => {
                    let socket = match exporter_socket(target, args.source) {
                        Ok(s) => s,
                        Err(e) => {
                            say(&format_args!("cannot open a UDP socket to {target}: {e}"));
                            failed = true;
                            break 'files;
                        }
                    };
                    let local = socket
                        .local_addr()
                        .map_or_else(|_| "?".to_string(), |a| a.to_string());
                    senders.push(Sender {
                        original: d.source,
                        socket,
                        local,
                        datagrams: 0,
                        bytes: 0,
                        errors: 0,
                    });
                    by_source.insert(d.source, senders.len() - 1);
                    senders.len() - 1
                }
            };
            if args.prebuild {
                if prebuilt.bytes.len() + d.payload.len() > PREBUILD_MAX_BYTES {
                    say(&format_args!(
                        "--prebuild: the datagrams exceed {PREBUILD_MAX_BYTES} bytes; fewer or shorter FILEs"
                    ));
                    return ExitCode::from(1);
                }
                let s = &mut senders[which];
                s.datagrams += 1;
                s.bytes += d.payload.len() as u64;
                prebuilt.bytes.extend_from_slice(d.payload);
                prebuilt.ends.push((prebuilt.bytes.len(), which));
                continue;
            }
            // The schedule starts with the first datagram (after the socket is open).
            let start = *start.get_or_insert_with(Instant::now);
            if offset > 0.0 {
                wait_until(start + Duration::from_secs_f64(offset));
            }
            let s = &mut senders[which];
            s.datagrams += 1;
            s.bytes += d.payload.len() as u64;
            clock.mark();
            if let Err(e) = s.socket.send(d.payload) {
                s.refused(target, &e);
            }
        }
        index = reader.next_index();
        file_base = last_offset;
    }
    let mut out = String::new();
    if let (true, Some(rate)) = (args.prebuild, args.rate) {
        // Before the schedule starts: not part of the rate (a benchmark
        // subtracts it from the time its receiver was busy).
        out.push_str(&format!(
            "prebuild datagrams {} bytes {} seconds {:.3}\n",
            prebuilt.ends.len(),
            prebuilt.bytes.len(),
            reading.elapsed().as_secs_f64()
        ));
        send_prebuilt(&prebuilt, &mut senders, rate, args.gso, &mut clock, target);
    }

    let (mut datagrams, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    for s in &senders {
        datagrams += s.datagrams;
        bytes += s.bytes;
        errors += s.errors;
        out.push_str(&format!(
            "exporter {} via {} datagrams {} bytes {} errors {}\n",
            s.original, s.local, s.datagrams, s.bytes, s.errors
        ));
    }
    out.push_str(&format!(
        "total exporters {} datagrams {datagrams} bytes {bytes} errors {errors}\n",
        senders.len()
    ));
    out.push_str(&format!(
        "rate achieved {:.3} elapsed {:.3}\n",
        clock.achieved(),
        clock.elapsed()
    ));
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != io::ErrorKind::BrokenPipe {
            say(&format_args!("cannot write the output: {e}"));
            return ExitCode::from(1);
        }
    }
    if failed || errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
