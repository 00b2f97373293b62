//! NetFlow v9 field types (RFC 3954 section 8 "Field Type Definitions"),
//! spelled exactly as the Python original's `V9_FIELD_TYPES` (typos
//! included: 50 "NTERVAL", 63 "BPG_IPV6_NEXT_HOP", mixed case for 98-104),
//! plus the Cisco ASA NSEL and PAN-OS vendor ids of `vendor.rs`.
//!
//! Data types: RFC 3954's field types 1-127 seeded IANA elements 1-127
//! (RFC 5102 section 1, the registry note "Values 0-127: NFv9-compatible"),
//! and every RFC 3954 id used here has the same meaning as the IANA element
//! of the same number, so its type is taken from the generated IANA table at
//! compile time ([`iana`]). Vendor ids carry their documented types.

use super::iana_generated::IANA;
use super::vendor::V9_VENDOR_FIELDS;
use super::{DataType, V9FieldType};

/// Data type of IANA element `id`, evaluated at compile time (a missing id
/// fails the build).
const fn iana(id: u16) -> DataType {
    let mut i = 0;
    while i < IANA.len() {
        if IANA[i].id == id {
            return IANA[i].data_type;
        }
        i += 1;
    }
    panic!("v9 field type without an IANA element of the same id");
}

/// An RFC 3954 field type whose type is the IANA element of the same id.
const fn rfc(id: u16, name: &'static str) -> V9FieldType {
    V9FieldType {
        id,
        name,
        data_type: iana(id),
    }
}

/// Largest RFC 3954 id in the table; ids above are vendor ids.
const STD_MAX_ID: u16 = 104;
const STD_LEN: usize = 95;
const ALL_LEN: usize = STD_LEN + V9_VENDOR_FIELDS.len();

/// The 95 non-vendor entries of the Python original's V9_FIELD_TYPES.
const STD: [V9FieldType; STD_LEN] = [
    V9FieldType {
        id: 0,
        name: "UNKNOWN_FIELD_TYPE",
        data_type: DataType::Unspecified,
    },
    rfc(1, "IN_BYTES"),
    rfc(2, "IN_PKTS"),
    rfc(3, "FLOWS"),
    rfc(4, "PROTOCOL"),
    rfc(5, "SRC_TOS"),
    rfc(6, "TCP_FLAGS"),
    rfc(7, "L4_SRC_PORT"),
    rfc(8, "IPV4_SRC_ADDR"),
    rfc(9, "SRC_MASK"),
    rfc(10, "INPUT_SNMP"),
    rfc(11, "L4_DST_PORT"),
    rfc(12, "IPV4_DST_ADDR"),
    rfc(13, "DST_MASK"),
    rfc(14, "OUTPUT_SNMP"),
    rfc(15, "IPV4_NEXT_HOP"),
    rfc(16, "SRC_AS"),
    rfc(17, "DST_AS"),
    rfc(18, "BGP_IPV4_NEXT_HOP"),
    rfc(19, "MUL_DST_PKTS"),
    rfc(20, "MUL_DST_BYTES"),
    rfc(21, "LAST_SWITCHED"),
    rfc(22, "FIRST_SWITCHED"),
    rfc(23, "OUT_BYTES"),
    rfc(24, "OUT_PKTS"),
    rfc(25, "MIN_PKT_LNGTH"),
    rfc(26, "MAX_PKT_LNGTH"),
    rfc(27, "IPV6_SRC_ADDR"),
    rfc(28, "IPV6_DST_ADDR"),
    rfc(29, "IPV6_SRC_MASK"),
    rfc(30, "IPV6_DST_MASK"),
    rfc(31, "IPV6_FLOW_LABEL"),
    rfc(32, "ICMP_TYPE"),
    rfc(33, "MUL_IGMP_TYPE"),
    rfc(34, "SAMPLING_INTERVAL"),
    rfc(35, "SAMPLING_ALGORITHM"),
    rfc(36, "FLOW_ACTIVE_TIMEOUT"),
    rfc(37, "FLOW_INACTIVE_TIMEOUT"),
    rfc(38, "ENGINE_TYPE"),
    rfc(39, "ENGINE_ID"),
    rfc(40, "TOTAL_BYTES_EXP"),
    rfc(41, "TOTAL_PKTS_EXP"),
    rfc(42, "TOTAL_FLOWS_EXP"),
    rfc(44, "IPV4_SRC_PREFIX"),
    rfc(45, "IPV4_DST_PREFIX"),
    rfc(46, "MPLS_TOP_LABEL_TYPE"),
    rfc(47, "MPLS_TOP_LABEL_IP_ADDR"),
    rfc(48, "FLOW_SAMPLER_ID"),
    rfc(49, "FLOW_SAMPLER_MODE"),
    rfc(50, "NTERVAL"),
    rfc(52, "MIN_TTL"),
    rfc(53, "MAX_TTL"),
    rfc(54, "IPV4_IDENT"),
    rfc(55, "DST_TOS"),
    rfc(56, "IN_SRC_MAC"),
    rfc(57, "OUT_DST_MAC"),
    rfc(58, "SRC_VLAN"),
    rfc(59, "DST_VLAN"),
    rfc(60, "IP_PROTOCOL_VERSION"),
    rfc(61, "DIRECTION"),
    rfc(62, "IPV6_NEXT_HOP"),
    rfc(63, "BPG_IPV6_NEXT_HOP"),
    rfc(64, "IPV6_OPTION_HEADERS"),
    rfc(70, "MPLS_LABEL_1"),
    rfc(71, "MPLS_LABEL_2"),
    rfc(72, "MPLS_LABEL_3"),
    rfc(73, "MPLS_LABEL_4"),
    rfc(74, "MPLS_LABEL_5"),
    rfc(75, "MPLS_LABEL_6"),
    rfc(76, "MPLS_LABEL_7"),
    rfc(77, "MPLS_LABEL_8"),
    rfc(78, "MPLS_LABEL_9"),
    rfc(79, "MPLS_LABEL_10"),
    rfc(80, "IN_DST_MAC"),
    rfc(81, "OUT_SRC_MAC"),
    rfc(82, "IF_NAME"),
    rfc(83, "IF_DESC"),
    rfc(84, "SAMPLER_NAME"),
    rfc(85, "IN_PERMANENT_BYTES"),
    rfc(86, "IN_PERMANENT_PKTS"),
    rfc(88, "FRAGMENT_OFFSET"),
    rfc(89, "FORWARDING_STATUS"),
    rfc(90, "MPLS_PAL_RD"),
    rfc(91, "MPLS_PREFIX_LEN"),
    rfc(92, "SRC_TRAFFIC_INDEX"),
    rfc(93, "DST_TRAFFIC_INDEX"),
    rfc(94, "APPLICATION_DESCRIPTION"),
    rfc(95, "APPLICATION_TAG"),
    rfc(96, "APPLICATION_NAME"),
    rfc(98, "postipDiffServCodePoint"),
    rfc(99, "replication_factor"),
    rfc(100, "DEPRECATED"),
    rfc(102, "layer2packetSectionOffset"),
    rfc(103, "layer2packetSectionSize"),
    rfc(104, "layer2packetSectionData"),
];

/// `STD` followed by the vendor ids: one table sorted by id.
const fn concat() -> [V9FieldType; ALL_LEN] {
    let mut all = [STD[0]; ALL_LEN];
    let mut i = 0;
    while i < ALL_LEN {
        all[i] = if i < STD_LEN {
            STD[i]
        } else {
            V9_VENDOR_FIELDS[i - STD_LEN]
        };
        assert!(
            i == 0 || all[i - 1].id < all[i].id,
            "v9 table not sorted by id"
        );
        i += 1;
    }
    assert!(all[STD_LEN - 1].id == STD_MAX_ID, "STD_MAX_ID out of date");
    all
}

static ALL: [V9FieldType; ALL_LEN] = concat();

const NO_ENTRY: u8 = u8::MAX;

/// Dense index for ids 0..=104.
const fn build_std_index() -> [u8; STD_MAX_ID as usize + 1] {
    let mut index = [NO_ENTRY; STD_MAX_ID as usize + 1];
    let mut i = 0;
    while i < STD_LEN {
        index[STD[i].id as usize] = i as u8;
        i += 1;
    }
    index
}

static STD_INDEX: [u8; STD_MAX_ID as usize + 1] = build_std_index();

/// Position of vendor id `id` in `ALL`, evaluated at compile time.
const fn pos(id: u16) -> usize {
    let mut i = STD_LEN;
    while i < ALL_LEN {
        if V9_VENDOR_FIELDS[i - STD_LEN].id == id {
            return i;
        }
        i += 1;
    }
    panic!("vendor v9 id missing from V9_VENDOR_FIELDS");
}

/// `match` over the vendor ids; the positions are compile-time constants.
macro_rules! vendor_position {
    ($id:expr; $($vid:literal),* $(,)?) => {
        match $id {
            $($vid => Some(const { pos($vid) }),)*
            _ => None,
        }
    };
}

/// Number of vendor ids listed in [`field_type`]'s match (checked by a test).
#[cfg(test)]
const VENDOR_MATCH_LEN: usize = 28;

pub(super) fn field_type(id: u16) -> Option<&'static V9FieldType> {
    if id <= STD_MAX_ID {
        return match STD_INDEX[id as usize] {
            NO_ENTRY => None,
            p => Some(&ALL[p as usize]),
        };
    }
    let p = vendor_position!(id;
        148, 152, 176, 177, 178, 179, 225, 226, 227, 228, 231, 232, 233, 281, 282, 323,
        346, 33000, 33001, 33002, 40000, 40001, 40002, 40003, 40004, 40005, 56701, 56702,
    )?;
    Some(&ALL[p])
}

pub(super) fn all() -> &'static [V9FieldType] {
    &ALL
}

#[cfg(test)]
mod tests {
    use super::super::lookup;
    use super::*;

    /// The Python original's V9_FIELD_TYPES, id -> name (spec section 5.7).
    const PYTHON: &[(u16, &str)] = &[
        (0, "UNKNOWN_FIELD_TYPE"),
        (1, "IN_BYTES"),
        (2, "IN_PKTS"),
        (3, "FLOWS"),
        (4, "PROTOCOL"),
        (5, "SRC_TOS"),
        (6, "TCP_FLAGS"),
        (7, "L4_SRC_PORT"),
        (8, "IPV4_SRC_ADDR"),
        (9, "SRC_MASK"),
        (10, "INPUT_SNMP"),
        (11, "L4_DST_PORT"),
        (12, "IPV4_DST_ADDR"),
        (13, "DST_MASK"),
        (14, "OUTPUT_SNMP"),
        (15, "IPV4_NEXT_HOP"),
        (16, "SRC_AS"),
        (17, "DST_AS"),
        (18, "BGP_IPV4_NEXT_HOP"),
        (19, "MUL_DST_PKTS"),
        (20, "MUL_DST_BYTES"),
        (21, "LAST_SWITCHED"),
        (22, "FIRST_SWITCHED"),
        (23, "OUT_BYTES"),
        (24, "OUT_PKTS"),
        (25, "MIN_PKT_LNGTH"),
        (26, "MAX_PKT_LNGTH"),
        (27, "IPV6_SRC_ADDR"),
        (28, "IPV6_DST_ADDR"),
        (29, "IPV6_SRC_MASK"),
        (30, "IPV6_DST_MASK"),
        (31, "IPV6_FLOW_LABEL"),
        (32, "ICMP_TYPE"),
        (33, "MUL_IGMP_TYPE"),
        (34, "SAMPLING_INTERVAL"),
        (35, "SAMPLING_ALGORITHM"),
        (36, "FLOW_ACTIVE_TIMEOUT"),
        (37, "FLOW_INACTIVE_TIMEOUT"),
        (38, "ENGINE_TYPE"),
        (39, "ENGINE_ID"),
        (40, "TOTAL_BYTES_EXP"),
        (41, "TOTAL_PKTS_EXP"),
        (42, "TOTAL_FLOWS_EXP"),
        (44, "IPV4_SRC_PREFIX"),
        (45, "IPV4_DST_PREFIX"),
        (46, "MPLS_TOP_LABEL_TYPE"),
        (47, "MPLS_TOP_LABEL_IP_ADDR"),
        (48, "FLOW_SAMPLER_ID"),
        (49, "FLOW_SAMPLER_MODE"),
        (50, "NTERVAL"),
        (52, "MIN_TTL"),
        (53, "MAX_TTL"),
        (54, "IPV4_IDENT"),
        (55, "DST_TOS"),
        (56, "IN_SRC_MAC"),
        (57, "OUT_DST_MAC"),
        (58, "SRC_VLAN"),
        (59, "DST_VLAN"),
        (60, "IP_PROTOCOL_VERSION"),
        (61, "DIRECTION"),
        (62, "IPV6_NEXT_HOP"),
        (63, "BPG_IPV6_NEXT_HOP"),
        (64, "IPV6_OPTION_HEADERS"),
        (70, "MPLS_LABEL_1"),
        (71, "MPLS_LABEL_2"),
        (72, "MPLS_LABEL_3"),
        (73, "MPLS_LABEL_4"),
        (74, "MPLS_LABEL_5"),
        (75, "MPLS_LABEL_6"),
        (76, "MPLS_LABEL_7"),
        (77, "MPLS_LABEL_8"),
        (78, "MPLS_LABEL_9"),
        (79, "MPLS_LABEL_10"),
        (80, "IN_DST_MAC"),
        (81, "OUT_SRC_MAC"),
        (82, "IF_NAME"),
        (83, "IF_DESC"),
        (84, "SAMPLER_NAME"),
        (85, "IN_PERMANENT_BYTES"),
        (86, "IN_PERMANENT_PKTS"),
        (88, "FRAGMENT_OFFSET"),
        (89, "FORWARDING_STATUS"),
        (90, "MPLS_PAL_RD"),
        (91, "MPLS_PREFIX_LEN"),
        (92, "SRC_TRAFFIC_INDEX"),
        (93, "DST_TRAFFIC_INDEX"),
        (94, "APPLICATION_DESCRIPTION"),
        (95, "APPLICATION_TAG"),
        (96, "APPLICATION_NAME"),
        (98, "postipDiffServCodePoint"),
        (99, "replication_factor"),
        (100, "DEPRECATED"),
        (102, "layer2packetSectionOffset"),
        (103, "layer2packetSectionSize"),
        (104, "layer2packetSectionData"),
        (148, "NF_F_CONN_ID"),
        (152, "NF_F_FLOW_CREATE_TIME_MSEC"),
        (176, "NF_F_ICMP_TYPE"),
        (177, "NF_F_ICMP_CODE"),
        (178, "NF_F_ICMP_TYPE_IPV6"),
        (179, "NF_F_ICMP_CODE_IPV6"),
        (225, "NF_F_XLATE_SRC_ADDR_IPV4"),
        (226, "NF_F_XLATE_DST_ADDR_IPV4"),
        (227, "NF_F_XLATE_SRC_PORT"),
        (228, "NF_F_XLATE_DST_PORT"),
        (231, "NF_F_FWD_FLOW_DELTA_BYTES"),
        (232, "NF_F_REV_FLOW_DELTA_BYTES"),
        (233, "NF_F_FW_EVENT"),
        (281, "NF_F_XLATE_SRC_ADDR_IPV6"),
        (282, "NF_F_XLATE_DST_ADDR_IPV6"),
        (323, "NF_F_EVENT_TIME_MSEC"),
        (346, "PANOS_privateEnterpriseNumber"),
        (33000, "NF_F_INGRESS_ACL_ID"),
        (33001, "NF_F_EGRESS_ACL_ID"),
        (33002, "NF_F_FW_EXT_EVENT"),
        (40000, "NF_F_USERNAME"),
        (56701, "PANOS_APPID"),
        (56702, "PANOS_USERID"),
    ];

    /// Cisco ASA 8.4 compatibility ids added on top of the Python list.
    const EXTRA: &[u16] = &[40001, 40002, 40003, 40004, 40005];

    #[test]
    fn python_names_verbatim() {
        assert_eq!(PYTHON.len(), 118);
        for &(id, name) in PYTHON {
            let f = field_type(id).unwrap_or_else(|| panic!("v9 id {id} missing"));
            assert_eq!((f.id, f.name), (id, name));
        }
        assert_eq!(all().len(), PYTHON.len() + EXTRA.len());
        for f in all() {
            assert!(
                PYTHON.iter().any(|p| p.0 == f.id) || EXTRA.contains(&f.id),
                "{}",
                f.id
            );
        }
    }

    #[test]
    fn every_entry_reachable_and_gaps_absent() {
        let mut vendor = 0;
        for f in all() {
            assert_eq!(field_type(f.id), Some(f));
            if f.id > STD_MAX_ID {
                vendor += 1;
            }
        }
        assert_eq!(vendor, VENDOR_MATCH_LEN);
        for id in [
            43,
            51,
            65,
            69,
            87,
            97,
            101,
            105,
            127,
            136,
            147,
            153,
            234,
            32768,
            40006,
            u16::MAX,
        ] {
            assert!(field_type(id).is_none(), "{id}");
        }
    }

    #[test]
    fn rfc3954_types_match_iana() {
        for f in all().iter().filter(|f| f.id != 0 && f.id <= STD_MAX_ID) {
            assert_eq!(
                Some(f.data_type),
                lookup(0, f.id).map(|ie| ie.data_type),
                "{}",
                f.name
            );
        }
        let t = |id| field_type(id).unwrap().data_type;
        assert_eq!(t(0), DataType::Unspecified);
        assert_eq!(t(8), DataType::Ipv4Address);
        assert_eq!(t(27), DataType::Ipv6Address);
        assert_eq!(t(56), DataType::MacAddress);
        assert_eq!(t(63), DataType::Ipv6Address);
        assert_eq!(t(70), DataType::OctetArray);
        assert_eq!(t(82), DataType::String);
        assert_eq!(t(1), DataType::Unsigned64);
        assert_eq!(t(21), DataType::Unsigned32);
    }

    #[test]
    fn vendor_types() {
        let t = |id| field_type(id).unwrap().data_type;
        assert_eq!(t(33000), DataType::OctetArray);
        assert_eq!(t(33001), DataType::OctetArray);
        assert_eq!(t(33002), DataType::Unsigned16);
        assert_eq!(t(40000), DataType::String);
        assert_eq!(t(40001), DataType::Ipv4Address);
        assert_eq!(t(40005), DataType::Unsigned8);
        assert_eq!(t(56701), DataType::String);
        assert_eq!(t(56702), DataType::String);
        assert_eq!(t(346), DataType::Unsigned32);
        assert_eq!(t(323), DataType::DateTimeMilliseconds);
        assert_eq!(t(225), DataType::Ipv4Address);
    }
}
