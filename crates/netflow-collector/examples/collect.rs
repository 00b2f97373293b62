//! Print every export a collector receives: the blocking-iterator counterpart
//! of the Python original's README usage
//!
//! ```python
//! from netflow.collector import get_export_packets
//! for ts, client, export in get_export_packets("0.0.0.0", 2055):
//!     print(f"Received {len(export.flows)} flows from {client} at {ts}")
//! ```
//!
//! Usage: `cargo run -p netflow-collector --example collect -- [ADDR:PORT] [EXPORTS]`
//! (default `0.0.0.0:2055`; with EXPORTS it stops after that many exports
//! and prints the per-exporter summary on standard error, else Ctrl-C ends it).
//!
//! Standard error starts with `listening on ADDR:PORT`; standard output has
//! one line per export: `RECEIVED EXPORTER version V records N options N`.

use std::io::Write;

use netflow_collector::{Collector, Config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "0.0.0.0:2055".into());
    let limit: Option<usize> = args.next().map(|n| n.parse()).transpose()?;

    let collector = Collector::bind(Config::new(vec![listen.parse()?]))?;
    eprintln!("listening on {}", collector.local_addr());
    let mut out = std::io::stdout().lock();
    for (n, export) in collector.iter().enumerate() {
        let options = export.records.iter().filter(|r| r.options).count();
        writeln!(
            out,
            "{:.6} {} version {} records {} options {}",
            export.received,
            export.exporter,
            export.header.version(),
            export.records.len() - options,
            options
        )?;
        out.flush()?;
        if limit.is_some_and(|l| n + 1 >= l) {
            break;
        }
    }
    // Clean stop: what the socket still holds is decoded, then the threads end.
    let (stats, rest) = collector.shutdown();
    eprintln!("{} exports not printed", rest.len());
    for line in stats.summary_lines() {
        eprintln!("{line}");
    }
    Ok(())
}
