//! `netflow analyzer report` on a file the collector wrote from what
//! `netflow generate` sent over loopback. The truth is what the generator
//! says it sent (flow records, packets per exporter) and what the collector
//! says it received; the page must show the same totals, one health row per
//! exporter with every export counted and no sequence loss.
//! (The page itself is checked in a real browser by
//! crates/netflow-analyzer/tests/report_browser.rs.)

mod common;
mod running;

use std::collections::BTreeMap;

use running::{per_exporter, Running};

/// `data-NAME="value"` of the element whose opening tag contains `anchor`.
fn attr_after(html: &str, anchor: &str, name: &str) -> u64 {
    let at = html
        .find(anchor)
        .unwrap_or_else(|| panic!("no {anchor} in the page"));
    let tag = &html[at..at + html[at..].find('>').unwrap()];
    attr(tag, name)
}

fn attr(tag: &str, name: &str) -> u64 {
    let key = format!("{name}=\"");
    let start = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    tag[start..start + tag[start..].find('"').unwrap()]
        .parse()
        .unwrap()
}

fn text_attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let start = tag.find(&key).unwrap() + key.len();
    &tag[start..start + tag[start..].find('"').unwrap()]
}

/// Exporter health rows: address -> (protocol, exports, lost).
fn health_rows(html: &str) -> BTreeMap<String, (String, u64, u64)> {
    html.split("<tr data-exporter=\"")
        .skip(1)
        .map(|rest| {
            let tag = format!("data-exporter=\"{}", &rest[..rest.find('>').unwrap()]);
            (
                text_attr(&tag, "data-exporter").to_string(),
                (
                    text_attr(&tag, "data-protocol").to_string(),
                    attr(&tag, "data-exports"),
                    attr(&tag, "data-lost"),
                ),
            )
        })
        .collect()
}

#[test]
fn report_of_generated_exports_matches_what_was_sent() {
    for (version, protocol) in [("5", "v5"), ("9", "v9"), ("10", "ipfix")] {
        let dir = common::tmp_dir(&format!("report_cli_v{version}"));
        let stored = dir.join("flows.gz");
        let mut collector = Running::start(&["-o", stored.to_str().unwrap()]);
        let target = collector.addr.clone();
        let sent = common::netflow(
            &[
                "generate",
                "--target",
                &target,
                "--version",
                version,
                "--exporters",
                "3",
                "--count",
                "90",
                "--rate",
                "400",
                "--seed",
                "11",
                "--start-time",
                "1764600000",
            ],
            None,
        );
        assert_eq!(sent.code, Some(0), "{}\n{}", sent.stdout, sent.stderr);
        let sent_lines: Vec<String> = sent.stdout.lines().map(String::from).collect();
        let sent_per = per_exporter(&sent_lines);
        let packets: u64 = sent_per.values().map(|v| v.0).sum();
        collector.wait_packets(packets);
        let received = per_exporter(&collector.terminate());
        assert_eq!(
            received.values().map(|v| v.0).collect::<Vec<_>>(),
            sent_per.values().map(|v| v.0).collect::<Vec<_>>(),
            "v{version}: the collector got every packet"
        );

        let page = dir.join("report.html");
        let run = common::netflow(
            &[
                "analyzer",
                "report",
                "-f",
                stored.to_str().unwrap(),
                "-o",
                page.to_str().unwrap(),
                "--title",
                "generated",
            ],
            None,
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(run.stderr.contains("wrote "), "{}", run.stderr);
        let html = std::fs::read_to_string(&page).unwrap();

        let flows: u64 = sent_per.values().map(|v| v.1).sum();
        assert_eq!(
            attr_after(&html, "id=\"total-flows\"", "data-value"),
            flows,
            "v{version}: flow records sent"
        );
        assert_eq!(
            attr_after(&html, "id=\"total-exports\"", "data-value"),
            packets,
            "v{version}"
        );
        assert_eq!(
            attr_after(&html, "id=\"unparsable\"", "data-count"),
            0,
            "v{version}"
        );
        let rows = health_rows(&html);
        let want: BTreeMap<String, (String, u64, u64)> = sent_per
            .iter()
            .map(|(addr, (packets, _, _))| (addr.clone(), (protocol.to_string(), *packets, 0)))
            .collect();
        assert_eq!(rows, want, "v{version}: one row per exporter, no loss");
        let buckets = attr_after(&html, "id=\"chart-bytes\"", "data-buckets");
        assert!(buckets >= 1, "v{version}");

        // The same file on standard input gives the same page.
        let bytes = std::fs::read(&stored).unwrap();
        let from_stdin = dir.join("stdin.html");
        let run = common::netflow(
            &[
                "analyzer",
                "report",
                "-o",
                from_stdin.to_str().unwrap(),
                "--title",
                "generated",
            ],
            Some(&bytes),
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let html2 = std::fs::read_to_string(&from_stdin).unwrap();
        assert_eq!(
            html2,
            html.replace(stored.to_str().unwrap(), "stdin"),
            "v{version}: stdin and file give the same page"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_missing_input_file_is_an_error_and_writes_nothing() {
    let dir = common::tmp_dir("report_cli_missing");
    let page = dir.join("report.html");
    let run = common::netflow(
        &[
            "analyzer",
            "report",
            "-f",
            dir.join("nope.gz").to_str().unwrap(),
            "-o",
            page.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("cannot read") && run.stderr.contains("nope.gz"),
        "{}",
        run.stderr
    );
    assert!(!page.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
