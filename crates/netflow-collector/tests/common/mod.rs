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

/// An exporter socket bound to `from` (any 127/8 address on Linux loopback).
pub fn exporter_from(from: &str, to: std::net::SocketAddr) -> std::net::UdpSocket {
    let s = std::net::UdpSocket::bind(format!("{from}:0")).expect("binds an exporter socket");
    s.connect(to).expect("connects");
    s
}

/// Wait (30 s at most) until `cond` holds for the collector's counters.
pub fn wait_stats(
    c: &netflow_collector::Collector,
    what: &str,
    cond: impl Fn(&netflow_collector::Stats) -> bool,
) -> netflow_collector::Stats {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = c.stats();
        if cond(&s) {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; stats: {s:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
