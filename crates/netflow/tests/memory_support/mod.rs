//! Shared by `tests/cache_memory.rs` and `benches/cache_memory.rs`: a global
//! allocator that counts live heap bytes (and their peak), and IPFIX
//! template messages of any size.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use netflow::ExporterId;

/// Wraps the system allocator; install with `#[global_allocator]`.
pub struct Counting;

/// Heap bytes allocated and not yet freed.
pub static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The highest `LIVE` since it was last reset.
pub static PEAK: AtomicUsize = AtomicUsize::new(0);

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

pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// IPFIX messages (RFC 7011 section 3.1) holding `templates` templates (ids
/// 256..), each of `fields` 4-byte fields (IANA elements 1..=fields), split
/// to stay under 64 KiB.
pub fn template_messages(templates: u16, fields: u16) -> Vec<Vec<u8>> {
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

/// Exporter number `i`: 10.0.0.0 + i, port 4739.
pub fn exporter(i: u32) -> ExporterId {
    ExporterId(((0x0a00_0000 + i).to_be_bytes(), 4739).into())
}
