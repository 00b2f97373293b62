//! Shared by the analyzer tests (analyzer.rs, analyzer_top.rs): a collector
//! file from a replayed capture, and the tshark ground truth of a capture.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common;
use crate::running::{field, Running};

pub const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/captures");

/// `netflow collector` (with `extra` flags, e.g. `--format flows`) fed by
/// `netflow replay` of testdata/captures/`capture`.pcap; returns the file
/// once every datagram was decoded and the collector exited.
pub fn collect(dir: &Path, capture: &str, extra: &[&str]) -> PathBuf {
    let ext = if extra.contains(&"columns") {
        "nfcol"
    } else {
        "gz"
    };
    let file = dir.join(format!("{capture}{}.{ext}", extra.join("")));
    let mut args = vec!["-o", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut c = Running::start(&args);
    let pcap = format!("{CAPTURES}/{capture}.pcap");
    let replay = common::netflow(
        &["replay", &pcap, "--target", &c.addr, "--speed", "0"],
        None,
    );
    replay.assert_success();
    let total = replay
        .stdout
        .lines()
        .find(|l| l.starts_with("total "))
        .expect("a total line");
    c.wait_packets(field(total, "datagrams").unwrap());
    c.terminate();
    file
}

/// tshark's decode of a capture: one JSON object per record
/// (`datagram`, `version`, `kind` flow|options, `header`, `fields` by element id).
pub fn tshark_records(capture: &str) -> Vec<Value> {
    std::fs::read_to_string(format!("{CAPTURES}/{capture}.tshark.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
