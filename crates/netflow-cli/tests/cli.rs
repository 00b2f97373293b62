//! `netflow decode` options, inputs and failure modes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{
    eth_ipv4_udp, hex_file, netflow, seed_vectors, tmp_dir, unhex, vector_hex, write_pcap,
};
use serde_json::Value;

const EXPORTER_A: ([u8; 4], u16) = ([192, 0, 2, 10], 50496);
const EXPORTER_B: ([u8; 4], u16) = ([192, 0, 2, 20], 50000);
const COLLECTOR_IPFIX: ([u8; 4], u16) = ([192, 0, 2, 1], 4739);
const COLLECTOR_V5: ([u8; 4], u16) = ([192, 0, 2, 1], 2055);

#[test]
fn field_keys_id_uses_element_ids() {
    let Some(seed) = seed_vectors() else { return };
    let dir = tmp_dir("field_keys_id");
    let file = hex_file(
        &dir,
        "v9.txt",
        &[
            vector_hex(&seed, "PACKET_V9_TEMPLATE"),
            vector_hex(&seed, "PACKET_IPFIX_TEMPLATE"),
        ],
    );
    let by_name = netflow(&["decode", &file], None);
    let by_id = netflow(&["decode", "--field-keys", "id", &file], None);
    by_name.assert_success();
    by_id.assert_success();
    let (names, ids) = (by_name.records(), by_id.records());
    assert_eq!(names.len(), ids.len());
    // Template 1024 of PACKET_V9_TEMPLATE (RFC 3954 field type numbers).
    let v9 = [
        ("IPV4_SRC_ADDR", "8"),
        ("IPV4_DST_ADDR", "12"),
        ("LAST_SWITCHED", "21"),
        ("FIRST_SWITCHED", "22"),
        ("IN_BYTES", "1"),
        ("IN_PKTS", "2"),
        ("INPUT_SNMP", "10"),
        ("OUTPUT_SNMP", "14"),
        ("L4_SRC_PORT", "7"),
        ("L4_DST_PORT", "11"),
        ("PROTOCOL", "4"),
        ("TCP_FLAGS", "6"),
        ("IP_PROTOCOL_VERSION", "60"),
        ("SRC_TOS", "5"),
    ];
    for (n, i) in names.iter().zip(&ids).filter(|(n, _)| n["version"] == 9) {
        let (nf, idf) = (
            n["fields"].as_object().unwrap(),
            i["fields"].as_object().unwrap(),
        );
        assert_eq!(idf.len(), v9.len());
        for (name, id) in v9 {
            assert_eq!(nf[name], idf[id], "{name} = {id}");
        }
        // Everything but the fields is the same.
        let strip = |v: &Value| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("fields");
            v
        };
        assert_eq!(strip(n), strip(i));
    }
    // IPFIX options record: scope meteringProcessId (143), then 160, 305, 306, 304.
    let options = ids
        .iter()
        .find(|r| r["options"] == true)
        .expect("an options record");
    let keys: Vec<&String> = options["fields"].as_object().unwrap().keys().collect();
    let mut want = vec!["143", "160", "304", "305", "306"];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(options["fields"]["143"], 2649);
}

/// A pcap: exporter A sends IPFIX data before its template, then the template;
/// exporter B sends the same data but never a template; a v5 export on port 2055.
fn sample_pcap(seed: &Value, dir: &std::path::Path) -> String {
    let ipfix = unhex(vector_hex(seed, "PACKET_IPFIX"));
    let template = unhex(vector_hex(seed, "PACKET_IPFIX_TEMPLATE"));
    let v5 = unhex(vector_hex(seed, "PACKET_V5"));
    let frames = vec![
        eth_ipv4_udp(EXPORTER_A, COLLECTOR_IPFIX, &ipfix),
        eth_ipv4_udp(EXPORTER_B, COLLECTOR_IPFIX, &ipfix),
        eth_ipv4_udp(EXPORTER_A, COLLECTOR_IPFIX, &template),
        eth_ipv4_udp(EXPORTER_A, COLLECTOR_V5, &v5),
    ];
    let path = dir.join("sample.pcap");
    write_pcap(&path, 1_700_000_000, &frames);
    path.to_str().unwrap().to_string()
}

#[test]
fn pcap_input_keys_exporters_by_source_address() {
    let Some(seed) = seed_vectors() else { return };
    let dir = tmp_dir("pcap_input");
    let pcap = sample_pcap(&seed, &dir);
    let run = netflow(&["decode", &pcap], None);
    run.assert_success();
    let records = run.records();
    // A: 20 records of the template packet, then its 3 waiting ones; v5: 3. B's 3 wait forever.
    assert_eq!(records.len(), 26);
    let count = |packet: u64, exporter: &str| {
        records
            .iter()
            .filter(|r| r["packet"] == packet && r["exporter"] == exporter)
            .count()
    };
    assert_eq!(count(2, "192.0.2.10:50496"), 20);
    assert_eq!(count(0, "192.0.2.10:50496"), 3);
    assert_eq!(count(1, "192.0.2.20:50000"), 0);
    assert_eq!(count(3, "192.0.2.10:50496"), 3);
    let v5 = records.iter().find(|r| r["version"] == 5).unwrap();
    assert_eq!(v5["export_time"], 1585497478);
    assert_eq!(v5["fields"]["IPV4_DST_ADDR"], "172.17.0.1");
    // B's two data sets wait for templates 2049 and 2048 (templates are per exporter): listed once each.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "netflow decode: never decoded: 1 set (64 bytes) waiting for exporter 192.0.2.20:50000 ipfix domain 0 template 2048",
            "netflow decode: never decoded: 1 set (120 bytes) waiting for exporter 192.0.2.20:50000 ipfix domain 0 template 2049",
            "packets 4, records 26, errors 0, waiting for a template: 2 sets (184 bytes)",
        ]
    );
    assert_eq!(
        run.summary(),
        "packets 4, records 26, errors 0, waiting for a template: 2 sets (184 bytes)"
    );
}

#[test]
fn port_filter_takes_either_port() {
    let Some(seed) = seed_vectors() else { return };
    let dir = tmp_dir("port_filter");
    let pcap = sample_pcap(&seed, &dir);
    let run = netflow(&["decode", "--port", "2055", &pcap], None);
    run.assert_success();
    let records = run.records();
    assert_eq!(records.len(), 3);
    assert!(records
        .iter()
        .all(|r| r["version"] == 5 && r["packet"] == 0));
    assert!(
        run.stderr
            .contains("sample.pcap: skipped 3 of 4 packets: 3 on other ports"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.summary(),
        "packets 1, records 3, errors 0, waiting for a template: 0 sets (0 bytes)"
    );

    // The exporter's source port matches too.
    let run = netflow(&["decode", "--port", "50000", &pcap], None);
    run.assert_success();
    assert!(run.stdout.is_empty());
    assert_eq!(
        run.summary(),
        "packets 1, records 0, errors 0, waiting for a template: 2 sets (184 bytes)"
    );
}

#[test]
fn stdin_dash_reads_hex_and_pcap() {
    let Some(seed) = seed_vectors() else { return };
    let text = format!("# v1 export\n{}\n", vector_hex(&seed, "PACKET_V1"));
    let run = netflow(&["decode", "-"], Some(text.as_bytes()));
    run.assert_success();
    let records = run.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["fields"]["IPV4_SRC_ADDR"], "172.17.0.2");
    assert!(records[0].get("sequence").is_none());

    let dir = tmp_dir("stdin_pcap");
    let pcap = std::fs::read(sample_pcap(&seed, &dir)).unwrap();
    let run = netflow(&["decode", "-"], Some(&pcap));
    run.assert_success();
    assert_eq!(run.records().len(), 26);
}

#[test]
fn several_files_are_one_stream() {
    let Some(seed) = seed_vectors() else { return };
    let dir = tmp_dir("several_files");
    let first = hex_file(
        &dir,
        "template.txt",
        &[vector_hex(&seed, "PACKET_V9_TEMPLATE")],
    );
    let second = hex_file(
        &dir,
        "data.txt",
        &[
            vector_hex(&seed, "PACKETS_V9[0]"),
            "zz",
            vector_hex(&seed, "PACKETS_V9[1]"),
        ],
    );
    let run = netflow(&["decode", &first, &second], None);
    run.assert_success();
    let records = run.records();
    let packets: Vec<u64> = records
        .iter()
        .map(|r| r["packet"].as_u64().unwrap())
        .collect();
    // Packet indices continue across files; the bad line uses index 2.
    assert_eq!(packets.iter().filter(|&&p| p == 0).count(), 8);
    assert_eq!(packets.iter().filter(|&&p| p == 1).count(), 12);
    assert_eq!(packets.iter().filter(|&&p| p == 3).count(), 12);
    let error = run.stderr.lines().next().unwrap();
    assert!(
        error.ends_with("/data.txt: datagram 2 from 0.0.0.0:0: invalid hex text (line 2)"),
        "{error}"
    );
    assert_eq!(
        run.summary(),
        "packets 4, records 32, errors 1, waiting for a template: 0 sets (0 bytes)"
    );
}

#[test]
fn unreadable_input_fails_but_others_are_decoded() {
    let Some(seed) = seed_vectors() else { return };
    let dir = tmp_dir("unreadable");
    let good = hex_file(&dir, "v5.txt", &[vector_hex(&seed, "PACKET_V5")]);
    let missing = dir.join("missing.pcap");
    let missing = missing.to_str().unwrap();
    let run = netflow(&["decode", missing, &good], None);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.records().len(), 3);
    let first = run.stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("netflow decode: {missing}: cannot open: ")),
        "{first}"
    );
    assert_eq!(
        run.summary(),
        "packets 1, records 3, errors 1, waiting for a template: 0 sets (0 bytes)"
    );

    // A directory cannot be read either.
    let run = netflow(&["decode", dir.to_str().unwrap()], None);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
}

#[test]
fn binary_that_is_not_a_capture_fails() {
    let dir = tmp_dir("not_capture");
    let path = dir.join("raw.bin");
    std::fs::write(&path, [0u8, 5, 0, 1, 0, 0, 0, 0]).unwrap();
    let run = netflow(&["decode", path.to_str().unwrap()], None);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("raw.bin: not a pcap, pcapng or hex text file"),
        "{}",
        run.stderr
    );
}

#[test]
fn cut_short_pcap_keeps_what_came_before_and_fails() {
    let Some(seed) = seed_vectors() else { return };
    let dir = tmp_dir("cut_short");
    let path = std::path::PathBuf::from(sample_pcap(&seed, &dir));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&path, bytes).unwrap();
    let run = netflow(&["decode", path.to_str().unwrap()], None);
    assert_eq!(run.code, Some(1));
    // Packets 1-3 are whole: 23 records (A's 20 + its 3 replayed).
    assert_eq!(run.records().len(), 23);
    assert!(
        run.stderr
            .contains("sample.pcap: corrupt capture at packet 4: "),
        "{}",
        run.stderr
    );
}

#[test]
fn garbage_datagram_is_an_error_line_and_exit_zero() {
    let Some(seed) = seed_vectors() else { return };
    let dir = tmp_dir("garbage");
    let file = hex_file(
        &dir,
        "g.txt",
        &["deadbeef", vector_hex(&seed, "PACKET_V1"), "0009"],
    );
    let run = netflow(&["decode", &file], None);
    run.assert_success();
    assert_eq!(run.records().len(), 2);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[0].ends_with(
            "/g.txt: datagram 0 from 0.0.0.0:0: unknown export version 57005 at byte offset 0"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("/g.txt: datagram 2 from 0.0.0.0:0: truncated"),
        "{}",
        lines[1]
    );
    assert_eq!(
        run.summary(),
        "packets 3, records 2, errors 2, waiting for a template: 0 sets (0 bytes)"
    );

    // Garbage in a capture too.
    let path = dir.join("g.pcap");
    write_pcap(
        &path,
        0,
        &[eth_ipv4_udp(EXPORTER_A, COLLECTOR_V5, b"\x00\x05garbage")],
    );
    let run = netflow(&["decode", path.to_str().unwrap()], None);
    run.assert_success();
    assert!(run.stderr.starts_with("netflow decode: "), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("g.pcap: datagram 0 from 192.0.2.10:50496: truncated"),
        "{}",
        run.stderr
    );
}

#[test]
fn closed_output_pipe_stops_quietly() {
    let Some(seed) = seed_vectors() else { return };
    let dir = tmp_dir("epipe");
    let lines: Vec<&str> = std::iter::once(vector_hex(&seed, "PACKET_V9_TEMPLATE"))
        .chain(std::iter::repeat_n(
            vector_hex(&seed, "PACKETS_V9[0]"),
            3000,
        ))
        .collect();
    let file = hex_file(&dir, "many.txt", &lines);
    let mut child = Command::new(env!("CARGO_BIN_EXE_netflow"))
        .args(["decode", &file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"packet\":0,"));
    drop(out);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

#[test]
fn help_and_usage() {
    let run = netflow(&["--help"], None);
    run.assert_success();
    assert!(run.stdout.contains("decode"), "{}", run.stdout);
    assert!(run.stdout.contains("Examples:"), "{}", run.stdout);

    let run = netflow(&["decode", "--help"], None);
    run.assert_success();
    for needle in [
        "--port <N>",
        "--field-keys <name|id>",
        "FILE",
        "\"packet\":0",
        "Examples:",
        "packets N, records N, errors N",
        "Exit status",
    ] {
        assert!(
            run.stdout.contains(needle),
            "decode --help lacks {needle}:\n{}",
            run.stdout
        );
    }

    let run = netflow(&["--version"], None);
    run.assert_success();
    assert!(run.stdout.starts_with("netflow "));

    // No FILE, or a bad option value: usage error, status 2.
    assert_eq!(netflow(&["decode"], None).code, Some(2));
    assert_eq!(
        netflow(&["decode", "--field-keys", "x", "-"], None).code,
        Some(2)
    );
    assert_eq!(
        netflow(&["decode", "--port", "70000", "-"], None).code,
        Some(2)
    );
}

/// The `--stats` rows on standard error, keyed by "exporter version domain":
/// the 13 number columns (or "-") and the sampling column.
fn stats_rows(stderr: &str) -> std::collections::BTreeMap<String, (Vec<String>, String)> {
    let mut lines = stderr.lines().skip_while(|l| !l.starts_with("exporter "));
    let header: Vec<&str> = lines
        .next()
        .expect("a stats table")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "exporter",
            "version",
            "domain",
            "unit",
            "datagrams",
            "records",
            "expected",
            "lost",
            "reordered",
            "duplicates",
            "overlap",
            "late",
            "unverified",
            "restarts",
            "sampling"
        ]
    );
    lines
        .take_while(|l| !l.starts_with("packets "))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let key = cells[..3].join(" ");
            let numbers = cells[3..14].iter().map(|s| s.to_string()).collect();
            (key, (numbers, cells[14..].join(" ")))
        })
        .collect()
}

#[test]
fn stats_on_captures() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/captures/");
    let v9 = format!("{dir}softflowd-v9-sampled.pcap");
    let ipfix = format!("{dir}softflowd-ipfix-sampled.pcap");
    let pmacct = format!("{dir}pmacct-ipfix-sampled.pcap");
    let run = netflow(&["decode", "--stats", &v9, &ipfix, &pmacct], None);
    run.assert_success();
    // The records are written as without --stats.
    assert_eq!(run.records().len(), 133 + 133 + 128);
    assert_eq!(
        run.summary(),
        "packets 36, records 394, errors 0, waiting for a template: 0 sets (0 bytes)"
    );
    let rows = stats_rows(&run.stderr);
    let row = |numbers: &str, sampling: &str| {
        (
            numbers.split(' ').map(String::from).collect::<Vec<_>>(),
            sampling.to_string(),
        )
    };
    assert_eq!(
        rows.into_iter().collect::<Vec<_>>(),
        [
            // unit datagrams records expected lost reordered duplicates overlap late unverified restarts
            (
                "127.0.0.1:39758 9 0".to_string(),
                row("packets 5 133 5 0 0 0 0 0 0 0", "1/8 deterministic")
            ),
            // softflowd's IPFIX sequence numbers are off (see testdata/captures/README.md).
            (
                "127.0.0.1:42509 10 0".to_string(),
                row("records 5 133 138 8 0 0 3 0 0 0", "1/8 deterministic")
            ),
            (
                "127.0.0.1:54001 10 9".to_string(),
                row("records 26 128 128 0 0 0 0 0 0 0", "sampler 1: 1/8 random")
            ),
        ]
    );
    // Without --stats: no table.
    let run = netflow(&["decode", &v9], None);
    assert!(!run.stderr.contains("exporter "), "{}", run.stderr);
    let help = netflow(&["decode", "--help"], None);
    assert!(help.stdout.contains("--stats"), "{}", help.stdout);
}

/// A v5 header with `count` zeroed flow records, in hex.
fn v5_hex(sequence: u32, count: u16, sampling: u16) -> String {
    let mut p = vec![0u8; 24 + 48 * count as usize];
    p[1] = 5;
    p[2..4].copy_from_slice(&count.to_be_bytes());
    p[16..20].copy_from_slice(&sequence.to_be_bytes());
    p[22..24].copy_from_slice(&sampling.to_be_bytes());
    p.iter().map(|b| format!("{b:02x}")).collect()
}

/// A v9 header without flowsets, source ID 1, in hex.
fn v9_hex(sequence: u32) -> String {
    let mut p = [0u8; 20];
    p[1] = 9;
    p[12..16].copy_from_slice(&sequence.to_be_bytes());
    p[19] = 1;
    p.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn stats_count_a_gap_in_hex_input() {
    let dir = tmp_dir("stats_gap");
    let lines = [
        v5_hex(0, 2, 0x4005),
        v5_hex(2, 2, 0x4005),
        // Flows 4..10 missing ...
        v5_hex(10, 1, 0x4005),
        // ... 4..6 arrive late; 6..10 never do.
        v5_hex(4, 2, 0x4005),
        // A duplicate.
        v5_hex(2, 2, 0x4005),
        v9_hex(1),
        v9_hex(2),
        // v9 packets 3 and 4 missing.
        v9_hex(5),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let file = hex_file(&dir, "gap.txt", &lines);
    let run = netflow(&["decode", "--stats", &file], None);
    run.assert_success();
    assert_eq!(run.records().len(), 9);
    let rows = stats_rows(&run.stderr);
    let v5 = &rows["0.0.0.0:0 5 0"];
    assert_eq!(v5.0.join(" "), "flows 5 9 11 4 2 2 0 0 0 0");
    assert_eq!(v5.1, "1/5 deterministic");
    let v9 = &rows["0.0.0.0:0 9 1"];
    assert_eq!(v9.0.join(" "), "packets 3 0 5 2 0 0 0 0 0 0");
    assert_eq!(v9.1, "-");
    assert_eq!(
        run.summary(),
        "packets 8, records 9, errors 0, waiting for a template: 0 sets (0 bytes)"
    );
}
