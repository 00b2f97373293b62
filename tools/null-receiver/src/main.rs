//! `null-receiver`: the floor for collector benchmarks (issue 7). It binds a
//! UDP socket with a large kernel receive buffer, receives with `recvmmsg(2)`
//! into buffers allocated once, discards every datagram and counts datagrams
//! and bytes. It stops after `--idle-timeout` seconds without a datagram, or
//! on SIGINT/SIGTERM/SIGHUP, and prints one JSON object on standard output.
//!
//! Kernel drops (datagrams the kernel discarded because the socket's receive
//! queue was full) are reported two ways:
//! - `kernel_drops_rxq_ovfl`: the `SO_RXQ_OVFL` control message (socket(7)),
//!   the socket's drop count when a datagram was queued; it only moves when a
//!   datagram arrives after the drops, so drops after the last datagram are
//!   not in it;
//! - `kernel_drops_proc`: the `drops` column of the socket's row in
//!   `/proc/net/udp` (or `udp6`), read at exit; it counts them all.
//!
//! `--gro` receives as `netflow collector` does: with `UDP_GRO` (udp(7),
//! Linux 5.0 and later) the kernel may hand over a burst of equal-sized
//! datagrams of one source as one message with its segment size; each
//! segment is counted as the datagram it was (`datagrams`), the messages
//! that held several in `coalesced_receives`.
//!
//! Linux only (recvmmsg, SO_RCVBUFFORCE, SO_RXQ_OVFL, UDP_GRO, /proc).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};

mod proc_udp;

/// Receive UDP datagrams as fast as possible, discard them, print counts as JSON.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on (port 0: any free port, printed on standard error).
    #[arg(long, default_value = "127.0.0.1:2055")]
    listen: SocketAddr,
    /// Kernel receive buffer to ask for, bytes. SO_RCVBUFFORCE is tried first
    /// (needs CAP_NET_ADMIN, ignores net.core.rmem_max), then SO_RCVBUF.
    #[arg(long, default_value_t = 64 << 20)]
    rcvbuf: usize,
    /// Stop after this many seconds without a datagram (0: only on a signal).
    #[arg(long, default_value_t = 2.0)]
    idle_timeout: f64,
    /// Datagrams per recvmmsg call (each has its own buffer).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch: u32,
    /// Size of each receive buffer, bytes (a longer datagram is counted as truncated).
    #[arg(long, default_value_t = 65535)]
    buffer_size: usize,
    /// Sleep this many seconds after binding before receiving (to test drop counting).
    #[arg(long, default_value_t = 0.0, hide = true)]
    pause: f64,
    /// Receive with UDP_GRO, as `netflow collector` does (coalesced bursts
    /// counted datagram by datagram).
    #[arg(long)]
    gro: bool,
}

/// `UDP_GRO` (linux/udp.h): the socket option and the control message
/// with the segment size of a coalesced message.
const UDP_GRO: libc::c_int = 104;

/// Room for one SO_RXQ_OVFL control message (a u32) per datagram.
const CONTROL_LEN: usize = 64;

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("null-receiver: {e}");
            std::process::exit(1);
        }
    }
}

fn bind(args: &Args) -> io::Result<(Socket, usize)> {
    let socket = Socket::new(
        Domain::for_address(args.listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    let requested = libc::c_int::try_from(args.rcvbuf).unwrap_or(libc::c_int::MAX);
    // SO_RCVBUFFORCE may fail for want of privilege: fall back to SO_RCVBUF,
    // which the kernel caps at net.core.rmem_max.
    if setsockopt_int(&socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, requested).is_err() {
        socket
            .set_recv_buffer_size(args.rcvbuf)
            .map_err(|e| context(e, "SO_RCVBUF"))?;
    }
    setsockopt_int(&socket, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
        .map_err(|e| context(e, "SO_RXQ_OVFL"))?;
    if args.gro {
        setsockopt_int(&socket, libc::SOL_UDP, UDP_GRO, 1).map_err(|e| context(e, "UDP_GRO"))?;
    }
    // Wake up regularly to notice signals and the idle timeout.
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    socket
        .bind(&args.listen.into())
        .map_err(|e| context(e, &format!("bind {}", args.listen)))?;
    let effective = socket.recv_buffer_size()?;
    Ok((socket, effective))
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn setsockopt_int(
    socket: &Socket,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid socket descriptor and a pointer to a live c_int of the
    // length passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Counters of one run.
#[derive(Default)]
struct Counts {
    datagrams: u64,
    bytes: u64,
    truncated: u64,
    calls: u64,
    /// Messages that held several datagrams (`--gro`).
    coalesced: u64,
    /// Largest SO_RXQ_OVFL count seen (it is cumulative).
    rxq_ovfl: u32,
    first: Option<Instant>,
    last: Option<Instant>,
}

fn run(args: &Args) -> io::Result<serde_json::Value> {
    let (socket, rcvbuf) = bind(args)?;
    let local = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))?;
    eprintln!("null-receiver: listening on {local}, receive buffer {rcvbuf} bytes");

    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .map_err(|e| io::Error::other(format!("signal handler: {e}")))?;

    if args.pause > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(args.pause));
    }

    let batch = args.batch as usize;
    let mut buffers = vec![0u8; batch * args.buffer_size];
    let mut control = vec![0u8; batch * CONTROL_LEN];
    let mut iovecs: Vec<libc::iovec> = buffers
        .chunks_mut(args.buffer_size)
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain data; all-zero is a valid value (null pointers,
    // zero lengths) and the pointers are filled in right below.
    let mut headers: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { zeroed() }).collect();
    for (i, h) in headers.iter_mut().enumerate() {
        h.msg_hdr.msg_iov = &mut iovecs[i];
        h.msg_hdr.msg_iovlen = 1;
        h.msg_hdr.msg_control = control[i * CONTROL_LEN..].as_mut_ptr().cast();
    }

    let idle = (args.idle_timeout > 0.0).then(|| Duration::from_secs_f64(args.idle_timeout));
    let started = Instant::now();
    let mut counts = Counts::default();
    let stopped_by = loop {
        if stop.load(Ordering::Relaxed) {
            break "signal";
        }
        for h in headers.iter_mut() {
            // The kernel overwrites these on every call.
            h.msg_hdr.msg_controllen = CONTROL_LEN as _;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: `headers` holds `batch` initialised mmsghdr whose iovecs and
        // control buffers point into `buffers` and `control`, which outlive
        // the call and are not otherwise borrowed meanwhile.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => {
                    let since = counts.last.unwrap_or(started);
                    if idle.is_some_and(|idle| since.elapsed() >= idle) {
                        break "idle";
                    }
                    continue;
                }
                _ => return Err(context(e, "recvmmsg")),
            }
        }
        let now = Instant::now();
        counts.first.get_or_insert(now);
        counts.last = Some(now);
        counts.calls += 1;
        for h in &headers[..n as usize] {
            let len = h.msg_len as usize;
            match gro_segment(&h.msg_hdr).filter(|&s| s > 0 && s < len) {
                Some(segment) => {
                    counts.datagrams += len.div_ceil(segment) as u64;
                    counts.coalesced += 1;
                }
                None => counts.datagrams += 1,
            }
            counts.bytes += h.msg_len as u64;
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                counts.truncated += 1;
            }
            if let Some(drops) = rxq_ovfl(&h.msg_hdr) {
                counts.rxq_ovfl = counts.rxq_ovfl.max(drops);
            }
        }
    };

    let proc_drops = proc_udp::socket_drops(&socket, local.is_ipv6());
    let span = match (counts.first, counts.last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    Ok(serde_json::json!({
        "listen": local.to_string(),
        "datagrams": counts.datagrams,
        "bytes": counts.bytes,
        "truncated": counts.truncated,
        "recvmmsg_calls": counts.calls,
        "coalesced_receives": counts.coalesced,
        "first_to_last_s": span,
        "datagrams_per_s": if span > 0.0 { counts.datagrams as f64 / span } else { 0.0 },
        "receive_buffer_bytes": rcvbuf,
        "kernel_drops_rxq_ovfl": counts.rxq_ovfl,
        "kernel_drops_proc": proc_drops.as_ref().ok(),
        "kernel_drops_proc_error": proc_drops.err().map(|e| e.to_string()),
        "stopped_by": stopped_by,
    }))
}

/// The segment size of a message the kernel coalesced (`--gro`), if it did.
fn gro_segment(header: &libc::msghdr) -> Option<usize> {
    // SAFETY: as in `rxq_ovfl`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return usize::try_from(size).ok();
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// The SO_RXQ_OVFL drop count carried by a received message, if any (the
/// kernel only attaches it once the socket has dropped something).
fn rxq_ovfl(header: &libc::msghdr) -> Option<u32> {
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
    // bounded by msg_controllen, which the kernel set to what it wrote.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                return Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg).cast::<u32>(),
                ));
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}
