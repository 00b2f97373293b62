//! Print every export a collector receives, from async code (feature
//! `tokio`): the stream counterpart of the Python original's
//! `get_export_packets(host, port)` generator, stopped cleanly on Ctrl-C
//! or after a number of exports.
//!
//! Usage: `cargo run -p netflow-collector --features tokio --example collect_async -- [ADDR:PORT] [EXPORTS]`
//!
//! Standard error starts with `listening on ADDR:PORT`; standard output has
//! one line per export: `RECEIVED EXPORTER version V records N options N`;
//! at the end the per-exporter summary goes to standard error.

use netflow_collector::{Collector, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "0.0.0.0:2055".into());
    let limit: Option<usize> = args.next().map(|n| n.parse()).transpose()?;

    let mut exports = Collector::bind_stream(Config::new(vec![listen.parse()?]))?;
    eprintln!("listening on {}", exports.local_addr());
    let mut seen = 0;
    // `exports` is also a `futures_core::Stream` (for StreamExt combinators).
    loop {
        let export = tokio::select! {
            e = exports.next_export() => match e {
                Some(e) => e,
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        let options = export.records.iter().filter(|r| r.options).count();
        println!(
            "{:.6} {} version {} records {} options {}",
            export.received,
            export.exporter,
            export.header.version(),
            export.records.len() - options,
            options
        );
        seen += 1;
        if limit.is_some_and(|l| seen >= l) {
            break;
        }
    }
    let (stats, rest) = exports.shutdown().await;
    eprintln!("{} exports not printed", rest.len());
    for line in stats.summary_lines() {
        eprintln!("{line}");
    }
    Ok(())
}
