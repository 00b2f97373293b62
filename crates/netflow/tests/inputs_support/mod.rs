//! The test inputs shared by `visit_packet.rs`, `template_refresh.rs` and
//! `column_spans.rs` (included with `mod`): every UDP payload of every
//! capture in `testdata/captures`, every seed vector's packet, the fuzz
//! corpus, and hand-built IPFIX messages.

// Not every test that includes this module uses all of it.
#![allow(dead_code)]

use std::path::Path;

use netflow::decode_hex;

/// Every capture's UDP payloads, by file name, in name order.
pub fn captures() -> Vec<(String, Vec<Vec<u8>>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|path| {
            let mut r = netflow_capture::CaptureReader::open(&path, Default::default()).unwrap();
            let mut payloads = Vec::new();
            while let Some(d) = r.next_datagram() {
                payloads.push(d.unwrap().payload.to_vec());
            }
            (path.file_name().unwrap().to_string_lossy().into(), payloads)
        })
        .collect()
}

/// Every seed vector's packet, by vector name.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/seed_vectors.json"
    );
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                decode_hex(v["hex"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// Every file of the fuzz corpus (`fuzz/corpus/<target>/`), by path, in
/// path order.
pub fn fuzz_corpus() -> Vec<(String, Vec<u8>)> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut inputs = Vec::new();
    for dir in std::fs::read_dir(&corpus).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            inputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    inputs.sort();
    inputs
}

/// An IPFIX message of these sets (RFC 7011 section 3.1: version 10,
/// length, export time 1,700,000,000, sequence 1, observation domain 7).
pub fn ipfix_message(sets: &[Vec<u8>]) -> Vec<u8> {
    let body = sets.concat();
    let mut m = Vec::new();
    m.extend(10u16.to_be_bytes());
    m.extend(((16 + body.len()) as u16).to_be_bytes());
    m.extend(1_700_000_000u32.to_be_bytes());
    m.extend(1u32.to_be_bytes());
    m.extend(7u32.to_be_bytes());
    m.extend(body);
    m
}

/// A set (RFC 7011 section 3.3.2): set id, length, content.
pub fn set(id: u16, content: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(id.to_be_bytes());
    s.extend(((4 + content.len()) as u16).to_be_bytes());
    s.extend(content);
    s
}
