//! Batched UDP receive into buffers allocated once.
//!
//! On Linux, `recvmmsg(2)` with `MSG_WAITFORONE` takes up to [`BATCH`]
//! datagrams per system call into fixed 64 KiB buffers, with each datagram's
//! source address and its `SO_RXQ_OVFL` ancillary data (socket(7): the
//! number of datagrams the kernel dropped on the socket since it was
//! created, because its receive buffer was full; attached to datagrams
//! queued after the first drop). Elsewhere, one `recv_from` per call.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use crate::MAX_DATAGRAM;

/// Datagrams taken per system call at most.
#[cfg(target_os = "linux")]
pub(crate) const BATCH: usize = 32;
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
    use std::os::unix::io::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and an int option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
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
pub(crate) fn enable_rxq_ovfl(_: &UdpSocket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_RXQ_OVFL is Linux only",
    ))
}

/// Room for one `SO_RXQ_OVFL` control message (a `u32`), 8-byte aligned.
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
    len: usize,
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
            len: 0,
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
    /// blocking mode say) and whatever else is ready, up to [`BATCH`].
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::os::unix::io::AsRawFd;
        self.reset();
        self.len = 0;
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
        self.len = n as usize;
        Ok(self.len)
    }

    /// The `i`th datagram of the last [`recv`](Self::recv); `None` for an
    /// address family that is not IP (never for a UDP socket).
    pub(crate) fn get(&self, i: usize) -> Option<Received<'_>> {
        if i >= self.len {
            return None;
        }
        let m = &self.msgs[i];
        let len = (m.msg_len as usize).min(MAX_DATAGRAM);
        let from = sockaddr(&self.addrs[i], m.msg_hdr.msg_namelen)?;
        Some(Received {
            payload: &self.bufs[i][..len],
            from,
            overflow: rxq_ovfl(&m.msg_hdr),
        })
    }

    /// Datagrams of the last [`recv`](Self::recv).
    pub(crate) fn len(&self) -> usize {
        self.len
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
    // SAFETY: the kernel filled msg_control up to msg_controllen; the CMSG
    // macros stay within it, and the value is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>()));
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
}
