//! `netflow generate`: synthetic, valid exports sent to a collector over UDP.
//!
//! Every exporter has its own UDP socket (so its own source port), its own v9
//! source ID / IPFIX observation domain / v5 engine id, its own sequence
//! numbers and its own pseudo-random flow mix. Packets go out on a schedule
//! (packet `i` at `i / rate` seconds after the start) and every time in a
//! packet (export time, uptime, flow start and end) is computed from that
//! schedule and `--start-time`, never read from the clock while sending: the
//! same arguments with the same `--seed` and `--start-time` give the same
//! bytes.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;

use crate::transport::{server_name, Connection, TlsClient, Transport};
use netflow::encode::{emit_v1, emit_v5, emit_v7, EncodeError, FixedFlow, MessageBuilder};
use netflow::wire::ipfix::IpfixHeader;
use netflow::wire::v1::V1Header;
use netflow::wire::v5::V5Header;
use netflow::wire::v7::V7Header;
use netflow::wire::v9::V9Header;
use netflow::{FieldSpec, OwnedValue, Protocol, Template, TemplateKind};

const LONG_ABOUT: &str = "\
Send synthetic NetFlow v1/v5/v7/v9 or IPFIX exports to a collector over UDP,
from one or more simulated exporters.

The exports are valid and varied: IPv4 and (v9, IPFIX: --ipv6-percent, 30 %
by default) IPv6 flows of TCP, UDP and ICMP between inside and outside
hosts, with ports, TCP flags, ToS, interfaces, AS numbers, masks, packet
and byte counters and flow start/end times (v1/v5/v7/v9: FIRST/LAST_SWITCHED
in sysUptime milliseconds; IPFIX: flowStartMilliseconds/flowEndMilliseconds).

Exporters: each has its own UDP source socket (bound to port 0 of --source,
by default the unspecified address of the target's family), its own sequence
numbers in its version's unit (v5/v7: flows sent before the packet; v9:
packets; IPFIX: data records, options data records included), its own v9
source ID / IPFIX observation domain (1, 2, ...) and v5 engine id (0, 1, ...).
Packets go round-robin over the exporters.

v9 and IPFIX: every exporter's first packet carries its templates (IPv4 flows
256, IPv6 flows 257), options templates (sampling 258, interface names 259)
and the options data records (one sampling record, one record per interface
1-4); they are sent again every --template-refresh seconds.
--late-templates N makes the first N exporters send data before templates:
their first 2 packets carry flow data only (for templates the collector has
not seen yet) and their templates and options data come first in their 3rd
packet (then every --template-refresh seconds from there), so a collector
must keep the early data and decode it once the templates arrive. Packets are
filled with up to --records-per-packet flow records within --max-size bytes.
v1, v5, v7: every packet carries --records-per-packet flows (default and
maximum: v1 24, v5 30, v7 28, fewer if --max-size is smaller).

Transport: --transport udp (default) sends a datagram per packet;
--transport tcp (IPFIX only) opens one TCP connection per exporter and writes
the messages back to back, each delimited by its header's length field (RFC
7011 10.4); --transport tls does the same over TLS, trusting the CA
certificates of --tls-ca (PEM; the name checked is the --target host or
--tls-server-name), presenting --tls-cert/--tls-key when the collector asks
for a client certificate. The connections are closed (TLS: close_notify)
after the last packet.

Pacing: packet i (0-based, counted over all exporters) is due at i / --rate
seconds after the start; the sender sleeps and then spins to each due time,
and catches up without sleeping when behind. It stops after --duration
seconds (default 10) or --count packets, whichever comes first.

Prebuilt runs (--prebuild, UDP only): every datagram of the run is built
first (before the clock starts; at most 4 GiB of them), then sent on the same
schedule, the datagrams due within the same millisecond (at most 64) with one
sendmmsg(2) call per exporter, so the rate is limited by the sending alone.
The datagrams are the same as without --prebuild (same schedule times, so
same bytes); with several exporters, those of one batch go out exporter by
exporter (each exporter's order is kept). With --gso, each run of equal-sized datagrams
of a batch (and one shorter datagram after it) goes to the kernel as one UDP
GSO send (UDP_SEGMENT, Linux 4.18 and later; at most 64 datagrams and 65,000
bytes a send), which the kernel cuts back into the same datagrams: the
receiver gets the same datagrams in the same order, for a fraction of the
sender's CPU (the benchmarks' receivers share the machine with it). A line
before the others gives the building time:

  prebuild packets 300 bytes 420000 seconds 0.012

Times: the packet times (export time, uptime, flow times) come from the
schedule, starting at --start-time (Unix seconds; default: now), not from
the clock. With --seed and --start-time fixed, the payloads are the same on
every run, whatever the achieved pacing.

Output (standard output), at the end, one line per exporter, then a total
and a rate line:

  exporter 127.0.0.1:40001 version 9 domain 1 packets 100 records 2400 options 10 templates 2 bytes 140000 errors 0
  total exporters 3 packets 300 records 7200 options 30 templates 6 bytes 420000 errors 0
  rate requested 200.000 achieved 199.998 elapsed 1.495 seed 42 start_time 1700000000

  exporter   the exporter's UDP source address:port
  domain     v9 source ID, IPFIX observation domain, v5 engine_type * 256 +
             engine_id, 0 for v1 and v7 (as in netflow decode --stats)
  packets    datagrams built and sent (a datagram that failed to send counts,
             as its sequence number is used up; see errors)
  records    flow data records sent
  options    options data records sent (v9, IPFIX)
  templates  packets that carried the templates (v9, IPFIX)
  errors     datagrams the socket refused (e.g. connection refused: nothing
             listens on the target; no buffer space)
  achieved   packets per second between the first and the last send
  elapsed    seconds from the first to the last send

Exit status: 0 when all packets were sent, 1 when some could not be sent or
on a socket error, 2 for usage errors.";

const EXAMPLES: &str = "\
Examples:
  netflow generate --target 127.0.0.1:2055 --version 9 --rate 100 --duration 60
      one v9 exporter, 100 packets/s for a minute
  netflow generate --target collector:4739 --version 10 --rate 5000 --duration 10 --exporters 8
      8 IPFIX exporters, 5000 packets/s in total
  netflow generate --target 127.0.0.1:2055 --version 5 --rate 200 --count 1000 --seed 1 --start-time 1700000000
      1000 reproducible v5 packets (same bytes on every run)
  netflow generate --target [::1]:2055 --version 10 --rate 50 --template-refresh 1 --max-size 1400
      IPFIX over IPv6, templates every second, datagrams of at most 1400 bytes";

/// Largest UDP payload over IPv4.
const MAX_UDP_PAYLOAD: usize = 65_507;

/// Template ids of every v9/IPFIX exporter.
const TEMPLATE_V4: u16 = 256;
const TEMPLATE_V6: u16 = 257;
const TEMPLATE_SAMPLING: u16 = 258;
const TEMPLATE_INTERFACES: u16 = 259;

/// The interfaces every exporter has: (ifIndex, name, description).
const INTERFACES: [(u32, &str, &str); 4] = [
    (1, "Gi0/0/1", "inside LAN A"),
    (2, "Gi0/0/2", "inside LAN B"),
    (3, "Te0/1/0", "uplink transit 1"),
    (4, "Te0/1/1", "uplink transit 2"),
];

#[derive(Debug, Args)]
#[command(
    about = "Send synthetic NetFlow/IPFIX exports to a collector over UDP",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES
)]
pub struct GenerateArgs {
    /// Collector to send to
    #[arg(long, value_name = "HOST:PORT")]
    pub target: String,

    /// Export version: 1, 5, 7, 9, or 10 for IPFIX
    #[arg(long, value_name = "1|5|7|9|10", value_parser = parse_version)]
    pub version: Protocol,

    /// Packets per second, over all exporters
    #[arg(long, value_name = "PKTS_PER_S", default_value_t = 100.0, value_parser = parse_positive)]
    pub rate: f64,

    /// Seconds to send for [default: 10, or unlimited with --count]
    #[arg(long, value_name = "S", value_parser = parse_non_negative)]
    pub duration: Option<f64>,

    /// Stop after this many packets (over all exporters)
    #[arg(long, value_name = "PACKETS")]
    pub count: Option<u64>,

    /// Number of simulated exporters, each with its own source socket
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub exporters: u16,

    /// Flow records per packet (v1/v5/v7: exactly; v9/IPFIX: at most)
    /// [default: v1 24, v5 30, v7 28, v9/IPFIX as many as fit --max-size]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
    pub records_per_packet: Option<u16>,

    /// Seconds between template (and options data) announcements (v9,
    /// IPFIX); 0: in every packet
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = parse_non_negative)]
    pub template_refresh: f64,

    /// Seed of the flow mix [default: random, printed at the end]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Time of the first packet, Unix seconds [default: now]
    #[arg(long, value_name = "UNIX_S")]
    pub start_time: Option<u32>,

    /// Largest datagram payload in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 1472, value_parser = clap::value_parser!(u32).range(64..=MAX_UDP_PAYLOAD as i64))]
    pub max_size: u32,

    /// Packet sampling 1 in N, announced in v5 headers and v9/IPFIX options
    /// records (the flows are synthetic either way)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16383))]
    pub sampling: u16,

    /// v9/IPFIX: share of IPv6 flows in percent [default: 30]; 0 or 100
    /// gives data packets all of one size (long --gso runs)
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub ipv6_percent: Option<u8>,

    /// Local address to bind the exporters' sockets to (port 0)
    /// [default: the unspecified address of the target's family]
    #[arg(long, value_name = "IP")]
    pub source: Option<IpAddr>,

    /// v9/IPFIX: the first N exporters send their first 2 packets with flow
    /// data only and their templates (and options data) first in their 3rd
    /// packet: data arrives before its template
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub late_templates: u16,

    /// udp: a datagram per packet; tcp (IPFIX only): one TCP connection per
    /// exporter, messages written back to back (RFC 7011 10.4); tls: the same
    /// over TLS
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    pub transport: Transport,

    /// --transport tls: CA certificates (PEM) the collector's certificate must chain to
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// --transport tls: a client certificate chain (PEM), for collectors that require one
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// --transport tls: the key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// --transport tls: the name the collector's certificate must carry [default: the --target host]
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// UDP only: build every datagram of the run in memory before the clock
    /// starts, then send them on schedule in batches (sendmmsg): the same
    /// datagrams, at rates the building would not reach
    #[arg(long)]
    pub prebuild: bool,

    /// With --prebuild (Linux): hand the kernel runs of equal-sized
    /// datagrams as one UDP GSO send each (UDP_SEGMENT), cut back into the
    /// same datagrams by the kernel: far less of the sender's CPU per
    /// datagram, for benchmarks whose receiver shares the machine
    #[arg(long, requires = "prebuild")]
    pub gso: bool,
}

/// v9/IPFIX: share of IPv6 flows without --ipv6-percent.
const DEFAULT_IPV6_PERCENT: u8 = 30;

/// With --late-templates: packets of flow data an exporter sends before its
/// first templates.
const LATE_DATA_PACKETS: u64 = 2;

fn parse_version(s: &str) -> Result<Protocol, String> {
    match s {
        "1" => Ok(Protocol::V1),
        "5" => Ok(Protocol::V5),
        "7" => Ok(Protocol::V7),
        "9" => Ok(Protocol::V9),
        "10" | "ipfix" | "IPFIX" => Ok(Protocol::Ipfix),
        _ => Err("expected 1, 5, 7, 9 or 10 (IPFIX)".to_string()),
    }
}

pub(crate) fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("expected a number greater than 0".to_string()),
    }
}

pub(crate) fn parse_non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("expected a number, 0 or more".to_string()),
    }
}

// ---------------------------------------------------------------------------
// Shared with `replay`: target resolution, sockets, pacing.

/// The first address `HOST:PORT` resolves to.
pub(crate) fn resolve_target(target: &str) -> Result<SocketAddr, String> {
    match target.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{target}: no address found")),
        Err(e) => Err(format!("{target}: {e}")),
    }
}

/// A UDP socket bound to port 0 of `source` (or the unspecified address of
/// the target's family) and connected to `target`.
pub(crate) fn exporter_socket(target: SocketAddr, source: Option<IpAddr>) -> io::Result<UdpSocket> {
    let ip = source.unwrap_or(match target {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
    socket.connect(target)?;
    Ok(socket)
}

/// Wait until `deadline`: sleep while it is far, then spin (sleeps overshoot
/// by tens of microseconds).
pub(crate) fn wait_until(deadline: Instant) {
    const SPIN: Duration = Duration::from_micros(250);
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > SPIN + Duration::from_micros(50) {
            std::thread::sleep(left - SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// First and last send times, for the achieved rate.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SendClock {
    first: Option<Instant>,
    last: Option<Instant>,
    pub sent: u64,
}

impl SendClock {
    pub fn mark(&mut self) {
        self.mark_n(1);
    }
    /// `n` sends at once.
    pub fn mark_n(&mut self, n: u64) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.sent += n;
    }
    /// Seconds from the first to the last send.
    pub fn elapsed(&self) -> f64 {
        match (self.first, self.last) {
            (Some(f), Some(l)) => (l - f).as_secs_f64(),
            _ => 0.0,
        }
    }
    /// Sends per second between the first and the last (0 for fewer than 2).
    pub fn achieved(&self) -> f64 {
        let e = self.elapsed();
        if self.sent < 2 || e <= 0.0 {
            0.0
        } else {
            (self.sent - 1) as f64 / e
        }
    }
}

// ---------------------------------------------------------------------------
// Pseudo-random numbers: SplitMix64, so that a seed means the same flows on
// every platform and release.

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `percent` / 100.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// The flow model.

/// One synthetic flow, version-independent. Times are Unix milliseconds.
#[derive(Debug, Clone, Copy)]
struct Flow {
    src: IpAddr,
    dst: IpAddr,
    next_hop: IpAddr,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    tcp_flags: u8,
    tos: u8,
    input: u32,
    output: u32,
    packets: u64,
    octets: u64,
    first_ms: u64,
    last_ms: u64,
    src_as: u32,
    dst_as: u32,
    src_mask: u8,
    dst_mask: u8,
    /// ICMP type * 256 + code (0 for TCP and UDP).
    icmp: u16,
    flow_label: u32,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

const TCP_SERVICES: [u16; 12] = [443, 443, 443, 443, 80, 80, 22, 25, 993, 8443, 3389, 5432];
const UDP_SERVICES: [u16; 10] = [53, 53, 53, 123, 443, 443, 500, 4500, 161, 5353];
const TCP_FLAGS: [u8; 10] = [0x1b, 0x1b, 0x1a, 0x18, 0x10, 0x02, 0x12, 0x14, 0x19, 0x1f];
const TOS: [u8; 7] = [0, 0, 0, 0, 0x10, 0x28, 0xb8];
const ICMP4: [u16; 5] = [0x0800, 0x0000, 0x0303, 0x0b00, 0x0301];
const ICMP6: [u16; 6] = [0x8000, 0x8100, 0x0104, 0x0300, 0x8700, 0x8800];
const PUBLIC_AS: [u32; 6] = [15169, 13335, 16509, 32934, 8075, 3356];
/// Outside IPv4 prefixes (documentation ranges, RFC 5737).
const OUTSIDE_V4: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];

/// One simulated exporter's flow source.
#[derive(Debug, Clone)]
struct FlowSource {
    rng: Rng,
    index: u32,
    /// Share of IPv6 flows, in percent.
    ipv6_percent: u64,
}

impl FlowSource {
    /// A flow seen by `now_ms`; the exporter booted at `boot_ms`.
    fn flow(&mut self, now_ms: u64, boot_ms: u64) -> Flow {
        let r = &mut self.rng;
        let v6 = r.percent(self.ipv6_percent);
        let i = self.index;
        let (inside, outside, gateway, inside_mask, outside_mask) = if v6 {
            let inside = Ipv6Addr::new(
                0x2001,
                0x0db8,
                (i & 0xffff) as u16,
                r.below(4) as u16,
                0,
                0,
                0,
                r.range(1, 0xfff) as u16,
            );
            let outside = Ipv6Addr::new(
                0x2001,
                0x0db8,
                0xf000 | r.below(16) as u16,
                r.below(256) as u16,
                0,
                0,
                0,
                r.range(1, 0xffff) as u16,
            );
            let gw = Ipv6Addr::new(0x2001, 0x0db8, (i & 0xffff) as u16, 0, 0, 0, 0, 1);
            (
                IpAddr::V6(inside),
                IpAddr::V6(outside),
                IpAddr::V6(gw),
                64,
                48,
            )
        } else {
            let inside =
                Ipv4Addr::new(10, (i % 250) as u8, r.below(4) as u8, r.range(2, 254) as u8);
            let p = r.pick(&OUTSIDE_V4);
            let outside = Ipv4Addr::new(p[0], p[1], p[2], r.range(1, 254) as u8);
            let gw = Ipv4Addr::new(10, (i % 250) as u8, 255, 254);
            (
                IpAddr::V4(inside),
                IpAddr::V4(outside),
                IpAddr::V4(gw),
                22,
                24,
            )
        };
        let roll = r.below(100);
        let protocol = if roll < 65 {
            TCP
        } else if roll < 93 {
            UDP
        } else if v6 {
            ICMPV6
        } else {
            ICMP
        };
        let ephemeral = r.range(32768, 60999) as u16;
        let (service, tcp_flags, icmp, size_lo, size_hi) = match protocol {
            TCP => (r.pick(&TCP_SERVICES), r.pick(&TCP_FLAGS), 0, 40, 1500),
            UDP => (r.pick(&UDP_SERVICES), 0, 0, 60, 1280),
            ICMP => (0, 0, r.pick(&ICMP4), 56, 98),
            _ => (0, 0, r.pick(&ICMP6), 72, 118),
        };
        // Half the flows go out (inside -> outside service), half come back.
        let outbound = r.percent(50);
        let (src, dst, src_port, dst_port) = match (protocol, outbound) {
            (ICMP | ICMPV6, true) => (inside, outside, 0, 0),
            (ICMP | ICMPV6, false) => (outside, inside, 0, 0),
            (_, true) => (inside, outside, ephemeral, service),
            (_, false) => (outside, inside, service, ephemeral),
        };
        let inside_if = r.range(1, 2) as u32;
        let outside_if = r.range(3, 4) as u32;
        let (input, output) = if outbound {
            (inside_if, outside_if)
        } else {
            (outside_if, inside_if)
        };
        let inside_as = 64512 + (i % 1000);
        let outside_as = r.pick(&PUBLIC_AS);
        let (src_as, dst_as) = if outbound {
            (inside_as, outside_as)
        } else {
            (outside_as, inside_as)
        };
        let (src_mask, dst_mask) = if outbound {
            (inside_mask, outside_mask)
        } else {
            (outside_mask, inside_mask)
        };
        // Heavy-tailed packet counts: 1 .. 2^13.
        let scale = r.below(14);
        let packets = 1 + r.below(1 << scale);
        let octets = packets * r.range(size_lo, size_hi);
        // Ended up to 30 s ago, lasted up to 2 min (never before the boot).
        let last_ms = now_ms - r.below(30_000).min(now_ms - boot_ms);
        let first_ms = last_ms - r.below(120_000).min(last_ms - boot_ms);
        let flow_label = if v6 && protocol == TCP {
            r.below(1 << 20) as u32
        } else {
            0
        };
        Flow {
            src,
            dst,
            next_hop: if outbound { gateway } else { inside },
            src_port,
            dst_port,
            protocol,
            tcp_flags,
            tos: r.pick(&TOS),
            input,
            output,
            packets,
            octets,
            first_ms,
            last_ms,
            src_as,
            dst_as,
            src_mask,
            dst_mask,
            icmp,
            flow_label,
        }
    }
}

// ---------------------------------------------------------------------------
// Templates (v9 and IPFIX).

struct Templates {
    v4: Template,
    v6: Template,
    sampling: Template,
    interfaces: Template,
}

impl Templates {
    fn new(protocol: Protocol) -> Templates {
        let f = |id, len| FieldSpec::new(0, id, len);
        let ipfix = protocol == Protocol::Ipfix;
        // flowStart/EndMilliseconds (IPFIX) or FIRST/LAST_SWITCHED (v9, uptime ms).
        let times: [FieldSpec; 2] = if ipfix {
            [f(152, 8), f(153, 8)]
        } else {
            [f(22, 4), f(21, 4)]
        };
        let mut v4 = vec![
            f(8, 4),
            f(12, 4),
            f(15, 4),
            f(7, 2),
            f(11, 2),
            f(4, 1),
            f(6, 1),
            f(5, 1),
            f(10, 4),
            f(14, 4),
            f(2, 8),
            f(1, 8),
            f(16, 4),
            f(17, 4),
            f(9, 1),
            f(13, 1),
            f(32, 2),
            f(61, 1),
        ];
        v4.extend_from_slice(&times);
        let mut v6 = vec![
            f(27, 16),
            f(28, 16),
            f(62, 16),
            f(7, 2),
            f(11, 2),
            f(4, 1),
            f(6, 1),
            f(5, 1),
            f(10, 4),
            f(14, 4),
            f(2, 8),
            f(1, 8),
            f(16, 4),
            f(17, 4),
            f(29, 1),
            f(30, 1),
            // icmpTypeCodeIPv6 (IPFIX); v9 routers report ICMP_TYPE for both.
            f(if ipfix { 139 } else { 32 }, 2),
            f(31, 4),
            f(61, 1),
        ];
        v6.extend_from_slice(&times);
        let (sampling, interfaces): (Vec<FieldSpec>, Vec<FieldSpec>) = if ipfix {
            (
                // scope selectorId; selectorAlgorithm, samplingPacketInterval/Space
                vec![f(302, 4), f(304, 2), f(305, 4), f(306, 4)],
                // scope ingressInterface; interfaceName, interfaceDescription
                vec![f(10, 4), f(82, 0xFFFF), f(83, 0xFFFF)],
            )
        } else {
            (
                // scope System; SAMPLING_INTERVAL, SAMPLING_ALGORITHM
                vec![f(1, 4), f(34, 4), f(35, 1)],
                // scope Interface; IF_NAME, IF_DESC
                vec![f(2, 4), f(82, 16), f(83, 32)],
            )
        };
        let compile = |id, kind, scope, specs: &[FieldSpec]| {
            Template::compile(protocol, id, kind, scope, specs).expect("valid built-in template")
        };
        Templates {
            v4: compile(TEMPLATE_V4, TemplateKind::Data, 0, &v4),
            v6: compile(TEMPLATE_V6, TemplateKind::Data, 0, &v6),
            sampling: compile(TEMPLATE_SAMPLING, TemplateKind::Options, 1, &sampling),
            interfaces: compile(TEMPLATE_INTERFACES, TemplateKind::Options, 1, &interfaces),
        }
    }
}

// ---------------------------------------------------------------------------
// Exporters.

/// What an exporter sent.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    packets: u64,
    records: u64,
    options: u64,
    templates: u64,
    bytes: u64,
    errors: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.packets += o.packets;
        self.records += o.records;
        self.options += o.options;
        self.templates += o.templates;
        self.bytes += o.bytes;
        self.errors += o.errors;
    }
}

/// Why a packet could not be built.
enum PacketError {
    /// --max-size cannot hold the templates or a record (a usage error).
    TooSmall(String),
    Encode(String),
}

struct Exporter {
    index: u32,
    flows: FlowSource,
    /// Unix ms at which the exporter booted (sysUptime 0).
    boot_ms: u64,
    /// Sequence counter in the version's unit.
    sequence: u32,
    /// Schedule time (Unix ms) of the last template announcement.
    last_templates_ms: Option<u64>,
    /// A flow that did not fit the previous packet.
    carry: Option<Flow>,
    counts: Counts,
    /// Reused record values.
    values: Vec<OwnedValue>,
}

/// Settings every exporter shares.
struct Plan {
    protocol: Protocol,
    /// Flows per packet (v1/v5/v7: exactly, v9/IPFIX: at most).
    per_packet: usize,
    max_size: usize,
    refresh_ms: u64,
    sampling: u16,
    templates: Option<Templates>,
    /// Exporters with index below this send templates only from their
    /// packet LATE_DATA_PACKETS on.
    late_templates: u32,
}

fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

impl Exporter {
    fn new(index: u32, seed: u64, start_ms: u64, ipv6_percent: u8) -> Exporter {
        // Each exporter its own stream of numbers: independent of the others
        // and of the interleaving.
        let mut setup = Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
        let uptime0 = setup.range(3_600_000, 7 * 86_400_000);
        Exporter {
            index,
            flows: FlowSource {
                rng: Rng::new(setup.next_u64()),
                index,
                ipv6_percent: ipv6_percent as u64,
            },
            boot_ms: start_ms - uptime0,
            sequence: 0,
            last_templates_ms: None,
            carry: None,
            counts: Counts::default(),
            values: Vec::with_capacity(24),
        }
    }

    /// The v9 source ID / IPFIX observation domain.
    fn domain(&self) -> u32 {
        self.index + 1
    }

    /// The domain as `netflow decode --stats` shows it.
    fn stream_domain(&self, protocol: Protocol) -> u32 {
        match protocol {
            Protocol::V9 | Protocol::Ipfix => self.domain(),
            Protocol::V5 => self.index & 0xff,
            _ => 0,
        }
    }

    fn uptime(&self, now_ms: u64) -> u32 {
        (now_ms - self.boot_ms) as u32
    }

    /// Append the next packet, due at `now_ms`, to `out`.
    fn packet(&mut self, plan: &Plan, now_ms: u64, out: &mut Vec<u8>) -> Result<(), PacketError> {
        match plan.protocol {
            Protocol::V1 | Protocol::V5 | Protocol::V7 => self.fixed_packet(plan, now_ms, out),
            _ => self.message(plan, now_ms, out),
        }
        .map_err(|e| match e {
            EncodeError::MessageTooLong { limit, .. } => PacketError::TooSmall(format!(
                "--max-size {limit} is too small for the templates or a record: {e}"
            )),
            e => PacketError::Encode(format!("cannot encode a packet: {e}")),
        })
    }

    fn fixed_flow(&self, f: &Flow) -> FixedFlow {
        FixedFlow {
            src_addr: v4(f.src),
            dst_addr: v4(f.dst),
            next_hop: v4(f.next_hop),
            input: f.input as u16,
            output: f.output as u16,
            packets: f.packets as u32,
            octets: f.octets.min(u32::MAX as u64) as u32,
            first: (f.first_ms - self.boot_ms) as u32,
            last: (f.last_ms - self.boot_ms) as u32,
            // ICMP type and code travel in the destination port.
            src_port: f.src_port,
            dst_port: if f.icmp != 0 { f.icmp } else { f.dst_port },
            tcp_flags: f.tcp_flags,
            protocol: f.protocol,
            tos: f.tos,
            src_as: f.src_as as u16,
            dst_as: f.dst_as as u16,
            src_mask: f.src_mask,
            dst_mask: f.dst_mask,
            flags1: 0,
            flags2: 0,
            router_sc: Ipv4Addr::UNSPECIFIED,
        }
    }

    fn fixed_packet(
        &mut self,
        plan: &Plan,
        now_ms: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let mut flows = Vec::with_capacity(plan.per_packet);
        for _ in 0..plan.per_packet {
            let f = self.flows.flow(now_ms, self.boot_ms);
            flows.push(self.fixed_flow(&f));
        }
        let uptime = self.uptime(now_ms);
        let timestamp = (now_ms / 1000) as u32;
        let timestamp_nano = (now_ms % 1000) as u32 * 1_000_000;
        let len = match plan.protocol {
            Protocol::V1 => emit_v1(
                &V1Header {
                    uptime,
                    timestamp,
                    timestamp_nano,
                    ..Default::default()
                },
                &flows,
                out,
            )?,
            Protocol::V5 => emit_v5(
                &V5Header {
                    uptime,
                    timestamp,
                    timestamp_nano,
                    sequence: self.sequence,
                    engine_type: 0,
                    engine_id: (self.index & 0xff) as u8,
                    // Mode 1 (deterministic) with the interval, if sampled.
                    sampling_interval: if plan.sampling > 1 {
                        0x4000 | plan.sampling
                    } else {
                        0
                    },
                    ..Default::default()
                },
                &flows,
                out,
            )?,
            _ => emit_v7(
                &V7Header {
                    uptime,
                    timestamp,
                    timestamp_nano,
                    sequence: self.sequence,
                    ..Default::default()
                },
                &flows,
                out,
            )?,
        };
        let _ = len;
        self.sequence = self.sequence.wrapping_add(flows.len() as u32);
        self.counts.records += flows.len() as u64;
        Ok(())
    }

    /// A v9 packet or IPFIX message.
    fn message(&mut self, plan: &Plan, now_ms: u64, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let t = plan.templates.as_ref().expect("v9/IPFIX templates");
        let ipfix = plan.protocol == Protocol::Ipfix;
        let export_time = (now_ms / 1000) as u32;
        let uptime = self.uptime(now_ms);
        let mut m = if ipfix {
            MessageBuilder::ipfix(
                out,
                IpfixHeader {
                    export_time,
                    sequence: self.sequence,
                    observation_domain: self.domain(),
                    ..Default::default()
                },
            )
        } else {
            MessageBuilder::v9(
                out,
                V9Header {
                    uptime,
                    timestamp: export_time,
                    sequence: self.sequence,
                    source_id: self.domain(),
                    ..Default::default()
                },
            )
        }
        .align_sets(true)
        .max_len(plan.max_size);

        let held_back = self.index < plan.late_templates && self.counts.packets < LATE_DATA_PACKETS;
        let announce = !held_back
            && match self.last_templates_ms {
                None => true,
                Some(last) => now_ms.saturating_sub(last) >= plan.refresh_ms,
            };
        let mut options = 0u64;
        if announce {
            m.template(&t.v4)?;
            m.template(&t.v6)?;
            m.template(&t.sampling)?;
            m.template(&t.interfaces)?;
            let domain = self.domain() as u64;
            let values = &mut self.values;
            values.clear();
            if ipfix {
                // Systematic count-based (1): `interval` selected, `space` skipped.
                values.extend([
                    OwnedValue::Unsigned(domain),
                    OwnedValue::Unsigned(1),
                    OwnedValue::Unsigned(1),
                    OwnedValue::Unsigned(plan.sampling as u64 - 1),
                ]);
            } else {
                // SAMPLING_ALGORITHM 1: deterministic.
                values.extend([
                    OwnedValue::Unsigned(domain),
                    OwnedValue::Unsigned(plan.sampling as u64),
                    OwnedValue::Unsigned(1),
                ]);
            }
            m.values(&t.sampling, values)?;
            for (index, name, description) in INTERFACES {
                values.clear();
                values.extend([
                    OwnedValue::Unsigned(index as u64),
                    OwnedValue::String(name.to_string()),
                    OwnedValue::String(description.to_string()),
                ]);
                m.values(&t.interfaces, values)?;
            }
            options = 1 + INTERFACES.len() as u64;
        }

        let mut flows = 0usize;
        while flows < plan.per_packet {
            let f = match self.carry.take() {
                Some(f) => f,
                None => self.flows.flow(now_ms, self.boot_ms),
            };
            let template = if f.src.is_ipv6() { &t.v6 } else { &t.v4 };
            self.values.clear();
            flow_values(&f, ipfix, self.boot_ms, &mut self.values);
            match m.values(template, &self.values) {
                Ok(_) => flows += 1,
                Err(EncodeError::MessageTooLong { .. }) if flows > 0 || announce => {
                    self.carry = Some(f);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let data_records = m.data_record_count() as u32;
        m.finish()?;
        if announce {
            self.last_templates_ms = Some(now_ms);
            self.counts.templates += 1;
        }
        self.counts.records += flows as u64;
        self.counts.options += options;
        self.sequence = if ipfix {
            self.sequence.wrapping_add(data_records)
        } else {
            self.sequence.wrapping_add(1)
        };
        Ok(())
    }
}

/// The values of a flow in the order of the v4/v6 templates.
fn flow_values(f: &Flow, ipfix: bool, boot_ms: u64, v: &mut Vec<OwnedValue>) {
    use OwnedValue::{Ipv4, Ipv6, Unsigned};
    let ip = |a: IpAddr| match a {
        IpAddr::V4(a) => Ipv4(a),
        IpAddr::V6(a) => Ipv6(a),
    };
    let v6 = f.src.is_ipv6();
    v.extend([
        ip(f.src),
        ip(f.dst),
        ip(f.next_hop),
        Unsigned(f.src_port as u64),
        Unsigned(f.dst_port as u64),
        Unsigned(f.protocol as u64),
        Unsigned(f.tcp_flags as u64),
        Unsigned(f.tos as u64),
        Unsigned(f.input as u64),
        Unsigned(f.output as u64),
        Unsigned(f.packets),
        Unsigned(f.octets),
        Unsigned(f.src_as as u64),
        Unsigned(f.dst_as as u64),
        Unsigned(f.src_mask as u64),
        Unsigned(f.dst_mask as u64),
        Unsigned(f.icmp as u64),
    ]);
    if v6 {
        v.push(Unsigned(f.flow_label as u64));
    }
    // flowDirection: 0 ingress.
    v.push(Unsigned(0));
    if ipfix {
        v.push(OwnedValue::DateTimeMilliseconds(f.first_ms));
        v.push(OwnedValue::DateTimeMilliseconds(f.last_ms));
    } else {
        v.push(Unsigned(f.first_ms - boot_ms));
        v.push(Unsigned(f.last_ms - boot_ms));
    }
}

/// Flow records per packet: the version's maximum and what fits `max_size`.
fn per_packet(args: &GenerateArgs) -> Result<usize, String> {
    let max_size = args.max_size as usize;
    let (header, record, version_max) = match args.version {
        Protocol::V1 => (16, 48, 24),
        Protocol::V5 => (24, 48, 30),
        Protocol::V7 => (24, 52, 28),
        _ => return Ok(args.records_per_packet.map_or(usize::MAX, |k| k as usize)),
    };
    let fit = max_size.saturating_sub(header) / record;
    let v = args.version.version();
    match args.records_per_packet.map(|k| k as usize) {
        Some(k) if k > version_max => Err(format!(
            "--records-per-packet {k}: NetFlow v{v} packets carry at most {version_max} records"
        )),
        Some(k) if k > fit => Err(format!(
            "--records-per-packet {k}: a v{v} packet of {k} records is {} bytes, over --max-size {max_size}",
            header + k * record
        )),
        Some(k) => Ok(k),
        None if fit == 0 => Err(format!(
            "--max-size {max_size} is too small for one v{v} record"
        )),
        None => Ok(version_max.min(fit)),
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Datagrams --prebuild holds at most, bytes.
const PREBUILD_MAX_BYTES: u64 = 4 << 30;

/// Datagrams sent per `sendmmsg` call at most (--prebuild).
pub(crate) const SEND_BATCH: usize = 64;

/// Packet `i` of the run: seconds after the start it is due at, and the
/// schedule time (Unix ms) its times are computed from.
fn schedule(i: u64, rate: f64, start_ms: u64) -> (f64, u64) {
    let offset = i as f64 / rate;
    (offset, start_ms + (offset * 1000.0) as u64)
}

/// Build the next packet of `exporter`, due at `now_ms`, into `buf`
/// (cleared first) and count it as sent.
fn build_packet(
    exporter: &mut Exporter,
    plan: &Plan,
    now_ms: u64,
    buf: &mut Vec<u8>,
) -> Result<(), PacketError> {
    buf.clear();
    exporter.packet(plan, now_ms, buf)?;
    if buf.len() > plan.max_size {
        return Err(PacketError::Encode(format!(
            "internal error: a packet of {} bytes exceeds --max-size",
            buf.len()
        )));
    }
    exporter.counts.packets += 1;
    exporter.counts.bytes += buf.len() as u64;
    Ok(())
}

/// Send errors: counted per exporter, the first of each reported.
struct SendErrors {
    reported: Vec<bool>,
    target: SocketAddr,
}

impl SendErrors {
    fn count(&mut self, exporter: usize, counts: &mut Counts, source: &str, err: &io::Error) {
        counts.errors += 1;
        if !self.reported[exporter] {
            self.reported[exporter] = true;
            let _ = writeln!(
                io::stderr(),
                "netflow generate: exporter {source}: cannot send to {}: {err} (further errors of this exporter are only counted)",
                self.target
            );
        }
    }
}

/// The default mode: each packet built, then sent when due.
#[allow(clippy::too_many_arguments)]
fn send_as_built(
    plan: &Plan,
    rate: f64,
    start_ms: u64,
    total: u64,
    exporters: &mut [Exporter],
    sockets: &mut [Connection],
    clock: &mut SendClock,
    errors: &mut SendErrors,
    sources: &[String],
) -> Result<(), PacketError> {
    let n = exporters.len() as u64;
    let mut buf = Vec::with_capacity(plan.max_size);
    let start = Instant::now();
    for i in 0..total {
        let e = (i % n) as usize;
        let (offset, now_ms) = schedule(i, rate, start_ms);
        let exporter = &mut exporters[e];
        build_packet(exporter, plan, now_ms, &mut buf)?;
        wait_until(start + Duration::from_secs_f64(offset));
        clock.mark();
        if let Err(err) = sockets[e].send(&buf) {
            errors.count(e, &mut exporter.counts, &sources[e], &err);
        }
    }
    Ok(())
}

/// Every datagram of a --prebuild run, in schedule order.
struct Prebuilt {
    /// The datagrams back to back.
    bytes: Vec<u8>,
    /// Where each datagram ends in `bytes`.
    ends: Vec<usize>,
}

impl Prebuilt {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Datagram `i`.
    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

/// Build the `total` packets of the run (the exporter of packet `i` is
/// `i % exporters`), as [`send_as_built`] would, without sending.
fn prebuild(
    exporters: &mut [Exporter],
    plan: &Plan,
    rate: f64,
    start_ms: u64,
    total: u64,
) -> Result<Prebuilt, PacketError> {
    let n = exporters.len() as u64;
    let mut built = Prebuilt {
        bytes: Vec::new(),
        ends: Vec::with_capacity(total.min(1 << 24) as usize),
    };
    let mut buf = Vec::with_capacity(plan.max_size);
    for i in 0..total {
        let (_, now_ms) = schedule(i, rate, start_ms);
        build_packet(&mut exporters[(i % n) as usize], plan, now_ms, &mut buf)?;
        built.bytes.extend_from_slice(&buf);
        built.ends.push(built.bytes.len());
    }
    Ok(built)
}

/// Send prebuilt datagrams on schedule: those due within the same
/// millisecond (at most [`SEND_BATCH`]) together, once the first of them is
/// due, with one `sendmmsg` per exporter (in the order of their first
/// datagram in the batch).
#[allow(clippy::too_many_arguments)]
fn send_prebuilt(
    built: &Prebuilt,
    sockets: &[&UdpSocket],
    gso: bool,
    rate: f64,
    exporters: &mut [Exporter],
    clock: &mut SendClock,
    errors: &mut SendErrors,
    sources: &[String],
) {
    let n = sockets.len();
    let mut datagrams: Vec<&[u8]> = Vec::with_capacity(SEND_BATCH);
    in_batches(built.len(), rate, |first, end| {
        for lead in first..end.min(first + n) {
            let e = lead % n;
            datagrams.clear();
            datagrams.extend((lead..end).step_by(n).map(|i| built.get(i)));
            let mut sent = 0;
            while sent < datagrams.len() {
                let result = if gso {
                    send_gso(sockets[e], &datagrams[sent..])
                } else {
                    send_batch(sockets[e], &datagrams[sent..]).map_err(|err| (err, 1))
                };
                match result {
                    Ok(k) => {
                        clock.mark_n(k as u64);
                        sent += k;
                    }
                    Err((err, _)) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err((err, refused)) => {
                        // The first datagram (or GSO send) of the rest was
                        // refused: count it (as sent, as the default mode
                        // does) and go on.
                        clock.mark_n(refused as u64);
                        for _ in 0..refused {
                            errors.count(e, &mut exporters[e].counts, &sources[e], &err);
                        }
                        sent += refused;
                    }
                }
            }
        }
    });
}

/// The schedule of a prebuilt run of `total` datagrams at `rate`: `send`
/// is given each batch (`first..end`: the datagrams due within the same
/// millisecond, at most [`SEND_BATCH`]) once its first is due. Batches are
/// slept to, not spun to (spinning would take a core from the receivers on
/// the same machine); a batch sent a timer slack late is caught up with at
/// the next one. One datagram a batch (rates under 2,000/s): each waited
/// for exactly.
pub(crate) fn in_batches(total: usize, rate: f64, mut send: impl FnMut(usize, usize)) {
    let per_batch = ((rate / 1000.0) as usize).clamp(1, SEND_BATCH);
    let start = Instant::now();
    let mut first = 0;
    while first < total {
        let end = (first + per_batch).min(total);
        let due = start + Duration::from_secs_f64(first as f64 / rate);
        if per_batch == 1 {
            wait_until(due);
        } else {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        send(first, end);
        first = end;
    }
}

/// Send datagrams on a connected UDP socket: how many went (at least one),
/// or the error of the first.
#[cfg(target_os = "linux")]
pub(crate) fn send_batch(socket: &UdpSocket, datagrams: &[&[u8]]) -> io::Result<usize> {
    let mut iovecs: [libc::iovec; SEND_BATCH] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; SEND_BATCH];
    // SAFETY: all-zero is a valid mmsghdr (null pointers, zero lengths).
    let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    let count = datagrams.len().min(SEND_BATCH);
    for (i, d) in datagrams.iter().take(count).enumerate() {
        iovecs[i] = libc::iovec {
            iov_base: d.as_ptr() as *mut libc::c_void,
            iov_len: d.len(),
        };
        msgs[i].msg_hdr.msg_iov = &mut iovecs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `count` headers, each pointing to one iovec over a live
    // datagram the kernel only reads; no address (the socket is connected).
    unsafe { sendmmsg(socket, &mut msgs[..count]) }
}

/// `sendmmsg(2)` of `msgs` on a connected socket: how many messages went
/// (at least one), or the error of the first.
///
/// # Safety
///
/// Every header points to live iovecs (and control buffers) of the sizes
/// it gives.
#[cfg(target_os = "linux")]
unsafe fn sendmmsg(socket: &UdpSocket, msgs: &mut [libc::mmsghdr]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: the caller's.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            0,
        )
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else if sent == 0 {
        // Never for a blocking socket; would loop forever if it were.
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "sendmmsg sent nothing",
        ))
    } else {
        Ok(sent as usize)
    }
}

/// Datagrams of one UDP GSO send at most: the kernel's `UDP_MAX_SEGMENTS`
/// before Linux 6.x (128 since).
#[cfg(target_os = "linux")]
const GSO_MAX_SEGMENTS: usize = 64;

/// Bytes of one UDP GSO send at most: under the 65,507 of a UDP payload
/// over IPv4 (65,535 less the IPv4 and UDP headers), and IPv6's 65,487.
#[cfg(target_os = "linux")]
const GSO_MAX_BYTES: usize = 65_000;

/// Room for one `UDP_SEGMENT` control message (a `u16`), 8-byte aligned.
#[cfg(target_os = "linux")]
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct GsoControl([u8; 32]);

/// Send datagrams on a connected UDP socket with UDP GSO (`--gso`): each
/// run of datagrams of the same length (and one shorter datagram after
/// it, which the kernel then sends last) as one message whose control
/// message `UDP_SEGMENT` gives that length, the datagrams its iovecs; the
/// kernel cuts the message back into exactly those datagrams (udp(7)). How
/// many datagrams went (at least one), or the error of the first message
/// with the number of datagrams it held.
#[cfg(target_os = "linux")]
pub(crate) fn send_gso(
    socket: &UdpSocket,
    datagrams: &[&[u8]],
) -> Result<usize, (io::Error, usize)> {
    let count = datagrams.len().min(SEND_BATCH);
    let mut iovecs: [libc::iovec; SEND_BATCH] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; SEND_BATCH];
    for (iov, d) in iovecs.iter_mut().zip(datagrams.iter().take(count)) {
        *iov = libc::iovec {
            iov_base: d.as_ptr() as *mut libc::c_void,
            iov_len: d.len(),
        };
    }
    // SAFETY: all-zero is a valid mmsghdr (null pointers, zero lengths).
    let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    let mut controls = [GsoControl([0; 32]); SEND_BATCH];
    // Datagrams in each message.
    let mut held = [0usize; SEND_BATCH];
    let (mut messages, mut i) = (0, 0);
    while i < count {
        let segment = datagrams[i].len();
        let (mut j, mut bytes) = (i + 1, segment);
        while j < count
            && j - i < GSO_MAX_SEGMENTS
            && datagrams[j].len() <= segment
            && bytes + datagrams[j].len() <= GSO_MAX_BYTES
        {
            bytes += datagrams[j].len();
            j += 1;
            if datagrams[j - 1].len() < segment {
                // Only the last segment may be shorter.
                break;
            }
        }
        let h = &mut msgs[messages].msg_hdr;
        h.msg_iov = &mut iovecs[i];
        h.msg_iovlen = j - i;
        if j - i > 1 {
            // SAFETY: the control buffer holds CMSG_SPACE(2) (24) bytes,
            // 8-byte aligned, so CMSG_FIRSTHDR is not null and its data
            // has room for the u16, written unaligned.
            unsafe {
                h.msg_control = controls[messages].0.as_mut_ptr().cast();
                h.msg_controllen = libc::CMSG_SPACE(2) as _;
                let c = libc::CMSG_FIRSTHDR(h);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(2) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), segment as u16);
            }
        }
        held[messages] = j - i;
        messages += 1;
        i = j;
    }
    // SAFETY: `messages` headers, each pointing to iovecs over live
    // datagrams the kernel only reads and, for more than one datagram, to
    // its own control buffer; no address (the socket is connected).
    match unsafe { sendmmsg(socket, &mut msgs[..messages]) } {
        Ok(sent) => Ok(held[..sent].iter().sum()),
        Err(e) => Err((e, held[0])),
    }
}

/// `UDP_SEGMENT` (linux/udp.h): the segment size of a UDP GSO send.
#[cfg(target_os = "linux")]
const UDP_SEGMENT: libc::c_int = 103;

/// Without UDP GSO: one datagram at a time.
#[cfg(not(target_os = "linux"))]
pub(crate) fn send_gso(
    socket: &UdpSocket,
    datagrams: &[&[u8]],
) -> Result<usize, (io::Error, usize)> {
    send_batch(socket, datagrams).map_err(|e| (e, 1))
}

/// One `send` per datagram where `sendmmsg` is not available.
#[cfg(not(target_os = "linux"))]
pub(crate) fn send_batch(socket: &UdpSocket, datagrams: &[&[u8]]) -> io::Result<usize> {
    socket.send(datagrams[0])?;
    Ok(1)
}

/// Runs `netflow generate`.
pub fn run(args: &GenerateArgs) -> ExitCode {
    let usage = |msg: String| {
        let _ = writeln!(io::stderr(), "netflow generate: {msg}");
        ExitCode::from(2)
    };
    let fail = |msg: String| {
        let _ = writeln!(io::stderr(), "netflow generate: {msg}");
        ExitCode::from(1)
    };
    let per_packet = match per_packet(args) {
        Ok(k) => k,
        Err(e) => return usage(e),
    };
    let target = match resolve_target(&args.target) {
        Ok(t) => t,
        Err(e) => return usage(format!("--target {e}")),
    };
    let seed = args.seed.unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng::new(t ^ (std::process::id() as u64) << 32).next_u64()
    });
    let start_ms = match args.start_time {
        Some(s) => s as u64 * 1000,
        None => now_unix_ms(),
    };
    let duration = match (args.duration, args.count) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(10.0),
    };
    // Packets due within the duration: i / rate < duration.
    let mut total = args.count.unwrap_or(u64::MAX);
    if let Some(d) = duration {
        let due = (d * args.rate).ceil();
        if due < total as f64 {
            total = due as u64;
        }
    }

    let plan = Plan {
        protocol: args.version,
        per_packet,
        max_size: args.max_size as usize,
        refresh_ms: (args.template_refresh * 1000.0).round() as u64,
        sampling: args.sampling,
        templates: matches!(args.version, Protocol::V9 | Protocol::Ipfix)
            .then(|| Templates::new(args.version)),
        late_templates: args.late_templates as u32,
    };
    let templated = matches!(args.version, Protocol::V9 | Protocol::Ipfix);
    let ipv6_percent = match args.ipv6_percent {
        Some(p) if p > 0 && !templated => {
            return usage(format!(
                "--ipv6-percent {p}: NetFlow v1/v5/v7 carry IPv4 flows only"
            ))
        }
        Some(p) => p,
        None if templated => DEFAULT_IPV6_PERCENT,
        None => 0,
    };
    if args.transport != Transport::Udp && args.version != Protocol::Ipfix {
        return usage("--transport tcp and tls carry IPFIX only (--version 10)".into());
    }
    if args.prebuild && args.transport != Transport::Udp {
        return usage("--prebuild sends UDP datagrams only (--transport udp)".into());
    }
    let tls = if args.transport == Transport::Tls {
        let client = TlsClient {
            ca: args.tls_ca.clone(),
            cert: args.tls_cert.clone(),
            key: args.tls_key.clone(),
            server_name: args.tls_server_name.clone(),
        };
        let config = match client.config() {
            Ok(c) => c,
            Err(e) => return usage(e.to_string()),
        };
        match server_name(client.server_name.as_deref(), &args.target) {
            Ok(name) => Some((config, name)),
            Err(e) => return usage(e),
        }
    } else {
        None
    };
    let n = args.exporters as usize;
    let mut exporters = Vec::with_capacity(n);
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        match Connection::open(
            args.transport,
            target,
            args.source,
            tls.as_ref().map(|(c, n)| (c, n)),
        ) {
            Ok(s) => sockets.push(s),
            Err(e) => {
                return fail(format!(
                    "cannot open a {:?} connection to {target}: {e}",
                    args.transport
                ))
            }
        }
        exporters.push(Exporter::new(i as u32, seed, start_ms, ipv6_percent));
    }
    let sources: Vec<String> = sockets
        .iter()
        .map(|s| {
            s.local_addr()
                .map_or_else(|_| "?".to_string(), |a| a.to_string())
        })
        .collect();

    let mut clock = SendClock::default();
    let mut send_errors = SendErrors {
        reported: vec![false; n],
        target,
    };
    let mut out = String::new();
    if args.prebuild {
        let estimate = (total as u128).saturating_mul(plan.max_size as u128);
        if estimate > PREBUILD_MAX_BYTES as u128 {
            return usage(format!(
                "--prebuild: {total} datagrams of up to {} bytes may not fit the {PREBUILD_MAX_BYTES} bytes allowed; lower --rate, --duration or --count",
                plan.max_size
            ));
        }
        let built_at = Instant::now();
        let built = match prebuild(&mut exporters, &plan, args.rate, start_ms, total) {
            Ok(b) => b,
            Err(PacketError::TooSmall(msg)) => return usage(msg),
            Err(PacketError::Encode(msg)) => return fail(msg),
        };
        out.push_str(&format!(
            "prebuild packets {} bytes {} seconds {:.3}\n",
            built.len(),
            built.bytes.len(),
            built_at.elapsed().as_secs_f64()
        ));
        let udp: Vec<&UdpSocket> = sockets
            .iter()
            .filter_map(|c| match c {
                Connection::Udp(s) => Some(s),
                _ => None,
            })
            .collect();
        send_prebuilt(
            &built,
            &udp,
            args.gso,
            args.rate,
            &mut exporters,
            &mut clock,
            &mut send_errors,
            &sources,
        );
    } else {
        match send_as_built(
            &plan,
            args.rate,
            start_ms,
            total,
            &mut exporters,
            &mut sockets,
            &mut clock,
            &mut send_errors,
            &sources,
        ) {
            Ok(()) => {}
            Err(PacketError::TooSmall(msg)) => return usage(msg),
            Err(PacketError::Encode(msg)) => return fail(msg),
        }
    }

    for (s, source) in sockets.iter_mut().zip(&sources) {
        if let Err(err) = s.finish() {
            let _ = writeln!(
                io::stderr(),
                "netflow generate: exporter {source}: cannot close the connection to {target}: {err}"
            );
        }
    }
    let mut sum = Counts::default();
    for (x, source) in exporters.iter().zip(&sources) {
        let c = &x.counts;
        sum.add(c);
        out.push_str(&format!(
            "exporter {source} version {} domain {} packets {} records {} options {} templates {} bytes {} errors {}\n",
            args.version.version(),
            x.stream_domain(args.version),
            c.packets,
            c.records,
            c.options,
            c.templates,
            c.bytes,
            c.errors
        ));
    }
    out.push_str(&format!(
        "total exporters {n} packets {} records {} options {} templates {} bytes {} errors {}\n",
        sum.packets, sum.records, sum.options, sum.templates, sum.bytes, sum.errors
    ));
    out.push_str(&format!(
        "rate requested {:.3} achieved {:.3} elapsed {:.3} seed {seed} start_time {}\n",
        args.rate,
        clock.achieved(),
        clock.elapsed(),
        start_ms / 1000
    ));
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return fail(format!("cannot write the output: {e}"));
        }
    }
    if sum.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_stable() {
        // SplitMix64 reference values for seed 0.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn flows_are_within_the_uptime() {
        let mut src = FlowSource {
            rng: Rng::new(3),
            index: 0,
            ipv6_percent: 30,
        };
        let boot = 1_000_000;
        for now in [boot, boot + 10, boot + 500_000] {
            for _ in 0..200 {
                let f = src.flow(now, boot);
                assert!(boot <= f.first_ms && f.first_ms <= f.last_ms && f.last_ms <= now);
                assert!(f.packets >= 1 && f.octets >= f.packets);
                assert_eq!(f.src.is_ipv6(), f.dst.is_ipv6());
            }
        }
    }
}
