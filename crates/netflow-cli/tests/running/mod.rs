//! A running `netflow collector` for the CLI tests (collector.rs,
//! collector_e2e.rs, collector_tcp.rs and the analyzer tests): start it on an ephemeral port, follow its stderr, signal
//! it, and read the counters of its status and summary lines.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh, empty temporary directory for one test of one suite.
pub fn tmp_dir(suite: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("netflow-cli-{suite}-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every line of a multi-member gzip file (what the collector writes), each
/// parsed as JSON.
pub fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).expect("the file exists"))
        .read_to_string(&mut text)
        .expect("the file reads back without a gzip error");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub struct Running {
    pub child: Child,
    pub lines: Receiver<String>,
    pub stderr: Vec<String>,
    pub addr: String,
}

impl Running {
    /// Start `netflow collector ARGS -p 0 --host 127.0.0.1 --stats 0.1` and
    /// wait for its `listening on` line.
    pub fn start(args: &[&str]) -> Running {
        let mut all = vec!["-p", "0", "--host", "127.0.0.1", "--stats", "0.1"];
        all.extend_from_slice(args);
        Running::start_with(&all)
    }

    /// Start `netflow collector ARGS` (nothing added) and wait for its first
    /// `listening on` line.
    pub fn start_with(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netflow"))
            .arg("collector")
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
        r.addr = word_after(&line, "listening on ");
        r
    }

    /// The next stderr line satisfying `pred` (earlier ones are kept in `stderr`).
    pub fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
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

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("runs kill")
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Wait for the exit; returns the exit code and all of stderr.
    pub fn wait_exit(mut self) -> (Option<i32>, Vec<String>) {
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
        (status.code(), std::mem::take(&mut self.stderr))
    }
    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Wait until the collector has decoded `packets` datagrams.
    pub fn wait_packets(&mut self, packets: u64) {
        self.wait_line(&format!("a status line with {packets} packets"), |l| {
            l.starts_with("status ") && field(l, "packets") == Some(packets)
        });
    }

    /// SIGTERM, wait for the exit; asserts exit status 0 and no errors in
    /// the total line; returns all of stderr.
    pub fn terminate(mut self) -> Vec<String> {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("runs kill")
            .success();
        assert!(ok, "kill -TERM");
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "collector did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.stderr.push(line);
        }
        let all = self.stderr.join("\n");
        assert_eq!(status.code(), Some(0), "stderr:\n{all}");
        let total = self
            .stderr
            .iter()
            .find(|l| l.starts_with("total "))
            .unwrap_or_else(|| panic!("no total line:\n{all}"));
        assert_eq!(field(total, "errors"), Some(0), "{total}");
        assert_eq!(field(total, "write_errors"), Some(0), "{total}");
        std::mem::take(&mut self.stderr)
    }
}

/// Feed the collector from `netflow generate --target ADDR GENERATE` (20 s
/// at most, output discarded) until a first flush was written and then
/// `more(written, status line)` holds; kill -9 it there, mid-stream, and stop
/// the generator. Returns what the first flush seen had written.
pub fn kill_9_mid_stream(
    mut c: Running,
    generate: &[&str],
    more: impl Fn(u64, &str) -> bool,
) -> u64 {
    let mut gen = Command::new(env!("CARGO_BIN_EXE_netflow"))
        .args(["generate", "--target", &c.addr, "--duration", "20"])
        .args(generate)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs netflow generate");
    let first = c.wait_line("a first flush", |l| {
        l.starts_with("status ") && field(l, "written").is_some_and(|w| w > 0)
    });
    let written = field(&first, "written").unwrap();
    c.wait_line("more data after the flush", |l| {
        l.starts_with("status ") && more(written, l)
    });
    c.signal("-KILL");
    let (code, _) = c.wait_exit();
    assert_eq!(code, None, "killed by a signal");
    let _ = gen.kill();
    let _ = gen.wait();
    written
}

/// A test that fails midway leaves no collector running behind it.
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The word after `prefix` in `line` (e.g. the address of a
/// `listening on ADDR ...` line).
pub fn word_after(line: &str, prefix: &str) -> String {
    line.split(prefix)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no word after {prefix:?} in {line}"))
        .to_string()
}

/// `key N` in a line.
pub fn field(line: &str, key: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == key)
        .and_then(|w| w[1].trim_end_matches(',').parse().ok())
}

/// Per exporter address: (packets, records, options) from `exporter ADDR ...` lines.
pub fn per_exporter(lines: &[String]) -> BTreeMap<String, (u64, u64, u64)> {
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
