//! Cross-checks the generated registry against the IANA XML, parsed here
//! independently of `tools/gen-registry`.

use netflow::registry::{self, DataType};

const XML: &str = include_str!("../../../data/iana/ipfix-information-elements.xml");
const IANA_NS: &str = "http://www.iana.org/assignments";

/// (id, name, dataType text) of every record of the "IPFIX Information
/// Elements" registry that has a numeric elementId and a name.
fn named_numeric_records() -> Vec<(u16, String, String)> {
    let doc = roxmltree::Document::parse(XML).expect("IANA XML parses");
    let registry = doc
        .descendants()
        .find(|n| {
            n.has_tag_name((IANA_NS, "registry"))
                && n.attribute("id") == Some("ipfix-information-elements")
        })
        .expect("IE registry present");
    let text = |rec: roxmltree::Node, tag: &str| -> String {
        rec.children()
            .find(|c| c.has_tag_name((IANA_NS, tag)))
            .and_then(|c| c.text())
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let mut out = Vec::new();
    for rec in registry
        .children()
        .filter(|n| n.has_tag_name((IANA_NS, "record")))
    {
        let (id, name) = (text(rec, "elementId"), text(rec, "name"));
        if name.is_empty() {
            continue;
        }
        let Ok(id) = id.parse::<u16>() else { continue };
        out.push((id, name, text(rec, "dataType")));
    }
    out
}

/// Expected `DataType` for a registry dataType text.
fn expected_type(text: &str) -> DataType {
    match text {
        // RFC 9740 type without a `DataType` variant: kept as raw octets.
        "unsigned256" => DataType::OctetArray,
        "" => DataType::Unspecified,
        other => {
            DataType::from_iana_name(other).unwrap_or_else(|| panic!("unknown dataType {other}"))
        }
    }
}

#[test]
fn registry_every_named_record_is_in_the_table() {
    let records = named_numeric_records();
    assert!(records.len() > 500, "only {} records parsed", records.len());
    for (id, name, dt) in &records {
        let ie = registry::lookup(0, *id)
            .unwrap_or_else(|| panic!("IANA element {id} ({name}) missing"));
        assert_eq!(ie.enterprise, 0);
        assert_eq!(ie.id, *id);
        assert_eq!(ie.name, name, "name of element {id}");
        assert_eq!(
            ie.data_type,
            expected_type(dt),
            "data type of element {id} ({name})"
        );
        assert_eq!(registry::iana_info(*id).unwrap().data_type_name, dt);
    }
    assert_eq!(
        registry::iana_elements().len(),
        records.len(),
        "element count"
    );
}

#[test]
fn registry_has_nothing_beyond_the_xml() {
    let records = named_numeric_records();
    for ie in registry::iana_elements() {
        assert!(
            records.iter().any(|(id, _, _)| *id == ie.id),
            "{} not in the XML",
            ie.id
        );
    }
    for id in 0..=u16::MAX {
        let expected = records.iter().any(|(rid, _, _)| *rid == id);
        assert_eq!(
            registry::lookup(0, id).is_some(),
            expected,
            "lookup(0, {id})"
        );
    }
}

#[test]
fn registry_spot_checks() {
    let ie = |id| registry::lookup(0, id).unwrap();
    assert_eq!(
        (ie(8).name, ie(8).data_type),
        ("sourceIPv4Address", DataType::Ipv4Address)
    );
    assert_eq!(
        (ie(153).name, ie(153).data_type),
        ("flowEndMilliseconds", DataType::DateTimeMilliseconds)
    );
    assert_eq!(
        (ie(291).name, ie(291).data_type),
        ("basicList", DataType::BasicList)
    );
    assert_eq!(
        (ie(292).name, ie(292).data_type),
        ("subTemplateList", DataType::SubTemplateList)
    );
    assert_eq!(
        (ie(293).name, ie(293).data_type),
        ("subTemplateMultiList", DataType::SubTemplateMultiList)
    );

    let rev = registry::lookup(29305, 1).unwrap();
    assert_eq!(
        (rev.enterprise, rev.id, rev.name),
        (29305, 1, "reverseOctetDeltaCount")
    );
    assert_eq!(rev.data_type, DataType::Unsigned64);
    assert!(
        registry::lookup(29305, 210).is_none(),
        "paddingOctets is not reversible"
    );

    let v9 = registry::v9_field_type(63).unwrap();
    assert_eq!(
        (v9.id, v9.name, v9.data_type),
        (63, "BPG_IPV6_NEXT_HOP", DataType::Ipv6Address)
    );
    let v9 = registry::v9_field_type(82).unwrap();
    assert_eq!(
        (v9.id, v9.name, v9.data_type),
        (82, "IF_NAME", DataType::String)
    );
    assert_eq!(registry::v9_field_type(50).unwrap().name, "NTERVAL");
    assert!(registry::v9_field_type(153).is_none());

    let yaf = registry::lookup(6871, 16398).unwrap();
    assert_eq!(
        (yaf.name, yaf.data_type),
        ("reverseInitialTCPFlags", DataType::Unsigned8)
    );
}

#[test]
fn registry_reverse_elements_cover_reversible_iana_elements() {
    // RFC 5103 section 6.1 non-reversible elements.
    const NON_REVERSIBLE: [u16; 25] = [
        148, 145, 149, 137, 130, 131, 217, 211, 212, 213, 214, 215, 216, 173, 41, 40, 42, 163, 164,
        165, 166, 167, 168, 210, 239,
    ];
    for (id, name, dt) in named_numeric_records() {
        let rev = registry::lookup(29305, id);
        if NON_REVERSIBLE.contains(&id) || dt.is_empty() {
            assert!(rev.is_none(), "{id} ({name}) must have no reverse element");
            continue;
        }
        let rev = rev.unwrap_or_else(|| panic!("reverse of {id} ({name}) missing"));
        let expected = format!("reverse{}{}", name[..1].to_ascii_uppercase(), &name[1..]);
        assert_eq!(rev.name, expected);
        assert_eq!(rev.data_type, expected_type(&dt));
        assert_eq!(rev.enterprise, 29305);
    }
}
