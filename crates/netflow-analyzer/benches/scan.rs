//! Analyzer throughput (flows/s), not a test: builds a gzip file of stored
//! flows in both layouts (v9 records as the collector writes them, request
//! and response flows so the table pairs them), then times
//! - reading only (FlowReader: gunzip + parse + normalize),
//! - `top --by src` (reading + aggregation),
//! - the original's table with `-n -p 0` into a sink (reading + sort + pairing + formatting).
//!
//! `cargo bench -p netflow-analyzer --bench scan [-- FLOWS]` (default 1 000 000 flows).

use std::io::Write;
use std::time::Instant;

use flate2::write::GzEncoder;
use flate2::Compression;
use netflow_analyzer::services::Services;
use netflow_analyzer::table::{write_table, TableOptions};
use netflow_analyzer::top::{Filter, Metric, TopBy, TopN};
use netflow_analyzer::FlowReader;

const FLOWS_PER_DATAGRAM: usize = 24;

fn record(src: u32, dst: u32, sport: u16, dport: u16, bytes: u64, first: u64) -> String {
    let ip = |a: u32| {
        format!(
            "{}.{}.{}.{}",
            a >> 24,
            (a >> 16) & 255,
            (a >> 8) & 255,
            a & 255
        )
    };
    format!(
        "\"IPV4_SRC_ADDR\": \"{}\", \"IPV4_DST_ADDR\": \"{}\", \"LAST_SWITCHED\": {}, \"FIRST_SWITCHED\": {first}, \
         \"IN_BYTES\": {bytes}, \"IN_PKTS\": {}, \"INPUT_SNMP\": 0, \"OUTPUT_SNMP\": 0, \"L4_SRC_PORT\": {sport}, \
         \"L4_DST_PORT\": {dport}, \"PROTOCOL\": 6, \"TCP_FLAGS\": 27, \"IP_PROTOCOL_VERSION\": 4, \"SRC_TOS\": 0",
        ip(src),
        ip(dst),
        first + 1500,
        bytes / 700 + 1
    )
}

fn build(flows: usize, original: bool) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let datagrams = flows / FLOWS_PER_DATAGRAM;
    for d in 0..datagrams {
        let ts = 1_700_000_000.0 + d as f64 * 0.001;
        let mut recs = Vec::with_capacity(FLOWS_PER_DATAGRAM);
        for i in 0..FLOWS_PER_DATAGRAM / 2 {
            let r = next();
            let client = 0x0a00_0000 | (r as u32 & 0xffff);
            let server = 0xc633_6400 | ((r >> 16) as u32 & 0xff);
            let port = 1024 + (r >> 24) as u16 % 60000;
            let first = (d * 100 + i) as u64;
            recs.push(record(
                client,
                server,
                port,
                443,
                200 + (r >> 40) % 5000,
                first,
            ));
            recs.push(record(
                server,
                client,
                443,
                port,
                1000 + (r >> 44) % 500_000,
                first,
            ));
        }
        if original {
            let flows: Vec<String> = recs.iter().map(|r| format!("{{{r}}}")).collect();
            writeln!(
                gz,
                "{{\"{ts}\": {{\"client\": [\"192.0.2.1\", 2055], \"header\": {{\"version\": 9, \"count\": {}, \"uptime\": 1000000, \"timestamp\": 1700000000, \"sequence\": {d}, \"source_id\": 0}}, \"flows\": [{}]}}}}",
                recs.len(),
                flows.join(", ")
            )
            .unwrap();
        } else {
            for r in &recs {
                let compact = r.replace("\": ", "\":").replace(", \"", ",\"");
                writeln!(
                    gz,
                    "{{\"received\":{ts},\"exporter\":\"192.0.2.1:2055\",\"version\":9,\"domain\":0,\"template_id\":256,\"options\":false,\"export_time\":1700000000,\"sequence\":{d},\"fields\":{{{compact}}}}}"
                )
                .unwrap();
            }
        }
    }
    gz.finish().unwrap()
}

fn rate(what: &str, flows: u64, started: Instant) {
    let s = started.elapsed().as_secs_f64();
    println!(
        "{what:<40} {flows:>9} flows {s:>7.3} s {:>12.0} flows/s",
        flows as f64 / s
    );
}

fn main() {
    let flows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    for (layout, original) in [("original", true), ("flows", false)] {
        let data = build(flows, original);
        println!("layout {layout}: {} gzip bytes", data.len());
        let reader = || FlowReader::from_reader(std::io::Cursor::new(data.clone())).unwrap();

        let started = Instant::now();
        let n: u64 = reader().map(|e| e.flows.len() as u64).sum();
        rate(&format!("{layout}: read"), n, started);

        let started = Instant::now();
        let mut top = TopN::new(TopBy::Src, Filter::default());
        for e in reader() {
            for f in &e.flows {
                top.add(f);
            }
        }
        let rows = top.rows(Metric::Bytes, 20);
        assert_eq!(top.total.flows, n);
        assert!(!rows.is_empty());
        rate(&format!("{layout}: top --by src"), n, started);

        let started = Instant::now();
        let options = TableOptions {
            packets_threshold: 0,
            ..Default::default()
        };
        let mut sink = std::io::sink();
        let summary =
            write_table(reader(), &options, &Services::system(), None, &mut sink).unwrap();
        assert_eq!(summary.connections * 2, n);
        rate(&format!("{layout}: table -n -p 0"), n, started);
    }
}
