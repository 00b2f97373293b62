//! `visit_packet` hands the visitor exactly the data sets `parse_packet`
//! collects into an `ExportPacket` (same records, values, columns and bytes),
//! and leaves the template cache, the template events, the errors and the
//! sets still waiting for their template as `parse_packet` does: on every
//! packet of every capture and seed vector, on the fuzz corpus, on mutated
//! and truncated packets, with templates missing, defined later in the
//! packet, or holding RFC 6313 lists.
//!
//! Two caches are driven in lockstep, one per API, and compared after every
//! packet; each set is described independently of the API (owned records,
//! owned column values), so an API that drops, repeats, reorders or
//! misdecodes a set, or updates the cache differently, fails here.

mod inputs_support;

use inputs_support::{captures, fuzz_corpus, ipfix_message as ipfix, seeds, set};

use netflow::{
    parse_packet_from, visit_packet, visit_packet_from, DataSet, DataSetView, Decoder,
    ExportPacket, ExporterId, OwnedRecord, OwnedValue, PendingBuffer, PendingLimits, TemplateCache,
    VisitedPacket,
};

/// Everything a consumer can read from one data set.
#[derive(Debug, PartialEq)]
struct SetDesc {
    offset: usize,
    template_id: u16,
    options: bool,
    record_count: usize,
    bytes: Vec<u8>,
    records: Vec<OwnedRecord>,
    /// Per column: the field name and its values (None: no columns).
    columns: Option<Vec<(String, Vec<OwnedValue>)>>,
    v5: Vec<u32>,
}

/// `Columns::for_each_value` yields `fields()` of every record, transposed
/// (column by column, each in record order), by field name and value.
fn check_for_each_value(view: DataSetView<'_>) {
    let Some(columns) = view.columns() else {
        return;
    };
    let rows: Vec<Vec<(String, String)>> = view
        .records()
        .map(|r| {
            r.fields()
                .map(|(f, v)| (f.name.to_string(), format!("{v:?}")))
                .collect()
        })
        .collect();
    let n = rows.first().map_or(0, Vec::len);
    let want: Vec<_> = (0..n)
        .flat_map(|i| rows.iter().map(move |r| r[i].clone()))
        .collect();
    let mut got = Vec::with_capacity(want.len());
    columns.for_each_value(|f, v| got.push((f.name.to_string(), format!("{v:?}"))));
    assert_eq!(got, want, "for_each_value and fields() disagree");
}

fn describe(view: DataSetView<'_>) -> SetDesc {
    check_for_each_value(view);
    let records: Vec<OwnedRecord> = view.records().map(|r| r.to_owned_record()).collect();
    assert_eq!(
        records.len(),
        view.record_count,
        "records() yields record_count records"
    );
    SetDesc {
        offset: view.offset,
        template_id: view.template_id(),
        options: view.is_options(),
        record_count: view.record_count,
        bytes: view.bytes().to_vec(),
        records,
        columns: view.columns().map(|columns| {
            columns
                .map(|c| {
                    let mut values = Vec::new();
                    c.for_each(|v| values.push(OwnedValue::from_value(&v)));
                    (c.field().name.to_string(), values)
                })
                .collect()
        }),
        v5: view
            .v5_records()
            .map(|r| r.src_addr() ^ r.octets())
            .collect(),
    }
}

/// The same description read from an `ExportPacket`'s `DataSet` directly
/// (its own `records()` and `columns()`, not through `view()`).
fn describe_set(set: &DataSet<'_>, packet: &ExportPacket<'_>) -> SetDesc {
    SetDesc {
        offset: set.offset,
        template_id: set.template_id(),
        options: set.is_options(),
        record_count: set.record_count,
        bytes: set.bytes().to_vec(),
        records: set.records().map(|r| r.to_owned_record()).collect(),
        columns: set.columns().map(|columns| {
            columns
                .map(|c| {
                    let mut values = Vec::new();
                    c.for_each(|v| values.push(OwnedValue::from_value(&v)));
                    (c.field().name.to_string(), values)
                })
                .collect()
        }),
        v5: packet
            .v5_records()
            .map(|r| r.src_addr() ^ r.octets())
            .collect(),
    }
}

/// Decode `bytes` with both APIs, each with its own cache, and check they
/// agree (results, sets, lists, caches). Returns the number of sets visited.
fn check(
    exporter: ExporterId,
    bytes: &[u8],
    parsed_cache: &mut TemplateCache,
    visited_cache: &mut TemplateCache,
    what: &str,
) -> usize {
    let parsed = parse_packet_from(exporter, bytes, parsed_cache);
    let mut sets = Vec::new();
    let visited = visit_packet_from(exporter, bytes, visited_cache, |view| {
        sets.push(describe(view))
    });
    let n = match (&parsed, &visited) {
        (Ok(p), Ok(v)) => {
            compare(p, v, &sets, what);
            sets.len()
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{what}: errors");
            assert!(sets.is_empty(), "{what}: visited a packet that failed");
            0
        }
        (p, v) => panic!(
            "{what}: parse_packet {:?}, visit_packet {:?}",
            p.as_ref().map(|_| ()),
            v.as_ref().map(|_| ())
        ),
    };
    assert_eq!(
        parsed_cache.template_count(),
        visited_cache.template_count(),
        "{what}: templates in the caches"
    );
    assert_eq!(
        parsed_cache.scope_count(),
        visited_cache.scope_count(),
        "{what}: scopes in the caches"
    );
    assert_eq!(
        parsed_cache.scopes_by_last_use(),
        visited_cache.scopes_by_last_use(),
        "{what}: scope use order"
    );
    for (key, scope) in parsed_cache.scopes() {
        let other = visited_cache.scope(key).expect("same scopes");
        assert_eq!(
            scope.ids_by_last_use(),
            other.ids_by_last_use(),
            "{what}: template use order in {key:?}"
        );
    }
    n
}

fn compare(p: &ExportPacket<'_>, v: &VisitedPacket<'_>, sets: &[SetDesc], what: &str) {
    assert_eq!(p.exporter, v.exporter, "{what}");
    assert_eq!(p.header, v.header, "{what}: header");
    assert_eq!(p.templates, v.templates, "{what}: template events");
    assert_eq!(p.errors, v.errors, "{what}: errors");
    assert_eq!(p.missing, v.missing, "{what}: missing sets");
    assert_eq!(p.record_count(), v.record_count(), "{what}: record count");
    assert_eq!(p.data_sets.len(), v.data_sets, "{what}: data set count");
    assert_eq!(p.has_new_templates(), v.has_new_templates(), "{what}");
    // Visited in wire order, except those handed over at the end (template
    // later in the packet, or lists), which come after, in wire order too.
    let mut sorted: Vec<&SetDesc> = sets.iter().collect();
    sorted.sort_by_key(|s| s.offset);
    let expected: Vec<SetDesc> = p.data_sets.iter().map(|s| describe_set(s, p)).collect();
    assert_eq!(sorted.len(), expected.len(), "{what}: sets visited");
    for (got, want) in sorted.iter().zip(&expected) {
        assert_eq!(*got, want, "{what}: set at {}", want.offset);
    }
    let descents = sets
        .windows(2)
        .filter(|w| w[1].offset < w[0].offset)
        .count();
    assert!(descents <= 1, "{what}: visit order {:?}", offsets(sets));
}

fn offsets(sets: &[SetDesc]) -> Vec<usize> {
    sets.iter().map(|s| s.offset).collect()
}

fn exporter(port: u16) -> ExporterId {
    ExporterId(([192, 0, 2, 1], port).into())
}

#[test]
fn captures_visit_what_parse_packet_collects() {
    let mut total_sets = 0;
    for (name, payloads) in captures() {
        let (mut a, mut b) = (TemplateCache::new(), TemplateCache::new());
        // Twice: the first pass has data before its templates in some captures.
        for pass in 0..2 {
            for (i, p) in payloads.iter().enumerate() {
                total_sets += check(
                    exporter(1),
                    p,
                    &mut a,
                    &mut b,
                    &format!("{name}[{i}]/{pass}"),
                );
            }
        }
        // Templates missing: a fresh pair of caches from the middle on.
        let (mut a, mut b) = (TemplateCache::new(), TemplateCache::new());
        for (i, p) in payloads.iter().enumerate().skip(payloads.len() / 2) {
            check(exporter(2), p, &mut a, &mut b, &format!("{name}[{i}] cold"));
        }
    }
    assert!(total_sets > 1000, "{total_sets} sets");
}

#[test]
fn seed_vectors_visit_what_parse_packet_collects() {
    let seeds = seeds();
    let (mut a, mut b) = (TemplateCache::new(), TemplateCache::new());
    // In file order (templates first), then again warm, then in reverse on cold caches.
    for round in 0..2 {
        for (name, bytes) in &seeds {
            check(
                exporter(1),
                bytes,
                &mut a,
                &mut b,
                &format!("{name}/{round}"),
            );
        }
    }
    let (mut a, mut b) = (TemplateCache::new(), TemplateCache::new());
    for (name, bytes) in seeds.iter().rev() {
        check(
            exporter(1),
            bytes,
            &mut a,
            &mut b,
            &format!("{name} reversed"),
        );
    }
}

#[test]
fn fuzz_corpus_and_mutations_agree() {
    let mut inputs = fuzz_corpus();
    for (name, payloads) in captures() {
        inputs.extend(
            payloads
                .into_iter()
                .take(6)
                .enumerate()
                .map(|(i, p)| (format!("{name}[{i}]"), p)),
        );
    }
    inputs.extend(seeds());
    assert!(inputs.len() > 100);
    let (mut a, mut b) = (TemplateCache::new(), TemplateCache::new());
    // Deterministic xorshift: every input truncated at a few lengths and with
    // a few bytes changed, decoded after the intact input (templates warm).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (name, bytes) in &inputs {
        check(exporter(3), bytes, &mut a, &mut b, name);
        for cut in [0, 1, 2, 3, 15, 16, 19, 20, 21, 24, 30, 47, 50] {
            if cut < bytes.len() {
                let what = format!("{name} cut at {cut}");
                check(exporter(3), &bytes[..cut], &mut a, &mut b, &what);
            }
        }
        for round in 0..24 {
            let mut m = bytes.clone();
            if m.is_empty() {
                break;
            }
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % m.len();
                m[at] = match next() % 4 {
                    0 => 0,
                    1 => 0xff,
                    _ => next() as u8,
                };
            }
            check(
                exporter(3),
                &m,
                &mut a,
                &mut b,
                &format!("{name} mutation {round}"),
            );
        }
    }
}

// Hand-built IPFIX messages (RFC 7011 section 3) for the corners.

/// Template set with one template of `(element id, length)` fields.
fn template(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(id.to_be_bytes());
    t.extend((fields.len() as u16).to_be_bytes());
    for (f, l) in fields {
        t.extend(f.to_be_bytes());
        t.extend(l.to_be_bytes());
    }
    set(2, &t)
}

#[test]
fn data_before_its_template_is_visited_at_the_end() {
    // Set of 300 first, then the template of 300, then a set of 301 (known).
    let known = template(301, &[(4, 1)]);
    let msg = ipfix(&[
        set(300, &[10, 0, 0, 1, 10, 0, 0, 2]),
        template(300, &[(8, 4)]),
        set(301, &[6, 17, 1]),
    ]);
    let (mut a, mut b) = (TemplateCache::new(), TemplateCache::new());
    let first = ipfix(std::slice::from_ref(&known));
    check(exporter(1), &first, &mut a, &mut b, "template 301");
    assert_eq!(check(exporter(1), &msg, &mut a, &mut b, "late template"), 2);
    let mut order = Vec::new();
    let v = visit_packet_from(exporter(1), &msg, &mut TemplateCache::new(), |s| {
        order.push((s.template_id(), s.offset, s.record_count))
    })
    .unwrap();
    // On a cold cache 301 is unknown: only 300 (resolved at the end) is visited.
    assert_eq!(order, vec![(300, 16, 2)]);
    assert_eq!(v.missing.len(), 1);
    // With only 301 known: 301 as the walk reaches it, 300 at the end.
    let mut warm = TemplateCache::new();
    visit_packet_from(exporter(1), &first, &mut warm, |_| {}).unwrap();
    let mut order = Vec::new();
    visit_packet_from(exporter(1), &msg, &mut warm, |s| {
        order.push((s.template_id(), s.offset))
    })
    .unwrap();
    assert_eq!(order, vec![(301, 16 + 12 + 12), (300, 16)]);
}

#[test]
fn sets_deferred_and_never_resolved_are_missing_once_in_wire_order() {
    // Sets of 310 (never defined), 300 (defined later in the packet), 311
    // (never defined) and 300 again: the walk defers the four in one list
    // and retries them at the end, 300's visited then, 310's and 311's left
    // missing, each once, in wire order; a second packet of the same sets
    // (300 now known) gives the same missing sets.
    let msg = ipfix(&[
        set(310, &[1, 2, 3, 4]),
        set(300, &[10, 0, 0, 1]),
        set(311, &[5, 6]),
        set(300, &[10, 0, 0, 2, 10, 0, 0, 3]),
        template(300, &[(8, 4)]),
    ]);
    let (mut a, mut b) = (TemplateCache::new(), TemplateCache::new());
    assert_eq!(check(exporter(2), &msg, &mut a, &mut b, "deferred"), 2);
    for round in 0..2 {
        let mut order = Vec::new();
        let v = visit_packet_from(exporter(2), &msg, &mut b, |s| {
            order.push((s.template_id(), s.offset, s.record_count))
        })
        .unwrap();
        let missing: Vec<(u16, usize, usize)> = v
            .missing
            .iter()
            .map(|m| (m.key.template_id, m.offset, m.body.len()))
            .collect();
        assert_eq!(missing, vec![(310, 16, 4), (311, 32, 2)], "round {round}");
        if round == 0 {
            // The template was stored by `check`'s walks already: 300 known
            // from the start, visited as the walk reaches its sets.
            assert_eq!(order, vec![(300, 24, 1), (300, 38, 2)]);
        }
    }
    let mut order = Vec::new();
    let v = visit_packet_from(exporter(2), &msg, &mut TemplateCache::new(), |s| {
        order.push((s.template_id(), s.offset, s.record_count))
    })
    .unwrap();
    // Cold: both sets of 300 at the end, in wire order.
    assert_eq!(order, vec![(300, 24, 1), (300, 38, 2)]);
    let missing: Vec<(u16, usize)> = v
        .missing
        .iter()
        .map(|m| (m.key.template_id, m.offset))
        .collect();
    assert_eq!(missing, vec![(310, 16), (311, 32)]);
}

#[test]
fn sets_of_templates_with_lists_are_visited_with_the_end_of_packet_scope() {
    // Template 256: sourceIPv4Address; template 257: a subTemplateList (292)
    // of variable length whose records follow 256. The list's template is
    // redefined after the data set within the same packet: sub-template
    // lists resolve against the templates known at the end of the packet.
    let stl = [3u8, 1, 0, 10, 0, 0, 1];
    let mut rec = vec![stl.len() as u8];
    rec.extend(stl);
    let msg = ipfix(&[
        template(256, &[(8, 4)]),
        template(257, &[(292, 0xffff)]),
        set(257, &rec),
        set(256, &[192, 0, 2, 9]),
        template(256, &[(12, 4)]),
    ]);
    let (mut a, mut b) = (TemplateCache::new(), TemplateCache::new());
    assert_eq!(check(exporter(1), &msg, &mut a, &mut b, "lists"), 2);
    let mut seen = Vec::new();
    visit_packet(&msg, &mut TemplateCache::new(), |s| {
        let list = s.records().next().unwrap().to_owned_record();
        seen.push((s.template_id(), s.columns().is_some(), format!("{list:?}")))
    })
    .unwrap();
    assert_eq!(seen.len(), 2);
    // 256 is visited as the walk reaches it; 257 (lists) at the end.
    assert_eq!((seen[0].0, seen[0].1), (256, true));
    assert_eq!((seen[1].0, seen[1].1), (257, false));
    assert!(
        seen[1].2.contains("destinationIPv4Address"),
        "{}",
        seen[1].2
    );
}

#[test]
fn visit_is_not_called_for_packets_that_fail() {
    let mut calls = 0;
    for bytes in [&[][..], &[0], &[0, 9], &[0, 42, 0, 0], &[0, 5, 0, 1]] {
        assert!(visit_packet(bytes, &mut TemplateCache::new(), |_| calls += 1).is_err());
    }
    assert_eq!(calls, 0);
}

#[test]
fn v5_sets_are_views_of_the_fixed_records() {
    let mut bytes = vec![0u8; 24 + 2 * 48 + 5];
    bytes[1] = 5;
    bytes[3] = 2;
    bytes[24..28].copy_from_slice(&[10, 0, 0, 1]);
    bytes[72..76].copy_from_slice(&[10, 0, 0, 3]);
    bytes[24 + 96] = 1; // non-zero bytes after the records: an error, decoded anyway
    let mut seen = Vec::new();
    let v = visit_packet(&bytes, &mut TemplateCache::new(), |s| {
        assert_eq!(s.v1_records().count() + s.v7_records().count(), 0);
        seen.extend(s.v5_records().map(|r| r.src_addr()));
    })
    .unwrap();
    assert_eq!(seen, vec![0x0a00_0001, 0x0a00_0003]);
    assert_eq!((v.data_sets, v.records, v.errors.len()), (1, 2, 1));
    let (mut a, mut b) = (TemplateCache::new(), TemplateCache::new());
    check(exporter(1), &bytes, &mut a, &mut b, "v5");
}

/// `Decoder::visit` against `Decoder::decode`, two decoders in lockstep.
fn check_decoders(
    a: &mut Decoder,
    b: &mut Decoder,
    exporter: ExporterId,
    bytes: &[u8],
    tag: u64,
    now_ms: u64,
    what: &str,
) -> usize {
    let decoded = a.decode(exporter, bytes, tag, now_ms);
    let mut sets = Vec::new();
    let visited = b.visit(exporter, bytes, tag, now_ms, |view| {
        sets.push(describe(view))
    });
    let replayed = match (&decoded, &visited) {
        (Ok(d), Ok(v)) => {
            compare(&d.packet, &v.packet, &sets, what);
            assert_eq!(d.dropped, v.dropped, "{what}: dropped");
            assert_eq!(d.replayed.len(), v.replayed.len(), "{what}: replayed");
            for (x, y) in d.replayed.iter().zip(&v.replayed) {
                assert_eq!(x.pending, y.pending, "{what}: replayed set");
                assert_eq!(x.error, y.error, "{what}: replayed set error");
                let (x, y) = (x.data_set(), y.data_set());
                assert_eq!(describe(x.view()), describe(y.view()), "{what}");
            }
            d.replayed.len()
        }
        (Err(x), Err(y)) => {
            assert_eq!(x, y, "{what}");
            assert!(sets.is_empty(), "{what}: visited a packet that failed");
            0
        }
        _ => panic!("{what}: one failed, not the other"),
    };
    assert_eq!(
        a.pending.stats(),
        b.pending.stats(),
        "{what}: pending counters"
    );
    assert_eq!(a.pending.len(), b.pending.len(), "{what}: pending sets");
    assert_eq!(
        a.pending.bytes(),
        b.pending.bytes(),
        "{what}: pending bytes"
    );
    assert_eq!(
        a.take_dropped(),
        b.take_dropped(),
        "{what}: unreported drops"
    );
    assert_eq!(
        a.cache.template_count(),
        b.cache.template_count(),
        "{what}: templates"
    );
    replayed
}

#[test]
fn decoder_visit_buffers_and_replays_as_decode_does() {
    let (mut replayed, mut dropped_age, mut dropped_capacity) = (0, 0, 0);
    for (name, payloads) in captures() {
        // Cold decoders from the middle of the capture on (data before its
        // templates: buffered, then replayed), a small buffer (drops), and
        // a clock that ages the buffered sets out now and then.
        let limits = PendingLimits {
            max_sets: 3,
            max_age_ms: 5_000,
            ..PendingLimits::default()
        };
        let mut a = Decoder::new(TemplateCache::new(), PendingBuffer::new(limits));
        let mut b = Decoder::new(TemplateCache::new(), PendingBuffer::new(limits));
        let start = payloads.len() / 2;
        for (i, p) in payloads
            .iter()
            .enumerate()
            .skip(start)
            .chain(payloads.iter().enumerate())
        {
            let now = i as u64 * 1000;
            let what = format!("{name}[{i}] decoder");
            replayed += check_decoders(&mut a, &mut b, exporter(1), p, i as u64, now, &what);
            // A packet that fails keeps the expired sets for the next report.
            if i % 7 == 0 {
                check_decoders(&mut a, &mut b, exporter(1), &p[..1], 0, now + 6_000, &what);
            }
        }
        let stats = a.pending.stats();
        dropped_age += stats.dropped_age;
        dropped_capacity += stats.dropped_capacity;
    }
    assert!(replayed > 0, "nothing replayed");
    assert!(
        dropped_age > 0 && dropped_capacity > 0,
        "{dropped_age} {dropped_capacity}"
    );
}
