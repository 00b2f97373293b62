//! Giving freed heap memory back to the system after a burst.
//!
//! A burst that fills the decode queues allocates one payload buffer per
//! queued datagram (up to [`crate::Config::queue`] of them, each up to
//! 64 KiB). Once the queues drain, glibc's allocator keeps most of those
//! freed chunks in its free lists rather than returning them, so the
//! process's resident memory stays at the burst's high-water mark: a soak
//! showed RSS stepping up by 10-20 % after each backlog and never coming
//! down, without any leak. `malloc_trim(0)` returns the free pages (of every
//! arena, also from the middle of the heap). It is called by the sink
//! thread every [`TRIM_INTERVAL`] while the queues are empty, so never
//! during a burst; it costs about a millisecond for a heap of tens of MiB.
//!
//! The opposite problem while running: the columns writer allocates and
//! frees a few MiB per block (the encoder's buffers), and glibc's default
//! thresholds either serve such sizes with `mmap` (a fresh mapping, so a
//! page fault per 4 KiB at the first touch, every block) or give the top of
//! the heap back to the system as soon as it is freed (the same faults at
//! the next block). A `perf record -e page-faults` of the columns collector
//! at 30,000 v9 datagrams/s put 84 % of its 145,000 page faults (one per
//! datagram) in the encoder's buffers. [`keep_freed_memory`] fixes both
//! thresholds so that freed chunks stay in the heap for the next block;
//! the trim above still returns them when the collector is idle.

use std::time::Duration;

/// How often free memory is returned at most.
pub(crate) const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Return freed heap memory to the system (glibc on Linux; elsewhere the
/// allocator does what it does and this is a no-op).
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists under
    // its locks; it takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Allocations served by `mmap` from this size on (glibc's largest
/// allowed value; its default starts at 128 KiB and moves with what was
/// freed).
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of the heap kept (not returned) up to this size.
const TRIM_THRESHOLD: i32 = 64 << 20;

/// Keep freed heap memory for reuse instead of returning it to the system
/// at once (see the module documentation): process-wide allocator settings
/// (glibc `mallopt`), so the program decides, not the library: `netflow
/// collector` calls it at start. The memory stays bounded by what the
/// collector holds at its peak (queues, blocks being written), and is given
/// back when idle (a trim every 10 s while the queues are empty). Elsewhere
/// than glibc: does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's parameters under its lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

#[cfg(test)]
mod tests {
    /// Freed memory is returned: RSS after freeing 64 MiB of small chunks and
    /// trimming is below RSS before the trim (Linux only).
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn trimming_returns_freed_chunks_to_the_system() {
        fn rss_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap()
        }
        // 32k chunks of 2 KiB, every other one kept so the heap cannot
        // shrink from the top alone.
        let mut chunks: Vec<Vec<u8>> = (0..32_768).map(|i| vec![i as u8; 2048]).collect();
        let kept: Vec<Vec<u8>> = chunks.iter().step_by(64).cloned().collect();
        chunks.clear();
        chunks.shrink_to_fit();
        let before = rss_kib();
        super::release_free_memory();
        let after = rss_kib();
        drop(kept);
        assert!(
            after + 16 * 1024 < before,
            "RSS {before} KiB before the trim, {after} KiB after"
        );
    }
}
