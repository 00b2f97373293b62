//! Information Element registry.
//!
//! * **IANA IPFIX Information Elements** (enterprise 0): generated from the
//!   IANA "IPFIX Information Elements" registry, which RFC 7012 section 4
//!   (Information Model) and RFC 7013 make the normative definition of every
//!   IE. The table lives in `iana_generated.rs`, produced by
//!   `cargo run -p gen-registry` from `data/iana/ipfix-information-elements.xml`.
//!   Abstract data types follow RFC 7012 section 3.1, RFC 6313 section 4.5
//!   for the structured-data list types and RFC 9740 for `unsigned256`.
//! * **Reverse Information Elements** (enterprise 29305, RFC 5103 section 6.1):
//!   for every reversible IANA element `id`, `lookup(29305, id)` is
//!   "reverse" + the forward name with its first letter upper-cased, with the
//!   forward data type. The non-reversible elements enumerated by RFC 5103
//!   section 6.1 (identifiers, process configuration and statistics,
//!   paddingOctets, biflowDirection) have no reverse entry.
//! * **Vendor elements** (`vendor.rs`): CERT/YAF (PEN 6871) including its
//!   RFC 5103 section 6.2 style reverse elements at `id | 0x4000`.
//! * **NetFlow v9 field types** (`v9.rs`): RFC 3954 section 8 plus the Cisco
//!   ASA NSEL and PAN-OS vendor ids, with the spellings of the Python original.
//!
//! All lookups are O(1) table or `match` lookups on `'static` data; nothing
//! allocates.

mod iana_generated;
mod v9;
mod vendor;

use iana_generated::{IANA, IANA_INFO, IANA_MAX_ID, REVERSE};

pub use vendor::{vendor_elements, CERT_PEN, YAF_REVERSE_BIT};

/// IANA abstract data types (RFC 7012 section 3.1, RFC 6313 for the list types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub enum DataType {
    OctetArray,
    Unsigned8,
    Unsigned16,
    Unsigned32,
    Unsigned64,
    Signed8,
    Signed16,
    Signed32,
    Signed64,
    Float32,
    Float64,
    Boolean,
    MacAddress,
    String,
    DateTimeSeconds,
    DateTimeMilliseconds,
    DateTimeMicroseconds,
    DateTimeNanoseconds,
    Ipv4Address,
    Ipv6Address,
    BasicList,
    SubTemplateList,
    SubTemplateMultiList,
    /// Registry entry without a data type (reserved / compatibility entries).
    Unspecified,
}

impl DataType {
    /// Parses the data type name used by the IANA registry ("unsigned64",
    /// "ipv4Address", "basicList", ...; the "IPFIX Information Element Data
    /// Types" sub-registry). The empty string gives [`DataType::Unspecified`].
    ///
    /// `"unsigned256"` (RFC 9740, flag bitmaps of up to 32 octets) has no
    /// variant of its own and maps to [`DataType::OctetArray`]; the exact
    /// registry text of an element is available from [`iana_info`].
    pub fn from_iana_name(name: &str) -> Option<DataType> {
        use DataType as D;
        Some(match name {
            "" => D::Unspecified,
            "octetArray" => D::OctetArray,
            "unsigned8" => D::Unsigned8,
            "unsigned16" => D::Unsigned16,
            "unsigned32" => D::Unsigned32,
            "unsigned64" => D::Unsigned64,
            "signed8" => D::Signed8,
            "signed16" => D::Signed16,
            "signed32" => D::Signed32,
            "signed64" => D::Signed64,
            "float32" => D::Float32,
            "float64" => D::Float64,
            "boolean" => D::Boolean,
            "macAddress" => D::MacAddress,
            "string" => D::String,
            "dateTimeSeconds" => D::DateTimeSeconds,
            "dateTimeMilliseconds" => D::DateTimeMilliseconds,
            "dateTimeMicroseconds" => D::DateTimeMicroseconds,
            "dateTimeNanoseconds" => D::DateTimeNanoseconds,
            "ipv4Address" => D::Ipv4Address,
            "ipv6Address" => D::Ipv6Address,
            "basicList" => D::BasicList,
            "subTemplateList" => D::SubTemplateList,
            "subTemplateMultiList" => D::SubTemplateMultiList,
            "unsigned256" => D::OctetArray,
            _ => return None,
        })
    }

    /// The IANA registry name of this data type (`""` for
    /// [`DataType::Unspecified`]).
    pub fn iana_name(self) -> &'static str {
        use DataType as D;
        match self {
            D::OctetArray => "octetArray",
            D::Unsigned8 => "unsigned8",
            D::Unsigned16 => "unsigned16",
            D::Unsigned32 => "unsigned32",
            D::Unsigned64 => "unsigned64",
            D::Signed8 => "signed8",
            D::Signed16 => "signed16",
            D::Signed32 => "signed32",
            D::Signed64 => "signed64",
            D::Float32 => "float32",
            D::Float64 => "float64",
            D::Boolean => "boolean",
            D::MacAddress => "macAddress",
            D::String => "string",
            D::DateTimeSeconds => "dateTimeSeconds",
            D::DateTimeMilliseconds => "dateTimeMilliseconds",
            D::DateTimeMicroseconds => "dateTimeMicroseconds",
            D::DateTimeNanoseconds => "dateTimeNanoseconds",
            D::Ipv4Address => "ipv4Address",
            D::Ipv6Address => "ipv6Address",
            D::BasicList => "basicList",
            D::SubTemplateList => "subTemplateList",
            D::SubTemplateMultiList => "subTemplateMultiList",
            D::Unspecified => "",
        }
    }
}

/// One Information Element definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InformationElement {
    /// Private Enterprise Number; 0 for IANA-assigned elements.
    pub enterprise: u32,
    pub id: u16,
    pub name: &'static str,
    pub data_type: DataType,
}

/// A NetFlow v9 field type (RFC 3954 section 8) with the name the Python original uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V9FieldType {
    pub id: u16,
    pub name: &'static str,
    pub data_type: DataType,
}

/// Registry columns of an IANA element that [`InformationElement`] does not
/// carry (RFC 7012 section 2 / RFC 7013 section 4 element properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IanaInfo {
    pub id: u16,
    /// The registry's `dataType` text verbatim, e.g. `"unsigned256"`
    /// (`""` when the record has none).
    pub data_type_name: &'static str,
    /// `dataTypeSemantics` (RFC 7012 section 3.2), `""` when absent.
    pub semantics: &'static str,
    /// `units`, `""` when absent.
    pub units: &'static str,
    /// `status` is "deprecated".
    pub deprecated: bool,
}

/// Private Enterprise Number of the RFC 5103 reverse Information Elements.
pub const REVERSE_PEN: u32 = 29305;

/// Date ("YYYY-MM-DD") of the IANA registry snapshot the tables come from.
pub const IANA_REGISTRY_UPDATED: &str = iana_generated::IANA_REGISTRY_UPDATED;

const NO_ENTRY: u16 = u16::MAX;
const INDEX_LEN: usize = IANA_MAX_ID as usize + 1;

/// Builds a dense id -> position index at compile time; also proves that the
/// table is sorted by id without duplicates (a violation fails the build).
const fn build_index(table: &[InformationElement]) -> [u16; INDEX_LEN] {
    let mut index = [NO_ENTRY; INDEX_LEN];
    let mut i = 0;
    while i < table.len() {
        let id = table[i].id as usize;
        assert!(id < INDEX_LEN, "id beyond IANA_MAX_ID");
        assert!(
            i == 0 || table[i - 1].id < table[i].id,
            "table not sorted by id"
        );
        index[id] = i as u16;
        i += 1;
    }
    index
}

static IANA_ELEMENTS: [InformationElement; IANA.len()] = IANA;
static IANA_INDEX: [u16; INDEX_LEN] = build_index(&IANA);
static REVERSE_ELEMENTS: [InformationElement; REVERSE.len()] = REVERSE;
static REVERSE_INDEX: [u16; INDEX_LEN] = build_index(&REVERSE);

#[inline]
fn position(index: &[u16; INDEX_LEN], id: u16) -> Option<usize> {
    match index.get(id as usize) {
        Some(&pos) if pos != NO_ENTRY => Some(pos as usize),
        _ => None,
    }
}

/// Look up an IE by (enterprise number, element id). `enterprise` 0 is IANA;
/// 29305 gives the RFC 5103 reverse element of the IANA element `id`; 6871 is
/// CERT/YAF (see [`vendor_elements`]). O(1), no allocation.
#[inline]
pub fn lookup(enterprise: u32, id: u16) -> Option<&'static InformationElement> {
    match enterprise {
        0 => position(&IANA_INDEX, id).map(|p| &IANA_ELEMENTS[p]),
        REVERSE_PEN => position(&REVERSE_INDEX, id).map(|p| &REVERSE_ELEMENTS[p]),
        CERT_PEN => vendor::cert(id),
        _ => None,
    }
}

/// Registry details (exact type name, semantics, units, status) of the IANA
/// element `id`.
pub fn iana_info(id: u16) -> Option<&'static IanaInfo> {
    position(&IANA_INDEX, id).map(|p| &IANA_INFO[p])
}

/// All IANA elements of the generated table, sorted by id.
pub fn iana_elements() -> &'static [InformationElement] {
    &IANA_ELEMENTS
}

/// All RFC 5103 reverse elements (enterprise 29305), sorted by id.
pub fn reverse_elements() -> &'static [InformationElement] {
    &REVERSE_ELEMENTS
}

/// NetFlow v9 field type by id, with the Python original's spelling.
/// O(1): a dense index for the RFC 3954 range, a `match` for vendor ids.
#[inline]
pub fn v9_field_type(id: u16) -> Option<&'static V9FieldType> {
    v9::field_type(id)
}

/// All NetFlow v9 field types known to [`v9_field_type`], sorted by id.
pub fn v9_field_types() -> &'static [V9FieldType] {
    v9::all()
}

/// Name of a v9 options scope field type (RFC 3954 section 6.1): 1 System,
/// 2 Interface, 3 Line Card, 4 Cache, 5 Template.
pub fn v9_scope_name(scope_type: u16) -> Option<&'static str> {
    match scope_type {
        1 => Some("System"),
        2 => Some("Interface"),
        3 => Some("Line Card"),
        4 => Some("Cache"),
        5 => Some("Template"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_spot_checks() {
        let ie = lookup(0, 8).unwrap();
        assert_eq!((ie.enterprise, ie.id, ie.name), (0, 8, "sourceIPv4Address"));
        assert_eq!(ie.data_type, DataType::Ipv4Address);
        assert_eq!(
            lookup(0, 153).unwrap().data_type,
            DataType::DateTimeMilliseconds
        );
        assert_eq!(lookup(0, 153).unwrap().name, "flowEndMilliseconds");
        assert_eq!(lookup(0, 291).unwrap().data_type, DataType::BasicList);
        assert_eq!(lookup(0, 292).unwrap().data_type, DataType::SubTemplateList);
        assert_eq!(
            lookup(0, 293).unwrap().data_type,
            DataType::SubTemplateMultiList
        );
        assert_eq!(lookup(0, 434).unwrap().data_type, DataType::Signed32);
        // placeholder records are kept, with no data type
        assert_eq!(lookup(0, 0).unwrap().name, "Reserved");
        assert_eq!(lookup(0, 97).unwrap().data_type, DataType::Unspecified);
        // names are trimmed (the XML has "p2pTechnology\n")
        assert_eq!(lookup(0, 288).unwrap().name, "p2pTechnology");
    }

    #[test]
    fn iana_gaps_and_bounds() {
        for id in [
            65,
            69,
            105,
            127,
            416,
            419,
            IANA_MAX_ID + 1,
            32767,
            32768,
            u16::MAX,
        ] {
            assert!(lookup(0, id).is_none(), "{id}");
            assert!(lookup(REVERSE_PEN, id).is_none(), "{id}");
        }
        assert!(lookup(12345, 1).is_none());
    }

    #[test]
    fn table_is_consistent() {
        assert_eq!(iana_elements().len(), IANA_INFO.len());
        for (ie, info) in iana_elements().iter().zip(IANA_INFO.iter()) {
            assert_eq!(ie.id, info.id);
            assert_eq!(ie.enterprise, 0);
            assert_eq!(lookup(0, ie.id), Some(ie));
            assert_eq!(
                DataType::from_iana_name(info.data_type_name),
                Some(ie.data_type)
            );
            assert!(!ie.name.is_empty() && ie.name.trim() == ie.name);
        }
    }

    #[test]
    fn deprecated_and_unsigned256_details() {
        let info = iana_info(515).unwrap(); // ipv6ExtensionHeadersFull
        assert_eq!(info.data_type_name, "unsigned256");
        assert_eq!(lookup(0, 515).unwrap().data_type, DataType::OctetArray);
        assert!(iana_info(34).unwrap().deprecated); // samplingInterval
        assert!(!iana_info(1).unwrap().deprecated);
        assert_eq!(iana_info(1).unwrap().semantics, "deltaCounter");
        assert_eq!(iana_info(1).unwrap().units, "octets");
    }

    #[test]
    fn reverse_elements_follow_rfc5103() {
        let r = lookup(REVERSE_PEN, 1).unwrap();
        assert_eq!(
            (r.enterprise, r.id, r.name),
            (29305, 1, "reverseOctetDeltaCount")
        );
        assert_eq!(r.data_type, DataType::Unsigned64);
        assert_eq!(
            lookup(REVERSE_PEN, 8).unwrap().name,
            "reverseSourceIPv4Address"
        );
        assert_eq!(
            lookup(REVERSE_PEN, 184).unwrap().name,
            "reverseTcpSequenceNumber"
        );
        // RFC 5103 section 6.1 non-reversible elements
        for id in [
            148, 145, 149, 137, 130, 131, 173, 211, 217, 40, 41, 42, 163, 168, 210, 239,
        ] {
            assert!(lookup(0, id).is_some());
            assert!(
                lookup(REVERSE_PEN, id).is_none(),
                "{id} must not be reversible"
            );
        }
        // placeholders have no reverse
        assert!(lookup(REVERSE_PEN, 0).is_none());
        assert!(lookup(REVERSE_PEN, 97).is_none());
        for r in reverse_elements() {
            let fwd = lookup(0, r.id).unwrap();
            assert_eq!(r.data_type, fwd.data_type);
            let rest = r.name.strip_prefix("reverse").unwrap();
            let mut c = rest.chars();
            let first = c.next().unwrap();
            assert_eq!(first, fwd.name.chars().next().unwrap().to_ascii_uppercase());
            assert_eq!(c.as_str(), &fwd.name[1..]);
        }
        assert_eq!(reverse_elements().len(), iana_elements().len() - 25 - 2);
    }

    #[test]
    fn data_type_names_round_trip() {
        for dt in iana_elements().iter().map(|ie| ie.data_type) {
            assert_eq!(DataType::from_iana_name(dt.iana_name()), Some(dt));
        }
        assert_eq!(DataType::from_iana_name("unsigned128"), None);
    }

    #[test]
    fn scope_names() {
        assert_eq!(v9_scope_name(3), Some("Line Card"));
        assert_eq!(v9_scope_name(0), None);
    }
}
