//! Hand-built packets for the corners of RFC 3954 (v9), RFC 7011/7012 (IPFIX),
//! RFC 6313 (structured data) and RFC 5103 (reverse elements). Every packet is
//! written byte by byte from the RFC text, not produced by our encoder.

use netflow::list::ListKind;
use netflow::{
    parse_packet, ErrorKind, ExporterId, Limits, TemplateCache, TemplateChange, TemplateKind, Value,
};

fn u16b(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}
fn u32b(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// IPFIX message: header (RFC 7011 section 3.1) + sets, length filled in.
fn ipfix(domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = sets.concat();
    let mut m = Vec::new();
    m.extend(u16b(10));
    m.extend(u16b((16 + body.len()) as u16));
    m.extend(u32b(1_700_000_000));
    m.extend(u32b(7));
    m.extend(u32b(domain));
    m.extend(body);
    m
}

/// A set: id, length (header included), content.
fn set(id: u16, content: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(u16b(id));
    s.extend(u16b((4 + content.len()) as u16));
    s.extend(content);
    s
}

/// v9 packet: header (RFC 3954 section 5.1) + flowsets.
fn v9(source_id: u32, count: u16, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(u16b(9));
    m.extend(u16b(count));
    m.extend(u32b(123_456));
    m.extend(u32b(1_700_000_000));
    m.extend(u32b(1));
    m.extend(u32b(source_id));
    m.extend(sets.concat());
    m
}

#[test]
fn v9_options_template_and_options_data_with_padding() {
    // RFC 3954 section 6.1: options template 257, scope Interface(2)/4,
    // options SAMPLING_INTERVAL(34)/4 and SAMPLING_ALGORITHM(35)/1: record = 9 bytes.
    let mut tmpl = Vec::new();
    tmpl.extend(u16b(257));
    tmpl.extend(u16b(4)); // scope length in bytes
    tmpl.extend(u16b(8)); // option length in bytes
    tmpl.extend([0, 2, 0, 4, 0, 34, 0, 4, 0, 35, 0, 1]);
    tmpl.extend([0, 0]); // padding to a 4-byte boundary
                         // Options data flowset: two 9-byte records + 2 bytes padding = 4 + 18 + 2 = 24.
    let mut data = Vec::new();
    data.extend(u32b(3)); // interface 3
    data.extend(u32b(100)); // 1 out of 100
    data.push(2); // random sampling
    data.extend(u32b(4));
    data.extend(u32b(1000));
    data.push(1);
    data.extend([0, 0]);
    let pkt = v9(0, 3, &[set(1, &tmpl), set(257, &data)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&pkt, &mut cache).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.templates.len(), 1);
    assert_eq!(p.templates[0].kind, TemplateKind::Options);
    assert_eq!(p.data_sets.len(), 1);
    assert!(p.data_sets[0].is_options());
    // The original decodes an extra all-zero record from the padding; we must not.
    let recs: Vec<_> = p.records().collect();
    assert_eq!(recs.len(), 2);
    let fields: Vec<_> = recs[1]
        .fields()
        .map(|(f, v)| (f.name.to_string(), f.id_key.to_string(), v))
        .collect();
    assert_eq!(
        fields,
        vec![
            (
                "scope:Interface".into(),
                "scope:2".into(),
                Value::Unsigned(4)
            ),
            (
                "SAMPLING_INTERVAL".into(),
                "34".into(),
                Value::Unsigned(1000)
            ),
            ("SAMPLING_ALGORITHM".into(), "35".into(), Value::Unsigned(1)),
        ]
    );
}

#[test]
fn v9_tiny_records_are_all_decoded() {
    // Template 300: one 2-byte field (L4_SRC_PORT). Data flowset of length 8 = 2 records.
    // The original decodes only one of them (spec section 5.4).
    let tmpl = [1, 44, 0, 1, 0, 7, 0, 2];
    let data = [0, 80, 1, 187];
    let pkt = v9(0, 3, &[set(0, &tmpl), set(300, &data)]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    let ports: Vec<_> = p.records().map(|r| r.get("L4_SRC_PORT").unwrap()).collect();
    assert_eq!(ports, vec![Value::Unsigned(80), Value::Unsigned(443)]);
}

#[test]
fn v9_unknown_field_types_keep_their_id_and_bytes() {
    // Types 43 and 65 are not in the v9/IANA tables; each keeps its id and raw bytes.
    let tmpl = [1, 44, 0, 2, 0, 65, 0, 3, 0, 43, 0, 1];
    let data = [0xaa, 0xbb, 0xcc, 0x01, 0, 0, 0, 0];
    let pkt = v9(0, 2, &[set(0, &tmpl), set(300, &data)]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    let r = p.records().next().unwrap();
    let f: Vec<_> = r
        .fields()
        .map(|(f, v)| (f.id_key.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        f,
        vec![("65".into(), "aabbcc".into()), ("43".into(), "01".into())]
    );
}

#[test]
fn v9_zero_length_template_is_rejected_not_looped() {
    // A template with zero fields (spec bug 3: infinite loop upstream).
    let tmpl = [1, 44, 0, 0];
    let data = [1, 2, 3, 4];
    let pkt = v9(0, 2, &[set(0, &tmpl), set(300, &data)]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.errors[0].kind, ErrorKind::EmptyTemplate(300));
    assert_eq!(p.errors[0].offset, 24);
    assert_eq!(p.missing.len(), 1);
}

#[test]
fn v9_template_redefinition_uses_the_new_layout() {
    let mut cache = TemplateCache::new();
    let t1 = v9(0, 1, &[set(0, &[1, 44, 0, 1, 0, 7, 0, 2])]);
    let t2 = v9(0, 1, &[set(0, &[1, 44, 0, 1, 0, 8, 0, 4])]);
    let p = parse_packet(&t1, &mut cache).unwrap();
    assert_eq!(p.templates[0].change, TemplateChange::Learned);
    let p = parse_packet(&t1, &mut cache).unwrap();
    assert_eq!(p.templates[0].change, TemplateChange::Refreshed);
    let p = parse_packet(&t2, &mut cache).unwrap();
    assert_eq!(p.templates[0].change, TemplateChange::Redefined);
    let d = v9(0, 1, &[set(300, &[10, 0, 0, 1])]);
    let p = parse_packet(&d, &mut cache).unwrap();
    assert_eq!(
        p.records().next().unwrap().get("IPV4_SRC_ADDR"),
        Some(Value::Ipv4([10, 0, 0, 1].into()))
    );
}

#[test]
fn v9_source_ids_are_separate_scopes() {
    let mut cache = TemplateCache::new();
    parse_packet(&v9(1, 1, &[set(0, &[1, 44, 0, 1, 0, 7, 0, 2])]), &mut cache).unwrap();
    parse_packet(&v9(2, 1, &[set(0, &[1, 44, 0, 1, 0, 8, 0, 4])]), &mut cache).unwrap();
    let msg1 = v9(1, 1, &[set(300, &[0, 80, 0, 0])]);
    let p1 = parse_packet(&msg1, &mut cache).unwrap();
    let msg2 = v9(2, 1, &[set(300, &[10, 0, 0, 1])]);
    let p2 = parse_packet(&msg2, &mut cache).unwrap();
    assert_eq!(
        p1.records().next().unwrap().get("L4_SRC_PORT"),
        Some(Value::Unsigned(80))
    );
    assert_eq!(
        p2.records().next().unwrap().get("IPV4_SRC_ADDR"),
        Some(Value::Ipv4([10, 0, 0, 1].into()))
    );
}

#[test]
fn v9_bad_flowset_lengths() {
    // Length 2 (< 4): an error, the walk stops.
    let mut pkt = v9(0, 1, &[]);
    pkt.extend([1, 44, 0, 2]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(
        p.errors[0].kind,
        ErrorKind::BadSetLength {
            set_id: 300,
            length: 2
        }
    );
    assert_eq!(p.errors[0].offset, 20);
    // Length past the end of the datagram.
    let mut pkt = v9(0, 1, &[]);
    pkt.extend([1, 44, 0, 40, 0, 0, 0, 0]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(
        p.errors[0].kind,
        ErrorKind::BadSetLength {
            set_id: 300,
            length: 40
        }
    );
    // Reserved flowset id 7.
    let pkt = v9(0, 1, &[set(7, &[0, 0, 0, 0])]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.errors[0].kind, ErrorKind::ReservedSetId(7));
}

/// IPFIX template set with one template record.
fn ipfix_template(id: u16, specs: &[u8], count: u16) -> Vec<u8> {
    let mut c = Vec::new();
    c.extend(u16b(id));
    c.extend(u16b(count));
    c.extend(specs);
    set(2, &c)
}

#[test]
fn ipfix_variable_length_both_forms() {
    // RFC 7011 section 7: interfaceName(82) variable length, then ingressInterface(10)/4.
    let t = ipfix_template(256, &[0, 82, 0xff, 0xff, 0, 10, 0, 4], 2);
    let mut data = Vec::new();
    data.push(4); // 1-byte length form
    data.extend(b"eth0");
    data.extend(u32b(1));
    data.push(255); // 3-byte length form
    data.extend(u16b(300));
    data.extend(vec![b'x'; 300]);
    data.extend(u32b(2));
    data.push(0); // zero-length value
    data.extend(u32b(3));
    let msg = ipfix(1, &[t, set(256, &data)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let recs: Vec<_> = p.records().collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].get("interfaceName"), Some(Value::String("eth0")));
    assert_eq!(recs[0].get("ingressInterface"), Some(Value::Unsigned(1)));
    assert_eq!(
        recs[1].get("interfaceName"),
        Some(Value::String(&"x".repeat(300)))
    );
    assert_eq!(recs[1].get("ingressInterface"), Some(Value::Unsigned(2)));
    assert_eq!(recs[2].get("interfaceName"), Some(Value::String("")));
    assert_eq!(recs[2].get("ingressInterface"), Some(Value::Unsigned(3)));
}

#[test]
fn ipfix_variable_length_past_the_end_is_an_error() {
    let t = ipfix_template(256, &[0, 82, 0xff, 0xff], 1);
    let data = [3, b'a', b'b', b'c', 200, b'x'];
    let msg = ipfix(1, &[t, set(256, &data)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 1);
    assert_eq!(
        p.errors[0].kind,
        ErrorKind::RecordTruncated { template_id: 256 }
    );
}

#[test]
fn ipfix_enterprise_and_reverse_elements() {
    // Field specifiers with the enterprise bit (RFC 7011 section 3.2):
    // 29305/1 reverseOctetDeltaCount (RFC 5103), 6871/14 (CERT), 99999/5 unknown.
    let mut specs = Vec::new();
    specs.extend([0x80, 0x01, 0, 8]);
    specs.extend(u32b(29305));
    specs.extend([0x80, 0x0e, 0, 1]);
    specs.extend(u32b(6871));
    specs.extend([0x80, 0x05, 0, 2]);
    specs.extend(u32b(99999));
    let t = ipfix_template(300, &specs, 3);
    let mut data = Vec::new();
    data.extend(1234u64.to_be_bytes());
    data.push(0x12);
    data.extend([0xbe, 0xef]);
    let msg = ipfix(0, &[t, set(300, &data)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    let r = p.records().next().unwrap();
    let f: Vec<_> = r
        .fields()
        .map(|(f, v)| (f.name.to_string(), f.id_key.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        f[0],
        (
            "reverseOctetDeltaCount".into(),
            "29305:1".into(),
            "1234".into()
        )
    );
    assert_eq!(f[1].1, "6871:14");
    assert_ne!(f[1].0, "6871:14", "CERT element 14 has a name");
    assert_eq!(f[2], ("99999:5".into(), "99999:5".into(), "beef".into()));
}

#[test]
fn ipfix_reduced_size_encoding() {
    // RFC 7011 section 6.2: octetDeltaCount (unsigned64) in 3 bytes, packetDeltaCount in 1,
    // sourceIPv4Address normal.
    let t = ipfix_template(256, &[0, 1, 0, 3, 0, 2, 0, 1, 0, 8, 0, 4], 3);
    let data = [0x01, 0x00, 0x00, 0x07, 192, 0, 2, 1];
    let msg = ipfix(0, &[t, set(256, &data)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    let r = p.records().next().unwrap();
    assert_eq!(r.get("octetDeltaCount"), Some(Value::Unsigned(65536)));
    assert_eq!(r.get("packetDeltaCount"), Some(Value::Unsigned(7)));
    assert_eq!(
        r.get("sourceIPv4Address"),
        Some(Value::Ipv4([192, 0, 2, 1].into()))
    );
}

#[test]
fn ipfix_withdrawal_one_and_all() {
    let mut cache = TemplateCache::new();
    let t = [
        ipfix_template(256, &[0, 8, 0, 4], 1),
        ipfix_template(257, &[0, 12, 0, 4], 1),
    ];
    parse_packet(&ipfix(0, &t), &mut cache).unwrap();
    assert_eq!(cache.template_count(), 2);
    // Withdraw 256: template record with field count 0 (RFC 7011 section 8.1).
    let msg3 = ipfix(0, &[set(2, &[1, 0, 0, 0])]);
    let p = parse_packet(&msg3, &mut cache).unwrap();
    assert_eq!(p.templates[0].change, TemplateChange::Withdrawn);
    assert_eq!(cache.template_count(), 1);
    let msg4 = ipfix(0, &[set(256, &[1, 2, 3, 4])]);
    let p = parse_packet(&msg4, &mut cache).unwrap();
    assert_eq!(p.missing.len(), 1);
    // Withdraw all: template id 2 (= the set id) with field count 0.
    let msg5 = ipfix(0, &[set(2, &[0, 2, 0, 0])]);
    let p = parse_packet(&msg5, &mut cache).unwrap();
    assert_eq!(p.templates.len(), 1);
    assert_eq!(p.templates[0].template_id, 257);
    assert_eq!(cache.template_count(), 0);
    // A withdrawn id can be defined again.
    parse_packet(
        &ipfix(0, &[ipfix_template(257, &[0, 7, 0, 2], 1)]),
        &mut cache,
    )
    .unwrap();
    assert_eq!(cache.template_count(), 1);
}

#[test]
fn ipfix_options_template_scope_and_set_padding() {
    // Options template 400 (RFC 7011 section 3.4.2.2): 2 fields, 1 scope field:
    // observationDomainId(149)/4 scope, exportedFlowRecordTotalCount(42)/8. Then 2 padding bytes.
    let mut c = Vec::new();
    c.extend(u16b(400));
    c.extend(u16b(2));
    c.extend(u16b(1));
    c.extend([0, 149, 0, 4, 0, 42, 0, 8]);
    c.extend([0, 0]);
    let opts = set(3, &c);
    // Data set with one 12-byte record and 3 bytes of zero padding (RFC 7011 section 3.3.1).
    let mut d = Vec::new();
    d.extend(u32b(9));
    d.extend(5000u64.to_be_bytes());
    d.extend([0, 0, 0]);
    let msg = ipfix(9, &[opts, set(400, &d)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert!(p.data_sets[0].is_options());
    let r = p.records().next().unwrap();
    let f: Vec<_> = r
        .fields()
        .map(|(f, v)| (f.scope, f.name.to_string(), v))
        .collect();
    assert_eq!(
        f[0],
        (true, "observationDomainId".into(), Value::Unsigned(9))
    );
    assert_eq!(
        f[1],
        (
            false,
            "exportedFlowRecordTotalCount".into(),
            Value::Unsigned(5000)
        )
    );
    assert_eq!(p.record_count(), 1);
}

#[test]
fn ipfix_nonzero_bytes_after_records_are_reported() {
    let t = ipfix_template(256, &[0, 8, 0, 4], 1);
    let msg = ipfix(0, &[t, set(256, &[10, 0, 0, 1, 0xff, 0])]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 1);
    assert_eq!(
        p.errors[0].kind,
        ErrorKind::NonZeroPadding {
            template_id: 256,
            length: 2
        }
    );
}

#[test]
fn ipfix_reserved_set_ids_and_bad_lengths() {
    let msg6 = ipfix(0, &[set(1, &[0; 4]), set(100, &[0; 4])]);
    let p = parse_packet(&msg6, &mut TemplateCache::new()).unwrap();
    let kinds: Vec<_> = p.errors.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![ErrorKind::ReservedSetId(1), ErrorKind::ReservedSetId(100)]
    );
    // Message length larger than the datagram.
    let mut msg = ipfix(0, &[]);
    msg[3] = 200;
    let e = parse_packet(&msg, &mut TemplateCache::new()).unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::BadMessageLength {
            length: 200,
            datagram: 16
        }
    ));
    // Template id below 256.
    let msg7 = ipfix(0, &[ipfix_template(255, &[0, 8, 0, 4], 1)]);
    let p = parse_packet(&msg7, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.errors[0].kind, ErrorKind::ReservedTemplateId(255));
}

#[test]
fn structured_data_lists() {
    // RFC 6313 section 4.5.1 basicList of destinationTransportPort(11)/2, semantic allOf.
    // Template 256: basicList(291) variable, then subTemplateList(292) variable.
    // Template 257: sourceIPv4Address(8)/4, protocolIdentifier(4)/1 (for the sub-template list).
    let t = [
        ipfix_template(257, &[0, 8, 0, 4, 0, 4, 0, 1], 2),
        ipfix_template(
            256,
            &[
                0x01, 0x23, 0xff, 0xff, 0x01, 0x24, 0xff, 0xff, 0x01, 0x25, 0xff, 0xff,
            ],
            3,
        ),
    ];
    let mut rec = Vec::new();
    // basicList: semantic 3, field id 11, element length 2, three ports.
    let bl = [3u8, 0, 11, 0, 2, 0, 80, 1, 187, 0x1f, 0x90];
    rec.push(bl.len() as u8);
    rec.extend(bl);
    // subTemplateList: semantic 4 (ordered), template 257, two records.
    let stl = [4u8, 1, 1, 10, 0, 0, 1, 6, 10, 0, 0, 2, 17];
    rec.push(stl.len() as u8);
    rec.extend(stl);
    // subTemplateMultiList: semantic 3, one block of template 257 with one record (4+5 bytes).
    let stml = [3u8, 1, 1, 0, 9, 192, 0, 2, 1, 1];
    rec.push(stml.len() as u8);
    rec.extend(stml);
    let msg = ipfix(0, &[t[0].clone(), t[1].clone(), set(256, &rec)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let r = p.records().next().unwrap();
    let values: Vec<_> = r.fields().map(|(_, v)| v).collect();
    let Value::List(basic) = &values[0] else {
        panic!("{:?}", values[0])
    };
    assert_eq!(basic.semantic, 3);
    assert!(matches!(basic.kind, ListKind::Basic { .. }));
    assert_eq!(basic.element_name().unwrap(), "destinationTransportPort");
    let ports: Vec<_> = basic.values().collect();
    assert_eq!(
        ports,
        vec![
            Value::Unsigned(80),
            Value::Unsigned(443),
            Value::Unsigned(8080)
        ]
    );
    let Value::List(stl) = &values[1] else {
        panic!()
    };
    assert_eq!(stl.kind, ListKind::SubTemplate { template_id: 257 });
    let recs: Vec<_> = stl.records().map(|r| r.unwrap()).collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        recs[1].get("sourceIPv4Address"),
        Some(Value::Ipv4([10, 0, 0, 2].into()))
    );
    assert_eq!(recs[1].get("protocolIdentifier"), Some(Value::Unsigned(17)));
    let Value::List(stml) = &values[2] else {
        panic!()
    };
    let recs: Vec<_> = stml.records().map(|r| r.unwrap()).collect();
    assert_eq!(recs.len(), 1);
    assert_eq!(
        recs[0].get("sourceIPv4Address"),
        Some(Value::Ipv4([192, 0, 2, 1].into()))
    );
    // JSON: lists become arrays.
    let json = serde_json::to_string(&netflow::serde_impl::RecordSer {
        record: &r,
        keys: Default::default(),
    })
    .unwrap();
    assert!(json.contains(r#""basicList":[80,443,8080]"#), "{json}");
    assert!(
        json.contains(r#"{"sourceIPv4Address":"10.0.0.2","protocolIdentifier":17}"#),
        "{json}"
    );
}

#[test]
fn list_nesting_is_capped() {
    // subTemplateList whose template 256 is itself a subTemplateList of 256: a nesting bomb.
    let t = ipfix_template(256, &[0x01, 0x24, 0xff, 0xff], 1);
    // Build 12 levels of nesting: each level = [len][semantic 0][template 256 hi lo][inner...]
    let mut inner: Vec<u8> = vec![];
    for _ in 0..12 {
        let mut lvl = vec![0u8, 1, 0];
        lvl.extend(&inner);
        let mut with_len = vec![lvl.len() as u8];
        with_len.extend(lvl);
        inner = with_len;
    }
    let msg = ipfix(0, &[t, set(256, &inner)]);
    let limits = Limits {
        max_list_depth: 4,
        ..Limits::default()
    };
    let p = parse_packet(&msg, &mut TemplateCache::with_limits(limits)).unwrap();
    let r = p.records().next().unwrap();
    let mut depth = 0;
    let mut v = r.fields().next().unwrap().1;
    while let Value::List(l) = v {
        depth += 1;
        let Some(Ok(rec)) = l.records().next() else {
            break;
        };
        v = rec.fields().next().unwrap().1;
    }
    assert_eq!(depth, 4);
    assert!(matches!(v, Value::Bytes(_)));
}

#[test]
fn limits_are_enforced() {
    // Full caps evict the least recently used template / scope (the cases of
    // which one goes are in tests/malformed.rs); a cap of 0 refuses.
    let limits = Limits {
        max_templates_per_scope: 2,
        max_fields_per_template: 3,
        max_scopes: 1,
        ..Limits::default()
    };
    let mut cache = TemplateCache::with_limits(limits);
    let t = [
        ipfix_template(256, &[0, 8, 0, 4], 1),
        ipfix_template(257, &[0, 8, 0, 4], 1),
        ipfix_template(258, &[0, 8, 0, 4], 1),
    ];
    let msg8 = ipfix(0, &t);
    let p = parse_packet(&msg8, &mut cache).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(cache.template_count(), 2);
    assert_eq!(cache.stats().evicted_templates, 1);
    let msg9 = ipfix(
        0,
        &[ipfix_template(
            259,
            &[0, 8, 0, 4, 0, 8, 0, 4, 0, 8, 0, 4, 0, 8, 0, 4],
            4,
        )],
    );
    let p = parse_packet(&msg9, &mut cache).unwrap();
    assert!(matches!(
        p.errors[0].kind,
        ErrorKind::TooManyFields {
            count: 4,
            limit: 3,
            ..
        }
    ));
    // A second domain is a second scope: the first one goes.
    let msg10 = ipfix(1, &[ipfix_template(256, &[0, 8, 0, 4], 1)]);
    let p = parse_packet(&msg10, &mut cache).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(cache.stats().evicted_scopes, 1);
    assert_eq!(cache.stats().templates_in_evicted_scopes, 2);
    assert_eq!(cache.template_count(), 1);

    let mut refusing = TemplateCache::with_limits(Limits {
        max_templates_per_scope: 0,
        ..Limits::default()
    });
    let p = parse_packet(&msg10, &mut refusing).unwrap();
    assert_eq!(
        p.errors[0].kind,
        ErrorKind::TemplateLimit {
            template_id: 256,
            limit: 0
        }
    );
    let mut refusing = TemplateCache::with_limits(Limits {
        max_scopes: 0,
        ..Limits::default()
    });
    let p = parse_packet(&msg10, &mut refusing).unwrap();
    assert_eq!(p.errors[0].kind, ErrorKind::ScopeLimit { limit: 0 });
    assert_eq!(refusing.stats().rejected_scope_limit, 1);
    assert_eq!(refusing.template_count(), 0);
}

#[test]
fn v5_count_larger_than_the_datagram() {
    let mut pkt = vec![0u8; 24 + 48];
    pkt[1] = 5;
    pkt[3] = 2;
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 1);
    assert_eq!(
        p.errors[0].kind,
        ErrorKind::CountMismatch {
            count: 2,
            present: 1
        }
    );
    assert_eq!(p.errors[0].offset, 72);
}

#[test]
fn v7_router_sc() {
    let mut pkt = vec![0u8; 24 + 52];
    pkt[1] = 7;
    pkt[3] = 1;
    pkt[24 + 48..24 + 52].copy_from_slice(&[192, 0, 2, 254]);
    let p = parse_packet(&pkt, &mut TemplateCache::new()).unwrap();
    assert_eq!(
        p.records().next().unwrap().get("ROUTER_SC"),
        Some(Value::Ipv4([192, 0, 2, 254].into()))
    );
}

#[test]
fn same_template_id_from_two_exporters() {
    let a = ExporterId("10.0.0.1:9995".parse().unwrap());
    let b = ExporterId("10.0.0.2:9995".parse().unwrap());
    let mut cache = TemplateCache::new();
    netflow::parse_packet_from(
        a,
        &ipfix(0, &[ipfix_template(256, &[0, 7, 0, 2], 1)]),
        &mut cache,
    )
    .unwrap();
    netflow::parse_packet_from(
        b,
        &ipfix(0, &[ipfix_template(256, &[0, 8, 0, 4], 1)]),
        &mut cache,
    )
    .unwrap();
    let msg11 = ipfix(0, &[set(256, &[0, 53, 0, 0])]);
    let pa = netflow::parse_packet_from(a, &msg11, &mut cache).unwrap();
    let msg12 = ipfix(0, &[set(256, &[10, 9, 8, 7])]);
    let pb = netflow::parse_packet_from(b, &msg12, &mut cache).unwrap();
    assert_eq!(
        pa.records().next().unwrap().get("sourceTransportPort"),
        Some(Value::Unsigned(53))
    );
    assert_eq!(
        pb.records().next().unwrap().get("sourceIPv4Address"),
        Some(Value::Ipv4([10, 9, 8, 7].into()))
    );
}

#[test]
fn zero_length_fields_are_capped() {
    // 17 zero-length fields + one 1-byte field: over the default cap of 16.
    let mut specs = Vec::new();
    for _ in 0..17 {
        specs.extend([0, 1, 0, 0]);
    }
    specs.extend([0, 4, 0, 1]);
    let msg = ipfix(0, &[ipfix_template(256, &specs, 18)]);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert_eq!(
        p.errors[0].kind,
        ErrorKind::ZeroLengthFields {
            template_id: 256,
            count: 17,
            limit: 16
        }
    );
    // A few zero-length fields are fine and decode as empty values.
    let msg = ipfix(
        0,
        &[
            ipfix_template(256, &[0, 82, 0, 0, 0, 4, 0, 1], 2),
            set(256, &[6]),
        ],
    );
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    let r = p.records().next().unwrap();
    assert_eq!(r.get("interfaceName"), Some(Value::String("")));
    assert_eq!(r.get("protocolIdentifier"), Some(Value::Unsigned(6)));
}
