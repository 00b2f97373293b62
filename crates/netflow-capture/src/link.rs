//! Link-layer, IP and UDP parsing of captured frames (hand-written: only the
//! few headers on the way to a UDP payload are needed).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The link-layer header type of captured frames (the subset we decode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// BSD loopback (`DLT_NULL`): 4-byte address family in the capturing host's byte order.
    Null,
    /// OpenBSD loopback (`DLT_LOOP`): 4-byte address family in network byte order.
    Loop,
    /// Ethernet II / 802.3, with any number of 802.1Q / 802.1ad VLAN tags.
    Ethernet,
    /// Raw IP (version from the first nibble).
    Raw,
    /// Raw IPv4.
    Ipv4,
    /// Raw IPv6.
    Ipv6,
    /// Linux cooked capture v1 (`any` device, 16-byte header).
    LinuxSll,
    /// Linux cooked capture v2 (20-byte header).
    LinuxSll2,
    /// Anything else (its LINKTYPE_ value): frames are skipped.
    Unsupported(u32),
}

impl LinkType {
    /// From a LINKTYPE_ value (pcap header / pcapng interface description).
    pub fn from_linktype(value: u32) -> LinkType {
        // pcap keeps FCS information in the upper bits; the link type is the low 16.
        match value & 0xFFFF {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            // 12 and 14 are DLT_RAW on some BSDs; 101 is LINKTYPE_RAW.
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            v => LinkType::Unsupported(v),
        }
    }

    pub fn is_supported(self) -> bool {
        !matches!(self, LinkType::Unsupported(_))
    }
}

/// Why a frame yields no datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Not IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// IP, but not UDP (TCP, ICMP, ...).
    NotUdp,
    /// Headers that contradict themselves or the frame.
    Malformed,
    /// The capture holds fewer bytes than the datagram (snaplen).
    Truncated,
    /// A link type we do not decode.
    UnsupportedLink,
}

/// Identity of a fragmented IP datagram (RFC 791 / RFC 8200).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
}

/// What a frame holds.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// A whole UDP datagram.
    Udp {
        src: SocketAddr,
        dst: SocketAddr,
        payload: &'a [u8],
    },
    /// One fragment of a UDP datagram: `data` is its part of the IP payload
    /// (the first fragment starts with the UDP header) at byte `offset`.
    Fragment {
        key: FragKey,
        offset: usize,
        more: bool,
        data: &'a [u8],
    },
    Skip(Skip),
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const IPPROTO_UDP: u8 = 17;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Parse a captured frame down to its UDP payload.
pub(crate) fn parse_frame(link: LinkType, frame: &[u8]) -> Parsed<'_> {
    match link {
        LinkType::Ethernet => match be16(frame, 12) {
            Some(ethertype) => by_ethertype(ethertype, &frame[14..]),
            None => Parsed::Skip(Skip::Malformed),
        },
        LinkType::LinuxSll => match be16(frame, 14) {
            Some(proto) if frame.len() >= 16 => by_ethertype(proto, &frame[16..]),
            _ => Parsed::Skip(Skip::Malformed),
        },
        LinkType::LinuxSll2 => match be16(frame, 0) {
            Some(proto) if frame.len() >= 20 => by_ethertype(proto, &frame[20..]),
            _ => Parsed::Skip(Skip::Malformed),
        },
        LinkType::Null | LinkType::Loop => {
            let Some(family_be) = be32(frame, 0) else {
                return Parsed::Skip(Skip::Malformed);
            };
            // DLT_NULL is in the capturing host's byte order: accept either.
            let family_le = family_be.swap_bytes();
            let family = if link == LinkType::Loop {
                family_be
            } else {
                family_be.min(family_le)
            };
            match family {
                2 => ipv4(&frame[4..]),
                // AF_INET6: Linux 10, FreeBSD 28, Darwin 30, NetBSD/OpenBSD 24.
                10 | 24 | 28 | 30 => ipv6(&frame[4..]),
                _ => Parsed::Skip(Skip::NotIp),
            }
        }
        LinkType::Raw => match frame.first().map(|b| b >> 4) {
            Some(4) => ipv4(frame),
            Some(6) => ipv6(frame),
            _ => Parsed::Skip(Skip::NotIp),
        },
        LinkType::Ipv4 => ipv4(frame),
        LinkType::Ipv6 => ipv6(frame),
        LinkType::Unsupported(_) => Parsed::Skip(Skip::UnsupportedLink),
    }
}

/// Follow VLAN tags to the network layer.
fn by_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Parsed<'_> {
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => return ipv4(rest),
            ETHERTYPE_IPV6 => return ipv6(rest),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                // Tag control information (2 bytes), then the inner ethertype.
                let Some(inner) = be16(rest, 2) else {
                    return Parsed::Skip(Skip::Malformed);
                };
                ethertype = inner;
                rest = &rest[4..];
            }
            _ => return Parsed::Skip(Skip::NotIp),
        }
    }
}

fn ipv4(p: &[u8]) -> Parsed<'_> {
    if p.len() < 20 {
        return Parsed::Skip(Skip::Malformed);
    }
    if p[0] >> 4 != 4 {
        return Parsed::Skip(Skip::Malformed);
    }
    let ihl = (p[0] & 0x0F) as usize * 4;
    let total = be16(p, 2).unwrap_or(0) as usize;
    if ihl < 20 || total < ihl {
        return Parsed::Skip(Skip::Malformed);
    }
    if p[9] != IPPROTO_UDP {
        return Parsed::Skip(Skip::NotUdp);
    }
    if p.len() < total {
        return Parsed::Skip(Skip::Truncated);
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    // Frames may carry link-layer padding after the IP datagram: cut at its total length.
    let body = &p[ihl..total];
    let flags_frag = be16(p, 6).unwrap_or(0);
    let more = flags_frag & 0x2000 != 0;
    let offset = (flags_frag & 0x1FFF) as usize * 8;
    if more || offset != 0 {
        let id = be16(p, 4).unwrap_or(0) as u32;
        return Parsed::Fragment {
            key: FragKey {
                src: src.into(),
                dst: dst.into(),
                id,
            },
            offset,
            more,
            data: body,
        };
    }
    udp(src.into(), dst.into(), body)
}

fn ipv6(p: &[u8]) -> Parsed<'_> {
    if p.len() < 40 {
        return Parsed::Skip(Skip::Malformed);
    }
    if p[0] >> 4 != 6 {
        return Parsed::Skip(Skip::Malformed);
    }
    let payload_len = be16(p, 4).unwrap_or(0) as usize;
    let mut next = p[6];
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&p[8..24]);
    dst.copy_from_slice(&p[24..40]);
    let (src, dst) = (
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
    );
    // Jumbogram (RFC 2675) or unknown length: take what the frame holds.
    let end = if payload_len == 0 {
        p.len()
    } else {
        40 + payload_len
    };
    // Walk the headers within what was captured; a cut-short datagram is only
    // reported as such once it is known to be UDP.
    let truncated = end > p.len();
    let end = end.min(p.len());
    let mut pos = 40;
    let mut fragment: Option<(usize, bool, u32)> = None;
    loop {
        match next {
            IPPROTO_UDP => break,
            // Hop-by-hop, routing, destination options: (len + 1) * 8 bytes.
            0 | 43 | 60 => {
                let (Some(&nh), Some(&len)) = (p.get(pos), p.get(pos + 1)) else {
                    return Parsed::Skip(Skip::Malformed);
                };
                next = nh;
                pos += (len as usize + 1) * 8;
            }
            // Authentication header: (len + 2) * 4 bytes.
            51 => {
                let (Some(&nh), Some(&len)) = (p.get(pos), p.get(pos + 1)) else {
                    return Parsed::Skip(Skip::Malformed);
                };
                next = nh;
                pos += (len as usize + 2) * 4;
            }
            // Fragment header: 8 bytes.
            44 => {
                let (Some(&nh), Some(off), Some(id)) =
                    (p.get(pos), be16(p, pos + 2), be32(p, pos + 4))
                else {
                    return Parsed::Skip(Skip::Malformed);
                };
                next = nh;
                let offset = (off >> 3) as usize * 8;
                let more = off & 1 != 0;
                pos += 8;
                if more || offset != 0 {
                    fragment = Some((offset, more, id));
                }
                if offset != 0 {
                    // A later fragment: the rest is data, not headers.
                    if nh != IPPROTO_UDP {
                        return Parsed::Skip(Skip::NotUdp);
                    }
                    if pos > end {
                        return Parsed::Skip(Skip::Malformed);
                    }
                    break;
                }
            }
            _ => return Parsed::Skip(Skip::NotUdp),
        }
        if pos > end {
            return Parsed::Skip(if truncated {
                Skip::Truncated
            } else {
                Skip::Malformed
            });
        }
    }
    if truncated {
        return Parsed::Skip(Skip::Truncated);
    }
    let body = &p[pos..end];
    match fragment {
        Some((offset, more, id)) => Parsed::Fragment {
            key: FragKey { src, dst, id },
            offset,
            more,
            data: body,
        },
        None => udp(src, dst, body),
    }
}

/// A UDP header and its payload (`body` = the whole IP payload).
pub(crate) fn udp(src: IpAddr, dst: IpAddr, body: &[u8]) -> Parsed<'_> {
    let (Some(sport), Some(dport), Some(len)) = (be16(body, 0), be16(body, 2), be16(body, 4))
    else {
        return Parsed::Skip(Skip::Malformed);
    };
    let len = len as usize;
    if len < 8 {
        return Parsed::Skip(Skip::Malformed);
    }
    if len > body.len() {
        return Parsed::Skip(Skip::Truncated);
    }
    Parsed::Udp {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        payload: &body[8..len],
    }
}
