//! The columns sink's hand-overs: batches given up (`Sink::take_batch`,
//! kept by exchanging batches when none are buffered) and lent
//! (`Sink::write_batch`, copied), mixed: every row reaches the file once,
//! in order, a block holds at most `flush_rows` rows plus one
//! hand-over, and a batch taken with an eighth of that is a block of its own.

mod common;

use std::net::SocketAddr;

use common::vector;
use netflow::{Decoder, ExporterId};
use netflow_collector::{ColumnSink, Sink};
use netflow_store::columns::{BatchBuilder, Column, ColumnFile};
use netflow_store::Export;

#[test]
fn batches_taken_and_copied_reach_the_file_in_order() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("column-sink.nfcol");
    let _ = std::fs::remove_file(&path);
    let mut sink = ColumnSink::create(&path).unwrap();
    sink.flush_rows = 100;
    let packet = vector("PACKET_V5");
    let exporter: SocketAddr = "192.0.2.7:2055".parse().unwrap();
    let mut decoder = Decoder::default();
    let decoded = decoder.decode(ExporterId(exporter), &packet, 1, 0).unwrap();
    let p = &decoded.packet;
    let per_export = p.record_count();
    assert_eq!(per_export, 3);
    let mut builder = BatchBuilder::new();
    // Each export's rows get their own receive time: the order to find.
    let mut received = 0u64;
    let mut largest = 0;
    for (i, exports) in [10, 1, 40, 2, 33, 34, 5, 90, 1, 1, 60, 3, 3, 70]
        .into_iter()
        .enumerate()
    {
        for _ in 0..exports {
            received += 1;
            builder.add_export(&Export {
                received: received as f64,
                exporter,
                header: &p.header,
                sets: &p.data_sets,
            });
        }
        largest = largest.max(exports * per_export);
        if i % 3 == 2 {
            sink.write_batch(builder.batch()).unwrap();
            builder.clear();
        } else {
            builder.hand_over(|b| sink.take_batch(b)).unwrap();
        }
        assert!(builder.batch().is_empty());
    }
    sink.close().unwrap();
    let f = ColumnFile::open(&path).unwrap();
    assert!(f.problems().is_empty(), "{:?}", f.problems());
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    for i in 0..f.block_count() {
        let b = f.read_block(i, &[Column::Received]).unwrap();
        sizes.push(b.rows());
        assert!(
            b.rows() <= 100 + largest,
            "block {i}: {} rows (flush_rows 100, hand-overs of at most {largest})",
            b.rows()
        );
        let d = b.column(Column::Received).unwrap();
        got.extend(
            d.values
                .chunks_exact(8)
                .map(|v| f64::from_bits(u64::from_le_bytes(v.try_into().unwrap())) as u64),
        );
    }
    let want: Vec<u64> = (1..=received)
        .flat_map(|r| std::iter::repeat_n(r, per_export))
        .collect();
    assert_eq!(got, want, "every row once, in order");
    // Taken batches of at least an eighth of `flush_rows` are blocks of
    // their own, whole (33, 5, 90, 60 and 70 exports of 3 records).
    for whole in [99, 15, 270, 180, 210] {
        assert!(
            sizes.contains(&whole),
            "{whole} rows in one block: {sizes:?}"
        );
    }
    assert!(f.block_count() >= 5, "{} blocks", f.block_count());
    let _ = std::fs::remove_file(&path);
}
