//! `netflow collector` end to end on real loopback sockets, against
//! independent evidence: what `netflow generate` reports it sent (v5, IPFIX,
//! data before templates), a real exporter (softflowd) whose exports tcpdump
//! captures at the same time and `netflow decode` reads, an exporter restart
//! built with the library's encoder, and the Python original's analyzer
//! reading a file the collector wrote.
//!
//! Every wait is for a condition (a stderr status line, a process exit),
//! with generous timeouts. Tests that need outside tools (softflowd,
//! tcpdump as root, the PyPI `netflow` module) skip loudly without them,
//! and fail when CI=true.

mod common;
mod running;

use running::{field, per_exporter, read_lines, Running, TIMEOUT};

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netflow::encode::MessageBuilder;
use netflow::wire::v9::V9Header;
use netflow::{FieldSpec, OwnedValue, Protocol, Template, TemplateKind};
use serde_json::Value;

fn on_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Skip loudly (or fail on CI) when `ok` is false.
fn require(ok: bool, test: &str, what: &str) -> bool {
    if !ok {
        if on_ci() {
            panic!("{test}: {what} is required on CI (CI=true)");
        }
        eprintln!("!!!!!!!! SKIPPED {test}: needs {what} !!!!!!!!");
    }
    ok
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `netflow generate --target TARGET ARGS`: its report lines.
fn generate(target: &str, args: &[&str]) -> Vec<String> {
    let run = common::netflow(&[&["generate", "--target", target], args].concat(), None);
    assert_eq!(
        run.code,
        Some(0),
        "generate failed: {}\n{}",
        run.stdout,
        run.stderr
    );
    run.stdout.lines().map(String::from).collect()
}

fn total_packets(report: &[String]) -> u64 {
    let total = report
        .iter()
        .find(|l| l.starts_with("total "))
        .expect("a total line");
    field(total, "packets").unwrap()
}

/// Flows-format lines per exporter: (flow lines, options lines).
fn lines_per_exporter(lines: &[Value]) -> BTreeMap<String, (u64, u64)> {
    let mut per: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for l in lines {
        let exporter = l["exporter"]
            .as_str()
            .unwrap_or_else(|| panic!("no exporter in {l}"))
            .to_string();
        let e = per.entry(exporter).or_default();
        if l["options"] == Value::Bool(true) {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }
    per
}

/// Run the generator against a fresh `--format flows` collector; returns
/// the generator's report, the collector's stderr and the stored lines,
/// after checking that per exporter the stored flow and options lines are
/// what the generator reports it sent.
fn generate_into_collector(dir: &Path, args: &[&str]) -> (Vec<String>, Vec<String>, Vec<Value>) {
    let file = dir.join("flows.gz");
    let mut c = Running::start(&["-o", file.to_str().unwrap(), "--format", "flows"]);
    let report = generate(&c.addr, args);
    let want = per_exporter(&report);
    assert_eq!(want.len(), 3, "{report:?}");
    c.wait_packets(total_packets(&report));
    let stderr = c.terminate();
    let lines = read_lines(&file);
    let got = lines_per_exporter(&lines);
    let want_lines: BTreeMap<String, (u64, u64)> =
        want.iter().map(|(a, w)| (a.clone(), (w.1, w.2))).collect();
    assert_eq!(
        got,
        want_lines,
        "stored lines per exporter (flows, options) vs the generator's report {args:?}\n{}",
        stderr.join("\n")
    );
    (report, stderr, lines)
}

/// Evidence 1: v5 and IPFIX (v9 is in tests/collector.rs): 3 exporters at 300
/// datagrams/s, every flow and options record stored, per exporter.
#[test]
fn generator_v5_and_ipfix_every_record_stored_per_exporter() {
    for version in ["5", "10"] {
        let dir = common::tmp_dir(&format!("e2e_generate_v{version}"));
        let (report, _, lines) = generate_into_collector(
            &dir,
            &[
                "--version",
                version,
                "--rate",
                "300",
                "--duration",
                "1",
                "--exporters",
                "3",
                "--template-refresh",
                "0.3",
                "--seed",
                "5",
            ],
        );
        let want = per_exporter(&report);
        for (addr, (_, records, options)) in &want {
            assert!(*records > 0, "v{version} {addr}");
            assert_eq!(*options > 0, version == "10", "v{version} {addr}: options");
        }
        for l in &lines {
            assert_eq!(l["version"].as_u64().unwrap().to_string(), version, "{l}");
            assert!(l["fields"].is_object(), "{l}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Evidence 2: Data before templates: `--late-templates 2` makes exporters 1 and 2
/// send 2 data-only packets before their templates; the collector keeps
/// that data and stores it once the templates arrive (v9 and IPFIX).
#[test]
fn late_templates_every_record_stored() {
    for version in ["9", "10"] {
        let dir = common::tmp_dir(&format!("e2e_late_v{version}"));
        let (report, stderr, lines) = generate_into_collector(
            &dir,
            &[
                "--version",
                version,
                "--rate",
                "200",
                "--duration",
                "0.5",
                "--exporters",
                "3",
                "--late-templates",
                "2",
                "--seed",
                "7",
            ],
        );
        // The generator's exporters in creation order are not in the report
        // order (sorted by address); tell them by their domain: 1, 2 late.
        let domain_of: BTreeMap<String, u64> = report
            .iter()
            .filter(|l| l.starts_with("exporter "))
            .map(|l| {
                (
                    l.split_whitespace().nth(1).unwrap().to_string(),
                    field(l, "domain").unwrap(),
                )
            })
            .collect();
        for (addr, domain) in &domain_of {
            let mine: Vec<&Value> = lines
                .iter()
                .filter(|l| l["exporter"].as_str() == Some(addr))
                .collect();
            // The templates (and the options data) came in the packet with
            // the lowest sequence number that has options records.
            let first_template_seq = mine
                .iter()
                .filter(|l| l["options"] == Value::Bool(true))
                .map(|l| l["sequence"].as_u64().unwrap())
                .min()
                .expect("options records");
            let early = mine
                .iter()
                .filter(|l| {
                    l["options"] == Value::Bool(false)
                        && l["sequence"].as_u64().unwrap() < first_template_seq
                })
                .count();
            if *domain <= 2 {
                assert!(
                    first_template_seq > 0 && early > 0,
                    "v{version} exporter {addr} (late): {early} records stored from before the templates (sequence {first_template_seq})"
                );
            } else {
                assert_eq!(
                    (first_template_seq, early),
                    (0, 0),
                    "v{version} exporter {addr}"
                );
            }
        }
        // The collector's summary: nothing left waiting, some replayed.
        for l in stderr.iter().filter(|l| l.starts_with("exporter ")) {
            assert_eq!(field(l, "waiting"), Some(0), "{l}");
            assert_eq!(field(l, "dropped"), Some(0), "{l}");
        }
        let replayed: u64 = stderr
            .iter()
            .filter(|l| l.starts_with("exporter "))
            .filter_map(|l| field(l, "replayed"))
            .sum();
        assert!(replayed > 0, "replayed sets:\n{}", stderr.join("\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The comparable part of a flows-format or `netflow decode` line.
fn record_key(l: &Value) -> String {
    serde_json::json!({
        "exporter": l["exporter"],
        "version": l["version"],
        "domain": l["domain"],
        "template_id": l["template_id"],
        "options": l["options"],
        "fields": l["fields"],
    })
    .to_string()
}

fn multiset<'a>(lines: impl Iterator<Item = &'a Value>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(record_key(l)).or_insert(0) += 1;
    }
    m
}

/// Evidence 3: A real exporter: softflowd reads testdata/captures/input-traffic.pcap
/// and exports NetFlow v9 to the collector while tcpdump captures the same
/// datagrams; the collector's stored records equal `netflow decode`'s
/// records of the capture (as multisets of exporter, version, domain,
/// template, options flag and fields).
#[test]
fn softflowd_to_collector_equals_decode_of_a_tcpdump_capture() {
    let test = "softflowd_to_collector_equals_decode_of_a_tcpdump_capture";
    if !require(have("softflowd", "-h"), test, "softflowd")
        || !require(
            have("tcpdump", "--version") && is_root(),
            test,
            "tcpdump as root",
        )
    {
        return;
    }
    let dir = common::tmp_dir("e2e_softflowd");
    let input =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures/input-traffic.pcap");
    // softflowd puts the first 16 bytes of the file name into an options
    // record: run it in `dir` on a relative name, as make-captures.sh does.
    std::fs::copy(&input, dir.join("input-traffic.pcap")).expect("copies the input pcap");
    let file = dir.join("flows.gz");
    let mut c = Running::start(&["-o", file.to_str().unwrap(), "--format", "flows"]);
    let port = c.port();

    let pcap = dir.join("exports.pcap");
    let mut tcpdump = Command::new("tcpdump")
        .args(["-i", "lo", "-n", "-U", "--immediate-mode", "-s0", "-w"])
        .arg(&pcap)
        .arg(format!("udp and dst host 127.0.0.1 and dst port {port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts tcpdump");
    let mut err = tcpdump.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("listening on") {
        match err.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => panic!("tcpdump did not start: {}", String::from_utf8_lossy(&seen)),
        }
    }
    let softflowd = Command::new("timeout")
        .args(["120", "softflowd", "-d", "-a", "-c", "none", "-p"])
        .arg(dir.join("softflowd.pid"))
        .args(["-r", "input-traffic.pcap", "-n"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-v", "9"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("runs softflowd");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&softflowd.stdout),
        String::from_utf8_lossy(&softflowd.stderr)
    );
    assert!(softflowd.status.success(), "softflowd failed:\n{log}");
    // "Flows exported: F (R records) in P packets (X failures)"
    let stats = log
        .lines()
        .find(|l| l.starts_with("Flows exported:"))
        .unwrap_or_else(|| panic!("no softflowd statistics:\n{log}"));
    assert!(stats.contains("(0 failures)"), "{stats}");
    let sent: u64 = stats
        .split(" in ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("packets in {stats}"));
    assert!(sent > 0, "{stats}");

    // Everything softflowd sent was decoded by the collector.
    c.wait_packets(sent);
    // tcpdump (immediate mode, -U) has written every datagram: decode the
    // capture until it holds them all, then SIGTERM ends tcpdump.
    let deadline = Instant::now() + TIMEOUT;
    let decoded = loop {
        let decoded = common::netflow(&["decode", pcap.to_str().unwrap()], None);
        if decoded.code == Some(0) && decoded.summary().contains(&format!("packets {sent},")) {
            break decoded;
        }
        assert!(
            Instant::now() < deadline,
            "tcpdump did not capture the {sent} datagrams softflowd sent ({stats}): {}",
            decoded.summary()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = Command::new("kill").arg(tcpdump.id().to_string()).status();
    let _ = tcpdump.wait();
    let stderr = c.terminate();
    let truth = decoded.records();
    let stored = read_lines(&file);
    assert!(!truth.is_empty());
    assert!(truth.iter().any(|l| l["options"] == Value::Bool(true)));
    let want = multiset(truth.iter());
    let got = multiset(stored.iter());
    if got != want {
        let only_want: Vec<_> = want
            .iter()
            .filter(|(k, n)| got.get(*k) != Some(n))
            .take(5)
            .collect();
        let only_got: Vec<_> = got
            .iter()
            .filter(|(k, n)| want.get(*k) != Some(n))
            .take(5)
            .collect();
        panic!(
            "collector ({} lines) vs decode of the capture ({} records) differ\ndecode (first 5 differing): {only_want:#?}\ncollector: {only_got:#?}\ncollector stderr:\n{}",
            stored.len(),
            truth.len(),
            stderr.join("\n")
        );
    }
    eprintln!(
        "softflowd: {sent} datagrams, {} records (options {}) stored == decoded",
        stored.len(),
        stored
            .iter()
            .filter(|l| l["options"] == Value::Bool(true))
            .count()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Evidence 4: An exporter restart: from one socket, v9 template 256 with layout A
/// and data, then a sequence reset (0) and template 256 with layout B and
/// data. The collector decodes each data set with the layout in force.
#[test]
fn exporter_restart_new_layout_under_the_same_template_id() {
    let dir = common::tmp_dir("e2e_restart");
    let file = dir.join("flows.gz");
    let mut c = Running::start(&["-o", file.to_str().unwrap(), "--format", "flows"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(&c.addr).unwrap();
    let f = |id, len| FieldSpec::new(0, id, len);
    let compile = |specs: &[FieldSpec]| {
        Template::compile(Protocol::V9, 256, TemplateKind::Data, 0, specs).expect("valid template")
    };
    // A: IPV4_SRC_ADDR, IPV4_DST_ADDR, IN_BYTES.
    let a = compile(&[f(8, 4), f(12, 4), f(1, 4)]);
    // B: L4_SRC_PORT, L4_DST_PORT, IN_PKTS, PROTOCOL.
    let b = compile(&[f(7, 2), f(11, 2), f(2, 4), f(4, 1)]);
    let packet = |sequence: u32,
                  uptime: u32,
                  template: &Template,
                  with_template: bool,
                  values: &[Vec<OwnedValue>]| {
        let mut out = Vec::new();
        let mut m = MessageBuilder::v9(
            &mut out,
            V9Header {
                uptime,
                timestamp: 1_700_000_000 + sequence,
                sequence,
                source_id: 7,
                ..Default::default()
            },
        );
        if with_template {
            m.template(template).unwrap();
        }
        for v in values {
            m.values(template, v).unwrap();
        }
        m.finish().unwrap();
        out
    };
    use OwnedValue::{Ipv4, Unsigned};
    let a_rows: Vec<Vec<OwnedValue>> = (0..3u64)
        .map(|i| {
            vec![
                Ipv4([10, 0, 0, i as u8 + 1].into()),
                Ipv4([192, 0, 2, 1].into()),
                Unsigned(1000 + i),
            ]
        })
        .collect();
    let b_rows: Vec<Vec<OwnedValue>> = (0..4u64)
        .map(|i| {
            vec![
                Unsigned(40000 + i),
                Unsigned(443),
                Unsigned(5 + i),
                Unsigned(6),
            ]
        })
        .collect();
    // Before: 3 packets (sequence 0, 1, 2), then the restart.
    let datagrams = [
        packet(0, 5_000_000, &a, true, &a_rows[..1]),
        packet(1, 5_001_000, &a, false, &a_rows[1..2]),
        packet(2, 5_002_000, &a, false, &a_rows[2..]),
        packet(0, 1_000, &b, true, &b_rows[..2]),
        packet(1, 2_000, &b, false, &b_rows[2..]),
    ];
    for (i, d) in datagrams.iter().enumerate() {
        sock.send(d).unwrap();
        // In order: wait until the collector has each one before the next.
        c.wait_packets(i as u64 + 1);
    }
    let stderr = c.terminate();
    let lines = read_lines(&file);
    let me = sock.local_addr().unwrap().to_string();
    let keys: Vec<BTreeSet<String>> = lines
        .iter()
        .filter(|l| l["exporter"].as_str() == Some(me.as_str()))
        .map(|l| {
            assert_eq!(l["template_id"], 256, "{l}");
            l["fields"].as_object().unwrap().keys().cloned().collect()
        })
        .collect();
    assert_eq!(keys.len(), 7, "{lines:#?}\n{}", stderr.join("\n"));
    let names_a = &keys[0];
    let names_b = &keys[3];
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        names_a,
        &set(&["IPV4_SRC_ADDR", "IPV4_DST_ADDR", "IN_BYTES"]),
        "layout A"
    );
    assert_eq!(
        names_b,
        &set(&["L4_SRC_PORT", "L4_DST_PORT", "IN_PKTS", "PROTOCOL"]),
        "layout B"
    );
    assert!(keys[..3].iter().all(|k| k == names_a), "{keys:?}");
    assert!(keys[3..].iter().all(|k| k == names_b), "{keys:?}");
    // The values went with their layout.
    let values: Vec<String> = lines.iter().map(|l| l["fields"].to_string()).collect();
    assert!(
        values[0].contains("10.0.0.1") && values[0].contains("1000"),
        "{values:?}"
    );
    assert!(
        values[3].contains("40000") && values[3].contains("443"),
        "{values:?}"
    );
    assert!(values[6].contains("40003"), "{values:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn python_netflow() -> bool {
    Command::new("python3")
        .args(["-c", "import netflow.analyzer"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Evidence 5: The Python original's analyzer (PyPI netflow==0.12.2) reads a file
/// the collector wrote in the default (original) layout from a replay of
/// a softflowd v9 capture.
#[test]
fn python_analyzer_reads_the_collector_file() {
    let test = "python_analyzer_reads_the_collector_file";
    if !require(
        python_netflow(),
        test,
        "python3 with the PyPI netflow module",
    ) {
        return;
    }
    let dir = common::tmp_dir("e2e_analyzer");
    let file: PathBuf = dir.join("original.gz");
    let mut c = Running::start(&["-o", file.to_str().unwrap()]);
    let capture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/captures/softflowd-v9.pcap"
    );
    let replay = common::netflow(
        &["replay", capture, "--target", &c.addr, "--speed", "0"],
        None,
    );
    replay.assert_success();
    let total = replay
        .stdout
        .lines()
        .find(|l| l.starts_with("total "))
        .expect("a total line");
    let datagrams = field(total, "datagrams").unwrap();
    assert!(datagrams > 0, "{total}");
    c.wait_packets(datagrams);
    c.terminate();
    assert_eq!(
        read_lines(&file).len() as u64,
        datagrams,
        "one line per datagram"
    );

    let out = Command::new("python3")
        .args(["-m", "netflow.analyzer", "-n", "-p", "0", "-f"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("runs python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "analyzer exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stderr.is_empty(), "analyzer stderr:\n{stderr}");
    let mut lines = stdout.lines();
    let header = lines
        .by_ref()
        .find(|l| l.starts_with("Timestamp"))
        .unwrap_or_else(|| panic!("no header line:\n{stdout}"));
    assert!(header.contains("Involved hosts"), "{header}");
    let connections = lines
        .filter(|l| l.contains(" | ") && !l.starts_with('-'))
        .count();
    assert!(connections >= 1, "no connection line:\n{stdout}");
    eprintln!("analyzer: {connections} connection lines");
    let _ = std::fs::remove_dir_all(&dir);
}
