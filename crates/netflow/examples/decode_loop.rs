//! Decode one capture's UDP payloads in a loop, touching every field: a fixed
//! workload for profilers (`valgrind --tool=callgrind`, `perf record`), and,
//! with a duration instead of a round count, a records/s measurement.
//!
//! `cargo run --release -p netflow --example decode_loop -- testdata/captures/softflowd-v9.pcap 1000 [MODE]`
//!
//! MODE: `fields` (default, the `Record::fields` iterator), `visit`
//! (`Record::for_each_field`), `columns` (`DataSet::columns`), `columns_bench`
//! (`DataSet::columns`, values folded exactly as `benches/decode.rs` folds
//! them: every value's content is read, MACs and IPv6 addresses included),
//! `v5view` (`ExportPacket::v5_records`, v5 only), `visit_columns`,
//! `visit_columns_bench` and `visit_v5view` (the same three through
//! `visit_packet`, no `ExportPacket` built; the two column modes read each
//! set with `Columns::for_each_value`), `visit_columns_each` (as
//! `visit_columns`, each column with `Column::for_each`, as before
//! `for_each_value`), `visit_only` (`visit_packet` with no value read: the
//! cost of the packet and set walk alone), `v9_header_only` (only each
//! payload's v9 header parsed: the harness's own cost a payload),
//! `netflow_parser` (the crates.io `netflow_parser` 1.0.6 the decode bench
//! compares against, every value read: its instruction count per record is
//! the reference for the bench's ratios) or `count` (prints the number of
//! fields as the checksum). Each mode is its own function, so one does not
//! change how the others are compiled.
//!
//! ROUNDS given as a duration (`1.5s`): one untimed pass over the payloads
//! to warm the templates and count the records, then passes over them until
//! that much wall-clock time has gone by; prints one line
//! `timed: records_per_pass=R passes=P records=N seconds=S records_per_s=X checksum=C`
//! (`bench/decode_vs_python.py` reads it).
//!
//! The payloads are a capture (`.pcap`) or a `.payloads` file: a sequence of
//! `[kind: u8][length: u32 big-endian][payload]`, kind 0 for a warm-up
//! payload (decoded once before the loop, e.g. a template packet; not
//! counted) and 1 for a payload of the loop (`bench/decode_vs_python.py`
//! writes them, for the seed vectors).

use std::hint::black_box;
use std::time::{Duration, Instant};

use netflow::{parse_packet, visit_packet, TemplateCache, Value};

/// How long to run or how many rounds.
enum Rounds {
    Count(usize),
    For(Duration),
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: decode_loop PAYLOADS [ROUNDS | SECONDSs] [MODE]");
    let rounds = match args.next() {
        None => Rounds::Count(1000),
        Some(r) => match r.strip_suffix('s') {
            Some(s) => Rounds::For(Duration::from_secs_f64(s.parse().expect("seconds"))),
            None => Rounds::Count(r.parse().expect("rounds")),
        },
    };
    let mode = args.next().unwrap_or_else(|| "fields".into());
    let (warm, packets) = load(&path);
    let pass = match mode.as_str() {
        "fields" => fields,
        "visit" => visit,
        "columns" => columns,
        "columns_bench" => columns_bench,
        "v5view" => v5view,
        "visit_columns" => visit_columns,
        "visit_columns_bench" => visit_columns_bench,
        "visit_columns_each" => visit_columns_each,
        "visit_v5view" => visit_v5view,
        "visit_only" => visit_only,
        "v9_header_only" => v9_header_only,
        "count" => count,
        "netflow_parser" => {
            let mut parser = netflow_parser::NetflowParser::default();
            run(&warm, &packets, rounds, |p| theirs(p, &mut parser));
            return;
        }
        m => panic!("unknown mode {m}"),
    };
    let mut cache = TemplateCache::new();
    run(&warm, &packets, rounds, |p| pass(p, &mut cache));
}

/// The warm-up payloads and the payloads of the loop.
fn load(path: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut warm, mut packets) = (Vec::new(), Vec::new());
    if path.ends_with(".payloads") {
        let data = std::fs::read(path).expect("read payloads");
        let mut rest = &data[..];
        while !rest.is_empty() {
            assert!(rest.len() >= 5, "{path}: truncated");
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            assert!(rest.len() >= 5 + len, "{path}: truncated");
            let payload = rest[5..5 + len].to_vec();
            match rest[0] {
                0 => warm.push(payload),
                1 => packets.push(payload),
                k => panic!("{path}: payload kind {k}"),
            }
            rest = &rest[5 + len..];
        }
    } else {
        let mut reader =
            netflow_capture::CaptureReader::open(path.as_ref(), Default::default()).expect("open");
        while let Some(d) = reader.next_datagram() {
            packets.push(d.expect("datagram").payload.to_vec());
        }
    }
    (warm, packets)
}

/// Decode the warm-up payloads once, then `packets` for `rounds`, and print
/// what `pass` counted.
fn run(
    warm: &[Vec<u8>],
    packets: &[Vec<u8>],
    rounds: Rounds,
    mut pass: impl FnMut(&[u8]) -> (usize, u64),
) {
    for p in warm {
        pass(p);
    }
    let (mut records, mut acc) = (0usize, 0u64);
    match rounds {
        Rounds::Count(rounds) => {
            for _ in 0..rounds {
                for p in packets {
                    let (r, a) = pass(p);
                    records += r;
                    acc = acc.wrapping_add(a);
                }
            }
            println!("{records} records, checksum {acc}");
        }
        Rounds::For(duration) => {
            // Warm pass: templates that come after their data in a capture
            // are known from here on; the records are counted on the next.
            for p in packets {
                pass(p);
            }
            let per_pass: usize = packets.iter().map(|p| pass(p).0).sum();
            // Read the clock after at least ~1,000 records, not after every
            // pass: with a one-packet input (the seed IPFIX packet, 9
            // records) a clock read per pass was 8 % of the time measured.
            let passes_per_check = (1000 / per_pass.max(1)).max(1) as u64;
            let mut passes = 0u64;
            let start = Instant::now();
            let elapsed = loop {
                for p in packets {
                    let (r, a) = pass(black_box(p.as_slice()));
                    records += r;
                    acc = acc.wrapping_add(a);
                }
                passes += 1;
                if passes % passes_per_check != 0 {
                    continue;
                }
                let elapsed = start.elapsed();
                if elapsed >= duration {
                    break elapsed.as_secs_f64();
                }
            };
            println!(
                "timed: records_per_pass={per_pass} passes={passes} records={records} \
                 seconds={elapsed:.6} records_per_s={:.1} checksum={}",
                records as f64 / elapsed,
                black_box(acc)
            );
        }
    }
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
    columns_folded(p, cache, fold)
}

/// Every field of every record, column by column, folded with `fold`; sets
/// without columns (variable-length fields, lists) through the visitor.
#[inline(always)]
fn columns_folded(
    p: &[u8],
    cache: &mut TemplateCache,
    fold: impl Fn(Value<'_>) -> u64,
) -> (usize, u64) {
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

#[path = "../benches/support/fold.rs"]
mod bench_fold;
use bench_fold::fold_value as fold_bench;

/// `benches/decode.rs`'s `decode_columns`: every field of every record, column
/// by column, folded with [`fold_bench`]; sets without columns (variable-length
/// fields, lists) through the visitor.
#[inline(never)]
fn columns_bench(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    columns_folded(p, cache, fold_bench)
}

/// [`columns_folded`] through `visit_packet`: each data set handed to the
/// closure as the walk reaches it, no `ExportPacket` built, its columns
/// read with `Columns::for_each_value`.
#[inline(always)]
fn visit_columns_folded(
    p: &[u8],
    cache: &mut TemplateCache,
    fold: impl Fn(Value<'_>) -> u64,
) -> (usize, u64) {
    let mut acc = 0u64;
    let packet = visit_packet(p, cache, |set| match set.columns() {
        Some(columns) => columns.for_each_value(|_, v| acc = acc.wrapping_add(fold(v))),
        None => {
            for r in set.records() {
                r.for_each_field(|_, v| acc = acc.wrapping_add(fold(v)));
            }
        }
    })
    .expect("decode");
    (packet.records, acc)
}

/// The walk alone: each set's length folded, no value read.
#[inline(never)]
fn visit_only(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    let mut acc = 0u64;
    let packet = visit_packet(p, cache, |set| {
        acc = acc.wrapping_add(set.bytes().len() as u64)
    })
    .expect("decode");
    (packet.records, acc)
}

#[inline(never)]
fn visit_columns(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    visit_columns_folded(p, cache, fold)
}

/// Each payload's v9 header parsed, nothing else: what the loop around
/// the decode costs a payload (v9 payloads only).
#[inline(never)]
fn v9_header_only(p: &[u8], _cache: &mut TemplateCache) -> (usize, u64) {
    let h = netflow::wire::v9::V9Header::parse(p).expect("a v9 header");
    (0, h.count as u64 + h.source_id as u64)
}

/// [`visit_columns`] with each column read by `Column::for_each`.
#[inline(never)]
fn visit_columns_each(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    let mut acc = 0u64;
    let packet = visit_packet(p, cache, |set| match set.columns() {
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
    })
    .expect("decode");
    (packet.records, acc)
}

#[inline(never)]
fn visit_columns_bench(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    visit_columns_folded(p, cache, fold_bench)
}

/// [`v5view`] through `visit_packet`.
#[inline(never)]
fn visit_v5view(p: &[u8], cache: &mut TemplateCache) -> (usize, u64) {
    let mut acc = 0u64;
    let packet = visit_packet(p, cache, |set| {
        for f in set.v5_records() {
            acc = acc.wrapping_add(v5_sum(&f));
        }
    })
    .expect("decode");
    (packet.records, acc)
}

/// Every field of a v5 record, summed.
#[inline(always)]
fn v5_sum(f: &netflow::wire::v5::record::RecordView<&[u8]>) -> u64 {
    (f.src_addr() as u64 + f.dst_addr() as u64)
        .wrapping_add(f.next_hop() as u64)
        .wrapping_add(f.input() as u64 + f.output() as u64)
        .wrapping_add(f.packets() as u64 + f.octets() as u64)
        .wrapping_add(f.first() as u64 + f.last() as u64)
        .wrapping_add(f.src_port() as u64 + f.dst_port() as u64)
        .wrapping_add(f.tcp_flags() as u64 + f.proto() as u64 + f.tos() as u64)
        .wrapping_add(f.src_as() as u64 + f.dst_as() as u64)
        .wrapping_add(f.src_mask() as u64 + f.dst_mask() as u64)
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
