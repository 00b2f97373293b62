//! Format::Flows: one flat JSON object per record.

mod common;

use serde_json::{json, Value as Json};

use common::*;
use netflow_store::Format;

fn parse(lines: &[String]) -> Vec<Json> {
    let text = lines.concat();
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const KEYS: [&str; 9] = [
    "received",
    "exporter",
    "version",
    "domain",
    "template_id",
    "options",
    "export_time",
    "sequence",
    "fields",
];

#[test]
fn v5_records() {
    let seed = seed();
    let lines = lines_of(
        &seed,
        &["PACKET_V5"],
        &[1700000000.123],
        "127.0.0.1:2055".parse().unwrap(),
        Format::Flows,
    );
    let recs = parse(&lines);
    assert_eq!(recs.len(), 3);
    let text = lines.concat();
    assert!(text.starts_with(r#"{"received":1700000000.123,"exporter":"127.0.0.1:2055","version":5,"domain":null,"template_id":0,"options":false,"export_time":1585497478,"sequence":0,"fields":{"IPV4_SRC_ADDR":""#), "{text}");
    let expect =
        &vector(&seed, "PACKET_V5")["expect"]["verified_by_decoding_with_netflow_0_12_2"]["flows"];
    for (r, e) in recs.iter().zip(expect.as_array().unwrap()) {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut want = KEYS.to_vec();
        want.sort();
        assert_eq!(keys, want);
        let f = &r["fields"];
        // Same fields as the original, addresses as text instead of integers.
        let src: std::net::Ipv4Addr = f["IPV4_SRC_ADDR"].as_str().unwrap().parse().unwrap();
        assert_eq!(json!(u32::from(src)), e["IPV4_SRC_ADDR"]);
        for k in [
            "IN_PACKETS",
            "IN_OCTETS",
            "FIRST_SWITCHED",
            "SRC_PORT",
            "DST_PORT",
            "PROTO",
            "SRC_AS",
        ] {
            assert_eq!(f[k], e[k], "{k}");
        }
        assert_eq!(f.as_object().unwrap().len(), e.as_object().unwrap().len());
    }
}

#[test]
fn ipfix_records_include_options_records() {
    let seed = seed();
    let lines = lines_of(
        &seed,
        &["PACKET_IPFIX_PADDING"],
        &[1700000002.25],
        "[2001:db8::1]:4739".parse().unwrap(),
        Format::Flows,
    );
    let recs = parse(&lines);
    assert_eq!(recs.len(), 3);
    for r in &recs[..2] {
        assert_eq!(r["received"], json!(1700000002.25));
        assert_eq!(r["exporter"], "[2001:db8::1]:4739");
        assert_eq!(r["version"], 10);
        assert_eq!(r["domain"], 0);
        assert_eq!(r["template_id"], 1025);
        assert_eq!(r["options"], false);
        assert_eq!(r["export_time"], 1692447120);
        assert_eq!(r["sequence"], 2);
        assert_eq!(r["fields"]["sourceIPv4Address"], "127.0.0.1");
        assert_eq!(r["fields"]["octetDeltaCount"], 252);
    }
    assert_eq!(recs[0]["fields"]["icmpTypeCodeIPv4"], 2048);
    let o = &recs[2];
    assert_eq!(o["options"], true);
    assert_eq!(o["template_id"], 256);
    assert_eq!(
        o["fields"],
        json!({"meteringProcessId": 45786, "systemInitTimeMilliseconds": 1692447120686u64,
               "samplingPacketInterval": 1, "samplingPacketSpace": 0, "selectorAlgorithm": 1,
               "interfaceName": "testcapture_sing"})
    );
}

#[test]
fn template_only_datagram_writes_no_flow_line() {
    let packets = v9_options_packets();
    let mut cache = netflow::TemplateCache::new();
    let _ = netflow::parse_packet(&packets[0], &mut cache).unwrap();
    let p = netflow::parse_packet(&packets[1], &mut cache).unwrap();
    let mut out = Vec::new();
    let export = netflow_store::Export {
        received: 1.0,
        exporter: "127.0.0.1:1".parse().unwrap(),
        header: &p.header,
        sets: &p.data_sets,
    };
    assert_eq!(
        netflow_store::write_export(Format::Flows, &mut out, &export),
        0
    );
    assert!(out.is_empty());
    assert_eq!(
        netflow_store::write_export(Format::Original, &mut out, &export),
        1
    );
    assert!(out.ends_with(b"\"flows\": []}}\n"));
}
