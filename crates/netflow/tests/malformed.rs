//! Malformed and hostile packets, one named test per attack. Every packet is
//! written byte by byte from the wire layouts (Cisco's NetFlow v1/v5/v7
//! export formats, RFC 3954 for v9, RFC 7011 for IPFIX, RFC 6313 for
//! structured data), never produced by our encoder. Each case asserts the
//! exact error kind and byte offset (or the counted skip / eviction), and that
//! decoding stays bounded: records produced <= bytes / smallest record, and
//! templates / fields stored never above the cache's caps.
//!
//! Cases already in `tests/rfc_corners.rs` are not repeated here:
//! `v9_zero_length_template_is_rejected_not_looped` (v9 template with zero
//! fields), `v9_bad_flowset_lengths` (v9 flowset length 2, past the end,
//! reserved id), `ipfix_variable_length_past_the_end_is_an_error` (1-byte
//! variable-length prefix past the end), `ipfix_variable_length_both_forms`
//! (zero-length values), `ipfix_reserved_set_ids_and_bad_lengths` (IPFIX
//! message length past the datagram, reserved set ids and template ids),
//! `list_nesting_is_capped` (subTemplateList nesting bomb),
//! `v5_count_larger_than_the_datagram` (v5 count one above the records),
//! `zero_length_fields_are_capped` (17 zero-length fields) and
//! `limits_are_enforced` (field cap, cap 0 refusals).

use netflow::list::ListKind;
use netflow::{
    parse_packet, parse_packet_from, Decoder, ErrorKind, ExportPacket, ExporterId, Limits,
    PendingBuffer, PendingLimits, Protocol, ScopeKey, TemplateCache, TemplateChange, TemplateKey,
    Value,
};

// ---------------------------------------------------------------------------
// Byte layouts.

fn u16b(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}
fn u32b(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// IPFIX message (RFC 7011 section 3.1): version 10, length, export time,
/// sequence, observation domain, then the sets. Length = header + sets.
fn ipfix(domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = sets.concat();
    let mut m = Vec::new();
    m.extend(u16b(10));
    m.extend(u16b((16 + body.len()) as u16));
    m.extend(u32b(1_700_000_000));
    m.extend(u32b(1));
    m.extend(u32b(domain));
    m.extend(body);
    m
}

/// v9 export packet (RFC 3954 section 5.1): version 9, count, sysUptime,
/// UNIX seconds, sequence, source ID, then the flowsets.
fn v9(source_id: u32, count: u16, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(u16b(9));
    m.extend(u16b(count));
    m.extend(u32b(1000));
    m.extend(u32b(1_700_000_000));
    m.extend(u32b(1));
    m.extend(u32b(source_id));
    m.extend(sets.concat());
    m
}

/// A set / flowset: id, length (header included), content.
fn set(id: u16, content: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(u16b(id));
    s.extend(u16b((4 + content.len()) as u16));
    s.extend(content);
    s
}

/// Template record (RFC 7011 section 3.4.1 / RFC 3954 section 5.2): id,
/// field count, then (type, length) pairs.
fn template_record(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend(u16b(id));
    r.extend(u16b(fields.len() as u16));
    for &(t, l) in fields {
        r.extend(u16b(t));
        r.extend(u16b(l));
    }
    r
}

/// IPFIX template set (set id 2) with these template records.
fn ipfix_templates(records: &[Vec<u8>]) -> Vec<u8> {
    set(2, &records.concat())
}

/// One-field IPFIX template: sourceIPv4Address (8), 4 bytes.
fn ipfix_t(id: u16) -> Vec<u8> {
    template_record(id, &[(8, 4)])
}

/// NetFlow v5 header (Cisco: 24 bytes) + `records` zero-filled 48-byte records
/// whose first byte is 10 (so they are not padding).
fn v5(count: u16, records: usize) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(u16b(5));
    m.extend(u16b(count));
    m.extend(u32b(1000)); // sysUptime
    m.extend(u32b(1_700_000_000)); // unix_secs
    m.extend(u32b(0)); // unix_nsecs
    m.extend(u32b(1)); // flow_sequence
    m.extend([0, 0]); // engine_type, engine_id
    m.extend(u16b(0)); // sampling_interval
    for _ in 0..records {
        let mut r = vec![0u8; 48];
        r[0] = 10;
        m.extend(r);
    }
    m
}

/// Decode and walk every record, field and value (lists recursively), checking
/// records <= bytes / smallest record; returns the values visited.
fn walk_bounded(p: &ExportPacket<'_>, datagram_len: usize) -> usize {
    let mut values = 0;
    for s in &p.data_sets {
        let min = s.template.min_record_len.max(1);
        assert!(
            s.record_count <= datagram_len / min,
            "{} records of at least {min} bytes in {datagram_len} bytes",
            s.record_count
        );
        assert_eq!(s.records().count(), s.record_count);
        for r in s.records() {
            for (_, v) in r.fields() {
                values += walk_value(&v, 0);
            }
        }
    }
    values
}

fn walk_value(v: &Value<'_>, depth: usize) -> usize {
    assert!(depth <= 64, "list recursion without bound");
    let mut n = 1;
    if let Value::List(l) = v {
        for inner in l.values() {
            n += walk_value(&inner, depth + 1);
        }
        for r in l.records().flatten() {
            for (_, inner) in r.fields() {
                n += walk_value(&inner, depth + 1);
            }
        }
    }
    n
}

fn kinds(p: &ExportPacket<'_>) -> Vec<(ErrorKind, usize)> {
    p.errors
        .iter()
        .map(|e| (e.kind.clone(), e.offset))
        .collect()
}

fn exporter(n: u8) -> ExporterId {
    ExporterId(format!("192.0.2.{n}:2055").parse().unwrap())
}

fn scope(exporter: ExporterId, domain: u32) -> ScopeKey {
    ScopeKey {
        exporter,
        protocol: Protocol::Ipfix,
        domain,
    }
}

fn key(exporter: ExporterId, domain: u32, template_id: u16) -> TemplateKey {
    TemplateKey {
        scope: scope(exporter, domain),
        template_id,
    }
}

fn assert_within_caps(cache: &TemplateCache) {
    let l = cache.limits();
    assert!(cache.scope_count() <= l.max_scopes, "scopes over the cap");
    for (_, s) in cache.scopes() {
        assert!(
            s.len() <= l.max_templates_per_scope,
            "templates over the cap"
        );
    }
    assert!(cache.template_count() <= l.max_scopes * l.max_templates_per_scope);
    assert!(
        cache.field_count() <= l.max_scopes * l.max_templates_per_scope * l.max_fields_per_template
    );
    // The eviction indexes stay within a constant factor of what they order.
    let (scope_index, template_index) = cache.index_sizes();
    assert!(scope_index <= 2 * cache.scope_count() + 65);
    assert!(template_index <= cache.scope_count() * 65 + 2 * cache.template_count());
}

// ---------------------------------------------------------------------------
// Truncated headers.

#[test]
fn empty_datagram_is_truncated() {
    let e = parse_packet(&[], &mut TemplateCache::new()).unwrap_err();
    assert_eq!(
        (e.kind, e.offset),
        (
            ErrorKind::Truncated {
                needed: 2,
                available: 0
            },
            0
        )
    );
}

#[test]
fn one_byte_datagram_is_truncated() {
    let e = parse_packet(&[0], &mut TemplateCache::new()).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Truncated {
            needed: 2,
            available: 1
        }
    );
}

#[test]
fn truncated_header_of_every_version() {
    // Header lengths: v1 16, v5 24, v7 24 (Cisco), v9 20 (RFC 3954 5.1), IPFIX 16 (RFC 7011 3.1).
    for (version, header_len) in [(1u16, 16usize), (5, 24), (7, 24), (9, 20), (10, 16)] {
        let mut pkt = vec![0xabu8; header_len - 1];
        pkt[..2].copy_from_slice(&u16b(version));
        let e = parse_packet(&pkt, &mut TemplateCache::new()).unwrap_err();
        assert_eq!(
            (e.kind, e.offset),
            (
                ErrorKind::Truncated {
                    needed: header_len,
                    available: header_len - 1
                },
                0
            ),
            "version {version}"
        );
    }
}

#[test]
fn unknown_versions_are_refused() {
    for version in [0u16, 2, 6, 8, 11, 0xffff] {
        let mut pkt = vec![0u8; 64];
        pkt[..2].copy_from_slice(&u16b(version));
        let e = parse_packet(&pkt, &mut TemplateCache::new()).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::UnknownVersion(version), 0));
    }
}

#[test]
fn ipfix_message_length_below_the_header() {
    // RFC 7011 3.1: the length counts the 16-byte header; 0 and 15 are impossible.
    for length in [0u16, 15] {
        let mut msg = ipfix(0, &[ipfix_templates(&[ipfix_t(256)])]);
        let datagram = msg.len();
        msg[2..4].copy_from_slice(&u16b(length));
        let e = parse_packet(&msg, &mut TemplateCache::new()).unwrap_err();
        assert_eq!(
            (e.kind, e.offset),
            (ErrorKind::BadMessageLength { length, datagram }, 2)
        );
    }
}

#[test]
fn ipfix_message_shorter_than_the_datagram_ignores_the_rest() {
    // Length says 16 + template set; a data set follows outside the message.
    let t = ipfix_templates(&[ipfix_t(256)]);
    let mut msg = ipfix(0, &[t]);
    let message_len = msg.len();
    msg.extend(set(256, &[10, 0, 0, 1]));
    let mut cache = TemplateCache::new();
    let p = parse_packet(&msg, &mut cache).unwrap();
    assert_eq!(kinds(&p), vec![(ErrorKind::TrailingBytes(8), message_len)]);
    assert_eq!(p.record_count(), 0, "data outside the message was decoded");
    assert_eq!(p.templates.len(), 1);
}

// ---------------------------------------------------------------------------
// Truncated and lying sets.

#[test]
fn v9_flowset_length_zero_before_nonzero_bytes() {
    // A zero length would loop forever if trusted; all-zero bytes are padding, these are not.
    let mut pkt = v9(0, 1, &[]);
    pkt.extend([1, 44, 0, 0, 1, 2, 3, 4]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::BadSetLength {
                set_id: 300,
                length: 0
            },
            20
        )]
    );
}

#[test]
fn ipfix_set_length_zero() {
    let mut msg = ipfix(0, &[]);
    msg.extend([1, 0, 0, 0, 1, 2, 3, 4]);
    let len = msg.len() as u16;
    msg[2..4].copy_from_slice(&u16b(len));
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::BadSetLength {
                set_id: 256,
                length: 0
            },
            16
        )]
    );
}

#[test]
fn ipfix_set_length_below_the_set_header() {
    // RFC 7011 3.3.2: the set length includes the 4-byte set header.
    for length in [1u16, 2, 3] {
        let mut msg = ipfix(0, &[]);
        msg.extend(u16b(2));
        msg.extend(u16b(length));
        msg.extend([0, 1, 0, 1]);
        let len = msg.len() as u16;
        msg[2..4].copy_from_slice(&u16b(len));
        let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
        assert_eq!(
            kinds(&p),
            vec![(ErrorKind::BadSetLength { set_id: 2, length }, 16)]
        );
    }
}

#[test]
fn ipfix_set_length_past_the_message() {
    let t = ipfix_templates(&[ipfix_t(256)]);
    let mut data = set(256, &[10, 0, 0, 1]);
    data[2..4].copy_from_slice(&u16b(400));
    let msg = ipfix(0, &[t.clone(), data]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&msg, &mut cache).unwrap();
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::BadSetLength {
                set_id: 256,
                length: 400
            },
            16 + t.len()
        )]
    );
    // The template before it still counts.
    assert_eq!(p.templates[0].change, TemplateChange::Learned);
    assert_eq!(p.record_count(), 0);
}

#[test]
fn truncated_set_header() {
    // Three non-zero bytes where a 4-byte set header should be.
    let mut pkt = v9(0, 1, &[]);
    pkt.extend([1, 0, 9]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(kinds(&p), vec![(ErrorKind::TrailingBytes(3), 20)]);

    let mut msg = ipfix(0, &[]);
    msg.extend([1, 0, 9]);
    let len = msg.len() as u16;
    msg[2..4].copy_from_slice(&u16b(len));
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert_eq!(kinds(&p), vec![(ErrorKind::TrailingBytes(3), 16)]);
}

#[test]
fn v9_template_record_cut_inside_its_flowset() {
    // Template 256 announces 2 fields, the flowset holds one.
    let tmpl = [1, 0, 0, 2, 0, 8, 0, 4];
    let pkt = v9(0, 1, &[set(0, &tmpl)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&pkt, &mut cache).unwrap();
    assert_eq!(kinds(&p), vec![(ErrorKind::TemplateTruncated(256), 24)]);
    assert_eq!(cache.template_count(), 0);
}

#[test]
fn ipfix_template_record_cut_inside_its_set() {
    let tmpl = [1, 0, 0, 2, 0, 8, 0, 4];
    let msg = ipfix(0, &[set(2, &tmpl)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&msg, &mut cache).unwrap();
    assert_eq!(kinds(&p), vec![(ErrorKind::TemplateTruncated(256), 20)]);
    assert_eq!(cache.template_count(), 0);
}

#[test]
fn ipfix_enterprise_number_cut_off() {
    // RFC 7011 3.2: enterprise bit set, so a 4-byte enterprise number must follow.
    let tmpl = [1, 0, 0, 1, 0x80, 14, 0, 1, 0, 0];
    let msg = ipfix(0, &[set(2, &tmpl)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&msg, &mut cache).unwrap();
    assert_eq!(kinds(&p), vec![(ErrorKind::TemplateTruncated(256), 20)]);
    assert_eq!(cache.template_count(), 0);
}

// ---------------------------------------------------------------------------
// Template field counts and field lengths.

#[test]
fn v9_template_with_65535_fields() {
    // Field count 65 535 with 3 fields present: refused before anything is read or allocated.
    let mut tmpl = vec![1, 0, 0xff, 0xff];
    tmpl.extend([0, 8, 0, 4, 0, 12, 0, 4, 0, 4, 0, 1]);
    let pkt = v9(0, 1, &[set(0, &tmpl)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&pkt, &mut cache).unwrap();
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::TooManyFields {
                template_id: 256,
                count: 65_535,
                limit: 1024
            },
            24
        )]
    );
    assert_eq!((cache.template_count(), cache.field_count()), (0, 0));
}

#[test]
fn ipfix_template_and_options_template_with_65535_fields() {
    let mut tmpl = vec![1, 0, 0xff, 0xff];
    tmpl.extend([0, 8, 0, 4]);
    // Options template (RFC 7011 3.4.2.2): id, field count, scope field count.
    let mut opts = vec![1, 1, 0xff, 0xff, 0, 1];
    opts.extend([0, 149, 0, 4]);
    let msg = ipfix(0, &[set(2, &tmpl), set(3, &opts)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&msg, &mut cache).unwrap();
    assert_eq!(
        kinds(&p),
        vec![
            (
                ErrorKind::TooManyFields {
                    template_id: 256,
                    count: 65_535,
                    limit: 1024
                },
                20
            ),
            (
                ErrorKind::TooManyFields {
                    template_id: 257,
                    count: 65_535,
                    limit: 1024
                },
                16 + 4 + tmpl.len() + 4
            )
        ]
    );
    assert_eq!((cache.template_count(), cache.field_count()), (0, 0));
}

#[test]
fn v9_template_whose_only_field_has_length_zero() {
    // Records of length 0 would never advance a data walk.
    let pkt = v9(
        0,
        2,
        &[
            set(0, &template_record(256, &[(8, 0)])),
            set(256, &[1, 2, 3, 4]),
        ],
    );
    let mut cache = TemplateCache::new();
    let p = parse_packet(&pkt, &mut cache).unwrap();
    assert_eq!(kinds(&p), vec![(ErrorKind::EmptyTemplate(256), 24)]);
    assert_eq!(cache.template_count(), 0);
    assert_eq!(p.missing.len(), 1);
}

#[test]
fn v9_options_template_with_no_fields() {
    // RFC 3954 6.1: scope length 0 and option length 0: a record of nothing.
    let opts = [1, 1, 0, 0, 0, 0];
    let pkt = v9(0, 1, &[set(1, &opts)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&pkt, &mut cache).unwrap();
    assert_eq!(kinds(&p), vec![(ErrorKind::EmptyTemplate(257), 24)]);
    assert_eq!(cache.template_count(), 0);
}

#[test]
fn ipfix_template_with_zero_fields_is_a_withdrawal() {
    // RFC 7011 8.1: a template record with field count 0 withdraws; for an
    // unknown id it stores nothing, and data for it keeps waiting.
    let msg = ipfix(
        0,
        &[
            ipfix_templates(&[template_record(256, &[])]),
            set(256, &[10, 0, 0, 1]),
        ],
    );
    let mut cache = TemplateCache::new();
    let p = parse_packet(&msg, &mut cache).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.templates.len(), 1);
    assert_eq!(p.templates[0].change, TemplateChange::Withdrawn);
    assert_eq!(cache.template_count(), 0);
    assert_eq!(p.missing.len(), 1);
    assert_eq!(p.record_count(), 0);
}

#[test]
fn ipfix_field_of_length_65535_is_variable_length_and_zero_length_values_are_bounded() {
    // RFC 7011 7: length 65 535 means variable length. A 1-byte-prefix value
    // of length 0 is a 1-byte record: 1000 of them are 1000 records, no more.
    let t = ipfix_templates(&[template_record(256, &[(82, 0xffff)])]);
    let data = vec![0u8; 1000];
    let msg = ipfix(0, &[t, set(256, &data)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.record_count(), 1000);
    assert_eq!(walk_bounded(&p, msg.len()), 1000);
}

#[test]
fn ipfix_three_byte_length_prefix_past_the_end() {
    // RFC 7011 7: 255 then a 2-byte length. 0x0100 = 256 bytes, 10 present.
    let t = ipfix_templates(&[template_record(256, &[(82, 0xffff)])]);
    let mut data = vec![2, b'o', b'k', 255, 1, 0];
    data.extend([b'x'; 10]);
    let msg = ipfix(0, &[t.clone(), set(256, &data)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 1);
    // The second record starts 3 bytes into the set body.
    let set_at = 16 + t.len();
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::RecordTruncated { template_id: 256 },
            set_at + 4 + 3
        )]
    );
    walk_bounded(&p, msg.len());
}

#[test]
fn ipfix_three_byte_length_prefix_itself_cut() {
    // 255 and one byte of the 2-byte length, then the set ends.
    let t = ipfix_templates(&[template_record(256, &[(82, 0xffff)])]);
    let msg = ipfix(0, &[t.clone(), set(256, &[255, 1])]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 0);
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::RecordTruncated { template_id: 256 },
            16 + t.len() + 4
        )]
    );
}

#[test]
fn v9_field_of_length_65535_is_variable_length() {
    // RFC 3954 has no variable length; exporters use 65 535 as IPFIX does and
    // Wireshark reads it so: tshark 4.x on these bytes (written to a pcap)
    // shows `Length: 65535 [i.e.: "Variable Length"]` and two flows,
    // IfName eth0 / SrcAddr 10.0.0.1 and IfName abc / SrcAddr 10.0.0.2.
    let t = set(0, &template_record(256, &[(82, 0xffff), (8, 4)]));
    let mut data = vec![4];
    data.extend(b"eth0");
    data.extend([10, 0, 0, 1, 3]);
    data.extend(b"abc");
    data.extend([10, 0, 0, 2, 0, 0]);
    let pkt = v9(0, 2, &[t, set(256, &data)]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let flows: Vec<(Option<Value<'_>>, Option<Value<'_>>)> =
        p.records().map(|r| (r.get_id(82), r.get_id(8))).collect();
    assert_eq!(
        flows,
        vec![
            (
                Some(Value::String("eth0")),
                Some(Value::Ipv4([10, 0, 0, 1].into()))
            ),
            (
                Some(Value::String("abc")),
                Some(Value::Ipv4([10, 0, 0, 2].into()))
            ),
        ]
    );
}

#[test]
fn v9_fixed_field_longer_than_any_datagram() {
    // A 65 000-byte fixed field: no record fits in a datagram's flowset; the
    // set's bytes are reported, nothing is decoded.
    let pkt = v9(
        0,
        2,
        &[
            set(0, &template_record(256, &[(8, 65_000)])),
            set(256, &[1, 2, 3, 4, 5, 6, 7, 8]),
        ],
    );
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 0);
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::NonZeroPadding {
                template_id: 256,
                length: 8
            },
            20 + 12 + 4
        )]
    );
}

// ---------------------------------------------------------------------------
// Structured data (RFC 6313) bombs.

/// basicList (RFC 6313 4.5.1) value: semantic, field id, element length, elements.
fn basic_list(element_id: u16, element_len: u16, content: &[u8]) -> Vec<u8> {
    let mut v = vec![3]; // allOf
    v.extend(u16b(element_id));
    v.extend(u16b(element_len));
    v.extend(content);
    v
}

/// A variable-length value with the 3-byte length prefix (RFC 7011 7).
fn varlen(value: &[u8]) -> Vec<u8> {
    let mut v = vec![255];
    v.extend(u16b(value.len() as u16));
    v.extend(value);
    v
}

fn list_depth(v: &Value<'_>) -> usize {
    let Value::List(l) = v else { return 0 };
    let inner = l.values().next().or_else(|| {
        l.records()
            .flatten()
            .next()
            .and_then(|r| r.fields().next().map(|f| f.1))
    });
    1 + inner.map_or(0, |i| list_depth(&i))
}

#[test]
fn basic_list_of_basic_lists_nesting_bomb() {
    // basicList (291) whose element is basicList (291, variable length), 40 deep.
    let mut inner = basic_list(8, 4, &[10, 0, 0, 1]);
    for _ in 0..40 {
        inner = basic_list(291, 0xffff, &varlen(&inner));
    }
    let t = ipfix_templates(&[template_record(256, &[(291, 0xffff)])]);
    let msg = ipfix(0, &[t, set(256, &varlen(&inner))]);
    let limits = Limits {
        max_list_depth: 5,
        ..Limits::default()
    };
    let p = parse_packet(&msg, &mut TemplateCache::with_limits(limits)).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let r = p.records().next().unwrap();
    let v = r.fields().next().unwrap().1;
    assert_eq!(list_depth(&v), 5, "nesting not capped at max_list_depth");
    walk_bounded(&p, msg.len());
}

#[test]
fn sub_template_multi_list_nesting_bomb() {
    // Template 256 = one subTemplateMultiList (293); each block names 256 again.
    let mut inner: Vec<u8> = vec![3];
    for _ in 0..40 {
        let record = varlen(&inner);
        let mut block = Vec::new();
        block.extend(u16b(256));
        block.extend(u16b((4 + record.len()) as u16));
        block.extend(record);
        inner = vec![3];
        inner.extend(block);
    }
    let t = ipfix_templates(&[template_record(256, &[(293, 0xffff)])]);
    let msg = ipfix(0, &[t, set(256, &varlen(&inner))]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let r = p.records().next().unwrap();
    let v = r.fields().next().unwrap().1;
    assert_eq!(list_depth(&v), Limits::default().max_list_depth);
    walk_bounded(&p, msg.len());
}

#[test]
fn sub_template_list_naming_an_unknown_template() {
    // subTemplateList (292): semantic, template id 999 (never announced), content.
    let mut value = vec![3];
    value.extend(u16b(999));
    value.extend([10, 0, 0, 1]);
    let t = ipfix_templates(&[template_record(256, &[(292, 0xffff)])]);
    let msg = ipfix(0, &[t, set(256, &varlen(&value))]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    let r = p.records().next().unwrap();
    let Value::List(l) = r.fields().next().unwrap().1 else {
        panic!("not a list")
    };
    assert_eq!(l.kind, ListKind::SubTemplate { template_id: 999 });
    assert_eq!(l.validate(), Err(ErrorKind::BadList));
    let results: Vec<_> = l.records().map(|r| r.err()).collect();
    assert_eq!(results, vec![Some(ErrorKind::BadList)]);
}

#[test]
fn sub_template_multi_list_block_lengths_that_lie() {
    let t = ipfix_templates(&[ipfix_t(257), template_record(256, &[(293, 0xffff)])]);
    // Block length 3 (< its own 4-byte header), then block length past the list.
    for block_len in [3u16, 400] {
        let mut value = vec![3];
        value.extend(u16b(257));
        value.extend(u16b(block_len));
        value.extend([10, 0, 0, 1]);
        let msg = ipfix(0, &[t.clone(), set(256, &varlen(&value))]);
        let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
        let r = p.records().next().unwrap();
        let Value::List(l) = r.fields().next().unwrap().1 else {
            panic!("not a list")
        };
        assert_eq!(
            l.validate(),
            Err(ErrorKind::BadList),
            "block length {block_len}"
        );
    }
}

#[test]
fn basic_list_header_cut_short_is_raw_bytes() {
    // 3 bytes cannot hold a basicList header (5 bytes): kept as bytes, not parsed.
    let t = ipfix_templates(&[template_record(256, &[(291, 0xffff)])]);
    let msg = ipfix(0, &[t, set(256, &varlen(&[3, 0, 8]))]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    let r = p.records().next().unwrap();
    assert_eq!(r.fields().next().unwrap().1, Value::Bytes(&[3, 0, 8]));
}

// ---------------------------------------------------------------------------
// Count fields that lie.

#[test]
fn v5_count_65535_with_one_record() {
    let pkt = v5(65_535, 1);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 1);
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::CountMismatch {
                count: 65_535,
                present: 1
            },
            24 + 48
        )]
    );
    walk_bounded(&p, pkt.len());
}

#[test]
fn v5_count_smaller_than_the_records_present() {
    // Count 1, two records: the second is not decoded, its bytes are reported.
    let pkt = v5(1, 2);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 1);
    assert_eq!(kinds(&p), vec![(ErrorKind::TrailingBytes(48), 24 + 48)]);
}

#[test]
fn v1_and_v7_counts_above_the_records() {
    // v1: 16-byte header, 48-byte records; v7: 24-byte header, 52-byte records.
    for (version, header, record) in [(1u16, 16usize, 48usize), (7, 24, 52)] {
        let mut pkt = vec![0u8; header + record];
        pkt[..2].copy_from_slice(&u16b(version));
        pkt[2..4].copy_from_slice(&u16b(30));
        pkt[header] = 10;
        let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
        assert_eq!(p.record_count(), 1, "v{version}");
        assert_eq!(
            kinds(&p),
            vec![(
                ErrorKind::CountMismatch {
                    count: 30,
                    present: 1
                },
                header + record
            )],
            "v{version}"
        );
    }
}

#[test]
fn v9_header_count_is_not_trusted() {
    // RFC 3954 5.1: count = records in the packet. Exporters get it wrong
    // both ways; the flowset lengths decide, neither count allocates nor drops.
    let t = set(0, &template_record(256, &[(8, 4)]));
    let d = set(256, &[10, 0, 0, 1, 10, 0, 0, 2]);
    for count in [0u16, 65_535] {
        let pkt = v9(0, count, &[t.clone(), d.clone()]);
        let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
        assert!(p.errors.is_empty(), "count {count}: {:?}", p.errors);
        assert_eq!(p.record_count(), 2, "count {count}");
        walk_bounded(&p, pkt.len());
    }
}

// ---------------------------------------------------------------------------
// Options templates.

#[test]
fn ipfix_options_template_with_scope_count_zero() {
    // RFC 7011 3.4.2.2: the scope field count MUST NOT be zero.
    let opts = [1, 2, 0, 2, 0, 0, 0, 149, 0, 4, 0, 41, 0, 8];
    let msg = ipfix(0, &[set(3, &opts)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&msg, &mut cache).unwrap();
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::BadScopeCount {
                template_id: 258,
                scope_count: 0,
                field_count: 2
            },
            20
        )]
    );
    assert_eq!(cache.template_count(), 0);
}

#[test]
fn ipfix_options_template_with_more_scopes_than_fields() {
    let opts = [1, 2, 0, 2, 0, 3, 0, 149, 0, 4, 0, 41, 0, 8];
    let msg = ipfix(0, &[set(3, &opts)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::BadScopeCount {
                template_id: 258,
                scope_count: 3,
                field_count: 2
            },
            20
        )]
    );
}

#[test]
fn v9_options_template_scope_length_not_a_multiple_of_4() {
    // RFC 3954 6.1: scope and option lengths are in bytes of 4-byte field specifiers.
    let opts = [1, 1, 0, 6, 0, 4, 0, 2, 0, 4, 0, 0, 0, 34, 0, 4];
    let pkt = v9(0, 1, &[set(1, &opts)]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::BadOptionsLengths {
                template_id: 257,
                scope_len: 6,
                option_len: 4
            },
            24
        )]
    );
}

#[test]
fn v9_options_template_scope_longer_than_its_flowset() {
    // Scope length 400 bytes (100 specifiers) in a 14-byte record.
    let opts = [1, 1, 1, 0x90, 0, 4, 0, 2, 0, 4, 0, 34, 0, 4];
    let pkt = v9(0, 1, &[set(1, &opts)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&pkt, &mut cache).unwrap();
    assert_eq!(kinds(&p), vec![(ErrorKind::TemplateTruncated(257), 24)]);
    assert_eq!(cache.template_count(), 0);
}

#[test]
fn options_data_shorter_than_the_scope() {
    // Options template 257: scope Interface(2)/4, option SAMPLING_INTERVAL(34)/4:
    // 8-byte records; the options data flowset holds 6 bytes.
    let opts = [1, 1, 0, 4, 0, 4, 0, 2, 0, 4, 0, 34, 0, 4];
    let pkt = v9(0, 2, &[set(1, &opts), set(257, &[0, 0, 0, 3, 0, 1])]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 0);
    let data_at = 20 + 4 + opts.len();
    assert_eq!(
        kinds(&p),
        vec![(
            ErrorKind::NonZeroPadding {
                template_id: 257,
                length: 6
            },
            data_at + 4
        )]
    );
}

// ---------------------------------------------------------------------------
// Template floods and churn: least recently used eviction.

fn small_cache(scopes: usize, templates: usize) -> TemplateCache {
    TemplateCache::with_limits(Limits {
        max_scopes: scopes,
        max_templates_per_scope: templates,
        ..Limits::default()
    })
}

/// Stored template ids of one scope, sorted.
fn stored(cache: &TemplateCache, exporter: ExporterId, domain: u32) -> Vec<u16> {
    let mut ids: Vec<u16> = cache
        .scope(&scope(exporter, domain))
        .map(|s| s.iter().map(|t| t.id).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

#[test]
fn template_id_flood_in_one_packet_keeps_the_newest() {
    // 1000 templates in one set, cap 4: the first 996 are evicted oldest first.
    let records: Vec<Vec<u8>> = (256..1256).map(ipfix_t).collect();
    let msg = ipfix(0, &[ipfix_templates(&records)]);
    let mut cache = small_cache(16, 4);
    let p = parse_packet(&msg, &mut cache).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors[0]);
    assert_eq!(p.templates.len(), 1000);
    assert_eq!(
        stored(&cache, ExporterId::UNSPECIFIED, 0),
        vec![1252, 1253, 1254, 1255]
    );
    let st = cache.stats();
    assert_eq!((st.learned, st.evicted_templates), (1000, 996));
    assert_eq!((cache.template_count(), cache.field_count()), (4, 4));
    assert_within_caps(&cache);
}

#[test]
fn template_used_by_data_is_not_the_one_evicted() {
    let e = exporter(1);
    let mut cache = small_cache(16, 3);
    let learn = |cache: &mut TemplateCache, id: u16| {
        let msg = ipfix(0, &[ipfix_templates(&[ipfix_t(id)])]);
        let p = parse_packet_from(e, &msg, cache).unwrap();
        assert!(p.errors.is_empty());
    };
    let data = |cache: &mut TemplateCache, id: u16| {
        let msg = ipfix(0, &[set(id, &[10, 0, 0, 1])]);
        let p = parse_packet_from(e, &msg, cache).unwrap();
        assert_eq!(p.record_count(), 1, "template {id} was evicted");
    };
    learn(&mut cache, 256);
    learn(&mut cache, 257);
    learn(&mut cache, 258);
    data(&mut cache, 256); // 256 is now the most recently used
    learn(&mut cache, 259); // evicts 257, the least recently used
    assert_eq!(stored(&cache, e, 0), vec![256, 258, 259]);
    data(&mut cache, 258);
    learn(&mut cache, 260); // 256 (used before 258 and 259 arrived) goes
    assert_eq!(stored(&cache, e, 0), vec![258, 259, 260]);
    assert_eq!(cache.stats().evicted_templates, 2);
    assert_eq!(
        cache.scope(&scope(e, 0)).unwrap().ids_by_last_use(),
        vec![259, 258, 260]
    );
    // Data for an evicted template waits for it again, like any unknown template.
    let msg = ipfix(0, &[set(257, &[10, 0, 0, 1])]);
    let p = parse_packet_from(e, &msg, &mut cache).unwrap();
    assert_eq!(p.missing.len(), 1);
    assert_eq!(p.missing[0].key, key(e, 0, 257));
}

/// The cache remembers the last scope found to skip the keyed hash; scopes
/// are stored densely, so evicting or removing one moves another. Each
/// exporter's (and protocol's, and domain's) data must still decode with its
/// own template, whatever was looked up just before.
#[test]
fn scope_lookups_follow_scopes_moved_by_eviction_and_removal() {
    let (a, b, c) = (exporter(1), exporter(2), exporter(3));
    // Template 256 of each exporter names a different element, so the name
    // of the decoded field tells whose template decoded it.
    let element = |e: ExporterId| {
        if e == a {
            8
        } else if e == b {
            12
        } else {
            7
        }
    };
    let learn = |cache: &mut TemplateCache, e: ExporterId| {
        let msg = ipfix(
            0,
            &[ipfix_templates(&[template_record(256, &[(element(e), 4)])])],
        );
        let p = parse_packet_from(e, &msg, cache).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    };
    let decoded_element = |cache: &mut TemplateCache, e: ExporterId| -> Option<u16> {
        let msg = ipfix(0, &[set(256, &[10, 0, 0, 1])]);
        let p = parse_packet_from(e, &msg, cache).unwrap();
        let r = p.records().next()?;
        let f = r.fields().next().expect("one field").0;
        Some(f.spec.field.id)
    };
    let mut cache = small_cache(2, 4);
    learn(&mut cache, a);
    learn(&mut cache, b);
    assert_eq!(decoded_element(&mut cache, b), Some(12));
    assert_eq!(decoded_element(&mut cache, a), Some(8));
    assert_eq!(decoded_element(&mut cache, b), Some(12)); // a is now the least recently used
                                                          // c evicts a, the first scope stored: b moves into its place.
    learn(&mut cache, c);
    assert_eq!(cache.stats().evicted_scopes, 1);
    assert_eq!(decoded_element(&mut cache, c), Some(7));
    assert_eq!(decoded_element(&mut cache, b), Some(12));
    assert_eq!(decoded_element(&mut cache, c), Some(7));
    assert_eq!(decoded_element(&mut cache, a), None);
    // Removing b moves c.
    assert_eq!(decoded_element(&mut cache, b), Some(12));
    cache.remove_exporter(b);
    assert_eq!(decoded_element(&mut cache, b), None);
    assert_eq!(decoded_element(&mut cache, c), Some(7));
    assert_eq!(cache.scope_count(), 1);
    // The same exporter in another domain, then in v9 with the same id:
    // each a scope of its own, looked up alternately.
    let t = template_record(256, &[(12, 4)]);
    parse_packet_from(c, &ipfix(5, &[ipfix_templates(&[t])]), &mut cache).unwrap();
    let v9_template = v9(0, 1, &[set(0, &template_record(256, &[(15, 4)]))]);
    parse_packet_from(c, &v9_template, &mut cache).unwrap();
    let v9_data = v9(0, 1, &[set(256, &[10, 0, 0, 1])]);
    let ids = |p: ExportPacket<'_>| -> Vec<u16> {
        p.records()
            .flat_map(|r| r.fields().map(|(f, _)| f.spec.field.id).collect::<Vec<_>>())
            .collect()
    };
    for _ in 0..2 {
        let data5 = ipfix(5, &[set(256, &[10, 0, 0, 1])]);
        assert_eq!(
            ids(parse_packet_from(c, &v9_data, &mut cache).unwrap()),
            [15]
        );
        assert_eq!(ids(parse_packet_from(c, &data5, &mut cache).unwrap()), [12]);
    }
    // The cap is 2 scopes: v9 and domain 5 stay, domain 0 went.
    assert_eq!(decoded_element(&mut cache, c), None);
    assert_within_caps(&cache);
}

#[test]
fn template_refresh_counts_as_use() {
    let mut cache = small_cache(16, 3);
    let msg = ipfix(
        0,
        &[ipfix_templates(&[ipfix_t(256), ipfix_t(257), ipfix_t(258)])],
    );
    parse_packet(&msg, &mut cache).unwrap();
    // 256 announced again, same layout: a refresh, and a use.
    let again = ipfix(0, &[ipfix_templates(&[ipfix_t(256)])]);
    let p = parse_packet(&again, &mut cache).unwrap();
    assert_eq!(p.templates[0].change, TemplateChange::Refreshed);
    parse_packet(&ipfix(0, &[ipfix_templates(&[ipfix_t(259)])]), &mut cache).unwrap();
    assert_eq!(
        stored(&cache, ExporterId::UNSPECIFIED, 0),
        vec![256, 258, 259]
    );
    let st = cache.stats();
    assert_eq!((st.refreshed, st.evicted_templates), (1, 1));
}

#[test]
fn exporter_flood_evicts_the_least_recently_used_exporter() {
    let mut cache = small_cache(3, 8);
    let t = ipfix(0, &[ipfix_templates(&[ipfix_t(256), ipfix_t(257)])]);
    for n in 1..=3 {
        parse_packet_from(exporter(n), &t, &mut cache).unwrap();
    }
    // Exporter 1 sends data: exporter 2 is now the least recently used.
    let data = ipfix(0, &[set(256, &[10, 0, 0, 1])]);
    assert_eq!(
        parse_packet_from(exporter(1), &data, &mut cache)
            .unwrap()
            .record_count(),
        1
    );
    parse_packet_from(exporter(4), &t, &mut cache).unwrap();
    assert!(
        cache.scope(&scope(exporter(2), 0)).is_none(),
        "exporter 2 kept"
    );
    for n in [1, 3, 4] {
        assert_eq!(
            stored(&cache, exporter(n), 0),
            vec![256, 257],
            "exporter {n}"
        );
    }
    let st = cache.stats();
    assert_eq!((st.evicted_scopes, st.templates_in_evicted_scopes), (1, 2));
    assert_eq!(st.evicted_templates, 0);
    // A flood of 1000 new exporters keeps 3 scopes at every step.
    for n in 0..1000u32 {
        let e = ExporterId(
            format!("198.51.100.{}:{}", n % 250, 1000 + n)
                .parse()
                .unwrap(),
        );
        parse_packet_from(e, &t, &mut cache).unwrap();
        assert_eq!(cache.scope_count(), 3);
    }
    assert_within_caps(&cache);
    assert_eq!(cache.stats().evicted_scopes, 1001);
}

#[test]
fn domain_flood_keeps_the_domain_in_use() {
    // One exporter, IPFIX observation domains 0..500, cap 8 scopes; domain 0
    // sends data between every new domain and must survive.
    let e = exporter(9);
    let mut cache = small_cache(8, 4);
    let data0 = ipfix(0, &[set(256, &[10, 0, 0, 1])]);
    for domain in 0..500u32 {
        let t = ipfix(domain, &[ipfix_templates(&[ipfix_t(256)])]);
        assert!(parse_packet_from(e, &t, &mut cache)
            .unwrap()
            .errors
            .is_empty());
        let p = parse_packet_from(e, &data0, &mut cache).unwrap();
        assert_eq!(p.record_count(), 1, "domain 0 evicted at domain {domain}");
        assert!(cache.scope_count() <= 8);
    }
    let mut domains: Vec<u32> = cache.scopes().map(|(k, _)| k.domain).collect();
    domains.sort_unstable();
    assert_eq!(domains, vec![0, 493, 494, 495, 496, 497, 498, 499]);
    assert_eq!(cache.stats().evicted_scopes, 500 - 8);
    assert_eq!(cache.scopes_by_last_use().last(), Some(&scope(e, 0)));
    assert_within_caps(&cache);
}

#[test]
fn v9_source_ids_and_ipfix_domains_share_the_scope_cap() {
    // (exporter, protocol, domain) scopes: v9 source ID 0 and IPFIX domain 0
    // are two scopes of the same exporter, both counted against max_scopes.
    let mut cache = small_cache(2, 4);
    let v9t = v9(0, 1, &[set(0, &template_record(256, &[(8, 4)]))]);
    parse_packet(&v9t, &mut cache).unwrap();
    parse_packet(&ipfix(0, &[ipfix_templates(&[ipfix_t(256)])]), &mut cache).unwrap();
    assert_eq!(cache.scope_count(), 2);
    parse_packet(&ipfix(1, &[ipfix_templates(&[ipfix_t(256)])]), &mut cache).unwrap();
    // The v9 scope was the least recently used.
    let protocols: Vec<Protocol> = cache
        .scopes_by_last_use()
        .iter()
        .map(|k| k.protocol)
        .collect();
    assert_eq!(protocols, vec![Protocol::Ipfix, Protocol::Ipfix]);
    assert_eq!(cache.stats().evicted_scopes, 1);
}

#[test]
fn template_id_churn_stays_bounded() {
    // An exporter cycling through template ids, withdrawing and redefining
    // them (RFC 7011 8.1 withdrawal = field count 0): the store and the
    // eviction index stay within the caps at every step.
    let mut cache = small_cache(4, 8);
    for i in 0..20_000u32 {
        let id = 256 + (i % 3000) as u16;
        let layout: &[(u16, u16)] = if i % 2 == 0 {
            &[(8, 4)]
        } else {
            &[(8, 4), (12, 4)]
        };
        let mut records = vec![template_record(id, layout)];
        if i % 3 == 0 {
            records.push(template_record(id, &[])); // withdraw it again
        }
        // Runs of 16 ids per domain (over the 8-template cap), 5 domains (over 4 scopes).
        let msg = ipfix((i / 16) % 5, &[ipfix_templates(&records)]);
        let p = parse_packet(&msg, &mut cache).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_within_caps(&cache);
    }
    let st = cache.stats();
    assert!(st.evicted_templates > 0 && st.evicted_scopes > 0 && st.withdrawn > 0);
    // Redefinition churn of one id never grows anything.
    let mut cache = small_cache(1, 1);
    for i in 0..10_000u16 {
        let layout: &[(u16, u16)] = if i % 2 == 0 { &[(8, 4)] } else { &[(12, 4)] };
        let msg = ipfix(0, &[ipfix_templates(&[template_record(300, layout)])]);
        let p = parse_packet(&msg, &mut cache).unwrap();
        let want = if i == 0 {
            TemplateChange::Learned
        } else {
            TemplateChange::Redefined
        };
        assert_eq!(p.templates[0].change, want);
    }
    assert_eq!(cache.template_count(), 1);
    assert_eq!(cache.index_sizes(), (1, 1));
}

#[test]
fn template_flood_memory_stays_bounded() {
    // 40 exporters x 3 domains, each sending full datagrams of 16-field
    // templates with fresh ids: stored fields never exceed the caps' product.
    let limits = Limits {
        max_scopes: 6,
        max_templates_per_scope: 10,
        max_fields_per_template: 16,
        ..Limits::default()
    };
    let mut cache = TemplateCache::with_limits(limits);
    let fields: Vec<(u16, u16)> = (1..=16).map(|i| (i, 4)).collect();
    let mut next_id = 256u16;
    for e in 0..40u8 {
        for domain in 0..3 {
            // 68-byte records: 960 of them fill a 65 535-byte datagram.
            let records: Vec<Vec<u8>> = (0..960)
                .map(|_| {
                    next_id = next_id.checked_add(1).unwrap_or(256).max(256);
                    template_record(next_id, &fields)
                })
                .collect();
            let msg = ipfix(domain, &[ipfix_templates(&records)]);
            assert!(msg.len() <= 65_535);
            let p = parse_packet_from(exporter(e), &msg, &mut cache).unwrap();
            assert!(p.errors.is_empty());
            assert_within_caps(&cache);
            assert!(cache.field_count() <= 6 * 10 * 16);
        }
    }
    assert_eq!(cache.template_count(), 60);
    assert_eq!(cache.field_count(), 960);
}

// ---------------------------------------------------------------------------
// Data waiting for templates: the per-exporter byte limit.

#[test]
fn pending_flood_from_one_exporter_evicts_only_its_own_sets() {
    let limits = PendingLimits {
        max_sets: 1000,
        max_bytes: 100_000,
        max_bytes_per_exporter: 1000,
        max_age_ms: 60_000,
    };
    let mut decoder = Decoder::new(TemplateCache::new(), PendingBuffer::new(limits));
    let quiet = exporter(1);
    let noisy = exporter(2);
    // A data set of 100 body bytes for a template nobody announced.
    let data = ipfix(0, &[set(300, &[7u8; 100])]);
    let d = decoder.decode(quiet, &data, 1000, 0).unwrap();
    assert!(d.dropped.is_empty());
    let mut dropped_tags = Vec::new();
    for tag in 0..50u64 {
        let d = decoder.decode(noisy, &data, tag, 1).unwrap();
        dropped_tags.extend(d.dropped.iter().map(|s| s.tag));
        assert!(d.dropped.iter().all(|s| s.key.scope.exporter == noisy));
        assert!(decoder.pending.exporter_bytes(noisy) <= 1000);
    }
    // The noisy exporter keeps its 10 newest sets; its 40 oldest went, in order.
    assert_eq!(dropped_tags, (0..40).collect::<Vec<_>>());
    assert_eq!(decoder.pending.exporter_bytes(noisy), 1000);
    assert_eq!(decoder.pending.exporter_bytes(quiet), 100);
    assert_eq!(decoder.pending.len(), 11);
    let st = decoder.pending.stats();
    assert_eq!((st.dropped_exporter_capacity, st.dropped_capacity), (40, 0));
    // The quiet exporter's set is still there and replays when its template comes.
    let t = ipfix(0, &[ipfix_templates(&[template_record(300, &[(8, 4)])])]);
    let d = decoder.decode(quiet, &t, 2000, 2).unwrap();
    assert_eq!(d.replayed.len(), 1);
    assert_eq!(d.replayed[0].pending.tag, 1000);
    assert_eq!(d.replayed[0].data_set().record_count, 25);
}

#[test]
fn pending_set_larger_than_the_exporter_limit_is_dropped_at_once() {
    let limits = PendingLimits {
        max_bytes_per_exporter: 64,
        ..PendingLimits::default()
    };
    let mut decoder = Decoder::new(TemplateCache::new(), PendingBuffer::new(limits));
    let data = ipfix(0, &[set(300, &[7u8; 65])]);
    let d = decoder.decode(exporter(1), &data, 5, 0).unwrap();
    assert_eq!(d.dropped.len(), 1);
    assert_eq!(d.dropped[0].tag, 5);
    assert!(decoder.pending.is_empty());
    assert_eq!(decoder.pending.stats().dropped_exporter_capacity, 1);
}
