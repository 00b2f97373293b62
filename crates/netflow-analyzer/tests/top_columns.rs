//! `top` on columns files reads the column slices directly
//! (`columns::top_files`); it must rank exactly as making a [`Flow`] of every
//! row and adding it (`columns::flow_from_row` + `TopN::add`, the path the
//! tshark ground-truth test `netflow-cli/tests/analyzer_top.rs` checks),
//! for every key, every filter and any number of threads, on the records of
//! the real exporter captures (IPv4 and IPv6, v1 to IPFIX, biflows, options).

use std::path::{Path, PathBuf};

use netflow::{Decoder, ExporterId};
use netflow_analyzer::columns::{flow_from_row, top_files, ColumnFile, FLOW_COLUMNS};
use netflow_analyzer::top::{Filter, Metric, Row, TopBy, TopN};
use netflow_store::columns::{BatchBuilder, ColumnWriter};
use netflow_store::Export;

/// Every capture's records in one columns file, a block every 5 datagrams.
fn columns_file_of_every_capture() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures");
    let mut captures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "pcap")
                && p.file_name().is_some_and(|n| n != "input-traffic.pcap")
        })
        .collect();
    captures.sort();
    assert!(captures.len() >= 10, "{captures:?}");
    let out =
        std::env::temp_dir().join(format!("netflow-top-columns-{}.nfcol", std::process::id()));
    let mut writer = ColumnWriter::new(std::fs::File::create(&out).unwrap()).unwrap();
    let mut builder = BatchBuilder::new();
    for capture in &captures {
        let mut reader = netflow_capture::CaptureReader::open(capture, Default::default()).unwrap();
        let mut decoder = Decoder::default();
        while let Some(d) = reader.next_datagram() {
            let d = d.unwrap();
            let Ok(decoded) = decoder.decode(ExporterId(d.source), d.payload, d.index, d.time_ms)
            else {
                continue;
            };
            let p = &decoded.packet;
            builder.add_export(&Export {
                received: d.time_ms as f64 / 1000.0,
                exporter: d.source,
                header: &p.header,
                sets: &p.data_sets,
            });
            if d.index % 5 == 4 {
                writer.write_block(&builder.take()).unwrap();
            }
        }
        writer.write_block(&builder.take()).unwrap();
    }
    writer.finish().unwrap();
    out
}

/// The reference: every row made a `Flow` and added.
fn by_flows(file: &ColumnFile, by: TopBy, filter: &Filter) -> TopN {
    let mut top = TopN::new(by, filter.clone());
    for i in 0..file.block_count() {
        let b = file.read_block(i, FLOW_COLUMNS).unwrap();
        for r in 0..b.rows() {
            if let Some(f) = flow_from_row(&b, r) {
                top.add(&f);
            }
        }
    }
    top
}

fn all_rows(top: &TopN) -> Vec<Row> {
    top.rows(Metric::Bytes, usize::MAX)
}

#[test]
fn columns_top_ranks_as_the_flow_path_for_every_key_and_filter() {
    let path = columns_file_of_every_capture();
    let file = ColumnFile::open(&path).unwrap();
    assert!(file.problems().is_empty(), "{:?}", file.problems());
    // Flow times of the captures span years (2009 to 2026 exports): a
    // window around the median start takes part of them.
    let reference = by_flows(&file, TopBy::Proto, &Filter::default());
    assert!(reference.seen > 1000, "{}", reference.seen);
    let mut starts: Vec<i64> = (0..file.block_count())
        .flat_map(|i| {
            let b = file.read_block(i, FLOW_COLUMNS).unwrap();
            (0..b.rows())
                .filter_map(|r| flow_from_row(&b, r)?.start_ms)
                .collect::<Vec<_>>()
        })
        .collect();
    starts.sort();
    let median = starts[starts.len() / 2];
    let filters = [
        Filter::default(),
        Filter {
            since_ms: Some(median),
            ..Default::default()
        },
        Filter {
            until_ms: Some(median),
            ..Default::default()
        },
        Filter {
            host: Some("10.0.0.0/8".parse().unwrap()),
            ..Default::default()
        },
        Filter {
            host: Some("::/0".parse().unwrap()),
            ..Default::default()
        },
        Filter {
            port: Some(53),
            ..Default::default()
        },
        Filter {
            proto: Some(17),
            port: Some(53),
            ..Default::default()
        },
        Filter {
            proto: Some(6),
            ..Default::default()
        },
    ];
    let keys = [
        TopBy::Src,
        TopBy::Dst,
        TopBy::Pair,
        TopBy::Port,
        TopBy::Proto,
        TopBy::Exporter,
    ];
    let mut non_empty = 0;
    for filter in &filters {
        for by in keys {
            let want = by_flows(&file, by, filter);
            for threads in [1, 3] {
                let mut got = TopN::new(by, filter.clone());
                let summary = top_files(std::slice::from_ref(&file), &mut got, threads);
                assert!(summary.problems.is_empty(), "{:?}", summary.problems);
                let what = format!("--by {by:?} {filter:?} threads {threads}");
                assert_eq!((got.seen, got.total), (want.seen, want.total), "{what}");
                assert_eq!(got.keys(), want.keys(), "{what}");
                let every = all_rows(&want);
                assert_eq!(all_rows(&got), every, "{what}");
                // The first rows only (selected without listing every key).
                for (metric, n) in [
                    (Metric::Bytes, 5),
                    (Metric::Packets, 64),
                    (Metric::Flows, 1),
                ] {
                    let mut first = want.rows(metric, usize::MAX);
                    first.truncate(n);
                    assert_eq!(got.rows(metric, n), first, "{what} {metric:?} -n {n}");
                }
            }
            if want.total.flows > 0 && want.total.flows < want.seen {
                non_empty += 1;
            }
        }
    }
    // The filters must select some flows and leave out others, or the
    // comparison would not test them.
    assert!(
        non_empty >= 6 * 6,
        "{non_empty} filtered rankings with flows"
    );
    std::fs::remove_file(&path).ok();
}
