//! The collector's limits on real loopback sockets: the per-exporter rate
//! limit (UDP drops counted per source; TCP back-pressure, nothing lost),
//! template cache evictions and the pending buffer's per-exporter byte
//! limit, each visible in the stats, the summary and the metrics.

use std::io::Write;
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use netflow_collector::{Collector, Config, ExporterRateLimit};

mod common;
use common::{exporter_from, vector, wait_stats};

fn loopback() -> Config {
    Config::new(vec!["127.0.0.1:0".parse().unwrap()])
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn udp_rate_limit_drops_and_counts_per_source_address() {
    let mut config = loopback();
    config.rate_limit = Some(ExporterRateLimit {
        per_second: 50.0,
        burst: 20,
    });
    let c = Collector::bind(config).expect("binds");
    let to = c.local_addr();
    // One flooding source (two ports: they share the source's limit) and a
    // quiet one.
    let flood = [
        exporter_from("127.0.0.2", to),
        exporter_from("127.0.0.2", to),
    ];
    let quiet = exporter_from("127.0.0.3", to);
    let packet = vector("PACKET_V5");
    let records = netflow::parse_packet(&packet, &mut netflow::TemplateCache::new())
        .unwrap()
        .record_count() as u64;
    let start = Instant::now();
    for i in 0..300 {
        flood[i % 2].send(&packet).unwrap();
        if i % 30 == 0 {
            quiet.send(&packet).unwrap();
        }
    }
    let elapsed = start.elapsed();
    let s = wait_stats(&c, "every datagram counted", |s| {
        s.global.datagrams + s.global.rate_limited == 310
    });
    let (stats, _) = c.shutdown();
    assert_eq!(stats.global.socket_drops + stats.global.rxq_ovfl_drops, 0);
    // The quiet source is never limited: all its 10 datagrams.
    let quiet_addr = quiet.local_addr().unwrap();
    assert_eq!(stats.exporters[&quiet_addr].packets, 10);
    assert_eq!(stats.exporters[&quiet_addr].records, 10 * records);
    assert!(!stats.rate_limited.contains_key(&ip("127.0.0.3")));
    // The flood: what passed and what was dropped add up to what was sent;
    // at least the burst passed, at most the burst plus the rate over the
    // time it took to send.
    let passed: u64 = flood
        .iter()
        .map(|f| stats.exporters[&f.local_addr().unwrap()].packets)
        .sum();
    let limited = stats.rate_limited[&ip("127.0.0.2")];
    assert_eq!(passed + limited, 300);
    assert_eq!(stats.global.rate_limited, limited);
    let most = 20 + (50.0 * (elapsed.as_secs_f64() + 0.05)).ceil() as u64;
    assert!(
        (20..=most).contains(&passed),
        "{passed} passed in {elapsed:?}; stats {s:#?}"
    );
    // Reported everywhere.
    assert!(
        stats
            .status_line()
            .ends_with(&format!(" rate_limited {limited}")),
        "{}",
        stats.status_line()
    );
    let summary = stats.summary_lines();
    assert!(
        summary.contains(&format!("rate_limited 127.0.0.2 packets {limited}")),
        "{summary:?}"
    );
    assert!(summary
        .last()
        .unwrap()
        .ends_with(&format!(" rate_limited {limited}")));
    let text = netflow_collector::render_metrics(&stats);
    assert!(
        text.contains(&format!("\nnetflow_rate_limited_total {limited}\n")),
        "{text}"
    );
    assert!(text.contains(&format!(
        "\nnetflow_rate_limited_by_source_total{{source=\"127.0.0.2\"}} {limited}\n"
    )));
}

#[test]
fn tcp_rate_limit_pauses_the_session_and_loses_nothing() {
    let mut config = Config::new(Vec::new());
    config.tcp.listen = vec!["127.0.0.1:0".parse().unwrap()];
    config.rate_limit = Some(ExporterRateLimit {
        per_second: 40.0,
        burst: 5,
    });
    let c = Collector::bind(config).expect("binds");
    let mut messages = vec![vector("PACKET_IPFIX_TEMPLATE")];
    messages.extend(std::iter::repeat_n(vector("PACKET_IPFIX"), 44));
    // What the library decodes from the same messages, in order.
    let mut cache = netflow::TemplateCache::new();
    let expected: usize = messages
        .iter()
        .map(|m| netflow::parse_packet(m, &mut cache).unwrap().record_count())
        .sum();
    let start = Instant::now();
    let mut s = TcpStream::connect(c.tcp_addrs()[0]).unwrap();
    for m in &messages {
        s.write_all(m).unwrap();
    }
    s.flush().unwrap();
    let peer = s.local_addr().unwrap();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < expected {
        assert!(Instant::now() < deadline, "{got} of {expected} records");
        if let Ok(e) = c.recv_timeout(Duration::from_millis(100)) {
            assert_eq!(e.exporter, peer);
            got += e.records.len();
        }
    }
    // 45 messages, 5 at once then 40 per second: no sooner than 1 s.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    drop(s);
    let (stats, _) = c.shutdown();
    assert_eq!(got, expected);
    assert_eq!(stats.tcp.messages, 45);
    let e = &stats.exporters[&peer];
    assert_eq!((e.records + e.options) as usize, expected);
    assert_eq!(stats.global.rate_limited, 0, "TCP drops nothing");
    assert!(stats.tcp.rate_paused >= 1, "{:?}", stats.tcp);
    assert!(stats.tcp.summary_line().contains(" rate_paused "));
}

/// A v9 datagram (RFC 3954 section 5.1 header, source id 0) holding `sets`.
fn v9(sequence: u32, count: u16, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(9u16.to_be_bytes());
    p.extend(count.to_be_bytes());
    p.extend(1_000u32.to_be_bytes()); // sysUpTime
    p.extend(1_700_000_000u32.to_be_bytes());
    p.extend(sequence.to_be_bytes());
    p.extend(0u32.to_be_bytes());
    for s in sets {
        p.extend(s);
    }
    p
}

/// A template flowset (id 0) with templates `ids`, each one 4-byte field
/// (IN_BYTES, type 1).
fn templates(ids: impl IntoIterator<Item = u16>) -> Vec<u8> {
    let mut body = Vec::new();
    for id in ids {
        body.extend(id.to_be_bytes());
        body.extend(1u16.to_be_bytes());
        body.extend(1u16.to_be_bytes());
        body.extend(4u16.to_be_bytes());
    }
    let mut set = Vec::new();
    set.extend(0u16.to_be_bytes());
    set.extend((body.len() as u16 + 4).to_be_bytes());
    set.extend(body);
    set
}

/// A data flowset for template `id` with a `len`-byte body.
fn data(id: u16, len: u16) -> Vec<u8> {
    let mut set = Vec::new();
    set.extend(id.to_be_bytes());
    set.extend((len + 4).to_be_bytes());
    set.extend(std::iter::repeat_n(0xab, usize::from(len)));
    set
}

#[test]
fn template_cache_evictions_are_counted_and_exported() {
    let mut config = loopback();
    config.template_limits.max_templates_per_scope = 2;
    config.template_limits.max_scopes = 2;
    let c = Collector::bind(config).expect("binds");
    let to = c.local_addr();
    // Five templates in one scope with room for 2: 3 evicted.
    let a = exporter_from("127.0.0.2", to);
    a.send(&v9(0, 5, &[templates(256..261)])).unwrap();
    // Two more exporters: the third scope evicts the least recently used
    // one (a's, with its 2 templates).
    let b = exporter_from("127.0.0.3", to);
    b.send(&v9(0, 1, &[templates([256])])).unwrap();
    wait_stats(&c, "two datagrams", |s| s.global.datagrams == 2);
    let d = exporter_from("127.0.0.4", to);
    d.send(&v9(0, 1, &[templates([256])])).unwrap();
    let s = wait_stats(&c, "three datagrams", |s| s.global.datagrams == 3);
    let cache = s.global.template_cache;
    assert_eq!(cache.evicted_templates, 3, "{cache:?}");
    assert_eq!(cache.evicted_scopes, 1, "{cache:?}");
    assert_eq!(cache.templates_in_evicted_scopes, 2, "{cache:?}");
    assert_eq!(cache.rejected, 0);
    let text = netflow_collector::render_metrics(&s);
    assert!(text.contains("\nnetflow_template_evictions_total{kind=\"template\"} 3\n"));
    assert!(text.contains("\nnetflow_template_evictions_total{kind=\"scope\"} 1\n"));
    assert!(text.contains("\nnetflow_templates_in_evicted_scopes_total 2\n"));
    assert!(
        s.summary_lines().contains(
            &"templates evicted 3 scopes_evicted 1 templates_in_evicted_scopes 2 rejected 0"
                .to_string()
        ),
        "{:?}",
        s.summary_lines()
    );
    // Data for an evicted template waits for it like for an unknown one.
    a.send(&v9(1, 1, &[data(256, 4)])).unwrap();
    let s = wait_stats(&c, "the data set waiting", |s| s.global.datagrams == 4);
    assert_eq!(s.exporters[&a.local_addr().unwrap()].sets_waiting, 1);
    c.shutdown();
}

#[test]
fn pending_sets_over_the_exporter_limit_are_counted_with_their_reason() {
    let mut config = loopback();
    config.pending.max_bytes_per_exporter = 100;
    let c = Collector::bind(config).expect("binds");
    let to = c.local_addr();
    // Three 60-byte sets of unknown templates in one datagram: each new one
    // pushes the exporter over 100 bytes, so its oldest goes.
    let greedy = exporter_from("127.0.0.2", to);
    greedy
        .send(&v9(0, 3, &[data(300, 60), data(301, 60), data(302, 60)]))
        .unwrap();
    // Another exporter's set is not touched.
    let other = exporter_from("127.0.0.3", to);
    other.send(&v9(0, 1, &[data(300, 60)])).unwrap();
    let s = wait_stats(&c, "both datagrams", |s| s.global.datagrams == 2);
    let g = &s.exporters[&greedy.local_addr().unwrap()];
    assert_eq!(
        (
            g.sets_waiting,
            g.sets_dropped,
            g.sets_evicted,
            g.sets_over_exporter_limit,
            g.sets_expired
        ),
        (1, 2, 2, 2, 0),
        "{g:?}"
    );
    let o = &s.exporters[&other.local_addr().unwrap()];
    assert_eq!((o.sets_waiting, o.sets_dropped), (1, 0), "{o:?}");
    let text = netflow_collector::render_metrics(&s);
    let line = format!(
        "\nnetflow_exporter_sets_over_limit_total{{exporter=\"{}\"}} 2\n",
        greedy.local_addr().unwrap()
    );
    assert!(text.contains(&line), "{text}");
    assert!(s
        .summary_lines()
        .iter()
        .any(|l| l.contains(" dropped 2 expired 0 evicted 2 over_limit 2 ")));
    c.shutdown();
}

#[test]
fn exporter_entries_stay_bounded_and_the_totals_keep_every_count() {
    let mut config = loopback();
    config.max_exporters = 64;
    let c = Collector::bind(config).expect("binds");
    let to = c.local_addr();
    let packet = vector("PACKET_V5");
    let records = netflow::parse_packet(&packet, &mut netflow::TemplateCache::new())
        .unwrap()
        .record_count() as u64;
    // 300 exporters (distinct source ports, as spoofed sources or short
    // sessions would be), one datagram each, in order.
    // The sockets stay open: no source port is used twice.
    let mut sockets = Vec::new();
    for i in 0..300 {
        let s = exporter_from("127.0.0.2", to);
        s.send(&packet).unwrap();
        sockets.push(s);
        // One at a time, so "least recently seen" is the sending order.
        wait_stats(&c, "the datagram", |s| s.global.datagrams == i + 1);
    }
    let (stats, _) = c.shutdown();
    let last: Vec<_> = sockets[300 - 8..]
        .iter()
        .map(|s| s.local_addr().unwrap())
        .collect();
    assert!(stats.exporters.len() <= 64, "{}", stats.exporters.len());
    assert_eq!(
        stats.exporters.len() as u64 + stats.global.exporters_evicted,
        300
    );
    // The most recent ones are kept.
    for a in &last {
        assert!(stats.exporters.contains_key(a), "{a} was evicted");
    }
    // Nothing is lost from the totals.
    let t = stats.totals();
    assert_eq!((t.packets, t.records), (300, 300 * records));
    assert_eq!(
        stats.evicted_exporters.packets,
        stats.global.exporters_evicted
    );
    let total = stats.summary_lines().last().unwrap().clone();
    assert!(total.contains(" packets 300 "), "{total}");
    assert!(
        total.contains(&format!(
            " exporters_evicted {} ",
            stats.global.exporters_evicted
        )),
        "{total}"
    );
    let text = netflow_collector::render_metrics(&stats);
    assert!(text.contains(&format!(
        "\nnetflow_exporters_evicted_total {}\n",
        stats.global.exporters_evicted
    )));
}
