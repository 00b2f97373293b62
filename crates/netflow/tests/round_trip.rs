//! The encoder is the exact inverse of the decoder.
//!
//! * Property tests: random valid representations of every version (headers,
//!   templates with IANA, reverse (PEN 29305), CERT (PEN 6871) and unknown
//!   enterprise elements, reduced-size and variable-length fields, options
//!   templates with scope fields, nested structured data lists, set padding,
//!   IPFIX withdrawals) go `emit -> parse -> to_owned_record -> emit` and
//!   come back byte for byte, the parsed values equal to the generated ones.
//! * Literal bytes: a v5 packet, an IPFIX message with a variable-length
//!   field in both length forms.
//! * The upstream seed vectors (real softflowd exports): every packet parsed
//!   and re-emitted from its parsed representation is byte-identical. The
//!   one exception is PACKET_V9_WITH_ZEROS (a third-party exporter): its data
//!   flowsets name a template that never arrives, so there is no
//!   representation to emit, and 620 zero bytes follow its last flowset.
//!
//! Re-emitting a parsed packet ([`reemit`]) takes everything from the parsed
//! representation (header, templates, records) except the set framing: which
//! template records share a set and how much padding a set has are not part
//! of it, so they are read from the set headers of the original.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use netflow::encode::{self, EncodeError, FixedFlow, MessageBuilder, TemplateLookup};
use netflow::owned::{OwnedBlock, OwnedList, OwnedListContent};
use netflow::registry::{self, DataType};
use netflow::template::VARIABLE_LENGTH;
use netflow::value::ValueKind;
use netflow::wire::{ipfix::IpfixHeader, v1, v5, v7, v9::V9Header};
use netflow::{
    decode_hex, parse_packet, ExportPacket, FieldSpec, Header, NtpTimestamp, OwnedField,
    OwnedRecord, OwnedValue, Protocol, ScopeKey, Template, TemplateCache, TemplateChange,
    TemplateKind,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value as Json;

// ---------------------------------------------------------------------------
// Re-emitting a parsed packet.

/// The sets of a v9 packet or IPFIX message: (offset, set id, length).
fn set_frames(bytes: &[u8], protocol: Protocol) -> Vec<(usize, u16, usize)> {
    let (mut off, end) = match protocol {
        Protocol::V9 => (20, bytes.len()),
        _ => (16, u16::from_be_bytes([bytes[2], bytes[3]]) as usize),
    };
    let mut sets = Vec::new();
    while off + 4 <= end {
        let id = u16::from_be_bytes([bytes[off], bytes[off + 1]]);
        let len = u16::from_be_bytes([bytes[off + 2], bytes[off + 3]]) as usize;
        if len < 4 {
            break; // zeros after the last flowset
        }
        sets.push((off, id, len));
        off += len;
    }
    sets
}

/// Emit a parsed packet again from its representation (see the file comment).
fn reemit(original: &[u8], packet: &ExportPacket, cache: &TemplateCache) -> Vec<u8> {
    assert!(packet.errors.is_empty(), "{:?}", packet.errors);
    assert!(packet.missing.is_empty());
    let mut out = Vec::new();
    let protocol = packet.header.protocol();
    if matches!(protocol, Protocol::V1 | Protocol::V5 | Protocol::V7) {
        let records: Vec<OwnedRecord> = packet.records().map(|r| r.to_owned_record()).collect();
        encode::emit_fixed(&packet.header, &records, &mut out).unwrap();
        return out;
    }
    let key = ScopeKey {
        exporter: packet.exporter,
        protocol,
        domain: packet.header.domain().unwrap(),
    };
    let scope = cache.scope(&key).cloned().unwrap_or_default();
    // Templates by id: those of the data sets, then what the cache holds now.
    let mut templates: HashMap<u16, Arc<Template>> =
        scope.iter().map(|t| (t.id, t.clone())).collect();
    for ds in &packet.data_sets {
        templates.insert(ds.template.id, ds.template.clone());
    }
    let mut m = MessageBuilder::new(&mut out, &packet.header)
        .unwrap()
        .with_templates(&templates);
    for (offset, set_id, len) in set_frames(original, protocol) {
        let template_set = match protocol {
            Protocol::V9 => set_id < 2,
            _ => set_id == 2 || set_id == 3,
        };
        if template_set {
            let events: Vec<_> = packet
                .templates
                .iter()
                .filter(|e| e.offset > offset && e.offset < offset + len)
                .collect();
            let mut i = 0;
            while i < events.len() {
                let e = events[i];
                if e.change == TemplateChange::Withdrawn {
                    let same = events[i..]
                        .iter()
                        .take_while(|x| x.offset == e.offset)
                        .count();
                    if same > 1 {
                        m.withdraw_all(e.kind).unwrap();
                    } else {
                        m.withdraw(e.template_id, e.kind).unwrap();
                    }
                    i += same;
                    continue;
                }
                m.template(&templates[&e.template_id]).unwrap();
                i += 1;
            }
            if events.is_empty() {
                continue;
            }
        } else {
            let ds = packet
                .data_sets
                .iter()
                .find(|d| d.offset == offset)
                .expect("data set");
            let records: Vec<OwnedRecord> = ds.records().map(|r| r.to_owned_record()).collect();
            m.data_set(&ds.template).unwrap();
            m.records(&ds.template, &records).unwrap();
        }
        let padding = offset + len - m.len();
        m.end_set_padded(padding).unwrap();
    }
    m.finish().unwrap();
    out
}

/// Parse `bytes` (one packet) with `cache` and re-emit it.
fn parse_and_reemit(bytes: &[u8], cache: &mut TemplateCache) -> Vec<u8> {
    let packet = parse_packet(bytes, cache).unwrap();
    reemit(bytes, &packet, cache)
}

// ---------------------------------------------------------------------------
// Literal bytes.

#[test]
fn v5_packet_equals_hand_written_bytes() {
    let header = v5::V5Header {
        uptime: 1000,
        timestamp: 1_700_000_000,
        timestamp_nano: 1,
        sequence: 42,
        engine_type: 0,
        engine_id: 3,
        sampling_interval: 0x4000 | 100,
        ..Default::default()
    };
    let flow = FixedFlow {
        src_addr: [192, 0, 2, 1].into(),
        dst_addr: [198, 51, 100, 7].into(),
        packets: 10,
        octets: 840,
        first: 900,
        last: 990,
        src_port: 53,
        dst_port: 33000,
        protocol: 17,
        src_mask: 24,
        dst_mask: 32,
        ..Default::default()
    };
    let mut expected = vec![
        0, 5, 0, 2, 0, 0, 0x03, 0xe8, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 1, 0, 0, 0, 42, 0, 3, 0x40,
        100,
    ];
    let record = [
        192, 0, 2, 1, 198, 51, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0x03, 0x48, 0, 0,
        0x03, 0x84, 0, 0, 0x03, 0xde, 0, 53, 0x80, 0xe8, 0, 0, 17, 0, 0, 0, 0, 0, 24, 32, 0, 0,
    ];
    expected.extend_from_slice(&record);
    expected.extend_from_slice(&record);
    let mut out = Vec::new();
    encode::emit_v5(&header, &[flow, flow], &mut out).unwrap();
    assert_eq!(out, expected);
    assert_eq!(parse_and_reemit(&out, &mut TemplateCache::new()), expected);
}

#[test]
fn ipfix_variable_length_field_in_both_forms() {
    // Template 256: applicationName (96, string) variable length.
    let t = Template::compile(
        Protocol::Ipfix,
        256,
        TemplateKind::Data,
        0,
        &[FieldSpec::new(0, 96, VARIABLE_LENGTH)],
    )
    .unwrap();
    let header = IpfixHeader {
        export_time: 1,
        sequence: 2,
        observation_domain: 3,
        ..Default::default()
    };
    let dns = [OwnedValue::String("dns".into())];
    let mut short = Vec::new();
    let mut m = MessageBuilder::ipfix(&mut short, header);
    m.template(&t).unwrap().values(&t, &dns).unwrap();
    m.finish().unwrap();
    let mut long = Vec::new();
    let mut m = MessageBuilder::ipfix(&mut long, header).force_long_lengths(true);
    m.template(&t).unwrap().values(&t, &dns).unwrap();
    m.finish().unwrap();
    let head = |len: u8| vec![0, 10, 0, len, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    let tset = [0, 2, 0, 12, 1, 0, 0, 1, 0, 96, 0xff, 0xff];
    let mut expected_short = head(36);
    expected_short.extend_from_slice(&tset);
    expected_short.extend_from_slice(&[1, 0, 0, 8, 3, b'd', b'n', b's']);
    let mut expected_long = head(38);
    expected_long.extend_from_slice(&tset);
    expected_long.extend_from_slice(&[1, 0, 0, 10, 255, 0, 3, b'd', b'n', b's']);
    assert_eq!(short, expected_short);
    assert_eq!(long, expected_long);
    // Each form survives parse -> emit; the long one is remembered per field.
    for bytes in [&short, &long] {
        let mut cache = TemplateCache::new();
        let p = parse_packet(bytes, &mut cache).unwrap();
        let r = p.records().next().unwrap().to_owned_record();
        assert_eq!(r.fields[0].long_length, bytes == &long);
        assert_eq!(r.fields[0].value, dns[0]);
        assert_eq!(&reemit(bytes, &p, &cache), bytes);
    }
    // 255 bytes and more always take the 3-byte form.
    let big = [OwnedValue::String("x".repeat(300))];
    let mut out = Vec::new();
    let mut m = MessageBuilder::ipfix(&mut out, header);
    m.values(&t, &big).unwrap();
    m.finish().unwrap();
    assert_eq!(&out[16..23], &[1, 0, 0x01, 0x33, 255, 0x01, 0x2c]);
}

#[test]
fn encode_errors_are_typed() {
    let t = Template::compile(
        Protocol::Ipfix,
        256,
        TemplateKind::Data,
        0,
        &[FieldSpec::new(0, 7, 2), FieldSpec::new(0, 82, 4)],
    )
    .unwrap();
    let mut out = Vec::new();
    let mut m = MessageBuilder::ipfix(&mut out, IpfixHeader::default());
    let e = m
        .values(
            &t,
            &[OwnedValue::Unsigned(1), OwnedValue::String("eth10".into())],
        )
        .unwrap_err();
    assert!(
        matches!(e, EncodeError::ValueTooLarge { length: 4, .. }),
        "{e}"
    );
    let e = m
        .values(&t, &[OwnedValue::Bool(true), OwnedValue::String("".into())])
        .unwrap_err();
    assert!(matches!(e, EncodeError::WrongType { .. }), "{e}");
    let e = m.values(&t, &[OwnedValue::Unsigned(1)]).unwrap_err();
    assert_eq!(
        e,
        EncodeError::FieldCount {
            template_id: 256,
            expected: 2,
            got: 1
        }
    );
    // 65535 bytes at most.
    let big = Template::compile(
        Protocol::Ipfix,
        257,
        TemplateKind::Data,
        0,
        &[FieldSpec::new(0, 313, VARIABLE_LENGTH)],
    )
    .unwrap();
    let chunk = [OwnedValue::Bytes(vec![0; 30_000])];
    m.values(&big, &chunk)
        .unwrap()
        .values(&big, &chunk)
        .unwrap();
    let e = m.values(&big, &chunk).unwrap_err();
    assert!(
        matches!(e, EncodeError::MessageTooLong { limit: 65535, .. }),
        "{e}"
    );
    assert_eq!(m.finish().unwrap(), 16 + 4 + 2 * 30_003);
}

// ---------------------------------------------------------------------------
// The seed vectors.

fn seed_vectors() -> Vec<(String, Vec<u8>, Vec<String>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/seed_vectors.json"
    );
    let all: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["name"] != "PACKET_INVALID")
        .map(|v| {
            let sequence = v["sequence"]
                .as_array()
                .map(|s| s.iter().map(|n| n.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (
                v["name"].as_str().unwrap().to_string(),
                decode_hex(v["hex"].as_str().unwrap()).unwrap(),
                sequence,
            )
        })
        .collect()
}

#[test]
fn seed_vectors_re_emit_byte_for_byte() {
    let vectors = seed_vectors();
    let by_name: HashMap<&str, &Vec<u8>> =
        vectors.iter().map(|(n, b, _)| (n.as_str(), b)).collect();
    let mut checked = 0;
    for (name, bytes, sequence) in &vectors {
        if name == "PACKET_V9_WITH_ZEROS" {
            // Not representable: five data flowsets whose template never
            // arrives (so the decoder has no records to give), then 620 zero
            // bytes after the last flowset (upstream issue #36), which the
            // decoder skips and the encoder does not write.
            let p = parse_packet(bytes, &mut TemplateCache::new()).unwrap();
            assert_eq!(p.missing.len(), 5);
            assert_eq!(set_frames(bytes, Protocol::V9).last().unwrap().0 + 72, 380);
            assert!(bytes[380..].iter().all(|&b| b == 0));
            continue;
        }
        // Templates come from the earlier packets of the sequence.
        let mut cache = TemplateCache::new();
        let mut again_cache = TemplateCache::new();
        for earlier in sequence.iter().filter(|n| *n != name) {
            let b = by_name[earlier.as_str()];
            let re = parse_and_reemit(b, &mut cache);
            parse_packet(&re, &mut again_cache).unwrap();
        }
        let re = parse_and_reemit(bytes, &mut cache);
        assert_eq!(&re, bytes, "{name}: re-emitted packet differs");
        // emit -> parse -> emit is stable.
        let re2 = parse_and_reemit(&re, &mut again_cache);
        assert_eq!(re2, re, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 12);
}

// ---------------------------------------------------------------------------
// Strategies: NetFlow v1/v5/v7.

fn fixed_flow() -> impl Strategy<Value = FixedFlow> {
    (
        (any::<[u32; 3]>(), any::<[u16; 2]>(), any::<[u32; 4]>()),
        (any::<[u16; 2]>(), any::<[u8; 3]>(), any::<[u16; 2]>()),
        (any::<[u8; 3]>(), any::<u16>(), any::<u32>()),
    )
        .prop_map(
            |((a, io, c), (ports, ptt, asn), (m, flags2, sc))| FixedFlow {
                src_addr: a[0].into(),
                dst_addr: a[1].into(),
                next_hop: a[2].into(),
                input: io[0],
                output: io[1],
                packets: c[0],
                octets: c[1],
                first: c[2],
                last: c[3],
                src_port: ports[0],
                dst_port: ports[1],
                tcp_flags: ptt[0],
                protocol: ptt[1],
                tos: ptt[2],
                src_as: asn[0],
                dst_as: asn[1],
                src_mask: m[0],
                dst_mask: m[1],
                flags1: m[2],
                flags2,
                router_sc: sc.into(),
            },
        )
}

/// What a version keeps of a flow (others fields are not on its wire).
fn as_sent(protocol: Protocol, f: FixedFlow) -> FixedFlow {
    match protocol {
        Protocol::V1 => FixedFlow {
            src_as: 0,
            dst_as: 0,
            src_mask: 0,
            dst_mask: 0,
            flags1: 0,
            flags2: 0,
            router_sc: [0; 4].into(),
            ..f
        },
        Protocol::V5 => FixedFlow {
            flags1: 0,
            flags2: 0,
            router_sc: [0; 4].into(),
            ..f
        },
        _ => f,
    }
}

fn flow_of(r: &OwnedRecord) -> FixedFlow {
    let u = |name: &str| match r.get(name) {
        Some(OwnedValue::Unsigned(v)) => *v,
        None => 0,
        v => panic!("{name}: {v:?}"),
    };
    let a = |name: &str| match r.get(name) {
        Some(OwnedValue::Ipv4(a)) => *a,
        None => [0; 4].into(),
        v => panic!("{name}: {v:?}"),
    };
    FixedFlow {
        src_addr: a("IPV4_SRC_ADDR"),
        dst_addr: a("IPV4_DST_ADDR"),
        next_hop: a("NEXT_HOP"),
        input: u("INPUT") as u16,
        output: u("OUTPUT") as u16,
        packets: u("IN_PACKETS") as u32,
        octets: u("IN_OCTETS") as u32,
        first: u("FIRST_SWITCHED") as u32,
        last: u("LAST_SWITCHED") as u32,
        src_port: u("SRC_PORT") as u16,
        dst_port: u("DST_PORT") as u16,
        tcp_flags: u("TCP_FLAGS") as u8,
        protocol: u("PROTO") as u8,
        tos: u("TOS") as u8,
        src_as: u("SRC_AS") as u16,
        dst_as: u("DST_AS") as u16,
        src_mask: u("SRC_MASK") as u8,
        dst_mask: u("DST_MASK") as u8,
        flags1: u("FLAGS1") as u8,
        flags2: u("FLAGS2") as u16,
        router_sc: a("ROUTER_SC"),
    }
}

/// Records built from the fixed layouts themselves, values by field kind.
fn fixed_records() -> impl Strategy<Value = (Protocol, Vec<OwnedRecord>)> {
    prop::sample::select(vec![Protocol::V1, Protocol::V5, Protocol::V7]).prop_flat_map(|v| {
        let t = netflow::packet::fixed_record_template(v).unwrap().clone();
        (
            Just(v),
            proptest::collection::vec(record(t, Arc::new(Vec::new())), 0..=30),
        )
    })
}

// ---------------------------------------------------------------------------
// Strategies: values by field kind.

/// Templates a list may name. The lists of the records of `lower[i]` name
/// only templates after it, so nesting ends.
type Lower = Arc<Vec<Arc<Template>>>;

fn uint_max(len: usize) -> u64 {
    if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * len)) - 1
    }
}

fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64;
    f64::POSITIVE | f64::NEGATIVE | f64::NORMAL | f64::SUBNORMAL | f64::ZERO | f64::INFINITE
}

fn finite_f32() -> impl Strategy<Value = f64> {
    use proptest::num::f32;
    (f32::POSITIVE | f32::NEGATIVE | f32::NORMAL | f32::SUBNORMAL | f32::ZERO | f32::INFINITE)
        .prop_map(|x| x as f64)
}

/// Text as the decoder gives it: no trailing NULs, at most `max` bytes.
fn text(max: usize) -> BoxedStrategy<String> {
    let chars = max.min(40);
    let small = proptest::string::string_regex(&format!("[a-z0-9 é\u{0}-]{{0,{chars}}}")).unwrap();
    let s: BoxedStrategy<String> = if max >= 255 {
        prop_oneof![
            4 => small,
            1 => proptest::string::string_regex("[a-z]{250,300}").unwrap(),
        ]
        .boxed()
    } else {
        small.boxed()
    };
    s.prop_map(move |mut s| {
        while s.len() > max {
            s.pop();
        }
        s.trim_end_matches('\0').to_string()
    })
    .boxed()
}

/// Bytes whose text (trailing NULs trimmed) is not UTF-8: a string field
/// decodes them as bytes, all of them.
fn not_utf8(len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<u8>> {
    proptest::collection::vec(any::<u8>(), len)
        .prop_map(|mut b| {
            if let Some(first) = b.first_mut() {
                *first = 0xff;
            }
            b
        })
        .boxed()
}

fn byte_string(var: bool, len: usize) -> BoxedStrategy<Vec<u8>> {
    if var {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..24),
            1 => proptest::collection::vec(any::<u8>(), 250..300),
        ]
        .boxed()
    } else {
        proptest::collection::vec(any::<u8>(), len).boxed()
    }
}

/// Kind of basicList elements (named as IPFIX fields, as the decoder does).
fn element_kind(spec: FieldSpec) -> ValueKind {
    let dt = registry::lookup(spec.field.enterprise, spec.field.id)
        .map_or(DataType::OctetArray, |ie| ie.data_type);
    ValueKind::for_type(dt, spec.length)
}

/// A valid value for a field, as the decoder would give it.
fn value(kind: ValueKind, spec: FieldSpec, lower: Lower, depth: u32) -> BoxedStrategy<OwnedValue> {
    use OwnedValue as V;
    let var = spec.is_variable();
    let len = spec.length as usize;
    match kind {
        ValueKind::Unsigned => (0..=uint_max(len)).prop_map(V::Unsigned).boxed(),
        ValueKind::DateTimeSeconds => (0..=uint_max(len)).prop_map(V::DateTimeSeconds).boxed(),
        ValueKind::DateTimeMilliseconds => (0..=uint_max(len))
            .prop_map(V::DateTimeMilliseconds)
            .boxed(),
        ValueKind::Signed => {
            let bits = 8 * len as u32;
            let (lo, hi) = if bits >= 64 {
                (i64::MIN, i64::MAX)
            } else {
                (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
            };
            (lo..=hi).prop_map(V::Signed).boxed()
        }
        ValueKind::Float32 => finite_f32().prop_map(V::Float).boxed(),
        ValueKind::Float64 if len == 4 => finite_f32().prop_map(V::Float).boxed(),
        ValueKind::Float64 => finite_f64().prop_map(V::Float).boxed(),
        ValueKind::Boolean => prop_oneof![
            any::<bool>().prop_map(V::Bool),
            any::<u8>()
                .prop_filter("not a boolean", |b| *b != 1 && *b != 2)
                .prop_map(|b| V::Bytes(vec![b])),
        ]
        .boxed(),
        ValueKind::Mac => any::<[u8; 6]>().prop_map(V::Mac).boxed(),
        ValueKind::Ipv4 => any::<u32>().prop_map(|a| V::Ipv4(a.into())).boxed(),
        ValueKind::Ipv6 => any::<u128>().prop_map(|a| V::Ipv6(a.into())).boxed(),
        ValueKind::DateTimeMicroseconds | ValueKind::DateTimeNanoseconds => {
            (any::<u32>(), any::<u32>())
                .prop_map(move |(seconds, fraction)| {
                    let t = NtpTimestamp { seconds, fraction };
                    if kind == ValueKind::DateTimeMicroseconds {
                        V::DateTimeMicroseconds(t)
                    } else {
                        V::DateTimeNanoseconds(t)
                    }
                })
                .boxed()
        }
        ValueKind::String => {
            let max = if var { 300 } else { len };
            let bad = if var {
                not_utf8(1..=20)
            } else {
                not_utf8(len..=len)
            };
            if !var && len == 0 {
                Just(V::String(String::new())).boxed()
            } else {
                prop_oneof![4 => text(max).prop_map(V::String), 1 => bad.prop_map(V::Bytes)].boxed()
            }
        }
        ValueKind::Bytes => byte_string(var, len).prop_map(V::Bytes).boxed(),
        ValueKind::BasicList => basic_list(lower, depth).prop_map(list_value).boxed(),
        ValueKind::SubTemplateList => sub_template_list(lower).prop_map(list_value).boxed(),
        ValueKind::SubTemplateMultiList => multi_list(lower).prop_map(list_value).boxed(),
    }
}

fn list_value(l: OwnedList) -> OwnedValue {
    OwnedValue::List(Box::new(l))
}

/// A leaf element: a non-list IE with a length its type allows (sometimes
/// one it does not: such values decode as bytes).
fn leaf_spec() -> BoxedStrategy<FieldSpec> {
    let known =
        proptest::sample::select(ipfix_elements().to_vec()).prop_flat_map(|(pen, id, dt)| {
            length_for(dt).prop_map(move |l| FieldSpec::new(pen, id, l))
        });
    let unknown = (
        proptest::sample::select(vec![1u32, 4242, 99_999, u32::MAX]),
        0u16..0x8000,
        prop_oneof![Just(VARIABLE_LENGTH), 1u16..20],
    )
        .prop_map(|(pen, id, l)| FieldSpec::new(pen, id, l));
    prop_oneof![6 => known, 1 => unknown].boxed()
}

fn basic_list(lower: Lower, depth: u32) -> BoxedStrategy<OwnedList> {
    let leaf = {
        let lower = lower.clone();
        leaf_spec()
            .prop_filter("elements need a length", |s| s.length != 0)
            .prop_flat_map(move |spec| {
                let values = proptest::collection::vec(
                    value(element_kind(spec), spec, lower.clone(), depth + 1),
                    0..4,
                );
                (Just(spec), values)
            })
            .boxed()
    };
    let mut choices = vec![(6u32, leaf)];
    if depth < 2 {
        let nested = basic_list(lower.clone(), depth + 1).prop_map(list_value);
        choices.push((
            1,
            (
                Just(FieldSpec::new(0, 291, VARIABLE_LENGTH)),
                proptest::collection::vec(nested, 0..3),
            )
                .boxed(),
        ));
    }
    if !lower.is_empty() {
        let stl = sub_template_list(lower.clone()).prop_map(list_value);
        choices.push((
            1,
            (
                Just(FieldSpec::new(0, 292, VARIABLE_LENGTH)),
                proptest::collection::vec(stl, 0..3),
            )
                .boxed(),
        ));
    }
    (
        proptest::strategy::Union::new_weighted(choices),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|((element, values), semantic, long)| OwnedList {
            semantic,
            content: OwnedListContent::Basic {
                element,
                values,
                long_lengths: long && element.is_variable(),
            },
        })
        .boxed()
}

/// Records of one of the `lower` templates (which name only deeper ones).
fn records_of(lower: Lower, max: usize) -> BoxedStrategy<(u16, Vec<OwnedRecord>)> {
    if lower.is_empty() {
        return (256u16..300).prop_map(|id| (id, Vec::new())).boxed();
    }
    let n = lower.len();
    (0..n)
        .prop_flat_map(move |i| {
            let t = lower[i].clone();
            let deeper: Lower = Arc::new(lower[i + 1..].to_vec());
            (
                Just(t.id),
                proptest::collection::vec(record(t, deeper), 0..=max),
            )
        })
        .boxed()
}

fn sub_template_list(lower: Lower) -> BoxedStrategy<OwnedList> {
    (any::<u8>(), records_of(lower, 3))
        .prop_map(|(semantic, (id, records))| OwnedList::sub_template(semantic, id, records))
        .boxed()
}

fn multi_list(lower: Lower) -> BoxedStrategy<OwnedList> {
    let block = records_of(lower, 2).prop_map(|(template_id, records)| OwnedBlock {
        template_id,
        records,
    });
    (any::<u8>(), proptest::collection::vec(block, 0..3))
        .prop_map(|(semantic, blocks)| OwnedList::sub_template_multi(semantic, blocks))
        .boxed()
}

/// A record of `t` whose lists name templates of `lower`.
fn record(t: Arc<Template>, lower: Lower) -> BoxedStrategy<OwnedRecord> {
    let fields: Vec<_> = t
        .fields
        .iter()
        .filter(|f| !f.skip)
        .map(|f| {
            let long = if f.spec.is_variable() {
                any::<bool>().boxed()
            } else {
                Just(false).boxed()
            };
            (value(f.kind, f.spec, lower.clone(), 0), long)
        })
        .collect();
    fields
        .prop_map(move |values| OwnedRecord {
            template_id: t.id,
            options: t.kind == TemplateKind::Options,
            fields: t
                .fields
                .iter()
                .filter(|f| !f.skip)
                .zip(values)
                .map(|(f, (value, long_length))| OwnedField {
                    name: f.name.to_string(),
                    id_key: f.id_key.to_string(),
                    scope: f.scope,
                    value,
                    long_length,
                })
                .collect(),
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// Strategies: templates.

/// IANA, reverse (29305) and CERT (6871) elements that are not lists.
fn ipfix_elements() -> &'static [(u32, u16, DataType)] {
    static ELEMENTS: OnceLock<Vec<(u32, u16, DataType)>> = OnceLock::new();
    ELEMENTS.get_or_init(|| {
        registry::iana_elements()
            .iter()
            .chain(registry::reverse_elements())
            .chain(registry::vendor_elements())
            .filter(|ie| {
                !matches!(
                    ie.data_type,
                    DataType::BasicList
                        | DataType::SubTemplateList
                        | DataType::SubTemplateMultiList
                )
            })
            .map(|ie| (ie.enterprise, ie.id, ie.data_type))
            .collect()
    })
}

/// A length for a data type: native, reduced, variable for strings and
/// octet arrays, now and then any length.
fn length_for(dt: DataType) -> BoxedStrategy<u16> {
    use DataType as D;
    let typed: BoxedStrategy<u16> = match dt {
        D::Unsigned8 | D::Signed8 | D::Boolean => Just(1).boxed(),
        D::Unsigned16 | D::Signed16 => prop_oneof![Just(2), 1u16..=2].boxed(),
        D::Unsigned32 | D::Signed32 | D::DateTimeSeconds => prop_oneof![Just(4), 1u16..=4].boxed(),
        D::Unsigned64 | D::Signed64 | D::DateTimeMilliseconds => {
            prop_oneof![Just(8), 1u16..=8].boxed()
        }
        D::Float32 | D::Ipv4Address => Just(4).boxed(),
        D::Float64 => prop_oneof![Just(8), Just(4)].boxed(),
        D::MacAddress => Just(6).boxed(),
        D::Ipv6Address => Just(16).boxed(),
        D::DateTimeMicroseconds | D::DateTimeNanoseconds => Just(8).boxed(),
        _ => prop_oneof![Just(VARIABLE_LENGTH), 0u16..=24].boxed(),
    };
    prop_oneof![12 => typed, 1 => 0u16..=20].boxed()
}

fn ipfix_field(lists: bool) -> BoxedStrategy<FieldSpec> {
    if lists {
        prop_oneof![
            8 => leaf_spec(),
            1 => (291u16..=293).prop_map(|id| FieldSpec::new(0, id, VARIABLE_LENGTH)),
        ]
        .boxed()
    } else {
        leaf_spec()
    }
}

fn decodable(specs: &[FieldSpec]) -> bool {
    specs
        .iter()
        .map(|s| {
            if s.is_variable() {
                1
            } else {
                s.length as usize
            }
        })
        .sum::<usize>()
        > 0
}

fn specs(field: BoxedStrategy<FieldSpec>, max: usize) -> BoxedStrategy<Vec<FieldSpec>> {
    proptest::collection::vec(field, 1..=max)
        .prop_filter("records need bytes", |s| decodable(s))
        .boxed()
}

/// NetFlow v9 field types (RFC 3954 section 8 and vendors), IANA ids past
/// them, and unknown ids.
fn v9_field() -> BoxedStrategy<FieldSpec> {
    let known: Vec<(u16, DataType)> = registry::v9_field_types()
        .iter()
        .filter(|f| {
            !matches!(
                f.data_type,
                DataType::BasicList | DataType::SubTemplateList | DataType::SubTemplateMultiList
            )
        })
        .map(|f| (f.id, f.data_type))
        .collect();
    let iana: Vec<(u16, DataType)> = ipfix_elements()
        .iter()
        .filter(|e| e.0 == 0 && registry::v9_field_type(e.1).is_none())
        .map(|e| (e.1, e.2))
        .collect();
    let pick = |v: Vec<(u16, DataType)>| {
        proptest::sample::select(v).prop_flat_map(|(id, dt)| {
            // v9 fields have a fixed length.
            length_for(dt)
                .prop_map(move |l| FieldSpec::new(0, id, if l == VARIABLE_LENGTH { 8 } else { l }))
        })
    };
    prop_oneof![
        6 => pick(known),
        2 => pick(iana),
        1 => (40_000u16..=65_535, 1u16..=12).prop_map(|(id, l)| FieldSpec::new(0, id, l)),
    ]
    .boxed()
}

/// v9 scope fields (RFC 3954 section 6.1: System, Interface, Line Card, Cache, Template).
fn v9_scope_field() -> BoxedStrategy<FieldSpec> {
    (1u16..=6, prop_oneof![Just(4u16), Just(2), 1u16..=10])
        .prop_map(|(id, l)| FieldSpec::new(0, id, l))
        .boxed()
}

// ---------------------------------------------------------------------------
// Messages.

/// Padding after a data set: none, the builder's alignment, or exactly n
/// (reduced below the shortest record).
#[derive(Debug, Clone, Copy)]
enum Pad {
    None,
    Exact(usize),
}

fn pad() -> impl Strategy<Value = Pad> {
    prop_oneof![2 => Just(Pad::None), 1 => (0usize..8).prop_map(Pad::Exact)]
}

/// A data set: its template, records and padding.
type DataSetPlan = (Arc<Template>, Vec<OwnedRecord>, Pad);

#[derive(Debug, Clone)]
struct Plan {
    header: Header,
    /// All templates, announced first: template records in one or two sets,
    /// options templates in their own set.
    templates: Vec<Arc<Template>>,
    split_template_set: bool,
    data: Vec<DataSetPlan>,
    /// Templates withdrawn at the end (IPFIX).
    withdraw: Vec<Arc<Template>>,
    align: bool,
}

fn emit_plan(plan: &Plan) -> Vec<u8> {
    let lookup: Vec<Arc<Template>> = plan.templates.clone();
    let mut out = Vec::new();
    let mut m = MessageBuilder::new(&mut out, &plan.header)
        .unwrap()
        .with_templates(&lookup)
        .align_sets(plan.align);
    let (data, options): (Vec<_>, Vec<_>) = plan
        .templates
        .iter()
        .partition(|t| t.kind == TemplateKind::Data);
    for (i, t) in data.iter().enumerate() {
        if plan.split_template_set && i == 1 {
            m.end_set().unwrap();
        }
        m.template(t).unwrap();
    }
    for t in options {
        m.template(t).unwrap();
    }
    for (t, records, pad) in &plan.data {
        m.data_set(t).unwrap();
        m.records(t, records).unwrap();
        match pad {
            Pad::None => m.end_set().unwrap(),
            Pad::Exact(n) => m.end_set_padded(n % t.min_record_len).unwrap(),
        };
    }
    for t in &plan.withdraw {
        m.withdraw(t.id, t.kind).unwrap();
    }
    m.finish().unwrap();
    out
}

fn compile(protocol: Protocol, id: u16, scope: Option<u16>, specs: &[FieldSpec]) -> Arc<Template> {
    let (kind, sc) = match scope {
        Some(n) => (TemplateKind::Options, n),
        None => (TemplateKind::Data, 0),
    };
    Arc::new(Template::compile(protocol, id, kind, sc, specs).unwrap())
}

/// Data sets for `templates`: 1..=3 records each, with padding.
fn data_sets(templates: Vec<Arc<Template>>, lower: Lower) -> BoxedStrategy<Vec<DataSetPlan>> {
    templates
        .into_iter()
        .map(|t| {
            (
                Just(t.clone()),
                proptest::collection::vec(record(t, lower.clone()), 1..=3),
                pad(),
            )
        })
        .collect::<Vec<_>>()
        .boxed()
}

fn ipfix_plan() -> impl Strategy<Value = Plan> {
    let header = (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(t, s, d)| {
        Header::Ipfix(IpfixHeader {
            export_time: t,
            sequence: s,
            observation_domain: d,
            ..Default::default()
        })
    });
    let leaf = proptest::collection::vec(specs(ipfix_field(false), 4), 1..=2);
    let mid = proptest::collection::vec(specs(ipfix_field(true), 4), 0..=1);
    let top = proptest::collection::vec(specs(ipfix_field(true), 8), 1..=2);
    let options = proptest::collection::vec(
        (specs(ipfix_field(true), 5), any::<prop::sample::Index>()),
        0..=1,
    );
    (
        header,
        (leaf, mid, top, options),
        256u16..60_000,
        any::<(bool, bool)>(),
    )
        .prop_flat_map(
            |(header, (leaf, mid, top, options), base, (split, align))| {
                let mut id = base;
                let mut next = || {
                    id += 1;
                    id
                };
                let p = Protocol::Ipfix;
                let leaf: Vec<_> = leaf.iter().map(|s| compile(p, next(), None, s)).collect();
                // Lists of mid templates name leaf templates; top ones name both.
                let mid: Vec<_> = mid.iter().map(|s| compile(p, next(), None, s)).collect();
                let mut top: Vec<_> = top.iter().map(|s| compile(p, next(), None, s)).collect();
                for (s, scope) in &options {
                    let n = 1 + scope.index(s.len()) as u16;
                    top.push(compile(p, next(), Some(n), s));
                }
                let lower_of_top: Lower = Arc::new(mid.iter().chain(&leaf).cloned().collect());
                let lower_of_mid: Lower = Arc::new(leaf.clone());
                let mut all: Vec<_> = top.iter().chain(&mid).chain(&leaf).cloned().collect();
                all.sort_by_key(|t| t.id);
                let top_sets = data_sets(top.clone(), lower_of_top);
                let mid_sets = data_sets(mid.clone(), lower_of_mid);
                let withdraw = proptest::collection::vec(any::<bool>(), top.len());
                (top_sets, mid_sets, withdraw).prop_map(move |(mut sets, mid_sets, w)| {
                    sets.extend(mid_sets);
                    Plan {
                        header,
                        templates: all.clone(),
                        split_template_set: split,
                        data: sets,
                        withdraw: top
                            .iter()
                            .zip(w)
                            .filter(|(_, w)| *w)
                            .map(|(t, _)| t.clone())
                            .collect(),
                        align,
                    }
                })
            },
        )
}

fn v9_plan() -> impl Strategy<Value = Plan> {
    let header = any::<[u32; 4]>().prop_map(|h| {
        Header::V9(V9Header {
            uptime: h[0],
            timestamp: h[1],
            sequence: h[2],
            source_id: h[3],
            ..Default::default()
        })
    });
    let data = proptest::collection::vec(specs(v9_field(), 10), 1..=3);
    let options = proptest::collection::vec(
        (
            proptest::collection::vec(v9_scope_field(), 0..=2),
            specs(v9_field(), 4),
        ),
        0..=2,
    );
    (header, data, options, 256u16..60_000, any::<(bool, bool)>()).prop_flat_map(
        |(header, data, options, base, (split, align))| {
            let p = Protocol::V9;
            let mut templates: Vec<_> = data
                .iter()
                .enumerate()
                .map(|(i, s)| compile(p, base + i as u16, None, s))
                .collect();
            for (i, (scope, rest)) in options.iter().enumerate() {
                let specs: Vec<_> = scope.iter().chain(rest).copied().collect();
                let id = base + 10 + i as u16;
                templates.push(compile(p, id, Some(scope.len() as u16), &specs));
            }
            data_sets(templates.clone(), Arc::new(Vec::new())).prop_map(move |sets| Plan {
                header,
                templates: templates.clone(),
                split_template_set: split,
                data: sets,
                withdraw: Vec::new(),
                align,
            })
        },
    )
}

// ---------------------------------------------------------------------------
// Comparing generated and parsed representations.

/// The length form the decoder reports: the 3-byte form is remembered only
/// for values shorter than 255 bytes.
fn canonical_record(r: &mut OwnedRecord, t: &Template, lookup: &dyn TemplateLookup) {
    let fields = t.fields.iter().filter(|f| !f.skip);
    for (f, of) in fields.zip(r.fields.iter_mut()) {
        canonical_value(&mut of.value, lookup);
        if of.long_length {
            of.long_length = short(f, &of.value, lookup);
        }
    }
}

/// True if the value encodes to less than 255 bytes in a variable-length field.
fn short(
    f: &netflow::template::TemplateField,
    v: &OwnedValue,
    lookup: &dyn TemplateLookup,
) -> bool {
    let mut out = Vec::new();
    encode::encode_value(&mut out, f, v, false, Some(lookup)).unwrap();
    out[0] != 255
}

fn canonical_value(v: &mut OwnedValue, lookup: &dyn TemplateLookup) {
    let OwnedValue::List(l) = v else { return };
    match &mut l.content {
        OwnedListContent::Basic {
            element,
            values,
            long_lengths,
        } => {
            for v in values.iter_mut() {
                canonical_value(v, lookup);
            }
            if *long_lengths {
                let t = Template::compile(Protocol::Ipfix, 256, TemplateKind::Data, 0, &[*element])
                    .unwrap();
                *long_lengths = values.iter().any(|v| short(&t.fields[0], v, lookup));
            }
        }
        OwnedListContent::SubTemplate {
            template_id,
            records,
        } => {
            if let Some(t) = lookup.template(*template_id) {
                for r in records {
                    canonical_record(r, t, lookup);
                }
            }
        }
        OwnedListContent::SubTemplateMulti { blocks } => {
            for b in blocks {
                if let Some(t) = lookup.template(b.template_id) {
                    for r in &mut b.records {
                        canonical_record(r, t, lookup);
                    }
                }
            }
        }
        OwnedListContent::Malformed(_) => {}
    }
}

/// emit -> parse -> to_owned_record -> emit, and the values survive.
fn check_plan(plan: &Plan) -> Result<(), TestCaseError> {
    let bytes = emit_plan(plan);
    let mut cache = TemplateCache::new();
    let packet = parse_packet(&bytes, &mut cache).unwrap();
    prop_assert!(packet.errors.is_empty(), "{:?}", packet.errors);
    prop_assert!(packet.missing.is_empty());
    prop_assert_eq!(packet.data_sets.len(), plan.data.len());
    for (ds, (t, records, _)) in packet.data_sets.iter().zip(&plan.data) {
        prop_assert_eq!(ds.template.id, t.id);
        let parsed: Vec<OwnedRecord> = ds.records().map(|r| r.to_owned_record()).collect();
        let mut expected = records.clone();
        for r in &mut expected {
            canonical_record(r, t, &plan.templates);
        }
        prop_assert_eq!(parsed, expected);
    }
    let again = reemit(&bytes, &packet, &cache);
    prop_assert_eq!(again, bytes);
    Ok(())
}

proptest! {
    // 256 cases each by default; PROPTEST_CASES=n for more.

    #[test]
    fn fixed_versions_round_trip(
        version in prop::sample::select(vec![Protocol::V1, Protocol::V5, Protocol::V7]),
        h in any::<[u32; 5]>(),
        engine in any::<[u8; 2]>(),
        sampling in any::<u16>(),
        flows in proptest::collection::vec(fixed_flow(), 0..=30),
    ) {
        let mut bytes = Vec::new();
        let n = match version {
            Protocol::V1 => encode::emit_v1(
                &v1::V1Header { uptime: h[0], timestamp: h[1], timestamp_nano: h[2], ..Default::default() },
                &flows, &mut bytes),
            Protocol::V5 => encode::emit_v5(
                &v5::V5Header {
                    uptime: h[0], timestamp: h[1], timestamp_nano: h[2], sequence: h[3],
                    engine_type: engine[0], engine_id: engine[1], sampling_interval: sampling,
                    ..Default::default()
                },
                &flows, &mut bytes),
            _ => encode::emit_v7(
                &v7::V7Header {
                    uptime: h[0], timestamp: h[1], timestamp_nano: h[2], sequence: h[3],
                    reserved: h[4], ..Default::default()
                },
                &flows, &mut bytes),
        }.unwrap();
        prop_assert_eq!(n, bytes.len());
        let mut cache = TemplateCache::new();
        let packet = parse_packet(&bytes, &mut cache).unwrap();
        prop_assert!(packet.errors.is_empty());
        prop_assert_eq!(packet.header.version(), version.version());
        let parsed: Vec<FixedFlow> = packet.records().map(|r| flow_of(&r.to_owned_record())).collect();
        let sent: Vec<FixedFlow> = flows.iter().map(|f| as_sent(version, *f)).collect();
        prop_assert_eq!(parsed, sent);
        prop_assert_eq!(reemit(&bytes, &packet, &cache), bytes);
    }

    #[test]
    fn fixed_versions_round_trip_from_owned_records(
        (version, records) in fixed_records(),
        seed in any::<u32>(),
    ) {
        let header = match version {
            Protocol::V1 => Header::V1(v1::V1Header { uptime: seed, ..Default::default() }),
            Protocol::V5 => Header::V5(v5::V5Header { sequence: seed, ..Default::default() }),
            _ => Header::V7(v7::V7Header { reserved: seed, ..Default::default() }),
        };
        let mut bytes = Vec::new();
        encode::emit_fixed(&header, &records, &mut bytes).unwrap();
        let mut cache = TemplateCache::new();
        let packet = parse_packet(&bytes, &mut cache).unwrap();
        let parsed: Vec<OwnedRecord> = packet.records().map(|r| r.to_owned_record()).collect();
        prop_assert_eq!(parsed, records);
        prop_assert_eq!(reemit(&bytes, &packet, &cache), bytes);
    }

    #[test]
    fn v9_round_trips(plan in v9_plan()) {
        check_plan(&plan)?;
    }

    #[test]
    fn ipfix_round_trips(plan in ipfix_plan()) {
        check_plan(&plan)?;
    }
}

/// The strategies do reach what they are meant to: lists nested in lists,
/// enterprise elements, both length forms, options templates.
#[test]
fn ipfix_plans_cover_the_interesting_cases() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut lists, mut nested, mut enterprise, mut long, mut options, mut var) =
        (0, 0, 0, 0, 0, 0);
    let mut pens: HashMap<u32, usize> = HashMap::new();
    for _ in 0..200 {
        let plan = ipfix_plan().new_tree(&mut runner).unwrap().current();
        for t in &plan.templates {
            for f in t.fields.iter() {
                *pens.entry(f.spec.field.enterprise).or_default() += 1;
            }
            options += (t.kind == TemplateKind::Options) as usize;
            enterprise += t
                .fields
                .iter()
                .filter(|f| f.spec.field.enterprise != 0)
                .count();
            var += t.fields.iter().filter(|f| f.spec.is_variable()).count();
        }
        for (_, records, _) in &plan.data {
            for r in records {
                for f in &r.fields {
                    long += f.long_length as usize;
                    if let OwnedValue::List(l) = &f.value {
                        lists += 1;
                        let inner = l.values().iter().any(|v| matches!(v, OwnedValue::List(_)))
                            || l.records().any(|r| {
                                r.fields
                                    .iter()
                                    .any(|f| matches!(f.value, OwnedValue::List(_)))
                            });
                        nested += inner as usize;
                    }
                }
            }
        }
    }
    for (what, n) in [
        ("lists", lists),
        ("nested lists", nested),
        ("enterprise fields", enterprise),
        ("3-byte length forms", long),
        ("options templates", options),
        ("variable-length fields", var),
        (
            "reverse (29305) fields",
            pens.get(&29305).copied().unwrap_or(0),
        ),
        ("CERT (6871) fields", pens.get(&6871).copied().unwrap_or(0)),
        ("unknown-PEN fields", pens.get(&4242).copied().unwrap_or(0)),
    ] {
        assert!(n >= 10, "only {n} {what}");
    }
}
