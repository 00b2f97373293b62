//! `netflow`: command-line tools for NetFlow v1/v5/v7/v9 and IPFIX.

mod analyzer;
mod collector;
mod decode;
mod generate;
mod replay;
mod transport;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const LONG_ABOUT: &str = "\
Command-line tools for NetFlow v1, v5, v7, v9 (RFC 3954) and IPFIX (RFC 7011)
export packets.

Inputs are pcap or pcapng captures of the exports (UDP), or text files with
one export packet per line in hex. `generate` sends synthetic exports and
`replay` re-sends captured ones to a collector over UDP. `collector` receives
exports over UDP into a gzip JSON-lines file.";

const EXAMPLES: &str = "\
Examples:
  netflow decode exports.pcap
      every flow and options record of a capture, one JSON object per line
  netflow decode --port 2055 --field-keys id router.pcapng
      only UDP port 2055, fields keyed by element id
  netflow decode templates.txt data.txt
      hex text files, decoded as one stream
  netflow decode --help
      the output format in full
  netflow generate --target 127.0.0.1:2055 --version 9 --rate 100 --duration 60
      synthetic v9 exports to a collector for a minute
  netflow replay --speed 0 exports.pcap --target 127.0.0.1:2055
      re-send a capture as fast as possible, one socket per original exporter
  netflow collector -p 2055 -o flows.gz --format flows
      receive exports on UDP port 2055 into a gzip file, one JSON object per flow";

#[derive(Debug, Parser)]
#[command(name = "netflow", version, about = "NetFlow/IPFIX toolkit", long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Decode(decode::DecodeArgs),
    Generate(generate::GenerateArgs),
    Replay(replay::ReplayArgs),
    Collector(collector::CollectorArgs),
    Analyzer(analyzer::AnalyzerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Collector(args) => collector::run(&args),
        Command::Analyzer(args) => analyzer::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
