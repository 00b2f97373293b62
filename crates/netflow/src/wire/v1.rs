//! NetFlow v1 export packet (Cisco): a 16-byte header followed by `count`
//! fixed 48-byte flow records.

use crate::wire::fixed_header;

fixed_header! {
    /// NetFlow v1 header.
    view HeaderView, repr V1Header, len 16, {
        version: u16 = 0,
        /// Number of records that follow.
        count: u16 = 2,
        /// SysUptime at export, milliseconds.
        uptime: u32 = 4,
        /// Export time, seconds since the Unix epoch.
        timestamp: u32 = 8,
        /// Residual nanoseconds of the export time.
        timestamp_nano: u32 = 12,
    }
}

/// Flow record length.
pub const RECORD_LEN: usize = 48;

/// Record layout: (original name, IANA element id, length). Empty names are padding.
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
    ("", None, 2),
    ("PROTO", Some(4), 1),
    ("TOS", Some(5), 1),
    ("TCP_FLAGS", Some(6), 1),
    ("", None, 7),
];

/// One flow record: a zero-copy view with every field at a constant offset
/// ([`record::RecordView`]) and its plain representation ([`record::V1Record`]).
/// A consumer that wants typed fields of a v1 packet without the generic
/// per-field iteration reads them here: see
/// [`ExportPacket::v1_records`](crate::ExportPacket::v1_records).
pub mod record {
    use crate::wire::fixed_header;

    fixed_header! {
        /// NetFlow v1 flow record.
        view RecordView, repr V1Record, len 48, {
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
            pad1: u16 = 36,
            /// IP protocol number.
            proto: u8 = 38,
            /// IP type of service.
            tos: u8 = 39,
            /// Cumulative OR of TCP flags.
            tcp_flags: u8 = 40,
            /// Reserved (7 bytes from offset 41; the last 4 as one field).
            pad2: u8 = 41,
            pad3: u16 = 42,
            reserved: u32 = 44,
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

    // The header of the upstream PACKET_V1 test vector.
    const BYTES: [u8; 16] = [
        0x00, 0x01, 0x00, 0x02, 0x00, 0x01, 0x18, 0x9b, 0x5e, 0x80, 0xc3, 0x2c, 0x2f, 0xd4, 0x18,
        0x48,
    ];

    #[test]
    fn deconstruct_and_construct() {
        let h = V1Header::parse(&BYTES).unwrap();
        assert_eq!(
            h,
            V1Header {
                version: 1,
                count: 2,
                uptime: 71835,
                timestamp: 1585496876,
                timestamp_nano: 802429000
            }
        );
        assert_eq!(h.to_bytes(), BYTES);
    }

    #[test]
    fn layout_is_48_bytes() {
        assert_eq!(
            RECORD_LAYOUT.iter().map(|f| f.2 as usize).sum::<usize>(),
            RECORD_LEN
        );
    }

    #[test]
    fn short_header_is_an_error() {
        let e = V1Header::parse(&BYTES[..15]).unwrap_err();
        assert_eq!(e.offset, 0);
    }
}
