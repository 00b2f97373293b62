//! `netflow collector --format columns` end to end: every record the
//! generator sent is a row (per exporter, counted from the file), SIGTERM
//! leaves a complete file, `kill -9` a file readable up to its last complete
//! block that a restarted collector appends to, rotation names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use netflow_store::columns::{flags, Column, ColumnFile};

mod running;

use running::{field, kill_9_mid_stream, per_exporter, Running};

fn generate(target: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_netflow"))
        .args(["generate", "--target", target])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runs netflow generate");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    running::tmp_dir("collector_columns", name)
}

/// Per exporter: (flow rows, options rows), read from the file's blocks.
fn rows_per_exporter(path: &Path) -> (BTreeMap<String, (u64, u64)>, ColumnFile) {
    let f = ColumnFile::open(path).unwrap();
    let mut per: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for i in 0..f.block_count() {
        let b = f.read_block(i, Column::ALL).unwrap();
        for r in 0..b.rows() {
            let e = per.entry(b.exporter(r).unwrap().to_string()).or_default();
            if b.flags(r) & flags::OPTIONS != 0 {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
    }
    (per, f)
}

#[test]
fn sigterm_every_record_is_a_row_and_the_file_is_complete() {
    let dir = tmp("sigterm");
    let file = dir.join("flows.nfcol");
    for version in ["9", "10"] {
        let _ = std::fs::remove_file(&file);
        let mut c = Running::start(&["-o", file.to_str().unwrap(), "--format", "columns"]);
        let sent = generate(
            &c.addr,
            &[
                "--version",
                version,
                "--rate",
                "300",
                "--duration",
                "1",
                "--exporters",
                "3",
            ],
        );
        let want = per_exporter(&sent);
        assert_eq!(want.len(), 3);
        c.wait_packets(want.values().map(|w| w.0).sum());
        let stderr = c.terminate();
        let (got, f) = rows_per_exporter(&file);
        let want_rows: BTreeMap<String, (u64, u64)> =
            want.iter().map(|(a, w)| (a.clone(), (w.1, w.2))).collect();
        assert_eq!(
            got, want_rows,
            "v{version}: rows per exporter (flows, options)"
        );
        assert!(f.is_complete(), "a footer after SIGTERM");
        assert!(f.problems().is_empty(), "{:?}", f.problems());
        let total = stderr.iter().find(|l| l.starts_with("total ")).unwrap();
        assert_eq!(field(total, "written"), Some(f.rows()), "{total}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_leaves_complete_blocks_and_a_restart_appends() {
    let dir = tmp("kill9");
    let file = dir.join("flows.nfcol");
    let path = file.to_str().unwrap();
    let c = Running::start(&["-o", path, "--format", "columns"]);
    let written = kill_9_mid_stream(
        c,
        &["--version", "9", "--rate", "500", "--exporters", "2"],
        |w, l| field(l, "records").is_some_and(|r| r > w + 500),
    );
    let f = ColumnFile::open(&file).unwrap();
    assert!(!f.is_complete(), "no footer after kill -9");
    assert!(f.rows() >= written, "{} rows, {written} flushed", f.rows());
    // At most a torn last block, reported as cut at the end.
    assert!(f.problems().len() <= 1, "{:?}", f.problems());
    for p in f.problems() {
        assert!(p.message.contains("cut"), "{p}");
    }
    for i in 0..f.block_count() {
        f.read_block(i, Column::ALL).unwrap();
    }
    let before = f.rows();
    // Restarted on the same file: it appends (after cutting a torn block).
    let mut c = Running::start(&["-o", path, "--format", "columns"]);
    let sent = generate(
        &c.addr,
        &["--version", "9", "--rate", "300", "--count", "30"],
    );
    let want = per_exporter(&sent);
    let (packets, records, options) = want.values().next().copied().unwrap();
    c.wait_packets(packets);
    c.terminate();
    let f = ColumnFile::open(&file).unwrap();
    assert!(f.problems().is_empty(), "{:?}", f.problems());
    assert!(f.is_complete());
    assert_eq!(f.rows(), before + records + options);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rotated_columns_files_keep_their_extension() {
    let dir = tmp("rotate");
    let base = dir.join("flows.nfcol");
    let mut c = Running::start(&[
        "-o",
        base.to_str().unwrap(),
        "--format",
        "columns",
        "--rotate",
        "1s",
    ]);
    let sent = generate(
        &c.addr,
        &["--version", "5", "--rate", "20", "--duration", "2.5"],
    );
    let (packets, records, _) = per_exporter(&sent).values().next().copied().unwrap();
    c.wait_packets(packets);
    let stderr = c.terminate();
    let total = stderr.iter().find(|l| l.starts_with("total ")).unwrap();
    let rotations = field(total, "rotations").unwrap();
    assert!(rotations >= 1, "{total}");
    let mut rows = 0;
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Every rotation closed a file; one more when rows came after the last.
    assert!(files.len() as u64 >= rotations, "{files:?} {total}");
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let secs = name
            .strip_prefix("flows.")
            .and_then(|n| n.strip_suffix(".nfcol"))
            .map(|s| s.split('-').next().unwrap().to_string());
        assert!(secs.is_some_and(|s| s.parse::<u64>().is_ok()), "{name}");
        let cf = ColumnFile::open(f).unwrap();
        assert!(cf.is_complete() && cf.problems().is_empty(), "{name}");
        rows += cf.rows();
    }
    assert_eq!(rows, records);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stream faster than a block per flush interval: blocks of about
/// `BLOCK_ROWS` rows (not one block of the whole second, whose buffers were
/// mapped and faulted in afresh every time), every record a row, with its
/// exporter (a value repeated over each set's rows) read back right. A
/// block is written once `BLOCK_ROWS` rows are buffered, so it may hold one
/// decode worker's hand-over more (at most 4,096 rows and a datagram's: at
/// most 30 here).
#[test]
fn blocks_hold_at_most_block_rows_rows() {
    use netflow_collector::BLOCK_ROWS;
    let dir = tmp("block_rows");
    let file = dir.join("flows.nfcol");
    let mut c = Running::start(&["-o", file.to_str().unwrap(), "--format", "columns"]);
    // About 18 records per v9 datagram: some 3.3 blocks within a second.
    let sent = generate(
        &c.addr,
        &[
            "--version",
            "9",
            "--rate",
            "12000",
            "--duration",
            "1",
            "--exporters",
            "2",
            "--prebuild",
        ],
    );
    let want = per_exporter(&sent);
    c.wait_packets(want.values().map(|w| w.0).sum());
    c.terminate();
    let (got, f) = rows_per_exporter(&file);
    let want_rows: BTreeMap<String, (u64, u64)> =
        want.iter().map(|(a, w)| (a.clone(), (w.1, w.2))).collect();
    assert_eq!(got, want_rows, "rows per exporter (flows, options)");
    let rows = f.rows() as usize;
    assert!(
        rows > 2 * BLOCK_ROWS,
        "{rows} rows: a stream of several blocks"
    );
    for i in 0..f.block_count() {
        let n = f.read_block(i, &[Column::Flags]).unwrap().rows();
        assert!(n <= BLOCK_ROWS + 4096 + 30, "block {i}: {n} rows");
    }
    assert!(f.block_count() >= rows.div_ceil(BLOCK_ROWS));
    let _ = std::fs::remove_dir_all(&dir);
}
