//! A socket's kernel drop count from `/proc/net/udp` (`udp6` for IPv6): the
//! row whose `inode` column is the socket's inode, last column `drops`
//! (columns as printed by the kernel's `udp4_format_sock`: sl, local_address,
//! rem_address, st, tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout,
//! inode, ref, pointer, drops).

use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

/// Drops of `socket` as the kernel reports them now.
pub fn socket_drops(socket: &Socket, ipv6: bool) -> io::Result<u64> {
    // SAFETY: fstat on a valid descriptor into a zeroed stat it may fill.
    let inode = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(socket.as_raw_fd(), &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        st.st_ino
    };
    let path = if ipv6 {
        "/proc/net/udp6"
    } else {
        "/proc/net/udp"
    };
    let table = std::fs::read_to_string(path)?;
    drops_of_inode(&table, inode).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no row for socket inode {inode} in {path}"),
        )
    })
}

/// The `drops` column of the row of `inode` in a `/proc/net/udp` table.
fn drops_of_inode(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        let row_inode: u64 = columns.get(9)?.parse().ok()?;
        if row_inode != inode {
            return None;
        }
        columns.get(12)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows written by hand from the kernel's format string
    /// "%5d: %08X:%04X %08X:%04X %02X %08X:%08X %02X:%08lX %08X %5u %8d %lu %d %pK %u".
    const TABLE: &str = concat!(
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n",
        "  110: 0100007F:0807 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0\n",
        "  111: 0100007F:0808 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 98765 2 0000000000000000 1234\n",
    );

    #[test]
    fn drops_of_the_row_with_the_socket_inode() {
        assert_eq!(drops_of_inode(TABLE, 98765), Some(1234));
        assert_eq!(drops_of_inode(TABLE, 4242), Some(0));
        assert_eq!(drops_of_inode(TABLE, 1), None);
    }

    #[test]
    fn a_fresh_socket_has_a_row_and_no_drops() {
        let s = Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        assert_eq!(socket_drops(&s, false).unwrap(), 0);
    }
}
