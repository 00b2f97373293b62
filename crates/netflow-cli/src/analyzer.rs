//! `netflow analyzer`: stored flows (the collector's files) in, answers out.
//!
//! Without a sub-command it prints the Python original's connection table
//! (`python3 -m netflow.analyzer`, same flags and output); `top` ranks talkers.

use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use netflow_analyzer::dns::{Resolver, ResolverConfig};
use netflow_analyzer::services::Services;
use netflow_analyzer::table::{write_table, TableOptions};
use netflow_analyzer::{Entry, FlowReader};

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
    // `report` (the report helper) goes here: Report(crate::report::ReportArgs),
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

/// `netflow analyzer top` flags.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Files to read (stdin when none).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: &AnalyzerArgs) -> ExitCode {
    match &args.command {
        None => run_table(&args.table),
        Some(AnalyzerCommand::Top(_top)) => {
            eprintln!("netflow analyzer top: not yet implemented");
            ExitCode::FAILURE
        }
    }
}

/// Open FILE (or stdin) the way the original does: a missing file is
/// "File <f> does not exist!" and status 1.
fn open_input(file: Option<&Path>) -> Result<FlowReader, String> {
    match file {
        None => FlowReader::from_reader(io::stdin()).map_err(|e| format!("stdin: {e}")),
        Some(path) if !path.exists() => Err(format!("File {} does not exist!", path.display())),
        Some(path) => FlowReader::open(path).map_err(|e| format!("{}: {e}", path.display())),
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
    let mut reader = match open_input(args.file.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let entries: Vec<Entry> = reader.by_ref().collect();
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
    let result = write_table(
        entries,
        &options,
        &Services::system(),
        resolver.as_ref(),
        &mut out,
    )
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
            eprintln!("netflow analyzer: writing: {e}");
            ExitCode::FAILURE
        }
        Ok(_) if failed => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
    }
}
