//! The 4-byte set header shared by NetFlow v9 flowsets (RFC 3954 section 5.2)
//! and IPFIX sets (RFC 7011 section 3.3.2): set ID and total set length.

use crate::wire::fixed_header;

fixed_header! {
    /// Set (flowset) header.
    view SetHeaderView, repr SetHeader, len 4, {
        /// 0/1 v9 (options) template, 2/3 IPFIX (options) template, >= 256 data.
        id: u16 = 0,
        /// Length of the set including this header and padding.
        length: u16 = 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deconstruct_and_construct() {
        let b = [0x01, 0x00, 0x00, 0x2c];
        let h = SetHeader::parse(&b).unwrap();
        assert_eq!(
            h,
            SetHeader {
                id: 256,
                length: 44
            }
        );
        assert_eq!(h.to_bytes(), b);
    }
}
