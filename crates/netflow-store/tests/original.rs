//! Format::Original against the spec's literal lines (original.md section 7)
//! and against the Python original's own decode of every seed vector.

mod common;

use std::net::SocketAddr;

use netflow::{parse_packet, TemplateCache};
use netflow_store::{write_export, Export, Format};
use serde_json::Value as Json;

use common::*;

const V1_LINE: &str = r#"{"1700000000.123456": {"client": ["192.0.2.10", 50000], "header": {"version": 1, "count": 2, "uptime": 71835, "timestamp": 1585496876, "timestamp_nano": 802429000}, "flows": [{"IPV4_SRC_ADDR": 2886795266, "IPV4_DST_ADDR": 2886795265, "NEXT_HOP": 0, "INPUT": 0, "OUTPUT": 0, "IN_PACKETS": 10, "IN_OCTETS": 840, "FIRST_SWITCHED": 10183, "LAST_SWITCHED": 19185, "SRC_PORT": 0, "DST_PORT": 2048, "PROTO": 1, "TOS": 0, "TCP_FLAGS": 0}, {"IPV4_SRC_ADDR": 2886795265, "IPV4_DST_ADDR": 2886795266, "NEXT_HOP": 0, "INPUT": 0, "OUTPUT": 0, "IN_PACKETS": 10, "IN_OCTETS": 840, "FIRST_SWITCHED": 10183, "LAST_SWITCHED": 19185, "SRC_PORT": 0, "DST_PORT": 0, "PROTO": 1, "TOS": 0, "TCP_FLAGS": 0}]}}"#;

/// First flow of PACKET_V9_TEMPLATE only.
const V9_LINE: &str = r#"{"1700000001.5": {"client": ["192.0.2.10", 50000], "header": {"version": 9, "count": 10, "uptime": 3, "timestamp": 1553946008, "sequence": 1, "source_id": 0}, "flows": [{"IPV4_SRC_ADDR": "127.0.0.1", "IPV4_DST_ADDR": "127.0.0.1", "LAST_SWITCHED": 4215020202, "FIRST_SWITCHED": 4215019773, "IN_BYTES": 102416, "IN_PKTS": 75, "INPUT_SNMP": 0, "OUTPUT_SNMP": 0, "L4_SRC_PORT": 80, "L4_DST_PORT": 37932, "PROTOCOL": 6, "TCP_FLAGS": 27, "IP_PROTOCOL_VERSION": 4, "SRC_TOS": 0}]}}"#;

/// Last flow of PACKET_IPFIX_PADDING, IPv6 client, as the spec prints it (the
/// original's IPFIX key order is Python set order: arbitrary per run).
const IPFIX_LINE: &str = r#"{"1700000002.25": {"client": ["2001:db8::1", 50000, 0, 0], "header": {"version": 10, "length": 448, "export_uptime": 1692447120, "sequence_number": 2, "obervation_domain_id": 0}, "flows": [{"interfaceName": "testcapture_sing", "systemInitTimeMilliseconds": 1692447120686, "selectorAlgorithm": 1, "meteringProcessId": 45786, "samplingPacketSpace": 0, "samplingPacketInterval": 1}]}}"#;

/// The same line with the keys in template order (ours, deterministic).
const IPFIX_LINE_TEMPLATE_ORDER: &str = r#"{"1700000002.25": {"client": ["2001:db8::1", 50000, 0, 0], "header": {"version": 10, "length": 448, "export_uptime": 1692447120, "sequence_number": 2, "obervation_domain_id": 0}, "flows": [{"meteringProcessId": 45786, "systemInitTimeMilliseconds": 1692447120686, "samplingPacketInterval": 1, "samplingPacketSpace": 0, "selectorAlgorithm": 1, "interfaceName": "testcapture_sing"}]}}"#;

fn client4() -> SocketAddr {
    "192.0.2.10:50000".parse().unwrap()
}

#[test]
fn v1_example_is_byte_identical() {
    let seed = seed();
    let lines = lines_of(
        &seed,
        &["PACKET_V1"],
        &[1700000000.123456],
        client4(),
        Format::Original,
    );
    assert_eq!(lines[0], format!("{V1_LINE}\n"));
}

#[test]
fn v9_example_is_byte_identical_for_the_first_flow() {
    let seed = seed();
    let lines = lines_of(
        &seed,
        &["PACKET_V9_TEMPLATE"],
        &[1700000001.5],
        client4(),
        Format::Original,
    );
    let line = &lines[0];
    // Our line holds all 8 flows: the spec's line up to the end of the first
    // flow is its prefix, then ", {" the second flow.
    let prefix = &V9_LINE[..V9_LINE.len() - "]}}".len()];
    assert!(
        line.starts_with(&format!("{prefix}, {{")),
        "{line}\nvs\n{V9_LINE}"
    );
    assert!(line.ends_with("}]}}\n"));
    let ours: Json = serde_json::from_str(line).unwrap();
    assert_eq!(ours["1700000001.5"]["flows"].as_array().unwrap().len(), 8);
}

#[test]
fn ipfix_example_is_identical_modulo_python_set_order() {
    let seed = seed();
    let bytes = packet_bytes(&seed, "PACKET_IPFIX_PADDING");
    let mut cache = TemplateCache::new();
    let p = parse_packet(&bytes, &mut cache).unwrap();
    assert!(p.errors.is_empty());
    // The last flow is the one record of the last data set (options data, template 256).
    let last = p.data_sets.len() - 1;
    assert_eq!(p.data_sets[last].record_count, 1);
    assert!(p.data_sets[last].is_options());
    let mut out = Vec::new();
    let n = write_export(
        Format::Original,
        &mut out,
        &Export {
            received: 1700000002.25,
            exporter: "[2001:db8::1]:50000".parse().unwrap(),
            header: &p.header,
            sets: &p.data_sets[last..],
        },
    );
    assert_eq!(n, 1);
    let line = String::from_utf8(out).unwrap();
    assert_eq!(line, format!("{IPFIX_LINE_TEMPLATE_ORDER}\n"));
    let ours: Json = serde_json::from_str(&line).unwrap();
    let spec: Json = serde_json::from_str(IPFIX_LINE).unwrap();
    assert_eq!(ours, spec);
    // Same bytes once the keys are ordered alike.
    assert_eq!(line.len(), IPFIX_LINE.len() + 1);
}

/// The packets of a vector: its sequence (into one cache), or itself.
fn sequence_of(v: &Json) -> Vec<String> {
    match v["sequence"].as_array() {
        Some(s) => s.iter().map(|n| n.as_str().unwrap().to_string()).collect(),
        None => vec![v["name"].as_str().unwrap().to_string()],
    }
}

/// The records, in order; each a map (key order is not compared: the
/// original's IPFIX order is arbitrary and the vectors store keys sorted).
fn records(flows: &Json) -> Vec<Json> {
    flows.as_array().unwrap().to_vec()
}

#[test]
fn every_seed_vector_flows_equal_the_originals_decode() {
    let seed = seed();
    let mut checked = 0;
    for v in seed["vectors"].as_array().unwrap() {
        let expect = &v["expect"]["verified_by_decoding_with_netflow_0_12_2"];
        if expect.get("flows").is_none() {
            continue; // the original raises on it
        }
        let names = sequence_of(v);
        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let ts: Vec<f64> = (0..names.len()).map(|i| 1553946008.0 + i as f64).collect();
        let lines = lines_of(&seed, &names, &ts, client4(), Format::Original);
        let line = lines.last().unwrap();
        assert!(line.ends_with("}}\n") && line.matches('\n').count() == 1);
        let ours: Json = serde_json::from_str(line).unwrap();
        let key = format!("{}.0", 1553946008 + names.len() - 1);
        let entry = &ours[&key];
        assert_eq!(entry["header"], expect["header"], "{}: header", v["name"]);
        assert_eq!(
            entry["client"],
            serde_json::json!(["192.0.2.10", 50000]),
            "{}",
            v["name"]
        );
        assert_eq!(
            records(&entry["flows"]),
            records(&expect["flows"]),
            "{}: flows",
            v["name"]
        );
        assert_eq!(
            entry["flows"].as_array().unwrap().len() as u64,
            expect["flow_count"].as_u64().unwrap()
        );
        // Header keys in the original's order, byte for byte.
        let header_keys: &[&str] = match entry["header"]["version"].as_u64().unwrap() {
            1 => &["version", "count", "uptime", "timestamp", "timestamp_nano"],
            5 => &[
                "version",
                "count",
                "uptime",
                "timestamp",
                "timestamp_nano",
                "sequence",
                "engine_type",
                "engine_id",
                "sampling_interval",
            ],
            9 => &[
                "version",
                "count",
                "uptime",
                "timestamp",
                "sequence",
                "source_id",
            ],
            _ => &[
                "version",
                "length",
                "export_uptime",
                "sequence_number",
                "obervation_domain_id",
            ],
        };
        let text = header_keys
            .iter()
            .map(|k| format!("\"{k}\": {}", entry["header"][*k]))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(line.contains(&format!("\"header\": {{{text}}}")), "{line}");
        assert!(!line.contains("\"options\""), "{}", v["name"]);
        checked += 1;
    }
    assert_eq!(checked, 12);
}

#[test]
fn timestamps_render_like_python_float_repr() {
    let seed = seed();
    for (ts, key) in [
        (1700000000.123456, "1700000000.123456"),
        (1700000001.5, "1700000001.5"),
        (1700000000.0, "1700000000.0"),
        (1700000000.1, "1700000000.1"),
    ] {
        let line = &lines_of(&seed, &["PACKET_V5"], &[ts], client4(), Format::Original)[0];
        assert!(
            line.starts_with(&format!("{{\"{key}\": {{\"client\": ")),
            "{line}"
        );
    }
}
