//! Heaviest keys (addresses, address pairs, protocols, ports) by bytes, in
//! bounded memory.
//!
//! Exact while the number of distinct keys stays at most the capacity. Past
//! twice the capacity, the lightest keys are dropped down to the capacity; a
//! dropped key that comes back starts again from zero, so its total is then an
//! underestimate and the result is marked [`TopTable::approximate`]. Heavy
//! hitters survive pruning, which is what a top-N table shows. The grand
//! totals are always exact, so the "everything else" row is too.

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

/// Bytes, packets and flows of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tally {
    pub bytes: u64,
    pub packets: u64,
    pub flows: u64,
}

impl Tally {
    pub fn add(&mut self, bytes: u64, packets: u64) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.packets = self.packets.saturating_add(packets);
        self.flows = self.flows.saturating_add(1);
    }

    fn merge(&mut self, other: &Tally) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.packets = self.packets.saturating_add(other.packets);
        self.flows = self.flows.saturating_add(other.flows);
    }
}

/// One row of a top-N table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopRow {
    /// What is counted, as shown: `"192.0.2.1"`, `"192.0.2.1 → 198.51.100.7"`, `"TCP"`, `"tcp/443"`.
    pub label: String,
    /// A longer description where there is one (`"https"` for tcp/443), else empty.
    pub detail: String,
    #[serde(flatten)]
    pub tally: Tally,
}

/// The heaviest keys and what the rest add up to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TopTable {
    /// Heaviest first (by bytes, then packets, then label).
    pub rows: Vec<TopRow>,
    /// Everything not in `rows` (exact).
    pub other: Tally,
    /// Distinct keys seen (a lower bound once pruned).
    pub distinct: u64,
    /// True if pruning happened: row totals may be underestimates.
    pub approximate: bool,
}

/// Streaming counter behind a [`TopTable`].
#[derive(Debug, Clone)]
pub struct TopCounter<K> {
    map: HashMap<K, Tally>,
    capacity: usize,
    total: Tally,
    pruned: bool,
}

/// Default number of distinct keys kept exactly.
pub const DEFAULT_CAPACITY: usize = 100_000;

impl<K: Hash + Eq + Clone + Ord> TopCounter<K> {
    pub fn new(capacity: usize) -> Self {
        TopCounter {
            map: HashMap::new(),
            capacity: capacity.max(1),
            total: Tally::default(),
            pruned: false,
        }
    }

    pub fn add(&mut self, key: K, bytes: u64, packets: u64) {
        self.total.add(bytes, packets);
        self.map.entry(key).or_default().add(bytes, packets);
        if self.map.len() > 2 * self.capacity {
            self.prune();
        }
    }

    fn prune(&mut self) {
        let mut entries: Vec<(K, Tally)> = self.map.drain().collect();
        sort_heaviest_first(&mut entries);
        entries.truncate(self.capacity);
        self.map.extend(entries);
        self.pruned = true;
    }

    /// Keys and tallies, heaviest first.
    pub fn ranked(&self) -> Vec<(K, Tally)> {
        let mut entries: Vec<(K, Tally)> = self.map.iter().map(|(k, t)| (k.clone(), *t)).collect();
        sort_heaviest_first(&mut entries);
        entries
    }

    /// The `n` heaviest, labelled by `label` (returns label and detail).
    pub fn table(&self, n: usize, label: impl Fn(&K) -> (String, String)) -> TopTable {
        let ranked = self.ranked();
        let distinct = ranked.len() as u64;
        let mut shown = Tally::default();
        let rows: Vec<TopRow> = ranked
            .into_iter()
            .take(n)
            .map(|(k, tally)| {
                shown.merge(&tally);
                let (label, detail) = label(&k);
                TopRow {
                    label,
                    detail,
                    tally,
                }
            })
            .collect();
        TopTable {
            rows,
            other: Tally {
                bytes: self.total.bytes.saturating_sub(shown.bytes),
                packets: self.total.packets.saturating_sub(shown.packets),
                flows: self.total.flows.saturating_sub(shown.flows),
            },
            distinct,
            approximate: self.pruned,
        }
    }
}

fn sort_heaviest_first<K: Ord>(entries: &mut [(K, Tally)]) {
    entries.sort_by(|(ka, a), (kb, b)| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.packets.cmp(&a.packets))
            .then(ka.cmp(kb))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_capacity_with_exact_rest() {
        let mut c = TopCounter::new(10);
        c.add("a", 10, 1);
        c.add("b", 30, 1);
        c.add("a", 25, 2);
        c.add("c", 5, 1);
        let t = c.table(2, |k| (k.to_string(), String::new()));
        assert_eq!(t.rows[0].label, "a");
        assert_eq!(
            t.rows[0].tally,
            Tally {
                bytes: 35,
                packets: 3,
                flows: 2
            }
        );
        assert_eq!(t.rows[1].label, "b");
        assert_eq!(
            t.other,
            Tally {
                bytes: 5,
                packets: 1,
                flows: 1
            }
        );
        assert_eq!(t.distinct, 3);
        assert!(!t.approximate);
    }

    #[test]
    fn pruning_keeps_heavy_hitters_and_bounds_memory() {
        let mut c = TopCounter::new(100);
        for i in 0..100_000u64 {
            // Key 0 is heavy; every other key is seen once.
            c.add(0u64, 1_000, 1);
            c.add(i + 1, 1, 1);
            assert!(c.map.len() <= 200);
        }
        let t = c.table(1, |k| (k.to_string(), String::new()));
        assert_eq!(t.rows[0].label, "0");
        assert_eq!(t.rows[0].tally.bytes, 100_000_000);
        assert!(t.approximate);
        assert_eq!(t.other.bytes, 100_000);
    }
}
