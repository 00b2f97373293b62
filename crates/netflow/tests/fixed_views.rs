//! The typed fixed-layout record views of NetFlow v1/v5/v7
//! (`ExportPacket::v1_records` / `v5_records` / `v7_records`) read the same
//! values as the Python original decodes from the upstream test packets
//! (`testdata/seed_vectors.json`), and, for v7 (no upstream vector), the values
//! of a record built by hand from Cisco's v7 layout.

use netflow::{decode_hex, parse_packet, TemplateCache};
use serde_json::Value as Json;

fn vector(name: &str) -> (Vec<u8>, Json) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/seed_vectors.json"
    );
    let all: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
        .clone();
    let bytes = decode_hex(v["hex"].as_str().unwrap()).unwrap();
    (
        bytes,
        v["expect"]["verified_by_decoding_with_netflow_0_12_2"]["flows"].clone(),
    )
}

fn n(flow: &Json, key: &str) -> u64 {
    flow[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {flow}"))
}

/// Fields v1, v5 and v7 share, checked against the original's names.
macro_rules! check_common {
    ($r:expr, $f:expr) => {{
        let (r, f) = (&$r, $f);
        assert_eq!(u64::from(r.src_addr()), n(f, "IPV4_SRC_ADDR"));
        assert_eq!(u64::from(u32::from(r.src_ipv4())), n(f, "IPV4_SRC_ADDR"));
        assert_eq!(u64::from(r.dst_addr()), n(f, "IPV4_DST_ADDR"));
        assert_eq!(u64::from(r.next_hop()), n(f, "NEXT_HOP"));
        assert_eq!(u64::from(r.input()), n(f, "INPUT"));
        assert_eq!(u64::from(r.output()), n(f, "OUTPUT"));
        assert_eq!(u64::from(r.packets()), n(f, "IN_PACKETS"));
        assert_eq!(u64::from(r.octets()), n(f, "IN_OCTETS"));
        assert_eq!(u64::from(r.first()), n(f, "FIRST_SWITCHED"));
        assert_eq!(u64::from(r.last()), n(f, "LAST_SWITCHED"));
        assert_eq!(u64::from(r.src_port()), n(f, "SRC_PORT"));
        assert_eq!(u64::from(r.dst_port()), n(f, "DST_PORT"));
        assert_eq!(u64::from(r.tcp_flags()), n(f, "TCP_FLAGS"));
        assert_eq!(u64::from(r.proto()), n(f, "PROTO"));
        assert_eq!(u64::from(r.tos()), n(f, "TOS"));
    }};
}

#[test]
fn v5_views_equal_the_original_decode() {
    let (bytes, flows) = vector("PACKET_V5");
    let mut cache = TemplateCache::default();
    let packet = parse_packet(&bytes, &mut cache).unwrap();
    let views: Vec<_> = packet.v5_records().collect();
    assert_eq!(views.len(), flows.as_array().unwrap().len());
    assert_eq!(views.len(), 3);
    for (r, f) in views.iter().zip(flows.as_array().unwrap()) {
        check_common!(r, f);
        assert_eq!(u64::from(r.src_as()), n(f, "SRC_AS"));
        assert_eq!(u64::from(r.dst_as()), n(f, "DST_AS"));
        assert_eq!(u64::from(r.src_mask()), n(f, "SRC_MASK"));
        assert_eq!(u64::from(r.dst_mask()), n(f, "DST_MASK"));
    }
    // Other versions' accessors are empty on a v5 packet.
    assert_eq!(packet.v1_records().count(), 0);
    assert_eq!(packet.v7_records().count(), 0);
}

#[test]
fn v1_views_equal_the_original_decode() {
    let (bytes, flows) = vector("PACKET_V1");
    let mut cache = TemplateCache::default();
    let packet = parse_packet(&bytes, &mut cache).unwrap();
    let views: Vec<_> = packet.v1_records().collect();
    assert_eq!(views.len(), 2);
    for (r, f) in views.iter().zip(flows.as_array().unwrap()) {
        check_common!(r, f);
    }
    assert_eq!(packet.v5_records().count(), 0);
}

#[test]
fn v7_view_reads_a_hand_built_record() {
    // Header (24 bytes): version 7, count 1, uptime 1000, secs 1700000000, nsecs 0,
    // sequence 9, reserved 0.
    let mut p = vec![
        0, 7, 0, 1, 0, 0, 0x03, 0xe8, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 0,
    ];
    p.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 0]);
    // Record (52 bytes), Cisco v7 layout.
    p.extend_from_slice(&[10, 0, 0, 1]); // srcaddr
    p.extend_from_slice(&[192, 0, 2, 7]); // dstaddr
    p.extend_from_slice(&[10, 0, 0, 254]); // nexthop
    p.extend_from_slice(&[0, 3, 0, 4]); // input 3, output 4
    p.extend_from_slice(&[0, 0, 0, 12]); // dPkts 12
    p.extend_from_slice(&[0, 0, 0x12, 0x34]); // dOctets 0x1234
    p.extend_from_slice(&[0, 0, 0, 100, 0, 0, 0, 200]); // first 100, last 200
    p.extend_from_slice(&[0x1f, 0x90, 0xc0, 0x01]); // srcport 8080, dstport 49153
    p.extend_from_slice(&[0x80, 0x1b, 6, 0x10]); // flags1, tcp_flags, prot, tos
    p.extend_from_slice(&[0xfd, 0xe8, 0, 1]); // src_as 65000, dst_as 1
    p.extend_from_slice(&[24, 16, 0, 2]); // src_mask, dst_mask, flags2 2
    p.extend_from_slice(&[172, 16, 0, 1]); // router_sc
    let mut cache = TemplateCache::default();
    let packet = parse_packet(&p, &mut cache).unwrap();
    assert!(packet.errors.is_empty(), "{:?}", packet.errors);
    let r = packet.v7_records().next().expect("one record");
    assert_eq!(r.src_ipv4().to_string(), "10.0.0.1");
    assert_eq!(r.dst_ipv4().to_string(), "192.0.2.7");
    assert_eq!(r.next_hop_ipv4().to_string(), "10.0.0.254");
    assert_eq!((r.input(), r.output()), (3, 4));
    assert_eq!((r.packets(), r.octets()), (12, 0x1234));
    assert_eq!((r.first(), r.last()), (100, 200));
    assert_eq!((r.src_port(), r.dst_port()), (8080, 49153));
    assert_eq!(
        (r.flags1(), r.tcp_flags(), r.proto(), r.tos()),
        (0x80, 0x1b, 6, 0x10)
    );
    assert_eq!((r.src_as(), r.dst_as()), (65000, 1));
    assert_eq!((r.src_mask(), r.dst_mask(), r.flags2()), (24, 16, 2));
    assert_eq!(r.router_sc(), 0xac10_0001);
    assert_eq!(packet.v7_records().count(), 1);
}

#[test]
fn views_stop_at_whole_records_of_a_truncated_packet() {
    // A v5 header claiming 3 records followed by one and a half: one view, and
    // the count mismatch is reported by the packet, not by the views.
    let (bytes, _) = vector("PACKET_V5");
    let cut = &bytes[..24 + 48 + 20];
    let mut cache = TemplateCache::default();
    let packet = parse_packet(cut, &mut cache).unwrap();
    assert_eq!(packet.v5_records().count(), 1);
    assert!(!packet.errors.is_empty());
}
