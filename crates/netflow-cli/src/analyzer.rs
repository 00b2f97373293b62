//! `netflow analyzer`: stored flows (the collector's files) in, answers out.
//!
//! Without a sub-command it prints the Python original's connection table
//! (`python3 -m netflow.analyzer`, same flags and output); `top` ranks talkers.

use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use netflow_analyzer::dns::{Resolver, ResolverConfig};
use netflow_analyzer::progress::{open_with_progress, ProgressBar};
use netflow_analyzer::services::Services;
use netflow_analyzer::table::{write_table, write_table_sorted, TableOptions};
use netflow_analyzer::top::{
    parse_protocol, parse_time_ms, Cidr, Filter, Metric, Row, TopBy, TopN,
};
use netflow_analyzer::FlowReader;

const LONG_ABOUT: &str = "\
Analyze stored flows: files written by `netflow collector` (either --format) or
by the Python original's collector; plain or gzip (any number of members).

Without a sub-command: the Python original's connection table
(`python3 -m netflow.analyzer`): flows paired into connections by start time
and addresses, one line per connection with at least -p packets. Unlike the
original it reads NetFlow v1/v5/v7 and IPFIX too, counts unreadable lines
instead of crashing (reported on stderr at the end), and resolves host names
concurrently with a timeout (-n: no DNS).";

#[derive(Debug, Args)]
#[command(about = "Analyze stored flows: the original's connection table, top talkers", long_about = LONG_ABOUT)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AnalyzerArgs {
    #[command(subcommand)]
    pub command: Option<AnalyzerCommand>,
    #[command(flatten)]
    pub table: TableArgs,
}

#[derive(Debug, Subcommand)]
pub enum AnalyzerCommand {
    /// Top talkers by source, destination, pair, port, protocol or exporter.
    Top(TopArgs),
    /// One self-contained HTML page: traffic over time, top talkers, protocol
    /// and service mix, exporter health (sequence loss).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Files to read, in order (stdin when none); repeat -f for several.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where to write the page.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "report.html"
    )]
    pub output: PathBuf,
    /// Page title.
    #[arg(long, default_value = "NetFlow report")]
    pub title: String,
}

/// The original's flags.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// The file to analyze (defaults to stdin if not provided)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Number of packets representing the lower bound in connections to be processed
    #[arg(
        short = 'p',
        long = "packets",
        default_value_t = 10,
        allow_negative_numbers = true
    )]
    pub packets: i64,
    /// Enable verbose output (list the flows left without a peer).
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Filter output by matching on the given host (matches source or destination)
    #[arg(long = "match-host", value_name = "IP")]
    pub match_host: Option<String>,
    /// Disable DNS resolving of IP addresses
    #[arg(short = 'n', long = "no-dns")]
    pub no_dns: bool,
    /// Seconds one reverse lookup may take before the address is shown as is.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub dns_timeout: f64,
    /// Reverse lookups in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub dns_concurrency: usize,
}

const TOP_ABOUT: &str = "\
Top talkers (nfdump -s style): totals of flows, packets and bytes per key,
ranked by one metric, with each row's share of the matched total.

--by src|dst: source / destination address; pair: source -> destination (each
direction separately); port: each flow counts under its source and its
destination port (nfdump's -s port, shares add up to more than 100 %);
proto: IP protocol; exporter: who sent the export.

Filters (all must hold): --since/--until (RFC 3339 or Unix seconds) on the
flow's start time when the record gives it, else on the receive time;
--host IP or CIDR (source or destination); --port N (source or destination);
--proto tcp|udp|icmp|icmpv6|N. An IPFIX biflow record counts both directions.

Output: table (default), json (one object: totals and rows) or csv (header
rank,key,flows,packets,bytes,share_percent).";

/// `netflow analyzer top` flags.
#[derive(Debug, Args)]
#[command(long_about = TOP_ABOUT)]
pub struct TopArgs {
    /// Files to read, in order (stdin when none); repeat -f for several.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Rank by this key.
    #[arg(long, value_enum, default_value_t = ByArg::Src)]
    pub by: ByArg,
    /// Rank by this metric.
    #[arg(long, value_enum, default_value_t = MetricArg::Bytes)]
    pub metric: MetricArg,
    /// Number of rows.
    #[arg(short = 'n', long = "count", default_value_t = 20)]
    pub count: usize,
    /// Only flows starting at or after T (RFC 3339, or Unix seconds).
    #[arg(long, value_name = "T", value_parser = parse_time_ms)]
    pub since: Option<i64>,
    /// Only flows starting before T (RFC 3339, or Unix seconds).
    #[arg(long, value_name = "T", value_parser = parse_time_ms)]
    pub until: Option<i64>,
    /// Only flows from or to this address or block (IP or CIDR).
    #[arg(long, value_name = "IP|CIDR")]
    pub host: Option<Cidr>,
    /// Only flows from or to this port.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Only this protocol: tcp, udp, icmp, icmpv6 or a number.
    #[arg(long, value_name = "PROTO", value_parser = parse_protocol)]
    pub proto: Option<u8>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputArg::Table)]
    pub output: OutputArg,
    /// Threads reading columns files (`--format columns`), blocks shared out [default: the cores, at most 4]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ByArg {
    Src,
    Dst,
    Pair,
    Port,
    Proto,
    Exporter,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MetricArg {
    Bytes,
    Packets,
    Flows,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputArg {
    Table,
    Json,
    Csv,
}

pub fn run(args: &AnalyzerArgs) -> ExitCode {
    match &args.command {
        None => run_table(&args.table),
        Some(AnalyzerCommand::Top(top)) => run_top(top),
        Some(AnalyzerCommand::Report(r)) => {
            match netflow_analyzer::report::write_report(&r.files, &r.output, &r.title) {
                Ok(summary) => {
                    eprintln!("netflow analyzer report: {summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("netflow analyzer report: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Open FILE (or stdin) the way the original does: a missing file is
/// "File <f> does not exist!" and status 1. A progress bar follows large files.
fn open_input(file: Option<&Path>) -> Result<(FlowReader, ProgressBar), String> {
    match file {
        Some(path) if !path.exists() => Err(format!("File {} does not exist!", path.display())),
        _ => open_with_progress(file).map_err(|e| {
            format!(
                "{}: {e}",
                file.map_or("stdin".into(), |p| p.display().to_string())
            )
        }),
    }
}

/// Bad lines and read errors go to stderr after the output; true when the
/// file could not be read to its end.
fn report_reader(reader: &FlowReader, name: &str) -> bool {
    let stats = reader.stats();
    if stats.bad_lines > 0 {
        eprintln!(
            "netflow analyzer: {name}: {} of {} lines could not be read and were skipped",
            stats.bad_lines, stats.lines
        );
        for (line, msg) in &stats.errors {
            eprintln!("  line {line}: {msg}");
        }
        if stats.bad_lines > stats.errors.len() as u64 {
            eprintln!(
                "  ... and {} more",
                stats.bad_lines - stats.errors.len() as u64
            );
        }
    }
    for d in &stats.damaged {
        eprintln!("netflow analyzer: {d}");
    }
    if stats.bad_records > 0 {
        eprintln!(
            "netflow analyzer: {name}: {} records that are not objects were skipped",
            stats.bad_records
        );
    }
    if let Some(e) = reader.io_error() {
        eprintln!(
            "netflow analyzer: {name}: reading stopped after line {}: {e}",
            stats.lines
        );
        return true;
    }
    false
}

fn run_table(args: &TableArgs) -> ExitCode {
    let match_host = match &args.match_host {
        None => None,
        Some(text) => match text.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                eprintln!("IP address '{text}' is neither IPv4 nor IPv6");
                return ExitCode::FAILURE;
            }
        },
    };
    // A file whose entries are already in key order (what a collector
    // writes) is streamed in a second pass instead of held in memory; the
    // first pass reads keys only and counts the lines, so a file still being
    // written is read to the same point both times.
    let sorted_lines = args.file.as_deref().and_then(sorted_file_lines);
    let (reader, bar) = match open_input(args.file.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reader = match sorted_lines {
        Some(lines) => reader.limit_lines(lines),
        None => reader,
    };
    let resolver = (!args.no_dns).then(|| {
        Resolver::system(ResolverConfig {
            concurrency: args.dns_concurrency,
            per_lookup_timeout: Duration::from_secs_f64(args.dns_timeout.clamp(0.0, 3600.0)),
            ..ResolverConfig::default()
        })
    });
    let options = TableOptions {
        packets_threshold: args.packets,
        verbose: args.verbose,
        match_host,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let services = Services::system();
    // The bar goes away as soon as reading ends, before the table prints.
    let entries = reader.by_ref().chain(std::iter::from_fn(|| {
        bar.finish_and_clear();
        None
    }));
    let result = match sorted_lines {
        Some(_) => write_table_sorted(entries, &options, &services, resolver.as_ref(), &mut out),
        None => write_table(entries, &options, &services, resolver.as_ref(), &mut out),
    }
    .and_then(|summary| out.flush().map(|_| summary));
    let name = args
        .file
        .as_ref()
        .map_or("stdin".to_string(), |p| p.display().to_string());
    let failed = report_reader(&reader, &name);
    if let Ok(summary) = &result {
        if summary.overwritten_entries > 0 {
            eprintln!(
                "netflow analyzer: {name}: {} entries had the timestamp key of a later entry and were ignored (as the original does)",
                summary.overwritten_entries
            );
        }
        if summary.unusable_flows > 0 {
            eprintln!(
                "netflow analyzer: {name}: {} records without addresses or start time took no part",
                summary.unusable_flows
            );
        }
    }
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netflow analyzer: {e}");
            ExitCode::FAILURE
        }
        Ok(_) if failed => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
    }
}

/// First pass over a file: `Some(lines read)` when its entries' keys are
/// strictly increasing (no key repeats, none out of order), else `None`
/// (also on any read error: the full read then reports it).
fn sorted_file_lines(path: &Path) -> Option<u64> {
    let (reader, bar) = open_with_progress(Some(path)).ok()?;
    let mut reader = reader.keys_only();
    let mut last: Option<String> = None;
    let mut sorted = true;
    for entry in reader.by_ref() {
        if last.as_ref().is_some_and(|k| *k >= entry.key) {
            sorted = false;
            break;
        }
        last = Some(entry.key);
    }
    bar.finish_and_clear();
    (sorted && reader.io_error().is_none()).then(|| reader.lines_read())
}

fn run_top(args: &TopArgs) -> ExitCode {
    let by = match args.by {
        ByArg::Src => TopBy::Src,
        ByArg::Dst => TopBy::Dst,
        ByArg::Pair => TopBy::Pair,
        ByArg::Port => TopBy::Port,
        ByArg::Proto => TopBy::Proto,
        ByArg::Exporter => TopBy::Exporter,
    };
    let metric = match args.metric {
        MetricArg::Bytes => Metric::Bytes,
        MetricArg::Packets => Metric::Packets,
        MetricArg::Flows => Metric::Flows,
    };
    let filter = Filter {
        since_ms: args.since,
        until_ms: args.until,
        host: args.host,
        port: args.port,
        proto: args.proto,
    };
    let mut top = TopN::new(by, filter);
    let inputs: Vec<Option<&Path>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.iter().map(|p| Some(p.as_path())).collect()
    };
    let mut failed = false;
    // Columns files: read together, only the columns the query needs, on
    // several threads; the others one by one as lines.
    let (columns, inputs): (Vec<Option<&Path>>, Vec<Option<&Path>>) = inputs
        .into_iter()
        .partition(|i| i.is_some_and(netflow_analyzer::columns::is_columns_path));
    let mut column_files = Vec::new();
    for path in columns.into_iter().flatten() {
        match netflow_analyzer::columns::ColumnFile::open(path) {
            Ok(f) => column_files.push(f),
            Err(e) => {
                eprintln!("netflow analyzer top: {}: {e}", path.display());
                failed = true;
            }
        }
    }
    if !column_files.is_empty() {
        // One by default: on the 2-core benchmark machine a second thread
        // never helped (each builds its own per-key totals; BENCHMARKS.md).
        // Default: every core up to 4 (measured on 2 cores, idle: 2
        // threads 0.025 s against 1 thread's 0.030 s for the 363,403-flow
        // bench file; each thread keeps its own totals, merged at the end).
        let threads = args.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            usize::from,
        );
        let summary = netflow_analyzer::columns::top_files(&column_files, &mut top, threads);
        for p in &summary.problems {
            eprintln!("netflow analyzer: {p}");
        }
    }
    for input in inputs {
        let name = input.map_or("stdin".to_string(), |p| p.display().to_string());
        let (mut reader, bar) = match open_input(input) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("netflow analyzer top: {e}");
                failed = true;
                continue;
            }
        };
        for entry in reader.by_ref() {
            for flow in &entry.flows {
                top.add(flow);
            }
        }
        bar.finish_and_clear();
        failed |= report_reader(&reader, &name);
    }
    let rows = top.rows(metric, args.count);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = match args.output {
        OutputArg::Table => write_top_table(&mut out, &top, &rows, args),
        OutputArg::Json => write_top_json(&mut out, &top, &rows, args),
        OutputArg::Csv => write_top_csv(&mut out, &rows),
    }
    .and_then(|_| out.flush());
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netflow analyzer top: writing: {e}");
            ExitCode::FAILURE
        }
        Ok(()) if failed => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
    }
}

fn by_name(by: ByArg) -> &'static str {
    match by {
        ByArg::Src => "src",
        ByArg::Dst => "dst",
        ByArg::Pair => "pair",
        ByArg::Port => "port",
        ByArg::Proto => "proto",
        ByArg::Exporter => "exporter",
    }
}

fn metric_name(m: MetricArg) -> &'static str {
    match m {
        MetricArg::Bytes => "bytes",
        MetricArg::Packets => "packets",
        MetricArg::Flows => "flows",
    }
}

/// Percent of `part` in `total` for the table.
fn pct(part: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}", part as f64 * 100.0 / total as f64)
    }
}

fn write_top_table(
    out: &mut dyn Write,
    top: &TopN,
    rows: &[Row],
    args: &TopArgs,
) -> io::Result<()> {
    let t = top.total;
    writeln!(
        out,
        "Top {} {} by {} of {} flows matched ({} read): {} packets, {} bytes ({})",
        rows.len(),
        by_name(args.by),
        metric_name(args.metric),
        t.flows,
        top.seen,
        t.packets,
        t.bytes,
        netflow_analyzer::table::human_size(t.bytes)
    )?;
    let width = rows
        .iter()
        .map(|r| r.key.to_string().len())
        .max()
        .unwrap_or(0)
        .max(by_name(args.by).len());
    writeln!(
        out,
        "{:>4}  {:<width$}  {:>10} {:>6}  {:>12} {:>6}  {:>14} {:>6}",
        "rank",
        by_name(args.by),
        "flows",
        "%",
        "packets",
        "%",
        "bytes",
        "%"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:>4}  {:<width$}  {:>10} {:>6}  {:>12} {:>6}  {:>14} {:>6}",
            r.rank,
            r.key.to_string(),
            r.totals.flows,
            pct(r.totals.flows, t.flows),
            r.totals.packets,
            pct(r.totals.packets, t.packets),
            r.totals.bytes,
            pct(r.totals.bytes, t.bytes)
        )?;
    }
    Ok(())
}

fn write_top_json(out: &mut dyn Write, top: &TopN, rows: &[Row], args: &TopArgs) -> io::Result<()> {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "rank": r.rank,
                "key": r.key.to_string(),
                "flows": r.totals.flows,
                "packets": r.totals.packets,
                "bytes": r.totals.bytes,
                "share_percent": r.share,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "by": by_name(args.by),
        "metric": metric_name(args.metric),
        "flows_read": top.seen,
        "total": {"flows": top.total.flows, "packets": top.total.packets, "bytes": top.total.bytes},
        "keys": top.keys(),
        "rows": rows,
    });
    writeln!(out, "{doc}")
}

fn write_top_csv(out: &mut dyn Write, rows: &[Row]) -> io::Result<()> {
    writeln!(out, "rank,key,flows,packets,bytes,share_percent")?;
    for r in rows {
        // Keys never hold commas or quotes (addresses, numbers, "a -> b").
        writeln!(
            out,
            "{},{},{},{},{},{:.4}",
            r.rank, r.key, r.totals.flows, r.totals.packets, r.totals.bytes, r.share
        )?;
    }
    Ok(())
}
