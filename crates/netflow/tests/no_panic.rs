//! Robustness: no input makes the decoder panic, loop without end, or hold
//! more than its limits allow.
//!
//! - (a) arbitrary bytes, raw and with the version field forced, through
//!   `parse_packet` and a full walk (records, fields, values, lists
//!   recursively, JSON serialization);
//! - (b) mutated real packets (testdata/seed_vectors.json) fed as sequences
//!   through one shared [`Decoder`], so templates of one packet meet mutated
//!   data of the next; the pending buffer is checked against its limits;
//! - (c) generated IPFIX / v9 messages with random templates (variable-length
//!   and enterprise fields, RFC 6313 lists nested at random, zero-length
//!   fields, huge field counts, options templates with bad scope counts),
//!   plus an oracle on well-formed messages (every generated record decodes);
//! - (d) worst-case packets decode and walk within a bound of work counted
//!   in records/fields/values visited (and bytes allocated), not wall time.
//!
//! Case counts keep the file under ~20 s with `cargo test --release` on 2
//! cores (debug builds run an eighth of the cases); set `PROPTEST_CASES` for
//! longer runs (it overrides every default below).
//! Tests documented as "Regression" reproduce problems these tests found
//! (fixed in b180c30); a new finding goes in as an `#[ignore = "bug: ..."]` test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

use netflow::serde_impl::{KeyMode, RecordSer};
use netflow::{
    decode_hex, parse_packet, DataSet, Decoded, Decoder, ExportPacket, ExporterId, Limits,
    PendingBuffer, PendingLimits, Record, TemplateCache, TemplateChange, Value,
};
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Allocation accounting (per thread, so parallel tests do not disturb it).

struct CountingAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let v = live.get() + delta;
        live.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Run `f`, returning its result and the peak bytes it had allocated at once
/// (on this thread, above what was live when it started).
fn peak_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(|p| p.get());
    (out, (peak - start).max(0) as usize)
}

// ---------------------------------------------------------------------------
// Walking everything a packet exposes, counting the work.

#[derive(Debug, Default, Clone, Copy)]
struct Work {
    records: u64,
    fields: u64,
    values: u64,
    lists: u64,
    max_depth: usize,
    /// Lists that did not validate (malformed content, unknown template).
    bad_lists: u64,
}

impl Work {
    fn total(&self) -> u64 {
        self.records + self.fields + self.values
    }
}

#[derive(Debug, Clone, Copy)]
struct WalkOpts {
    /// Format every value with `Display`.
    render: bool,
    /// Serialize every top-level record to JSON (both key modes) and parse it back.
    json: bool,
}

const FULL: WalkOpts = WalkOpts {
    render: true,
    json: true,
};
const COUNT_ONLY: WalkOpts = WalkOpts {
    render: false,
    json: false,
};

fn walk_record(r: &Record<'_>, depth: usize, w: &mut Work, o: WalkOpts) {
    assert!(depth <= 256, "nesting beyond what a u8 depth allows");
    w.records += 1;
    w.max_depth = w.max_depth.max(depth);
    let reference = reference_fields(r);
    let mut n = 0;
    for (field, value) in r.fields() {
        w.fields += 1;
        std::hint::black_box((&field.name, &field.id_key));
        if o.render {
            check_against_reference(field, &value, reference.get(n).copied());
        }
        n += 1;
        walk_value(&value, depth, w, o);
    }
    assert_eq!(
        n,
        reference.len(),
        "fields() yields every non-padding field"
    );
    // The visitor yields exactly the iterator's pairs (same fields, same values).
    let mut iterated = r.fields();
    let mut visited = 0;
    r.for_each_field(|f, v| {
        visited += 1;
        let (g, w) = iterated
            .next()
            .expect("for_each_field yields more than fields()");
        assert!(
            std::ptr::eq(f, g) && same(&v, &w),
            "for_each_field and fields() disagree"
        );
    });
    assert_eq!(visited, n, "for_each_field yields fewer than fields()");
}

/// Reference decoding: the bytes of each non-padding field, found by walking
/// the template's field specifiers naively over the record's bytes.
fn reference_fields<'a>(r: &Record<'a>) -> Vec<(usize, &'a [u8])> {
    let data = r.bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    for (i, f) in r.template().fields.iter().enumerate() {
        let (start, len) = if f.spec.length == VAR {
            match data.get(pos) {
                Some(&255) => (pos + 3, be16(data, pos + 1) as usize),
                Some(&n) => (pos + 1, n as usize),
                None => panic!("record shorter than its template"),
            }
        } else {
            (pos, f.spec.length as usize)
        };
        let bytes = &data[start..start + len];
        pos = start + len;
        if !f.skip {
            out.push((i, bytes));
        }
    }
    assert_eq!(pos, data.len(), "record length is the sum of its fields");
    out
}

/// A field's value is what `Value::decode` makes of the reference bytes
/// (lists: a list, or the raw bytes when malformed or too deep).
fn check_against_reference(
    field: &netflow::TemplateField,
    value: &Value<'_>,
    reference: Option<(usize, &[u8])>,
) {
    use netflow::value::ValueKind as K;
    let (_, bytes) = reference.expect("more fields than the template has");
    match field.kind {
        K::BasicList | K::SubTemplateList | K::SubTemplateMultiList => match value {
            Value::List(_) => {}
            Value::Bytes(b) => assert_eq!(*b, bytes, "{}", field.name),
            v => panic!("list field {} decoded as {v:?}", field.name),
        },
        kind => {
            let expected = Value::decode(kind, bytes);
            // Debug, so that NaN equals NaN.
            assert_eq!(
                format!("{value:?}"),
                format!("{expected:?}"),
                "field {} ({:?})",
                field.name,
                field.spec
            );
        }
    }
}

fn walk_value(v: &Value<'_>, depth: usize, w: &mut Work, o: WalkOpts) {
    if o.render {
        std::hint::black_box(v.to_string());
        std::hint::black_box((v.as_u64(), v.as_ip()));
    }
    let Value::List(l) = v else { return };
    w.lists += 1;
    if o.render {
        std::hint::black_box((format!("{l:?}"), l.element_name()));
    }
    let valid = l.validate().is_ok();
    let mut values = l.values();
    for x in values.by_ref() {
        w.values += 1;
        walk_value(&x, depth + 1, w, o);
    }
    let mut all_ok = !values.failed;
    for r in l.records() {
        match r {
            Ok(r) => walk_record(&r, depth + 1, w, o),
            Err(_) => all_ok = false,
        }
    }
    assert_eq!(
        valid, all_ok,
        "List::validate() disagrees with iterating the list"
    );
    if !valid {
        w.bad_lists += 1;
    }
}

fn walk_records<'a>(
    records: impl Iterator<Item = Record<'a>>,
    expected: usize,
    w: &mut Work,
    o: WalkOpts,
) {
    let mut n = 0;
    for r in records {
        n += 1;
        walk_record(&r, 0, w, o);
        std::hint::black_box((r.get("sourceIPv4Address"), r.get_id(8), r.bytes().len()));
        if o.json {
            for keys in [KeyMode::Name, KeyMode::Id] {
                let json = serde_json::to_vec(&RecordSer { record: &r, keys })
                    .expect("a record always serializes");
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(&json) {
                    // serde_json reads at most 128 levels; deeper output is still checked by the walk.
                    assert!(
                        e.to_string().contains("recursion limit"),
                        "invalid JSON: {e}"
                    );
                }
            }
        }
    }
    assert_eq!(n, expected, "records() yields record_count records");
}

/// Value equality where a NaN float equals itself (same bits).
fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// A data set read column by column (`DataSet::columns`) holds exactly the
/// values of `records()` / `fields()`, transposed; `Column::values` equals
/// `Column::for_each`.
fn check_columns(ds: &DataSet<'_>) {
    let Some(columns) = ds.columns() else {
        assert!(ds.template.record_len.is_none() || ds.template.has_lists);
        return;
    };
    let rows: Vec<Vec<_>> = ds.records().map(|r| r.fields().collect()).collect();
    let mut n = 0;
    let mut values = Vec::with_capacity(ds.record_count);
    for (i, c) in columns.enumerate() {
        n += 1;
        values.clear();
        c.for_each(|v| values.push(v));
        assert_eq!(values.len(), ds.record_count);
        assert_eq!(c.len(), ds.record_count);
        assert!(
            c.values().zip(&values).all(|(a, b)| same(&a, b)) && c.values().count() == values.len(),
            "Column::values and Column::for_each disagree"
        );
        for (row, v) in rows.iter().zip(&values) {
            let (f, want) = &row[i];
            assert!(std::ptr::eq(*f, c.field()), "column {i} is another field");
            assert!(same(want, v), "column {i}: {v:?}, fields(): {want:?}");
        }
    }
    for row in &rows {
        assert_eq!(row.len(), n, "one column per field of fields()");
    }
    // Columns::for_each_value: the same (field, value) pairs, column by
    // column, each column in record order; also from a column further on.
    // Compared as they come (no list of every value: the worst-case sets
    // of zero-length fields hold millions).
    let count = ds.record_count;
    for skip in [0, 1, n / 2, n.saturating_sub(1), n] {
        let mut columns = ds.columns().unwrap();
        for _ in 0..skip {
            columns.next();
        }
        let mut k = skip.min(n) * count;
        columns.for_each_value(|f, v| {
            let (wf, wv) = &rows[k % count][k / count];
            assert!(
                std::ptr::eq(f, *wf),
                "for_each_value after {skip}: value {k} of another field"
            );
            assert!(
                same(wv, &v),
                "for_each_value after {skip}: value {k}: {v:?}, fields(): {wv:?}"
            );
            k += 1;
        });
        assert_eq!(
            k,
            n * count,
            "for_each_value after {skip}: number of values"
        );
    }
}

fn walk_packet(p: &ExportPacket<'_>, w: &mut Work, o: WalkOpts) {
    std::hint::black_box(format!("{:?}", p.header));
    std::hint::black_box((p.header.sequence(), p.header.domain(), p.header.uptime()));
    std::hint::black_box(p.has_new_templates());
    for ds in &p.data_sets {
        std::hint::black_box((ds.is_options(), ds.template_id(), ds.bytes().len()));
        walk_records(ds.records(), ds.record_count, w, o);
        check_columns(ds);
    }
    for e in &p.errors {
        std::hint::black_box(e.to_string());
    }
    assert_eq!(p.records().count(), p.record_count());
}

fn walk_decoded(d: &Decoded<'_>, w: &mut Work, o: WalkOpts) {
    walk_packet(&d.packet, w, o);
    for r in &d.replayed {
        let ds = r.data_set();
        assert_eq!(ds.template_id(), r.pending.key.template_id);
        walk_records(ds.records(), ds.record_count, w, o);
        check_columns(&ds);
    }
}

/// Parse with a fresh cache, then again with the templates of the first pass
/// known; walk both.
fn parse_and_walk(bytes: &[u8], limits: Limits) -> Work {
    let mut w = Work::default();
    let mut cache = TemplateCache::with_limits(limits);
    for _ in 0..2 {
        if let Ok(p) = parse_packet(bytes, &mut cache) {
            walk_packet(&p, &mut w, FULL);
        }
    }
    w
}

// ---------------------------------------------------------------------------
// Wire helpers.

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn ipfix_msg(domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let body = sets.concat();
    let mut m = Vec::with_capacity(16 + body.len());
    m.extend(10u16.to_be_bytes());
    m.extend(((16 + body.len()).min(0xffff) as u16).to_be_bytes());
    m.extend(1_700_000_000u32.to_be_bytes());
    m.extend(1u32.to_be_bytes());
    m.extend(domain.to_be_bytes());
    m.extend(body);
    m
}

fn v9_msg(source_id: u32, count: u16, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(9u16.to_be_bytes());
    m.extend(count.to_be_bytes());
    m.extend(123_456u32.to_be_bytes());
    m.extend(1_700_000_000u32.to_be_bytes());
    m.extend(1u32.to_be_bytes());
    m.extend(source_id.to_be_bytes());
    m.extend(sets.concat());
    m
}

fn set(id: u16, content: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(4 + content.len());
    s.extend(id.to_be_bytes());
    s.extend(((4 + content.len()).min(0xffff) as u16).to_be_bytes());
    s.extend(content);
    s
}

/// IPFIX template record: `(id, length, pen)` per field (pen 0 = IANA).
fn ipfix_template(id: u16, fields: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(id.to_be_bytes());
    t.extend((fields.len() as u16).to_be_bytes());
    for &(fid, len, pen) in fields {
        if pen != 0 {
            t.extend((fid | 0x8000).to_be_bytes());
            t.extend(len.to_be_bytes());
            t.extend(pen.to_be_bytes());
        } else {
            t.extend(fid.to_be_bytes());
            t.extend(len.to_be_bytes());
        }
    }
    t
}

/// Variable-length encoding (RFC 7011 section 7); `long` forces the 3-byte form.
fn varlen(content: &[u8], long: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(content.len() + 3);
    if content.len() < 255 && !long {
        v.push(content.len() as u8);
    } else {
        v.push(255);
        v.extend((content.len().min(0xffff) as u16).to_be_bytes());
    }
    v.extend(content);
    v
}

// ---------------------------------------------------------------------------
// Seed vectors.

fn seeds() -> &'static [(String, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/seed_vectors.json"
        );
        let all: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("seed vectors")).unwrap();
        all["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_string(),
                    decode_hex(v["hex"].as_str().unwrap()).unwrap(),
                )
            })
            .collect()
    })
}

/// `cases` in release builds, an eighth of it in debug builds (so a plain
/// `cargo test` stays quick); `PROPTEST_CASES` overrides both.
fn config(cases: u32) -> ProptestConfig {
    let cases = match std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => n,
        None if cfg!(debug_assertions) => (cases / 8).max(1),
        None => cases,
    };
    ProptestConfig {
        cases,
        // Reproducers go into this file as #[ignore] tests, not into a regressions file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// (a) Arbitrary bytes.

proptest! {
    #![proptest_config(config(16_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2000)) {
        parse_and_walk(&bytes, Limits::default());
    }

    #[test]
    fn arbitrary_bytes_with_known_version_never_panic(
        version in prop::sample::select(vec![1u16, 5, 7, 9, 10]),
        fix_length in any::<bool>(),
        small_limits in any::<bool>(),
        mut bytes in vec(any::<u8>(), 2..2000),
    ) {
        bytes[..2].copy_from_slice(&version.to_be_bytes());
        if version == 10 && fix_length && bytes.len() >= 4 {
            // Get past the message length check so the set walk is reached.
            let len = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
        }
        let limits = if small_limits {
            Limits {
                max_scopes: 1,
                max_templates_per_scope: 2,
                max_fields_per_template: 8,
                max_list_depth: 1,
                max_zero_length_fields: 2,
            }
        } else {
            Limits::default()
        };
        parse_and_walk(&bytes, limits);
    }
}

// ---------------------------------------------------------------------------
// (b) Mutated seed vectors, as sequences through one Decoder.

/// A replacement for a 16-bit length/count/id field.
#[derive(Debug, Clone)]
enum NewU16 {
    Fixed(u16),
    Delta(i8),
    Any(u16),
}

#[derive(Debug, Clone)]
enum Mutation {
    BitFlip {
        pos: usize,
        bit: u8,
    },
    Overwrite {
        pos: usize,
        byte: u8,
    },
    Truncate {
        keep: usize,
    },
    Insert {
        pos: usize,
        bytes: Vec<u8>,
    },
    Remove {
        pos: usize,
        len: usize,
    },
    /// Rewrite one of the packet's 16-bit header, set or template fields.
    Field {
        slot: usize,
        value: NewU16,
    },
    /// Overwrite a run with bytes from another seed vector.
    Splice {
        from: usize,
        src: usize,
        dst: usize,
        len: usize,
    },
    Version(u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let new_u16 = prop_oneof![
        prop::sample::select(vec![
            0u16, 1, 2, 3, 4, 5, 8, 255, 256, 0x7fff, 0x8000, 0xfffe, 0xffff
        ])
        .prop_map(NewU16::Fixed),
        any::<i8>().prop_map(NewU16::Delta),
        any::<u16>().prop_map(NewU16::Any),
    ];
    prop_oneof![
        1 => (any::<usize>(), 0u8..8).prop_map(|(pos, bit)| Mutation::BitFlip { pos, bit }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(pos, byte)| Mutation::Overwrite { pos, byte }),
        1 => any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        1 => (any::<usize>(), vec(any::<u8>(), 1..16))
            .prop_map(|(pos, bytes)| Mutation::Insert { pos, bytes }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(pos, len)| Mutation::Remove { pos, len }),
        3 => (any::<usize>(), new_u16).prop_map(|(slot, value)| Mutation::Field { slot, value }),
        1 => (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..128)
            .prop_map(|(from, src, dst, len)| Mutation::Splice { from, src, dst, len }),
        1 => prop::sample::select(vec![1u16, 5, 7, 9, 10, 0, 11, 0xffff]).prop_map(Mutation::Version),
    ]
}

/// Offsets of the 16-bit fields worth rewriting: header version and
/// count/length, every set id and length, every u16 of a template set.
fn u16_slots(b: &[u8]) -> Vec<usize> {
    let mut slots = vec![0, 2];
    if b.len() >= 4 {
        let bounds = match be16(b, 0) {
            9 => Some((20, b.len())),
            10 => Some((16, (be16(b, 2) as usize).min(b.len()))),
            _ => None,
        };
        if let Some((mut off, end)) = bounds {
            while off + 4 <= end {
                slots.push(off);
                slots.push(off + 2);
                let (id, len) = (be16(b, off), be16(b, off + 2) as usize);
                if len < 4 || off + len > end {
                    break;
                }
                if id <= 3 {
                    slots.extend((off + 4..off + len - 1).step_by(2));
                } else if len >= 6 {
                    slots.push(off + 4);
                }
                off += len;
            }
        }
    }
    slots.retain(|&s| s + 2 <= b.len());
    slots
}

fn apply(m: &Mutation, b: &mut Vec<u8>) {
    let n = b.len();
    match *m {
        Mutation::BitFlip { pos, bit } if n > 0 => b[pos % n] ^= 1 << bit,
        Mutation::Overwrite { pos, byte } if n > 0 => b[pos % n] = byte,
        Mutation::Truncate { keep } => b.truncate(keep % (n + 1)),
        Mutation::Insert { pos, ref bytes } => {
            let at = pos % (n + 1);
            b.splice(at..at, bytes.iter().copied());
        }
        Mutation::Remove { pos, len } if n > 0 => {
            let at = pos % n;
            b.drain(at..(at + len).min(n));
        }
        Mutation::Field { slot, ref value } => {
            let slots = u16_slots(b);
            if slots.is_empty() {
                return;
            }
            let at = slots[slot % slots.len()];
            let old = be16(b, at);
            let new = match *value {
                NewU16::Fixed(v) | NewU16::Any(v) => v,
                NewU16::Delta(d) => old.wrapping_add(d as i16 as u16),
            };
            b[at..at + 2].copy_from_slice(&new.to_be_bytes());
        }
        Mutation::Splice {
            from,
            src,
            dst,
            len,
        } => {
            let other = &seeds()[from % seeds().len()].1;
            let src = src % other.len();
            let chunk = &other[src..(src + len).min(other.len())];
            let dst = dst % (n + 1);
            if b.len() < dst + chunk.len() {
                b.resize(dst + chunk.len(), 0);
            }
            b[dst..dst + chunk.len()].copy_from_slice(chunk);
        }
        Mutation::Version(v) if n >= 2 => b[..2].copy_from_slice(&v.to_be_bytes()),
        _ => {}
    }
}

#[derive(Debug, Clone)]
struct Step {
    seed: usize,
    exporter_b: bool,
    advance_ms: u64,
    mutations: Vec<Mutation>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<usize>(),
        any::<bool>(),
        prop_oneof![Just(0u64), 0u64..3000],
        prop_oneof![Just(vec![]), vec(mutation(), 1..5)],
    )
        .prop_map(|(seed, exporter_b, advance_ms, mutations)| Step {
            seed,
            exporter_b,
            advance_ms,
            mutations,
        })
}

#[derive(Debug, Clone)]
struct DecoderConfig {
    limits: Limits,
    pending: PendingLimits,
}

fn decoder_config() -> impl Strategy<Value = DecoderConfig> {
    prop_oneof![
        Just(DecoderConfig {
            limits: Limits::default(),
            pending: PendingLimits::default()
        }),
        (
            1usize..4,
            1usize..6,
            1usize..64,
            0usize..10,
            0usize..6,
            0usize..3000,
            0u64..5000
        )
            .prop_map(|(scopes, templates, fields, depth, sets, bytes, age)| {
                DecoderConfig {
                    limits: Limits {
                        max_scopes: scopes,
                        max_templates_per_scope: templates,
                        max_fields_per_template: fields,
                        max_list_depth: depth,
                        max_zero_length_fields: fields / 2,
                    },
                    pending: PendingLimits {
                        max_sets: sets,
                        max_bytes: bytes,
                        // Below the global limit half the time, so both limits are exercised.
                        max_bytes_per_exporter: bytes / 2 + (age as usize % 2) * bytes,
                        max_age_ms: age,
                    },
                }
            }),
    ]
}

/// Bookkeeping of one run of datagrams through a Decoder: every set that went
/// missing is later replayed, dropped, or still pending — as the caller sees
/// it (`Decoded::replayed` / `dropped`) and as the buffer's stats count it.
#[derive(Debug, Default)]
struct PendingLedger {
    missing: usize,
    replayed: usize,
    dropped: usize,
}

/// Decode `datagram`, walk the result and check the pending buffer invariants.
/// On a parse error, `fetch_on_error` collects the sets that expired meanwhile
/// with `Decoder::take_dropped` (otherwise the next `Decoded` reports them).
#[allow(clippy::too_many_arguments)]
fn decode_checked(
    decoder: &mut Decoder,
    cfg: &PendingLimits,
    ledger: &mut PendingLedger,
    exporter: ExporterId,
    datagram: &[u8],
    tag: u64,
    now_ms: u64,
    fetch_on_error: bool,
) -> Work {
    let mut work = Work::default();
    let held_before = decoder.pending.len();
    let mut all_reported = true;
    match decoder.decode(exporter, datagram, tag, now_ms) {
        Ok(d) => {
            walk_decoded(&d, &mut work, FULL);
            for r in &d.replayed {
                // Only a template learned or redefined in this packet replays sets.
                assert!(
                    d.packet
                        .templates
                        .iter()
                        .any(|t| t.template_id == r.pending.key.template_id
                            && matches!(
                                t.change,
                                TemplateChange::Learned | TemplateChange::Redefined
                            )),
                    "replayed a set whose template did not arrive: {:?}",
                    r.pending.key
                );
                assert_eq!(r.pending.key.scope.exporter, exporter);
            }
            ledger.missing += d.packet.missing.len();
            ledger.replayed += d.replayed.len();
            ledger.dropped += d.dropped.len();
            assert!(decoder.pending.len() <= held_before + d.packet.missing.len());
        }
        Err(_) if fetch_on_error => {
            let expired = decoder.take_dropped();
            assert!(expired.len() <= cfg.max_sets);
            ledger.dropped += expired.len();
        }
        Err(_) => all_reported = false,
    }
    // The pending buffer stays within its limits, and its byte count is exact.
    assert!(
        decoder.pending.len() <= cfg.max_sets,
        "pending sets over the limit"
    );
    assert!(
        decoder.pending.bytes() <= cfg.max_bytes,
        "pending bytes over the limit"
    );
    let sum: usize = decoder.pending.iter().map(|s| s.body.len()).sum();
    assert_eq!(sum, decoder.pending.bytes(), "pending byte count drifted");
    let mut per_exporter: std::collections::HashMap<ExporterId, usize> = Default::default();
    for s in decoder.pending.iter() {
        *per_exporter.entry(s.key.scope.exporter).or_default() += s.body.len();
    }
    for (exporter, bytes) in per_exporter {
        assert!(
            bytes <= cfg.max_bytes_per_exporter,
            "exporter over its byte limit"
        );
        assert_eq!(
            bytes,
            decoder.pending.exporter_bytes(exporter),
            "exporter byte count drifted"
        );
    }
    for s in decoder.pending.iter() {
        assert!(
            now_ms - s.received_ms <= cfg.max_age_ms,
            "expired set still pending"
        );
    }
    let st = decoder.pending.stats();
    let counted =
        (st.replayed + st.dropped_age + st.dropped_capacity + st.dropped_exporter_capacity)
            as usize
            + decoder.pending.len();
    let returned = ledger.replayed + ledger.dropped + decoder.pending.len();
    // Every set that went missing is replayed, dropped or still pending: none
    // vanishes uncounted (e.g. when its template is withdrawn again).
    assert_eq!(counted, ledger.missing, "pending sets appeared or vanished");
    if all_reported {
        assert_eq!(
            returned, counted,
            "handed back {returned} sets, counted {counted}"
        );
    } else {
        assert!(
            returned <= counted,
            "handed back {returned} sets, counted {counted}"
        );
    }
    work
}

proptest! {
    #![proptest_config(config(3_000))]

    #[test]
    fn mutated_seed_sequences_through_one_decoder(
        cfg in decoder_config(),
        steps in vec(step(), 1..12),
    ) {
        let mut decoder = Decoder::new(
            TemplateCache::with_limits(cfg.limits),
            PendingBuffer::new(cfg.pending),
        );
        let exporters = [
            ExporterId("192.0.2.1:2055".parse().unwrap()),
            ExporterId("[2001:db8::1]:4739".parse().unwrap()),
        ];
        let mut ledger = PendingLedger::default();
        let mut now = 1_000_000u64;
        for (tag, s) in steps.iter().enumerate() {
            let mut bytes = seeds()[s.seed % seeds().len()].1.clone();
            for m in &s.mutations {
                apply(m, &mut bytes);
            }
            now += s.advance_ms;
            decode_checked(
                &mut decoder,
                &cfg.pending,
                &mut ledger,
                exporters[s.exporter_b as usize],
                &bytes,
                tag as u64,
                now,
                s.exporter_b,
            );
        }
    }
}

// ---------------------------------------------------------------------------
// (c) Structure-aware generation, driven by a byte string (shrinks towards
// zeros, and zero always picks the simplest choice).

struct Gen<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Gen<'a> {
    fn new(data: &'a [u8]) -> Self {
        Gen { data, pos: 0 }
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => 0,
            2..=256 => self.u8() as usize % n,
            _ => self.u16() as usize % n,
        }
    }
    /// True with roughly `percent`% probability (never once the data runs out).
    fn chance(&mut self, percent: u32) -> bool {
        (self.u8() as u32 * 100) >> 8 >= 100 - percent
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

const VAR: u16 = 0xffff;

/// IANA elements of many data types with their natural length.
const ELEMENTS: &[(u16, u16)] = &[
    (1, 8),    // octetDeltaCount unsigned64
    (2, 4),    // packetDeltaCount, reduced size
    (4, 1),    // protocolIdentifier unsigned8
    (7, 2),    // sourceTransportPort unsigned16
    (8, 4),    // sourceIPv4Address
    (12, 4),   // destinationIPv4Address
    (27, 16),  // sourceIPv6Address
    (56, 6),   // sourceMacAddress
    (82, VAR), // interfaceName string
    (96, VAR), // applicationName string
    (150, 4),  // flowStartSeconds
    (152, 8),  // flowStartMilliseconds
    (154, 8),  // flowStartMicroseconds
    (156, 8),  // flowStartNanoseconds
    (210, 3),  // paddingOctets
    (276, 1),  // dataRecordsReliability boolean
    (320, 8),  // absoluteError float64
    (320, 4),  // float64 reduced to float32
    (64, 4),   // ipv6ExtensionHeaders
    (0, 2),    // reserved id
    (351, 8),  // dataLinkFrameSize
];

#[derive(Debug, Clone, Copy, PartialEq)]
struct FieldGen {
    id: u16,
    pen: u32,
    len: u16,
}

impl FieldGen {
    /// The list kind (291 basicList, 292 subTemplateList, 293
    /// subTemplateMultiList) of the element's registry type, if it is one
    /// (e.g. IANA 291..=293, 528 udpSafeExIDList, their RFC 5103 reverses).
    fn list_kind(&self) -> Option<u16> {
        use netflow::registry::DataType;
        match netflow::registry::lookup(self.pen, self.id)?.data_type {
            DataType::BasicList => Some(291),
            DataType::SubTemplateList => Some(292),
            DataType::SubTemplateMultiList => Some(293),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct TemplateGen {
    id: u16,
    /// Scope field count (0 = data template).
    scope: u16,
    fields: Vec<FieldGen>,
}

impl TemplateGen {
    fn min_len(&self) -> usize {
        self.fields
            .iter()
            .map(|f| if f.len == VAR { 1 } else { f.len as usize })
            .sum()
    }
}

/// What the generator may produce.
#[derive(Debug, Clone, Copy)]
struct GenMode {
    /// Only well-formed messages (for the oracle).
    clean: bool,
    v9: bool,
    max_depth: u8,
}

fn gen_field(g: &mut Gen, mode: GenMode) -> FieldGen {
    let mut f = match g.below(12) {
        0..=6 => {
            let (id, len) = g.pick(ELEMENTS);
            FieldGen { id, pen: 0, len }
        }
        7 | 8 if !mode.v9 => FieldGen {
            id: g.pick(&[291, 292, 293]),
            pen: 0,
            len: VAR,
        },
        9 => FieldGen {
            id: g.u16() & 0x7fff,
            pen: 0,
            len: g.pick(&[1, 2, 4, 8, 16, VAR]),
        },
        _ if mode.v9 => FieldGen {
            id: g.u16(),
            pen: 0,
            len: g.pick(&[1, 2, 4, 6]),
        },
        _ => {
            // Enterprise elements: RFC 5103 reverse, CERT, unknown.
            let (id, len) = g.pick(ELEMENTS);
            FieldGen {
                id,
                pen: g.pick(&[29305, 6871, 0xdead_beef]),
                len,
            }
        }
    };
    if mode.v9 && f.len == VAR {
        f.len = 4;
    }
    if mode.clean && f.list_kind().is_some() {
        // A well-formed list needs its own length.
        if mode.v9 {
            f = FieldGen {
                id: 4,
                pen: 0,
                len: 1,
            };
        } else {
            f.len = VAR;
        }
    }
    if !mode.clean && g.chance(15) {
        // Odd lengths: zero, reduced, oversized, variable where fixed is usual.
        f.len = g.pick(&[0, 1, 3, 5, 7, 9, 17, 255, VAR]);
        if mode.v9 && f.len == VAR {
            f.len = 0;
        }
    }
    f
}

fn gen_template(g: &mut Gen, id: u16, options: bool, mode: GenMode) -> TemplateGen {
    let n = if !mode.clean && g.chance(3) {
        // Many fields, most of them zero-length.
        200 + g.below(200)
    } else {
        1 + g.below(8)
    };
    let mut fields: Vec<FieldGen> = (0..n)
        .map(|i| {
            if n > 100 && i > 0 {
                FieldGen {
                    id: 5,
                    pen: 0,
                    len: 0,
                }
            } else {
                gen_field(g, mode)
            }
        })
        .collect();
    if mode.clean && fields.iter().all(|f| f.len == 0) {
        fields.push(FieldGen {
            id: 4,
            pen: 0,
            len: 1,
        });
    }
    let scope = if options {
        1 + g.below(fields.len()) as u16
    } else {
        0
    };
    TemplateGen { id, scope, fields }
}

/// Content of one value of element `f` (a whole list for list elements).
fn gen_content(
    g: &mut Gen,
    f: FieldGen,
    world: &[TemplateGen],
    depth: u8,
    budget: &mut usize,
    mode: GenMode,
) -> Vec<u8> {
    let natural = if f.len == VAR {
        let max = if g.chance(5) { 300 } else { 12 };
        g.below(max)
    } else {
        f.len as usize
    };
    let Some(list_kind) = f.list_kind() else {
        *budget = budget.saturating_sub(natural);
        let mut b = g.bytes(natural);
        if mode.clean && f.id == 82 {
            // Keep strings printable.
            b.iter_mut().for_each(|c| *c = b'a' + *c % 26);
        }
        return b;
    };
    let deep = depth >= mode.max_depth || *budget == 0;
    let semantic = g.pick(&[3u8, 0, 1, 2, 4, 0xff, 7]);
    let mut out = vec![semantic];
    match list_kind {
        291 => {
            let mut element = if deep {
                FieldGen {
                    id: 7,
                    pen: 0,
                    len: 2,
                }
            } else {
                gen_field(g, mode)
            };
            if mode.clean && element.len == 0 {
                element.len = 1;
            }
            if element.pen != 0 {
                out.extend((element.id | 0x8000).to_be_bytes());
                out.extend(element.len.to_be_bytes());
                out.extend(element.pen.to_be_bytes());
            } else {
                out.extend(element.id.to_be_bytes());
                out.extend(element.len.to_be_bytes());
            }
            let n = if deep { 0 } else { g.below(5) };
            for _ in 0..n {
                let c = gen_content(g, element, world, depth + 1, budget, mode);
                out.extend(encode_field(g, element.len, c, mode));
            }
        }
        292 => {
            let t = if world.is_empty() || (!mode.clean && g.chance(5)) {
                None
            } else {
                Some(&world[g.below(world.len())])
            };
            out.extend(t.map_or(g.u16(), |t| t.id).to_be_bytes());
            if let (Some(t), false) = (t, deep) {
                for _ in 0..g.below(4) {
                    out.extend(gen_record(g, t, world, depth + 1, budget, mode));
                }
            } else if !mode.clean {
                let n = g.below(8);
                out.extend(g.bytes(n));
            }
        }
        _ => {
            let blocks = if deep || world.is_empty() {
                0
            } else {
                g.below(4)
            };
            for _ in 0..blocks {
                let t = &world[g.below(world.len())];
                let mut records = Vec::new();
                for _ in 0..g.below(3) {
                    records.extend(gen_record(g, t, world, depth + 1, budget, mode));
                }
                out.extend(t.id.to_be_bytes());
                let len = if !mode.clean && g.chance(5) {
                    g.u16()
                } else {
                    (4 + records.len()).min(0xffff) as u16
                };
                out.extend(len.to_be_bytes());
                out.extend(records);
            }
        }
    }
    out
}

/// The bytes of a field: variable-length prefix, or padded/cut to the fixed length.
fn encode_field(g: &mut Gen, len: u16, mut content: Vec<u8>, mode: GenMode) -> Vec<u8> {
    if len == VAR {
        content.truncate(0xffff);
        varlen(&content, g.chance(10))
    } else {
        if !mode.clean && g.chance(2) {
            // A variable-length prefix where a fixed field is expected.
            content.insert(0, 255);
        }
        content.resize(len as usize, 0);
        content
    }
}

fn gen_record(
    g: &mut Gen,
    t: &TemplateGen,
    world: &[TemplateGen],
    depth: u8,
    budget: &mut usize,
    mode: GenMode,
) -> Vec<u8> {
    let mut out = Vec::new();
    for &f in &t.fields {
        let c = gen_content(g, f, world, depth, budget, mode);
        out.extend(encode_field(g, f.len, c, mode));
    }
    out
}

fn emit_ipfix_template(g: &mut Gen, t: &TemplateGen, mode: GenMode) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(t.id.to_be_bytes());
    let count = if !mode.clean && g.chance(3) {
        g.pick(&[0xffff, t.fields.len() as u16 + 1, 1025])
    } else {
        t.fields.len() as u16
    };
    out.extend(count.to_be_bytes());
    if t.scope > 0 {
        let scope = if !mode.clean && g.chance(10) {
            g.pick(&[0, t.fields.len() as u16 + 1, 0xffff])
        } else {
            t.scope
        };
        out.extend(scope.to_be_bytes());
    }
    for f in &t.fields {
        if f.pen != 0 {
            out.extend((f.id | 0x8000).to_be_bytes());
            out.extend(f.len.to_be_bytes());
            out.extend(f.pen.to_be_bytes());
        } else {
            out.extend((f.id & 0x7fff).to_be_bytes());
            out.extend(f.len.to_be_bytes());
        }
    }
    out
}

fn emit_v9_template(g: &mut Gen, t: &TemplateGen, mode: GenMode) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(t.id.to_be_bytes());
    if t.scope > 0 {
        let mut scope_len = 4 * t.scope;
        let mut option_len = 4 * (t.fields.len() as u16 - t.scope);
        if !mode.clean && g.chance(10) {
            scope_len = g.pick(&[0, 2, scope_len + 4, 0xfffc]);
            option_len = g.pick(&[1, option_len, 0xfffc]);
        }
        out.extend(scope_len.to_be_bytes());
        out.extend(option_len.to_be_bytes());
    } else {
        let count = if !mode.clean && g.chance(3) {
            g.pick(&[0xffff, t.fields.len() as u16 + 1])
        } else {
            t.fields.len() as u16
        };
        out.extend(count.to_be_bytes());
    }
    for f in &t.fields {
        out.extend(f.id.to_be_bytes());
        out.extend(f.len.to_be_bytes());
    }
    out
}

/// A generated message, and for clean ones what it should decode to:
/// (template id, record count) per data set, in wire order.
struct GenMessage {
    bytes: Vec<u8>,
    expect: Vec<(u16, usize)>,
}

/// One message. `world` holds the templates announced so far (across messages).
fn gen_message(g: &mut Gen, world: &mut Vec<TemplateGen>, mode: GenMode) -> GenMessage {
    let mut sets: Vec<Vec<u8>> = Vec::new();
    let mut expect = Vec::new();
    let mut budget = 6000usize;
    let n_sets = 1 + g.below(6);
    let mut next_clean_id = 256 + world.len() as u16;
    for _ in 0..n_sets {
        match g.below(10) {
            // Template set.
            0..=3 => {
                let options = g.chance(25);
                let mut records = Vec::new();
                for _ in 0..1 + g.below(3) {
                    let id = if mode.clean {
                        next_clean_id += 1;
                        next_clean_id - 1
                    } else if g.chance(5) {
                        g.u16()
                    } else {
                        256 + g.below(8) as u16
                    };
                    let t = gen_template(g, id, options, mode);
                    let emitted = if mode.v9 {
                        emit_v9_template(g, &t, mode)
                    } else {
                        emit_ipfix_template(g, &t, mode)
                    };
                    records.extend(emitted);
                    world.retain(|w| w.id != id);
                    world.push(t);
                }
                if !mode.clean && !mode.v9 && g.chance(10) {
                    // Withdrawal of one template, or of all.
                    let id = if g.chance(50) {
                        if options {
                            3
                        } else {
                            2
                        }
                    } else {
                        256 + g.below(8) as u16
                    };
                    records.extend(id.to_be_bytes());
                    records.extend(0u16.to_be_bytes());
                }
                let set_id = match (mode.v9, options) {
                    (false, false) => 2,
                    (false, true) => 3,
                    (true, false) => 0,
                    (true, true) => 1,
                };
                sets.push(set(set_id, &records));
            }
            // Data set for a known template (or, when not clean, an unknown one).
            _ => {
                if world.is_empty() {
                    continue;
                }
                let t = world[g.below(world.len())].clone();
                let id = if !mode.clean && g.chance(5) {
                    g.u16()
                } else {
                    t.id
                };
                let mut body = Vec::new();
                let n = g.below(6);
                for _ in 0..n {
                    body.extend(gen_record(g, &t, world, 0, &mut budget, mode));
                }
                let min = t.min_len();
                if g.chance(20) && min > 1 {
                    body.extend(vec![0; g.below(min)]);
                }
                if !mode.clean && g.chance(10) {
                    let cut = g.below(body.len() + 1);
                    body.truncate(cut);
                }
                if mode.clean && body.len() + 4 > 0xffff {
                    continue;
                }
                expect.push((id, n));
                sets.push(set(id, &body));
            }
        }
    }
    if mode.clean && !mode.v9 && g.chance(30) && sets.len() > 1 {
        // Data before its template: deferred to the end of the message.
        sets.rotate_left(1);
        expect.clear();
    }
    let domain = if g.chance(10) { g.u32() } else { 0 };
    let mut bytes = if mode.v9 {
        v9_msg(domain, sets.len() as u16, &sets)
    } else {
        ipfix_msg(domain, &sets)
    };
    if bytes.len() > 0xffff {
        bytes.truncate(0xffff);
        expect.clear();
    }
    if !mode.clean {
        for _ in 0..g.below(3) {
            if g.chance(30) && !bytes.is_empty() {
                let at = g.below(bytes.len());
                bytes[at] ^= 1 << g.below(8);
            }
        }
    }
    GenMessage { bytes, expect }
}

proptest! {
    #![proptest_config(config(4_000))]

    /// Random templates and data, several messages through one Decoder,
    /// with corruption: no panic, pending buffer within limits.
    #[test]
    fn generated_messages_never_panic(
        entropy in vec(any::<u8>(), 0..3000),
        small_limits in any::<bool>(),
    ) {
        let mut g = Gen::new(&entropy);
        let limits = if small_limits {
            Limits {
                max_scopes: 2,
                max_templates_per_scope: 4,
                max_fields_per_template: 64,
                max_list_depth: g.below(4),
                ..Limits::default()
            }
        } else {
            Limits::default()
        };
        let pending = PendingLimits { max_sets: 8, max_bytes: 4096, max_bytes_per_exporter: 4096, max_age_ms: 10_000 };
        let mut decoder = Decoder::new(TemplateCache::with_limits(limits), PendingBuffer::new(pending));
        let mut ledger = PendingLedger::default();
        let mut world = Vec::new();
        let exporter = ExporterId::default();
        let mut now = 0;
        for tag in 0..1 + g.below(4) as u64 {
            let mode = GenMode { clean: false, v9: g.chance(30), max_depth: 12 };
            let m = gen_message(&mut g, &mut world, mode);
            now += 1000;
            let c = decode_checked(
                &mut decoder, &pending, &mut ledger, exporter, &m.bytes, tag, now, tag % 2 == 0,
            );
            prop_assert!(c.max_depth <= limits.max_list_depth);
        }
    }

    /// Oracle: a well-formed IPFIX message decodes without errors, with every
    /// generated record, every field, and every list valid.
    #[test]
    fn generated_wellformed_ipfix_decodes_exactly(entropy in vec(any::<u8>(), 0..3000)) {
        let mut g = Gen::new(&entropy);
        let mode = GenMode { clean: true, v9: false, max_depth: 6 };
        let mut world = Vec::new();
        let m = gen_message(&mut g, &mut world, mode);
        let mut cache = TemplateCache::new();
        let p = parse_packet(&m.bytes, &mut cache).unwrap();
        prop_assert!(p.errors.is_empty(), "errors: {:?}", p.errors);
        prop_assert!(p.missing.is_empty());
        if !m.expect.is_empty() {
            let got: Vec<(u16, usize)> =
                p.data_sets.iter().map(|d| (d.template_id(), d.record_count)).collect();
            prop_assert_eq!(got, m.expect);
        }
        for ds in &p.data_sets {
            let t = world.iter().find(|t| t.id == ds.template_id()).unwrap();
            let visible = t.fields.iter().filter(|f| !(f.pen == 0 && f.id == 210)).count();
            for r in ds.records() {
                prop_assert_eq!(r.fields().count(), visible);
            }
        }
        let mut w = Work::default();
        walk_packet(&p, &mut w, FULL);
        // Sub-template lists resolve against every template of the message,
        // also those that come after the data set.
        prop_assert_eq!(w.bad_lists, 0, "message: {}", hex(&m.bytes));
    }

    #[test]
    fn generated_wellformed_v9_decodes_exactly(entropy in vec(any::<u8>(), 0..2000)) {
        let mut g = Gen::new(&entropy);
        let mode = GenMode { clean: true, v9: true, max_depth: 0 };
        let mut world = Vec::new();
        let m = gen_message(&mut g, &mut world, mode);
        let p = parse_packet(&m.bytes, &mut TemplateCache::new()).unwrap();
        prop_assert!(p.errors.is_empty(), "errors: {:?}", p.errors);
        let got: Vec<(u16, usize)> =
            p.data_sets.iter().map(|d| (d.template_id(), d.record_count)).collect();
        prop_assert_eq!(got, m.expect);
        walk_packet(&p, &mut Work::default(), FULL);
    }
}

// ---------------------------------------------------------------------------
// (d) Bounded work and memory on worst-case packets.

const MAX_DATAGRAM: usize = 0xffff;

/// The bound the decoder's design promises: every level of list nesting walks
/// each byte's records at most once, and a record has at most
/// `max_fields_per_template` fields.
fn work_bound(len: usize, limits: &Limits) -> u64 {
    ((limits.max_list_depth + 2) * (limits.max_fields_per_template + 1) * len) as u64
}

/// 64 KiB of one-byte records whose template has 1 one-byte field and
/// `zero` zero-length fields.
fn zero_length_field_bomb(zero: usize) -> Vec<u8> {
    let mut fields = vec![(4u16, 1u16, 0u32)];
    fields.extend(std::iter::repeat_n((5u16, 0u16, 0u32), zero));
    let t = set(2, &ipfix_template(256, &fields));
    let body_len = MAX_DATAGRAM - 16 - t.len() - 4;
    ipfix_msg(0, &[t, set(256, &vec![7u8; body_len])])
}

#[test]
fn worst_case_zero_length_fields_stay_within_the_work_bound() {
    // With the zero-length cap lifted: 1023 of them (the field limit) in a 1-byte record.
    let msg = zero_length_field_bomb(1023);
    assert_eq!(msg.len(), MAX_DATAGRAM);
    let limits = Limits {
        max_zero_length_fields: usize::MAX,
        ..Limits::default()
    };
    let mut cache = TemplateCache::with_limits(limits);
    let p = parse_packet(&msg, &mut cache).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let mut w = Work::default();
    walk_packet(&p, &mut w, COUNT_ONLY);
    assert_eq!(w.records as usize, p.record_count());
    assert!(
        w.total() <= work_bound(msg.len(), &limits),
        "{w:?} over {}",
        work_bound(msg.len(), &limits)
    );
    // Serializing one such record: 1024 keys.
    let r = p.records().next().unwrap();
    let json = serde_json::to_string(&RecordSer {
        record: &r,
        keys: KeyMode::Name,
    })
    .unwrap();
    assert!(json.len() < 64 * 1024);
}

#[test]
fn zero_length_fields_amplification_is_small() {
    // Regression: 1023 zero-length fields in a 1-byte record gave ~63M field
    // values (~1 GB of JSON) from one 64 KiB datagram. The default limit
    // refuses such templates; the worst it allows stays small.
    let limits = Limits::default();
    let bomb = zero_length_field_bomb(1023);
    let p = parse_packet(&bomb, &mut TemplateCache::new()).unwrap();
    assert_eq!(p.record_count(), 0);
    assert!(p.missing.len() == 1 && !p.errors.is_empty());
    let msg = zero_length_field_bomb(limits.max_zero_length_fields);
    let p = parse_packet(&msg, &mut TemplateCache::new()).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let mut w = Work::default();
    walk_packet(&p, &mut w, COUNT_ONLY);
    assert!(
        w.total() <= 64 * msg.len() as u64,
        "{} field values from a {}-byte datagram",
        w.fields,
        msg.len()
    );
}

/// A subTemplateList of template 256 whose records are subTemplateLists of
/// 256 again, `fanout` records per level, down to the depth limit; the rest
/// of the datagram filled with more such trees.
fn nested_stl_bomb(levels: usize, fanout: usize) -> Vec<u8> {
    fn tree(levels: usize, fanout: usize) -> Vec<u8> {
        // One record of template 256: a variable-length subTemplateList field.
        let mut list = vec![3u8, 1, 0];
        if levels > 0 {
            let child = tree(levels - 1, fanout);
            for _ in 0..fanout {
                list.extend(&child);
            }
        }
        varlen(&list, list.len() >= 255)
    }
    let t = set(2, &ipfix_template(256, &[(292, VAR, 0)]));
    let one = tree(levels, fanout);
    let room = MAX_DATAGRAM - 16 - t.len() - 4;
    let mut body = Vec::new();
    while body.len() + one.len() <= room {
        body.extend(&one);
    }
    ipfix_msg(0, &[t, set(256, &body)])
}

#[test]
fn worst_case_nesting_stays_within_the_work_bound() {
    for (levels, fanout) in [(12, 1), (9, 2), (6, 4), (4, 8)] {
        let msg = nested_stl_bomb(levels, fanout);
        for depth in [0, 1, 8, 64] {
            let limits = Limits {
                max_list_depth: depth,
                ..Limits::default()
            };
            let p = parse_packet(&msg, &mut TemplateCache::with_limits(limits)).unwrap();
            let mut w = Work::default();
            let ((), peak) = peak_alloc(|| walk_packet(&p, &mut w, FULL));
            assert!(w.max_depth <= depth, "{w:?}");
            assert!(w.total() <= work_bound(msg.len(), &limits), "{w:?}");
            // Walking allocates little beyond the JSON of one record.
            assert!(peak < 16 << 20, "walk peaked at {peak} bytes");
        }
    }
}

#[test]
fn unlimited_depth_is_capped_by_the_u8_depth_without_stack_overflow() {
    // basicList of basicList of ... 300 levels; innermost a list of one port.
    let mut inner = vec![3u8, 0, 7, 0, 2, 0x01, 0xbb];
    for _ in 0..300 {
        let mut outer = vec![3u8, 0x01, 0x23, 0xff, 0xff];
        outer.extend(varlen(&inner, inner.len() >= 255));
        inner = outer;
    }
    let t = set(2, &ipfix_template(256, &[(291, VAR, 0)]));
    let msg = ipfix_msg(0, &[t, set(256, &varlen(&inner, true))]);
    let limits = Limits {
        max_list_depth: usize::MAX,
        ..Limits::default()
    };
    // Run on a thread with the default 2 MiB test stack.
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let p = parse_packet(&msg, &mut TemplateCache::with_limits(limits)).unwrap();
            let mut w = Work::default();
            walk_packet(&p, &mut w, FULL);
            w
        })
        .unwrap();
    let w = handle.join().expect("no stack overflow");
    assert!(w.max_depth <= 256, "{w:?}");
}

/// Fill one scope with `max_templates_per_scope` one-field templates.
fn fill_scope(decoder: &mut Decoder, domain: u32) {
    let per_msg = 8000;
    let limit = decoder.cache.limits().max_templates_per_scope;
    let mut next = 256u32;
    while next < 256 + limit as u32 {
        let mut records = Vec::new();
        for id in next..(next + per_msg).min(256 + limit as u32) {
            records.extend(ipfix_template(id as u16, &[(8, 4, 0)]));
        }
        next += per_msg;
        let msg = ipfix_msg(domain, &[set(2, &records)]);
        decoder
            .decode(ExporterId::default(), &msg, 0, 0)
            .expect("template message");
    }
}

/// Alternating [empty data set of a known template][redefinition of another
/// template], as often as fits in one datagram.
fn snapshot_bomb(domain: u32) -> Vec<u8> {
    let mut sets = Vec::new();
    let mut len = 16;
    let mut i = 0u16;
    while len + 16 <= MAX_DATAGRAM {
        sets.push(set(256, &[]));
        let field = if i % 2 == 0 { 8 } else { 12 };
        sets.push(set(2, &ipfix_template(300, &[(field, 4, 0)])));
        len += 16;
        i += 1;
    }
    ipfix_msg(domain, &sets)
}

#[test]
fn template_churn_in_a_small_scope_is_cheap() {
    // The same datagram against a scope of a few templates: every
    // redefinition copies at most that small scope.
    let mut decoder = Decoder::default();
    let msg = snapshot_bomb(0);
    decoder
        .decode(
            ExporterId::default(),
            &ipfix_msg(0, &[set(2, &ipfix_template(256, &[(8, 4, 0)]))]),
            0,
            0,
        )
        .unwrap();
    let (d, peak) = peak_alloc(|| decoder.decode(ExporterId::default(), &msg, 1, 0).unwrap());
    assert!(d.packet.errors.is_empty(), "{:?}", &d.packet.errors[..1]);
    assert!(peak < 64 << 20, "one datagram peaked at {} MiB", peak >> 20);
}

/// Regression: with 4096 templates in the scope, every redefinition after a
/// data set copied the whole scope (`Arc::make_mut` while the data set held
/// the snapshot), and the packet kept every copy alive: 544 MiB peak for one
/// 64 KiB datagram.
#[test]
fn template_churn_in_a_full_scope_allocates_boundedly() {
    let mut decoder = Decoder::default();
    fill_scope(&mut decoder, 0);
    assert_eq!(
        decoder.cache.template_count(),
        Limits::default().max_templates_per_scope
    );
    let msg = snapshot_bomb(0);
    let (d, peak) = peak_alloc(|| decoder.decode(ExporterId::default(), &msg, 1, 0).unwrap());
    let sets = d.packet.data_sets.len();
    drop(d);
    // 64 MiB (1000x the datagram) is generous.
    assert!(
        peak < 64 << 20,
        "one {}-byte datagram ({} data sets) peaked at {} MiB",
        msg.len(),
        sets,
        peak >> 20
    );
}

/// Many sets waiting, then a datagram of template redefinitions: every
/// redefinition scans the pending buffer.
fn pending_scan_setup() -> (Decoder, Vec<u8>) {
    let mut decoder = Decoder::default();
    // 16k missing sets (4-byte empty data sets of unknown templates) fill the buffer.
    let missing: Vec<Vec<u8>> = (0..(MAX_DATAGRAM - 16) / 4)
        .map(|i| set(256 + (i % 1000) as u16, &[]))
        .collect();
    let flood = ipfix_msg(0, &missing);
    let d = decoder.decode(ExporterId::default(), &flood, 0, 0).unwrap();
    drop(d);
    let mut records = Vec::new();
    let mut i = 0u16;
    while 16 + 4 + records.len() + 8 <= MAX_DATAGRAM {
        let field = if i % 2 == 0 { 8 } else { 12 };
        records.extend(ipfix_template(60000, &[(field, 4, 0)]));
        i += 1;
    }
    (decoder, ipfix_msg(0, &[set(2, &records)]))
}

#[test]
fn pending_buffer_stays_bounded_under_a_flood_of_missing_sets() {
    let (decoder, _) = pending_scan_setup();
    let limits = PendingLimits::default();
    assert!(decoder.pending.len() <= limits.max_sets);
    assert!(decoder.pending.len() > 10_000);
    assert_eq!(decoder.pending.bytes(), 0, "empty bodies");
}

/// CPU time this thread has used (Linux CLOCK_THREAD_CPUTIME_ID): unlike
/// wall time, it does not count the time other processes had the core.
fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the one we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Time to decode `msg` with a `loaded` decoder and with a fresh one, best of
/// 7 each, measured alternately in thread CPU time (a busy machine neither
/// counts in it nor slows one side only); `Err` with both times if loaded is
/// over 5x fresh plus 5 ms (a ratio, so the bound holds on slow and debug
/// builds alike). Valgrind counts 2.7x the instructions for the replay case;
/// the regressions guarded were 15-50x.
fn slowdown(loaded: impl Fn() -> Decoder, msg: &[u8]) -> Result<(), String> {
    let time = |mut d: Decoder| {
        let start = thread_cpu_time();
        let out = d.decode(ExporterId::default(), msg, 1, 0).unwrap();
        let t = thread_cpu_time().saturating_sub(start);
        drop(out);
        t
    };
    let (mut base, mut slow) = (std::time::Duration::MAX, std::time::Duration::MAX);
    for _ in 0..7 {
        base = base.min(time(Decoder::default()));
        slow = slow.min(time(loaded()));
    }
    if slow > base * 5 + std::time::Duration::from_millis(5) {
        Err(format!(
            "{slow:?} with a full pending buffer, {base:?} without ({:.0}x)",
            slow.as_secs_f64() / base.as_secs_f64()
        ))
    } else {
        Ok(())
    }
}

/// Regression: each of the ~8000 redefinitions scanned the whole full pending
/// buffer (16384 sets): ~100 ms of CPU for one datagram. CPU time only
/// because the work is inside the library, against a fresh decoder.
#[test]
fn template_redefinitions_do_not_rescan_the_pending_buffer() {
    let (_, msg) = pending_scan_setup();
    slowdown(|| pending_scan_setup().0, &msg).unwrap();
}

/// The pending buffer full of sets for 16k distinct templates, then a
/// datagram that defines 4096 of them (the per-scope template limit).
fn pending_many_keys_setup() -> (Decoder, Vec<u8>) {
    let mut decoder = Decoder::default();
    let missing: Vec<Vec<u8>> = (0..(MAX_DATAGRAM - 16) / 4)
        .map(|i| set(256 + i as u16, &[]))
        .collect();
    let flood = ipfix_msg(0, &missing);
    drop(decoder.decode(ExporterId::default(), &flood, 0, 0).unwrap());
    let records: Vec<u8> = (0..4096u16)
        .flat_map(|i| ipfix_template(256 + i, &[(8, 4, 0)]))
        .collect();
    (decoder, ipfix_msg(0, &[set(2, &records)]))
}

#[test]
// Regression: replay used to cost O(pending sets x templates arrived).
fn replaying_many_templates_is_linear_in_the_pending_buffer() {
    let (decoder, msg) = pending_many_keys_setup();
    assert!(decoder.pending.len() > 16_000);
    let mut d = decoder.clone();
    let out = d.decode(ExporterId::default(), &msg, 1, 0).unwrap();
    assert_eq!(out.replayed.len(), 4096);
    drop(out);
    slowdown(|| pending_many_keys_setup().0, &msg).unwrap();
}

// ---------------------------------------------------------------------------
// Reproducers of problems found by the tests above (now regressions).

/// Regression: the pending sets of a template learned and withdrawn again in
/// the same packet were taken from the buffer and then silently dropped.
#[test]
fn pending_sets_survive_their_template_being_withdrawn_in_the_same_packet() {
    let mut decoder = Decoder::default();
    let exporter = ExporterId::default();
    // Data for template 256 arrives first and is buffered.
    let data = ipfix_msg(0, &[set(256, &[10, 0, 0, 1])]);
    let d = decoder.decode(exporter, &data, 1, 0).unwrap();
    assert_eq!(d.packet.missing.len(), 1);
    drop(d);
    assert_eq!(decoder.pending.len(), 1);
    // Template 256 is announced and withdrawn in the same message.
    let mut records = ipfix_template(256, &[(8, 4, 0)]);
    records.extend([0x01, 0x00, 0x00, 0x00]);
    let msg = ipfix_msg(0, &[set(2, &records)]);
    let d = decoder.decode(exporter, &msg, 2, 1).unwrap();
    let accounted = d.replayed.len() + d.dropped.len() + decoder.pending.len();
    assert_eq!(
        accounted,
        1,
        "the buffered set was neither replayed, dropped nor kept (stats: {:?})",
        decoder.pending.stats()
    );
}

/// Regression: sets expired before a datagram that then failed to parse were
/// counted in `stats().dropped_age` but never handed to the caller.
#[test]
fn expired_sets_are_returned_even_when_the_datagram_does_not_parse() {
    let mut decoder = Decoder::new(
        TemplateCache::new(),
        PendingBuffer::new(PendingLimits {
            max_age_ms: 1000,
            ..PendingLimits::default()
        }),
    );
    let exporter = ExporterId::default();
    let data = ipfix_msg(0, &[set(256, &[10, 0, 0, 1])]);
    drop(decoder.decode(exporter, &data, 1, 0).unwrap());
    assert_eq!(decoder.pending.len(), 1);
    // Two seconds later a datagram that does not parse (empty) arrives, then a valid one.
    assert!(decoder.decode(exporter, &[], 2, 2000).is_err());
    let ok = ipfix_msg(0, &[]);
    let d = decoder.decode(exporter, &ok, 3, 2001).unwrap();
    assert_eq!(
        d.dropped.len(),
        1,
        "the expired set was never handed back (stats: {:?})",
        decoder.pending.stats()
    );
}
