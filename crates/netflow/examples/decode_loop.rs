//! Decode one capture's UDP payloads in a loop, touching every field: a fixed
//! workload for profilers (`valgrind --tool=callgrind`, `perf record`).
//!
//! `cargo run --release -p netflow --example decode_loop -- testdata/captures/softflowd-v9.pcap 1000 [MODE]`
//!
//! MODE: `fields` (default, the `Record::fields` iterator), `visit`
//! (`Record::for_each_field`), `columns` (`DataSet::columns`), `v5view` (`ExportPacket::v5_records`, v5 only),
//! `netflow_parser` (the crates.io `netflow_parser` 1.0.6 the decode bench
//! compares against, every value read: its instruction count per record is
//! the reference for the bench's ratios) or `count` (prints the number of
//! fields as the checksum). Each mode is its own function, so one does not
//! change how the others are compiled.

use netflow::{parse_packet, TemplateCache, Value};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: decode_loop CAPTURE [ROUNDS] [MODE]");
    let rounds: usize = args.next().map_or(1000, |r| r.parse().expect("rounds"));
    let mode = args.next().unwrap_or_else(|| "fields".into());
    let mut reader =
        netflow_capture::CaptureReader::open(path.as_ref(), Default::default()).expect("open");
    let mut packets = Vec::new();
    while let Some(d) = reader.next_datagram() {
        packets.push(d.expect("datagram").payload.to_vec());
    }
    let pass = match mode.as_str() {
        "fields" => fields,
        "visit" => visit,
        "columns" => columns,
        "v5view" => v5view,
        "count" => count,
        "netflow_parser" => {
            let mut parser = netflow_parser::NetflowParser::default();
            let (mut records, mut acc) = (0usize, 0u64);
            for _ in 0..rounds {
                for p in &packets {
                    let (r, a) = theirs(p, &mut parser);
                    records += r;
                    acc = acc.wrapping_add(a);
                }
            }
            println!("{records} records, checksum {acc}");
            return;
        }
        m => panic!("unknown mode {m}"),
    };
    let mut cache = TemplateCache::new();
    let (mut records, mut acc) = (0usize, 0u64);
    for _ in 0..rounds {
        for p in &packets {
            let (r, a) = pass(p, &mut cache);
            records += r;
            acc = acc.wrapping_add(a);
        }
    }
    println!("{records} records, checksum {acc}");
}

#[inline(always)]
fn fold(v: Value<'_>) -> u64 {
    match v {
        Value::Unsigned(x) => x,
        Value::Ipv4(a) => u32::from(a) as u64,
        _ => 1,
    }
}

#[inline(never)]
fn fields(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    let packet = parse_packet(p, cache).expect("decode");
    let (mut records, mut acc) = (0, 0u64);
    for r in packet.records() {
        records += 1;
        for (_, v) in r.fields() {
            acc = acc.wrapping_add(fold(v));
        }
    }
    (records, acc)
}

#[inline(never)]
fn visit(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    let packet = parse_packet(p, cache).expect("decode");
    let (mut records, mut acc) = (0, 0u64);
    for r in packet.records() {
        records += 1;
        r.for_each_field(|_, v| acc = acc.wrapping_add(fold(v)));
    }
    (records, acc)
}

#[inline(never)]
fn columns(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    let packet = parse_packet(p, cache).expect("decode");
    let (mut records, mut acc) = (0, 0u64);
    for set in &packet.data_sets {
        records += set.record_count;
        match set.columns() {
            Some(columns) => {
                for c in columns {
                    c.for_each(|v| acc = acc.wrapping_add(fold(v)));
                }
            }
            None => {
                for r in set.records() {
                    r.for_each_field(|_, v| acc = acc.wrapping_add(fold(v)));
                }
            }
        }
    }
    (records, acc)
}

#[inline(never)]
fn v5view(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    let packet = parse_packet(p, cache).expect("decode");
    let (mut records, mut acc) = (0, 0u64);
    for f in packet.v5_records() {
        records += 1;
        acc = acc
            .wrapping_add(f.src_addr() as u64 + f.dst_addr() as u64)
            .wrapping_add(f.next_hop() as u64)
            .wrapping_add(f.input() as u64 + f.output() as u64)
            .wrapping_add(f.packets() as u64 + f.octets() as u64)
            .wrapping_add(f.first() as u64 + f.last() as u64)
            .wrapping_add(f.src_port() as u64 + f.dst_port() as u64)
            .wrapping_add(f.tcp_flags() as u64 + f.proto() as u64 + f.tos() as u64)
            .wrapping_add(f.src_as() as u64 + f.dst_as() as u64)
            .wrapping_add(f.src_mask() as u64 + f.dst_mask() as u64);
    }
    (records, acc)
}

/// Fields per record, for per-field figures (not a workload).
#[inline(never)]
fn count(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    let packet = parse_packet(p, cache).expect("decode");
    let (mut records, mut acc) = (0, 0u64);
    for r in packet.records() {
        records += 1;
        acc += r.fields().count() as u64;
    }
    (records, acc)
}

/// netflow_parser 1.0.6: decode, then read every value of every record
/// (v5 structs: every field; v9/IPFIX: every `(field, FieldValue)` pair),
/// folded as the decode bench folds them.
#[inline(never)]
fn theirs(p: &[u8], parser: &mut netflow_parser::NetflowParser) -> (usize, u64) {
    use netflow_parser::variable_versions::ipfix::FlowSetBody as IpfixBody;
    use netflow_parser::variable_versions::v9::FlowSetBody as V9Body;
    use netflow_parser::{DataNumber, FieldValue, NetflowPacket};
    fn fold(v: &FieldValue) -> u64 {
        match v {
            FieldValue::DataNumber(DataNumber::U8(x)) => *x as u64,
            FieldValue::DataNumber(DataNumber::U16(x)) => *x as u64,
            FieldValue::DataNumber(DataNumber::U32(x)) => *x as u64,
            FieldValue::DataNumber(DataNumber::U64(x)) => *x,
            FieldValue::Ip4Addr(a) => u32::from(*a) as u64,
            _ => 1,
        }
    }
    let result = parser.parse_bytes(p);
    let (mut records, mut acc) = (0, 0u64);
    let mut record = |extra: u64, values: &mut dyn Iterator<Item = &FieldValue>| {
        records += 1;
        acc = acc.wrapping_add(extra);
        values.for_each(|v| acc = acc.wrapping_add(fold(v)));
    };
    for packet in &result.packets {
        match packet {
            NetflowPacket::V5(v5) => {
                for f in &v5.flowsets {
                    let sum = (u32::from(f.src_addr) as u64 + u32::from(f.dst_addr) as u64)
                        .wrapping_add(u32::from(f.next_hop) as u64)
                        .wrapping_add(f.input as u64 + f.output as u64)
                        .wrapping_add(f.d_pkts as u64 + f.d_octets as u64)
                        .wrapping_add(f.first as u64 + f.last as u64)
                        .wrapping_add(f.src_port as u64 + f.dst_port as u64)
                        .wrapping_add(f.tcp_flags as u64 + f.protocol_number as u64)
                        .wrapping_add(f.tos as u64 + f.src_as as u64 + f.dst_as as u64)
                        .wrapping_add(f.src_mask as u64 + f.dst_mask as u64);
                    record(sum, &mut std::iter::empty());
                }
            }
            NetflowPacket::V9(v9) => {
                for set in &v9.flowsets {
                    match &set.body {
                        V9Body::Data(d) => {
                            for r in &d.fields {
                                record(0, &mut r.iter().map(|(_, v)| v));
                            }
                        }
                        V9Body::OptionsData(d) => {
                            for r in &d.fields {
                                record(0, &mut r.options_fields.iter().map(|(_, v)| v));
                            }
                        }
                        _ => {}
                    }
                }
            }
            NetflowPacket::IPFix(ipfix) => {
                for set in &ipfix.flowsets {
                    match &set.body {
                        IpfixBody::Data(d) => {
                            for r in &d.fields {
                                record(0, &mut r.iter().map(|(_, v)| v));
                            }
                        }
                        IpfixBody::OptionsData(d) => {
                            for r in &d.fields {
                                record(0, &mut r.iter().map(|(_, v)| v));
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (records, acc)
}
