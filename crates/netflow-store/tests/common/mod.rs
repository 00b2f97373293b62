//! Shared helpers: the seed vectors of `testdata/seed_vectors.json`.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use netflow::encode::MessageBuilder;
use netflow::wire::v9::V9Header;
use netflow::{
    parse_packet, FieldSpec, OwnedValue, Protocol, Template, TemplateCache, TemplateKind,
};
use netflow_store::{write_export, Export, Format};
use serde_json::Value as Json;

pub fn seed() -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/seed_vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn vector(seed: &Json, name: &str) -> Json {
    seed["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
        .clone()
}

pub fn packet_bytes(seed: &Json, name: &str) -> Vec<u8> {
    netflow::decode_hex(vector(seed, name)["hex"].as_str().unwrap()).unwrap()
}

/// Decode the packets `names` in order with one cache and write each as one
/// line in `format`, received at `ts[i]` from `client`.
pub fn lines_of(
    seed: &Json,
    names: &[&str],
    ts: &[f64],
    client: SocketAddr,
    format: Format,
) -> Vec<String> {
    let bytes: Vec<Vec<u8>> = names.iter().map(|n| packet_bytes(seed, n)).collect();
    let mut cache = TemplateCache::new();
    let mut lines = Vec::new();
    for (b, ts) in bytes.iter().zip(ts) {
        let p = parse_packet(b, &mut cache).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.missing.is_empty());
        let mut out = Vec::new();
        write_export(
            format,
            &mut out,
            &Export {
                received: *ts,
                exporter: client,
                header: &p.header,
                sets: &p.data_sets,
            },
        );
        lines.push(String::from_utf8(out).unwrap());
    }
    lines
}

fn header(sequence: u32) -> V9Header {
    V9Header {
        version: 9,
        count: 0,
        uptime: 123456,
        timestamp: 1700000000,
        sequence,
        source_id: 7,
    }
}

fn data_template() -> Template {
    let specs: Vec<FieldSpec> = [
        (8, 4),   // IPV4_SRC_ADDR
        (12, 4),  // IPV4_DST_ADDR
        (27, 16), // IPV6_SRC_ADDR
        (28, 16), // IPV6_DST_ADDR
        (56, 6),  // IN_SRC_MAC
        (1, 8),   // IN_BYTES
        (2, 4),   // IN_PKTS
        (22, 4),  // FIRST_SWITCHED
        (21, 4),  // LAST_SWITCHED
        (225, 4), // NF_F_XLATE_SRC_ADDR_IPV4: an integer in the original
        (7, 2),   // L4_SRC_PORT
        (4, 1),   // PROTOCOL
        (60, 1),  // IP_PROTOCOL_VERSION
    ]
    .iter()
    .map(|&(id, len)| FieldSpec::new(0, id, len))
    .collect();
    Template::compile(Protocol::V9, 256, TemplateKind::Data, 0, &specs).unwrap()
}

fn options_template() -> Template {
    let specs = [FieldSpec::new(0, 1, 4), FieldSpec::new(0, 34, 4)];
    Template::compile(Protocol::V9, 257, TemplateKind::Options, 1, &specs).unwrap()
}

fn flow(i: u32) -> Vec<OwnedValue> {
    vec![
        OwnedValue::Ipv4(Ipv4Addr::new(10, 0, 0, i as u8)),
        OwnedValue::Ipv4(Ipv4Addr::new(192, 168, 1, 200)),
        OwnedValue::Ipv6("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
        OwnedValue::Ipv6("::ffff:1.2.3.4".parse::<Ipv6Addr>().unwrap()),
        OwnedValue::Mac([0x02, 0x42, 0xac, 0x11, 0x00, i as u8]),
        OwnedValue::Unsigned(0x1_0000_0000 + i as u64),
        OwnedValue::Unsigned(10 + i as u64),
        OwnedValue::Unsigned(4215019773),
        OwnedValue::Unsigned(4215020202),
        OwnedValue::Ipv4(Ipv4Addr::new(203, 0, 113, 9)),
        OwnedValue::Unsigned(443),
        OwnedValue::Unsigned(6),
        OwnedValue::Unsigned(4),
    ]
}

/// [templates + 2 flows + 1 options record, template-only refresh, data only].
pub fn v9_options_packets() -> Vec<Vec<u8>> {
    let (dt, ot) = (data_template(), options_template());
    let mut a = Vec::new();
    let mut m = MessageBuilder::v9(&mut a, header(1));
    m.template(&dt).unwrap();
    m.template(&ot).unwrap();
    m.values(&dt, &flow(1)).unwrap();
    m.values(&dt, &flow(2)).unwrap();
    m.values(&ot, &[OwnedValue::Unsigned(1), OwnedValue::Unsigned(100)])
        .unwrap();
    m.finish().unwrap();
    let mut b = Vec::new();
    let mut m = MessageBuilder::v9(&mut b, header(2));
    m.template(&dt).unwrap();
    m.finish().unwrap();
    let mut c = Vec::new();
    let mut m = MessageBuilder::v9(&mut c, header(3));
    m.values(&dt, &flow(3)).unwrap();
    m.finish().unwrap();
    vec![a, b, c]
}
