//! Datagrams the kernel dropped on the collector's sockets (receive buffer
//! full), read on Linux from the `drops` column of `/proc/net/udp` and
//! `/proc/net/udp6` for the sockets' inodes.

use std::net::UdpSocket;
use std::sync::Mutex;

use crate::stats::Stats;

/// The sockets' inodes and their last drop counts (kept once a socket is closed).
#[derive(Debug, Default)]
pub(crate) struct SocketDrops {
    inodes: Vec<u64>,
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
    pub(crate) fn new(sockets: &[UdpSocket]) -> SocketDrops {
        let inodes: Vec<u64> = sockets.iter().filter_map(inode).collect();
        SocketDrops {
            last: Mutex::new(vec![0; inodes.len()]),
            inodes,
        }
    }

    /// Read the counts again and store their sum in [`GlobalStats::socket_drops`](crate::GlobalStats::socket_drops).
    pub(crate) fn refresh(&self, stats: &Mutex<Stats>) {
        if self.inodes.is_empty() {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        for table in ["/proc/net/udp", "/proc/net/udp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            for (inode, drops) in parse_table(&text) {
                if let Some(i) = self.inodes.iter().position(|&n| n == inode) {
                    last[i] = drops;
                }
            }
        }
        let sum = last.iter().sum();
        stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .global
            .socket_drops = sum;
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
}
