//! Batched UDP receive into buffers allocated once.
//!
//! On Linux, `recvmmsg(2)` with `MSG_WAITFORONE` takes up to [`BATCH`]
//! messages per system call into fixed 64 KiB buffers, with each message's
//! source address and its `SO_RXQ_OVFL` ancillary data (socket(7): the
//! number of datagrams the kernel dropped on the socket since it was
//! created, because its receive buffer was full; attached to datagrams
//! queued after the first drop). Elsewhere, one `recv_from` per call.
//!
//! With `UDP_GRO` ([`enable_gro`], udp(7), Linux 5.0 and later) one message
//! may hold several datagrams of one source: the kernel coalesces a burst of
//! equal-sized datagrams of one flow (NAPI GRO on a network interface; on
//! loopback, a sender's `UDP_SEGMENT` send is not cut into datagrams at
//! all) and says where they end with a `UDP_GRO` control message (the
//! segment size; the last may be shorter). Each is handed on as the
//! datagram it was: [`Batch::get`] indexes datagrams, not messages. One
//! system call and one copy to user space then serve the whole burst.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use crate::MAX_DATAGRAM;

/// Messages taken per system call at most (each one datagram, or with
/// `UDP_GRO` up to 64 of one source).
#[cfg(target_os = "linux")]
pub(crate) const BATCH: usize = 32;

/// `UDP_GRO` (linux/udp.h): the socket option, and the control message
/// giving the segment size of a coalesced message.
#[cfg(target_os = "linux")]
const UDP_GRO: libc::c_int = 104;
#[cfg(not(target_os = "linux"))]
pub(crate) const BATCH: usize = 1;

/// One received datagram in a [`Batch`].
pub(crate) struct Received<'a> {
    pub(crate) payload: &'a [u8],
    pub(crate) from: SocketAddr,
    /// The socket's `SO_RXQ_OVFL` drop count when this datagram was queued,
    /// if the kernel attached one.
    pub(crate) overflow: Option<u32>,
}

/// Ask the kernel to attach the drop count to received datagrams.
#[cfg(target_os = "linux")]
pub(crate) fn enable_rxq_ovfl(socket: &UdpSocket) -> io::Result<()> {
    set_flag(socket, libc::SOL_SOCKET, libc::SO_RXQ_OVFL)
}

/// Let the kernel hand over bursts of equal-sized datagrams of one source
/// as one message (see the module docs).
#[cfg(target_os = "linux")]
pub(crate) fn enable_gro(socket: &UdpSocket) -> io::Result<()> {
    set_flag(socket, libc::SOL_UDP, UDP_GRO)
}

/// Set an int socket option to 1.
#[cfg(target_os = "linux")]
fn set_flag(socket: &UdpSocket, level: libc::c_int, option: libc::c_int) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and an int option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enable_gro(_: &UdpSocket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "UDP_GRO is Linux only",
    ))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enable_rxq_ovfl(_: &UdpSocket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_RXQ_OVFL is Linux only",
    ))
}

/// Room for the `SO_RXQ_OVFL` (a `u32`) and `UDP_GRO` (an `int`) control
/// messages (24 bytes each with their headers), 8-byte aligned.
#[cfg(target_os = "linux")]
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; 64]);

/// Receive buffers and the `recvmmsg` bookkeeping pointing into them. The
/// pointers go to heap memory owned here that never moves or grows, so
/// moving the `Batch` keeps them valid.
#[cfg(target_os = "linux")]
pub(crate) struct Batch {
    bufs: Vec<Box<[u8]>>,
    // Never read here, only kept alive: `msgs` points into them.
    _iovecs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    _controls: Vec<Control>,
    msgs: Vec<libc::mmsghdr>,
    /// Messages of the last receive.
    messages: usize,
    /// Datagrams of the last receive, in order: (message, start, length)
    /// in that message's buffer.
    datagrams: Vec<(u16, u32, u32)>,
    /// Messages of the last receive that held more than one datagram.
    coalesced: usize,
    /// Messages of the last receive longer than their buffer (cut: the
    /// datagrams past the buffer's end are lost).
    truncated: usize,
}

// SAFETY: the raw pointers only point into the Batch's own heap memory.
#[cfg(target_os = "linux")]
unsafe impl Send for Batch {}

#[cfg(target_os = "linux")]
impl Batch {
    pub(crate) fn new() -> Batch {
        let mut bufs: Vec<Box<[u8]>> = (0..BATCH)
            .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
            .collect();
        let mut iovecs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: all-zero is a valid sockaddr_storage and mmsghdr.
        let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; BATCH];
        let mut controls = vec![Control([0; 64]); BATCH];
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
        for i in 0..BATCH {
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_iov = &mut iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = controls[i].0.as_mut_ptr().cast();
        }
        let mut b = Batch {
            bufs,
            _iovecs: iovecs,
            addrs,
            _controls: controls,
            msgs,
            messages: 0,
            datagrams: Vec::with_capacity(BATCH),
            coalesced: 0,
            truncated: 0,
        };
        b.reset();
        b
    }

    /// The in/out lengths the kernel overwrites, back to the full sizes.
    fn reset(&mut self) {
        for m in &mut self.msgs {
            m.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_controllen = std::mem::size_of::<Control>() as _;
            m.msg_hdr.msg_flags = 0;
            m.msg_len = 0;
        }
    }

    /// Receive at least one datagram (waiting as the socket's timeout and
    /// blocking mode say) and whatever else is ready, up to [`BATCH`]
    /// messages; returns the datagrams received.
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::os::unix::io::AsRawFd;
        self.reset();
        self.messages = 0;
        self.datagrams.clear();
        self.coalesced = 0;
        self.truncated = 0;
        // SAFETY: msgs holds BATCH headers whose pointers go to live buffers
        // of the sizes given (see `new` and `reset`).
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.messages = n as usize;
        for (i, m) in self.msgs[..self.messages].iter().enumerate() {
            // Only a coalesced message can be longer than a 64 KiB buffer
            // (a UDP datagram's payload is at most 65,507 bytes over IPv4).
            if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.truncated += 1;
            }
            let len = (m.msg_len as usize).min(MAX_DATAGRAM);
            let segment = gro_segment(&m.msg_hdr).filter(|&s| s > 0 && s < len);
            let Some(segment) = segment else {
                self.datagrams.push((i as u16, 0, len as u32));
                continue;
            };
            self.coalesced += 1;
            let mut start = 0;
            while start < len {
                let end = (start + segment).min(len);
                self.datagrams
                    .push((i as u16, start as u32, (end - start) as u32));
                start = end;
            }
        }
        Ok(self.datagrams.len())
    }

    /// The `i`th datagram of the last [`recv`](Self::recv); `None` for an
    /// address family that is not IP (never for a UDP socket).
    pub(crate) fn get(&self, i: usize) -> Option<Received<'_>> {
        let &(message, start, len) = self.datagrams.get(i)?;
        let (message, start, len) = (message as usize, start as usize, len as usize);
        let m = &self.msgs[message];
        let from = sockaddr(&self.addrs[message], m.msg_hdr.msg_namelen)?;
        Some(Received {
            payload: &self.bufs[message][start..start + len],
            from,
            overflow: rxq_ovfl(&m.msg_hdr),
        })
    }

    /// Datagrams of the last [`recv`](Self::recv).
    pub(crate) fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// Messages of the last [`recv`](Self::recv) (fewer than its datagrams
    /// when the kernel coalesced some).
    pub(crate) fn messages(&self) -> usize {
        self.messages
    }

    /// Messages of the last [`recv`](Self::recv) that held more than one
    /// datagram.
    pub(crate) fn coalesced(&self) -> usize {
        self.coalesced
    }

    /// Messages of the last [`recv`](Self::recv) cut at the end of their
    /// buffer.
    pub(crate) fn truncated(&self) -> usize {
        self.truncated
    }
}

/// An IPv4 or IPv6 socket address from the kernel's `sockaddr_storage`.
#[cfg(target_os = "linux")]
fn sockaddr(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    let len = len as usize;
    match s.ss_family as libc::c_int {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says it is a sockaddr_in, and it fits.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says it is a sockaddr_in6, and it fits.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The `SO_RXQ_OVFL` count among a received message's control messages.
#[cfg(target_os = "linux")]
fn rxq_ovfl(h: &libc::msghdr) -> Option<u32> {
    control_value(h, libc::SOL_SOCKET, libc::SO_RXQ_OVFL)
}

/// The segment size of a message the kernel coalesced (`UDP_GRO` control
/// message), if it did.
#[cfg(target_os = "linux")]
fn gro_segment(h: &libc::msghdr) -> Option<usize> {
    control_value::<libc::c_int>(h, libc::SOL_UDP, UDP_GRO).and_then(|s| usize::try_from(s).ok())
}

/// The value of the first control message of this level and type in a
/// received message.
#[cfg(target_os = "linux")]
fn control_value<T: Copy>(h: &libc::msghdr, level: libc::c_int, kind: libc::c_int) -> Option<T> {
    // SAFETY: the kernel filled msg_control up to msg_controllen; the CMSG
    // macros stay within it, and the value (a u32 or an int, which the
    // kernel writes whole) is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == level && (*c).cmsg_type == kind {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<T>()));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// One `recv_from` per call where `recvmmsg` is not available.
#[cfg(not(target_os = "linux"))]
pub(crate) struct Batch {
    buf: Box<[u8]>,
    got: Option<(usize, SocketAddr)>,
}

#[cfg(not(target_os = "linux"))]
impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            buf: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            got: None,
        }
    }

    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.got = None;
        let (n, from) = socket.recv_from(&mut self.buf)?;
        self.got = Some((n, from));
        Ok(1)
    }

    pub(crate) fn get(&self, i: usize) -> Option<Received<'_>> {
        let (n, from) = self.got.filter(|_| i == 0)?;
        Some(Received {
            payload: &self.buf[..n],
            from,
            overflow: None,
        })
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.got.is_some())
    }

    pub(crate) fn messages(&self) -> usize {
        self.len()
    }

    pub(crate) fn coalesced(&self) -> usize {
        0
    }

    pub(crate) fn truncated(&self) -> usize {
        0
    }
}
