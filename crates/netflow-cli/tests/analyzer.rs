//! `netflow analyzer` (the table) against the Python original
//! (`python3 -m netflow.analyzer`, PyPI netflow==0.12.2) as the oracle:
//! same input file, same flags, same stdout, line for line.
//!
//! - the original's own test input (its test_analyzer: PACKET_V9_TEMPLATE +
//!   PACKETS_V9 through the collector), built from the seed vectors' full
//!   decode by netflow 0.12.2 (not by our decoder);
//! - files written by `netflow collector` from replayed captures: v9 compared
//!   directly; for v1/v5/IPFIX (the original crashes or skips them) the
//!   oracle is the original run on tshark's decode of the same capture
//!   (testdata/captures/*.tshark.jsonl) rewritten with v9 field names.
//!
//! Requires python3 with the netflow module: these tests FAIL without it
//! (CI installs it, see .ci/run).

mod analyzer_support;
mod common;
mod running;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Map, Value};

use analyzer_support::{collect, tshark_records};

struct Out {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

fn require_python_netflow() {
    let ok = Command::new("python3")
        .args(["-c", "import netflow"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 with the netflow module (pip install netflow==0.12.2) is required: \
         it is the oracle of these tests (CI installs it)"
    );
}

fn run(program: &str, args: &[&str], file: Option<&Path>, stdin: Option<&[u8]>, tz: &str) -> Out {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(f) = file {
        cmd.arg("-f").arg(f);
    }
    cmd.env("TZ", tz)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("runs {program}: {e}"));
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().unwrap();
    Out {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

fn python(args: &[&str], file: Option<&Path>, stdin: Option<&[u8]>, tz: &str) -> Out {
    require_python_netflow();
    let mut a = vec!["-m", "netflow.analyzer"];
    a.extend_from_slice(args);
    run("python3", &a, file, stdin, tz)
}

fn ours(args: &[&str], file: Option<&Path>, stdin: Option<&[u8]>, tz: &str) -> Out {
    let mut a = vec!["analyzer"];
    a.extend_from_slice(args);
    run(env!("CARGO_BIN_EXE_netflow"), &a, file, stdin, tz)
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The original's test_analyzer input: one line per export, `{ts: {client,
/// header, flows}}`, with header and flows exactly as netflow 0.12.2 decoded
/// them (seed vectors), joined by "\n" without a trailing newline.
fn original_test_lines(keys: &[&str]) -> Vec<String> {
    let seed = common::seed_vectors().expect("testdata/seed_vectors.json");
    let names = [
        "PACKET_V9_TEMPLATE",
        "PACKETS_V9[0]",
        "PACKETS_V9[1]",
        "PACKETS_V9[2]",
    ];
    names
        .iter()
        .zip(keys)
        .map(|(name, key)| {
            let v = seed["vectors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == *name)
                .unwrap();
            let decoded = &v["expect"]["verified_by_decoding_with_netflow_0_12_2"];
            let mut entry = Map::new();
            entry.insert(
                key.to_string(),
                json!({"client": ["127.0.0.1", 1337], "header": decoded["header"], "flows": decoded["flows"]}),
            );
            Value::Object(entry).to_string()
        })
        .collect()
}

const TEST_KEYS: [&str; 4] = [
    "1553946008.0",
    "1553946009.0",
    "1553946010.0",
    "1553946011.0",
];

fn assert_same(what: &str, py: &Out, rs: &Out) {
    assert_eq!(py.code, Some(0), "{what}: python failed:\n{}", py.stderr);
    assert_eq!(rs.code, Some(0), "{what}: ours failed:\n{}", rs.stderr);
    assert_eq!(
        py.stdout.lines().collect::<Vec<_>>(),
        rs.stdout.lines().collect::<Vec<_>>(),
        "{what}: stdout differs"
    );
}

#[test]
fn same_table_as_the_original_on_its_test_input() {
    let dir = common::tmp_dir("analyzer_original_input");
    let file = write(
        &dir,
        "test.gz",
        &gzip(&original_test_lines(&TEST_KEYS).join("\n")),
    );
    for flags in [
        &["-n", "-p", "0"][..],
        &["-n"],
        &["-n", "-p", "10", "-v"],
        &["-n", "-p", "100", "-v"],
        &["-n", "--match-host", "127.0.0.1", "-p", "50"],
        &["-n", "--match-host", "10.0.0.1"],
        &["-p", "0"], // DNS on: 127.0.0.1 resolves through /etc/hosts
    ] {
        let py = python(flags, Some(&file), None, "UTC");
        let rs = ours(flags, Some(&file), None, "UTC");
        assert_same(&format!("{flags:?}"), &py, &rs);
        assert_eq!(rs.stderr, "", "{flags:?}");
    }
    // The original's own assertion (test_analyzer): 22 connections + 2 header lines with -p 0.
    let py = python(&["-n", "-p", "0"], Some(&file), None, "UTC");
    assert_eq!(py.stdout.lines().count(), 24, "{}", py.stdout);
    // The spec's sample (section 8): -p 10 prints 12 connections, skips 10.
    let rs = ours(&["-n"], Some(&file), None, "UTC");
    assert_eq!(
        rs.stdout.lines().nth(2).unwrap(),
        "2019-03-30 11:40.08 | HTTP           | 100.02K  | 0 sec     |     129 | Between 127.0.0.1 (127.0.0.1) and 127.0.0.1 (127.0.0.1)"
    );
    assert!(rs.stdout.ends_with(
        "10 connections skipped, because they had less than 10 packets (this value can be set with the -p flag).\n"
    ));
    // stdin (gzip), as the original reads it by default.
    let bytes = std::fs::read(&file).unwrap();
    let py = python(&["-n", "-p", "0"], None, Some(&bytes), "UTC");
    let rs = ours(&["-n", "-p", "0"], None, Some(&bytes), "UTC");
    assert_same("stdin", &py, &rs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lexicographic key order (a 9-digit key sorts after 10-digit ones),
/// unpaired flows for -v, and local time from a POSIX TZ with a half-hour offset.
#[test]
fn same_order_pending_list_and_local_time_as_the_original() {
    let dir = common::tmp_dir("analyzer_order_tz");
    let keys = [
        "1553946008.25",
        "999999999.5",
        "1553946010.0",
        "1553946008.125",
    ];
    let mut lines = original_test_lines(&keys);
    lines.swap(0, 2);
    let file = write(&dir, "order.gz", &gzip(&lines.join("\n")));
    // The template's export and PACKETS_V9[1], some flows removed: their peers stay unpaired.
    let drop_flows = |line: &str, drop: &[usize]| {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let entry = v.as_object_mut().unwrap().values_mut().next().unwrap();
        let flows = entry["flows"].as_array_mut().unwrap();
        for i in drop.iter().rev() {
            flows.remove(*i);
        }
        v.to_string()
    };
    let partial = [
        drop_flows(&lines[2], &[0, 3]),
        drop_flows(&lines[0], &[1, 2, 5]),
    ];
    let partial = write(&dir, "partial.gz", &gzip(&partial.join("\n")));
    for tz in ["UTC", "XYZ-05:30", "ABC+07"] {
        for (f, flags) in [
            (&file, &["-n", "-p", "0", "-v"][..]),
            (&partial, &["-n", "-p", "0", "-v"]),
            (&partial, &["-n", "-p", "40", "-v"]),
        ] {
            let py = python(flags, Some(f), None, tz);
            let rs = ours(flags, Some(f), None, tz);
            assert_same(&format!("{tz} {flags:?} {}", f.display()), &py, &rs);
        }
    }
    let rs = ours(&["-n", "-p", "0", "-v"], Some(&partial), None, "UTC");
    assert!(
        rs.stdout
            .contains("first_switched entries left in the pending dict!"),
        "{}",
        rs.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The original's error messages and exit status.
#[test]
fn same_errors_as_the_original() {
    let dir = common::tmp_dir("analyzer_errors");
    let missing = dir.join("missing.gz");
    let py = python(&["-n"], Some(&missing), None, "UTC");
    let rs = ours(&["-n"], Some(&missing), None, "UTC");
    assert_eq!((py.code, py.stderr.trim()), (rs.code, rs.stderr.trim()));
    assert_eq!(rs.code, Some(1));
    let py = python(
        &["-n", "--match-host", "300.1.1.1"],
        Some(&missing),
        None,
        "UTC",
    );
    let rs = ours(
        &["-n", "--match-host", "300.1.1.1"],
        Some(&missing),
        None,
        "UTC",
    );
    assert_eq!((py.code, py.stderr.trim()), (rs.code, rs.stderr.trim()));
    assert_eq!(
        rs.stderr.trim(),
        "IP address '300.1.1.1' is neither IPv4 nor IPv6"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Garbage lines (the original dies on the first one) are counted and
/// reported on stderr; the table is the original's table of the good lines.
#[test]
fn garbage_lines_are_counted_not_fatal() {
    let dir = common::tmp_dir("analyzer_garbage");
    let good = original_test_lines(&TEST_KEYS);
    let clean = write(&dir, "clean.gz", &gzip(&good.join("\n")));
    let mut dirty = good.clone();
    dirty.insert(1, "this is not json".into());
    dirty.insert(3, "{\"1553946009.5\": {\"flows\": []}}".into());
    dirty.push("[1, 2, 3]".into());
    let dirty = write(&dir, "dirty.gz", &gzip(&dirty.join("\n")));
    let py = python(&["-n", "-p", "0"], Some(&clean), None, "UTC");
    let rs = ours(&["-n", "-p", "0"], Some(&dirty), None, "UTC");
    assert_same("garbage", &py, &rs);
    assert!(
        rs.stderr.contains("3 of 7 lines could not be read"),
        "stderr: {}",
        rs.stderr
    );
    assert!(
        rs.stderr.contains("line 2: not a JSON object"),
        "{}",
        rs.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_table_as_the_original_on_our_collectors_v9_file() {
    let dir = common::tmp_dir("analyzer_collector_v9");
    let file = collect(&dir, "softflowd-v9", &[]);
    for flags in [
        &["-n", "-p", "0", "-v"][..],
        &["-n"],
        &["-n", "-v", "-p", "3"],
    ] {
        let py = python(flags, Some(&file), None, "UTC");
        let rs = ours(flags, Some(&file), None, "UTC");
        assert_same(&format!("softflowd-v9 {flags:?}"), &py, &rs);
        assert!(py.stdout.lines().count() > 10, "{}", py.stdout);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// tshark's decode of a capture (one JSON line per record) as the original's
/// collector lines with v9 field names, one line per datagram, keys in
/// datagram order: what the original analyzer can read.
fn tshark_as_v9_lines(capture: &str) -> String {
    let names = [
        ("8", "IPV4_SRC_ADDR"),
        ("12", "IPV4_DST_ADDR"),
        ("27", "IPV6_SRC_ADDR"),
        ("28", "IPV6_DST_ADDR"),
        ("1", "IN_BYTES"),
        ("2", "IN_PKTS"),
        ("22", "FIRST_SWITCHED"),
        ("21", "LAST_SWITCHED"),
        ("152", "FIRST_SWITCHED"), // flowStartMilliseconds: same rule on absolute ms
        ("153", "LAST_SWITCHED"),
        ("7", "L4_SRC_PORT"),
        ("11", "L4_DST_PORT"),
        ("4", "PROTOCOL"),
        ("60", "IP_PROTOCOL_VERSION"),
    ];
    let mut datagrams: Vec<(u64, Vec<Value>)> = Vec::new();
    for rec in tshark_records(capture) {
        if rec["kind"] != "flow" {
            continue;
        }
        let d = rec["datagram"].as_u64().unwrap();
        let mut flow = Map::new();
        for (id, name) in names {
            if let Some(v) = rec["fields"].get(id) {
                flow.insert(name.to_string(), v.clone());
            }
        }
        match datagrams.last_mut() {
            Some((last, flows)) if *last == d => flows.push(Value::Object(flow)),
            _ => datagrams.push((d, vec![Value::Object(flow)])),
        }
    }
    datagrams
        .into_iter()
        .map(|(d, flows)| {
            let mut entry = Map::new();
            entry.insert(
                format!("1700000000.{d:06}"),
                json!({"client": ["127.0.0.1", 1], "header": {"version": 9}, "flows": flows}),
            );
            Value::Object(entry).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The timestamp column is the receive time, which differs between the
/// collector's file and the tshark-derived one: blank it.
fn without_timestamps(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            if l.len() > 22 && &l[19..22] == " | " && l.as_bytes()[4] == b'-' {
                format!("<ts>{}", &l[19..])
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// v1, v5 (the original: KeyError 'IN_PKTS') and IPFIX (the original: skipped)
/// from our collector: the table the original prints for tshark's decode of
/// the same capture.
#[test]
fn v1_v5_ipfix_tables_match_the_original_on_tshark_ground_truth() {
    let dir = common::tmp_dir("analyzer_collector_other_versions");
    for capture in [
        "softflowd-v1",
        "softflowd-v5",
        "softflowd-ipfix",
        "softflowd-ipfix-ether-milli",
        "pmacct-v5",
        "pmacct-ipfix",
    ] {
        let truth = write(
            &dir,
            &format!("{capture}.truth.gz"),
            &gzip(&tshark_as_v9_lines(capture)),
        );
        // Both layouts of our collector (the flows layout: one line per record).
        for layout in [&[][..], &["--format", "flows"]] {
            let file = collect(&dir, capture, layout);
            for flags in [&["-n", "-p", "0", "-v"][..], &["-n"]] {
                let py = python(flags, Some(&truth), None, "UTC");
                assert_eq!(
                    py.code,
                    Some(0),
                    "{capture}: python on the truth: {}",
                    py.stderr
                );
                let rs = ours(flags, Some(&file), None, "UTC");
                assert_eq!(rs.code, Some(0), "{capture}: {}", rs.stderr);
                assert_eq!(
                    without_timestamps(&py.stdout),
                    without_timestamps(&rs.stdout),
                    "{capture} {layout:?} {flags:?}"
                );
                if capture.starts_with("softflowd") && flags.len() > 1 {
                    assert!(rs.stdout.lines().count() > 20, "{capture}: {}", rs.stdout);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// IPFIX biflow records (RFC 5103, softflowd -b): each is a connection by
/// itself. Oracle: the original on tshark's decode with every biflow record
/// split into its two directions (the pair the original would have seen).
#[test]
fn biflow_records_are_connections() {
    let dir = common::tmp_dir("analyzer_biflow");
    let capture = "softflowd-ipfix-biflow-nano";
    let file = collect(&dir, capture, &[]);
    // NTP timestamps (RFC 7011 section 6.1.9) as Unix milliseconds.
    let ms = |v: &Value| {
        let raw = v.as_u64().unwrap();
        ((raw >> 32) - 2_208_988_800) * 1000 + (((raw & 0xffff_ffff) * 1000) >> 32)
    };
    let mut lines = Vec::new();
    let mut by_datagram: Vec<(u64, Vec<Value>)> = Vec::new();
    for rec in tshark_records(capture) {
        if rec["kind"] != "flow" {
            continue;
        }
        let f = &rec["fields"];
        let (first, last) = (ms(&f["156"]), ms(&f["157"]));
        let forward = json!({"IPV4_SRC_ADDR": f["8"], "IPV4_DST_ADDR": f["12"], "IN_BYTES": f["1"], "IN_PKTS": f["2"],
            "FIRST_SWITCHED": first, "LAST_SWITCHED": last, "L4_SRC_PORT": f.get("7").unwrap_or(&json!(0)),
            "L4_DST_PORT": f.get("11").unwrap_or(&json!(0)), "PROTOCOL": f["4"]});
        let reverse = json!({"IPV4_SRC_ADDR": f["12"], "IPV4_DST_ADDR": f["8"], "IN_BYTES": f["29305:1"], "IN_PKTS": f["29305:2"],
            "FIRST_SWITCHED": first, "LAST_SWITCHED": last, "L4_SRC_PORT": f.get("11").unwrap_or(&json!(0)),
            "L4_DST_PORT": f.get("7").unwrap_or(&json!(0)), "PROTOCOL": f["4"]});
        let (mut forward, mut reverse) = (forward, reverse);
        if f.get("8").is_none() {
            // IPv6 biflow: the original reads IPV6_* when there is no IPV4_SRC_ADDR.
            for (flow, src, dst) in [(&mut forward, "27", "28"), (&mut reverse, "28", "27")] {
                let m = flow.as_object_mut().unwrap();
                m.remove("IPV4_SRC_ADDR");
                m.remove("IPV4_DST_ADDR");
                m.insert("IPV6_SRC_ADDR".into(), f[src].clone());
                m.insert("IPV6_DST_ADDR".into(), f[dst].clone());
            }
        }
        let d = rec["datagram"].as_u64().unwrap();
        match by_datagram.last_mut() {
            Some((last, flows)) if *last == d => flows.extend([forward, reverse]),
            _ => by_datagram.push((d, vec![forward, reverse])),
        }
    }
    for (d, flows) in by_datagram {
        let mut entry = Map::new();
        entry.insert(
            format!("1700000000.{d:06}"),
            json!({"client": ["127.0.0.1", 1], "header": {"version": 9}, "flows": flows}),
        );
        lines.push(Value::Object(entry).to_string());
    }
    let truth = write(&dir, "biflow.truth.gz", &gzip(&lines.join("\n")));
    for flags in [&["-n", "-p", "0", "-v"][..], &["-n"]] {
        let py = python(flags, Some(&truth), None, "UTC");
        assert_eq!(py.code, Some(0), "{}", py.stderr);
        let rs = ours(flags, Some(&file), None, "UTC");
        assert_eq!(rs.code, Some(0), "{}", rs.stderr);
        assert_eq!(
            without_timestamps(&py.stdout),
            without_timestamps(&rs.stdout),
            "{flags:?}"
        );
    }
    let rs = ours(&["-n", "-p", "0"], Some(&file), None, "UTC");
    assert!(rs.stdout.lines().count() > 100, "{}", rs.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without -n every address is looked up, concurrently and with a deadline:
/// the run ends long before the original's one-by-one lookups could
/// (documentation addresses have no names; with no reachable resolver each
/// lookup would block for the resolver's timeout). Names fall back to text.
#[test]
fn dns_lookups_are_bounded() {
    let dir = common::tmp_dir("analyzer_dns");
    let file = collect(&dir, "softflowd-v5", &[]);
    let no_dns = ours(&["-n", "-p", "0"], Some(&file), None, "UTC");
    let started = Instant::now();
    let dns = ours(
        &["-p", "0", "--dns-timeout", "0.5"],
        Some(&file),
        None,
        "UTC",
    );
    // Generous bound (not a benchmark): the whole-run deadline is 5 s.
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(dns.code, Some(0), "{}", dns.stderr);
    assert_eq!(no_dns.stdout.lines().count(), dns.stdout.lines().count());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hand-made v9 lines for the corners of the original's formatting: IPv6
/// (an IPv4-mapped address prints without a dotted tail), durations over an
/// hour and across the 32-bit uptime wrap, M and G sizes, port 0, unknown
/// protocols in the -v list, and a duplicate timestamp key (the last wins).
#[test]
fn edge_values_like_the_original() {
    let dir = common::tmp_dir("analyzer_edges");
    let flow = |src: &str,
                dst: &str,
                bytes: u64,
                pkts: u64,
                first: u64,
                last: u64,
                sport: u16,
                dport: u16,
                proto: u8| {
        let v6 = src.contains(':');
        let (s, d) = if v6 {
            ("IPV6_SRC_ADDR", "IPV6_DST_ADDR")
        } else {
            ("IPV4_SRC_ADDR", "IPV4_DST_ADDR")
        };
        json!({s: src, d: dst, "IN_BYTES": bytes, "IN_PKTS": pkts, "FIRST_SWITCHED": first,
               "LAST_SWITCHED": last, "L4_SRC_PORT": sport, "L4_DST_PORT": dport, "PROTOCOL": proto,
               "IP_PROTOCOL_VERSION": if v6 { 6 } else { 4 }})
    };
    let line = |key: &str, flows: Vec<Value>| {
        let mut m = Map::new();
        m.insert(key.into(), json!({"client": ["::1", 2055, 0, 0], "header": {"version": 9, "count": flows.len()}, "flows": flows}));
        Value::Object(m).to_string()
    };
    let lines = [
        line(
            "1700000000.5",
            vec![
                flow(
                    "::ffff:102:304",
                    "2001:db8::1",
                    5000,
                    20,
                    100,
                    4000,
                    443,
                    50000,
                    6,
                ),
                flow(
                    "2001:db8::1",
                    "::ffff:102:304",
                    700,
                    15,
                    100,
                    3900,
                    50000,
                    443,
                    6,
                ),
                flow(
                    "fe80::1",
                    "ff02::1",
                    3_000_000,
                    40,
                    4_294_967_000,
                    500,
                    0,
                    0,
                    58,
                ),
                flow(
                    "10.0.0.1",
                    "10.0.0.2",
                    5_000_000_000,
                    900,
                    1000,
                    7_300_000,
                    0,
                    0,
                    47,
                ),
                flow(
                    "10.0.0.2", "10.0.0.1", 2_000_000, 800, 1000, 7_300_000, 0, 0, 47,
                ),
            ],
        ),
        line(
            "1700000001.25",
            vec![flow("10.0.0.3", "10.0.0.4", 10, 1, 5, 6, 123, 123, 17)],
        ),
        line(
            "1700000000.75",
            vec![
                flow(
                    "10.0.0.5", "10.0.0.6", 1_500_000, 30, 2_000, 3_602_000, 5353, 5353, 17,
                ),
                flow(
                    "10.0.0.6", "10.0.0.5", 1_400_000, 30, 2_000, 3_602_000, 5353, 5353, 17,
                ),
                flow("10.0.0.7", "10.0.0.8", 99, 12, 7, 8, 1, 2, 132),
            ],
        ),
        // Same key again: the original's dict keeps only this one.
        line(
            "1700000001.25",
            vec![
                flow("10.0.0.9", "10.0.0.10", 1023, 11, 9, 70_000, 80, 80, 6),
                flow("10.0.0.10", "10.0.0.9", 1024, 11, 9, 60_000, 80, 80, 6),
            ],
        ),
    ];
    let file = write(&dir, "edges.gz", &gzip(&lines.join("\n")));
    for flags in [
        &["-n", "-p", "0", "-v"][..],
        &["-n", "-p", "10", "-v"],
        &["-n", "--match-host", "2001:db8::1", "-p", "0"],
    ] {
        let py = python(flags, Some(&file), None, "UTC");
        let rs = ours(flags, Some(&file), None, "UTC");
        assert_same(&format!("edges {flags:?}"), &py, &rs);
    }
    let rs = ours(&["-n", "-p", "0", "-v"], Some(&file), None, "UTC");
    for want in [
        "::ffff:102:304",
        "hours",
        "4.66G",
        "(0 0)",
        "UNKNOWN",
        "1.43M",
    ] {
        assert!(rs.stdout.contains(want), "{want} in:\n{}", rs.stdout);
    }
    assert!(
        !rs.stdout.contains("10.0.0.3"),
        "overwritten entry printed:\n{}",
        rs.stdout
    );
    assert!(
        rs.stderr
            .contains("1 entries had the timestamp key of a later entry"),
        "{}",
        rs.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
