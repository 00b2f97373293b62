//! What each column of a columns file costs the writer: every column of
//! the first blocks encoded alone (as `BlockEncoder` encodes it: planes,
//! address split, LZ4, checksum), best of 5, with its raw and stored
//! sizes. Where the collector's writer thread spends its time by column
//! (BENCHMARKS.md, session 11). Then all columns of those blocks through
//! one encoder, in order, as the collector's writer encodes them, without
//! and with a helper thread (wall-clock time).
//!
//! ```text
//! cargo run --release -p netflow-store --example column_costs -- FILE.nfcol [BLOCKS]
//! ```
//!
//! The first block is skipped (the collector's first is often small).

use netflow_store::columns::{encode_block, BlockEncoder, Column, ColumnFile};
use std::time::Instant;

/// Where a block's first (here: only) column directory entry starts: after
/// the 36-byte block header (`columns::file`).
const DIR_AT: usize = 36;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: column_costs FILE.nfcol [BLOCKS]");
        std::process::exit(2);
    };
    let blocks: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4);
    let file = match ColumnFile::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let last = file.block_count().min(blocks + 1);
    let mut rows = 0usize;
    let mut costs: Vec<(f64, Column, usize, usize, usize, usize)> = Vec::new();
    for &c in Column::ALL {
        let (mut seconds, mut raw, mut stored) = (0.0f64, 0usize, 0usize);
        // What LZ4 was given and what it gave back (the column's directory
        // entry: stored length at 4..8, input length at 8..12).
        let (mut lz4_in, mut lz4_out) = (0usize, 0usize);
        for i in 1..last {
            let batch = match file.read_block(i, &[c]) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("{path}: block {i}: {e}");
                    std::process::exit(1);
                }
            };
            if c == Column::ALL[0] {
                rows += batch.rows();
            }
            let mut best = f64::MAX;
            let mut block = Vec::new();
            for _ in 0..5 {
                let start = Instant::now();
                block = encode_block(&batch).bytes;
                best = best.min(start.elapsed().as_secs_f64());
            }
            if let Some(entry) = block.get(DIR_AT..DIR_AT + 12) {
                let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                lz4_in += le32(&entry[8..]);
                lz4_out += le32(&entry[4..]);
            }
            let len = block.len();
            seconds += best;
            raw += batch.column(c).map_or(0, |d| d.values.len());
            stored += len;
        }
        costs.push((seconds, c, raw, stored, lz4_in, lz4_out));
    }
    // The same blocks, every column, through one encoder in file order
    // (as the collector's writer encodes them: an encoder keeps what it
    // learned from earlier blocks), best of 5 passes.
    let whole: Vec<_> = (1..last)
        .filter_map(|i| file.read_block(i, Column::ALL).ok())
        .collect();
    // Then the same with a helper thread (`BlockEncoder::with_helper`, as
    // the collector's writer encodes them where there is a second core):
    // wall-clock time.
    for (name, new) in [
        ("one encoder", BlockEncoder::default as fn() -> BlockEncoder),
        (
            "one encoder with a helper thread",
            BlockEncoder::with_helper,
        ),
    ] {
        let mut best = f64::MAX;
        let mut bytes = 0;
        for _ in 0..5 {
            let mut encoder = new();
            let start = Instant::now();
            bytes = whole
                .iter()
                .map(|b| encoder.encode(b).0.len())
                .sum::<usize>();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "whole blocks, {name}: {:.2} ms, {:.1} ns a row, {bytes} bytes",
            best * 1e3,
            best * 1e9 / rows.max(1) as f64
        );
    }
    costs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = costs.iter().map(|c| c.0).sum();
    let per_row = |s: f64| s * 1e9 / rows.max(1) as f64;
    println!(
        "{rows} rows in {} blocks: {:.2} ms, {:.1} ns a row",
        last.saturating_sub(1),
        total * 1e3,
        per_row(total)
    );
    println!(
        "column            ms      ns/row  share  raw bytes   block bytes  encoder in  stored  ratio"
    );
    for (seconds, c, raw, stored, lz4_in, lz4_out) in costs {
        println!(
            "{:17} {:7.3} {:6.1} {:5.1}%  {raw:10}  {stored:10}  {lz4_in:10} {lz4_out:10} {:5.2}",
            c.name(),
            seconds * 1e3,
            per_row(seconds),
            100.0 * seconds / total,
            lz4_out as f64 / lz4_in.max(1) as f64
        );
    }
}
