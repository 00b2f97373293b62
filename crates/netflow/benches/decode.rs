//! Decode throughput on real exports, templates warm: records fully decoded to
//! typed values, every field read. Inputs: the upstream test packets
//! (`testdata/seed_vectors.json`, softflowd) and our captures of softflowd and
//! pmacct (`testdata/captures/`, made by scripts/make-captures.sh). Baseline
//! measured in the same run: reading every byte of the same packets once (a
//! checksum), the floor any decoder pays.
//!
//! Run: `cargo bench -p netflow --bench decode`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use netflow::{decode_hex, parse_packet, TemplateCache, Value};

fn vector(name: &str) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/seed_vectors.json"
    );
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap();
    decode_hex(v["hex"].as_str().unwrap()).unwrap()
}

/// Decode a packet and fold every field value into a checksum.
fn decode_all(bytes: &[u8], cache: &mut TemplateCache) -> u64 {
    let p = parse_packet(bytes, cache).unwrap();
    let mut acc = 0u64;
    for r in p.records() {
        for (_, v) in r.fields() {
            acc = acc.wrapping_add(match v {
                Value::Unsigned(x) | Value::DateTimeMilliseconds(x) | Value::DateTimeSeconds(x) => {
                    x
                }
                Value::Ipv4(a) => u32::from(a) as u64,
                Value::Ipv6(a) => u128::from(a) as u64,
                Value::Mac(m) => m[5] as u64,
                Value::String(s) => s.len() as u64,
                Value::Bytes(b) => b.len() as u64,
                _ => 1,
            });
        }
    }
    acc
}

fn read_every_byte(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |a, &b| a.wrapping_add(b as u64))
}

/// Measure decoding `packets` (after `cache` learned their templates) against
/// reading every byte of them.
fn measure(c: &mut Criterion, name: &str, packets: &[Vec<u8>], cache: &mut TemplateCache) {
    let records: usize = packets
        .iter()
        .map(|p| parse_packet(p, cache).unwrap().record_count())
        .sum();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(records as u64));
    g.bench_function("decode_all_fields", |b| {
        b.iter(|| {
            let mut acc = 0;
            for p in packets {
                acc ^= decode_all(black_box(p), cache);
            }
            acc
        })
    });
    g.bench_function("baseline_read_every_byte", |b| {
        b.iter(|| {
            let mut acc = 0;
            for p in packets {
                acc ^= read_every_byte(black_box(p));
            }
            acc
        })
    });
    g.finish();
}

/// Seed vectors: `warmup` packets carry the templates of `packets`.
fn bench_case(c: &mut Criterion, name: &str, warmup: &[&str], packets: &[&str]) {
    let mut cache = TemplateCache::new();
    for w in warmup {
        parse_packet(&vector(w), &mut cache).unwrap();
    }
    let packets: Vec<Vec<u8>> = packets.iter().map(|n| vector(n)).collect();
    measure(c, name, &packets, &mut cache);
}

/// All UDP payloads of a capture.
fn capture(name: &str) -> Vec<Vec<u8>> {
    let path = format!(
        "{}/../../testdata/captures/{name}.pcap",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut r = netflow_capture::CaptureReader::open(path.as_ref(), Default::default()).unwrap();
    let mut out = Vec::new();
    while let Some(d) = r.next_datagram() {
        out.push(d.unwrap().payload.to_vec());
    }
    out
}

/// A whole capture (its first datagrams carry the templates).
fn bench_capture(c: &mut Criterion, name: &str) {
    measure(c, name, &capture(name), &mut TemplateCache::new());
}

fn benches(c: &mut Criterion) {
    for name in [
        "softflowd-v5",
        "softflowd-v9",
        "softflowd-ipfix",
        "pmacct-v9",
        "pmacct-ipfix",
    ] {
        bench_capture(c, name);
    }
    bench_case(c, "v5", &[], &["PACKET_V5"]);
    bench_case(
        c,
        "v9",
        &["PACKET_V9_TEMPLATE"],
        &["PACKETS_V9[0]", "PACKETS_V9[1]", "PACKETS_V9[2]"],
    );
    bench_case(
        c,
        "ipfix",
        &["PACKET_IPFIX_TEMPLATE_ETHER"],
        &["PACKET_IPFIX_ETHER"],
    );
}

criterion_group!(decode, benches);
criterion_main!(decode);
