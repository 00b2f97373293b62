//! Shared by the fuzz targets: walk everything a decoded packet exposes and
//! check the invariants the library documents. Any panic here is a finding.

#![allow(dead_code)]

use netflow::serde_impl::{KeyMode, RecordSer};
use netflow::value::ValueKind;
use netflow::{
    DataSet, Decoded, Decoder, ExportPacket, Limits, PendingBuffer, PendingLimits, Record,
    TemplateCache, TemplateField, Value,
};

/// Walk a record: every field, every value (Display), lists recursively; each
/// value must be what a naive reference decoding of the record's bytes gives.
pub fn walk_record(r: &Record<'_>, depth: usize) {
    assert!(depth < 300, "list nesting deeper than u8 depth can be");
    let reference = reference_fields(r);
    let mut n = 0;
    for (field, value) in r.fields() {
        let _ = (&field.name, &field.id_key);
        let bytes = reference.get(n).expect("more fields than the template has");
        check_value(field, &value, bytes);
        n += 1;
        walk_value(&value, depth);
    }
    assert_eq!(n, reference.len(), "fields() skipped a field");
}

/// The bytes of each non-padding field, found by walking the template's field
/// specifiers naively over the record's bytes.
fn reference_fields<'a>(r: &Record<'a>) -> Vec<&'a [u8]> {
    let data = r.bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    for f in r.template().fields.iter() {
        let (start, len) = if f.spec.length == u16::MAX {
            match data.get(pos) {
                Some(&255) => (
                    pos + 3,
                    u16::from_be_bytes([data[pos + 1], data[pos + 2]]) as usize,
                ),
                Some(&n) => (pos + 1, n as usize),
                None => panic!("record shorter than its template"),
            }
        } else {
            (pos, f.spec.length as usize)
        };
        let bytes = &data[start..start + len];
        pos = start + len;
        if !f.skip {
            out.push(bytes);
        }
    }
    assert_eq!(
        pos,
        data.len(),
        "record length is not the sum of its fields"
    );
    out
}

fn check_value(field: &TemplateField, value: &Value<'_>, bytes: &[u8]) {
    match field.kind {
        ValueKind::BasicList | ValueKind::SubTemplateList | ValueKind::SubTemplateMultiList => {
            match value {
                Value::List(_) => {}
                Value::Bytes(b) => assert_eq!(*b, bytes),
                v => panic!("list field decoded as {v:?}"),
            }
        }
        kind => {
            // Debug, so that NaN equals NaN.
            let expected = Value::decode(kind, bytes);
            assert_eq!(
                format!("{value:?}"),
                format!("{expected:?}"),
                "{}",
                field.name
            );
        }
    }
}

pub fn walk_value(v: &Value<'_>, depth: usize) {
    let _ = v.to_string();
    let _ = (v.as_u64(), v.as_ip());
    if let Value::List(l) = v {
        let _ = format!("{l:?}");
        let _ = l.element_name();
        let valid = l.validate().is_ok();
        let mut values = l.values();
        for x in values.by_ref() {
            walk_value(&x, depth + 1);
        }
        let mut all_ok = !values.failed;
        for r in l.records() {
            match r {
                Ok(r) => walk_record(&r, depth + 1),
                Err(_) => all_ok = false,
            }
        }
        assert_eq!(valid, all_ok, "validate() disagrees with iteration");
    }
}

/// Walk a data set; `record_count` must match what the iterator yields.
pub fn walk_set(ds: &DataSet<'_>) {
    let _ = (ds.is_options(), ds.template_id(), ds.bytes());
    let mut n = 0;
    for r in ds.records() {
        n += 1;
        walk_record(&r, 0);
        let _ = r.get("sourceIPv4Address");
        let _ = r.get_id(8);
        for keys in [KeyMode::Name, KeyMode::Id] {
            serde_json::to_vec(&RecordSer { record: &r, keys }).expect("serializes");
        }
    }
    assert_eq!(n, ds.record_count, "record_count != records().count()");
}

pub fn walk_packet(p: &ExportPacket<'_>) {
    let _ = format!("{:?}", p.header);
    let _ = (
        p.header.version(),
        p.header.export_time(),
        p.header.sequence(),
    );
    let _ = (p.record_count(), p.has_new_templates());
    for ds in &p.data_sets {
        walk_set(ds);
    }
    for e in &p.errors {
        let _ = e.to_string();
    }
    assert_eq!(p.records().count(), p.record_count());
}

pub fn walk_decoded(d: &Decoded<'_>) {
    walk_packet(&d.packet);
    for r in &d.replayed {
        walk_set(&r.data_set());
    }
}

/// Parse `bytes` twice through one cache (the second pass sees the packet's
/// own templates as already known) and walk both results.
pub fn parse_twice(bytes: &[u8], limits: Limits) {
    let mut cache = TemplateCache::with_limits(limits);
    for _ in 0..2 {
        if let Ok(p) = netflow::parse_packet(bytes, &mut cache) {
            walk_packet(&p);
        }
        check_cache(&cache);
    }
}

/// The template cache holds no more than its caps allow (full scopes and a
/// full cache evict the least recently used), and its eviction indexes stay
/// within a constant factor of what they order.
pub fn check_cache(cache: &TemplateCache) {
    let l = cache.limits();
    assert!(cache.scope_count() <= l.max_scopes, "scopes over the cap");
    for (_, s) in cache.scopes() {
        assert!(
            s.len() <= l.max_templates_per_scope,
            "templates over the cap"
        );
        for t in s.iter() {
            assert!(
                t.fields.len() <= l.max_fields_per_template,
                "fields over the cap"
            );
        }
    }
    let (scope_index, template_index) = cache.index_sizes();
    assert!(
        scope_index <= 2 * cache.scope_count() + 65,
        "scope index grew"
    );
    assert!(
        template_index <= 65 * cache.scope_count() + 2 * cache.template_count(),
        "template index grew"
    );
}

/// Limits picked by one input byte: defaults, or small ones that hit every limit.
pub fn limits_for(b: u8) -> Limits {
    if b & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_scopes: 1 + (b as usize >> 6),
            max_templates_per_scope: 1 + ((b as usize >> 3) & 7),
            max_fields_per_template: 64,
            max_list_depth: (b as usize >> 1) & 3,
            max_zero_length_fields: (b as usize >> 3) & 3,
        }
    }
}

pub fn decoder_for(b: u8) -> Decoder {
    let pending = if b & 0x80 == 0 {
        PendingLimits::default()
    } else {
        PendingLimits {
            max_sets: (b as usize >> 2) & 7,
            max_bytes: 256 << ((b >> 5) & 3),
            max_bytes_per_exporter: 128 << ((b >> 5) & 3),
            max_age_ms: 1000,
        }
    };
    Decoder::new(
        TemplateCache::with_limits(limits_for(b)),
        PendingBuffer::new(pending),
    )
}

/// The pending buffer stays within its limits and its byte count is right.
pub fn check_pending(d: &Decoder, limits: &PendingLimits) {
    assert!(
        d.pending.len() <= limits.max_sets,
        "pending sets over limit"
    );
    assert!(
        d.pending.bytes() <= limits.max_bytes,
        "pending bytes over limit"
    );
    let sum: usize = d.pending.iter().map(|s| s.body.len()).sum();
    assert_eq!(sum, d.pending.bytes(), "pending byte count drifted");
    let mut per_exporter: std::collections::HashMap<netflow::ExporterId, usize> =
        Default::default();
    for s in d.pending.iter() {
        *per_exporter.entry(s.key.scope.exporter).or_default() += s.body.len();
    }
    for (exporter, bytes) in per_exporter {
        assert!(
            bytes <= limits.max_bytes_per_exporter,
            "exporter over its byte limit"
        );
        assert_eq!(
            bytes,
            d.pending.exporter_bytes(exporter),
            "exporter byte count drifted"
        );
    }
}
