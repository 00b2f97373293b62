//! NetFlow v7 export packet (Cisco Catalyst 5000 NFFC): a 24-byte header
//! followed by `count` fixed 52-byte records; like v5 plus `router_sc`, the
//! address of the router bypassed by the switch shortcut.

use crate::wire::fixed_header;

fixed_header! {
    /// NetFlow v7 header.
    view HeaderView, repr V7Header, len 24, {
        version: u16 = 0,
        count: u16 = 2,
        uptime: u32 = 4,
        timestamp: u32 = 8,
        timestamp_nano: u32 = 12,
        /// Sequence number: total flows seen before this packet.
        sequence: u32 = 16,
        reserved: u32 = 20,
    }
}

/// Flow record length.
pub const RECORD_LEN: usize = 52;

/// Record layout: (name, IANA element id, length). Empty names are padding.
pub(crate) const RECORD_LAYOUT: &[(&str, Option<u16>, u16)] = &[
    ("IPV4_SRC_ADDR", Some(8), 4),
    ("IPV4_DST_ADDR", Some(12), 4),
    ("NEXT_HOP", Some(15), 4),
    ("INPUT", Some(10), 2),
    ("OUTPUT", Some(14), 2),
    ("IN_PACKETS", Some(2), 4),
    ("IN_OCTETS", Some(1), 4),
    ("FIRST_SWITCHED", Some(22), 4),
    ("LAST_SWITCHED", Some(21), 4),
    ("SRC_PORT", Some(7), 2),
    ("DST_PORT", Some(11), 2),
    ("FLAGS1", None, 1),
    ("TCP_FLAGS", Some(6), 1),
    ("PROTO", Some(4), 1),
    ("TOS", Some(5), 1),
    ("SRC_AS", Some(16), 2),
    ("DST_AS", Some(17), 2),
    ("SRC_MASK", Some(9), 1),
    ("DST_MASK", Some(13), 1),
    ("FLAGS2", None, 2),
    ("ROUTER_SC", None, 4),
];

/// One flow record: a zero-copy view with every field at a constant offset
/// ([`record::RecordView`]) and its plain representation ([`record::V7Record`]).
/// A consumer that wants typed fields of a v7 packet without the generic
/// per-field iteration reads them here: see
/// [`ExportPacket::v7_records`](crate::ExportPacket::v7_records).
pub mod record {
    use crate::wire::fixed_header;

    fixed_header! {
        /// NetFlow v7 flow record.
        view RecordView, repr V7Record, len 52, {
            /// Source IPv4 address.
            src_addr: u32 = 0,
            /// Destination IPv4 address.
            dst_addr: u32 = 4,
            /// IPv4 address of the next-hop router.
            next_hop: u32 = 8,
            /// SNMP index of the input interface.
            input: u16 = 12,
            /// SNMP index of the output interface.
            output: u16 = 14,
            /// Packets in the flow.
            packets: u32 = 16,
            /// Layer-3 bytes in the flow.
            octets: u32 = 20,
            /// SysUptime at the first packet of the flow, milliseconds.
            first: u32 = 24,
            /// SysUptime at the last packet of the flow, milliseconds.
            last: u32 = 28,
            /// TCP/UDP source port (or ICMP type/code).
            src_port: u16 = 32,
            /// TCP/UDP destination port.
            dst_port: u16 = 34,
            /// Flags: which fields are invalid (switch-specific).
            flags1: u8 = 36,
            /// Cumulative OR of TCP flags.
            tcp_flags: u8 = 37,
            /// IP protocol number.
            proto: u8 = 38,
            /// IP type of service.
            tos: u8 = 39,
            /// Source autonomous system.
            src_as: u16 = 40,
            /// Destination autonomous system.
            dst_as: u16 = 42,
            /// Source address prefix mask bits.
            src_mask: u8 = 44,
            /// Destination address prefix mask bits.
            dst_mask: u8 = 45,
            /// Flags: which fields are invalid (switch-specific).
            flags2: u16 = 46,
            /// IPv4 address of the router bypassed by the switch shortcut.
            router_sc: u32 = 48,
        }
    }

    impl<T: AsRef<[u8]>> RecordView<T> {
        /// Source address.
        #[inline]
        pub fn src_ipv4(&self) -> core::net::Ipv4Addr {
            self.src_addr().into()
        }
        /// Destination address.
        #[inline]
        pub fn dst_ipv4(&self) -> core::net::Ipv4Addr {
            self.dst_addr().into()
        }
        /// Next-hop router address.
        #[inline]
        pub fn next_hop_ipv4(&self) -> core::net::Ipv4Addr {
            self.next_hop().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deconstruct_and_construct() {
        let h = V7Header {
            version: 7,
            count: 1,
            uptime: 1000,
            timestamp: 1700000000,
            timestamp_nano: 5,
            sequence: 42,
            reserved: 0,
        };
        let b = h.to_bytes();
        assert_eq!(&b[..4], &[0, 7, 0, 1]);
        assert_eq!(&b[16..20], &[0, 0, 0, 42]);
        assert_eq!(V7Header::parse(&b).unwrap(), h);
    }

    #[test]
    fn layout_is_52_bytes() {
        assert_eq!(
            RECORD_LAYOUT.iter().map(|f| f.2 as usize).sum::<usize>(),
            RECORD_LEN
        );
    }
}
