//! Hand-written vendor Information Elements (facts from public vendor
//! documentation; no vendor code is copied).
//!
//! * **CERT/YAF**, Private Enterprise Number 6871 (CERT Coordination Center):
//!   the elements YAF and SiLK export, as listed in the YAF manual's record
//!   tables ("YAF 3 Records and Templates": IPFIX (PEN, NUM), size and type)
//!   and the CERT information element list shipped with YAF/libfixbuf.
//!   Following RFC 5103 section 6.2 ("Enterprise-Specific Reverse Information
//!   Elements"), CERT reserves bit 0x4000 of the element id for the reverse
//!   direction, so `reverseX` of a reversible CERT element `X` is
//!   `(6871, X.id | 0x4000)` (e.g. initialTCPFlags 14 / reverseInitialTCPFlags
//!   16398). The reverse direction of IANA elements exported by YAF (e.g.
//!   reverseTcpSequenceNumber) uses the RFC 5103 Reverse PEN 29305 instead and
//!   is served by the generated reverse table.
//! * **Cisco ASA NSEL** and **PAN-OS** NetFlow v9 field types: these ids travel
//!   with enterprise 0 in v9 templates, so they belong to the v9 table
//!   ([`V9_VENDOR_FIELDS`], merged by `v9.rs`), not to [`super::lookup`].
//!   Sources: "Cisco ASA NetFlow Implementation Guide" (Table "Data Records
//!   Exported Through NSEL": ID, TYPE, LEN) and the PAN-OS Administrator's
//!   Guide, "NetFlow Templates".

use super::{DataType, InformationElement, V9FieldType};

/// Private Enterprise Number of CERT (YAF, SiLK, libfixbuf).
pub const CERT_PEN: u32 = 6871;

/// Bit of a CERT element id marking the reverse direction (RFC 5103
/// section 6.2 convention adopted by CERT).
pub const YAF_REVERSE_BIT: u16 = 0x4000;

const fn yaf(id: u16, name: &'static str, data_type: DataType) -> InformationElement {
    InformationElement {
        enterprise: CERT_PEN,
        id,
        name,
        data_type,
    }
}

/// CERT/YAF elements, forward ids ascending, then reverse ids ascending.
///
/// Types are those of the YAF manual ("1 byte unsigned" -> unsigned8,
/// "variable-length string" -> string, "variable-length octetArray" ->
/// octetArray). Reverse counterparts exist for the elements CERT marks
/// reversible; those not spelled out in the YAF manual tables
/// (reverseSecondPacketBanner, reverseFirstEightNonEmptyPacketDirections,
/// reverseTcpUrgentCount) are derived by the `| 0x4000` rule.
const CERT_TABLE: [InformationElement; 60] = [
    // TCP flags of the first packet / union of the flags of the others (SiLK
    // initialFlags / sessionFlags)
    yaf(14, "initialTCPFlags", DataType::Unsigned8),
    yaf(15, "unionTCPFlags", DataType::Unsigned8),
    // first n bytes of payload (--export-payload)
    yaf(18, "payload", DataType::OctetArray),
    // ms between the first forward and the first reverse packet ("4 bytes
    // unsigned" in the YAF manual)
    yaf(21, "reverseFlowDeltaMilliseconds", DataType::Unsigned32),
    // SiLK flow type, sensor, TCP state (rwflowpack/rwipfix2silk)
    yaf(30, "silkFlowType", DataType::Unsigned8),
    yaf(31, "silkFlowSensor", DataType::Unsigned16),
    yaf(32, "silkTCPState", DataType::Unsigned8),
    // application label = well-known port of the detected protocol
    yaf(33, "silkAppLabel", DataType::Unsigned16),
    // Shannon entropy of the payload (--entropy)
    yaf(35, "payloadEntropy", DataType::Unsigned8),
    // p0f passive OS fingerprinting (--p0fprint) and banners (--fpexport)
    yaf(36, "osName", DataType::String),
    yaf(37, "osVersion", DataType::String),
    yaf(38, "firstPacketBanner", DataType::OctetArray),
    yaf(39, "secondPacketBanner", DataType::OctetArray),
    // fixed-size / out-of-sequence / MP_CAPABLE / fragmented bits
    yaf(40, "flowAttributes", DataType::Unsigned16),
    // process statistics (YAF stats options records)
    yaf(100, "expiredFragmentCount", DataType::Unsigned32),
    yaf(101, "assembledFragmentCount", DataType::Unsigned32),
    yaf(102, "meanFlowRate", DataType::Unsigned32),
    yaf(103, "meanPacketRate", DataType::Unsigned32),
    yaf(104, "flowTableFlushEventCount", DataType::Unsigned32),
    yaf(105, "flowTablePeakCount", DataType::Unsigned32),
    yaf(107, "osFingerPrint", DataType::String),
    // multipath TCP
    yaf(289, "mptcpInitialDataSequenceNumber", DataType::Unsigned64),
    yaf(290, "mptcpReceiverToken", DataType::Unsigned32),
    yaf(291, "mptcpMaximumSegmentSize", DataType::Unsigned16),
    yaf(292, "mptcpAddressId", DataType::Unsigned8),
    yaf(293, "mptcpFlags", DataType::Unsigned8),
    // nDPI application labels (--ndpi)
    yaf(300, "ndpiL7Protocol", DataType::Unsigned16),
    yaf(301, "ndpiL7SubProtocol", DataType::Unsigned16),
    // flow statistics (--flow-stats)
    yaf(500, "smallPacketCount", DataType::Unsigned32),
    yaf(501, "nonEmptyPacketCount", DataType::Unsigned32),
    yaf(502, "dataByteCount", DataType::Unsigned64),
    yaf(503, "averageInterarrivalTime", DataType::Unsigned64),
    yaf(
        504,
        "standardDeviationInterarrivalTime",
        DataType::Unsigned64,
    ),
    yaf(505, "firstNonEmptyPacketSize", DataType::Unsigned16),
    yaf(506, "maxPacketSize", DataType::Unsigned16),
    yaf(
        507,
        "firstEightNonEmptyPacketDirections",
        DataType::Unsigned8,
    ),
    yaf(508, "standardDeviationPayloadLength", DataType::Unsigned16),
    yaf(509, "tcpUrgentCount", DataType::Unsigned32),
    yaf(510, "largePacketCount", DataType::Unsigned32),
    // --- reverse direction: id | 0x4000 ---
    yaf(14 | 0x4000, "reverseInitialTCPFlags", DataType::Unsigned8),
    yaf(15 | 0x4000, "reverseUnionTCPFlags", DataType::Unsigned8),
    yaf(18 | 0x4000, "reversePayload", DataType::OctetArray),
    yaf(35 | 0x4000, "reversePayloadEntropy", DataType::Unsigned8),
    yaf(36 | 0x4000, "reverseOsName", DataType::String),
    yaf(37 | 0x4000, "reverseOsVersion", DataType::String),
    yaf(
        38 | 0x4000,
        "reverseFirstPacketBanner",
        DataType::OctetArray,
    ),
    yaf(
        39 | 0x4000,
        "reverseSecondPacketBanner",
        DataType::OctetArray,
    ),
    yaf(40 | 0x4000, "reverseFlowAttributes", DataType::Unsigned16),
    yaf(107 | 0x4000, "reverseOsFingerPrint", DataType::String),
    yaf(
        500 | 0x4000,
        "reverseSmallPacketCount",
        DataType::Unsigned32,
    ),
    yaf(
        501 | 0x4000,
        "reverseNonEmptyPacketCount",
        DataType::Unsigned32,
    ),
    yaf(502 | 0x4000, "reverseDataByteCount", DataType::Unsigned64),
    yaf(
        503 | 0x4000,
        "reverseAverageInterarrivalTime",
        DataType::Unsigned64,
    ),
    yaf(
        504 | 0x4000,
        "reverseStandardDeviationInterarrivalTime",
        DataType::Unsigned64,
    ),
    yaf(
        505 | 0x4000,
        "reverseFirstNonEmptyPacketSize",
        DataType::Unsigned16,
    ),
    yaf(506 | 0x4000, "reverseMaxPacketSize", DataType::Unsigned16),
    yaf(
        507 | 0x4000,
        "reverseFirstEightNonEmptyPacketDirections",
        DataType::Unsigned8,
    ),
    yaf(
        508 | 0x4000,
        "reverseStandardDeviationPayloadLength",
        DataType::Unsigned16,
    ),
    yaf(509 | 0x4000, "reverseTcpUrgentCount", DataType::Unsigned32),
    yaf(
        510 | 0x4000,
        "reverseLargePacketCount",
        DataType::Unsigned32,
    ),
];

static CERT_ELEMENTS: [InformationElement; CERT_TABLE.len()] = CERT_TABLE;

/// Largest forward CERT id in the table (sizes the dense indexes).
const CERT_MAX_ID: usize = 510;
const NO_ENTRY: u8 = u8::MAX;

/// Dense indexes `[forward, reverse]`, position by `id & !0x4000`; built at
/// compile time (which also rejects duplicates and out-of-range ids).
const fn build_cert_index() -> [[u8; CERT_MAX_ID + 1]; 2] {
    let mut index = [[NO_ENTRY; CERT_MAX_ID + 1]; 2];
    let mut i = 0;
    while i < CERT_TABLE.len() {
        let id = CERT_TABLE[i].id;
        let dir = if id & YAF_REVERSE_BIT != 0 { 1 } else { 0 };
        let base = (id & !YAF_REVERSE_BIT) as usize;
        assert!(base <= CERT_MAX_ID, "CERT id beyond CERT_MAX_ID");
        assert!(index[dir][base] == NO_ENTRY, "duplicate CERT id");
        index[dir][base] = i as u8;
        i += 1;
    }
    index
}

static CERT_INDEX: [[u8; CERT_MAX_ID + 1]; 2] = build_cert_index();

/// CERT/YAF element by id (forward, or reverse with bit 0x4000 set). O(1).
#[inline]
pub(super) fn cert(id: u16) -> Option<&'static InformationElement> {
    let dir = usize::from(id & YAF_REVERSE_BIT != 0);
    let base = (id & !YAF_REVERSE_BIT) as usize;
    match CERT_INDEX[dir].get(base) {
        Some(&pos) if pos != NO_ENTRY => Some(&CERT_ELEMENTS[pos as usize]),
        _ => None,
    }
}

/// All hand-written vendor Information Elements (currently CERT/YAF,
/// PEN 6871), forward elements first.
pub fn vendor_elements() -> &'static [InformationElement] {
    &CERT_ELEMENTS
}

const fn v9(id: u16, name: &'static str, data_type: DataType) -> V9FieldType {
    V9FieldType {
        id,
        name,
        data_type,
    }
}

/// NetFlow v9 vendor field types (enterprise 0 on the v9 wire), sorted by id.
///
/// Names: the Python original's spelling for the ids it knows; Cisco's
/// `NF_F_*` names otherwise. Types: the documented field lengths/contents;
/// where Cisco reuses an IANA id with the same meaning, the IANA type.
pub(super) const V9_VENDOR_FIELDS: [V9FieldType; 28] = [
    // Cisco ASA NSEL: "An identifier of a unique flow for the device", 4 bytes
    // (IANA 148 flowId is unsigned64; the ASA sends 32 bits).
    v9(148, "NF_F_CONN_ID", DataType::Unsigned32),
    // flow creation time, 8 bytes, ms since 1970 (IANA flowStartMilliseconds)
    v9(
        152,
        "NF_F_FLOW_CREATE_TIME_MSEC",
        DataType::DateTimeMilliseconds,
    ),
    // ICMP type/code, 1 byte each (IANA icmpTypeIPv4 ... icmpCodeIPv6)
    v9(176, "NF_F_ICMP_TYPE", DataType::Unsigned8),
    v9(177, "NF_F_ICMP_CODE", DataType::Unsigned8),
    v9(178, "NF_F_ICMP_TYPE_IPV6", DataType::Unsigned8),
    v9(179, "NF_F_ICMP_CODE_IPV6", DataType::Unsigned8),
    // post-NAT addresses/ports (IANA postNATSourceIPv4Address ...)
    v9(225, "NF_F_XLATE_SRC_ADDR_IPV4", DataType::Ipv4Address),
    v9(226, "NF_F_XLATE_DST_ADDR_IPV4", DataType::Ipv4Address),
    v9(227, "NF_F_XLATE_SRC_PORT", DataType::Unsigned16),
    v9(228, "NF_F_XLATE_DST_PORT", DataType::Unsigned16),
    // delta bytes source->destination / destination->source, 4 bytes
    // (IANA 231/232 initiatorOctets/responderOctets are unsigned64 totals)
    v9(231, "NF_F_FWD_FLOW_DELTA_BYTES", DataType::Unsigned32),
    v9(232, "NF_F_REV_FLOW_DELTA_BYTES", DataType::Unsigned32),
    // high-level event: 0 ignore, 1 created, 2 deleted, 3 denied, 4 alert,
    // 5 update; 1 byte (IANA firewallEvent)
    v9(233, "NF_F_FW_EVENT", DataType::Unsigned8),
    v9(281, "NF_F_XLATE_SRC_ADDR_IPV6", DataType::Ipv6Address),
    v9(282, "NF_F_XLATE_DST_ADDR_IPV6", DataType::Ipv6Address),
    // event time, 8 bytes, ms since 1970 (IANA observationTimeMilliseconds)
    v9(323, "NF_F_EVENT_TIME_MSEC", DataType::DateTimeMilliseconds),
    // PAN-OS: enterprise number of the exporter (25461), IANA
    // privateEnterpriseNumber (unsigned32)
    v9(346, "PANOS_privateEnterpriseNumber", DataType::Unsigned32),
    // Cisco ASA NSEL ACL ids: 12 bytes = ACL name id, ACE / object-group id,
    // extended ACE id (3 x 4 bytes)
    v9(33000, "NF_F_INGRESS_ACL_ID", DataType::OctetArray),
    v9(33001, "NF_F_EGRESS_ACL_ID", DataType::OctetArray),
    // extended event code, 2 bytes
    v9(33002, "NF_F_FW_EXT_EVENT", DataType::Unsigned16),
    // AAA user name, 20 bytes (NF_F_USERNAME) or 65 bytes (NF_F_USERNAME_MAX)
    v9(40000, "NF_F_USERNAME", DataType::String),
    // ASA 8.4 compatibility ids, later replaced by the IANA ids 225-228 / 233
    v9(40001, "NF_F_XLATE_SRC_ADDR_84", DataType::Ipv4Address),
    v9(40002, "NF_F_XLATE_DST_ADDR_84", DataType::Ipv4Address),
    v9(40003, "NF_F_XLATE_SRC_PORT_84", DataType::Unsigned16),
    v9(40004, "NF_F_XLATE_DST_PORT_84", DataType::Unsigned16),
    v9(40005, "NF_F_FW_EVENT_84", DataType::Unsigned8),
    // PAN-OS enterprise-specific fields: App-ID name (32 bytes) and User-ID
    // user name (64 bytes), both text
    v9(56701, "PANOS_APPID", DataType::String),
    v9(56702, "PANOS_USERID", DataType::String),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaf_forward_and_reverse() {
        let ie = cert(14).unwrap();
        assert_eq!(
            (ie.enterprise, ie.name, ie.data_type),
            (6871, "initialTCPFlags", DataType::Unsigned8)
        );
        let r = cert(16398).unwrap();
        assert_eq!((r.enterprise, r.name), (6871, "reverseInitialTCPFlags"));
        assert_eq!(cert(16399).unwrap().name, "reverseUnionTCPFlags");
        assert_eq!(cert(21).unwrap().name, "reverseFlowDeltaMilliseconds");
        assert_eq!(cert(33).unwrap().name, "silkAppLabel");
        assert_eq!(cert(35).unwrap().name, "payloadEntropy");
        assert_eq!(cert(16419).unwrap().name, "reversePayloadEntropy");
        assert_eq!(cert(16424).unwrap().name, "reverseFlowAttributes");
        assert_eq!(cert(16491).unwrap().name, "reverseOsFingerPrint");
        assert_eq!(cert(16886).unwrap().name, "reverseDataByteCount");
        assert_eq!(cert(16894).unwrap().name, "reverseLargePacketCount");
        // not reversible / unknown
        assert!(cert(21 | 0x4000).is_none());
        assert!(cert(33 | 0x4000).is_none());
        assert!(cert(0).is_none());
        assert!(cert(511).is_none());
        assert!(cert(0x7FFF).is_none());
        assert!(cert(u16::MAX).is_none());
    }

    #[test]
    fn every_reverse_cert_element_mirrors_its_forward_element() {
        let mut reverse = 0;
        for ie in vendor_elements() {
            assert_eq!(ie.enterprise, CERT_PEN);
            assert_eq!(cert(ie.id), Some(ie));
            if ie.id & YAF_REVERSE_BIT != 0 {
                reverse += 1;
                let fwd = cert(ie.id & !YAF_REVERSE_BIT).expect("forward element");
                assert_eq!(fwd.data_type, ie.data_type);
                let rest = ie.name.strip_prefix("reverse").unwrap();
                assert!(rest[..1].eq_ignore_ascii_case(&fwd.name[..1]));
                assert_eq!(&rest[1..], &fwd.name[1..]);
            }
        }
        assert_eq!(reverse, 21);
        assert_eq!(vendor_elements().len(), 60);
    }

    #[test]
    fn v9_vendor_fields_sorted_unique() {
        for w in V9_VENDOR_FIELDS.windows(2) {
            assert!(w[0].id < w[1].id);
        }
        assert!(V9_VENDOR_FIELDS.iter().all(|f| f.id > 104));
    }
}
