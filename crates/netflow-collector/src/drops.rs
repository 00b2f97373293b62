//! Per listen socket: datagrams received and datagrams the kernel dropped
//! (receive buffer full), from two sources: the `SO_RXQ_OVFL` count that
//! arrives with received datagrams ([`crate::recv`]), and on Linux the
//! `drops` column of `/proc/net/udp` and `/proc/net/udp6` for the socket's
//! inode (which also sees drops after the last datagram received).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::stats::{SocketStats, Stats};

/// Counters a receive thread updates for its socket.
#[derive(Debug)]
pub(crate) struct SocketCounters {
    pub(crate) local: SocketAddr,
    pub(crate) datagrams: AtomicU64,
    /// Messages that held several datagrams (`UDP_GRO`).
    pub(crate) coalesced: AtomicU64,
    /// The socket's `SO_RXQ_OVFL` drop count, widened to 64 bits.
    pub(crate) rxq_ovfl: AtomicU64,
    inode: Option<u64>,
}

/// The sockets' counters and their last `/proc` drop counts (kept once a socket is closed).
#[derive(Debug, Default)]
pub(crate) struct SocketDrops {
    pub(crate) sockets: Vec<SocketCounters>,
    last: Mutex<Vec<u64>>,
}

/// The inode of a socket (Linux: `stat /proc/self/fd/N`).
#[cfg(target_os = "linux")]
fn inode(socket: &UdpSocket) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
        .ok()
        .map(|m| m.ino())
}

#[cfg(not(target_os = "linux"))]
fn inode(_: &UdpSocket) -> Option<u64> {
    None
}

/// `(inode, drops)` of every line of a `/proc/net/udp` style table.
pub(crate) fn parse_table(text: &str) -> impl Iterator<Item = (u64, u64)> + '_ {
    text.lines().skip(1).filter_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        let inode = cols.get(9)?.parse().ok()?;
        let drops = cols.get(12)?.parse().ok()?;
        Some((inode, drops))
    })
}

impl SocketDrops {
    pub(crate) fn new(sockets: &[(UdpSocket, SocketAddr)]) -> SocketDrops {
        SocketDrops {
            last: Mutex::new(vec![0; sockets.len()]),
            sockets: sockets
                .iter()
                .map(|(s, local)| SocketCounters {
                    local: *local,
                    datagrams: AtomicU64::new(0),
                    coalesced: AtomicU64::new(0),
                    rxq_ovfl: AtomicU64::new(0),
                    inode: inode(s),
                })
                .collect(),
        }
    }

    /// Read the `/proc` counts again; store them and the receive threads'
    /// counters per socket ([`Stats::sockets`]) and summed
    /// ([`GlobalStats::socket_drops`](crate::GlobalStats::socket_drops),
    /// [`GlobalStats::rxq_ovfl_drops`](crate::GlobalStats::rxq_ovfl_drops)).
    pub(crate) fn refresh(&self, stats: &Mutex<Stats>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if self.sockets.iter().any(|s| s.inode.is_some()) {
            for table in ["/proc/net/udp", "/proc/net/udp6"] {
                let Ok(text) = std::fs::read_to_string(table) else {
                    continue;
                };
                for (inode, drops) in parse_table(&text) {
                    if let Some(i) = self.sockets.iter().position(|s| s.inode == Some(inode)) {
                        last[i] = drops;
                    }
                }
            }
        }
        let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
        let (mut proc_sum, mut ovfl_sum) = (0, 0);
        for (c, proc_drops) in self.sockets.iter().zip(last.iter()) {
            let v = SocketStats {
                datagrams: c.datagrams.load(Ordering::Relaxed),
                coalesced: c.coalesced.load(Ordering::Relaxed),
                rxq_ovfl_drops: c.rxq_ovfl.load(Ordering::Relaxed),
                proc_drops: *proc_drops,
            };
            proc_sum += v.proc_drops;
            ovfl_sum += v.rxq_ovfl_drops;
            s.sockets.insert(c.local, v);
        }
        s.global.socket_drops = proc_sum;
        s.global.rxq_ovfl_drops = ovfl_sum;
    }
}

/// Widens the kernel's 32-bit `SO_RXQ_OVFL` count (it wraps) to 64 bits.
#[derive(Debug, Default)]
pub(crate) struct OverflowCount {
    last: u32,
    total: u64,
}

impl OverflowCount {
    /// A count seen on a datagram; returns the total so far. Counts that
    /// went back (datagrams queued before a later one) change nothing.
    pub(crate) fn observe(&mut self, v: u32) -> u64 {
        let delta = v.wrapping_sub(self.last);
        if delta != 0 && delta < 1 << 31 {
            self.total += u64::from(delta);
            self.last = v;
        }
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_proc_table() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  781: 00000000:0807 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 17\n";
        assert_eq!(parse_table(text).collect::<Vec<_>>(), [(123456, 17)]);
    }

    #[test]
    fn overflow_count_widens_and_ignores_older_counts() {
        let mut c = OverflowCount::default();
        assert_eq!(c.observe(5), 5);
        assert_eq!(c.observe(3), 5, "an older count");
        assert_eq!(c.observe(u32::MAX), 5, "far back is older, not a jump");
        let mut c = OverflowCount {
            last: u32::MAX - 1,
            total: 10,
        };
        assert_eq!(c.observe(2), 14, "wrapped: 0xfffffffe -> 2 is 4 more");
    }
}
