//! What building columns rows costs the collector's decode thread, alone:
//! every payload decoded (`parse_packet`, templates warm) and its records
//! added to a [`BatchBuilder`] (`add_export`, as the collector's decode
//! worker does), the batch handed over every HAND_OVER rows (65,536, the
//! collector's block, by default). Best of PASSES passes, in ns a row,
//! with the decode alone subtracted; and the shape of the stream (data
//! sets a packet, records a set), which decides what the builder pays per
//! set and per record. No threads, no sockets, no compression: the
//! figures of one stage, stable enough to compare two builds (run under
//! `valgrind --tool=callgrind` with 1 and 3 passes for instructions a
//! row). BENCHMARKS.md, session 15.
//!
//! ```text
//! cargo run --release -p netflow-store --example build_costs -- FILE [PASSES] [HAND_OVER]
//! ```
//!
//! FILE: a capture (`.pcap`, `.pcapng`: its UDP payloads) or a `.payloads`
//! file (`[kind u8][length u32 big-endian][payload]...`, as
//! `bench/capture_payloads.py` writes the generator's datagrams and
//! `bench/decode_vs_python.py` the seed packets; every payload is used).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use netflow::{parse_packet, TemplateCache};
use netflow_store::columns::BatchBuilder;
use netflow_store::Export;

fn load(path: &str) -> Result<Vec<Vec<u8>>, String> {
    if path.ends_with(".payloads") {
        let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let (mut out, mut rest) = (Vec::new(), &data[..]);
        while !rest.is_empty() {
            let len = rest
                .get(1..5)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or(format!("{path}: cut in a payload header"))?;
            let payload = rest
                .get(5..5 + len)
                .ok_or(format!("{path}: cut in a payload"))?;
            out.push(payload.to_vec());
            rest = &rest[5 + len..];
        }
        return Ok(out);
    }
    let mut reader = netflow_capture::CaptureReader::open(path.as_ref(), Default::default())
        .map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    while let Some(d) = reader.next_datagram() {
        out.push(d.map_err(|e| format!("{path}: {e}"))?.payload.to_vec());
    }
    Ok(out)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: build_costs FILE [PASSES] [HAND_OVER]");
        std::process::exit(2);
    };
    let passes: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let hand_over: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1 << 16);
    let payloads = match load(&path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let exporter: SocketAddr = "192.0.2.1:2055".parse().expect("an address");
    let mut cache = TemplateCache::new();
    // Templates first; what does not decode is left out of the passes.
    let (mut packets, mut sets, mut records) = (Vec::new(), 0usize, 0usize);
    for p in &payloads {
        if let Ok(e) = parse_packet(p, &mut cache) {
            sets += e.data_sets.len();
            records += e.data_sets.iter().map(|s| s.record_count).sum::<usize>();
            packets.push(p.as_slice());
        }
    }
    if records == 0 {
        eprintln!("{path}: no records in {} payloads", payloads.len());
        std::process::exit(1);
    }
    let mut builder = BatchBuilder::new();
    let (mut decode_only, mut with_rows) = (f64::MAX, f64::MAX);
    for _ in 0..passes.max(1) {
        let start = Instant::now();
        let mut n = 0;
        for p in &packets {
            if let Ok(e) = parse_packet(p, &mut cache) {
                n += e.data_sets.len();
                black_box(&e);
            }
        }
        black_box(n);
        decode_only = decode_only.min(start.elapsed().as_secs_f64());
        let start = Instant::now();
        for p in &packets {
            if let Ok(e) = parse_packet(p, &mut cache) {
                builder.add_export(&Export {
                    received: 1_700_000_000.0,
                    exporter,
                    header: &e.header,
                    sets: &e.data_sets,
                });
            }
            if builder.rows() >= hand_over {
                builder.hand_over(|b| black_box(b.rows()));
            }
        }
        builder.hand_over(|b| black_box(b.rows()));
        with_rows = with_rows.min(start.elapsed().as_secs_f64());
    }
    let ns = |s: f64| s * 1e9 / records as f64;
    println!(
        "{path}: {} packets, {records} records a pass, {:.2} data sets a packet, {:.2} records a set",
        packets.len(),
        sets as f64 / packets.len() as f64,
        records as f64 / sets.max(1) as f64
    );
    println!(
        "best of {passes} passes, hand-over every {hand_over} rows: decode {:.1} ns a record, decode + rows {:.1}, rows {:.1}",
        ns(decode_only),
        ns(with_rows),
        ns(with_rows - decode_only)
    );
}
