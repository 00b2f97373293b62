//! `netflow decode`: captures or hex text in, one JSON line per data record out.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use netflow::sampling::SamplingTable;
use netflow::sequence::{SequenceTracker, SequenceUnit, StreamKey};
use netflow::serde_impl::{KeyMode, RecordSer};
use netflow::{DataSet, Decoder, ExporterId, Header, PendingSet, TemplateKey};
use netflow_capture::{CaptureError, CaptureReader, Options};

const LONG_ABOUT: &str = r#"Decode NetFlow v1/v5/v7/v9 and IPFIX export packets to JSON lines.

Each FILE is a pcap or pcapng capture (recognized by its magic number) or a
text file with one export packet per line in hex (blank lines and lines
starting with # are skipped); - reads standard input.

From a capture, the payloads of UDP datagrams are taken: all ports, or only
datagrams with --port as their source or destination port. Link types:
Ethernet (with VLAN tags), Linux cooked (v1, v2), raw IP, BSD loopback; IPv4
and IPv6; fragments are reassembled. The exporter is the datagram's source
address:port. Hex lines come from exporter 0.0.0.0:0.

All FILEs are one stream: datagrams are numbered from 0 across them, in order,
and templates learned from one FILE apply to the next.

Output (standard output): one JSON object per line for each data record,
options data records included, e.g. (on one line):

  {"packet":0,"exporter":"127.0.0.1:50496","version":9,"domain":1,
   "template_id":256,"export_time":1699913603,"sequence":1,"options":false,
   "fields":{...}}

  packet       0-based index of the datagram the record came in
  exporter     UDP source of that datagram
  version      1, 5, 7, 9, or 10 for IPFIX
  domain       v9 source ID or IPFIX observation domain (v9, IPFIX only)
  template_id  the template of the record (v9, IPFIX only)
  export_time  export time in the packet header, seconds since the epoch
  sequence     sequence number in the packet header (absent for v1)
  options      true for options data records
  fields       the record's fields, keyed by name (--field-keys name:
               IN_BYTES, octetDeltaCount) or by element id (--field-keys id:
               "1", "6871:14" for enterprise 6871, "scope:1")

Values: integers as numbers; IPv4/IPv6 addresses as text; MAC addresses as
aa:bb:cc:dd:ee:ff; octet arrays and unknown fields as lowercase hex; strings
as text; booleans as true/false; timestamps as the integer on the wire
(dateTimeMicroseconds/Nanoseconds as nanoseconds since the epoch);
structured data (RFC 6313) as arrays.

Order: the records of each datagram in wire order. A data set that arrives
before its template waits (up to 10 minutes of capture time; at most 16384
sets, 64 MiB) and is decoded when its template arrives: its records follow
the records of the datagram that carried the template (in the order the sets
arrived), and carry the packet index and header values (version, domain,
export_time, sequence) of the datagram they came in.

Errors (standard error), one line each:

  netflow decode: FILE: datagram N from EXPORTER: ERROR

for datagrams that cannot be decoded and for problems within a datagram (the
rest of it is still decoded). At the end, one line for each (exporter, domain,
template) whose data never met its template, and a summary:

  packets N, records N, errors N, waiting for a template: N sets (M bytes)

With --stats, a table comes before the summary: one row per stream, that is
per (exporter, version, domain), where domain is the v9 source ID, the IPFIX
observation domain, engine_type * 256 + engine_id for v5, 0 for v1 and v7:

  version      1, 5, 7, 9 or 10
  unit         what the version's sequence number counts: flows (v5, v7),
               packets (v9, RFC 3954 section 5.1), records (IPFIX data
               records, options data records included, RFC 7011 section
               3.1); - for v1, which has no sequence number
  datagrams    datagrams decoded
  records      data records written (options data records included)
  expected     sequence space spanned, from the first datagram's number to
               the end of the highest seen (per epoch after a restart)
  lost         units of that space never received (late arrivals taken back)
  reordered    units that arrived late and filled a gap
  duplicates   units of datagrams that repeated what was already received
  overlap      units of partly new datagrams covering what was already
               received (the exporter numbers inconsistently)
  late         units of datagrams too old to account (behind the last 64
               datagrams)
  unverified   units after IPFIX messages whose records could not all be
               counted (a set waiting for its template)
  restarts     exporter restarts: sequence reset with the uptime going back
               (v5, v7, v9), or numbered behind yet sent later (IPFIX)
  sampling     packet sampling learned from v5 headers and v9/IPFIX options
               records: selected/population and algorithm, e.g. "1/8
               random"; "sampler N:" for a named sampler; - if none

Exit status: 0 when every input could be read, even if datagrams failed to
decode; 1 when an input cannot be opened or read or a capture is corrupt
(what comes before the damage is still decoded); 2 for usage errors."#;

const EXAMPLES: &str = "\
Examples:
  netflow decode exports.pcap
  netflow decode --port 4739 --field-keys id ipfix.pcapng > records.jsonl
  netflow decode day1.pcap day2.pcap | jq -c 'select(.options | not) | .fields'
  printf '%s\\n' 0005000100... | netflow decode -
  netflow decode templates.txt data.txt";

/// Keys of the "fields" object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FieldKeys {
    /// Names: IPV4_SRC_ADDR (v1-v9), sourceIPv4Address (IPFIX)
    Name,
    /// Element ids: "8", "PEN:id" (enterprise), "scope:N" (v9 scope)
    Id,
}

#[derive(Debug, Args)]
#[command(
    about = "Decode captures or hex dumps of export packets to JSON lines",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES
)]
pub struct DecodeArgs {
    /// Only datagrams from or to this UDP port (captures)
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,

    /// Keys of the "fields" object
    #[arg(long, value_enum, value_name = "name|id", default_value_t = FieldKeys::Name)]
    pub field_keys: FieldKeys,

    /// At the end, print sequence (loss, reordering, duplicates, restarts) and
    /// sampling statistics per exporter and domain on standard error
    #[arg(long)]
    pub stats: bool,

    /// pcap, pcapng or hex text files; - for standard input
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `netflow decode` on the process's standard output and error.
pub fn run(args: &DecodeArgs) -> ExitCode {
    let stdout = io::stdout();
    let out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let stderr = io::stderr();
    let outcome = decode(args, out, stderr.lock());
    match outcome {
        Outcome::Done {
            inputs_failed: false,
        }
        | Outcome::BrokenPipe => ExitCode::SUCCESS,
        Outcome::Done {
            inputs_failed: true,
        } => ExitCode::from(1),
        Outcome::OutputFailed(e) => {
            let _ = writeln!(io::stderr(), "netflow decode: cannot write the output: {e}");
            ExitCode::from(1)
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// All inputs processed; whether some could not be read.
    Done {
        inputs_failed: bool,
    },
    /// The reader of the output went away (`| head`): stopped quietly.
    BrokenPipe,
    OutputFailed(io::Error),
}

/// Sets that never met their template, by the template they wait for.
#[derive(Debug, Default)]
struct Waiting {
    by_key: BTreeMap<TemplateKey, (u64, u64)>,
}

impl Waiting {
    fn add(&mut self, set: &PendingSet) {
        let e = self.by_key.entry(set.key).or_default();
        e.0 += 1;
        e.1 += set.body.len() as u64;
    }
    fn sets(&self) -> u64 {
        self.by_key.values().map(|v| v.0).sum()
    }
    fn bytes(&self) -> u64 {
        self.by_key.values().map(|v| v.1).sum()
    }
}

/// What `--stats` accumulates.
#[derive(Debug, Default)]
struct Stats {
    tracker: SequenceTracker,
    sampling: SamplingTable,
    /// Records written, per stream.
    records: BTreeMap<StreamKey, u64>,
}

impl Stats {
    /// The table, one row per stream, columns aligned.
    fn table(&self) -> Vec<String> {
        let mut rows: Vec<Vec<String>> = vec![[
            "exporter",
            "version",
            "domain",
            "unit",
            "datagrams",
            "records",
            "expected",
            "lost",
            "reordered",
            "duplicates",
            "overlap",
            "late",
            "unverified",
            "restarts",
            "sampling",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()];
        for (key, c) in self.tracker.streams() {
            let unit = key.unit();
            let mut row = vec![
                key.exporter.to_string(),
                key.protocol.version().to_string(),
                key.domain.to_string(),
                unit.name().to_string(),
                c.datagrams.to_string(),
                self.records.get(&key).copied().unwrap_or(0).to_string(),
            ];
            for v in [
                c.expected,
                c.lost,
                c.reordered,
                c.duplicates,
                c.overlapped,
                c.late,
                c.unverified,
                c.restarts,
            ] {
                row.push(if unit == SequenceUnit::Unsequenced {
                    "-".to_string()
                } else {
                    v.to_string()
                });
            }
            let sampling: Vec<String> = self
                .sampling
                .samplers_of(key)
                .map(|(k, rate)| match k.sampler {
                    None => rate.to_string(),
                    Some(id) => format!("sampler {id}: {rate}"),
                })
                .collect();
            row.push(if sampling.is_empty() {
                "-".to_string()
            } else {
                sampling.join(", ")
            });
            rows.push(row);
        }
        let columns = rows[0].len();
        let widths: Vec<usize> = (0..columns)
            .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        let mut lines: Vec<String> = rows
            .iter()
            .map(|r| {
                let mut line = String::new();
                for (i, cell) in r.iter().enumerate() {
                    if i + 1 == columns {
                        line.push_str(cell);
                    } else {
                        line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                    }
                }
                line.trim_end().to_string()
            })
            .collect();
        if self.tracker.evicted() > 0 {
            lines.push(format!(
                "({} streams forgotten to stay within {} streams)",
                self.tracker.evicted(),
                self.tracker.limits().max_streams
            ));
        }
        if self.sampling.evicted() > 0 {
            lines.push(format!(
                "({} samplers forgotten to stay within the sampler limit)",
                self.sampling.evicted()
            ));
        }
        lines
    }
}

/// The decode loop's state.
struct Run<W: Write, E: Write> {
    out: W,
    err: E,
    keys: KeyMode,
    decoder: Decoder,
    /// (first datagram index, name) of each input, to name the file of a tag.
    inputs: Vec<(u64, String)>,
    packets: u64,
    records: u64,
    errors: u64,
    waiting: Waiting,
    /// With --stats.
    stats: Option<Stats>,
}

impl<W: Write, E: Write> Run<W, E> {
    /// The name of the input that held datagram `index`.
    fn file_of(&self, index: u64) -> &str {
        let i = self.inputs.partition_point(|(first, _)| *first <= index);
        self.inputs
            .get(i.wrapping_sub(1))
            .map_or("-", |(_, name)| name.as_str())
    }

    /// An error line (stderr problems are ignored: there is nowhere to report them).
    fn error_line(&mut self, line: impl Display) {
        self.errors += 1;
        let _ = writeln!(self.err, "netflow decode: {line}");
    }

    fn datagram_error(&mut self, index: u64, exporter: ExporterId, error: impl Display) {
        let file = self.file_of(index).to_string();
        self.error_line(format_args!(
            "{file}: datagram {index} from {exporter}: {error}"
        ));
    }

    /// Print every record of a data set.
    fn write_set(
        &mut self,
        packet: u64,
        exporter: ExporterId,
        header: &Header,
        set: &DataSet<'_>,
    ) -> io::Result<()> {
        if let Some(stats) = &mut self.stats {
            *stats
                .records
                .entry(StreamKey::new(exporter, header))
                .or_default() += set.record_count as u64;
        }
        for record in set.records() {
            let w = &mut self.out;
            write!(
                w,
                "{{\"packet\":{packet},\"exporter\":\"{exporter}\",\"version\":{}",
                header.version()
            )?;
            if let Some(domain) = header.domain() {
                write!(
                    w,
                    ",\"domain\":{domain},\"template_id\":{}",
                    set.template_id()
                )?;
            }
            write!(w, ",\"export_time\":{}", header.export_time())?;
            if let Some(sequence) = header.sequence() {
                write!(w, ",\"sequence\":{sequence}")?;
            }
            write!(w, ",\"options\":{},\"fields\":", set.is_options())?;
            serde_json::to_writer(
                &mut *w,
                &RecordSer {
                    record: &record,
                    keys: self.keys,
                },
            )?;
            w.write_all(b"}\n")?;
            self.records += 1;
        }
        Ok(())
    }

    /// Decode one datagram and print what it yields.
    fn datagram(
        &mut self,
        index: u64,
        exporter: ExporterId,
        payload: &[u8],
        now_ms: u64,
    ) -> io::Result<()> {
        self.packets += 1;
        let mut decoded = match self.decoder.decode(exporter, payload, index, now_ms) {
            Ok(d) => d,
            Err(e) => {
                self.datagram_error(index, exporter, e);
                return Ok(());
            }
        };
        let packet = &decoded.packet;
        if let Some(stats) = &mut self.stats {
            stats.tracker.observe_packet(packet);
            stats.sampling.observe_packet(packet);
        }
        for set in &packet.data_sets {
            self.write_set(index, exporter, &packet.header, set)?;
        }
        for e in &packet.errors {
            self.datagram_error(index, exporter, e);
        }
        // The decoder replays per template, in the order the templates arrived:
        // put the sets back in the order they came (datagram, then wire order).
        decoded
            .replayed
            .sort_by_key(|r| (r.pending.tag, r.pending.offset));
        for replayed in &decoded.replayed {
            let p = &replayed.pending;
            let from = p.key.scope.exporter;
            let set = replayed.data_set();
            if let Some(stats) = &mut self.stats {
                stats.sampling.observe_data_set(from, &p.header, &set);
            }
            self.write_set(p.tag, from, &p.header, &set)?;
            if let Some(e) = &replayed.error {
                self.datagram_error(p.tag, from, e);
            }
        }
        for set in &decoded.dropped {
            self.waiting.add(set);
        }
        Ok(())
    }

    /// Read one input to its end (or to an error that stops it).
    /// Returns false if it could not be read completely.
    fn input(&mut self, path: &Path, options: Options) -> io::Result<bool> {
        let mut reader = match CaptureReader::open(path, options) {
            Ok(r) => r,
            Err(e) => {
                self.error_line(e);
                return Ok(false);
            }
        };
        self.inputs
            .push((options.first_index, reader.name().to_string()));
        let mut complete = true;
        // Standard input may be a live capture (`tcpdump -U -w - | netflow decode -`):
        // pass each datagram's records on at once.
        let live = path == Path::new("-");
        while let Some(item) = reader.next_datagram() {
            match item {
                Ok(d) => {
                    self.datagram(d.index, ExporterId(d.source), d.payload, d.time_ms)?;
                    if live {
                        self.out.flush()?;
                    }
                }
                Err(CaptureError::InvalidHex { file, line, index }) => {
                    self.packets += 1;
                    self.error_line(format_args!(
                        "{file}: datagram {index} from {}: invalid hex text (line {line})",
                        ExporterId::UNSPECIFIED
                    ));
                }
                Err(e) => {
                    self.error_line(e);
                    complete = false;
                }
            }
        }
        let stats = *reader.stats();
        if stats.skipped() > 0 || stats.other_port > 0 {
            // Not an error: a note on what the capture held besides exports.
            let _ = writeln!(
                self.err,
                "netflow decode: {}: skipped {} of {} packets: {stats}",
                reader.name(),
                stats.skipped() + stats.other_port,
                stats.frames
            );
        }
        Ok(complete)
    }

    /// Report what still waits for a template, and the summary.
    fn finish(&mut self) {
        for set in self.decoder.pending.drain() {
            self.waiting.add(&set);
        }
        for (key, (sets, bytes)) in &self.waiting.by_key {
            let plural = if *sets == 1 { "" } else { "s" };
            let _ = writeln!(
                self.err,
                "netflow decode: never decoded: {sets} set{plural} ({bytes} bytes) waiting for {key}"
            );
        }
        if let Some(stats) = &self.stats {
            for line in stats.table() {
                let _ = writeln!(self.err, "{line}");
            }
        }
        let _ = writeln!(
            self.err,
            "packets {}, records {}, errors {}, waiting for a template: {} sets ({} bytes)",
            self.packets,
            self.records,
            self.errors,
            self.waiting.sets(),
            self.waiting.bytes()
        );
    }
}

/// Decode all inputs of `args`, writing records to `out` and diagnostics to `err`.
pub fn decode<W: Write, E: Write>(args: &DecodeArgs, out: W, err: E) -> Outcome {
    let mut run = Run {
        out,
        err,
        keys: match args.field_keys {
            FieldKeys::Name => KeyMode::Name,
            FieldKeys::Id => KeyMode::Id,
        },
        decoder: Decoder::default(),
        inputs: Vec::new(),
        packets: 0,
        records: 0,
        errors: 0,
        waiting: Waiting::default(),
        stats: args.stats.then(Stats::default),
    };
    let mut inputs_failed = false;
    let result = (|| -> io::Result<()> {
        for path in &args.files {
            // Every datagram index used so far is counted in `packets`.
            let options = Options {
                port: args.port,
                first_index: run.packets,
            };
            if !run.input(path, options)? {
                inputs_failed = true;
            }
        }
        run.out.flush()
    })();
    match result {
        Ok(()) => {
            run.finish();
            Outcome::Done { inputs_failed }
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Outcome::BrokenPipe,
        Err(e) => Outcome::OutputFailed(e),
    }
}
