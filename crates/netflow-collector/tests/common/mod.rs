//! Helpers shared by the collector crate's integration tests.
#![allow(dead_code)]

/// The bytes of a seed vector (`testdata/seed_vectors.json`, real softflowd exports).
pub fn vector(name: &str) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/seed_vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("reads the seed vectors");
    let json: serde_json::Value = serde_json::from_str(&text).expect("seed vectors are JSON");
    let hex = json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))["hex"]
        .as_str()
        .unwrap()
        .to_string();
    netflow::decode_hex(&hex).expect("valid hex")
}
