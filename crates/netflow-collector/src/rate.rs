//! Per-exporter rate limits: a token bucket per source address.
//!
//! An exporter address may send `per_second` datagrams (UDP) or messages
//! (IPFIX over TCP, RFC 7011 section 10.4) per second on average, with
//! bursts of up to `burst`. Over UDP, datagrams beyond the limit are dropped
//! before decoding and counted per source ([`crate::GlobalStats::rate_limited`],
//! [`crate::Stats::rate_limited`]): one flooding exporter (or a spoofer
//! using its address) cannot starve the others of decode time. Over TCP
//! nothing is dropped: the session stops reading until the bucket refills,
//! so the exporter's own TCP flow control slows it down
//! ([`crate::TcpStats::rate_paused`]).
//!
//! Buckets are keyed by the source IP address, not address and port: a
//! source cannot escape its limit by changing ports. All listen sockets and
//! sessions share the buckets. Their number is bounded
//! ([`MAX_BUCKETS`]); when it is reached, idle buckets (full again) are
//! forgotten, and sources beyond the bound share one overflow bucket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Largest number of source addresses with a bucket of their own.
pub const MAX_BUCKETS: usize = 65_536;

/// A per-exporter rate limit ([`crate::Config::rate_limit`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExporterRateLimit {
    /// Datagrams (UDP) or messages (TCP) per second, on average.
    pub per_second: f64,
    /// How many may come at once after a quiet time (at least 1).
    pub burst: u32,
}

impl ExporterRateLimit {
    /// `per_second` with a burst of one second's worth.
    pub fn per_second(per_second: f64) -> ExporterRateLimit {
        ExporterRateLimit {
            per_second,
            burst: (per_second.ceil() as u32).max(1),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.burst.max(1))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, limit: &ExporterRateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(limit.capacity());
        self.at = now;
    }
}

/// The buckets of every source address seen.
#[derive(Debug)]
pub(crate) struct TokenBuckets {
    limit: ExporterRateLimit,
    buckets: HashMap<IpAddr, Bucket>,
    /// Shared by the sources beyond [`MAX_BUCKETS`].
    overflow: Bucket,
    max_buckets: usize,
}

impl TokenBuckets {
    pub(crate) fn new(limit: ExporterRateLimit, now: Instant) -> TokenBuckets {
        TokenBuckets::with_max_buckets(limit, MAX_BUCKETS, now)
    }

    fn with_max_buckets(
        limit: ExporterRateLimit,
        max_buckets: usize,
        now: Instant,
    ) -> TokenBuckets {
        TokenBuckets {
            limit,
            buckets: HashMap::new(),
            overflow: Bucket {
                tokens: limit.capacity(),
                at: now,
            },
            max_buckets,
        }
    }

    fn bucket(&mut self, source: IpAddr, now: Instant) -> &mut Bucket {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.max_buckets {
            // Forget the sources whose bucket is full again: they have been
            // quiet for at least a burst's time, and a new bucket starts full.
            let limit = self.limit;
            self.buckets.retain(|_, b| {
                b.refill(&limit, now);
                b.tokens < limit.capacity()
            });
        }
        if self.buckets.len() >= self.max_buckets && !self.buckets.contains_key(&source) {
            return &mut self.overflow;
        }
        let capacity = self.limit.capacity();
        self.buckets.entry(source).or_insert(Bucket {
            tokens: capacity,
            at: now,
        })
    }

    /// Take one token for `source`: `true` when it may go on.
    pub(crate) fn admit(&mut self, source: IpAddr, now: Instant) -> bool {
        self.take_or_wait(source, now).is_none()
    }

    /// Take one token for `source` if there is one (`None`), else how long
    /// until there is one (nothing taken).
    pub(crate) fn take_or_wait(&mut self, source: IpAddr, now: Instant) -> Option<Duration> {
        let limit = self.limit;
        let b = self.bucket(source, now);
        b.refill(&limit, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return None;
        }
        let missing = 1.0 - b.tokens;
        let secs = if limit.per_second > 0.0 {
            missing / limit.per_second
        } else {
            // Never refills: wait a long time, in steps the caller can interrupt.
            3600.0
        };
        Some(Duration::from_secs_f64(secs.clamp(1e-6, 3600.0)))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let limit = ExporterRateLimit {
            per_second: 10.0,
            burst: 5,
        };
        let mut b = TokenBuckets::new(limit, t0);
        let admitted = (0..20).filter(|_| b.admit(ip(1), t0)).count();
        assert_eq!(admitted, 5, "a full bucket lets the burst through, no more");
        // 10 per second: 0.5 s later, 5 more.
        let t1 = t0 + Duration::from_millis(500);
        let admitted = (0..20).filter(|_| b.admit(ip(1), t1)).count();
        assert_eq!(admitted, 5);
        // Another source has its own bucket.
        assert!(b.admit(ip(2), t1));
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(60);
        let admitted = (0..20).filter(|_| b.admit(ip(1), t2)).count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn the_wait_is_the_time_to_the_next_token() {
        let t0 = Instant::now();
        let limit = ExporterRateLimit {
            per_second: 4.0,
            burst: 1,
        };
        let mut b = TokenBuckets::new(limit, t0);
        assert_eq!(b.take_or_wait(ip(1), t0), None);
        let wait = b.take_or_wait(ip(1), t0).expect("empty bucket");
        assert_eq!(wait, Duration::from_millis(250));
        // Waiting does not take a token: after the wait there is one.
        assert_eq!(b.take_or_wait(ip(1), t0 + wait), None);
    }

    #[test]
    fn buckets_are_bounded_idle_ones_are_forgotten_the_rest_share_one() {
        let t0 = Instant::now();
        let limit = ExporterRateLimit {
            per_second: 1.0,
            burst: 2,
        };
        let mut b = TokenBuckets::with_max_buckets(limit, 3, t0);
        for last in 1..=3 {
            assert!(b.admit(ip(last), t0));
        }
        assert_eq!(b.len(), 3);
        // Full: sources 4 and 5 share the overflow bucket (2 tokens).
        assert!(b.admit(ip(4), t0));
        assert!(b.admit(ip(5), t0));
        assert!(!b.admit(ip(4), t0), "the overflow bucket is shared");
        assert_eq!(b.len(), 3);
        // Ten seconds later the first three are idle (full): forgotten, so a
        // new source gets a bucket of its own.
        let t1 = t0 + Duration::from_secs(10);
        assert!(b.admit(ip(6), t1));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn per_second_sets_a_burst_of_one_second() {
        assert_eq!(ExporterRateLimit::per_second(250.0).burst, 250);
        assert_eq!(ExporterRateLimit::per_second(0.5).burst, 1);
    }
}
