//! A template record that repeats a held template byte for byte is taken as
//! a refresh without being read field by field (`TemplateCache::
//! refresh_unchanged`, RFC 3954 section 5.2 / RFC 7011 section 8.2
//! resends). That shortcut must leave everything as reading the record
//! does: the same packets (data sets, template events, errors, missing
//! sets), the same templates in the cache, the same counters and the same
//! use orders of scopes and templates.
//!
//! Two caches in lockstep, one refreshing only the slow way
//! (`set_slow_refresh(true)`), compared after every packet: every capture,
//! every seed vector, the fuzz corpus, truncations and random byte changes
//! of all of them, byte changes aimed at their template sets, and
//! hand-built v9 and IPFIX template records (options, enterprise fields,
//! the enterprise bit with enterprise 0, field counts and scope counts that
//! differ while the specifier bytes agree).

mod inputs_support;

use inputs_support::{captures, fuzz_corpus, seeds};

use netflow::{parse_packet_from, visit_packet_from, ExporterId, TemplateCache};

fn exporter(port: u16) -> ExporterId {
    ExporterId(([192, 0, 2, 7], port).into())
}

/// A pair of caches: `fast` takes the shortcut, `slow` never does.
struct Pair {
    fast: TemplateCache,
    slow: TemplateCache,
    /// Refreshes seen (through the shortcut or not), to check the inputs
    /// exercise it.
    refreshes: u64,
    /// Packets checked: every other one goes through `visit_packet_from`.
    checked: u64,
}

impl Pair {
    fn new() -> Pair {
        let mut slow = TemplateCache::new();
        slow.set_slow_refresh(true);
        Pair {
            fast: TemplateCache::new(),
            slow,
            refreshes: 0,
            checked: 0,
        }
    }

    /// Decode `bytes` from the exporter at `port` into both caches (through
    /// `parse_packet_from`, and through `visit_packet_from` every other
    /// packet) and compare.
    fn check(&mut self, port: u16, bytes: &[u8], what: &str) {
        let ex = exporter(port);
        self.checked += 1;
        let (fast, slow) = if self.checked % 2 == 0 {
            (
                format!("{:?}", parse_packet_from(ex, bytes, &mut self.fast)),
                format!("{:?}", parse_packet_from(ex, bytes, &mut self.slow)),
            )
        } else {
            let mut sets = (Vec::new(), Vec::new());
            let a = visit_packet_from(ex, bytes, &mut self.fast, |s| sets.0.push(format!("{s:?}")));
            let b = visit_packet_from(ex, bytes, &mut self.slow, |s| sets.1.push(format!("{s:?}")));
            assert_eq!(sets.0, sets.1, "{what}: visited sets");
            (format!("{a:?}"), format!("{b:?}"))
        };
        // The Debug forms hold the data sets with their templates, the
        // template events, the errors and the missing sets.
        assert_eq!(fast, slow, "{what}: packet");
        let (a, b) = (&self.fast, &self.slow);
        assert_eq!(a.stats(), b.stats(), "{what}: counters");
        assert_eq!(a.template_count(), b.template_count(), "{what}");
        assert_eq!(
            a.scopes_by_last_use(),
            b.scopes_by_last_use(),
            "{what}: scope use order"
        );
        for (key, scope) in a.scopes() {
            let other = b.scope(key).expect("same scopes");
            assert_eq!(
                scope.ids_by_last_use(),
                other.ids_by_last_use(),
                "{what}: template use order in {key:?}"
            );
            for t in scope.iter() {
                assert_eq!(Some(t), other.peek(t.id), "{what}: template {}", t.id);
            }
        }
        self.refreshes = a.stats().refreshed;
    }
}

/// Byte ranges of the (options) template sets of a v9 or IPFIX packet.
fn template_sets(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let (mut at, ids) = match bytes.get(..2) {
        Some([0, 9]) => (20, 0..=1),
        Some([0, 10]) => (16, 2..=3),
        _ => return Vec::new(),
    };
    let mut sets = Vec::new();
    while let Some(h) = bytes.get(at..at + 4) {
        let id = u16::from_be_bytes([h[0], h[1]]);
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        if len < 4 || at + len > bytes.len() {
            break;
        }
        if ids.contains(&id) {
            sets.push(at + 4..at + len);
        }
        at += len;
    }
    sets
}

#[test]
fn captures_and_seeds_refresh_as_the_slow_way() {
    let mut refreshes = 0;
    for (name, payloads) in captures() {
        let mut pair = Pair::new();
        for pass in 0..3 {
            for (i, p) in payloads.iter().enumerate() {
                pair.check(1, p, &format!("{name}[{i}]/{pass}"));
            }
        }
        let mut cold = Pair::new();
        for (i, p) in payloads.iter().enumerate().skip(payloads.len() / 2) {
            cold.check(5, p, &format!("{name}[{i}] cold"));
        }
        refreshes += pair.refreshes;
    }
    assert!(refreshes > 100, "{refreshes} refreshes");
    let seeds = seeds();
    let mut pair = Pair::new();
    for round in 0..3 {
        for (name, bytes) in &seeds {
            pair.check(1, bytes, &format!("{name}/{round}"));
        }
    }
    assert!(pair.refreshes > 0);
}

#[test]
fn mutated_template_records_refresh_as_the_slow_way() {
    let mut inputs = fuzz_corpus();
    for (name, payloads) in captures() {
        inputs.extend(
            payloads
                .into_iter()
                .enumerate()
                .filter(|(_, p)| !template_sets(p).is_empty())
                .take(6)
                .map(|(i, p)| (format!("{name}[{i}]"), p)),
        );
    }
    inputs.extend(seeds());
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut pair = Pair::new();
    let mut aimed = 0;
    for (name, bytes) in &inputs {
        for port in [2, 3] {
            pair.check(port, bytes, name);
            pair.check(port, bytes, &format!("{name} again"));
            for cut in [0, 3, 20, 21, 24, 30, 47, 50, 90] {
                if cut < bytes.len() {
                    pair.check(port, &bytes[..cut], &format!("{name} cut at {cut}"));
                }
            }
        }
        // Byte changes anywhere, and aimed at the template sets (then the
        // intact packet again: the cache holds the changed templates, and
        // the original must be a redefinition, not a refresh).
        let sets = template_sets(bytes);
        for round in 0..32 {
            let mut m = bytes.clone();
            if m.is_empty() {
                break;
            }
            for _ in 0..1 + next() % 2 {
                let at = match sets.get(next() as usize % (sets.len() + 1)) {
                    Some(r) if !r.is_empty() => r.start + next() as usize % r.len(),
                    _ => next() as usize % m.len(),
                };
                m[at] = match next() % 4 {
                    0 => 0,
                    1 => 0xff,
                    2 => m[at] ^ 1,
                    _ => next() as u8,
                };
            }
            aimed += !sets.is_empty() as usize;
            let port = 2 + (round % 2) as u16;
            pair.check(port, &m, &format!("{name} mutation {round}"));
            pair.check(port, bytes, &format!("{name} after mutation {round}"));
            pair.check(port, &m, &format!("{name} mutation {round} again"));
        }
    }
    assert!(aimed > 500, "{aimed} mutations of packets with templates");
    assert!(pair.refreshes > 1000, "{} refreshes", pair.refreshes);
}

// Hand-built records (RFC 3954 section 5, RFC 7011 section 3).

fn v9(sets: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![0, 9, 0, 1];
    m.extend([0; 12]);
    m.extend(7u32.to_be_bytes()); // source id
    m.extend(sets.concat());
    m
}

fn ipfix(sets: &[Vec<u8>]) -> Vec<u8> {
    let body = sets.concat();
    let mut m = vec![0, 10];
    m.extend(((16 + body.len()) as u16).to_be_bytes());
    m.extend([0; 8]);
    m.extend(7u32.to_be_bytes()); // observation domain
    m.extend(body);
    m
}

fn set(id: u16, content: &[u8]) -> Vec<u8> {
    let mut s = id.to_be_bytes().to_vec();
    s.extend(((4 + content.len()) as u16).to_be_bytes());
    s.extend(content);
    s
}

/// A template record: `header` words (id, counts), then specifier words.
fn record(header: &[u16], specs: &[u16]) -> Vec<u8> {
    header
        .iter()
        .chain(specs)
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

#[test]
fn hand_built_refreshes_and_near_misses() {
    // (type, length) words; an enterprise field is (id | 0x8000, length,
    // PEN high, PEN low).
    let a = [8, 4, 12, 4, 2, 8];
    let b = [8, 4, 12, 4, 2, 4]; // same count and size, another length
    let c = [8, 4, 12, 4]; // a prefix of `a`
    let ent = [8, 4, 0x8000 | 14, 4, 0, 29305, 2, 8];
    let ent0 = [8, 4, 0x8000 | 14, 4, 0, 0, 2, 8]; // enterprise bit, enterprise 0
    let pen = [8, 4, 0x8000 | 14, 4, 0, 29306, 2, 8];
    // The enterprise number is the bytes of `ent`'s last field.
    let pen28 = [8, 4, 0x8000 | 14, 4, 2, 8, 2, 8];
    let data = |id: u16, len: usize| set(id, &vec![7; len]);
    let packets: Vec<(&str, Vec<u8>)> = vec![
        ("v9 a", v9(&[set(0, &record(&[300, 3], &a)), data(300, 16)])),
        ("v9 b", v9(&[set(0, &record(&[300, 3], &b)), data(300, 12)])),
        ("v9 c", v9(&[set(0, &record(&[300, 2], &c)), data(300, 8)])),
        ("v9 c as 3", v9(&[set(0, &record(&[300, 3], &c))])),
        (
            "v9 two records",
            v9(&[set(
                0,
                &[record(&[300, 3], &a), record(&[301, 2], &c)].concat(),
            )]),
        ),
        ("v9 options", v9(&[set(1, &record(&[302, 4, 8], &a))])),
        (
            "v9 options other scope",
            v9(&[set(1, &record(&[302, 8, 4], &a))]),
        ),
        ("v9 options odd", v9(&[set(1, &record(&[302, 5, 7], &a))])),
        ("v9 reserved id", v9(&[set(0, &record(&[200, 3], &a))])),
        (
            "ipfix a",
            ipfix(&[set(2, &record(&[300, 3], &a)), data(300, 16)]),
        ),
        ("ipfix b", ipfix(&[set(2, &record(&[300, 3], &b))])),
        (
            "ipfix ent",
            ipfix(&[set(2, &record(&[303, 3], &ent)), data(303, 16)]),
        ),
        ("ipfix ent0", ipfix(&[set(2, &record(&[303, 3], &ent0))])),
        (
            "ipfix other pen",
            ipfix(&[set(2, &record(&[303, 3], &pen)), data(303, 16)]),
        ),
        (
            "ipfix pen 2.8",
            ipfix(&[set(2, &record(&[303, 3], &pen28))]),
        ),
        ("ipfix ent as 2", ipfix(&[set(2, &record(&[303, 2], &ent))])),
        ("ipfix options", ipfix(&[set(3, &record(&[304, 3, 1], &a))])),
        (
            "ipfix options scope 2",
            ipfix(&[set(3, &record(&[304, 3, 2], &a))]),
        ),
        (
            "ipfix options scope 0",
            ipfix(&[set(3, &record(&[304, 3, 0], &a))]),
        ),
        (
            "ipfix options as data",
            ipfix(&[set(2, &record(&[304, 3], &a))]),
        ),
        ("ipfix withdraw", ipfix(&[set(2, &record(&[300, 0], &[]))])),
        (
            "ipfix withdraw all",
            ipfix(&[set(2, &record(&[2, 0], &[]))]),
        ),
        ("ipfix short", ipfix(&[set(2, &record(&[300, 3], &a[..5]))])),
    ];
    for order in 0..3 {
        let mut pair = Pair::new();
        for round in 0..3 {
            for i in 0..packets.len() {
                let (name, p) = match order {
                    0 => &packets[i],
                    1 => &packets[packets.len() - 1 - i],
                    // Each packet twice in a row: the second a refresh.
                    _ => &packets[i / 2],
                };
                pair.check(1, p, &format!("{name} ({order}/{round})"));
            }
        }
        assert!(pair.refreshes > 0, "{} refreshes", pair.refreshes);
    }
}
