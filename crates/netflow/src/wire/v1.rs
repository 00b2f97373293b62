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
