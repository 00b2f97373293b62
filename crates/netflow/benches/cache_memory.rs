//! Template cache memory under 10 000 exporters x 100 templates (issue 5's
//! memory target): live heap bytes, counted by a wrapping global allocator,
//! with the default limits (everything is kept) and with smaller ones
//! (memory stops at the limit however many exporters come).
//!
//! Run: `cargo bench -p netflow --bench cache_memory [-- EXPORTERS TEMPLATES FIELDS]`
//! (defaults 10000 100 16). Prints one line per case.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use netflow::{parse_packet_from, ExporterId, Limits, TemplateCache};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// IPFIX messages (RFC 7011 section 3.1) holding `templates` templates
/// (ids 256..) of `fields` 4-byte fields, split to stay under 64 KiB.
fn template_messages(templates: u16, fields: u16) -> Vec<Vec<u8>> {
    let per_template = 4 + 4 * usize::from(fields);
    let per_message = ((65_535 - 20) / per_template).max(1) as u16;
    let mut out = Vec::new();
    let mut first = 256u16;
    while first < 256 + templates {
        let last = (first + per_message).min(256 + templates);
        let mut set = vec![0, 2, 0, 0];
        for id in first..last {
            set.extend(id.to_be_bytes());
            set.extend(fields.to_be_bytes());
            for f in 0..fields {
                set.extend((f + 1).to_be_bytes());
                set.extend(4u16.to_be_bytes());
            }
        }
        let len = set.len() as u16;
        set[2..4].copy_from_slice(&len.to_be_bytes());
        let mut m = vec![0, 10];
        m.extend((16 + len).to_be_bytes());
        m.extend([0; 12]);
        m.extend(set);
        out.push(m);
        first = last;
    }
    out
}

fn exporter(i: u32) -> ExporterId {
    ExporterId(((0x0a00_0000 + i).to_be_bytes(), 4739).into())
}

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
