//! `netflow decode` against the seed vectors: the decodes of the Python
//! original (PyPI netflow 0.12.2), `expect.verified_by_decoding_with_netflow_0_12_2`.
//!
//! Deliberate differences from the original, converted or checked here:
//! - Addresses are text in our output. The original gives integers for the
//!   v1/v5 address fields (IPV4_SRC_ADDR, IPV4_DST_ADDR, NEXT_HOP) and for IPFIX
//!   ipv4Address/ipv6Address elements (IPv6 as 128-bit integers), and MAC
//!   addresses as integers in IPFIX; the test turns the expected integers into
//!   dotted quads, RFC 5952 IPv6 text and aa:bb:cc:dd:ee:ff (v9 addresses are
//!   text in both).
//! - Header values are top-level keys of each record line: `export_time` (the
//!   original's header `timestamp`, or `export_uptime` for IPFIX, which holds
//!   the export time despite its name), `sequence` (`sequence` /
//!   `sequence_number`; absent for v1), `domain` (v9 `source_id`, IPFIX
//!   `obervation_domain_id`; absent for v1/v5).
//! - Options data records are output like flows but marked `"options":true`
//!   (the original mixes IPFIX options data into its flows unmarked).
//! - Data whose template is unknown does not fail the packet (the original
//!   raises V9TemplateNotRecognized / IPFIXTemplateNotRecognized): it waits and
//!   is decoded when the template arrives, else it is counted as waiting in the
//!   summary on stderr.
//! - A packet that is not an export (the original raises UnknownExportVersion)
//!   gives an error line on stderr; the exit status stays 0.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use common::{hex_file, netflow, seed_vectors, tmp_dir, vector_hex};
use serde_json::{Map, Value};

/// An integer of the seed file (may exceed 64 bits) as u128.
fn big_int(v: &Value) -> u128 {
    v.to_string()
        .parse()
        .unwrap_or_else(|_| panic!("not an integer: {v}"))
}

/// The original's field value converted to our output's form (see the module doc).
fn convert(version: u64, key: &str, value: &Value) -> Value {
    let text = match (version, key) {
        (1 | 5 | 7, "IPV4_SRC_ADDR" | "IPV4_DST_ADDR" | "NEXT_HOP") => {
            Ipv4Addr::from(big_int(value) as u32).to_string()
        }
        (10, k) if k.ends_with("IPv4Address") => Ipv4Addr::from(big_int(value) as u32).to_string(),
        (10, k) if k.ends_with("IPv6Address") => Ipv6Addr::from(big_int(value)).to_string(),
        (10, k) if k.ends_with("MacAddress") => {
            let b = (big_int(value) as u64).to_be_bytes();
            format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                b[2], b[3], b[4], b[5], b[6], b[7]
            )
        }
        _ => return value.clone(),
    };
    Value::String(text)
}

fn expected_fields(version: u64, flow: &Value) -> Map<String, Value> {
    flow.as_object()
        .expect("flow object")
        .iter()
        .map(|(k, v)| (k.clone(), convert(version, k, v)))
        .collect()
}

/// The names a vector is decoded after (its sequence, or itself).
fn feed_of(vector: &Value) -> Vec<String> {
    match vector.get("sequence") {
        Some(seq) => seq
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect(),
        None => vec![vector["name"].as_str().unwrap().to_string()],
    }
}

/// Run `netflow decode` on the named vectors as one hex text file.
fn decode_feed(seed: &Value, test: &str, feed: &[&str], extra: &[&str]) -> common::Run {
    let dir = tmp_dir(test);
    let lines: Vec<&str> = feed.iter().map(|n| vector_hex(seed, n)).collect();
    let file = hex_file(&dir, "feed.txt", &lines);
    let mut args = vec!["decode"];
    args.extend_from_slice(extra);
    args.push(&file);
    netflow(&args, None)
}

fn records_of(records: &[Value], packet: u64) -> Vec<&Value> {
    records.iter().filter(|r| r["packet"] == packet).collect()
}

#[test]
fn every_vector_decodes_like_the_original() {
    let Some(seed) = seed_vectors() else { return };
    let mut compared = 0;
    for vector in seed["vectors"].as_array().unwrap() {
        let name = vector["name"].as_str().unwrap();
        let verified = &vector["expect"]["verified_by_decoding_with_netflow_0_12_2"];
        let Some(flows) = verified["flows"].as_array() else {
            continue;
        };
        let version = vector["version"].as_u64().unwrap();
        let feed = feed_of(vector);
        let feed: Vec<&str> = feed.iter().map(String::as_str).collect();
        let test = format!("vector_{}", name.replace(['[', ']'], "_"));
        let run = decode_feed(&seed, &test, &feed, &[]);
        run.assert_success();
        assert!(
            !run.stderr.contains("datagram"),
            "{name}: unexpected errors:\n{}",
            run.stderr
        );
        let records = run.records();
        let last = feed.len() as u64 - 1;
        let ours = records_of(&records, last);
        assert_eq!(
            ours.len() as u64,
            verified["flow_count"].as_u64().unwrap(),
            "{name}: record count"
        );
        assert_eq!(ours.len(), flows.len(), "{name}: record count");

        let header = &verified["header"];
        for (i, (rec, flow)) in ours.iter().zip(flows).enumerate() {
            let want = expected_fields(version, flow);
            let got = rec["fields"].as_object().expect("fields object");
            assert_eq!(got, &want, "{name}: record {i} fields");
            assert_eq!(rec["version"], version, "{name}: version");
            assert_eq!(
                rec["exporter"], "0.0.0.0:0",
                "{name}: exporter of hex input"
            );
            let (time_key, seq_key, domain_key) = match version {
                10 => (
                    "export_uptime",
                    Some("sequence_number"),
                    Some("obervation_domain_id"),
                ),
                9 => ("timestamp", Some("sequence"), Some("source_id")),
                5 => ("timestamp", Some("sequence"), None),
                _ => ("timestamp", None, None),
            };
            assert_eq!(rec["export_time"], header[time_key], "{name}: export_time");
            match seq_key {
                Some(k) => assert_eq!(rec["sequence"], header[k], "{name}: sequence"),
                None => assert!(rec.get("sequence").is_none(), "{name}: v1 has no sequence"),
            }
            match domain_key {
                Some(k) => {
                    assert_eq!(rec["domain"], header[k], "{name}: domain");
                    assert!(
                        rec["template_id"].as_u64().unwrap() >= 256,
                        "{name}: template_id"
                    );
                }
                None => {
                    assert!(rec.get("domain").is_none(), "{name}: no domain before v9");
                    assert!(
                        rec.get("template_id").is_none(),
                        "{name}: no template_id before v9"
                    );
                }
            }
            // In these captures the only options template is IPFIX template 256 (see the vector notes).
            let options = version == 10 && rec["template_id"] == 256;
            assert_eq!(rec["options"], options, "{name}: record {i} options marker");
        }
        compared += 1;
    }
    assert_eq!(compared, 12, "vectors with decoded flows");
}

#[test]
fn invalid_packet_is_an_error_line_not_a_failure() {
    let Some(seed) = seed_vectors() else { return };
    let run = decode_feed(&seed, "invalid", &["PACKET_INVALID"], &[]);
    run.assert_success();
    assert!(run.stdout.is_empty());
    let first = run.stderr.lines().next().unwrap();
    assert!(
        first.ends_with(
            "/feed.txt: datagram 0 from 0.0.0.0:0: unknown export version 65535 at byte offset 0"
        ),
        "{first}"
    );
    assert!(first.starts_with("netflow decode: "), "{first}");
    assert_eq!(
        run.summary(),
        "packets 1, records 0, errors 1, waiting for a template: 0 sets (0 bytes)"
    );
}

#[test]
fn v9_with_zeros_waits_for_template_260_and_ends() {
    let Some(seed) = seed_vectors() else { return };
    let run = decode_feed(&seed, "zeros", &["PACKET_V9_WITH_ZEROS"], &[]);
    run.assert_success();
    assert!(run.stdout.is_empty());
    // Five data flowsets of length 72 (68-byte bodies) wait for template 260 of source id 0x01020000.
    assert!(
        run.stderr
            .contains("waiting for exporter 0.0.0.0:0 v9 domain 16908288 template 260"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.summary(),
        "packets 1, records 0, errors 0, waiting for a template: 5 sets (340 bytes)"
    );
}

#[test]
fn data_only_packets_alone_wait_for_their_template() {
    let Some(seed) = seed_vectors() else { return };
    for (name, sets, bytes) in [("PACKETS_V9[0]", 1, 480), ("PACKET_IPFIX", 2, 184)] {
        let run = decode_feed(
            &seed,
            &format!("alone_{}", name.replace(['[', ']'], "_")),
            &[name],
            &[],
        );
        run.assert_success();
        assert!(run.stdout.is_empty(), "{name}");
        assert_eq!(
            run.summary(),
            format!("packets 1, records 0, errors 0, waiting for a template: {sets} sets ({bytes} bytes)"),
            "{name}"
        );
    }
}

#[test]
fn sequence_v9_template_then_three_data() {
    let Some(seed) = seed_vectors() else { return };
    let feed = [
        "PACKET_V9_TEMPLATE",
        "PACKETS_V9[0]",
        "PACKETS_V9[1]",
        "PACKETS_V9[2]",
    ];
    let run = decode_feed(&seed, "seq_v9", &feed, &[]);
    run.assert_success();
    let records = run.records();
    assert_eq!(records.len(), 44);
    assert!(records.iter().all(|r| r["version"] == 9));
    let per_packet: Vec<usize> = (0..4).map(|p| records_of(&records, p).len()).collect();
    assert_eq!(per_packet, [8, 12, 12, 12]);
    assert_eq!(
        run.summary(),
        "packets 4, records 44, errors 0, waiting for a template: 0 sets (0 bytes)"
    );
}

#[test]
fn sequence_ipfix_data_before_template() {
    let Some(seed) = seed_vectors() else { return };
    let feed = ["PACKET_IPFIX", "PACKET_IPFIX_TEMPLATE", "PACKET_IPFIX"];
    let run = decode_feed(&seed, "seq_ipfix", &feed, &[]);
    run.assert_success();
    let records = run.records();
    assert_eq!(records.len(), 26);
    assert!(records.iter().all(|r| r["version"] == 10));
    let first = records_of(&records, 0);
    assert_eq!(first.len(), 3);
    // Replayed records keep the header of the datagram they came in (sequence 22), not the template's (19).
    assert!(first.iter().all(|r| r["sequence"] == 22), "{first:?}");
    assert_eq!(records_of(&records, 1).len(), 20);
    assert_eq!(records_of(&records, 2).len(), 3);
    // Order (documented in --help): the template datagram's own records, then the replayed ones.
    let order: Vec<u64> = records
        .iter()
        .map(|r| r["packet"].as_u64().unwrap())
        .collect();
    let mut want = vec![1; 20];
    want.extend([0; 3]);
    want.extend([2; 3]);
    assert_eq!(order, want);
    // The replayed records equal those of the same datagram decoded with the template known.
    let fields = |p: u64| {
        records_of(&records, p)
            .iter()
            .map(|r| r["fields"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(fields(0), fields(2));
    assert_eq!(
        run.summary(),
        "packets 3, records 26, errors 0, waiting for a template: 0 sets (0 bytes)"
    );
}

#[test]
fn sequence_ipfix_ether() {
    let Some(seed) = seed_vectors() else { return };
    let run = decode_feed(
        &seed,
        "seq_ether",
        &["PACKET_IPFIX_TEMPLATE_ETHER", "PACKET_IPFIX_ETHER"],
        &[],
    );
    run.assert_success();
    let records = run.records();
    assert_eq!(records_of(&records, 0).len(), 14);
    assert_eq!(records_of(&records, 1).len(), 9);
    // upstream test_ipfix_contents_ether: flows[1].sourceMacAddress == 0x123456affefe.
    assert_eq!(
        records[1]["fields"]["sourceMacAddress"],
        "12:34:56:af:fe:fe"
    );
    assert_eq!(
        records[1]["fields"]["postDestinationMacAddress"],
        "af:fe:af:fe:af:fe"
    );
}

#[test]
fn sequence_invalid_interleaved() {
    let Some(seed) = seed_vectors() else { return };
    let feed = [
        "PACKET_INVALID",
        "PACKET_V9_TEMPLATE",
        "PACKETS_V9[1]",
        "PACKET_INVALID",
        "PACKETS_V9[2]",
        "PACKET_INVALID",
    ];
    let run = decode_feed(&seed, "seq_invalid", &feed, &[]);
    run.assert_success();
    let records = run.records();
    let mut packets: Vec<u64> = records
        .iter()
        .map(|r| r["packet"].as_u64().unwrap())
        .collect();
    packets.dedup();
    assert_eq!(packets, [1, 2, 4], "three outputs");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("unknown export version"))
        .collect();
    assert_eq!(errors.len(), 3);
    for (line, index) in errors.iter().zip([0, 3, 5]) {
        assert!(
            line.contains(&format!(": datagram {index} from 0.0.0.0:0: ")),
            "{line}"
        );
    }
    assert_eq!(
        run.summary(),
        "packets 6, records 32, errors 3, waiting for a template: 0 sets (0 bytes)"
    );
}

#[test]
fn sequence_1000_packets_template_first_middle_last() {
    let Some(seed) = seed_vectors() else { return };
    let data = ["PACKETS_V9[0]", "PACKETS_V9[1]", "PACKETS_V9[2]"];
    for k in [0usize, 500, 999] {
        // A fixed pseudo-random choice of data packets around the template.
        let mut state = 0x2545_F491_4F6C_DD1Du64 ^ k as u64;
        let feed: Vec<&str> = (0..1000)
            .map(|i| {
                if i == k {
                    "PACKET_V9_TEMPLATE"
                } else {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    data[(state % 3) as usize]
                }
            })
            .collect();
        let run = decode_feed(&seed, &format!("seq_1000_{k}"), &feed, &[]);
        run.assert_success();
        let records = run.records();
        assert_eq!(
            records.len(),
            11_996,
            "template at {k}: 8 + 999 * 12 records"
        );
        let mut seen = vec![0usize; 1000];
        for r in &records {
            seen[r["packet"].as_u64().unwrap() as usize] += 1;
        }
        assert!(
            seen.iter().all(|&n| n > 0),
            "template at {k}: every packet has output"
        );
        assert_eq!(seen[k], 8);
        assert_eq!(
            run.summary(),
            "packets 1000, records 11996, errors 0, waiting for a template: 0 sets (0 bytes)"
        );
    }
}
