//! The async stream (feature `tokio`, enabled for the tests by the crate's
//! dev-dependency on itself) on real loopback sockets: the seed vectors'
//! record counts come out of the stream, a stop delivers what was sent, and
//! dropping a stream that nobody reads does not hang.
#![cfg(feature = "tokio")]

use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::time::{Duration, Instant};

use netflow_collector::{Collector, Config, ExportItem, ExportStream};

mod common;
use common::vector;

const TIMEOUT: Duration = Duration::from_secs(30);

fn exporter_socket(to: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("binds an exporter socket");
    s.connect(to).expect("connects");
    s
}

fn loopback() -> Config {
    Config::new(vec!["127.0.0.1:0".parse().unwrap()])
}

/// The next item through the `futures_core::Stream` implementation.
async fn poll_stream(s: &mut ExportStream) -> Option<ExportItem> {
    std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *s), cx)).await
}

#[tokio::test]
async fn stream_delivers_the_seed_vectors() {
    let mut s = Collector::bind_stream(loopback()).expect("binds");
    let e = exporter_socket(s.local_addr());
    // Counts verified with netflow 0.12.2: v1 2 records, v5 3, the v9
    // template datagram 8, then data before template for IPFIX (3 + 20).
    for name in [
        "PACKET_V1",
        "PACKET_V5",
        "PACKET_V9_TEMPLATE",
        "PACKET_IPFIX",
        "PACKET_IPFIX_TEMPLATE",
    ] {
        e.send(&vector(name)).unwrap();
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while got
        .iter()
        .map(|i: &ExportItem| i.records.len())
        .sum::<usize>()
        < 2 + 3 + 8 + 23
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let item = if got.len() % 2 == 0 {
            tokio::time::timeout(left, s.next_export()).await
        } else {
            tokio::time::timeout(left, poll_stream(&mut s)).await
        };
        got.push(
            item.expect("an export within the timeout")
                .expect("not ended"),
        );
    }
    let versions: Vec<u16> = got.iter().map(|i| i.header.version()).collect();
    // One item per datagram (the IPFIX data datagram with no records yet,
    // as the original writes a line per datagram), then the IPFIX sets that
    // waited for their template, after it.
    assert_eq!(versions, [1, 5, 9, 10, 10, 10]);
    let records: Vec<usize> = got.iter().map(|i| i.records.len()).collect();
    assert_eq!(records, [2, 3, 8, 0, 20, 3]);
    assert!(got.iter().all(|i| i.exporter == e.local_addr().unwrap()));
    let (stats, rest) = s.shutdown().await;
    assert!(rest.is_empty());
    assert_eq!(stats.global.datagrams, 5);
    assert_eq!(stats.global.sink.written, 6);
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_delivers_everything_sent() {
    // A single-threaded runtime: shutdown must not block it.
    let s = Collector::bind_stream(loopback()).expect("binds");
    let e = exporter_socket(s.local_addr());
    let packet = vector("PACKET_V5");
    for _ in 0..200 {
        e.send(&packet).unwrap();
    }
    // Stop without reading anything: what the socket holds still comes out.
    let (stats, rest) = tokio::time::timeout(TIMEOUT, s.shutdown())
        .await
        .expect("shutdown ends");
    assert_eq!(rest.len(), 200);
    assert_eq!(rest.iter().map(|i| i.records.len()).sum::<usize>(), 600);
    assert_eq!(stats.global.datagrams, 200);
    assert_eq!(stats.global.sink.dropped, 0);
}

#[test]
fn dropping_an_unread_stream_does_not_hang() {
    let mut config = loopback();
    config.channel = 1;
    config.queue = 1;
    let s = Collector::bind_stream(config).expect("binds");
    let e = exporter_socket(s.local_addr());
    for _ in 0..20 {
        e.send(&vector("PACKET_V5")).unwrap();
    }
    // Wait until the decode thread is blocked on the full channel.
    let deadline = Instant::now() + TIMEOUT;
    while s.stats().global.datagrams < 2 {
        assert!(Instant::now() < deadline, "{:?}", s.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(s);
        let _ = tx.send(());
    });
    rx.recv_timeout(TIMEOUT).expect("the drop returns");
}
