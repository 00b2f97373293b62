//! Helpers shared by the integration tests: run the built `netflow` binary,
//! temporary files, the seed vectors, and tiny pcaps built from payloads.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use serde_json::Value;

/// The result of one run of the binary.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl Run {
    /// Every stdout line parsed as JSON.
    pub fn records(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The last stderr line (the summary).
    pub fn summary(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }

    pub fn assert_success(&self) {
        assert_eq!(self.code, Some(0), "exit status; stderr:\n{}", self.stderr);
    }
}

/// Run `netflow ARGS...`, optionally with bytes on standard input.
pub fn netflow(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netflow"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("runs the netflow binary");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let bytes = bytes.to_vec();
        // Write from a thread so a full stdout pipe cannot deadlock us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("waits for netflow");
    Run {
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
        code: status.code(),
    }
}

/// A fresh directory for one test's files.
pub fn tmp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("netflow-cli-tests")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creates the temp dir");
    dir
}

/// Write `lines` as a hex text file and return its path as a string.
pub fn hex_file(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).expect("writes the hex file");
    path.to_str().expect("UTF-8 path").to_string()
}

/// The seed vectors: the repository's copy (testdata/), else shared/ beside
/// the repository. None (after a loud message) if neither exists.
pub fn seed_vectors() -> Option<Value> {
    let candidates = [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/seed_vectors.json"
        ),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/testdata/seed_vectors.json"
        ),
    ];
    for path in candidates {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Some(serde_json::from_str(&text).expect("seed_vectors.json is JSON"));
        }
    }
    eprintln!("!!!!!!!! SKIPPED: seed_vectors.json not found in testdata/ nor ../shared/testdata/ !!!!!!!!");
    None
}

/// The hex of a named seed vector.
pub fn vector_hex<'a>(seed: &'a Value, name: &str) -> &'a str {
    seed["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))["hex"]
        .as_str()
        .expect("hex")
}

/// Decode hex (test-side, independent of the code under test).
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).expect("hex digit"))
        .collect()
}

/// An Ethernet + IPv4 + UDP frame.
pub fn eth_ipv4_udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = 20 + 8 + payload.len();
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Write a pcap (Ethernet) of frames, timestamps 1 s apart from `start_s`.
pub fn write_pcap(path: &Path, start_s: u64, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(Vec::new()).expect("pcap header");
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_secs(start_s + i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .expect("pcap packet");
    }
    std::fs::write(path, w.into_writer()).expect("writes the pcap");
}
