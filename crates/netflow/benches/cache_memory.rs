//! Template cache memory under 10 000 exporters x 100 templates (issue 5's
//! memory target): live heap bytes, counted by a wrapping global allocator,
//! with the default limits (everything is kept) and with smaller ones
//! (memory stops at the limit however many exporters come).
//!
//! Run: `cargo bench -p netflow --bench cache_memory [-- EXPORTERS TEMPLATES FIELDS]`
//! (defaults 10000 100 16). Prints one line per case.

use std::sync::atomic::Ordering;
use std::time::Instant;

use netflow::{parse_packet_from, Limits, TemplateCache};

#[path = "../tests/memory_support/mod.rs"]
mod memory_support;
use memory_support::{exporter, template_messages, Counting, LIVE, PEAK};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn case(name: &str, limits: Limits, exporters: u32, messages: &[Vec<u8>], templates: u64) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let start = Instant::now();
    let mut cache = TemplateCache::with_limits(limits);
    for i in 0..exporters {
        for m in messages {
            parse_packet_from(exporter(i), m, &mut cache).expect("template message parses");
        }
    }
    let elapsed = start.elapsed();
    let live = LIVE.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let held: u64 = cache.scopes().map(|(_, s)| s.len() as u64).sum();
    let s = cache.stats();
    println!(
        "{name:<34} exporters {exporters:>6} x templates {templates:>4}: held {held:>8} templates, \
         live {:>8.1} MiB ({:>5} bytes/template held), peak {:>8.1} MiB, \
         evicted {} templates / {} scopes, {:.2} s",
        live as f64 / (1 << 20) as f64,
        live as u64 / held.max(1),
        peak as f64 / (1 << 20) as f64,
        s.evicted_templates,
        s.evicted_scopes,
        elapsed.as_secs_f64()
    );
    drop(cache);
}

fn main() {
    // `cargo bench` passes `--bench`; numbers are ours.
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let exporters = args.first().copied().unwrap_or(10_000) as u32;
    let templates = args.get(1).copied().unwrap_or(100) as u16;
    let fields = args.get(2).copied().unwrap_or(16) as u16;
    let messages = template_messages(templates, fields);
    println!(
        "template cache memory: {exporters} exporters x {templates} templates of {fields} fields \
         ({} template messages per exporter)",
        messages.len()
    );
    let t = u64::from(templates);
    case("default limits", Limits::default(), exporters, &messages, t);
    let scopes = Limits {
        max_scopes: 1_000,
        ..Limits::default()
    };
    case("max_scopes 1000", scopes, exporters, &messages, t);
    case(
        "max_scopes 1000, 2x exporters",
        scopes,
        exporters * 2,
        &messages,
        t,
    );
    let per_scope = Limits {
        max_templates_per_scope: 10,
        ..Limits::default()
    };
    case(
        "max_templates_per_scope 10",
        per_scope,
        exporters,
        &messages,
        t,
    );
}
