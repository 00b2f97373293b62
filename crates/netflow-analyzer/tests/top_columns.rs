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
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("top-columns.nfcol");
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

/// Every key and filter, with 1 and 3 threads: `top_files` == the flow
/// path. Returns the rankings whose filter kept some flows and left out
/// others.
fn compare_rankings(file: &ColumnFile, filters: &[Filter]) -> usize {
    let keys = [
        TopBy::Src,
        TopBy::Dst,
        TopBy::Pair,
        TopBy::Port,
        TopBy::Proto,
        TopBy::Exporter,
    ];
    let mut non_empty = 0;
    for filter in filters {
        for by in keys {
            let want = by_flows(file, by, filter);
            for threads in [1, 3] {
                let mut got = TopN::new(by, filter.clone());
                let summary = top_files(std::slice::from_ref(file), &mut got, threads);
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
    non_empty
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
    let non_empty = compare_rankings(&file, &filters);
    // The filters must select some flows and leave out others, or the
    // comparison would not test them.
    assert!(
        non_empty >= 6 * 6,
        "{non_empty} filtered rankings with flows"
    );
    std::fs::remove_file(&path).ok();
}

/// A NetFlow v9 export (RFC 3954 section 5) built here: templates 256
/// (destination, bytes, packets: no source address), 257 (bytes and
/// packets: no address, so not a flow) and 258 (both addresses), then a data
/// set of each with `records` records of each template.
fn v9_export(sequence: u32, records: u8) -> Vec<u8> {
    const SRC: u16 = 8;
    const DST: u16 = 12;
    const BYTES: u16 = 1;
    const PACKETS: u16 = 2;
    let templates: [(u16, &[u16]); 3] = [
        (256, &[DST, BYTES, PACKETS]),
        (257, &[BYTES, PACKETS]),
        (258, &[SRC, DST, BYTES, PACKETS]),
    ];
    let mut sets = Vec::new();
    let mut t = vec![0u8, 0, 0, 0];
    for (id, fields) in templates {
        t.extend(id.to_be_bytes());
        t.extend((fields.len() as u16).to_be_bytes());
        for f in fields {
            t.extend(f.to_be_bytes());
            t.extend(4u16.to_be_bytes());
        }
    }
    let len = t.len() as u16;
    t[2..4].copy_from_slice(&len.to_be_bytes());
    sets.push(t);
    for (id, fields) in templates {
        let mut d = Vec::new();
        d.extend(id.to_be_bytes());
        d.extend([0, 0]);
        for r in 0..records {
            for f in fields {
                let v: [u8; 4] = match *f {
                    SRC => [10, 1, 0, r % 3],
                    DST => [10, 2, 0, r % 2],
                    BYTES => (100 * (u32::from(r) + 1) + u32::from(id)).to_be_bytes(),
                    _ => 1u32.to_be_bytes(),
                };
                d.extend(v);
            }
        }
        let len = d.len() as u16;
        d[2..4].copy_from_slice(&len.to_be_bytes());
        sets.push(d);
    }
    let mut p = Vec::new();
    p.extend(9u16.to_be_bytes());
    p.extend((3 + 3 * u16::from(records)).to_be_bytes());
    p.extend(60_000u32.to_be_bytes()); // uptime, ms
    p.extend(1_700_000_000u32.to_be_bytes());
    p.extend(sequence.to_be_bytes());
    p.extend(7u32.to_be_bytes()); // source id
    for s in sets {
        p.extend(s);
    }
    p
}

#[test]
fn records_without_a_source_address_are_flows_and_without_any_are_not() {
    // Blocks: the first of template-258 records only is not built here
    // (every record has both addresses in the captures' test); these
    // blocks mix records with a destination only and records without
    // addresses, which the reader must find to count the flows right.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("top-columns-partial.nfcol");
    let mut writer = ColumnWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    let mut builder = BatchBuilder::new();
    let mut decoder = Decoder::default();
    let exporter: std::net::SocketAddr = "192.0.2.9:2055".parse().unwrap();
    for (i, records) in [4u8, 7, 1].into_iter().enumerate() {
        let payload = v9_export(i as u32, records);
        let decoded = decoder
            .decode(ExporterId(exporter), &payload, i as u64, 1_700_000_000_000)
            .unwrap();
        let p = &decoded.packet;
        assert_eq!(p.data_sets.len(), 3, "{:?}", p.data_sets);
        builder.add_export(&Export {
            received: 1_700_000_000.5,
            exporter,
            header: &p.header,
            sets: &p.data_sets,
        });
        writer.write_block(&builder.take()).unwrap();
    }
    writer.finish().unwrap();
    let file = ColumnFile::open(&path).unwrap();
    // 12 records per template: 24 flows (templates 256 and 258), of which
    // 12 have no source address.
    let reference = by_flows(&file, TopBy::Dst, &Filter::default());
    assert_eq!((reference.seen, reference.total.flows), (24, 24));
    let sources = by_flows(&file, TopBy::Src, &Filter::default());
    let sourced: u64 = sources
        .rows(Metric::Flows, usize::MAX)
        .iter()
        .map(|r| r.totals.flows)
        .sum();
    assert_eq!(sourced, 12);
    let filters = [
        Filter::default(),
        Filter {
            host: Some("10.2.0.1/32".parse().unwrap()),
            ..Default::default()
        },
    ];
    assert!(compare_rankings(&file, &filters) >= 6);
    std::fs::remove_file(&path).ok();
}
