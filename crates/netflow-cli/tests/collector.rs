//! `netflow collector` end to end on loopback: `netflow generate` sends, the
//! collector stores, SIGTERM stops it cleanly, `kill -9` leaves a readable
//! file. Every wait is for a condition (a status line, the file), with
//! generous timeouts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;

const TIMEOUT: Duration = Duration::from_secs(60);

struct Running {
    child: Child,
    lines: Receiver<String>,
    stderr: Vec<String>,
    addr: String,
}

impl Running {
    /// Start `netflow collector ARGS -p 0 --host 127.0.0.1 --stats 0.1` and
    /// wait for its `listening on` line.
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netflow"))
            .args([
                "collector",
                "-p",
                "0",
                "--host",
                "127.0.0.1",
                "--stats",
                "0.1",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs netflow collector");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut r = Running {
            child,
            lines,
            stderr: Vec::new(),
            addr: String::new(),
        };
        let line = r.wait_line("the listening line", |l| l.contains("listening on "));
        r.addr = line
            .split("listening on ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        r
    }

    /// The next stderr line satisfying `pred` (earlier ones are kept in `stderr`).
    fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stderr.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no {what} within {TIMEOUT:?}; stderr so far:\n{}",
                    self.stderr.join("\n")
                ),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("runs kill")
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Wait for the exit; returns the exit code and all of stderr.
    fn wait_exit(mut self) -> (Option<i32>, Vec<String>) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "collector did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.stderr.push(line);
        }
        (status.code(), self.stderr)
    }
}

/// `key N` in a line.
fn field(line: &str, key: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == key)
        .and_then(|w| w[1].trim_end_matches(',').parse().ok())
}

/// Per exporter address: (packets, records, options) from `exporter ADDR ...` lines.
fn per_exporter(lines: &[String]) -> BTreeMap<String, (u64, u64, u64)> {
    lines
        .iter()
        .filter(|l| l.starts_with("exporter "))
        .map(|l| {
            let addr = l.split_whitespace().nth(1).unwrap().to_string();
            let get = |k| field(l, k).unwrap_or_else(|| panic!("no {k} in {l}"));
            (addr, (get("packets"), get("records"), get("options")))
        })
        .collect()
}

fn generate(target: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_netflow"))
        .args(["generate", "--target", target])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runs netflow generate");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "generate failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "netflow-cli-collector-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every line of a multi-member gzip file, each parsed as JSON.
fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    let mut text = String::new();
    MultiGzDecoder::new(std::fs::File::open(path).expect("the file exists"))
        .read_to_string(&mut text)
        .expect("the file reads back without a gzip error");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn generate_then_sigterm_stores_every_record_per_exporter() {
    let dir = tmp("sigterm");
    let file = dir.join("flows.gz");
    let mut c = Running::start(&["-o", file.to_str().unwrap(), "--format", "flows"]);
    let sent = generate(
        &c.addr,
        &[
            "--version",
            "9",
            "--rate",
            "300",
            "--duration",
            "1",
            "--exporters",
            "3",
        ],
    );
    let sent_lines: Vec<String> = sent.lines().map(String::from).collect();
    let want = per_exporter(&sent_lines);
    assert_eq!(want.len(), 3, "{sent}");
    let total_packets: u64 = want.values().map(|w| w.0).sum();
    // Everything sent was decoded: then stop.
    c.wait_line("a status line with every packet", |l| {
        l.starts_with("status ") && field(l, "packets") == Some(total_packets)
    });
    c.signal("-TERM");
    let (code, stderr) = c.wait_exit();
    assert_eq!(code, Some(0), "stderr:\n{}", stderr.join("\n"));

    // The final summary: per exporter what the generator sent.
    let got = per_exporter(&stderr);
    assert_eq!(
        got,
        want,
        "collector summary vs generator\n{}",
        stderr.join("\n")
    );
    let total = stderr
        .iter()
        .find(|l| l.starts_with("total "))
        .expect("a total line");
    assert_eq!(field(total, "errors"), Some(0), "{total}");
    assert_eq!(field(total, "write_errors"), Some(0), "{total}");

    // The file: one line per record (flows and options), per exporter.
    // (Needs netflow_store::write_export, implemented alongside.)
    let lines = read_lines(&file);
    let mut per: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for l in &lines {
        let exporter = l["exporter"]
            .as_str()
            .unwrap_or_else(|| panic!("no exporter in {l}"))
            .to_string();
        let e = per.entry(exporter).or_default();
        if l["options"] == serde_json::Value::Bool(true) {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }
    let want_lines: BTreeMap<String, (u64, u64)> =
        want.iter().map(|(a, w)| (a.clone(), (w.1, w.2))).collect();
    assert_eq!(
        per, want_lines,
        "lines in the file per exporter: (flows, options)"
    );
    assert_eq!(field(total, "written"), Some(lines.len() as u64), "{total}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_mid_stream_leaves_a_readable_file() {
    let dir = tmp("kill9");
    let file = dir.join("original.gz");
    let mut c = Running::start(&["-o", file.to_str().unwrap()]);
    let addr = c.addr.clone();
    // Send for up to 20 s in the background; the collector is killed long before.
    let mut gen = Command::new(env!("CARGO_BIN_EXE_netflow"))
        .args([
            "generate",
            "--target",
            &addr,
            "--version",
            "5",
            "--rate",
            "200",
        ])
        .args(["--duration", "20", "--exporters", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs netflow generate");
    // Wait until a first gzip member was flushed and more is arriving.
    let first = c.wait_line("a flushed member", |l| {
        l.starts_with("status ") && field(l, "written").is_some_and(|w| w > 0)
    });
    let written = field(&first, "written").unwrap();
    c.wait_line("more data after the flush", |l| {
        l.starts_with("status ") && field(l, "packets").is_some_and(|p| p > written + 20)
    });
    c.signal("-KILL");
    let (code, _) = c.wait_exit();
    assert_eq!(code, None, "killed by a signal");
    let _ = gen.kill();
    let _ = gen.wait();
    // Every member written reads back; the original layout has one line per datagram.
    let lines = read_lines(&file);
    assert!(
        lines.len() as u64 >= written,
        "{} lines, {written} flushed",
        lines.len()
    );
    for l in &lines {
        let (_, v) = l.as_object().unwrap().iter().next().expect("one key");
        assert!(v["client"].is_array() && v["header"]["version"] == 5, "{l}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_datagrams_are_counted_and_the_collector_goes_on() {
    let dir = tmp("bad");
    let file = dir.join("out.gz");
    let mut c = Running::start(&["-o", file.to_str().unwrap()]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(&c.addr).unwrap();
    sock.send(&[b'A'; 32]).unwrap(); // killed the original's worker thread
    sock.send(&[0, 9, 0, 1]).unwrap(); // truncated v9 header
    c.wait_line("a warning", |l| {
        l.contains("WARNING") && l.contains("undecodable")
    });
    let sent = generate(
        &c.addr,
        &["--version", "5", "--count", "10", "--rate", "1000"],
    );
    let want: u64 = per_exporter(&sent.lines().map(String::from).collect::<Vec<_>>())
        .values()
        .map(|w| w.1)
        .sum();
    c.wait_line("the records after the bad datagrams", |l| {
        l.starts_with("status ") && field(l, "records") == Some(want)
    });
    c.signal("-INT");
    let (code, stderr) = c.wait_exit();
    assert_eq!(code, Some(0));
    let me = sock.local_addr().unwrap().to_string();
    let line = stderr
        .iter()
        .find(|l| l.starts_with(&format!("exporter {me} ")))
        .expect("a summary line for the bad exporter");
    assert_eq!(field(line, "packets"), Some(2), "{line}");
    assert_eq!(field(line, "errors"), Some(2), "{line}");
    assert!(
        line.contains("unknown_version 1") && line.contains("truncated 1"),
        "{line}"
    );
    assert_eq!(read_lines(&file).len(), 10, "one line per v5 datagram");
    let _ = std::fs::remove_dir_all(&dir);
}
