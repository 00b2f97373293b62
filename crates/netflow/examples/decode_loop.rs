//! Decode one capture's UDP payloads in a loop, touching every field: a fixed
//! workload for profilers (`valgrind --tool=callgrind`, `perf record`).
//!
//! `cargo run --release -p netflow --example decode_loop -- testdata/captures/softflowd-v9.pcap 1000`

use netflow::{parse_packet, TemplateCache, Value};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: decode_loop CAPTURE [ROUNDS]");
    let rounds: usize = args.next().map_or(1000, |r| r.parse().expect("rounds"));
    let mut reader =
        netflow_capture::CaptureReader::open(path.as_ref(), Default::default()).expect("open");
    let mut packets = Vec::new();
    while let Some(d) = reader.next_datagram() {
        packets.push(d.expect("datagram").payload.to_vec());
    }
    let mut cache = TemplateCache::new();
    let (mut records, mut acc) = (0usize, 0u64);
    for _ in 0..rounds {
        for p in &packets {
            let packet = parse_packet(p, &mut cache).expect("decode");
            for r in packet.records() {
                records += 1;
                for (_, v) in r.fields() {
                    acc = acc.wrapping_add(match v {
                        Value::Unsigned(x) => x,
                        Value::Ipv4(a) => u32::from(a) as u64,
                        _ => 1,
                    });
                }
            }
        }
    }
    println!("{records} records, checksum {acc}");
}
