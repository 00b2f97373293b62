//! Sequence accounting: hand-built header sequences with exact counters for
//! v5, v9 and IPFIX, and the real softflowd/pmacct captures.

use std::path::{Path, PathBuf};

use netflow::sequence::{
    Observation, SequenceTracker, SequenceUnit, StreamCounters, StreamKey, TrackerLimits,
};
use netflow::wire::{ipfix::IpfixHeader, v1::V1Header, v5::V5Header, v9::V9Header};
use netflow::{Decoder, ExporterId, Header, Protocol};

use Observation::*;

fn exporter(port: u16) -> ExporterId {
    ExporterId(([192, 0, 2, 1], port).into())
}

/// v5 header: `count` flows, uptime in ms, export time in s.
fn v5(sequence: u32, count: u16, uptime: u32, secs: u32) -> Header {
    Header::V5(V5Header {
        version: 5,
        count,
        uptime,
        timestamp: secs,
        sequence,
        ..Default::default()
    })
}

fn v9(sequence: u32, uptime: u32, secs: u32) -> Header {
    Header::V9(V9Header {
        version: 9,
        count: 3,
        uptime,
        timestamp: secs,
        sequence,
        source_id: 7,
    })
}

fn ipfix(sequence: u32, export_time: u32) -> Header {
    Header::Ipfix(IpfixHeader {
        version: 10,
        length: 0,
        export_time,
        sequence,
        observation_domain: 3,
    })
}

/// Feed `(header, data records, expected observation)` and return the stream's counters.
fn run(
    t: &mut SequenceTracker,
    ex: ExporterId,
    steps: &[(Header, u64, Observation)],
) -> StreamCounters {
    for (i, (h, n, want)) in steps.iter().enumerate() {
        assert_eq!(t.observe(ex, h, *n), *want, "step {i}: {h:?}");
    }
    let c = *t.stream(&StreamKey::new(ex, &steps[0].0)).unwrap();
    assert_eq!(
        c.expected,
        c.received + c.lost + c.unverified,
        "invariant: {c:?}"
    );
    c
}

#[test]
fn v5_counts_flows_gap_reorder_duplicate_restart() {
    let mut t = SequenceTracker::default();
    let ex = exporter(1);
    // 10 flows per packet, 1 s apart; uptime 1000 s at the start.
    let at = |i: u32| (1_000_000 + i * 1000, 1_700_000_000 + i);
    let p = |seq: u32, i: u32| {
        let (up, secs) = at(i);
        v5(seq, 10, up, secs)
    };
    let c = run(
        &mut t,
        ex,
        &[
            (p(0, 0), 10, First),
            (p(10, 1), 10, InOrder),
            // Flows 20..30 missing for now.
            (p(30, 3), 10, Gap { missing: 10 }),
            // ... they arrive late: the loss is taken back.
            (p(20, 2), 10, Reordered { filled: 10 }),
            // The same datagram again.
            (p(20, 2), 10, Duplicate),
            (p(40, 4), 10, InOrder),
            // Flows 50..60 never come.
            (p(60, 6), 10, Gap { missing: 10 }),
            // Reboot: uptime back to 5 s, export time forward, sequence reset.
            (v5(0, 10, 5_000, 1_700_000_100), 10, Restart),
            (v5(10, 10, 6_000, 1_700_000_101), 10, InOrder),
        ],
    );
    assert_eq!(
        c,
        StreamCounters {
            datagrams: 9,
            records: 90,
            expected: 90,
            received: 80,
            lost: 10,
            reordered: 10,
            duplicates: 10,
            overlapped: 0,
            late: 0,
            unverified: 0,
            restarts: 1,
        }
    );
}

#[test]
fn v5_wraparound_and_gap_across_zero() {
    let mut t = SequenceTracker::default();
    let ex = exporter(2);
    let p = |seq: u32, i: u32| v5(seq, 10, 50_000 + i, 1_700_000_000);
    let c = run(
        &mut t,
        ex,
        &[
            (p(u32::MAX - 14, 0), 10, First),
            (p(u32::MAX - 4, 1), 10, InOrder), // covers 2^32-5 .. 4
            (p(5, 2), 10, InOrder),
            (p(25, 4), 10, Gap { missing: 10 }),
            (p(15, 3), 10, Reordered { filled: 10 }),
            (p(u32::MAX - 4, 1), 10, Duplicate),
        ],
    );
    assert_eq!((c.expected, c.received, c.lost), (50, 50, 0));
    assert_eq!((c.reordered, c.duplicates, c.restarts), (10, 10, 0));
}

#[test]
fn v5_engines_are_separate_streams() {
    let mut t = SequenceTracker::default();
    let ex = exporter(3);
    let mut a = V5Header {
        version: 5,
        count: 5,
        engine_type: 1,
        engine_id: 2,
        ..Default::default()
    };
    let mut b = a;
    b.engine_id = 3;
    b.sequence = 1000;
    assert_eq!(t.observe(ex, &Header::V5(a), 5), First);
    assert_eq!(t.observe(ex, &Header::V5(b), 5), First);
    a.sequence = 5;
    b.sequence = 1005;
    assert_eq!(t.observe(ex, &Header::V5(a), 5), InOrder);
    assert_eq!(t.observe(ex, &Header::V5(b), 5), InOrder);
    let keys: Vec<StreamKey> = t.streams().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].domain, 1 << 8 | 2);
    assert_eq!(keys[1].domain, 1 << 8 | 3);
    assert_eq!(keys[0].unit(), SequenceUnit::Flows);
}

#[test]
fn v9_counts_packets_gap_reorder_duplicate_restart() {
    let mut t = SequenceTracker::default();
    let ex = exporter(4);
    // One packet every 100 ms; the record count plays no part in v9.
    let p = |seq: u32| v9(seq, 500_000 + seq * 100, 1_700_000_000 + seq / 10);
    let c = run(
        &mut t,
        ex,
        &[
            (p(1), 20, First),
            (p(2), 0, InOrder),
            (p(4), 7, Gap { missing: 1 }),
            (p(3), 3, Reordered { filled: 1 }),
            (p(3), 3, Duplicate),
            (p(5), 1, InOrder),
            (p(8), 1, Gap { missing: 2 }),
            // Packet 7 arrives late; packet 6 never does.
            (p(7), 1, Reordered { filled: 1 }),
            // Reboot: uptime 2 s, later export time; sequence starts again at 0.
            (v9(0, 2_000, 1_700_000_500), 4, Restart),
            (v9(1, 2_100, 1_700_000_500), 4, InOrder),
        ],
    );
    assert_eq!(
        c,
        StreamCounters {
            datagrams: 10,
            records: 44,
            expected: 10,
            received: 9,
            lost: 1,
            reordered: 2,
            duplicates: 1,
            overlapped: 0,
            late: 0,
            unverified: 0,
            restarts: 1,
        }
    );
    let key = StreamKey::new(ex, &p(1));
    assert_eq!((key.protocol, key.domain), (Protocol::V9, 7));
    assert_eq!(key.unit(), SequenceUnit::Packets);
}

#[test]
fn v9_wraparound_and_uptime_wrap_is_no_restart() {
    let mut t = SequenceTracker::default();
    let ex = exporter(5);
    // Uptime near 2^32 ms wraps to a small value: the boot time does not move,
    // so it is not a reboot even though a packet is missing at the same time.
    let c = run(
        &mut t,
        ex,
        &[
            (v9(u32::MAX - 1, u32::MAX - 3000, 1_700_000_000), 1, First),
            (v9(u32::MAX, u32::MAX - 2000, 1_700_000_001), 1, InOrder),
            (v9(0, u32::MAX - 1000, 1_700_000_002), 1, InOrder),
            (v9(2, 0, 1_700_000_003), 1, Gap { missing: 1 }),
            (v9(1, u32::MAX, 1_700_000_003), 1, Reordered { filled: 1 }),
        ],
    );
    assert_eq!((c.expected, c.received, c.lost, c.restarts), (5, 5, 0, 0));
}

#[test]
fn v9_late_packet_is_not_a_restart() {
    // A packet delayed by 30 s: older uptime, same boot time.
    let mut t = SequenceTracker::default();
    let ex = exporter(6);
    let p = |seq: u32, ms: u32| v9(seq, 100_000 + ms, 1_700_000_000 + ms / 1000);
    let c = run(
        &mut t,
        ex,
        &[
            (p(10, 0), 1, First),
            (p(12, 30_000), 1, Gap { missing: 1 }),
            (p(13, 31_000), 1, InOrder),
            (p(11, 15_000), 1, Reordered { filled: 1 }),
        ],
    );
    assert_eq!((c.lost, c.reordered, c.restarts), (0, 1, 0));
}

#[test]
fn ipfix_counts_data_records_gap_reorder_duplicate_restart() {
    let mut t = SequenceTracker::default();
    let ex = exporter(7);
    let t0 = 1_700_000_000;
    let c = run(
        &mut t,
        ex,
        &[
            // 5 data records (options data records count too).
            (ipfix(0, t0), 5, First),
            (ipfix(5, t0), 5, InOrder),
            // A message with templates only: no data record, no advance.
            (ipfix(10, t0 + 1), 0, InOrder),
            (ipfix(10, t0 + 1), 5, InOrder),
            (ipfix(20, t0 + 2), 5, Gap { missing: 5 }),
            (ipfix(15, t0 + 1), 5, Reordered { filled: 5 }),
            (ipfix(15, t0 + 1), 5, Duplicate),
            (ipfix(25, t0 + 2), 3, InOrder),
            (ipfix(30, t0 + 3), 4, Gap { missing: 2 }),
            // Restart: sent later than everything, numbered from 0 again.
            (ipfix(0, t0 + 60), 6, Restart),
            (ipfix(6, t0 + 60), 6, InOrder),
        ],
    );
    assert_eq!(
        c,
        StreamCounters {
            datagrams: 11,
            records: 49,
            expected: 46,
            received: 44,
            lost: 2,
            reordered: 5,
            duplicates: 5,
            overlapped: 0,
            late: 0,
            unverified: 0,
            restarts: 1,
        }
    );
}

#[test]
fn ipfix_wraparound() {
    let mut t = SequenceTracker::default();
    let ex = exporter(8);
    let c = run(
        &mut t,
        ex,
        &[
            (ipfix(u32::MAX - 9, 100), 8, First),
            (ipfix(u32::MAX - 1, 100), 8, InOrder), // 2^32-2 .. 5
            (ipfix(16, 101), 8, Gap { missing: 10 }),
            (ipfix(6, 100), 10, Reordered { filled: 10 }),
            (ipfix(24, 102), 1, InOrder),
        ],
    );
    assert_eq!(
        (c.expected, c.received, c.lost, c.reordered),
        (35, 35, 0, 10)
    );
}

#[test]
fn partial_fill_overlap_and_late_datagrams() {
    let mut t = SequenceTracker::new(TrackerLimits {
        max_streams: 10,
        window: 3,
    });
    let ex = exporter(9);
    let c = run(
        &mut t,
        ex,
        &[
            (ipfix(0, 100), 10, First),
            (ipfix(30, 100), 10, Gap { missing: 20 }), // 10..30 missing
            // Half of the gap arrives.
            (ipfix(10, 100), 10, Reordered { filled: 10 }),
            // 20..35: 10 fill the rest of the gap, 5 repeat, 0 new: numbering inconsistent.
            (
                ipfix(20, 100),
                15,
                Overlap {
                    repeated: 5,
                    filled: 10,
                    new: 0,
                },
            ),
            // 35..45 repeats 5 and brings 5 new.
            (
                ipfix(35, 100),
                10,
                Overlap {
                    repeated: 5,
                    filled: 0,
                    new: 5,
                },
            ),
            (ipfix(45, 101), 10, InOrder),
            (ipfix(55, 101), 10, InOrder),
            // The window holds the last 3 advancing datagrams (from 40 on):
            // 0..10 is too old to tell.
            (ipfix(0, 100), 10, Late),
        ],
    );
    assert_eq!(
        c,
        StreamCounters {
            datagrams: 8,
            records: 85,
            expected: 65,
            received: 65,
            lost: 0,
            reordered: 20,
            duplicates: 0,
            overlapped: 10,
            late: 10,
            unverified: 0,
            restarts: 0,
        }
    );
}

#[test]
fn gaps_leaving_the_window_stay_lost_and_late_runs_restart() {
    let mut t = SequenceTracker::new(TrackerLimits {
        max_streams: 10,
        window: 2,
    });
    let ex = exporter(10);
    let p = |seq: u32| v9(seq, 1000, 1_700_000_000);
    run(
        &mut t,
        ex,
        &[
            (p(100), 1, First),
            (p(102), 1, Gap { missing: 1 }),
            (p(103), 1, InOrder),
            (p(104), 1, InOrder),
            // 101 left the window: too late, stays lost.
            (p(101), 1, Late),
            (p(50), 1, Late),
            (p(51), 1, Late),
            // A counter reset with a frozen clock: the 4th late datagram in a row restarts.
            (p(52), 1, Restart),
            (p(53), 1, InOrder),
        ],
    );
    let c = t.stream(&StreamKey::new(ex, &p(0))).unwrap();
    assert_eq!((c.lost, c.late, c.restarts), (1, 3, 1));
    assert_eq!((c.expected, c.received), (7, 6));
}

#[test]
fn incomplete_ipfix_messages_are_unverified_not_lost() {
    let mut t = SequenceTracker::default();
    let ex = exporter(11);
    assert_eq!(t.observe(ex, &ipfix(100, 1), 4), First);
    // A set waits for its template: 2 records decoded, the rest unknown.
    assert_eq!(t.observe_incomplete(ex, &ipfix(104, 1), 2), InOrder);
    // The next message says the previous one held 9 records.
    assert_eq!(t.observe(ex, &ipfix(113, 1), 5), InOrder);
    assert_eq!(t.observe(ex, &ipfix(120, 2), 5), Gap { missing: 2 });
    let c = *t.stream(&StreamKey::new(ex, &ipfix(0, 0))).unwrap();
    assert_eq!(
        (c.expected, c.received, c.lost, c.unverified, c.records),
        (25, 14, 2, 9, 16)
    );
}

#[test]
fn v1_has_no_sequence() {
    let mut t = SequenceTracker::default();
    let ex = exporter(12);
    let h = Header::V1(V1Header {
        version: 1,
        count: 24,
        ..Default::default()
    });
    assert_eq!(t.observe(ex, &h, 24), Unsequenced);
    assert_eq!(t.observe(ex, &h, 24), Unsequenced);
    let (key, c) = t.streams().next().unwrap();
    assert_eq!(key.unit(), SequenceUnit::Unsequenced);
    assert_eq!(
        *c,
        StreamCounters {
            datagrams: 2,
            records: 48,
            ..Default::default()
        }
    );
}

#[test]
fn least_recently_seen_stream_is_evicted() {
    let mut t = SequenceTracker::new(TrackerLimits {
        max_streams: 2,
        window: 8,
    });
    let h = ipfix(0, 1);
    t.observe(exporter(1), &h, 1);
    t.observe(exporter(2), &h, 1);
    t.observe(exporter(1), &ipfix(1, 1), 1);
    t.observe(exporter(3), &h, 1);
    let ports: Vec<u16> = t.streams().map(|(k, _)| k.exporter.0.port()).collect();
    assert_eq!(ports, [1, 3]);
    assert_eq!(t.evicted(), 1);
    // An evicted stream starts over.
    assert_eq!(t.observe(exporter(2), &ipfix(1, 1), 1), First);
    t.remove_exporter(exporter(2));
    assert_eq!(t.len(), 1);
}

/// A stream seen again while it is the most recently seen one keeps its
/// place; one seen again after another moves after it: eviction takes the
/// least recently seen either way.
#[test]
fn streams_seen_in_runs_are_evicted_least_recent_first() {
    let mut t = SequenceTracker::new(TrackerLimits {
        max_streams: 2,
        window: 8,
    });
    let ports = |t: &SequenceTracker| -> Vec<u16> {
        t.streams().map(|(k, _)| k.exporter.0.port()).collect()
    };
    for (e, seq) in [(1, 0), (1, 1), (2, 0), (1, 2), (1, 3), (3, 0)] {
        t.observe(exporter(e), &ipfix(seq, 1), 1);
    }
    assert_eq!(ports(&t), [1, 3]);
    for (e, seq) in [(3, 1), (3, 2), (1, 4), (4, 0)] {
        t.observe(exporter(e), &ipfix(seq, 1), 1);
    }
    assert_eq!(ports(&t), [1, 4]);
    assert_eq!(t.evicted(), 2);
    // The runs counted every datagram, without loss.
    let one = t
        .streams()
        .find(|(k, _)| k.exporter.0.port() == 1)
        .unwrap()
        .1;
    assert_eq!((one.datagrams, one.lost), (5, 0));
}

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/captures")
        .join(name)
}

/// Decode a capture and track it; the observations in datagram order.
fn track(name: &str) -> (SequenceTracker, Vec<Observation>) {
    let mut reader =
        netflow_capture::CaptureReader::open(&capture(name), Default::default()).unwrap();
    let mut decoder = Decoder::default();
    let mut t = SequenceTracker::default();
    let mut seen = Vec::new();
    while let Some(d) = reader.next_datagram() {
        let d = d.unwrap();
        let decoded = decoder
            .decode(ExporterId(d.source), d.payload, d.index, d.time_ms)
            .unwrap();
        assert!(decoded.packet.missing.is_empty(), "{name}: templates first");
        seen.push(t.observe_packet(&decoded.packet));
    }
    (t, seen)
}

/// The only stream of a capture.
fn only(t: &SequenceTracker) -> (StreamKey, StreamCounters) {
    let all: Vec<_> = t.streams().map(|(k, c)| (k, *c)).collect();
    assert_eq!(all.len(), 1);
    all[0]
}

#[test]
fn captures_with_correct_sequence_numbers_show_no_loss() {
    // (file, version, datagrams, units expected, data records)
    let cases = [
        ("softflowd-v5.pcap", 5, 9, 242, 242),
        ("pmacct-v5.pcap", 5, 9, 242, 242),
        ("softflowd-v9.pcap", 9, 11, 11, 297),
        ("softflowd-v9-sampled.pcap", 9, 5, 5, 133),
        ("softflowd-v9-ether.pcap", 9, 15, 15, 297),
        ("pmacct-v9.pcap", 9, 59, 59, 296),
        ("pmacct-ipfix.pcap", 10, 59, 296, 296),
        // 126 flows + 2 options records, each counted by pmacct.
        ("pmacct-ipfix-sampled.pcap", 10, 26, 128, 128),
    ];
    for (name, version, datagrams, expected, records) in cases {
        let (t, seen) = track(name);
        let (key, c) = only(&t);
        assert_eq!(key.protocol.version(), version, "{name}");
        assert_eq!(seen[0], First, "{name}");
        assert!(seen[1..].iter().all(|o| *o == InOrder), "{name}: {seen:?}");
        assert_eq!(
            c,
            StreamCounters {
                datagrams,
                records,
                expected,
                received: expected,
                ..Default::default()
            },
            "{name}"
        );
    }
    // v1: no sequence numbers, nothing to lose.
    let (t, seen) = track("softflowd-v1.pcap");
    assert!(seen.iter().all(|o| *o == Unsequenced));
    assert_eq!(
        only(&t).1,
        StreamCounters {
            datagrams: 9,
            records: 242,
            ..Default::default()
        }
    );
}

/// softflowd 1.1.0's IPFIX sequence number is not RFC 7011's: it is the
/// number of *flow* data records exported up to and including the message
/// (so the first message, with 20 flows and 1 options record, says 20 instead
/// of 0), and options data records are not counted. The tracker reports what
/// that numbering means under RFC 7011 section 3.1: gaps where a message has
/// more flows than the previous one, repeated sequence space where it has
/// fewer. The last assertion shows that RFC numbering of the very same
/// messages has no loss.
#[test]
fn softflowd_ipfix_sequence_numbers_are_off() {
    // (file, observations, counters)
    let cases: [(&str, Vec<Observation>, StreamCounters); 4] = [
        (
            "softflowd-ipfix.pcap",
            vec![
                First,
                Gap { missing: 7 },
                Gap { missing: 1 },
                InOrder,
                Overlap {
                    repeated: 1,
                    filled: 0,
                    new: 27,
                },
                InOrder,
                InOrder,
                Gap { missing: 1 },
                Gap { missing: 3 },
                Overlap {
                    repeated: 3,
                    filled: 0,
                    new: 26,
                },
                Overlap {
                    repeated: 13,
                    filled: 0,
                    new: 3,
                },
            ],
            StreamCounters {
                datagrams: 11,
                records: 297,
                expected: 292,
                received: 280,
                lost: 12,
                overlapped: 17,
                ..Default::default()
            },
        ),
        (
            "softflowd-ipfix-sampled.pcap",
            vec![
                First,
                Gap { missing: 4 },
                Gap { missing: 2 },
                Gap { missing: 2 },
                Overlap {
                    repeated: 3,
                    filled: 0,
                    new: 24,
                },
            ],
            StreamCounters {
                datagrams: 5,
                records: 133,
                expected: 138,
                received: 130,
                lost: 8,
                overlapped: 3,
                ..Default::default()
            },
        ),
        (
            "softflowd-ipfix-ether-milli.pcap",
            vec![
                First,
                Gap { missing: 1 },
                Gap { missing: 3 },
                InOrder,
                Gap { missing: 1 },
                Overlap {
                    repeated: 2,
                    filled: 0,
                    new: 16,
                },
                InOrder,
                InOrder,
                InOrder,
                Gap { missing: 2 },
                Overlap {
                    repeated: 2,
                    filled: 0,
                    new: 16,
                },
                Gap { missing: 1 },
                Gap { missing: 1 },
                Overlap {
                    repeated: 1,
                    filled: 0,
                    new: 18,
                },
                Gap { missing: 1 },
                Overlap {
                    repeated: 2,
                    filled: 0,
                    new: 16,
                },
                // The last message (2 flows, 1 options record) says 296: all
                // of 296..299 was already covered.
                Duplicate,
            ],
            StreamCounters {
                datagrams: 17,
                records: 298,
                expected: 298,
                received: 288,
                lost: 10,
                duplicates: 3,
                overlapped: 7,
                ..Default::default()
            },
        ),
        (
            "softflowd-ipfix-biflow-nano.pcap",
            vec![
                First,
                Gap { missing: 7 },
                InOrder,
                InOrder,
                Overlap {
                    repeated: 1,
                    filled: 0,
                    new: 19,
                },
                Gap { missing: 1 },
                Gap { missing: 2 },
                Overlap {
                    repeated: 2,
                    filled: 0,
                    new: 19,
                },
                Duplicate,
            ],
            StreamCounters {
                datagrams: 9,
                records: 166,
                expected: 169,
                received: 159,
                lost: 10,
                duplicates: 4,
                overlapped: 3,
                ..Default::default()
            },
        ),
    ];
    for (name, want_seen, want) in cases {
        let (t, seen) = track(name);
        assert_eq!(seen, want_seen, "{name}");
        assert_eq!(only(&t).1, want, "{name}");
        assert_eq!(want.expected, want.received + want.lost, "{name}");
        // Each overlap, duplicate and gap is explained by softflowd's rule:
        // sequence = flow records up to and including this message.
        let messages = messages(name);
        let mut flows = 0u32;
        for m in &messages {
            flows += m.flows;
            assert_eq!(m.sequence, flows, "{name}: softflowd's numbering");
        }
        // Renumbered per RFC 7011 (records before the message, options
        // included), the same messages show no loss at all.
        let mut t = SequenceTracker::default();
        let mut sent = messages[0].sequence - messages[0].flows;
        for m in &messages {
            let h = ipfix(sent, 1_700_000_107);
            let o = t.observe(exporter(1), &h, (m.flows + m.options) as u64);
            assert!(matches!(o, First | InOrder), "{name}: {o:?}");
            sent += m.flows + m.options;
        }
        let c = *t.streams().next().unwrap().1;
        assert_eq!((c.lost, c.overlapped, c.duplicates), (0, 0, 0), "{name}");
    }
}

struct Message {
    sequence: u32,
    flows: u32,
    options: u32,
}

/// Header sequence and record counts of each IPFIX message of a capture.
fn messages(name: &str) -> Vec<Message> {
    let mut reader =
        netflow_capture::CaptureReader::open(&capture(name), Default::default()).unwrap();
    let mut cache = netflow::TemplateCache::new();
    let mut out = Vec::new();
    while let Some(d) = reader.next_datagram() {
        let p = netflow::parse_packet(d.unwrap().payload, &mut cache).unwrap();
        let (mut flows, mut options) = (0, 0);
        for s in &p.data_sets {
            if s.is_options() {
                options += s.record_count as u32;
            } else {
                flows += s.record_count as u32;
            }
        }
        out.push(Message {
            sequence: p.header.sequence().unwrap(),
            flows,
            options,
        });
    }
    out
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// (protocol 0..3, sequence step, units, uptime step, time step, complete)
    fn steps() -> impl Strategy<Value = Vec<(u8, i64, u16, i64, i64, bool)>> {
        prop::collection::vec(
            (
                0u8..3,
                prop_oneof![-40i64..40, Just(i32::MIN as i64), Just(i32::MAX as i64)],
                0u16..40,
                prop_oneof![-5_000i64..5_000, Just(-3_000_000_000i64)],
                -3i64..3,
                prop::bool::weighted(0.9),
            ),
            1..200,
        )
    }

    proptest! {
        /// Whatever arrives: no panic, no overflow, and
        /// expected == received + lost + unverified in every stream.
        #[test]
        fn accounting_stays_consistent(steps in steps(), window in 1usize..8) {
            let mut t = SequenceTracker::new(TrackerLimits { max_streams: 2, window });
            let (mut seq, mut up, mut secs) = (0u32, 1_000_000u32, 1_700_000_000u32);
            for (proto, dseq, units, dup, dsecs, complete) in steps {
                seq = seq.wrapping_add(dseq as u32);
                up = up.wrapping_add(dup as u32);
                secs = secs.wrapping_add(dsecs as u32);
                let h = match proto {
                    0 => Header::V5(V5Header { version: 5, count: units, uptime: up, timestamp: secs, sequence: seq, ..Default::default() }),
                    1 => v9(seq, up, secs),
                    _ => ipfix(seq, secs),
                };
                if complete {
                    t.observe(exporter(1), &h, units as u64);
                } else {
                    t.observe_incomplete(exporter(1), &h, units as u64);
                }
                for (k, c) in t.streams() {
                    prop_assert_eq!(c.expected, c.received + c.lost + c.unverified, "{} {:?}", k, c);
                    prop_assert!(c.reordered <= c.received);
                }
            }
        }
    }
}
