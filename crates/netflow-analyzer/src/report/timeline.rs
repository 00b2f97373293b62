//! Traffic per time bucket, in bounded memory whatever the time span.
//!
//! Bucket sizes come from one chain, [`BUCKET_SIZES`], in which each size is a
//! multiple of the one before: a bucket of one size lies entirely inside one
//! bucket of any larger size, so buckets can be merged into coarser ones
//! without re-reading the flows. Buckets are aligned to multiples of their
//! size since the Unix epoch (a 5-minute bucket starts at :00, :05, ...).
//!
//! While flows stream in, [`TimelineBuilder`] keeps at most
//! [`MAX_LIVE_BUCKETS`] buckets and coarsens when a flow would need more.
//! [`TimelineBuilder::finish`] then picks the final size: the smallest in the
//! chain whose bucket count over the whole span (first to last bucket,
//! including empty ones) is at most [`TARGET_BUCKETS`], so a chart has enough
//! bars to show shape and few enough to read them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bucket sizes in seconds: 1 s, 5 s, 10 s, 30 s, 1 min, 5 min, 10 min,
/// 30 min, 1 h, 3 h, 6 h, 12 h, 1 d, 1 week. Each divides the next.
pub const BUCKET_SIZES: [u64; 14] = [
    1, 5, 10, 30, 60, 300, 600, 1_800, 3_600, 10_800, 21_600, 43_200, 86_400, 604_800,
];

/// The final chart has at most this many buckets (unless the span is longer
/// than `TARGET_BUCKETS` weeks, the largest size).
pub const TARGET_BUCKETS: u64 = 120;

/// Buckets kept while streaming, before coarsening.
pub const MAX_LIVE_BUCKETS: usize = 4_096;

/// A timeline longer than this many of the largest buckets (about 190 years of
/// weeks: garbage times) lists only its non-empty buckets instead of all.
pub const MAX_FILLED_BUCKETS: u64 = 10_000;

/// Traffic in one time bucket `[start, start + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bucket {
    /// Start, seconds since the Unix epoch (a multiple of the bucket size).
    pub start: i64,
    pub bytes: u64,
    pub packets: u64,
    pub flows: u64,
}

/// Buckets of one size covering the whole span, empty ones included, in time order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timeline {
    /// Seconds per bucket (one of [`BUCKET_SIZES`]).
    pub bucket_seconds: u64,
    pub buckets: Vec<Bucket>,
}

/// The number of buckets of `size` seconds from the bucket holding `first` to
/// the one holding `last` (both in seconds since the epoch), inclusive.
pub fn bucket_count(first: i64, last: i64, size: u64) -> u64 {
    // i128: a garbage time near i64::MIN and one near i64::MAX must not overflow.
    let size = size.max(1) as i128;
    let n = (last as i128).div_euclid(size) - (first as i128).div_euclid(size) + 1;
    n.clamp(0, u64::MAX as i128) as u64
}

/// The start of the bucket of `size` seconds holding `seconds` (clamped to
/// the i64 range for the few seconds near its ends).
fn align(seconds: i64, size: i64) -> i64 {
    let size = size.max(1) as i128;
    let start = (seconds as i128).div_euclid(size) * size;
    start.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// The size [`TimelineBuilder::finish`] chooses for a span from `first` to `last`.
pub fn choose_bucket_size(first: i64, last: i64) -> u64 {
    BUCKET_SIZES
        .iter()
        .copied()
        .find(|&size| bucket_count(first, last, size) <= TARGET_BUCKETS)
        .unwrap_or(BUCKET_SIZES[BUCKET_SIZES.len() - 1])
}

/// Accumulates flows into buckets (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct TimelineBuilder {
    /// Index into [`BUCKET_SIZES`] of the current size.
    size_index: usize,
    /// Keyed by bucket start.
    buckets: BTreeMap<i64, Bucket>,
    /// Earliest and latest second seen (not bucket-aligned).
    span: Option<(i64, i64)>,
}

impl TimelineBuilder {
    /// Count a flow at `seconds` since the epoch.
    pub fn add(&mut self, seconds: i64, bytes: u64, packets: u64) {
        let (first, last) = match self.span {
            Some((f, l)) => (f.min(seconds), l.max(seconds)),
            None => (seconds, seconds),
        };
        self.span = Some((first, last));
        // Coarsen until the whole span fits: then the map can never exceed
        // the limit, whatever order the flows come in.
        while self.size_index + 1 < BUCKET_SIZES.len()
            && bucket_count(first, last, self.size()) > MAX_LIVE_BUCKETS as u64
        {
            self.coarsen(self.size_index + 1);
        }
        let size = self.size() as i64;
        let start = align(seconds, size);
        let b = self.buckets.entry(start).or_insert(Bucket {
            start,
            ..Bucket::default()
        });
        b.bytes = b.bytes.saturating_add(bytes);
        b.packets = b.packets.saturating_add(packets);
        b.flows = b.flows.saturating_add(1);
    }

    fn size(&self) -> u64 {
        BUCKET_SIZES[self.size_index]
    }

    /// Merge every bucket into buckets of `BUCKET_SIZES[index]`.
    fn coarsen(&mut self, index: usize) {
        if index <= self.size_index {
            return;
        }
        self.size_index = index;
        let size = self.size() as i64;
        let old = std::mem::take(&mut self.buckets);
        for (start, b) in old {
            let start = align(start, size);
            let m = self.buckets.entry(start).or_insert(Bucket {
                start,
                ..Bucket::default()
            });
            m.bytes = m.bytes.saturating_add(b.bytes);
            m.packets = m.packets.saturating_add(b.packets);
            m.flows = m.flows.saturating_add(b.flows);
        }
    }

    /// The earliest and latest second counted.
    pub fn span(&self) -> Option<(i64, i64)> {
        self.span
    }

    /// Buckets of the chosen size over the whole span (empty when nothing was added).
    pub fn finish(mut self) -> Timeline {
        let Some((first, last)) = self.span else {
            return Timeline {
                bucket_seconds: choose_bucket_size(0, 0),
                buckets: Vec::new(),
            };
        };
        let chosen = choose_bucket_size(first, last);
        // The live size may already be coarser than the target (it never is
        // in practice: MAX_LIVE_BUCKETS > TARGET_BUCKETS); keep what we have.
        let index = BUCKET_SIZES
            .iter()
            .position(|&s| s == chosen)
            .unwrap_or(0)
            .max(self.size_index);
        self.coarsen(index);
        let size = self.size() as i64;
        let first_start = align(first, size);
        let n = bucket_count(first, last, size as u64);
        if n > MAX_FILLED_BUCKETS {
            return Timeline {
                bucket_seconds: size as u64,
                buckets: self.buckets.into_values().collect(),
            };
        }
        let buckets = (0..n as i64)
            .map(|i| {
                let start = first_start.saturating_add(i.saturating_mul(size));
                self.buckets.get(&start).copied().unwrap_or(Bucket {
                    start,
                    ..Bucket::default()
                })
            })
            .collect();
        Timeline {
            bucket_seconds: size as u64,
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_size_divides_the_next() {
        for w in BUCKET_SIZES.windows(2) {
            assert_eq!(w[1] % w[0], 0, "{} does not divide {}", w[0], w[1]);
        }
    }

    #[test]
    fn a_single_flow_is_one_one_second_bucket() {
        let mut b = TimelineBuilder::default();
        b.add(1_700_000_007, 100, 2);
        let t = b.finish();
        assert_eq!(t.bucket_seconds, 1);
        assert_eq!(
            t.buckets,
            vec![Bucket {
                start: 1_700_000_007,
                bytes: 100,
                packets: 2,
                flows: 1
            }]
        );
    }

    #[test]
    fn nothing_gives_no_buckets() {
        assert!(TimelineBuilder::default().finish().buckets.is_empty());
    }

    #[test]
    fn one_hour_uses_one_minute_buckets_with_empty_ones_filled() {
        let base = 1_700_000_000 - 1_700_000_000 % 3600; // on the hour
        let mut b = TimelineBuilder::default();
        b.add(base + 10, 1, 1);
        b.add(base + 3599, 2, 1);
        b.add(base + 65, 4, 1);
        b.add(base + 119, 8, 1);
        let t = b.finish();
        // 1 s needs 3590 buckets, 5 s 718, 10 s 359, 30 s exactly 120: 30 s.
        assert_eq!(t.bucket_seconds, 30);
        assert_eq!(t.buckets.len(), 120);
        assert_eq!(t.buckets[0].bytes, 1);
        assert_eq!(t.buckets[2].bytes, 4); // base+65 in [base+60, base+90)
        assert_eq!(t.buckets[3].bytes, 8); // base+119 in [base+90, base+120)
        assert_eq!(t.buckets[119].bytes, 2);
        assert_eq!(t.buckets.iter().map(|b| b.flows).sum::<u64>(), 4);
        for w in t.buckets.windows(2) {
            assert_eq!(w[1].start - w[0].start, 30);
        }
    }

    #[test]
    fn a_long_span_in_any_order_stays_bounded_and_exact() {
        // Ten years of flows, one every 1000 s, arriving newest first.
        let mut b = TimelineBuilder::default();
        let mut total = 0u64;
        for i in (0..315_360i64).rev() {
            b.add(i * 1000, i as u64, 1);
            total += i as u64;
            assert!(b.buckets.len() <= MAX_LIVE_BUCKETS);
        }
        let t = b.finish();
        assert_eq!(t.bucket_seconds, 604_800);
        assert_eq!(t.buckets.iter().map(|b| b.bytes).sum::<u64>(), total);
        assert_eq!(t.buckets.iter().map(|b| b.flows).sum::<u64>(), 315_360);
        assert_eq!(
            t.buckets.len() as u64,
            bucket_count(0, 315_359_000, 604_800)
        );
    }

    #[test]
    fn garbage_times_at_both_ends_stay_bounded() {
        let mut b = TimelineBuilder::default();
        b.add(i64::MIN, 1, 1);
        b.add(i64::MAX, 2, 1);
        b.add(1_700_000_000, 4, 1);
        let t = b.finish();
        assert_eq!(t.bucket_seconds, 604_800);
        assert_eq!(t.buckets.len(), 3);
        assert_eq!(t.buckets.iter().map(|b| b.bytes).sum::<u64>(), 7);
    }

    #[test]
    fn negative_times_align_downwards() {
        assert_eq!(bucket_count(-1, 0, 5), 2);
        let mut b = TimelineBuilder::default();
        b.add(-1, 1, 1);
        assert_eq!(b.finish().buckets[0].start, -1);
    }
}
