//! `Columns::for_each_value` reads runs of side-by-side columns of the same
//! fixed-size type ("spans") with one dispatch, and sets of one or two
//! records of templates made mostly of spans row by row. These tests build
//! IPFIX messages by hand (RFC 7011 sections 3.1, 3.3, 3.4.1) and check that
//! it yields exactly what `Record::fields()` yields, transposed (column by
//! column, each column in record order), for templates with and without
//! spans, padding inside and between spans, spans longer than 255 columns,
//! records shorter than 8 bytes, and 0 to 8 and 13 records a set (1 to 6
//! are read by straight-line code, 7 on by a loop of two records a turn:
//! odd and even counts); plus one set
//! whose values are written out by hand, and sets whose template's public
//! `record_len` was changed after it was compiled (columns are read with
//! the compiled length, without a check per value).

use std::net::{Ipv4Addr, Ipv6Addr};

use netflow::{parse_packet, TemplateCache, Value};

mod inputs_support;
use inputs_support::{ipfix_message as message, set};

/// A template set with one template (id 256) of `(element id, length)`.
fn template_set(fields: &[(u16, u16)]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(256u16.to_be_bytes());
    t.extend((fields.len() as u16).to_be_bytes());
    for &(id, len) in fields {
        t.extend(id.to_be_bytes());
        t.extend(len.to_be_bytes());
    }
    set(2, &t)
}

/// Elements and lengths that decode with each fixed-size step (and some
/// that do not), from the IANA registry.
const MENU: &[(u16, u16)] = &[
    (4, 1),   // protocolIdentifier, unsigned8
    (7, 2),   // sourceTransportPort, unsigned16
    (10, 4),  // ingressInterface, unsigned32
    (1, 8),   // octetDeltaCount, unsigned64
    (1, 4),   // octetDeltaCount, reduced to 4 bytes
    (1, 2),   // ... to 2
    (1, 1),   // ... to 1
    (1, 3),   // ... to 3 (not a fixed-size step)
    (1, 6),   // ... to 6
    (8, 4),   // sourceIPv4Address
    (27, 16), // sourceIPv6Address
    (56, 6),  // sourceMacAddress
    (150, 4), // flowStartSeconds
    (152, 8), // flowStartMilliseconds
    (434, 4), // mibObjectValueInteger, signed32
    (311, 8), // samplingProbability, float64
    (276, 1), // dataRecordsReliability, boolean
    (82, 5),  // interfaceName, string
    (210, 3), // paddingOctets: not a column
    (999, 4), // unassigned: bytes
    (56, 5),  // a MAC address of 5 bytes: bytes
];

/// xorshift64*, so the cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The (field name, value) pairs `fields()` gives, transposed.
fn want(bytes: &[u8]) -> Vec<(String, String)> {
    let mut cache = TemplateCache::new();
    let p = parse_packet(bytes, &mut cache).unwrap();
    let mut all = Vec::new();
    for ds in &p.data_sets {
        let rows: Vec<Vec<(String, String)>> = ds
            .records()
            .map(|r| {
                r.fields()
                    .map(|(f, v)| (f.name.to_string(), format!("{v:?}")))
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), ds.record_count);
        let n = rows.first().map_or(0, Vec::len);
        all.extend((0..n).flat_map(|i| rows.iter().map(move |r| r[i].clone())));
    }
    all
}

/// What `for_each_value` gives, from column `skip` of each set on (every
/// set of these messages has columns).
fn got(bytes: &[u8], skip: usize) -> Vec<(String, String)> {
    let mut cache = TemplateCache::new();
    let p = parse_packet(bytes, &mut cache).unwrap();
    let mut all = Vec::new();
    for ds in &p.data_sets {
        let mut columns = ds.columns().expect("fixed-length template");
        for _ in 0..skip {
            columns.next();
        }
        columns.for_each_value(|f, v| all.push((f.name.to_string(), format!("{v:?}"))));
    }
    all
}

/// One message: the template of `fields`, then a data set of `records`
/// records of random bytes.
fn case(fields: &[(u16, u16)], records: usize, rng: &mut Rng) -> Vec<u8> {
    let len: usize = fields.iter().map(|f| f.1 as usize).sum();
    let data: Vec<u8> = (0..len * records).map(|_| rng.next() as u8).collect();
    message(&[template_set(fields), set(256, &data)])
}

fn check(fields: &[(u16, u16)], rng: &mut Rng, what: &str) {
    let columns = fields.iter().filter(|f| f.0 != 210).count();
    // Sets of 8 and 13 records too: long columns (a set of 12 records in
    // the seed v9 packets), read with one load a value.
    for records in (0..=8).chain([13]) {
        let bytes = case(fields, records, rng);
        let want = want(&bytes);
        assert_eq!(want.len(), columns * records, "{what}: {records} records");
        assert_eq!(got(&bytes, 0), want, "{what}: {records} records");
        for skip in [1, columns / 2, columns.saturating_sub(1)] {
            let want_rest = &want[(skip * records).min(want.len())..];
            assert_eq!(
                got(&bytes, skip),
                want_rest,
                "{what}: {records} records, from column {skip}"
            );
        }
    }
}

#[test]
fn random_templates_read_as_fields() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..3000 {
        // Runs of one element, so templates with long spans come up often.
        let mut fields = Vec::new();
        let runs = 1 + rng.below(8);
        for _ in 0..runs {
            let f = MENU[rng.below(MENU.len())];
            let most = if rng.below(4) == 0 { 12 } else { 4 };
            let n = 1 + rng.below(most);
            fields.extend(std::iter::repeat_n(f, n));
        }
        check(&fields, &mut rng, &format!("case {case}: {fields:?}"));
    }
}

#[test]
fn typical_templates_read_as_fields() {
    let mut rng = Rng(7);
    // Like the seed IPFIX packet's (mostly spans) and pmacct's (mostly
    // single columns) templates.
    let seed_like = [
        (8, 4),
        (12, 4),
        (2, 4),
        (1, 4),
        (10, 4),
        (14, 4),
        (21, 4),
        (22, 4),
        (7, 2),
        (4, 1),
        (5, 1),
        (11, 2),
        (58, 2),
        (56, 6),
        (80, 6),
    ];
    check(&seed_like, &mut rng, "seed-like");
    let v6_like = [(27, 16), (28, 16), (2, 4), (1, 4), (7, 2), (11, 2), (4, 1)];
    check(&v6_like, &mut rng, "IPv6");
    let pmacct_like = [
        (152, 8),
        (153, 8),
        (1, 8),
        (2, 8),
        (4, 1),
        (10, 4),
        (14, 4),
        (6, 1),
        (8, 4),
        (12, 4),
        (5, 1),
        (9, 1),
        (7, 2),
        (11, 2),
        (13, 1),
        (16, 4),
        (17, 4),
        (56, 6),
        (80, 6),
        (58, 2),
    ];
    check(&pmacct_like, &mut rng, "pmacct-like");
    // Padding inside a run of counters, and at the ends.
    let padded = [
        (210, 2),
        (2, 4),
        (1, 4),
        (210, 4),
        (10, 4),
        (14, 4),
        (210, 1),
    ];
    check(&padded, &mut rng, "padding");
    // Records shorter than 8 bytes.
    check(&[(4, 1), (5, 1)], &mut rng, "2-byte records");
    check(&[(7, 2), (11, 2), (4, 1)], &mut rng, "5-byte records");
    // A span longer than 255 columns is cut.
    check(&[(4, 1); 600], &mut rng, "600 one-byte columns");
    check(&[(10, 4); 300], &mut rng, "300 four-byte columns");
}

/// Two records of a template of spans (8 columns in 4 spans: read row by
/// row), values written out by hand.
#[test]
fn two_records_by_hand() {
    let fields = [
        (8, 4),
        (12, 4),
        (2, 4),
        (1, 4),
        (10, 4),
        (7, 2),
        (11, 2),
        (56, 6),
    ];
    let mut data = Vec::new();
    for r in 0..2u8 {
        data.extend([10, 0, 0, 1 + r]); // sourceIPv4Address
        data.extend([192, 168, r, 9]); // destinationIPv4Address
        data.extend((100 + r as u32).to_be_bytes()); // packetDeltaCount
        data.extend((5000 + r as u32).to_be_bytes()); // octetDeltaCount
        data.extend(3u32.to_be_bytes()); // ingressInterface
        data.extend((1024 + r as u16).to_be_bytes()); // sourceTransportPort
        data.extend(443u16.to_be_bytes()); // destinationTransportPort
        data.extend([2, 0, 0, 0, 0, r]); // sourceMacAddress
    }
    let bytes = message(&[template_set(&fields), set(256, &data)]);
    let mut cache = TemplateCache::new();
    let p = parse_packet(&bytes, &mut cache).unwrap();
    let mut values = Vec::new();
    p.data_sets[0]
        .columns()
        .unwrap()
        .for_each_value(|f, v| values.push((f.spec.field.id, v)));
    let want = vec![
        (8, Value::Ipv4(Ipv4Addr::new(10, 0, 0, 1))),
        (8, Value::Ipv4(Ipv4Addr::new(10, 0, 0, 2))),
        (12, Value::Ipv4(Ipv4Addr::new(192, 168, 0, 9))),
        (12, Value::Ipv4(Ipv4Addr::new(192, 168, 1, 9))),
        (2, Value::Unsigned(100)),
        (2, Value::Unsigned(101)),
        (1, Value::Unsigned(5000)),
        (1, Value::Unsigned(5001)),
        (10, Value::Unsigned(3)),
        (10, Value::Unsigned(3)),
        (7, Value::Unsigned(1024)),
        (7, Value::Unsigned(1025)),
        (11, Value::Unsigned(443)),
        (11, Value::Unsigned(443)),
        (56, Value::Mac([2, 0, 0, 0, 0, 0])),
        (56, Value::Mac([2, 0, 0, 0, 0, 1])),
    ];
    assert_eq!(values, want);
    // And one record of IPv6 addresses.
    let fields = [(27, 16), (28, 16)];
    let mut data = Vec::new();
    data.extend(Ipv6Addr::LOCALHOST.octets());
    data.extend(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
    let bytes = message(&[template_set(&fields), set(256, &data)]);
    let p = parse_packet(&bytes, &mut cache).unwrap();
    let mut values = Vec::new();
    p.data_sets[0]
        .columns()
        .unwrap()
        .for_each_value(|_, v| values.push(v));
    assert_eq!(
        values,
        [
            Value::Ipv6(Ipv6Addr::LOCALHOST),
            Value::Ipv6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
        ]
    );
}

/// A template's `record_len` is public, and its owner may change it: the
/// columns are read with the length the template was compiled with (the
/// column reads have no check per value, and rely on it), so a set reads
/// the same values whatever `record_len` then says, through
/// `for_each_value` and through `Column::for_each`.
#[test]
fn columns_ignore_a_changed_record_len() {
    let fields = [(8, 4), (7, 2), (1, 8), (56, 6), (27, 16), (4, 1)];
    let mut rng = Rng(7);
    for records in [1, 2, 3, 8] {
        let bytes = case(&fields, records, &mut rng);
        let want = want(&bytes);
        let mut cache = TemplateCache::new();
        let p = parse_packet(&bytes, &mut cache).unwrap();
        for record_len in [None, Some(0), Some(1), Some(36), Some(38), Some(1 << 20)] {
            let mut ds = p.data_sets[0].clone();
            let mut template = (*ds.template).clone();
            template.record_len = record_len;
            ds.template = std::sync::Arc::new(template);
            let Some(columns) = ds.columns() else {
                assert_eq!(record_len, None, "{records} records");
                continue;
            };
            let mut by_value = Vec::new();
            columns
                .clone()
                .for_each_value(|f, v| by_value.push((f.name.to_string(), format!("{v:?}"))));
            assert_eq!(
                by_value, want,
                "{records} records, record_len {record_len:?}"
            );
            let mut by_column = Vec::new();
            for c in columns {
                let name = c.field().name.to_string();
                c.for_each(|v| by_column.push((name.clone(), format!("{v:?}"))));
            }
            assert_eq!(
                by_column, want,
                "{records} records, record_len {record_len:?}"
            );
        }
    }
}
