//! NetFlow v5 export packet (Cisco): a 24-byte header followed by `count`
//! fixed 48-byte flow records.

use crate::wire::fixed_header;

fixed_header! {
    /// NetFlow v5 header.
    view HeaderView, repr V5Header, len 24, {
        version: u16 = 0,
        /// Number of records that follow (Cisco: at most 30).
        count: u16 = 2,
        /// SysUptime at export, milliseconds.
        uptime: u32 = 4,
        /// Export time, seconds since the Unix epoch.
        timestamp: u32 = 8,
        /// Residual nanoseconds of the export time.
        timestamp_nano: u32 = 12,
        /// Sequence number: total flows seen before this packet.
        sequence: u32 = 16,
        engine_type: u8 = 20,
        engine_id: u8 = 21,
        /// Raw field: 2-bit sampling mode, 14-bit sampling interval.
        sampling_interval: u16 = 22,
    }
}

impl V5Header {
    /// Sampling mode: the top 2 bits of `sampling_interval`.
    pub fn sampling_mode(&self) -> u8 {
        (self.sampling_interval >> 14) as u8
    }
    /// Sampling interval: the low 14 bits of `sampling_interval`.
    pub fn sampling_rate(&self) -> u16 {
        self.sampling_interval & 0x3fff
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
    ("", None, 1),
    ("TCP_FLAGS", Some(6), 1),
    ("PROTO", Some(4), 1),
    ("TOS", Some(5), 1),
    ("SRC_AS", Some(16), 2),
    ("DST_AS", Some(17), 2),
    ("SRC_MASK", Some(9), 1),
    ("DST_MASK", Some(13), 1),
    ("", None, 2),
];

/// One flow record: a zero-copy view with every field at a constant offset
/// ([`record::RecordView`]) and its plain representation ([`record::V5Record`]).
/// A consumer that wants typed fields of a v5 packet without the generic
/// per-field iteration reads them here: see
/// [`ExportPacket::v5_records`](crate::ExportPacket::v5_records).
pub mod record {
    use crate::wire::fixed_header;

    fixed_header! {
        /// NetFlow v5 flow record.
        view RecordView, repr V5Record, len 48, {
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
            pad1: u8 = 36,
            /// Cumulative OR of TCP flags.
            tcp_flags: u8 = 37,
            /// IP protocol number.
            proto: u8 = 38,
            /// IP type of service.
            tos: u8 = 39,
            /// Source autonomous system (origin or peer).
            src_as: u16 = 40,
            /// Destination autonomous system (origin or peer).
            dst_as: u16 = 42,
            /// Source address prefix mask bits.
            src_mask: u8 = 44,
            /// Destination address prefix mask bits.
            dst_mask: u8 = 45,
            pad2: u16 = 46,
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
        // version 5, count 3, uptime 227747, ts 1585497478, nsec 581262000, seq 0,
        // engine 0/0, sampling mode 1 with interval 100.
        let bytes: [u8; 24] = [
            0x00, 0x05, 0x00, 0x03, 0x00, 0x03, 0x79, 0xa3, 0x5e, 0x80, 0xc5, 0x86, 0x22, 0xa5,
            0x5a, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x64,
        ];
        let h = V5Header::parse(&bytes).unwrap();
        assert_eq!(h.version, 5);
        assert_eq!(h.count, 3);
        assert_eq!(h.uptime, 227747);
        assert_eq!(h.timestamp, 1585497478);
        assert_eq!(h.timestamp_nano, 581262000);
        assert_eq!(h.sampling_mode(), 1);
        assert_eq!(h.sampling_rate(), 100);
        assert_eq!(h.to_bytes(), bytes);
    }

    #[test]
    fn layout_is_48_bytes() {
        assert_eq!(
            RECORD_LAYOUT.iter().map(|f| f.2 as usize).sum::<usize>(),
            RECORD_LEN
        );
    }
}
