//! Reverse DNS that never stalls the analyzer.
//!
//! The original resolves every address with a blocking `socket.getfqdn` on
//! the printing thread, one after the other: with an unreachable resolver
//! each address costs the resolver's full timeout (5 s x attempts by
//! default), so a table of 100 hosts can take many minutes.
//!
//! [`Resolver::resolve_all`] resolves a set of addresses up front instead:
//! - at most [`ResolverConfig::concurrency`] lookups in flight, each on its own
//!   thread (getnameinfo cannot be cancelled, so a slow lookup is
//!   abandoned, not killed: its thread ends whenever the system call returns);
//! - a lookup that takes longer than [`ResolverConfig::per_lookup_timeout`] counts as
//!   failed and frees its slot; at most as many abandoned lookups as
//!   `concurrency` may still be running before no new ones start (threads stay bounded);
//! - after [`ResolverConfig::deadline`] nothing new starts and every address not yet
//!   resolved falls back to its text, like `getfqdn` does on failure;
//! - results (failures too) are cached for the resolver's lifetime.
//!
//! The lookup function is injectable ([`Resolver::with_lookup`]) so tests can
//! check timeout, cache and concurrency with a fake one.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A reverse lookup: `Some(name)` or `None` when the address has no name.
pub type LookupFn = Arc<dyn Fn(IpAddr) -> Option<String> + Send + Sync>;

/// Limits of [`Resolver`].
#[derive(Debug, Clone, Copy)]
pub struct ResolverConfig {
    /// Lookups in flight at once.
    pub concurrency: usize,
    /// A lookup slower than this falls back to the address text.
    pub per_lookup_timeout: Duration,
    /// Nothing is looked up after this much time since `resolve_all` began.
    pub deadline: Duration,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            concurrency: 8,
            per_lookup_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(5),
        }
    }
}

/// Counters of one resolver (for tests and `--verbose` diagnostics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Lookups started (cache hits are not lookups).
    pub lookups: usize,
    /// Lookups given up after the per-lookup timeout.
    pub timed_out: usize,
    /// Addresses that fell back to text because the deadline passed or too
    /// many lookups were still hanging.
    pub not_attempted: usize,
}

/// Reverse DNS with bounded concurrency, timeouts, a deadline and a cache.
pub struct Resolver {
    lookup: LookupFn,
    config: ResolverConfig,
    cache: Mutex<HashMap<IpAddr, Option<String>>>,
    stats: Mutex<ResolverStats>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("config", &self.config)
            .finish()
    }
}

/// The system's reverse lookup (getnameinfo, which reads /etc/hosts and DNS
/// per nsswitch.conf): the name, or `None` when there is none.
pub fn system_lookup(ip: IpAddr) -> Option<String> {
    match dns_lookup::lookup_addr(&ip) {
        // getnameinfo answers the numeric text when it finds no name.
        Ok(name) if name.parse::<IpAddr>().is_err() && !name.is_empty() => Some(name),
        _ => None,
    }
}

impl Resolver {
    /// The system resolver with `config`.
    pub fn system(config: ResolverConfig) -> Self {
        Self::with_lookup(Arc::new(system_lookup), config)
    }

    /// Any lookup function (tests inject a fake one).
    pub fn with_lookup(lookup: LookupFn, config: ResolverConfig) -> Self {
        Resolver {
            lookup,
            config: ResolverConfig {
                concurrency: config.concurrency.max(1),
                ..config
            },
            cache: Mutex::new(HashMap::new()),
            stats: Mutex::new(ResolverStats::default()),
        }
    }

    pub fn stats(&self) -> ResolverStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached name of `ip`, or its text when unknown/unresolved.
    pub fn name(&self, ip: IpAddr) -> String {
        self.resolved(ip).unwrap_or_else(|| ip.to_string())
    }

    /// The cached name of `ip`; `None` when it has none, the lookup failed
    /// or timed out, or it was never resolved.
    pub fn resolved(&self, ip: IpAddr) -> Option<String> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ip)
            .cloned()
            .flatten()
    }

    /// Resolve every address of `ips` (duplicates and cached ones are looked
    /// up once), returning after all are done or at the deadline. Afterwards
    /// [`Resolver::name`] answers for each of them.
    pub fn resolve_all(&self, ips: impl IntoIterator<Item = IpAddr>) {
        let started = Instant::now();
        let mut todo: Vec<IpAddr> = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let mut seen = HashSet::new();
            ips.into_iter()
                .filter(|ip| !cache.contains_key(ip) && seen.insert(*ip))
                .collect()
        };
        todo.reverse(); // pop() takes them in the given order
        let (tx, rx) = mpsc::channel::<(IpAddr, Option<String>)>();
        // Lookups whose threads have not returned yet (in flight or abandoned).
        let running = Arc::new(AtomicUsize::new(0));
        let mut in_flight: HashMap<IpAddr, Instant> = HashMap::new();
        let mut results: Vec<(IpAddr, Option<String>)> = Vec::new();
        let mut stats = ResolverStats::default();
        let max_threads = self.config.concurrency * 2;
        loop {
            let now = Instant::now();
            let past_deadline = now.duration_since(started) >= self.config.deadline;
            // Start lookups while slots are free.
            while !past_deadline
                && in_flight.len() < self.config.concurrency
                && running.load(Ordering::SeqCst) < max_threads
            {
                let Some(ip) = todo.pop() else { break };
                stats.lookups += 1;
                in_flight.insert(ip, now);
                running.fetch_add(1, Ordering::SeqCst);
                let (tx, lookup, counter) = (tx.clone(), self.lookup.clone(), running.clone());
                let spawned = std::thread::Builder::new()
                    .name("netflow-dns".into())
                    .spawn(move || {
                        let name = lookup(ip);
                        counter.fetch_sub(1, Ordering::SeqCst);
                        // The receiver may be gone (timed out): nothing to do then.
                        let _ = tx.send((ip, name));
                    });
                if spawned.is_err() {
                    // No thread: this address keeps its text.
                    running.fetch_sub(1, Ordering::SeqCst);
                    in_flight.remove(&ip);
                    results.push((ip, None));
                }
            }
            if in_flight.is_empty() {
                break;
            }
            // Wait for the next answer, at most until the earliest timeout or the deadline.
            let earliest = in_flight.values().min().copied().unwrap_or(now);
            let until_timeout =
                (earliest + self.config.per_lookup_timeout).saturating_duration_since(now);
            let until_deadline = (started + self.config.deadline).saturating_duration_since(now);
            match rx.recv_timeout(
                until_timeout
                    .min(until_deadline)
                    .max(Duration::from_millis(1)),
            ) {
                Ok((ip, name)) => {
                    if in_flight.remove(&ip).is_some() {
                        results.push((ip, name));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    let deadline_passed = now.duration_since(started) >= self.config.deadline;
                    in_flight.retain(|ip, since| {
                        let late = deadline_passed
                            || now.duration_since(*since) >= self.config.per_lookup_timeout;
                        if late {
                            stats.timed_out += 1;
                            results.push((*ip, None));
                        }
                        !late
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if todo.is_empty() && in_flight.is_empty() {
                break;
            }
            if in_flight.is_empty() && running.load(Ordering::SeqCst) >= max_threads {
                // Every slot is taken by a hanging lookup: give up on the rest.
                break;
            }
        }
        stats.not_attempted = todo.len();
        results.extend(todo.into_iter().map(|ip| (ip, None)));
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.extend(results);
        let mut total = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        total.lookups += stats.lookups;
        total.timed_out += stats.timed_out;
        total.not_attempted += stats.not_attempted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn ips(n: u8) -> Vec<IpAddr> {
        (1..=n).map(|i| IpAddr::from([192, 0, 2, i])).collect()
    }

    #[test]
    fn names_are_cached_and_failures_fall_back_to_text() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let r = Resolver::with_lookup(
            Arc::new(move |ip: IpAddr| {
                c.fetch_add(1, Ordering::SeqCst);
                (ip == IpAddr::from([192, 0, 2, 1])).then(|| "one.example".to_string())
            }),
            ResolverConfig::default(),
        );
        let mut list = ips(3);
        list.extend(ips(3)); // duplicates
        r.resolve_all(list.clone());
        r.resolve_all(list); // all cached now
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(r.name(IpAddr::from([192, 0, 2, 1])), "one.example");
        assert_eq!(r.name(IpAddr::from([192, 0, 2, 2])), "192.0.2.2");
        assert_eq!(r.stats().lookups, 3);
    }

    #[test]
    fn concurrency_is_bounded() {
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (n, p) = (now.clone(), peak.clone());
        let r = Resolver::with_lookup(
            Arc::new(move |_| {
                let c = n.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(c, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                n.fetch_sub(1, Ordering::SeqCst);
                Some("h".into())
            }),
            ResolverConfig {
                concurrency: 3,
                per_lookup_timeout: Duration::from_secs(30),
                deadline: Duration::from_secs(60),
            },
        );
        r.resolve_all(ips(12));
        assert!(
            peak.load(Ordering::SeqCst) <= 3,
            "peak {}",
            peak.load(Ordering::SeqCst)
        );
        assert_eq!(r.stats().lookups, 12);
        assert!(ips(12).into_iter().all(|ip| r.name(ip) == "h"));
    }

    /// A resolver that hangs (an unreachable DNS server): every address falls
    /// back to its text, at most 2 x concurrency lookups are ever started, and
    /// the call returns long before the hanging lookups would.
    #[test]
    fn hanging_lookups_time_out_to_text() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let r = Resolver::with_lookup(
            Arc::new(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(3600));
                Some("never".into())
            }),
            ResolverConfig {
                concurrency: 4,
                per_lookup_timeout: Duration::from_millis(50),
                deadline: Duration::from_secs(600),
            },
        );
        let list = ips(40);
        let started = Instant::now();
        r.resolve_all(list.clone());
        // Not a timing assertion on the fast side: only that it did not wait for the sleepers.
        assert!(started.elapsed() < Duration::from_secs(1800));
        assert!(list.iter().all(|ip| r.name(*ip) == ip.to_string()));
        let stats = r.stats();
        assert_eq!(stats.lookups, 8, "{stats:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 8);
        assert_eq!(stats.timed_out, 8);
        assert_eq!(stats.not_attempted, 32);
    }

    #[test]
    fn deadline_stops_new_lookups() {
        let r = Resolver::with_lookup(
            Arc::new(|_| {
                std::thread::sleep(Duration::from_millis(30));
                Some("slow".into())
            }),
            ResolverConfig {
                concurrency: 1,
                per_lookup_timeout: Duration::from_secs(30),
                deadline: Duration::ZERO,
            },
        );
        r.resolve_all(ips(5));
        assert_eq!(r.stats().lookups, 0);
        assert_eq!(r.stats().not_attempted, 5);
        assert_eq!(r.name(IpAddr::from([192, 0, 2, 3])), "192.0.2.3");
    }
}
