//! Reassembly of fragmented IPv4 / IPv6 UDP datagrams, within limits: at most
//! [`MAX_PARTIAL`] datagrams in progress, each at most 64 KiB, each given up
//! [`TIMEOUT_MS`] (capture time) after its first fragment. Every fragment of
//! a datagram given up is counted in [`Stats::fragments_dropped`].

use std::collections::HashMap;

use crate::link::FragKey;
use crate::Stats;

/// Datagrams being reassembled at once.
pub(crate) const MAX_PARTIAL: usize = 1024;
/// Largest reassembled IP payload.
pub(crate) const MAX_DATAGRAM: usize = 65_535;
/// Capture-time milliseconds after the first fragment when an incomplete datagram is given up.
pub(crate) const TIMEOUT_MS: u64 = 30_000;

#[derive(Debug)]
struct Partial {
    first_ms: u64,
    /// Sequence number of the first fragment (to evict the oldest).
    serial: u64,
    pieces: Vec<(usize, Vec<u8>)>,
    /// Payload length, known once the last fragment arrived.
    total: Option<usize>,
}

#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    partial: HashMap<FragKey, Partial>,
    serial: u64,
}

impl Reassembler {
    /// Add a fragment; returns the whole IP payload (UDP header first) once complete.
    pub(crate) fn add(
        &mut self,
        key: FragKey,
        offset: usize,
        more: bool,
        data: &[u8],
        now_ms: u64,
        stats: &mut Stats,
    ) -> Option<Vec<u8>> {
        stats.fragments += 1;
        if offset + data.len() > MAX_DATAGRAM || (more && data.is_empty()) {
            stats.malformed += 1;
            return None;
        }
        self.expire(now_ms, stats);
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_PARTIAL {
            let oldest = self
                .partial
                .iter()
                .min_by_key(|(_, p)| p.serial)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                let p = self.partial.remove(&k).expect("key from the map");
                stats.fragments_dropped += p.pieces.len() as u64;
            }
        }
        self.serial += 1;
        let serial = self.serial;
        let p = self.partial.entry(key).or_insert_with(|| Partial {
            first_ms: now_ms,
            serial,
            pieces: Vec::new(),
            total: None,
        });
        if !more && p.total.is_none() {
            p.total = Some(offset + data.len());
        }
        p.pieces.push((offset, data.to_vec()));
        let total = p.total?;
        p.pieces.sort_by_key(|(o, _)| *o);
        let mut covered = 0usize;
        for (o, d) in &p.pieces {
            if *o > covered {
                return None;
            }
            covered = covered.max(o + d.len());
        }
        if covered < total {
            return None;
        }
        let p = self.partial.remove(&key).expect("present");
        let mut out = vec![0u8; total];
        for (o, d) in &p.pieces {
            if *o < total {
                let n = d.len().min(total - o);
                out[*o..o + n].copy_from_slice(&d[..n]);
            }
        }
        stats.reassembled += 1;
        Some(out)
    }

    /// Give up datagrams whose first fragment is older than [`TIMEOUT_MS`].
    fn expire(&mut self, now_ms: u64, stats: &mut Stats) {
        if self.partial.is_empty() {
            return;
        }
        self.partial.retain(|_, p| {
            let keep = now_ms.saturating_sub(p.first_ms) <= TIMEOUT_MS;
            if !keep {
                stats.fragments_dropped += p.pieces.len() as u64;
            }
            keep
        });
    }

    /// End of input: count what never completed.
    pub(crate) fn finish(&mut self, stats: &mut Stats) {
        for (_, p) in self.partial.drain() {
            stats.fragments_dropped += p.pieces.len() as u64;
        }
    }
}
