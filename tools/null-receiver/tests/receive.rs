//! The null receiver counts exactly what a plain UDP sender sent (the truth is
//! the sender's own tally), stops on its idle timeout and on SIGTERM, and
//! accounts for every datagram the kernel dropped when its queue was full.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Start the receiver on a free loopback port; returns it and its address
/// (read from its "listening on" line).
fn start(extra: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_null-receiver"))
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

fn report(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Send `n` datagrams of lengths 1.. paced so a loopback socket keeps up;
/// returns the bytes sent.
fn send(to: SocketAddr, n: usize, pace: bool) -> u64 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut bytes = 0;
    for i in 0..n {
        let len = 1 + i % 1400;
        bytes += s.send_to(&vec![i as u8; len], to).unwrap() as u64;
        if pace && i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    bytes
}

#[test]
fn counts_every_datagram_and_byte_then_stops_when_idle() {
    let (child, addr) = start(&["--idle-timeout", "1"]);
    let bytes = send(addr, 3000, true);
    let r = report(child);
    assert_eq!(r["datagrams"], 3000);
    assert_eq!(r["bytes"], bytes);
    assert_eq!(r["truncated"], 0);
    assert_eq!(r["kernel_drops_proc"], 0);
    assert_eq!(r["stopped_by"], "idle");
}

#[test]
fn stops_on_sigterm_and_prints_its_counts() {
    let (child, addr) = start(&["--idle-timeout", "0"]);
    let bytes = send(addr, 10, false);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let r = report(child);
    assert_eq!(r["datagrams"], 10);
    assert_eq!(r["bytes"], bytes);
    assert_eq!(r["stopped_by"], "signal");
}

#[test]
fn datagrams_received_plus_kernel_drops_equal_datagrams_sent() {
    // A small buffer and no reading for a second: most of the burst is dropped.
    let (child, addr) = start(&["--idle-timeout", "1", "--rcvbuf", "8192", "--pause", "1"]);
    let burst = 2000;
    send(addr, burst, false);
    // After the receiver drained its queue: one more datagram, which carries
    // the SO_RXQ_OVFL count of everything dropped before it.
    std::thread::sleep(Duration::from_millis(1500));
    send(addr, 1, false);
    let r = report(child);
    let received = r["datagrams"].as_u64().unwrap();
    let proc_drops = r["kernel_drops_proc"].as_u64().unwrap();
    let ovfl_drops = r["kernel_drops_rxq_ovfl"].as_u64().unwrap();
    assert!(proc_drops > 0, "{r}");
    assert_eq!(received + proc_drops, burst as u64 + 1, "{r}");
    assert_eq!(ovfl_drops, proc_drops, "{r}");
}

/// `--gro`: a UDP GSO send of 10 datagrams (9 of 100 bytes and one of 40),
/// which on loopback reaches the socket whole, is counted as 10 datagrams
/// in one coalesced receive.
#[test]
fn gro_counts_a_coalesced_burst_datagram_by_datagram() {
    use std::os::unix::io::AsRawFd;
    let (child, addr) = start(&["--idle-timeout", "1", "--gro"]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(addr).unwrap();
    let burst = vec![7u8; 9 * 100 + 40];
    #[repr(C, align(8))]
    struct Control([u8; 32]);
    let mut control = Control([0; 32]);
    let mut iov = libc::iovec {
        iov_base: burst.as_ptr() as *mut libc::c_void,
        iov_len: burst.len(),
    };
    // SAFETY: all-zero is a valid msghdr; it points to one iovec over
    // `burst` (only read) and to an 8-byte aligned control buffer of
    // CMSG_SPACE(2) bytes holding one UDP_SEGMENT (103) message of 100.
    let sent = unsafe {
        let mut h: libc::msghdr = std::mem::zeroed();
        h.msg_iov = &mut iov;
        h.msg_iovlen = 1;
        h.msg_control = control.0.as_mut_ptr().cast();
        h.msg_controllen = libc::CMSG_SPACE(2) as _;
        let c = libc::CMSG_FIRSTHDR(&h);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = 103;
        (*c).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), 100);
        libc::sendmsg(s.as_raw_fd(), &h, 0)
    };
    assert_eq!(
        sent,
        burst.len() as isize,
        "{}",
        std::io::Error::last_os_error()
    );
    let r = report(child);
    assert_eq!(r["datagrams"], 10, "{r}");
    assert_eq!(r["bytes"], burst.len(), "{r}");
    assert_eq!(r["coalesced_receives"], 1, "{r}");
}
