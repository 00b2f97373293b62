//! Decode throughput on real exports, templates warm: records fully decoded to
//! typed values, every field read. Inputs: the upstream test packets
//! (`testdata/seed_vectors.json`, softflowd) and our captures of softflowd,
//! pmacct and fprobe (`testdata/captures/`, made by scripts/make-captures.sh;
//! fprobe's v7 is the only v7 exporter there).
//!
//! Measured in the same run on the same payloads (issue 5):
//! - `netflow-rs`: this crate through the `Record::fields()` iterator, every
//!   field decoded to a [`Value`] and folded into a checksum;
//! - `netflow-rs-visit`: the same `(field, Value)` pairs through the visitor
//!   `Record::for_each_field`, folded the same way (checked equal to the
//!   iterator's checksum on every packet before measuring);
//! - `netflow-rs-columns`: the same values column by column
//!   (`DataSet::columns`, `Column::for_each`), folded the same way (also
//!   checked equal);
//! - `netflow-rs-visit-columns`: the same columns through `visit_packet`,
//!   which hands each data set to a closure as the walk reaches it (no
//!   `ExportPacket` built, template borrowed from the cache), read with
//!   `Columns::for_each_value` (also checked equal);
//! - `netflow_parser`: the crates.io `netflow_parser` 1.0.6 (pinned), whose
//!   `parse_bytes` decodes every field of every record into owned values; the
//!   bench then folds every field into a checksum the same way;
//! - `netflow-rs-record-view` (v5 and v7 inputs only): this crate's typed
//!   fixed-layout record views (`ExportPacket::v5_records`, `v7_records`),
//!   all 20 (v5) or 21 (v7) fields read, as netflow_parser's v5 and v7
//!   structs are read; `netflow-rs-visit-record-view` the same views through
//!   `visit_packet` (`DataSetView::v5_records`, `v7_records`). (Before
//!   session 16 they were named `netflow-rs-v5-view` and
//!   `netflow-rs-visit-v5-view` and measured on v5 only.)
//! - `baseline_read_every_byte`: reading every byte of the packets once, the
//!   floor any decoder pays.
//!
//! Both decoders are warmed with one pass over the payloads (the captures start
//! with their templates), then both must decode the same number of records on
//! a second pass; a disagreement is printed and that case is skipped rather
//! than compared on different work.
//!
//! At the end a table of records/s per decoder and their ratio is printed,
//! read back from criterion's estimates of this run.
//!
//! Run: `cargo bench -p netflow --bench decode`

use std::path::PathBuf;
use std::time::SystemTime;

use criterion::{black_box, Criterion, Throughput};
use netflow::{decode_hex, parse_packet, visit_packet, DataSetView, TemplateCache};
use netflow_parser::variable_versions::ipfix::FlowSetBody as IpfixBody;
use netflow_parser::variable_versions::v9::{FlowSetBody as V9Body, ScopeDataField};
use netflow_parser::{DataNumber, FieldValue, NetflowPacket, NetflowParser};

const OURS: &str = "netflow-rs";
const THEIRS: &str = "netflow_parser";
const BASELINE: &str = "baseline_read_every_byte";
const OURS_RECORD_VIEW: &str = "netflow-rs-record-view";
const OURS_VISIT: &str = "netflow-rs-visit";
const OURS_COLUMNS: &str = "netflow-rs-columns";
const OURS_VISIT_COLUMNS: &str = "netflow-rs-visit-columns";
const OURS_VISIT_RECORD_VIEW: &str = "netflow-rs-visit-record-view";

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

#[path = "support/fold.rs"]
mod fold;
use fold::fold_value as fold_ours;

/// Decode a packet with netflow-rs through the `fields()` iterator and fold
/// every field value into a checksum.
fn decode_all(bytes: &[u8], cache: &mut TemplateCache) -> u64 {
    let p = parse_packet(bytes, cache).unwrap();
    let mut acc = 0u64;
    for r in p.records() {
        for (_, v) in r.fields() {
            acc = acc.wrapping_add(fold_ours(v));
        }
    }
    acc
}

/// The same, through the visitor `Record::for_each_field`: the same
/// `(field, Value)` pairs, every field of every record.
fn decode_visit(bytes: &[u8], cache: &mut TemplateCache) -> u64 {
    let p = parse_packet(bytes, cache).unwrap();
    let mut acc = 0u64;
    for r in p.records() {
        r.for_each_field(|_, v| acc = acc.wrapping_add(fold_ours(v)));
    }
    acc
}

/// The same values column by column (`DataSet::columns`, `Column::for_each`):
/// every field of every record, each field's step chosen once per set; sets
/// whose template has variable-length fields or lists (none in these
/// inputs) fall back to the visitor.
fn decode_columns(bytes: &[u8], cache: &mut TemplateCache) -> u64 {
    let p = parse_packet(bytes, cache).unwrap();
    let mut acc = 0u64;
    for set in &p.data_sets {
        match set.columns() {
            Some(columns) => {
                for c in columns {
                    c.for_each(|v| acc = acc.wrapping_add(fold_ours(v)));
                }
            }
            None => {
                for r in set.records() {
                    r.for_each_field(|_, v| acc = acc.wrapping_add(fold_ours(v)));
                }
            }
        }
    }
    acc
}

/// The same values column by column through `visit_packet`: each data set
/// handed to the closure as the walk reaches it, no `ExportPacket` built;
/// each set's columns read with `Columns::for_each_value` (every column's
/// field and value, in the order of `Column::for_each` column after column).
fn decode_visit_columns(bytes: &[u8], cache: &mut TemplateCache) -> u64 {
    let mut acc = 0u64;
    visit_packet(bytes, cache, |set| match set.columns() {
        Some(columns) => columns.for_each_value(|_, v| acc = acc.wrapping_add(fold_ours(v))),
        None => {
            for r in set.records() {
                r.for_each_field(|_, v| acc = acc.wrapping_add(fold_ours(v)));
            }
        }
    })
    .unwrap();
    acc
}

/// The 18 fields the v5 and v7 record views share (same accessors), summed.
macro_rules! view_sum {
    ($f:expr) => {
        ($f.src_addr() as u64)
            .wrapping_add($f.dst_addr() as u64)
            .wrapping_add($f.next_hop() as u64)
            .wrapping_add($f.input() as u64 + $f.output() as u64)
            .wrapping_add($f.packets() as u64 + $f.octets() as u64)
            .wrapping_add($f.first() as u64 + $f.last() as u64)
            .wrapping_add($f.src_port() as u64 + $f.dst_port() as u64)
            .wrapping_add($f.tcp_flags() as u64)
            .wrapping_add($f.proto() as u64 + $f.tos() as u64)
            .wrapping_add($f.src_as() as u64 + $f.dst_as() as u64)
            .wrapping_add($f.src_mask() as u64 + $f.dst_mask() as u64)
    };
}

/// Every field of a v5 record through the typed view, summed (the fold of
/// [`decode_record_view`]).
#[inline(always)]
fn v5_sum(f: &netflow::wire::v5::record::RecordView<&[u8]>) -> u64 {
    view_sum!(f).wrapping_add(f.pad1() as u64 + f.pad2() as u64)
}

/// Every field of a v7 record through the typed view, summed (the fold of
/// [`decode_record_view`], as [`decode_theirs`] folds netflow_parser's v7
/// structs).
#[inline(always)]
fn v7_sum(f: &netflow::wire::v7::record::RecordView<&[u8]>) -> u64 {
    view_sum!(f)
        .wrapping_add(f.flags1() as u64 + f.flags2() as u64)
        .wrapping_add(f.router_sc() as u64)
}

/// [`decode_record_view`] through `visit_packet` (`DataSetView::v5_records`,
/// `v7_records`).
fn decode_visit_record_view(bytes: &[u8], cache: &mut TemplateCache) -> u64 {
    let mut acc = 0u64;
    visit_packet(bytes, cache, |set: DataSetView<'_>| {
        for f in set.v5_records() {
            acc = acc.wrapping_add(v5_sum(&f));
        }
        for f in set.v7_records() {
            acc = acc.wrapping_add(v7_sum(&f));
        }
    })
    .unwrap();
    acc
}

/// Decode a v5 or v7 packet with netflow-rs and read every field of every
/// record through the typed fixed-layout views (`ExportPacket::v5_records`,
/// `v7_records`), folded as [`decode_theirs`] folds netflow_parser's v5 and
/// v7 structs.
fn decode_record_view(bytes: &[u8], cache: &mut TemplateCache) -> u64 {
    let p = parse_packet(bytes, cache).unwrap();
    let mut acc = 0u64;
    for f in p.v5_records() {
        acc = acc.wrapping_add(v5_sum(&f));
    }
    for f in p.v7_records() {
        acc = acc.wrapping_add(v7_sum(&f));
    }
    acc
}

fn number(n: &DataNumber) -> u64 {
    match n {
        DataNumber::U8(x) => *x as u64,
        DataNumber::I8(x) => *x as u64,
        DataNumber::U16(x) => *x as u64,
        DataNumber::I16(x) => *x as u64,
        DataNumber::U24(x) | DataNumber::U32(x) => *x as u64,
        DataNumber::I24(x) | DataNumber::I32(x) => *x as u64,
        DataNumber::U64(x) => *x,
        DataNumber::I64(x) => *x as u64,
        DataNumber::U128(x) => *x as u64,
        DataNumber::I128(x) => *x as u64,
        DataNumber::Vec(v) => v.len() as u64,
    }
}

/// The 18 fields netflow_parser's v5 and v7 records share (same names),
/// summed.
macro_rules! fixed_record_sum {
    ($f:expr) => {
        (u32::from($f.src_addr) as u64)
            .wrapping_add(u32::from($f.dst_addr) as u64)
            .wrapping_add(u32::from($f.next_hop) as u64)
            .wrapping_add($f.input as u64 + $f.output as u64)
            .wrapping_add($f.d_pkts as u64 + $f.d_octets as u64)
            .wrapping_add($f.first as u64 + $f.last as u64)
            .wrapping_add($f.src_port as u64 + $f.dst_port as u64)
            .wrapping_add($f.tcp_flags as u64)
            .wrapping_add($f.protocol_number as u64 + $f.tos as u64)
            .wrapping_add($f.src_as as u64 + $f.dst_as as u64)
            .wrapping_add($f.src_mask as u64 + $f.dst_mask as u64)
    };
}

/// The same fold as [`decode_all`], over netflow_parser's values.
fn fold_theirs(v: &FieldValue) -> u64 {
    match v {
        FieldValue::DataNumber(n) => number(n),
        FieldValue::Ip4Addr(a) => u32::from(*a) as u64,
        FieldValue::Ip6Addr(a) => u128::from(*a) as u64,
        FieldValue::MacAddr(m) => m[5] as u64,
        FieldValue::String(s) => s.value.len() as u64,
        FieldValue::Vec(b) => b.len() as u64,
        FieldValue::Duration(d) => d.as_duration().as_millis() as u64,
        _ => 1,
    }
}

/// Decode a payload with netflow_parser, fold every field; returns
/// (checksum, records, data sets it could not decode for want of a template).
fn decode_theirs(bytes: &[u8], parser: &mut NetflowParser) -> (u64, usize, usize) {
    let result = parser.parse_bytes(bytes);
    assert!(result.error.is_none(), "netflow_parser: {:?}", result.error);
    let (mut acc, mut records, mut no_template) = (0u64, 0usize, 0usize);
    let record =
        |acc: &mut u64, records: &mut usize, values: &mut dyn Iterator<Item = &FieldValue>| {
            *records += 1;
            for v in values {
                *acc = acc.wrapping_add(fold_theirs(v));
            }
        };
    for packet in &result.packets {
        match packet {
            NetflowPacket::V5(v5) => {
                for f in &v5.flowsets {
                    // All 20 fields of the fixed v5 record, as in our fold.
                    records += 1;
                    acc = acc
                        .wrapping_add(fixed_record_sum!(f))
                        .wrapping_add(f.pad1 as u64 + f.pad2 as u64);
                }
            }
            NetflowPacket::V9(v9) => {
                for set in &v9.flowsets {
                    match &set.body {
                        V9Body::Data(d) => {
                            for r in &d.fields {
                                record(&mut acc, &mut records, &mut r.iter().map(|(_, v)| v));
                            }
                        }
                        V9Body::OptionsData(d) => {
                            for r in &d.fields {
                                let scope = r.scope_fields.iter().map(|s| match s {
                                    ScopeDataField::System(b)
                                    | ScopeDataField::Interface(b)
                                    | ScopeDataField::LineCard(b)
                                    | ScopeDataField::NetFlowCache(b)
                                    | ScopeDataField::Template(b)
                                    | ScopeDataField::Unknown(_, b) => b.len() as u64,
                                });
                                let scope_sum = scope.fold(0u64, u64::wrapping_add);
                                record(
                                    &mut acc,
                                    &mut records,
                                    &mut r.options_fields.iter().map(|(_, v)| v),
                                );
                                acc = acc.wrapping_add(scope_sum);
                            }
                        }
                        V9Body::NoTemplate(_) => no_template += 1,
                        _ => {}
                    }
                }
            }
            NetflowPacket::IPFix(ipfix) => {
                for set in &ipfix.flowsets {
                    match &set.body {
                        IpfixBody::Data(d) => {
                            for r in &d.fields {
                                record(&mut acc, &mut records, &mut r.iter().map(|(_, v)| v));
                            }
                        }
                        IpfixBody::OptionsData(d) => {
                            for r in &d.fields {
                                record(&mut acc, &mut records, &mut r.iter().map(|(_, v)| v));
                            }
                        }
                        IpfixBody::V9Data(d) => {
                            for r in &d.fields {
                                record(&mut acc, &mut records, &mut r.iter().map(|(_, v)| v));
                            }
                        }
                        IpfixBody::NoTemplate(_) => no_template += 1,
                        _ => {}
                    }
                }
            }
            NetflowPacket::V7(v7) => {
                for f in &v7.flowsets {
                    // All 21 fields of the fixed v7 record, as in our fold.
                    records += 1;
                    acc = acc
                        .wrapping_add(fixed_record_sum!(f))
                        .wrapping_add(f.flags_fields_valid as u64 + f.flags_fields_invalid as u64)
                        .wrapping_add(u32::from(f.router_src) as u64);
                }
            }
            _ => {}
        }
    }
    (acc, records, no_template)
}

fn read_every_byte(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |a, &b| a.wrapping_add(b as u64))
}

/// One compared case, for the summary table.
struct Case {
    name: String,
    records: usize,
    datagrams: usize,
    /// Why netflow_parser was not measured, if it was not.
    skipped: Option<String>,
    /// v5 or v7 input: also measured through the typed record views.
    record_view: bool,
}

/// Measure decoding `packets` with both decoders (each warmed with `warmup`
/// then one pass over `packets`) against reading every byte of them.
fn measure(c: &mut Criterion, name: &str, warmup: &[Vec<u8>], packets: &[Vec<u8>]) -> Case {
    let mut cache = TemplateCache::new();
    let mut parser = NetflowParser::default();
    for p in warmup.iter().chain(packets) {
        parse_packet(p, &mut cache).unwrap();
        let warm = parser.parse_bytes(p);
        assert!(
            warm.error.is_none(),
            "{name}: netflow_parser: {:?}",
            warm.error
        );
    }
    // Counted on a warm pass: a data set that came before its template in the
    // capture decodes from the second pass on.
    let records: usize = packets
        .iter()
        .map(|p| parse_packet(p, &mut cache).unwrap().record_count())
        .sum();
    let (mut theirs, mut no_template) = (0, 0);
    for p in packets {
        let (_, r, n) = decode_theirs(p, &mut parser);
        theirs += r;
        no_template += n;
    }
    // The visitor must see exactly what the iterator sees.
    for p in packets {
        assert_eq!(
            decode_visit(p, &mut cache),
            decode_all(p, &mut cache),
            "{name}: for_each_field and fields() disagree"
        );
        assert_eq!(
            decode_columns(p, &mut cache),
            decode_all(p, &mut cache),
            "{name}: columns and fields() disagree"
        );
        assert_eq!(
            decode_visit_columns(p, &mut cache),
            decode_all(p, &mut cache),
            "{name}: visit_packet columns and fields() disagree"
        );
    }
    let record_view = records > 0
        && packets
            .iter()
            .map(|p| {
                let p = parse_packet(p, &mut cache).unwrap();
                p.v5_records().count() + p.v7_records().count()
            })
            .sum::<usize>()
            == records;
    if record_view {
        for p in packets {
            assert_eq!(
                decode_visit_record_view(p, &mut cache),
                decode_record_view(p, &mut cache),
                "{name}: the record views of visit_packet and parse_packet disagree"
            );
        }
    }
    let skipped = (theirs != records).then(|| {
        format!(
            "netflow_parser decodes {theirs} records, netflow-rs {records} \
             ({no_template} sets without template)"
        )
    });
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(records as u64));
    g.bench_function(OURS, |b| {
        b.iter(|| {
            let mut acc = 0;
            for p in packets {
                acc ^= decode_all(black_box(p), &mut cache);
            }
            acc
        })
    });
    g.bench_function(OURS_VISIT, |b| {
        b.iter(|| {
            let mut acc = 0;
            for p in packets {
                acc ^= decode_visit(black_box(p), &mut cache);
            }
            acc
        })
    });
    g.bench_function(OURS_COLUMNS, |b| {
        b.iter(|| {
            let mut acc = 0;
            for p in packets {
                acc ^= decode_columns(black_box(p), &mut cache);
            }
            acc
        })
    });
    g.bench_function(OURS_VISIT_COLUMNS, |b| {
        b.iter(|| {
            let mut acc = 0;
            for p in packets {
                acc ^= decode_visit_columns(black_box(p), &mut cache);
            }
            acc
        })
    });
    if record_view {
        g.bench_function(OURS_RECORD_VIEW, |b| {
            b.iter(|| {
                let mut acc = 0;
                for p in packets {
                    acc ^= decode_record_view(black_box(p), &mut cache);
                }
                acc
            })
        });
        g.bench_function(OURS_VISIT_RECORD_VIEW, |b| {
            b.iter(|| {
                let mut acc = 0;
                for p in packets {
                    acc ^= decode_visit_record_view(black_box(p), &mut cache);
                }
                acc
            })
        });
    }
    if let Some(why) = &skipped {
        eprintln!("{name}: {why}; netflow_parser not measured on this case");
    } else {
        g.bench_function(THEIRS, |b| {
            b.iter(|| {
                let mut acc = 0;
                for p in packets {
                    acc ^= decode_theirs(black_box(p), &mut parser).0;
                }
                acc
            })
        });
    }
    g.bench_function(BASELINE, |b| {
        b.iter(|| {
            let mut acc = 0;
            for p in packets {
                acc ^= read_every_byte(black_box(p));
            }
            acc
        })
    });
    g.finish();
    Case {
        name: name.to_string(),
        records,
        datagrams: packets.len(),
        skipped,
        record_view,
    }
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

/// Where criterion keeps this run's estimates (its own lookup order, minus
/// `cargo metadata`: the bench executable lives in `<target>/<profile>/deps/`).
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("criterion"))
        .unwrap_or_else(|| "target/criterion".into())
}

/// Mean time of one iteration (ns) criterion estimated in this run, if any
/// (an estimate written before `since` is from an earlier run, e.g. of a case
/// a filter left out this time, and is not used).
fn mean_ns(group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home()
        .join(group)
        .join(function)
        .join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn summary(cases: &[Case], since: SystemTime) {
    let rate = |c: &Case, f: &str| mean_ns(&c.name, f, since).map(|ns| c.records as f64 / ns * 1e3);
    let fmt = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2} M/s"));
    println!("\nrecords/s, one core, templates warm, every field read; (ratio to {THEIRS})");
    println!(
        "| input | datagrams | records | {THEIRS} | {OURS} (fields iterator) \
         | {OURS_VISIT} (for_each_field) | {OURS_COLUMNS} (Column::for_each) \
         | {OURS_VISIT_COLUMNS} (visit_packet, for_each_value) | {OURS_RECORD_VIEW} | {OURS_VISIT_RECORD_VIEW} \
         | read every byte |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for c in cases {
        let theirs = rate(c, THEIRS);
        let cell = |f: &str| {
            let r = rate(c, f);
            match (r, theirs, &c.skipped) {
                (None, _, _) => "-".to_string(),
                (Some(o), Some(t), None) => format!("{} ({:.1}x)", fmt(Some(o)), o / t),
                (Some(o), _, _) => fmt(Some(o)),
            }
        };
        let view = |f: &str| if c.record_view { cell(f) } else { "-".into() };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.name,
            c.datagrams,
            c.records,
            c.skipped.clone().unwrap_or_else(|| fmt(theirs)),
            cell(OURS),
            cell(OURS_VISIT),
            cell(OURS_COLUMNS),
            cell(OURS_VISIT_COLUMNS),
            view(OURS_RECORD_VIEW),
            view(OURS_VISIT_RECORD_VIEW),
            fmt(rate(c, BASELINE))
        );
    }
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    let mut cases = Vec::new();
    for name in [
        "softflowd-v5",
        "pmacct-v5",
        "fprobe-v5",
        "fprobe-v7",
        "softflowd-v9",
        "pmacct-v9",
        "softflowd-ipfix",
        "pmacct-ipfix",
    ] {
        cases.push(measure(&mut c, name, &[], &capture(name)));
    }
    let seeds: [(&str, &[&str], &[&str]); 3] = [
        ("v5", &[], &["PACKET_V5"]),
        (
            "v9",
            &["PACKET_V9_TEMPLATE"],
            &["PACKETS_V9[0]", "PACKETS_V9[1]", "PACKETS_V9[2]"],
        ),
        (
            "ipfix",
            &["PACKET_IPFIX_TEMPLATE_ETHER"],
            &["PACKET_IPFIX_ETHER"],
        ),
    ];
    for (name, warmup, packets) in seeds {
        let warmup: Vec<_> = warmup.iter().map(|n| vector(n)).collect();
        let packets: Vec<_> = packets.iter().map(|n| vector(n)).collect();
        cases.push(measure(&mut c, name, &warmup, &packets));
    }
    c.final_summary();
    summary(&cases, started);
}
