//! Template cache memory is bounded by its limits, whatever the number of
//! exporters and templates thrown at it (issue: 10 000 exporters x 100
//! templates). Live heap bytes are counted by a wrapping global allocator:
//! exact and deterministic, not timing.
//!
//! The full-size figures (10 000 x 100) are printed by
//! `cargo bench -p netflow --bench cache_memory`.

use std::sync::atomic::Ordering;

use netflow::{parse_packet_from, Limits, TemplateCache};

mod memory_support;
use memory_support::{exporter, template_messages, Counting, LIVE};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counter is process-wide: one test at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One IPFIX message with `templates` templates of `fields` fields.
fn template_message(templates: u16, fields: u16) -> Vec<u8> {
    let mut m = template_messages(templates, fields);
    assert_eq!(m.len(), 1, "fits one message");
    m.remove(0)
}

/// Live bytes held by a cache after `exporters` exporters each sent the message.
fn learn(cache: &mut TemplateCache, exporters: u32, message: &[u8]) {
    for i in 0..exporters {
        parse_packet_from(exporter(i), message, cache).expect("template message parses");
    }
}

#[test]
fn memory_stops_growing_at_the_scope_limit() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let message = template_message(10, 20);
    let limits = Limits {
        max_scopes: 100,
        ..Limits::default()
    };
    let before = LIVE.load(Ordering::Relaxed);
    let mut cache = TemplateCache::with_limits(limits);
    learn(&mut cache, 100, &message);
    let at_limit = LIVE.load(Ordering::Relaxed) - before;
    // Twenty times as many exporters (the first 100 again, then 1900 new
    // ones): the least recently used scopes go.
    learn(&mut cache, 2_000, &message);
    let after = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(cache.stats().evicted_scopes, 1_900);
    assert!(
        after <= at_limit + at_limit / 10,
        "{after} bytes after 2100 exporters vs {at_limit} at the limit of 100"
    );
    // And it is not nothing: 100 scopes x 10 templates x 20 fields are held.
    assert!(at_limit > 100 * 10 * 20, "{at_limit}");
    drop(cache);
}

#[test]
fn memory_stops_growing_at_the_template_limit() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let limits = Limits {
        max_templates_per_scope: 16,
        ..Limits::default()
    };
    let before = LIVE.load(Ordering::Relaxed);
    let mut cache = TemplateCache::with_limits(limits);
    learn(&mut cache, 10, &template_message(16, 20));
    let at_limit = LIVE.load(Ordering::Relaxed) - before;
    // 200 templates per exporter: only the 16 most recent stay.
    learn(&mut cache, 10, &template_message(200, 20));
    let after = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(cache.stats().evicted_templates, 10 * (200 - 16));
    assert!(
        after <= at_limit + at_limit / 10,
        "{after} bytes with 200 templates per exporter vs {at_limit} at the limit of 16"
    );
    drop(cache);
}
