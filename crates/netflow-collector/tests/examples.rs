//! The examples, run as programs against `netflow generate` (the workspace's
//! generator binary, built by `cargo test --workspace`): every record the
//! generator reports sending, per exporter, is printed by the example.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// `target/<profile>`, from this test's own path (`target/<profile>/deps/examples-HASH`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// `key N` in a line.
fn field(line: &str, key: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == key)
        .and_then(|w| w[1].parse().ok())
}

/// Run example `name` on an ephemeral port, send with `netflow generate`,
/// compare what it printed per exporter with the generator's report.
fn example_prints_every_record(name: &str) {
    let netflow = profile_dir().join("netflow");
    if !netflow.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is built by cargo test --workspace",
            netflow.display()
        );
        eprintln!(
            "!!!!!!!! SKIPPED: needs {} (cargo test --workspace) !!!!!!!!",
            netflow.display()
        );
        return;
    }
    let example = profile_dir().join("examples").join(name);
    // 2 exporters, 80 datagrams of v9 (templates, data, options).
    let packets = 80;
    let mut child = Command::new(&example)
        .args(["127.0.0.1:0", &packets.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("runs {}: {e}", example.display()));
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let first = rx.recv_timeout(TIMEOUT).expect("the listening line");
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let sent = Command::new(&netflow)
        .args(["generate", "--target", &addr, "--version", "9"])
        .args(["--exporters", "2", "--count", "80", "--rate", "400"])
        .output()
        .expect("runs netflow generate");
    let report = String::from_utf8_lossy(&sent.stdout).into_owned();
    assert!(sent.status.success(), "{report}");
    let mut want: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for l in report.lines().filter(|l| l.starts_with("exporter ")) {
        let addr = l.split_whitespace().nth(1).unwrap().to_string();
        let get = |k| field(l, k).unwrap_or_else(|| panic!("no {k} in {l}"));
        want.insert(addr, (get("packets"), get("records"), get("options")));
    }
    assert_eq!(want.len(), 2, "{report}");
    assert_eq!(want.values().map(|w| w.0).sum::<u64>(), packets, "{report}");

    // The example ends by itself after `packets` exports.
    let out = child.wait_with_output().expect("the example ends");
    // Every stderr line forwarded (the reader ends at the pipe's end).
    reader.join().expect("the stderr reader ends");
    let stderr: Vec<String> = rx.try_iter().collect();
    assert!(out.status.success(), "{stderr:?}");
    let mut got: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let exporter = l.split_whitespace().nth(1).unwrap().to_string();
        let e = got.entry(exporter).or_default();
        e.0 += 1;
        e.1 += field(l, "records").unwrap();
        e.2 += field(l, "options").unwrap();
    }
    assert_eq!(got, want, "printed per exporter vs the generator's report");
    assert!(
        stderr.iter().any(|l| l.starts_with("total exporters 2 ")),
        "{stderr:?}"
    );
}

#[test]
fn blocking_example_prints_every_record() {
    example_prints_every_record("collect");
}

#[test]
fn async_example_prints_every_record() {
    example_prints_every_record("collect_async");
}
