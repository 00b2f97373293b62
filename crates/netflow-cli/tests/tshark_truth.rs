//! `netflow decode --field-keys id` on captures of real exporters
//! (testdata/captures/*.pcap: softflowd and pmacct, see its README.md) against
//! tshark's decode of the same captures (`*.tshark.jsonl`, made by
//! scripts/tshark_flows.py): every record tshark decoded must be in our output,
//! at the same datagram and position, with the same header values and every
//! field tshark reports with the same value.
//!
//! Records are matched by datagram index and position among the records of the
//! same template in that datagram (tshark's `datagram` counts the UDP datagrams
//! of the capture, as our `packet` does).
//!
//! Where our output deliberately differs from tshark_flows.py's normalization,
//! the test converts the expected value (independently of our code):
//! - dateTimeMicroseconds/Nanoseconds (154-157): tshark_flows.py gives the raw
//!   64-bit NTP value (seconds since 1900 << 32 | fraction); we print
//!   nanoseconds since the Unix epoch.
//! - strings (e.g. interfaceName, 82): tshark_flows.py gives the hex of the
//!   wire bytes including NUL padding; we print the text without trailing NULs.
//! - booleans: tshark_flows.py gives the wire number (1 = true, 2 = false); we
//!   print true/false.
//! - an element tshark_flows.py has no type for is hex there; if we decode it
//!   as an unsigned integer, the hex is read as a big-endian integer.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::netflow;
use serde_json::Value;

fn captures_dir() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/captures"
    ))
    .to_path_buf()
}

/// (capture, expectation) pairs.
fn cases() -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(captures_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p
                .file_name()?
                .to_str()?
                .strip_suffix(".tshark.jsonl")?
                .to_string();
            let pcap = p.with_file_name(format!("{name}.pcap"));
            pcap.exists().then_some((pcap, p))
        })
        .collect();
    out.sort();
    out
}

/// Seconds between 1900-01-01 (NTP era 0) and 1970-01-01.
const NTP_UNIX: i128 = 2_208_988_800;

fn ntp_to_unix_nanos(ntp: u64) -> i128 {
    let seconds = (ntp >> 32) as i128;
    let fraction = (ntp & 0xFFFF_FFFF) as i128;
    (seconds - NTP_UNIX) * 1_000_000_000 + ((fraction * 1_000_000_000) >> 32)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The element id of a key ("156", "29305:156" -> 156), for type-based conversions.
fn element(key: &str) -> Option<u16> {
    key.rsplit(':').next()?.split('#').next()?.parse().ok()
}

/// Does our value `got` equal tshark's `want` (after the documented conversions)?
fn same(key: &str, want: &Value, got: &Value) -> bool {
    if want == got {
        return true;
    }
    match (want, got) {
        (Value::Number(w), Value::Number(g)) if matches!(element(key), Some(154..=157)) => {
            match (w.as_u64(), g.to_string().parse::<i128>()) {
                (Some(w), Ok(g)) => ntp_to_unix_nanos(w) == g,
                _ => false,
            }
        }
        (Value::Number(w), Value::Bool(g)) => w.as_u64() == Some(if *g { 1 } else { 2 }),
        (Value::String(w), Value::String(g)) => {
            if let (Ok(a), Ok(b)) = (w.parse::<IpAddr>(), g.parse::<IpAddr>()) {
                return a == b;
            }
            match unhex(w) {
                Some(mut bytes) => {
                    while bytes.last() == Some(&0) {
                        bytes.pop();
                    }
                    bytes == g.as_bytes()
                }
                None => false,
            }
        }
        (Value::String(w), Value::Number(g)) => match (unhex(w), g.as_u64()) {
            (Some(bytes), Some(g)) if !bytes.is_empty() && bytes.len() <= 8 => {
                bytes.iter().fold(0u64, |acc, &b| acc << 8 | b as u64) == g
            }
            _ => false,
        },
        _ => false,
    }
}

/// Group records by (datagram, template id), keeping their order.
fn group<'a>(records: &'a [Value], datagram_key: &str) -> BTreeMap<(u64, u64), Vec<&'a Value>> {
    let mut groups: BTreeMap<(u64, u64), Vec<&Value>> = BTreeMap::new();
    for r in records {
        let d = r[datagram_key].as_u64().expect("datagram index");
        let t = r["template_id"].as_u64().unwrap_or(0);
        groups.entry((d, t)).or_default().push(r);
    }
    groups
}

/// Compare one capture; returns the problems found (empty = all good).
fn check(pcap: &Path, truth: &Path) -> (usize, Vec<String>) {
    let name = pcap.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(truth).expect("reads the .tshark.jsonl");
    let expected: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("tshark JSON line"))
        .collect();
    let run = netflow(
        &["decode", "--field-keys", "id", pcap.to_str().unwrap()],
        None,
    );
    let mut problems = Vec::new();
    if run.code != Some(0) {
        problems.push(format!(
            "{name}: exit status {:?}: {}",
            run.code, run.stderr
        ));
    }
    let ours = run.records();
    let want_groups = group(&expected, "datagram");
    let got_groups = group(&ours, "packet");
    if want_groups.keys().ne(got_groups.keys()) {
        problems.push(format!(
            "{name}: (datagram, template) groups differ: tshark {:?}, ours {:?}",
            want_groups.keys().collect::<Vec<_>>(),
            got_groups.keys().collect::<Vec<_>>()
        ));
    }
    let mut fields_compared = 0;
    for ((datagram, template), want) in &want_groups {
        let at = format!("{name}: datagram {datagram} template {template}");
        let got = got_groups
            .get(&(*datagram, *template))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if got.len() != want.len() {
            problems.push(format!(
                "{at}: {} records, tshark {}",
                got.len(),
                want.len()
            ));
        }
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            let at = format!("{at} record {i}");
            let version = w["version"].as_u64().unwrap();
            let h = &w["header"];
            let mut header = vec![
                ("version", w["version"].clone(), g["version"].clone()),
                (
                    "options",
                    Value::Bool(w["kind"] == "options"),
                    g["options"].clone(),
                ),
            ];
            let export_time = if version == 10 {
                &h["export_time"]
            } else {
                &h["unix_secs"]
            };
            header.push(("export_time", export_time.clone(), g["export_time"].clone()));
            if version != 1 {
                header.push(("sequence", h["sequence"].clone(), g["sequence"].clone()));
            }
            match version {
                9 => header.push(("domain", h["source_id"].clone(), g["domain"].clone())),
                10 => header.push((
                    "domain",
                    h["observation_domain_id"].clone(),
                    g["domain"].clone(),
                )),
                _ => {}
            }
            for (what, want, got) in header {
                if want != got {
                    problems.push(format!("{at}: {what} {got}, tshark {want}"));
                }
            }
            let gf = g["fields"].as_object().expect("fields");
            for (key, want) in w["fields"].as_object().expect("tshark fields") {
                fields_compared += 1;
                match gf.get(key) {
                    None => problems.push(format!("{at}: no field {key} (tshark {want})")),
                    Some(got) if !same(key, want, got) => {
                        problems.push(format!("{at}: field {key} = {got}, tshark {want}"))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    if expected.len() != ours.len() {
        problems.push(format!(
            "{name}: {} records, tshark {}",
            ours.len(),
            expected.len()
        ));
    }
    (fields_compared, problems)
}

#[test]
fn records_match_tshark() {
    let cases = cases();
    if cases.is_empty() {
        eprintln!(
            "!!!!!!!! SKIPPED: no testdata/captures/*.pcap with a .tshark.jsonl in {} !!!!!!!!",
            captures_dir().display()
        );
        return;
    }
    let mut problems = Vec::new();
    let mut fields = 0;
    for (pcap, truth) in &cases {
        let (n, p) = check(pcap, truth);
        assert!(n > 0, "{}: no fields compared", truth.display());
        fields += n;
        problems.extend(p);
    }
    eprintln!("compared {fields} fields of {} captures", cases.len());
    if !problems.is_empty() {
        let shown: Vec<&String> = problems.iter().take(40).collect();
        panic!(
            "{} mismatches with tshark (first {}):\n{}",
            problems.len(),
            shown.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn conversions_of_the_expectations() {
    // 2023-11-14T22:13:20Z + 0.5 s as NTP.
    let ntp = (3_908_988_800u64) << 32 | 0x8000_0000;
    assert_eq!(ntp_to_unix_nanos(ntp), 1_700_000_000_500_000_000);
    assert!(same(
        "82",
        &Value::from("6574683000000000"),
        &Value::from("eth0")
    ));
    assert!(!same(
        "82",
        &Value::from("6574683100"),
        &Value::from("eth0")
    ));
    assert!(same("999", &Value::from("0102"), &Value::from(258)));
    assert!(same("29305:1", &Value::from(5), &Value::from(5)));
    assert!(same(
        "156",
        &Value::from(ntp),
        &Value::from(1_700_000_000_500_000_000u64)
    ));
    assert!(!same("1", &Value::from(1), &Value::from(2)));
    assert_eq!(element("29305:156"), Some(156));
    assert_eq!(element("8#2"), Some(8));
}
