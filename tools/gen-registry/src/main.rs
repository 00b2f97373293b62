//! Generator for `crates/netflow/src/registry/iana_generated.rs`.
//!
//! Reads the IANA "IPFIX Information Elements" registry
//! (`data/iana/ipfix-information-elements.xml`, RFC 7012 section 4 /
//! RFC 7013 make the registry the normative definition of the IEs) and
//! writes three Rust tables:
//!
//! * `IANA`: every record with a numeric `elementId` and a non-empty name,
//!   deprecated ones included. Ranges ("105-127", "534-32767") and the two
//!   deprecated records without a name (416, 419) are skipped.
//! * `IANA_INFO`: the registry columns that do not fit `InformationElement`
//!   (exact data type text, semantics, units, status), in the same order.
//! * `REVERSE`: the RFC 5103 reverse Information Elements (PEN 29305) for
//!   every IANA element except the non-reversible ones listed in
//!   [`NON_REVERSIBLE`] and the two placeholder records without a data type
//!   (0 "Reserved", 97 "Assigned for NetFlow v9 compatibility").
//!
//! Usage (from anywhere inside the workspace):
//!
//! ```text
//! cargo run -p gen-registry            # regenerate the checked-in file
//! cargo run -p gen-registry -- --check # exit 1 if the checked-in file is stale
//! ```
//!
//! The output is piped through `rustfmt` when it is available so that the
//! checked-in file is `cargo fmt` clean.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// RFC 5103 section 6.1: "The following specific Information Elements are
/// not reversible":
///
/// 1. the identifiers of RFC 5102 section 5.1 that cannot be associated with a
///    single direction: flowId, templateId, observationDomainId,
///    commonPropertiesId;
/// 2. the process configuration elements of RFC 5102 section 5.2 (IANA group
///    "config");
/// 3. the process statistics elements of RFC 5102 section 5.3 (IANA group
///    "processCounter");
/// 4. paddingOctets (RFC 5102 section 5.12.1);
/// 5. biflowDirection (RFC 5103 section 6.3).
///
/// Later registry additions that meet the same criteria "SHOULD also be
/// considered to be non-reversible by the Collecting Process"; that is a
/// judgement call the RFC leaves to the collector, so only the enumerated
/// elements are excluded here.
const NON_REVERSIBLE: &[(u16, &str)] = &[
    // 1. Identifiers (RFC 5102 5.1.7, 5.1.8, 5.1.9, 5.1.11)
    (148, "flowId"),
    (145, "templateId"),
    (149, "observationDomainId"),
    (137, "commonPropertiesId"),
    // 2. Process configuration (RFC 5102 5.2)
    (130, "exporterIPv4Address"),
    (131, "exporterIPv6Address"),
    (217, "exporterTransportPort"),
    (211, "collectorIPv4Address"),
    (212, "collectorIPv6Address"),
    (213, "exportInterface"),
    (214, "exportProtocolVersion"),
    (215, "exportTransportProtocol"),
    (216, "collectorTransportPort"),
    (173, "flowKeyIndicator"),
    // 3. Process statistics (RFC 5102 5.3)
    (41, "exportedMessageTotalCount"),
    (40, "exportedOctetTotalCount"),
    (42, "exportedFlowRecordTotalCount"),
    (163, "observedFlowTotalCount"),
    (164, "ignoredPacketTotalCount"),
    (165, "ignoredOctetTotalCount"),
    (166, "notSentFlowTotalCount"),
    (167, "notSentPacketTotalCount"),
    (168, "notSentOctetTotalCount"),
    // 4. paddingOctets (RFC 5102 5.12.1)
    (210, "paddingOctets"),
    // 5. biflowDirection (RFC 5103 6.3)
    (239, "biflowDirection"),
];

const IANA_NS: &str = "http://www.iana.org/assignments";
const XML_PATH: &str = "data/iana/ipfix-information-elements.xml";
const OUT_PATH: &str = "crates/netflow/src/registry/iana_generated.rs";

struct Record {
    id: u16,
    name: String,
    /// Variant name of `registry::DataType`.
    variant: &'static str,
    /// Exact `dataType` text of the registry ("" when absent).
    type_name: String,
    semantics: String,
    units: String,
    deprecated: bool,
}

/// Maps the registry's `dataType` text (RFC 7012 section 3.1, RFC 6313 for
/// the list types, RFC 9740 for unsigned256) to a `DataType` variant.
fn variant_for(type_name: &str) -> Result<&'static str, String> {
    Ok(match type_name {
        "" => "Unspecified",
        "octetArray" => "OctetArray",
        "unsigned8" => "Unsigned8",
        "unsigned16" => "Unsigned16",
        "unsigned32" => "Unsigned32",
        "unsigned64" => "Unsigned64",
        "signed8" => "Signed8",
        "signed16" => "Signed16",
        "signed32" => "Signed32",
        "signed64" => "Signed64",
        "float32" => "Float32",
        "float64" => "Float64",
        "boolean" => "Boolean",
        "macAddress" => "MacAddress",
        "string" => "String",
        "dateTimeSeconds" => "DateTimeSeconds",
        "dateTimeMilliseconds" => "DateTimeMilliseconds",
        "dateTimeMicroseconds" => "DateTimeMicroseconds",
        "dateTimeNanoseconds" => "DateTimeNanoseconds",
        "ipv4Address" => "Ipv4Address",
        "ipv6Address" => "Ipv6Address",
        "basicList" => "BasicList",
        "subTemplateList" => "SubTemplateList",
        "subTemplateMultiList" => "SubTemplateMultiList",
        // RFC 9740 flag bitmaps of up to 32 octets (reduced-size encoding is
        // the norm). `DataType` has no 256-bit integer; the bytes are kept as
        // an octet array and the exact type name is in `IANA_INFO`.
        "unsigned256" => "OctetArray",
        other => return Err(format!("unknown IANA dataType {other:?}")),
    })
}

fn child_text(node: roxmltree::Node<'_, '_>, tag: &str) -> String {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == tag)
        .map(|c| c.text().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

fn parse(xml: &str) -> Result<(String, Vec<Record>), String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("XML parse error: {e}"))?;
    let root = doc.root_element();
    let updated = child_text(root, "updated");
    let registry = root
        .children()
        .find(|n| {
            n.is_element()
                && n.tag_name().name() == "registry"
                && n.tag_name().namespace() == Some(IANA_NS)
                && n.attribute("id") == Some("ipfix-information-elements")
        })
        .ok_or("no <registry id=\"ipfix-information-elements\">")?;

    let mut records = Vec::new();
    for rec in registry
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "record")
    {
        let id_text = child_text(rec, "elementId");
        let name = child_text(rec, "name");
        // Ranges ("105-127"), reserved/unassigned spans and nameless records are
        // not Information Elements.
        if name.is_empty() || id_text.is_empty() || !id_text.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let id: u16 = id_text
            .parse()
            .map_err(|e| format!("elementId {id_text}: {e}"))?;
        let type_name = child_text(rec, "dataType");
        let variant = variant_for(&type_name).map_err(|e| format!("element {id}: {e}"))?;
        records.push(Record {
            id,
            name,
            variant,
            type_name,
            semantics: child_text(rec, "dataTypeSemantics"),
            units: child_text(rec, "units"),
            deprecated: child_text(rec, "status") == "deprecated",
        });
    }
    records.sort_by_key(|r| r.id);
    for w in records.windows(2) {
        if w[0].id == w[1].id {
            return Err(format!("duplicate elementId {}", w[0].id));
        }
    }
    Ok((updated, records))
}

/// RFC 5103 section 6.1 naming: "reverse" + the name with its first letter
/// upper-cased (octetDeltaCount -> reverseOctetDeltaCount).
fn reverse_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => format!("reverse{}{}", first.to_ascii_uppercase(), chars.as_str()),
        None => "reverse".to_string(),
    }
}

fn is_reversible(r: &Record) -> bool {
    r.variant != "Unspecified" && !NON_REVERSIBLE.iter().any(|&(id, _)| id == r.id)
}

fn render(updated: &str, records: &[Record]) -> Result<String, String> {
    // Sanity: the non-reversible list must name real elements.
    for &(id, name) in NON_REVERSIBLE {
        match records.iter().find(|r| r.id == id) {
            Some(r) if r.name == name => {}
            Some(r) => {
                return Err(format!(
                    "NON_REVERSIBLE {id}: registry name is {:?}, expected {name:?}",
                    r.name
                ))
            }
            None => {
                return Err(format!(
                    "NON_REVERSIBLE {id} ({name}) is not in the registry"
                ))
            }
        }
    }
    let reversible: Vec<&Record> = records.iter().filter(|r| is_reversible(r)).collect();
    let max_id = records.last().map_or(0, |r| r.id);

    let mut iana = String::new();
    let mut info = String::new();
    for r in records {
        let (id, name, variant) = (r.id, &r.name, r.variant);
        writeln!(iana, "    ie({id}, {name:?}, DataType::{variant}),").unwrap();
        let (ty, sem, units, dep) = (&r.type_name, &r.semantics, &r.units, r.deprecated);
        writeln!(info, "    info({id}, {ty:?}, {sem:?}, {units:?}, {dep}),").unwrap();
    }
    let mut reverse = String::new();
    for r in &reversible {
        let (id, name, variant) = (r.id, reverse_name(&r.name), r.variant);
        writeln!(reverse, "    rev({id}, {name:?}, DataType::{variant}),").unwrap();
    }
    let (n_iana, n_reverse) = (records.len(), reversible.len());

    Ok(format!(
        r#"// @generated by tools/gen-registry from {XML_PATH}
// (IANA "IPFIX Information Elements" registry, last updated {updated}).
// Do not edit by hand; regenerate with: cargo run -p gen-registry
// (`cargo run -p gen-registry -- --check` verifies this file is current).

use super::{{DataType, IanaInfo, InformationElement}};

/// Date of the registry snapshot these tables were generated from.
pub(super) const IANA_REGISTRY_UPDATED: &str = {updated:?};

/// Largest IANA elementId in the tables (sizes the dense id indexes).
pub(super) const IANA_MAX_ID: u16 = {max_id};

const fn ie(id: u16, name: &'static str, data_type: DataType) -> InformationElement {{
    InformationElement {{ enterprise: 0, id, name, data_type }}
}}

const fn rev(id: u16, name: &'static str, data_type: DataType) -> InformationElement {{
    InformationElement {{ enterprise: super::REVERSE_PEN, id, name, data_type }}
}}

const fn info(
    id: u16,
    data_type_name: &'static str,
    semantics: &'static str,
    units: &'static str,
    deprecated: bool,
) -> IanaInfo {{
    IanaInfo {{ id, data_type_name, semantics, units, deprecated }}
}}

/// Every named IANA Information Element with a numeric id, sorted by id.
/// A `const` because compile-time code reads it (id index, v9 data types);
/// it is materialized once, by a `static` in `mod.rs`.
#[allow(clippy::large_const_arrays)]
pub(super) const IANA: [InformationElement; {n_iana}] = [
{iana}];

/// Registry columns not carried by `InformationElement`, parallel to `IANA`.
pub(super) static IANA_INFO: [IanaInfo; {n_iana}] = [
{info}];

/// RFC 5103 reverse Information Elements (PEN 29305), sorted by id.
/// A `const` for the compile-time id index; materialized by a `static` in `mod.rs`.
#[allow(clippy::large_const_arrays)]
pub(super) const REVERSE: [InformationElement; {n_reverse}] = [
{reverse}];
"#
    ))
}

/// Formats `src` with rustfmt (edition 2021) when rustfmt is installed.
fn rustfmt(src: String, root: &Path) -> String {
    // Run from the workspace root so a rustfmt.toml there is honoured.
    let child = Command::new("rustfmt")
        .current_dir(root)
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("gen-registry: rustfmt not found, writing unformatted output");
        return src;
    };
    if let Some(mut stdin) = child.stdin.take() {
        if stdin.write_all(src.as_bytes()).is_err() {
            eprintln!("gen-registry: could not feed rustfmt, writing unformatted output");
        }
    }
    match child.wait_with_output() {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => {
            String::from_utf8(out.stdout).unwrap_or(src)
        }
        _ => {
            eprintln!("gen-registry: rustfmt failed, writing unformatted output");
            src
        }
    }
}

fn workspace_root() -> PathBuf {
    // tools/gen-registry -> workspace root
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> ExitCode {
    let check = std::env::args().skip(1).any(|a| a == "--check");
    let root = workspace_root();
    let xml_path = root.join(XML_PATH);
    let out_path = root.join(OUT_PATH);

    let xml = match std::fs::read_to_string(&xml_path) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("gen-registry: cannot read {}: {e}", xml_path.display());
            return ExitCode::FAILURE;
        }
    };
    let (updated, records) = match parse(&xml) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("gen-registry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let src = match render(&updated, &records) {
        Ok(s) => rustfmt(s, &root),
        Err(e) => {
            eprintln!("gen-registry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reverse = records.iter().filter(|r| is_reversible(r)).count();

    if check {
        let current = std::fs::read_to_string(&out_path).unwrap_or_default();
        if current == src {
            println!("gen-registry: {OUT_PATH} is up to date");
            return ExitCode::SUCCESS;
        }
        eprintln!("gen-registry: {OUT_PATH} is stale; run `cargo run -p gen-registry`");
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&out_path, src) {
        eprintln!("gen-registry: cannot write {}: {e}", out_path.display());
        return ExitCode::FAILURE;
    }
    println!(
        "gen-registry: wrote {OUT_PATH}: {} IANA elements, {reverse} reverse elements (registry {updated})",
        records.len()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("octetDeltaCount"), "reverseOctetDeltaCount");
        assert_eq!(
            reverse_name("sourceIPv4Address"),
            "reverseSourceIPv4Address"
        );
    }

    #[test]
    fn non_reversible_list_is_unique() {
        for (i, a) in NON_REVERSIBLE.iter().enumerate() {
            assert!(
                NON_REVERSIBLE[i + 1..].iter().all(|b| b.0 != a.0),
                "duplicate {}",
                a.0
            );
        }
        assert_eq!(NON_REVERSIBLE.len(), 25);
    }

    #[test]
    fn parses_minimal_registry() {
        let xml = r#"<registry xmlns="http://www.iana.org/assignments" id="ipfix">
<updated>2000-01-01</updated>
<registry id="ipfix-information-elements">
<record><name>Reserved</name><elementId>0</elementId></record>
<record><name>octetDeltaCount</name><dataType>unsigned64</dataType><elementId>1</elementId><status>current</status></record>
<record><name>Unassigned</name><elementId>2-9</elementId></record>
<record><name></name><elementId>10</elementId><status>deprecated</status></record>
<record><name>p2p
</name><dataType>string</dataType><elementId>11</elementId><status>deprecated</status></record>
</registry>
<registry id="other"><record><name>x</name><elementId>3</elementId></record></registry>
</registry>"#;
        let (updated, recs) = parse(xml).unwrap();
        assert_eq!(updated, "2000-01-01");
        let ids: Vec<u16> = recs.iter().map(|r| r.id).collect();
        assert_eq!(ids, [0, 1, 11]);
        assert_eq!(recs[0].variant, "Unspecified");
        assert_eq!(recs[2].name, "p2p");
        assert!(recs[2].deprecated);
        assert!(!is_reversible(&recs[0]));
        assert!(is_reversible(&recs[1]));
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert!(variant_for("unsigned128").is_err());
        assert_eq!(variant_for("unsigned256").unwrap(), "OctetArray");
    }
}
