//! The Python original's analyzer (`python3 -m netflow.analyzer`, PyPI
//! netflow==0.12.2) reads our Format::Original files unchanged and prints
//! the table of original.md section 8.
//!
//! Needs `python3` with the `netflow` module: skipped (loudly) when it is
//! absent, unless CI=true, where it fails (CI installs it, see .ci/run).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use flate2::write::GzEncoder;
use flate2::Compression;
use netflow_store::{read_lines, Format};

use common::*;

fn python_netflow_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import netflow"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but `python3 -c 'import netflow'` fails: pip install netflow==0.12.2");
        }
        eprintln!(
            "SKIPPED: python3 module `netflow` (PyPI netflow==0.12.2) is not installed; \
             the analyzer compatibility test did not run"
        );
    }
    ok
}

/// PACKET_V9_TEMPLATE + PACKETS_V9[0..3] as Original lines, received at
/// 1553946008.0 .. 1553946011.0.
fn lines() -> Vec<String> {
    let seed = seed();
    lines_of(
        &seed,
        &[
            "PACKET_V9_TEMPLATE",
            "PACKETS_V9[0]",
            "PACKETS_V9[1]",
            "PACKETS_V9[2]",
        ],
        &[1553946008.0, 1553946009.0, 1553946010.0, 1553946011.0],
        "127.0.0.1:50000".parse().unwrap(),
        Format::Original,
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn analyze(path: &Path, extra: &[&str]) -> String {
    let out = Command::new("python3")
        .args(["-m", "netflow.analyzer", "-n", "-f"])
        .arg(path)
        .args(extra)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "analyzer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const HEADER: &str =
    "Timestamp           | Service        | Size     | Duration  | Packets | Involved hosts";
const FIRST_ROWS: [&str; 6] = [
    "2019-03-30 11:40.08 | HTTP           | 100.02K  | 0 sec     |     129 | Between 127.0.0.1 (127.0.0.1) and 127.0.0.1 (127.0.0.1)",
    "2019-03-30 11:40.08 | HTTP           | 53.00K   | 0 sec     |      72 | Between 127.0.0.1 (127.0.0.1) and 127.0.0.1 (127.0.0.1)",
    "2019-03-30 11:40.09 | HTTP           | 6.55K    | 5 sec     |      20 | Between 127.0.0.1 (127.0.0.1) and 127.0.0.1 (127.0.0.1)",
    "2019-03-30 11:40.10 | HTTP           | 775B     | 5 sec     |      10 | Between 127.0.0.1 (127.0.0.1) and 127.0.0.1 (127.0.0.1)",
    "2019-03-30 11:40.10 | HTTP           | 774B     | 5 sec     |      10 | Between 127.0.0.1 (127.0.0.1) and 127.0.0.1 (127.0.0.1)",
    "2019-03-30 11:40.10 | HTTPS          | 181.29K  | 01:55 min |     233 | Between 127.0.0.1 (127.0.0.1) and 127.0.0.1 (127.0.0.1)",
];
const OTHER_SIZES: [&str; 6] = ["13.06K", "212.57K", "47.98K", "4.76K", "775B", "50.37K"];
const SKIPPED: &str = "10 connections skipped, because they had less than 10 packets (this value can be set with the -p flag).";

fn check_table(stdout: &str) {
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 2 + 12 + 1, "{stdout}");
    assert_eq!(rows[0], HEADER);
    assert_eq!(rows[1], "-".repeat(100));
    assert_eq!(&rows[2..8], &FIRST_ROWS[..], "{stdout}");
    for (row, size) in rows[8..14].iter().zip(OTHER_SIZES) {
        let cols: Vec<&str> = row.split(" | ").map(str::trim).collect();
        assert_eq!(cols.len(), 6, "{row}");
        assert_eq!(cols[2], size, "{stdout}");
        assert!(cols[0].starts_with("2019-03-30 11:40."), "{row}");
        assert_eq!(
            cols[5], "Between 127.0.0.1 (127.0.0.1) and 127.0.0.1 (127.0.0.1)",
            "{row}"
        );
    }
    assert_eq!(rows[14], SKIPPED);
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("netflow-store-analyzer");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_originals_analyzer_reads_our_files() {
    let lines = lines();
    // One gzip member per line, as the original's collector appends them.
    let members: Vec<u8> = lines.iter().flat_map(|l| gzip(l.as_bytes())).collect();
    // One member for the whole file.
    let single = gzip(lines.concat().as_bytes());
    let a = temp_path("members.gz");
    let b = temp_path("single.gz");
    std::fs::write(&a, &members).unwrap();
    std::fs::write(&b, &single).unwrap();

    // Our reader gives the lines back from both.
    for p in [&a, &b] {
        let back: Vec<String> = read_lines(p).unwrap().map(Result::unwrap).collect();
        let want: Vec<&str> = lines.iter().map(|l| l.trim_end_matches('\n')).collect();
        assert_eq!(back, want);
    }

    if !python_netflow_available() {
        return;
    }
    for p in [&a, &b] {
        check_table(&analyze(p, &[]));
    }
    // -p 0: all 22 connections, the first being "HTTP | 662B | 5 sec | 5", no skipped line.
    let all = analyze(&a, &["-p", "0"]);
    let rows: Vec<&str> = all.lines().collect();
    assert_eq!(rows.len(), 2 + 22, "{all}");
    assert!(
        rows[2].starts_with(
            "2019-03-30 11:40.08 | HTTP           | 662B     | 5 sec     |       5 | "
        ),
        "{all}"
    );
    assert!(!all.contains("skipped"));
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
}

/// v9 options records go under "options", which the analyzer ignores; in
/// "flows" they would crash it (it sorts flows by FIRST_SWITCHED).
#[test]
fn v9_options_under_their_own_key_keep_the_analyzer_running() {
    let packets = v9_options_packets();
    let mut cache = netflow::TemplateCache::new();
    let mut text = String::new();
    for (i, b) in packets.iter().enumerate() {
        let p = netflow::parse_packet(b, &mut cache).unwrap();
        let mut out = Vec::new();
        netflow_store::write_export(
            Format::Original,
            &mut out,
            &netflow_store::Export {
                received: 1700000000.0 + i as f64,
                exporter: "192.0.2.10:50000".parse().unwrap(),
                header: &p.header,
                sets: &p.data_sets,
            },
        );
        text.push_str(std::str::from_utf8(&out).unwrap());
    }
    assert_eq!(text.matches("\"options\": [").count(), 1);
    let ok = temp_path("options.gz");
    std::fs::write(&ok, gzip(text.as_bytes())).unwrap();
    let moved = text.replacen("], \"options\": [", ", ", 1);
    let bad = temp_path("options-in-flows.gz");
    std::fs::write(&bad, gzip(moved.as_bytes())).unwrap();
    if !python_netflow_available() {
        return;
    }
    let out = analyze(&ok, &["-p", "0"]);
    assert!(!out.contains("skipped"), "{out}");
    let crashed = Command::new("python3")
        .args(["-m", "netflow.analyzer", "-n", "-f"])
        .arg(&bad)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(!crashed.status.success());
    assert!(String::from_utf8_lossy(&crashed.stderr).contains("KeyError: 'FIRST_SWITCHED'"));
    let _ = std::fs::remove_file(&ok);
    let _ = std::fs::remove_file(&bad);
}
