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
