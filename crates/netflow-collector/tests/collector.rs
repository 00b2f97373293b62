//! The collector library on real loopback sockets: two exporters sending the
//! seed vectors (data before template included), bad datagrams, IPv6 and
//! dual-stack, and the gzip file sink.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use netflow_collector::{Collector, Config, ExportItem, FileSink, Sink};
use netflow_store::Format;

mod common;
use common::{exporter_from, vector, wait_stats};

const TIMEOUT: Duration = Duration::from_secs(30);

fn loopback() -> Config {
    Config::new(vec!["127.0.0.1:0".parse().unwrap()])
}

fn exporter_socket(to: SocketAddr) -> UdpSocket {
    let bind = if to.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let s = UdpSocket::bind(bind).expect("binds an exporter socket");
    s.connect(to).expect("connects");
    s
}

/// Receive exports until `records` records came from every exporter in `want`.
fn receive_records(
    c: &Collector,
    want: &BTreeMap<SocketAddr, usize>,
) -> BTreeMap<SocketAddr, Vec<ExportItem>> {
    let mut got: BTreeMap<SocketAddr, Vec<ExportItem>> = BTreeMap::new();
    let deadline = Instant::now() + TIMEOUT;
    let count = |got: &BTreeMap<SocketAddr, Vec<ExportItem>>, a: &SocketAddr| {
        got.get(a)
            .map_or(0, |v| v.iter().map(|i| i.records.len()).sum::<usize>())
    };
    while want.iter().any(|(a, n)| count(&got, a) < *n) {
        assert!(
            Instant::now() < deadline,
            "timed out; stats: {:#?}",
            c.stats()
        );
        match c.recv_timeout(Duration::from_millis(100)) {
            Ok(item) => got.entry(item.exporter).or_default().push(item),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => panic!("collector ended"),
        }
    }
    for (a, n) in want {
        assert_eq!(count(&got, a), *n, "records from {a}");
    }
    got
}

#[test]
fn two_exporters_seed_vectors_with_data_before_template() {
    let c = Collector::bind(loopback()).expect("binds");
    let to = c.local_addr();
    assert_ne!(to.port(), 0);
    let ipfix = exporter_socket(to);
    let legacy = exporter_socket(to);
    let a = ipfix.local_addr().unwrap();
    let b = legacy.local_addr().unwrap();

    // Exporter A: IPFIX data before its template.
    ipfix.send(&vector("PACKET_IPFIX")).unwrap();
    let s = wait_stats(&c, "the IPFIX data to wait", |s| {
        s.exporters.get(&a).is_some_and(|e| e.sets_waiting > 0)
    });
    assert_eq!(s.exporters[&a].records + s.exporters[&a].options, 0);
    ipfix.send(&vector("PACKET_IPFIX_TEMPLATE")).unwrap();

    // Exporter B: v1, v5, v9 template + data, and undecodable datagrams in between.
    for name in [
        "PACKET_V1",
        "PACKET_V5",
        "PACKET_INVALID",
        "PACKET_V9_TEMPLATE",
    ] {
        legacy.send(&vector(name)).unwrap();
    }
    legacy.send(&[b'A'; 32]).unwrap();
    legacy.send(&[]).unwrap();
    for name in ["PACKETS_V9[0]", "PACKETS_V9[1]", "PACKETS_V9[2]"] {
        legacy.send(&vector(name)).unwrap();
    }

    // Counts from the seed vectors (verified with netflow 0.12.2; IPFIX
    // options records are flows there; PACKET_V9_TEMPLATE: 8, PACKETS_V9: 12 each).
    let want = BTreeMap::from([(a, 3 + 20), (b, 2 + 3 + 8 + 3 * 12)]);
    let got = receive_records(&c, &want);

    // A: the template datagram first, then the set that waited (with its own
    // earlier receive time and header).
    let versions: Vec<u16> = got[&a].iter().map(|i| i.header.version()).collect();
    assert!(versions.iter().all(|&v| v == 10), "{versions:?}");
    let last = got[&a].last().unwrap();
    assert_eq!(
        last.records.len(),
        3,
        "the replayed PACKET_IPFIX sets come last"
    );
    assert!(last.received <= got[&a][0].received);
    // B: one item per decoded datagram, in order.
    let versions: Vec<u16> = got[&b].iter().map(|i| i.header.version()).collect();
    assert_eq!(versions, [1, 5, 9, 9, 9, 9]);

    let (stats, rest) = c.shutdown();
    assert!(rest.is_empty());
    let ea = &stats.exporters[&a];
    assert_eq!((ea.packets, ea.records + ea.options), (2, 23));
    // PACKET_IPFIX holds two data sets: both waited, both replayed.
    assert_eq!(
        (ea.sets_waiting, ea.sets_replayed, ea.sets_dropped),
        (0, 2, 0)
    );
    assert_eq!(ea.error_count(), 0);
    let eb = &stats.exporters[&b];
    assert_eq!(eb.packets, 9);
    assert_eq!(eb.records + eb.options, 49);
    assert_eq!(eb.bad_packets, 3);
    assert_eq!(
        eb.errors.get("unknown_version"),
        Some(&2),
        "{:?}",
        eb.errors
    );
    assert_eq!(eb.errors.get("truncated"), Some(&1), "{:?}", eb.errors);
    assert_eq!(eb.sequence.lost, 0);
    assert_eq!(stats.global.datagrams, 11);
    assert!(stats.summary_lines().len() == 3);
}

#[test]
fn clashing_template_ids_stay_apart() {
    // Two exporters send the same template id with different layouts
    // (the v9 template vs the IPFIX one are different protocols; use two
    // v9 exporters where only one has sent its template).
    let c = Collector::bind(loopback()).expect("binds");
    let to = c.local_addr();
    let one = exporter_socket(to);
    let two = exporter_socket(to);
    one.send(&vector("PACKET_V9_TEMPLATE")).unwrap();
    wait_stats(&c, "the template", |s| s.global.datagrams == 1);
    // Exporter two sends data for the same template id without a template:
    // it must wait, not be decoded with exporter one's template.
    two.send(&vector("PACKETS_V9[0]")).unwrap();
    let b = two.local_addr().unwrap();
    let s = wait_stats(&c, "the data", |s| s.global.datagrams == 2);
    let e = &s.exporters[&b];
    assert_eq!(e.records + e.options, 0, "{e:?}");
    assert!(e.sets_waiting > 0, "{e:?}");
    let (stats, _) = c.shutdown();
    // Still waiting at the end, and said so.
    assert!(stats.exporters[&b].sets_waiting > 0);
}

#[test]
fn ipv6_and_dual_stack() {
    // Dual-stack `[::]`: IPv4 exporters show as IPv4 addresses.
    let c = match Collector::bind(Config::new(vec!["[::]:0".parse().unwrap()])) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("no IPv6 on this machine ({e}); skipped");
            return;
        }
    };
    let port = c.local_addr().port();
    let v4 = exporter_socket(SocketAddr::from(([127, 0, 0, 1], port)));
    v4.send(&vector("PACKET_V5")).unwrap();
    let got = receive_records(&c, &BTreeMap::from([(v4.local_addr().unwrap(), 3)]));
    assert!(got.keys().all(|a| a.is_ipv4()));
    match UdpSocket::bind("[::1]:0") {
        Ok(v6) => {
            v6.connect(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)))
                .unwrap();
            v6.send(&vector("PACKET_V1")).unwrap();
            let got = receive_records(&c, &BTreeMap::from([(v6.local_addr().unwrap(), 2)]));
            assert!(got.keys().all(|a| a.is_ipv6()));
        }
        Err(e) => eprintln!("no ::1 ({e}); IPv6 exporter part skipped"),
    }
    c.shutdown();
}

#[test]
fn several_listen_addresses() {
    let c = Collector::bind(Config::new(vec![
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    ]))
    .expect("binds");
    assert_eq!(c.sockets().len(), 2);
    for (i, s) in c.sockets().iter().enumerate() {
        assert!(s.receive_buffer > 0);
        let e = exporter_socket(s.local);
        e.send(&vector("PACKET_V5")).unwrap();
        wait_stats(&c, "both sockets", |st| st.global.datagrams == i as u64 + 1);
    }
    let (stats, rest) = c.shutdown();
    assert_eq!(rest.iter().map(|i| i.records.len()).sum::<usize>(), 6);
    assert_eq!(stats.totals().records, 6);
}

#[test]
fn stop_reads_what_the_socket_holds() {
    let c = Collector::bind(loopback()).expect("binds");
    let e = exporter_socket(c.local_addr());
    for _ in 0..200 {
        e.send(&vector("PACKET_V5")).unwrap();
    }
    // No waiting: stop at once; join still delivers all of it.
    c.stop();
    let rest = c.join();
    assert_eq!(rest.iter().map(|i| i.records.len()).sum::<usize>(), 600);
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("netflow-collector-test-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Read a multi-member gzip file completely.
fn gunzip(path: &std::path::Path) -> std::io::Result<String> {
    let mut text = String::new();
    MultiGzDecoder::new(std::fs::File::open(path)?).read_to_string(&mut text)?;
    Ok(text)
}

#[test]
fn file_sink_members_survive_a_cut_file() {
    let dir = tmp("members");
    let path = dir.join("out.gz");
    let mut sink = FileSink::create(&path, Format::Flows).unwrap();
    let mut sizes = Vec::new();
    for m in 0..5 {
        for l in 0..100 {
            let line = format!("{{\"member\": {m}, \"line\": {l}}}\n");
            sink.append_lines(line.as_bytes(), 1).unwrap();
        }
        sink.flush().unwrap();
        sizes.push(std::fs::metadata(&path).unwrap().len());
    }
    sink.append_lines(b"{\"unflushed\": true}\n", 1).unwrap();
    assert_eq!(sink.counters().written, 500);
    assert_eq!(sink.counters().buffered, 1);
    assert_eq!(sink.counters().flushes, 5);
    // What a crash leaves: the flushed members, every one complete.
    let text = gunzip(&path).unwrap();
    assert_eq!(text.lines().count(), 500);
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
    // Appending to an existing file adds members.
    sink.close().unwrap();
    let mut again = FileSink::create(&path, Format::Flows).unwrap();
    again.append_lines(b"{\"again\": 1}\n", 1).unwrap();
    again.close().unwrap();
    assert_eq!(gunzip(&path).unwrap().lines().count(), 502);
    // A reader of a file cut inside the last member gets every earlier member.
    let bytes = std::fs::read(&path).unwrap();
    let cut = &bytes[..sizes[3] as usize + 7];
    let mut text = String::new();
    let err = MultiGzDecoder::new(cut).read_to_string(&mut text);
    assert!(err.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_sink_write_error_is_counted_and_kept() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("no /dev/full; skipped");
        return;
    }
    let mut sink = FileSink::create("/dev/full", Format::Original).unwrap();
    sink.append_lines(b"{\"a\": 1}\n", 1).unwrap();
    let err = sink.flush().unwrap_err();
    // ENOSPC, said with the path and what happens next.
    let text = err.to_string();
    assert!(text.contains("cannot write /dev/full"), "{text}");
    assert!(text.contains("1 lines (1 records"), "{text}");
    assert!(text.contains("trying again in 1 s"), "{text}");
    assert_eq!(err.raw_os_error(), None, "wrapped with context");
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    assert_eq!(sink.counters().errors, 1);
    assert_eq!(sink.counters().buffered, 1, "kept for the next flush");
    // Within the backoff a flush does not try (no new error), lines are kept.
    sink.append_lines(b"{\"b\": 2}\n", 1).unwrap();
    sink.flush().unwrap();
    assert_eq!(sink.counters().errors, 1);
    assert_eq!(sink.counters().buffered, 2);
    // Over the memory limit while failing: dropped and counted.
    sink.max_buffer = 0;
    sink.append_lines(b"{\"c\": 3}\n", 1).unwrap();
    assert_eq!(sink.counters().dropped, 3);
    assert_eq!(sink.counters().dropped_records, 3);
    assert_eq!(sink.counters().buffered, 0);
    // The close tries once more, backoff or not.
    sink.max_buffer = 1 << 20;
    sink.append_lines(b"{\"d\": 4}\n", 1).unwrap();
    sink.close().unwrap_err();
    assert_eq!(sink.counters().errors, 2);
    assert_eq!(sink.counters().dropped, 3);
    assert_eq!(sink.counters().buffered, 1);
}

#[test]
fn collector_with_file_sink_flushes_on_shutdown() {
    let dir = tmp("sink");
    let path = dir.join("out.gz");
    let sink = FileSink::create(&path, Format::Original).unwrap();
    let c = Collector::bind_with_sink(loopback(), sink).expect("binds");
    let e = exporter_socket(c.local_addr());
    for name in [
        "PACKET_V1",
        "PACKET_V5",
        "PACKET_V9_TEMPLATE",
        "PACKETS_V9[0]",
    ] {
        e.send(&vector(name)).unwrap();
    }
    wait_stats(&c, "4 datagrams", |s| s.global.datagrams == 4);
    let (stats, rest) = c.shutdown();
    assert!(rest.is_empty());
    assert_eq!(stats.global.sink_errors, 0);
    let text = gunzip(&path).expect("the file reads back");
    // Original layout: one line per datagram.
    assert_eq!(stats.global.sink.written, 4);
    assert_eq!(text.lines().count(), 4);
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("each line is JSON");
        let (_, export) = v.as_object().unwrap().iter().next().expect("one key");
        assert!(export["client"].is_array(), "{l}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sequence_loss_is_counted_per_exporter() {
    let c = Collector::bind(loopback()).expect("binds");
    let e = exporter_socket(c.local_addr());
    for name in ["PACKET_V9_TEMPLATE", "PACKETS_V9[0]", "PACKETS_V9[2]"] {
        e.send(&vector(name)).unwrap();
    }
    let (stats, _) = c.shutdown();
    let s = &stats.exporters[&e.local_addr().unwrap()];
    assert_eq!(s.packets, 3);
    assert_eq!(s.sequence.lost, 1, "PACKETS_V9[1] was not sent: {s:?}");
    assert_eq!(s.sequence.unit.map(|u| u.name()), Some("packets"));
    assert!(stats.summary_lines()[0].contains(" lost 1 packets"));
}

#[test]
fn a_slow_reader_blocks_only_the_decoder() {
    let mut config = loopback();
    config.channel = 1;
    let c = Collector::bind(config).expect("binds");
    let e = exporter_socket(c.local_addr());
    for _ in 0..50 {
        e.send(&vector("PACKET_V5")).unwrap();
    }
    // Nobody reads: the decoder waits on the full channel, but the counters
    // stay readable.
    wait_stats(&c, "the decoder to be held up", |s| s.global.datagrams >= 2);
    c.stop();
    let rest = c.join();
    assert_eq!(rest.iter().map(|i| i.records.len()).sum::<usize>(), 150);
}

#[test]
fn allowlist_drops_and_counts_other_sources() {
    let mut config = loopback();
    config.allow = vec![
        "127.0.0.2/32".parse().unwrap(),
        "10.0.0.0/8".parse().unwrap(),
    ];
    let c = Collector::bind(config).expect("binds");
    let allowed = exporter_from("127.0.0.2", c.local_addr());
    let denied = exporter_from("127.0.0.1", c.local_addr());
    for _ in 0..3 {
        denied.send(&vector("PACKET_V5")).unwrap();
        allowed.send(&vector("PACKET_V5")).unwrap();
    }
    denied.send(&[b'A'; 32]).unwrap(); // never decoded: not an error either
    let a = allowed.local_addr().unwrap();
    let s = wait_stats(&c, "3 allowed and 4 denied datagrams", |s| {
        s.global.datagrams == 3 && s.global.denied == 4
    });
    assert_eq!(s.exporters.keys().copied().collect::<Vec<_>>(), vec![a]);
    assert_eq!(s.exporters[&a].records, 9);
    assert_eq!(
        s.denied
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<Vec<_>>(),
        vec![("127.0.0.1".to_string(), 4)]
    );
    assert!(
        s.status_line().ends_with(" denied 4 rate_limited 0"),
        "{}",
        s.status_line()
    );
    let summary = s.summary_lines();
    assert!(
        summary.contains(&"denied 127.0.0.1 packets 4".to_string()),
        "{summary:?}"
    );
    assert!(
        summary.last().unwrap().contains(" denied 4 "),
        "{summary:?}"
    );
    let (_, rest) = c.shutdown();
    assert!(rest.iter().all(|i| i.exporter == a));
}

#[test]
fn allowlist_ipv6() {
    let mut config = Config::new(vec!["[::1]:0".parse().unwrap()]);
    config.allow = vec!["10.0.0.0/8".parse().unwrap()];
    let c = Collector::bind(config).expect("binds");
    let e = exporter_socket(c.local_addr());
    e.send(&vector("PACKET_V5")).unwrap();
    let s = wait_stats(&c, "a denied datagram", |s| s.global.denied == 1);
    assert!(s
        .denied
        .contains_key(&"::1".parse::<std::net::IpAddr>().unwrap()));
    let mut config = Config::new(vec!["[::1]:0".parse().unwrap()]);
    config.allow = vec!["::1/128".parse().unwrap()];
    let c = Collector::bind(config).expect("binds");
    let e = exporter_socket(c.local_addr());
    e.send(&vector("PACKET_V5")).unwrap();
    let s = wait_stats(&c, "an allowed datagram", |s| s.global.datagrams == 1);
    assert_eq!(s.global.denied, 0);
}

/// `GET path` over HTTP/1.1; the status line and the body.
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connects to the metrics server");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header and a body");
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the sample `name_and_labels` in a Prometheus text body.
fn sample(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn prometheus_metrics_over_http() {
    let dir = tmp("metrics");
    let sink = FileSink::create(dir.join("out.gz"), Format::Original).unwrap();
    let mut config = loopback();
    config.metrics = Some("127.0.0.1:0".parse().unwrap());
    config.allow = vec!["127.0.0.1/32".parse().unwrap()];
    config.flush_interval = Duration::from_millis(100);
    let c = Collector::bind_with_sink(config, sink).expect("binds");
    let m = c.metrics_addr().expect("a metrics address");
    assert_ne!(m.port(), 0);
    let e = exporter_socket(c.local_addr());
    let other = exporter_from("127.0.0.3", c.local_addr());
    for name in [
        "PACKET_V5",
        "PACKET_V5",
        "PACKET_V9_TEMPLATE",
        "PACKETS_V9[0]",
        "PACKETS_V9[2]",
    ] {
        e.send(&vector(name)).unwrap();
    }
    e.send(&[b'A'; 32]).unwrap();
    other.send(&vector("PACKET_V5")).unwrap();
    wait_stats(&c, "6 datagrams, 1 denied, flushed", |s| {
        s.global.datagrams == 6 && s.global.denied == 1 && s.global.sink.written == 5
    });
    let (status, body) = http_get(m, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let ex = format!("{{exporter=\"{}\"}}", e.local_addr().unwrap());
    let stats = c.stats();
    let mine = &stats.exporters[&e.local_addr().unwrap()];
    let get = |n: &str| sample(&body, n).unwrap_or_else(|| panic!("no {n} in\n{body}"));
    assert_eq!(get(&format!("netflow_exporter_packets_total{ex}")), 6.0);
    assert_eq!(
        get(&format!("netflow_exporter_bytes_total{ex}")),
        mine.bytes as f64
    );
    assert_eq!(
        get(&format!("netflow_exporter_records_total{ex}")),
        mine.records as f64
    );
    assert!(mine.records > 6);
    assert_eq!(
        get(&format!("netflow_exporter_sequence_lost_total{ex}")),
        1.0
    );
    assert_eq!(get(&format!("netflow_exporter_sets_waiting{ex}")), 0.0);
    assert_eq!(
        get(&format!(
            "netflow_exporter_decode_errors_total{{exporter=\"{}\",kind=\"unknown_version\"}}",
            e.local_addr().unwrap()
        )),
        1.0
    );
    assert_eq!(get("netflow_datagrams_total"), 6.0);
    assert_eq!(get("netflow_denied_total"), 1.0);
    assert_eq!(
        get("netflow_denied_by_source_total{source=\"127.0.0.3\"}"),
        1.0
    );
    assert_eq!(get("netflow_queue_depth"), 0.0);
    assert_eq!(get("netflow_sink_errors_total"), 0.0);
    assert_eq!(get("netflow_sink_written_total"), 5.0);
    let flushes = get("netflow_sink_flush_duration_seconds_count");
    assert!(flushes >= 1.0, "{body}");
    assert_eq!(
        get("netflow_sink_flush_duration_seconds_bucket{le=\"+Inf\"}"),
        flushes
    );
    assert!(body.contains("# TYPE netflow_sink_flush_duration_seconds histogram\n"));
    assert!(body.contains("# TYPE netflow_exporter_packets_total counter\n"));
    assert!(body.contains("# HELP netflow_queue_depth "));
    // Every sample line has a HELP and TYPE before it.
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        let base = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            body.contains(&format!("# TYPE {name} ")) || body.contains(&format!("# TYPE {base} ")),
            "{l}"
        );
    }
    assert_eq!(http_get(m, "/nothing").0, "HTTP/1.1 404 Not Found");
    c.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The files in `dir`, sorted, with their lines.
fn files_and_lines(dir: &std::path::Path) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let n = gunzip(&p).unwrap().lines().count();
            (p.file_name().unwrap().to_string_lossy().into_owned(), n)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn file_sink_rotates_by_time() {
    let dir = tmp("rotate-time");
    let rotation = netflow_collector::Rotation {
        interval: Some(Duration::from_secs(1)),
        size: None,
    };
    let sink = FileSink::with_rotation(dir.join("flows.gz"), Format::Original, rotation).unwrap();
    let first = sink.path().to_path_buf();
    let name = first.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("flows.") && name.ends_with(".gz"),
        "{name}"
    );
    let mut config = loopback();
    config.flush_interval = Duration::from_millis(100);
    let c = Collector::bind_with_sink(config, sink).expect("binds");
    let e = exporter_socket(c.local_addr());
    e.send(&vector("PACKET_V5")).unwrap();
    wait_stats(&c, "a first rotation", |s| s.global.sink.rotations >= 1);
    e.send(&vector("PACKET_V5")).unwrap();
    e.send(&vector("PACKET_V5")).unwrap();
    let s = wait_stats(&c, "a second rotation", |s| s.global.sink.rotations >= 2);
    assert_eq!(s.global.sink.written, 3);
    let (stats, _) = c.shutdown();
    // No rotation without data; the third file, never written to, is
    // removed at the close.
    assert_eq!(stats.global.sink.rotations, 2);
    let files = files_and_lines(&dir);
    assert_eq!(
        files.iter().map(|f| f.1).collect::<Vec<_>>(),
        vec![1, 2],
        "{files:?}"
    );
    assert_eq!(files[0].0, name);
    for (f, _) in &files {
        let secs = f
            .strip_prefix("flows.")
            .unwrap()
            .strip_suffix(".gz")
            .unwrap();
        let secs = secs.split('-').next().unwrap();
        secs.parse::<u64>().unwrap_or_else(|_| panic!("{f}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_sink_rotates_by_size_and_on_request() {
    let dir = tmp("rotate-size");
    let rotation = netflow_collector::Rotation {
        interval: None,
        size: Some(1),
    };
    let mut sink = FileSink::with_rotation(dir.join("x.gz"), Format::Flows, rotation).unwrap();
    for i in 0..3 {
        sink.append_lines(format!("{{\"i\": {i}}}\n").as_bytes(), 1)
            .unwrap();
        sink.flush().unwrap();
    }
    sink.close().unwrap();
    assert_eq!(sink.counters().rotations, 3);
    // Same second: `-N` suffixes keep the names apart.
    let files = files_and_lines(&dir);
    assert_eq!(
        files.iter().map(|f| f.1).collect::<Vec<_>>(),
        vec![1, 1, 1],
        "{files:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Without rotation, the reopen flag reopens the same path (logrotate).
    let dir = tmp("reopen");
    let path = dir.join("out.gz");
    let mut sink = FileSink::create(&path, Format::Flows).unwrap();
    sink.append_lines(b"{\"a\": 1}\n", 1).unwrap();
    sink.flush().unwrap();
    std::fs::rename(&path, dir.join("out.gz.1")).unwrap();
    sink.reopen_flag()
        .store(true, std::sync::atomic::Ordering::Relaxed);
    sink.append_lines(b"{\"b\": 2}\n", 1).unwrap();
    sink.flush().unwrap(); // written to the moved file, then reopened
    sink.append_lines(b"{\"c\": 3}\n", 1).unwrap();
    sink.close().unwrap();
    assert_eq!(gunzip(&dir.join("out.gz.1")).unwrap().lines().count(), 2);
    assert_eq!(gunzip(&path).unwrap().lines().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn workers_clashing_template_ids_every_record_per_exporter() {
    // 4 exporters, 3 workers: two v9 exporters with the same template ids
    // (one sends its data before its template), two IPFIX ones likewise.
    let mut config = loopback();
    config.workers = 3;
    let c = Collector::bind(config).expect("binds");
    let to = c.local_addr();
    let v9_a = exporter_socket(to);
    let v9_b = exporter_socket(to);
    let ipfix_a = exporter_socket(to);
    let ipfix_b = exporter_socket(to);
    let addr = |s: &UdpSocket| s.local_addr().unwrap();
    v9_a.send(&vector("PACKET_V9_TEMPLATE")).unwrap();
    for name in ["PACKETS_V9[0]", "PACKETS_V9[1]", "PACKETS_V9[2]"] {
        v9_a.send(&vector(name)).unwrap();
        v9_b.send(&vector(name)).unwrap();
    }
    ipfix_a.send(&vector("PACKET_IPFIX_TEMPLATE")).unwrap();
    ipfix_a.send(&vector("PACKET_IPFIX")).unwrap();
    ipfix_b.send(&vector("PACKET_IPFIX")).unwrap();
    // Exporter B's data waits for its own templates, not A's.
    wait_stats(&c, "the data before templates to wait", |s| {
        s.global.datagrams == 10
            && s.exporters
                .get(&addr(&v9_b))
                .is_some_and(|e| e.sets_waiting > 0)
            && s.exporters
                .get(&addr(&ipfix_b))
                .is_some_and(|e| e.sets_waiting > 0)
    });
    v9_b.send(&vector("PACKET_V9_TEMPLATE")).unwrap();
    ipfix_b.send(&vector("PACKET_IPFIX_TEMPLATE")).unwrap();
    let want = BTreeMap::from([
        (addr(&v9_a), 8 + 3 * 12),
        (addr(&v9_b), 8 + 3 * 12),
        (addr(&ipfix_a), 3 + 20),
        (addr(&ipfix_b), 3 + 20),
    ]);
    let got = receive_records(&c, &want);
    let (stats, rest) = c.shutdown();
    assert!(rest.is_empty());
    assert_eq!(stats.global.workers, 3);
    assert_eq!(stats.global.datagrams, 12);
    for (a, n) in &want {
        let e = &stats.exporters[a];
        assert_eq!(e.records + e.options, *n as u64, "{a}: {e:?}");
        assert_eq!(e.error_count(), 0, "{a}: {e:?}");
        assert_eq!(e.sets_waiting, 0, "{a}: {e:?}");
        assert_eq!(e.sequence.lost, 0, "{a}: {e:?}");
        assert_eq!(got[a].iter().map(|i| i.records.len()).sum::<usize>(), *n);
    }
    assert_eq!(stats.exporters[&addr(&v9_a)].packets, 4);
    assert_eq!(stats.exporters[&addr(&v9_b)].sets_replayed, 3);
    // One exporter's datagrams stay in order: v9 A's template line comes first.
    assert_eq!(got[&addr(&v9_a)][0].records.len(), 8);
}

#[test]
fn worker_routing_is_stable_per_exporter() {
    // The same exporter always maps to the same worker; many exporters spread.
    let c = {
        let mut config = loopback();
        config.workers = 4;
        Collector::bind(config).expect("binds")
    };
    let to = c.local_addr();
    let s = exporter_socket(to);
    for _ in 0..20 {
        s.send(&vector("PACKET_V5")).unwrap();
    }
    let a = s.local_addr().unwrap();
    let got = receive_records(&c, &BTreeMap::from([(a, 60)]));
    let times: Vec<f64> = got[&a].iter().map(|i| i.received).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "in order: {times:?}");
    let (stats, _) = c.shutdown();
    assert_eq!(stats.exporters[&a].packets, 20);
    assert_eq!(stats.exporters[&a].sequence.lost, 0);
}

#[test]
fn socket_drops_are_reported() {
    let c = Collector::bind(loopback()).expect("binds");
    let to = c.local_addr();
    let s = exporter_socket(to);
    s.send(&vector("PACKET_V5")).unwrap();
    receive_records(&c, &BTreeMap::from([(s.local_addr().unwrap(), 3)]));
    // A quiet socket: the counter is there and 0.
    let stats = c.stats();
    assert_eq!(stats.global.socket_drops, 0);
    assert!(
        stats.status_line().contains(" socket_drops 0 "),
        "{}",
        stats.status_line()
    );
    let text = netflow_collector::render_metrics(&stats);
    assert!(text.contains("\nnetflow_socket_drops_total 0\n"), "{text}");
    let (stats, _) = c.shutdown();
    assert!(stats
        .summary_lines()
        .last()
        .unwrap()
        .contains(" socket_drops 0"));
}

#[cfg(target_os = "linux")]
#[test]
fn socket_drops_count_a_full_receive_buffer() {
    // Nobody reads the exports: the queues fill, the receive thread waits,
    // the (small) socket buffer fills and the kernel drops the rest.
    let mut config = loopback();
    config.receive_buffer = 4096;
    config.queue = 1;
    config.channel = 1;
    let c = Collector::bind(config).expect("binds");
    let s = exporter_socket(c.local_addr());
    let packet = vector("PACKET_V5");
    let sent = (0..500).filter(|_| s.send(&packet).is_ok()).count() as u64;
    wait_stats(&c, "kernel drops", |s| s.global.socket_drops > 0);
    let (stats, rest) = c.shutdown();
    let e = &stats.exporters[&s.local_addr().unwrap()];
    assert_eq!(
        e.packets + stats.global.socket_drops,
        sent,
        "{:?}",
        stats.global
    );
    assert_eq!(e.records, 3 * e.packets);
    drop(rest);
}

#[test]
fn a_full_worker_queue_is_counted() {
    // Nobody reads the exports: the worker blocks on the full channel, its
    // queue fills and the receive thread waits, counted in `queue_full`.
    let mut config = loopback();
    config.queue = 1;
    config.channel = 1;
    let c = Collector::bind(config).expect("binds");
    let s = exporter_socket(c.local_addr());
    for _ in 0..10 {
        s.send(&vector("PACKET_V5")).unwrap();
    }
    wait_stats(&c, "a full queue", |s| s.global.queue_full > 0);
    let (stats, rest) = c.shutdown();
    assert_eq!(stats.exporters[&s.local_addr().unwrap()].packets, 10);
    assert_eq!(rest.len(), 10);
}

#[test]
fn templates_known_per_exporter() {
    let c = Collector::bind(loopback()).expect("binds");
    let to = c.local_addr();
    let with = exporter_socket(to);
    let without = exporter_socket(to);
    with.send(&vector("PACKET_V9_TEMPLATE")).unwrap();
    without.send(&vector("PACKETS_V9[0]")).unwrap();
    let (a, b) = (with.local_addr().unwrap(), without.local_addr().unwrap());
    let s = wait_stats(&c, "both datagrams", |s| s.global.datagrams == 2);
    assert!(s.exporters[&a].templates > 0, "{:?}", s.exporters[&a]);
    assert_eq!(s.exporters[&b].templates, 0);
    let text = netflow_collector::render_metrics(&s);
    let line = format!(
        "netflow_exporter_templates{{exporter=\"{a}\"}} {}\n",
        s.exporters[&a].templates
    );
    assert!(text.contains(&line), "{text}");
    let summary = s.summary_lines();
    assert!(
        summary[0].contains(&format!(
            " templates {} sampling ",
            s.exporters[&a].templates
        )) || summary[1].contains(&format!(
            " templates {} sampling ",
            s.exporters[&a].templates
        )),
        "{summary:?}"
    );
    c.shutdown();
}

#[test]
fn waiting_sets_expire_on_a_timer_and_are_reported_at_shutdown() {
    let mut config = loopback();
    config.pending.max_age_ms = 300;
    let c = Collector::bind(config).expect("binds");
    let data = vector("PACKETS_V9[0]");
    // RFC 3954 section 5.1: the 20-byte header ends with the source ID;
    // section 5.3: a data FlowSet starts with its FlowSet ID = template ID.
    let source_id = u32::from_be_bytes(data[16..20].try_into().unwrap());
    let template_id = u16::from_be_bytes([data[20], data[21]]);
    assert!(template_id >= 256);
    let quiet = exporter_socket(c.local_addr());
    let q = quiet.local_addr().unwrap();
    quiet.send(&data).unwrap();
    let s = wait_stats(&c, "the set to wait", |s| {
        s.exporters.get(&q).is_some_and(|e| e.sets_waiting > 0)
    });
    let waiting = s.exporters[&q].sets_waiting;
    let sent_at = Instant::now();
    // Nothing else arrives: only the workers' timer can expire it.
    let s = wait_stats(&c, "the expiry without any datagram", |s| {
        s.exporters[&q].sets_expired == waiting
    });
    assert!(sent_at.elapsed() < Duration::from_secs(5));
    let e = &s.exporters[&q];
    assert_eq!(
        (e.sets_waiting, e.sets_dropped, e.sets_evicted),
        (0, waiting, 0)
    );
    assert_eq!(s.global.datagrams, 1);
    let line = s
        .summary_lines()
        .into_iter()
        .find(|l| l.starts_with(&format!("exporter {q} ")))
        .unwrap();
    assert!(
        line.contains(&format!(" dropped {waiting} expired {waiting} evicted 0 ")),
        "{line}"
    );

    // Another exporter's sets still wait when the collector stops: counted
    // and named in the summary.
    let late = exporter_socket(c.local_addr());
    let l = late.local_addr().unwrap();
    late.send(&data).unwrap();
    wait_stats(&c, "the second set to wait", |s| {
        s.exporters
            .get(&l)
            .is_some_and(|e| e.sets_waiting == waiting)
    });
    let (stats, rest) = c.shutdown();
    assert_eq!(rest.iter().map(|i| i.records.len()).sum::<usize>(), 0);
    let e = &stats.exporters[&l];
    assert_eq!(e.sets_waiting, waiting);
    let w = &e.waiting_at_stop;
    assert_eq!(w.len(), 1, "{w:?}");
    let ((protocol, domain, id), sets) = w.iter().next().unwrap();
    assert_eq!(
        (protocol.name(), *domain, *id, sets.sets),
        ("v9", source_id, template_id, waiting)
    );
    assert!(sets.bytes > 0);
    let summary = stats.summary_lines();
    let want = format!(
        "waiting {l} sets {waiting} bytes {} never written, templates never received: v9 domain {source_id} template {template_id} ({waiting} sets)",
        sets.bytes
    );
    assert!(summary.contains(&want), "{summary:#?}");
}

/// Read exports until none comes for `quiet`; returns how many came.
fn drain(c: &Collector, quiet: Duration) -> u64 {
    let mut n = 0;
    loop {
        match c.recv_timeout(quiet) {
            Ok(_) => n += 1,
            Err(RecvTimeoutError::Timeout) => return n,
            Err(RecvTimeoutError::Disconnected) => panic!("collector ended"),
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn kernel_drops_are_counted_from_so_rxq_ovfl() {
    // A tiny receive buffer (as root set exactly, SO_RCVBUFFORCE) and
    // nobody reading at first: the queues fill, the receive thread waits,
    // the socket buffer fills and the kernel drops the rest of the burst.
    let mut config = loopback();
    config.receive_buffer = 4096;
    config.queue = 1;
    config.channel = 1;
    let c = Collector::bind(config).expect("binds");
    assert!(
        c.sockets()[0].receive_buffer <= 64 << 10,
        "{:?}",
        c.sockets()
    );
    let s = exporter_socket(c.local_addr());
    let packet = vector("PACKET_V5");
    let mut sent = (0..2000).filter(|_| s.send(&packet).is_ok()).count() as u64;
    let mut got = drain(&c, Duration::from_millis(300));
    // One more datagram, queued after every drop of the burst: the kernel
    // attaches the socket's final drop count to it.
    s.send(&packet).unwrap();
    sent += 1;
    got += drain(&c, Duration::from_millis(300));
    let stats = c.stats();
    let sock = stats.sockets[&c.local_addr()];
    assert!(sock.rxq_ovfl_drops > 0, "{sock:?}");
    assert_eq!(sock.datagrams + sock.rxq_ovfl_drops, sent, "{sock:?}");
    assert_eq!(sock.datagrams, got);
    // The other kernel source, /proc/net/udp, counts the same drops.
    assert_eq!(sock.proc_drops, sock.rxq_ovfl_drops, "{sock:?}");
    assert_eq!(stats.global.rxq_ovfl_drops, sock.rxq_ovfl_drops);
    let text = netflow_collector::render_metrics(&stats);
    let want = format!(
        "\nnetflow_socket_rxq_ovfl_drops_total{{socket=\"{}\"}} {}\n",
        c.local_addr(),
        sock.rxq_ovfl_drops
    );
    assert!(text.contains(&want), "{text}");
    assert!(
        stats
            .status_line()
            .contains(&format!(" rxq_drops {} ", sock.rxq_ovfl_drops)),
        "{}",
        stats.status_line()
    );
    let (stats, _) = c.shutdown();
    assert_eq!(stats.exporters[&s.local_addr().unwrap()].packets, got);
}

/// A sink that takes `delay` per write, and keeps what it got.
struct SlowSink {
    delay: Duration,
    got: std::sync::Arc<std::sync::Mutex<Vec<(SocketAddr, usize)>>>,
}

impl Sink for SlowSink {
    fn write(&mut self, export: &netflow_store::Export<'_>) -> std::io::Result<()> {
        std::thread::sleep(self.delay);
        let records = export.sets.iter().map(|s| s.record_count).sum();
        self.got.lock().unwrap().push((export.exporter, records));
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_slow_sink_is_waited_for_measured_and_nothing_is_lost() {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = SlowSink {
        delay: Duration::from_millis(3),
        got: got.clone(),
    };
    let mut config = loopback();
    config.queue = 4;
    let c = Collector::bind_with_sink(config, sink).expect("binds");
    let s = exporter_socket(c.local_addr());
    let packet = vector("PACKET_V5");
    for _ in 0..100 {
        s.send(&packet).unwrap();
    }
    // The sink's wait is counted after its write returns: the stats may
    // lag the writes by the last one.
    let stats = wait_stats(&c, "every datagram written and its wait counted", |st| {
        got.lock().unwrap().len() == 100 && st.global.sink_wait.count >= 100
    });
    let a = s.local_addr().unwrap();
    assert!(got.lock().unwrap().iter().all(|&(e, n)| e == a && n == 3));
    let g = &stats.global;
    assert_eq!((g.datagrams, g.socket_drops, g.rxq_ovfl_drops), (100, 0, 0));
    // Every datagram waited on the sink at least its delay.
    assert_eq!(g.sink_wait.count, 100);
    assert!(g.sink_wait.sum_seconds() >= 0.3, "{:?}", g.sink_wait);
    // The receive thread found the small queue full and waited.
    assert!(g.queue_full > 0, "{g:?}");
    assert_eq!(g.queue_wait.count, g.queue_full);
    assert!(g.queue_wait.sum_nanos > 0);
    let line = stats.status_line();
    let ms = |k: &str| {
        let w: Vec<&str> = line.split_whitespace().collect();
        w.windows(2).find(|p| p[0] == k).unwrap()[1]
            .parse::<u64>()
            .unwrap()
    };
    assert!(ms("sink_wait_ms") >= 300, "{line}");
    assert_eq!(ms("sink_wait_ms"), g.sink_wait.sum_millis(), "{line}");
    assert_eq!(ms("queue_wait_ms"), g.queue_wait.sum_millis(), "{line}");
    let text = netflow_collector::render_metrics(&stats);
    assert!(
        text.contains("\nnetflow_sink_wait_seconds_count 100\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\nnetflow_queue_wait_seconds_count {}\n",
            g.queue_full
        )),
        "{text}"
    );
    c.shutdown();
}

#[test]
fn name_patterns_expand_in_utc() {
    use netflow_collector::{patterned_path, NamePattern};
    // 1700000000 is 2023-11-14 22:13:20 UTC (`date -u -d @1700000000`).
    let p = NamePattern::new("%Y%m%d-%H%M%S.gz").unwrap();
    let dir = std::path::Path::new("/data");
    assert_eq!(
        patterned_path(dir, &p, 1_700_000_000, 0),
        PathBuf::from("/data/20231114-221320.gz")
    );
    assert_eq!(
        patterned_path(dir, &p, 1_700_000_000, 2),
        PathBuf::from("/data/20231114-221320-2.gz")
    );
    let p = NamePattern::new("flows-%s").unwrap();
    assert_eq!(
        patterned_path(dir, &p, 1_700_000_000, 1),
        PathBuf::from("/data/flows-1700000000-1")
    );
    assert!(NamePattern::new("%Y/%m.gz").is_err());
    assert!(NamePattern::new("x-%Q").is_err());
    assert!(NamePattern::new("").is_err());
}

#[test]
fn file_sink_with_a_name_pattern_creates_files_at_their_first_write() {
    let dir = tmp("pattern");
    let rotation = netflow_collector::Rotation {
        interval: None,
        size: Some(1),
    };
    let pattern = netflow_collector::NamePattern::new("p-%Y.gz").unwrap();
    let mut sink =
        FileSink::with_name_pattern(dir.join("x.gz"), Format::Flows, rotation, pattern).unwrap();
    // Nothing written yet: no file.
    sink.flush().unwrap();
    assert!(files_and_lines(&dir).is_empty());
    for i in 0..3 {
        sink.append_lines(format!("{{\"i\": {i}}}\n").as_bytes(), 1)
            .unwrap();
        sink.flush().unwrap();
    }
    sink.close().unwrap();
    let year = std::process::Command::new("date")
        .args(["-u", "+%Y"])
        .output()
        .unwrap();
    let year = String::from_utf8(year.stdout).unwrap().trim().to_string();
    let files = files_and_lines(&dir);
    assert_eq!(
        files,
        vec![
            (format!("p-{year}-1.gz"), 1),
            (format!("p-{year}-2.gz"), 1),
            (format!("p-{year}.gz"), 1),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines of known content, `n` of them, about 100 bytes each.
fn numbered_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{{\"i\": {i}, \"pad\": \"{:0>80}\"}}\n", i * 7919))
        .collect()
}

#[test]
fn file_sink_compresses_large_batches_at_every_level_in_order() {
    // Several MiB: many 128 KiB batches go through the compressor thread,
    // and `flush_at` (lowered) makes `append_lines` flush by itself too.
    let lines = numbered_lines(40_000);
    let raw: usize = lines.iter().map(String::len).sum();
    let mut sizes = Vec::new();
    for level in [0, 1, 6, 9] {
        let dir = tmp(&format!("level{level}"));
        let path = dir.join("out.gz");
        let mut sink = FileSink::create(&path, Format::Flows).unwrap();
        sink.compression_level = level;
        sink.flush_at = 1 << 20;
        for (i, l) in lines.iter().enumerate() {
            sink.append_lines(l.as_bytes(), 1).unwrap();
            if i == 30_000 {
                sink.flush().unwrap();
            }
        }
        sink.close().unwrap();
        let c = sink.counters();
        assert_eq!(c.written, lines.len() as u64, "level {level}");
        assert_eq!(c.buffered, 0);
        assert!(c.flushes >= 4, "level {level}: {} members", c.flushes);
        let text = gunzip(&path).unwrap();
        assert!(
            text == lines.concat(),
            "level {level}: lines differ or out of order"
        );
        sizes.push(std::fs::metadata(&path).unwrap().len());
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Level 0 stores (a bit more than the lines), the others compress,
    // 9 at least as well as 1.
    assert!(sizes[0] as usize > raw, "{sizes:?} vs {raw}");
    assert!((sizes[1] as usize) < raw / 3, "{sizes:?} vs {raw}");
    assert!(sizes[3] <= sizes[1], "{sizes:?}");
}

#[test]
fn file_sink_write_error_keeps_lines_already_handed_to_the_compressor() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("no /dev/full; skipped");
        return;
    }
    let lines = numbered_lines(5_000); // ~500 KiB: several batches
    let mut sink = FileSink::create("/dev/full", Format::Flows).unwrap();
    for l in &lines {
        sink.append_lines(l.as_bytes(), 1).unwrap();
    }
    let err = sink.flush().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    assert!(
        err.to_string().contains("5000 lines (5000 records"),
        "{err}"
    );
    assert_eq!(sink.counters().buffered, 5_000, "every line kept");
    assert_eq!(sink.counters().errors, 1);
    // While backing off nothing more is compressed nor tried; all kept.
    for l in &lines[..100] {
        sink.append_lines(l.as_bytes(), 1).unwrap();
    }
    sink.flush().unwrap();
    assert_eq!(sink.counters().buffered, 5_100);
    sink.close().unwrap_err();
    assert_eq!(sink.counters().errors, 2);
    assert_eq!(sink.counters().dropped, 0);
    assert_eq!(sink.counters().written, 0);
}

#[test]
fn file_sink_lines_handed_to_the_compressor_are_written_after_a_failure() {
    // The directory goes away after the sink is made: the lazily created
    // file cannot be opened, then can once the directory is back.
    let dir = tmp("compressor-retry");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let rotation = netflow_collector::Rotation {
        interval: Some(Duration::from_secs(3600)),
        size: None,
    };
    let mut sink = FileSink::with_rotation(out.join("x.gz"), Format::Flows, rotation).unwrap();
    std::fs::remove_dir(&out).unwrap();
    let lines = numbered_lines(5_000);
    for l in &lines[..4_000] {
        sink.append_lines(l.as_bytes(), 1).unwrap();
    }
    let err = sink.flush().unwrap_err();
    assert!(err.to_string().contains("4000 lines"), "{err}");
    std::fs::create_dir_all(&out).unwrap();
    for l in &lines[4_000..] {
        sink.append_lines(l.as_bytes(), 1).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1_100)); // the 1 s backoff
    sink.flush().unwrap();
    sink.close().unwrap();
    assert_eq!(sink.counters().written, 5_000);
    let file = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap();
    let text = gunzip(&file.path()).unwrap();
    assert!(text == lines.concat(), "lines lost or out of order");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A columns-style sink ([`Sink::takes_batches`]) that keeps when each
/// batch came and how many rows it had.
struct BatchLog {
    got: std::sync::Arc<std::sync::Mutex<Vec<(Instant, usize)>>>,
}

impl Sink for BatchLog {
    fn write(&mut self, _: &netflow_store::Export<'_>) -> std::io::Result<()> {
        unreachable!("a batch sink")
    }
    fn takes_batches(&self) -> bool {
        true
    }
    fn write_batch(&mut self, batch: &netflow_store::columns::Batch) -> std::io::Result<()> {
        self.got
            .lock()
            .unwrap()
            .push((Instant::now(), batch.rows()));
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A decode worker that keeps up (a datagram every 2 ms) gives the sink
/// its rows many datagrams at a time, not one datagram's at a time, yet
/// soon after they were built (not at the next flush or at shutdown);
/// every record arrives.
#[test]
fn an_idle_worker_hands_over_rows_in_batches_and_soon() {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let c = Collector::bind_with_sink(loopback(), BatchLog { got: got.clone() }).expect("binds");
    let s = exporter_socket(c.local_addr());
    let packet = vector("PACKET_V5");
    for _ in 0..100 {
        s.send(&packet).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let rows = || got.lock().unwrap().iter().map(|g| g.1).sum::<usize>();
    wait_stats(&c, "every record handed over", |_| rows() == 300);
    let calls = got.lock().unwrap().len();
    // One datagram's rows per hand-over would be 100 calls.
    assert!(calls <= 40, "{calls} hand-overs for 100 datagrams");
    // One more datagram, then nothing: its rows come within the delay
    // (20 ms), long before the flush interval.
    let sent = Instant::now();
    s.send(&packet).unwrap();
    wait_stats(&c, "the last datagram's rows", |_| rows() == 303);
    let (at, n) = *got.lock().unwrap().last().unwrap();
    assert_eq!(n, 3);
    assert!(at - sent < Duration::from_millis(500), "{:?}", at - sent);
    c.shutdown();
}

/// `UDP_SEGMENT` (linux/udp.h): the segment size of a UDP GSO send.
#[cfg(target_os = "linux")]
const UDP_SEGMENT: libc::c_int = 103;

/// Send `bytes` on a connected socket as one UDP GSO message: the kernel
/// makes datagrams of `segment` bytes of it (the last may be shorter).
#[cfg(target_os = "linux")]
fn send_segmented(socket: &UdpSocket, bytes: &[u8], segment: u16) -> std::io::Result<usize> {
    use std::os::unix::io::AsRawFd;
    #[repr(C, align(8))]
    struct Control([u8; 32]);
    let mut control = Control([0; 32]);
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: all-zero is a valid msghdr; it points to one iovec over
    // `bytes` (only read) and to a control buffer of CMSG_SPACE(2) bytes,
    // 8-byte aligned, whose one control message the u16 is written into.
    let sent = unsafe {
        let mut h: libc::msghdr = std::mem::zeroed();
        h.msg_iov = &mut iov;
        h.msg_iovlen = 1;
        h.msg_control = control.0.as_mut_ptr().cast();
        h.msg_controllen = libc::CMSG_SPACE(2) as _;
        let c = libc::CMSG_FIRSTHDR(&h);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), segment);
        libc::sendmsg(socket.as_raw_fd(), &h, 0)
    };
    if sent < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// A burst of equal-sized datagrams the kernel hands over as one message
/// (UDP GRO; on loopback a GSO send stays whole up to the socket) is cut
/// back into its datagrams: every one decoded on its own, in order, and
/// counted as a datagram; the receive counted as coalesced.
#[cfg(target_os = "linux")]
#[test]
fn coalesced_datagrams_are_cut_back_into_their_datagrams() {
    let c = Collector::bind(loopback()).expect("binds");
    let s = exporter_socket(c.local_addr());
    // Nine copies of the seed v5 packet (3 records, 168 bytes) with
    // flow_sequence 0, 3, ..., 24, then a shorter one: the same packet cut
    // to its first 2 records (count 2, 120 bytes), flow_sequence 27.
    let packet = vector("PACKET_V5");
    assert_eq!(packet.len(), 24 + 3 * 48);
    let mut burst = Vec::new();
    for i in 0..10u32 {
        let mut p = packet.clone();
        p[16..20].copy_from_slice(&(i * 3).to_be_bytes());
        if i == 9 {
            p.truncate(24 + 2 * 48);
            p[2..4].copy_from_slice(&2u16.to_be_bytes());
        }
        burst.extend_from_slice(&p);
    }
    let sent = send_segmented(&s, &burst, packet.len() as u16).expect("a GSO send on loopback");
    assert_eq!(sent, burst.len());
    let from = s.local_addr().unwrap();
    let got = receive_records(&c, &BTreeMap::from([(from, 9 * 3 + 2)]));
    let items = &got[&from];
    let sequences: Vec<Option<u32>> = items.iter().map(|i| i.header.sequence()).collect();
    let want: Vec<Option<u32>> = (0..10).map(|i| Some(i * 3)).collect();
    assert_eq!(sequences, want, "one export per datagram, in order");
    let counts: Vec<usize> = items.iter().map(|i| i.records.len()).collect();
    assert_eq!(counts, [vec![3; 9], vec![2]].concat());
    let stats = wait_stats(&c, "10 packets decoded", |s| s.totals().packets >= 10);
    let sock = stats.sockets[&c.local_addr()];
    assert_eq!(sock.datagrams, 10, "{sock:?}");
    assert_eq!(sock.coalesced, 1, "one receive held the burst: {sock:?}");
    assert_eq!(stats.totals().sequence.lost, 0);
    assert_eq!(stats.totals().error_count(), 0);
    let text = netflow_collector::render_metrics(&stats);
    let line = format!(
        "\nnetflow_socket_coalesced_receives_total{{socket=\"{}\"}} 1\n",
        c.local_addr()
    );
    assert!(text.contains(&line), "{text}");
}
