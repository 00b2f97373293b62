//! Unit tests: small captures built here with pcap-file's writers.

use std::borrow::Cow;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, TsResolution};

use super::*;

// ---- frame builders -------------------------------------------------------

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

fn udp_hdr(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

/// IPv4 header + body; `frag` = (flags_and_offset field, id).
fn ipv4_raw(src: [u8; 4], dst: [u8; 4], proto: u8, body: &[u8], frag: (u16, u16)) -> Vec<u8> {
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&((20 + body.len()) as u16).to_be_bytes());
    v.extend_from_slice(&frag.1.to_be_bytes());
    v.extend_from_slice(&frag.0.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(body);
    v
}

fn ipv4_udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv4_raw(src, dst, 17, &udp_hdr(sport, dport, payload), (0x4000, 1))
}

fn ipv6_raw(src: Ipv6Addr, dst: Ipv6Addr, next: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 64]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(body);
    v
}

fn ipv6_udp(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv6_raw(src, dst, 17, &udp_hdr(sport, dport, payload))
}

fn eth(ethertype: u16, vlans: &[(u16, u16)], l3: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&MAC_B);
    v.extend_from_slice(&MAC_A);
    for &(tpid, vid) in vlans {
        v.extend_from_slice(&tpid.to_be_bytes());
        v.extend_from_slice(&vid.to_be_bytes());
    }
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(l3);
    // Pad to the Ethernet minimum frame length (without FCS).
    while v.len() < 60 {
        v.push(0);
    }
    v
}

fn tcp_segment() -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&443u16.to_be_bytes());
    t[2..4].copy_from_slice(&2055u16.to_be_bytes());
    t[12] = 0x50;
    t.extend_from_slice(b"not a datagram");
    t
}

fn pcap_bytes(
    link: DataLink,
    resolution: TsResolution,
    endianness: Endianness,
    frames: &[(Duration, Vec<u8>)],
) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        ts_resolution: resolution,
        endianness,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (ts, data) in frames {
        w.write_packet(&PcapPacket::new(*ts, data.len() as u32, data))
            .unwrap();
    }
    w.into_writer()
}

fn pcap(link: DataLink, frames: &[Vec<u8>]) -> Vec<u8> {
    let frames: Vec<_> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                Duration::from_millis(1_700_000_000_000 + i as u64 * 10),
                f.clone(),
            )
        })
        .collect();
    pcap_bytes(link, TsResolution::MicroSecond, Endianness::Little, &frames)
}

/// Owned copy of a datagram, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    index: u64,
    time_ms: u64,
    source: SocketAddr,
    destination: SocketAddr,
    frame: u64,
    payload: Vec<u8>,
}

/// Everything a reader yields: datagrams and the errors between them.
fn read_all(bytes: Vec<u8>, options: Options) -> (Vec<Got>, Vec<CaptureError>, Stats) {
    let mut r = CaptureReader::from_reader("test", Cursor::new(bytes), options).expect("opens");
    let mut got = Vec::new();
    let mut errors = Vec::new();
    while let Some(item) = r.next_datagram() {
        match item {
            Ok(d) => got.push(Got {
                index: d.index,
                time_ms: d.time_ms,
                source: d.source,
                destination: d.destination,
                frame: d.frame,
                payload: d.payload.to_vec(),
            }),
            Err(e) => errors.push(e),
        }
    }
    (got, errors, *r.stats())
}

fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

const EXP: [u8; 4] = [192, 0, 2, 10];
const COL: [u8; 4] = [192, 0, 2, 1];

// ---- pcap -------------------------------------------------------------------

#[test]
fn pcap_ethernet_vlan_ipv6_and_skips() {
    let v6a: Ipv6Addr = "2001:db8::a".parse().unwrap();
    let v6b: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let arp = eth(0x0806, &[], &[0u8; 28]);
    let frames = vec![
        eth(0x0800, &[], &ipv4_udp(EXP, 50000, COL, 2055, b"plain")),
        eth(
            0x0800,
            &[(0x8100, 100)],
            &ipv4_udp(EXP, 50001, COL, 2055, b"vlan"),
        ),
        eth(
            0x0800,
            &[(0x88A8, 10), (0x8100, 20)],
            &ipv4_udp(EXP, 50002, COL, 4739, b"qinq"),
        ),
        eth(0x86DD, &[], &ipv6_udp(v6a, 50003, v6b, 4739, b"six")),
        eth(
            0x0800,
            &[],
            &ipv4_raw(EXP, COL, 6, &tcp_segment(), (0x4000, 9)),
        ),
        arp,
        eth(0x0800, &[], &ipv4_udp(EXP, 53, COL, 53, b"dns")),
    ];
    let (got, errors, stats) = read_all(pcap(DataLink::ETHERNET, &frames), Options::default());
    assert!(errors.is_empty(), "{errors:?}");
    let payloads: Vec<&[u8]> = got.iter().map(|g| &g.payload[..]).collect();
    assert_eq!(payloads, [&b"plain"[..], b"vlan", b"qinq", b"six", b"dns"]);
    // The short payloads sit in padded 60-byte frames: the padding is not payload.
    assert_eq!(got[0].source, sa(Ipv4Addr::from(EXP), 50000));
    assert_eq!(got[0].destination, sa(Ipv4Addr::from(COL), 2055));
    assert_eq!(got[3].source, sa(v6a, 50003));
    assert_eq!(got[3].destination, sa(v6b, 4739));
    assert_eq!(
        got.iter().map(|g| g.index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(
        got.iter().map(|g| g.frame).collect::<Vec<_>>(),
        [1, 2, 3, 4, 7]
    );
    assert_eq!(got[0].time_ms, 1_700_000_000_000);
    assert_eq!(got[4].time_ms, 1_700_000_000_060);
    assert_eq!(stats.frames, 7);
    assert_eq!(stats.datagrams, 5);
    assert_eq!(stats.not_udp, 1);
    assert_eq!(stats.not_ip, 1);
    assert_eq!(stats.skipped(), 2);
    assert_eq!(stats.to_string(), "1 not IP, 1 not UDP");
}

#[test]
fn port_filter_matches_either_port() {
    let frames = vec![
        eth(0x0800, &[], &ipv4_udp(EXP, 50000, COL, 2055, b"to 2055")),
        eth(0x0800, &[], &ipv4_udp(COL, 2055, EXP, 50000, b"from 2055")),
        eth(0x0800, &[], &ipv4_udp(EXP, 50000, COL, 4739, b"to 4739")),
    ];
    let (got, _, stats) = read_all(
        pcap(DataLink::ETHERNET, &frames),
        Options {
            port: Some(2055),
            first_index: 10,
        },
    );
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].payload, b"to 2055");
    assert_eq!(got[1].payload, b"from 2055");
    // Indices count the datagrams yielded, from first_index.
    assert_eq!((got[0].index, got[1].index), (10, 11));
    assert_eq!(stats.other_port, 1);
    assert_eq!(stats.to_string(), "1 on other ports");
}

#[test]
fn linux_cooked_loopback_and_raw_link_types() {
    let l3 = ipv4_udp(EXP, 50000, COL, 2055, b"payload");
    let v6 = ipv6_udp(
        Ipv6Addr::LOCALHOST,
        50000,
        Ipv6Addr::LOCALHOST,
        2055,
        b"payload6",
    );
    // SLL: packet type, ARPHRD, address length, 8-byte address, protocol.
    let mut sll = vec![0, 0, 0, 1, 0, 6];
    sll.extend_from_slice(&MAC_A);
    sll.extend_from_slice(&[0, 0, 0x08, 0x00]);
    sll.extend_from_slice(&l3);
    // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address.
    let mut sll2 = vec![0x86, 0xDD, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6];
    sll2.extend_from_slice(&MAC_A);
    sll2.extend_from_slice(&[0, 0]);
    sll2.extend_from_slice(&v6);
    // NULL: address family in host byte order (2 = AF_INET; 30 = AF_INET6 on Darwin).
    let mut null_le = 2u32.to_le_bytes().to_vec();
    null_le.extend_from_slice(&l3);
    let mut null_be6 = 30u32.to_be_bytes().to_vec();
    null_be6.extend_from_slice(&v6);
    // LOOP: network byte order.
    let mut lo = 24u32.to_be_bytes().to_vec();
    lo.extend_from_slice(&v6);
    let cases: Vec<(DataLink, Vec<u8>, &[u8])> = vec![
        (DataLink::LINUX_SLL, sll, b"payload"),
        (DataLink::LINUX_SLL2, sll2, b"payload6"),
        (DataLink::NULL, null_le, b"payload"),
        (DataLink::NULL, null_be6, b"payload6"),
        (DataLink::LOOP, lo, b"payload6"),
        (DataLink::RAW, l3.clone(), b"payload"),
        (DataLink::RAW, v6.clone(), b"payload6"),
        (DataLink::IPV4, l3.clone(), b"payload"),
        (DataLink::IPV6, v6.clone(), b"payload6"),
    ];
    for (link, frame, want) in cases {
        let (got, errors, _) = read_all(pcap(link, &[frame]), Options::default());
        assert!(errors.is_empty(), "{link:?}: {errors:?}");
        assert_eq!(got.len(), 1, "{link:?}");
        assert_eq!(got[0].payload, want, "{link:?}");
        assert_eq!(got[0].destination.port(), 2055, "{link:?}");
    }
}

#[test]
fn nanosecond_and_big_endian_pcaps() {
    let frame = eth(0x0800, &[], &ipv4_udp(EXP, 1, COL, 2, b"x"));
    let ts = Duration::new(1_699_913_603, 123_456_789);
    for (res, end) in [
        (TsResolution::NanoSecond, Endianness::Little),
        (TsResolution::MicroSecond, Endianness::Big),
        (TsResolution::NanoSecond, Endianness::Big),
    ] {
        let bytes = pcap_bytes(DataLink::ETHERNET, res, end, &[(ts, frame.clone())]);
        let (got, errors, _) = read_all(bytes, Options::default());
        assert!(errors.is_empty());
        assert_eq!(got[0].time_ms, 1_699_913_603_123, "{res:?} {end:?}");
    }
}

#[test]
fn ipv4_fragments_are_reassembled_in_any_order() {
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let udp = udp_hdr(50000, 2055, &payload);
    // Fragments of 1480 bytes (a multiple of 8), sent last-first.
    let pieces: Vec<&[u8]> = udp.chunks(1480).collect();
    let mut frames = Vec::new();
    for (i, piece) in pieces.iter().enumerate().rev() {
        let more = if i + 1 < pieces.len() { 0x2000 } else { 0 };
        let off = (i * 1480 / 8) as u16;
        frames.push(eth(
            0x0800,
            &[],
            &ipv4_raw(EXP, COL, 17, piece, (more | off, 77)),
        ));
    }
    // An incomplete datagram: only its first fragment.
    frames.push(eth(
        0x0800,
        &[],
        &ipv4_raw(EXP, COL, 17, &udp[..1480], (0x2000, 78)),
    ));
    let (got, errors, stats) = read_all(pcap(DataLink::ETHERNET, &frames), Options::default());
    assert!(errors.is_empty());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, payload);
    assert_eq!(got[0].source, sa(Ipv4Addr::from(EXP), 50000));
    assert_eq!(got[0].frame, 3);
    assert_eq!(stats.fragments, 4);
    assert_eq!(stats.reassembled, 1);
    assert_eq!(stats.fragments_dropped, 1);
}

#[test]
fn ipv6_fragments_are_reassembled() {
    let src: Ipv6Addr = "2001:db8::a".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let payload: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
    let udp = udp_hdr(50000, 4739, &payload);
    let (a, b) = udp.split_at(1232);
    let frag = |off: usize, more: bool, data: &[u8]| {
        let mut h = vec![17, 0];
        h.extend_from_slice(&(((off / 8) << 3) as u16 | more as u16).to_be_bytes());
        h.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        h.extend_from_slice(data);
        eth(0x86DD, &[], &ipv6_raw(src, dst, 44, &h))
    };
    let frames = vec![frag(0, true, a), frag(1232, false, b)];
    let (got, errors, stats) = read_all(pcap(DataLink::ETHERNET, &frames), Options::default());
    assert!(errors.is_empty());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, payload);
    assert_eq!(got[0].destination, sa(dst, 4739));
    assert_eq!(stats.reassembled, 1);
}

#[test]
fn snaplen_cut_datagrams_are_counted_not_yielded() {
    let frame = eth(0x0800, &[], &ipv4_udp(EXP, 50000, COL, 2055, &[7u8; 200]));
    let header = PcapHeader {
        snaplen: 100,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    // orig_len > snaplen is what a truncating capture writes; write it raw.
    w.write_raw_packet(&pcap_file::pcap::RawPcapPacket {
        ts_sec: 1,
        ts_frac: 0,
        incl_len: 100,
        orig_len: frame.len() as u32,
        data: Cow::Borrowed(&frame[..100]),
    })
    .unwrap();
    // A cut-short IPv6 TCP segment is "not UDP", not "cut short".
    let v6 = eth(
        0x86DD,
        &[],
        &ipv6_raw(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, 6, &[0u8; 200]),
    );
    w.write_raw_packet(&pcap_file::pcap::RawPcapPacket {
        ts_sec: 2,
        ts_frac: 0,
        incl_len: 100,
        orig_len: v6.len() as u32,
        data: Cow::Borrowed(&v6[..100]),
    })
    .unwrap();
    let (got, errors, stats) = read_all(w.into_writer(), Options::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert!(got.is_empty());
    assert_eq!(stats.truncated, 1);
    assert_eq!(stats.not_udp, 1);
}

#[test]
fn cut_short_pcap_reports_the_packet_number() {
    let frames = vec![
        eth(0x0800, &[], &ipv4_udp(EXP, 50000, COL, 2055, b"one")),
        eth(0x0800, &[], &ipv4_udp(EXP, 50000, COL, 2055, b"two")),
    ];
    let mut bytes = pcap(DataLink::ETHERNET, &frames);
    bytes.truncate(bytes.len() - 5);
    let (got, errors, _) = read_all(bytes, Options::default());
    assert_eq!(got.len(), 1);
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert!(e.is_fatal());
    assert!(
        matches!(e, CaptureError::Corrupt { packet: 2, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "test: corrupt capture at packet 2: the file ends in the middle of a record (cut short?)"
    );
}

#[test]
fn unsupported_pcap_link_type_is_an_error() {
    let bytes = pcap(DataLink::IEEE802_11, &[vec![0u8; 30]]);
    let e = CaptureReader::from_reader("wifi.pcap", Cursor::new(bytes), Options::default())
        .unwrap_err();
    assert!(
        matches!(e, CaptureError::UnsupportedLinkType { linktype: 105, .. }),
        "{e:?}"
    );
    assert_eq!(e.file(), "wifi.pcap");
}

#[test]
fn short_pcap_header_is_corrupt() {
    let e = CaptureReader::from_reader(
        "x",
        Cursor::new(vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0]),
        Options::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, CaptureError::Corrupt { packet: 0, .. }),
        "{e:?}"
    );
    assert!(e.to_string().starts_with("x: corrupt capture file header"));
}

// ---- pcapng -----------------------------------------------------------------

fn idb(link: DataLink, tsresol: Option<u8>) -> InterfaceDescriptionBlock<'static> {
    let mut b = InterfaceDescriptionBlock::new(link, 65535);
    if let Some(r) = tsresol {
        b.options.push(InterfaceDescriptionOption::IfTsResol(r));
    }
    b
}

fn epb(interface_id: u32, raw_ts: u64, data: &[u8]) -> EnhancedPacketBlock<'_> {
    // pcap-file writes `timestamp.as_nanos()` as the raw timestamp value.
    EnhancedPacketBlock {
        interface_id,
        timestamp: Duration::from_nanos(raw_ts),
        original_len: data.len() as u32,
        data: Cow::Borrowed(data),
        options: vec![],
    }
}

fn pcapng_sample(endianness: Endianness) -> Vec<u8> {
    let a = eth(
        0x0800,
        &[(0x8100, 5)],
        &ipv4_udp(EXP, 50000, COL, 2055, b"eth"),
    );
    let b = ipv6_udp(
        Ipv6Addr::LOCALHOST,
        40000,
        Ipv6Addr::LOCALHOST,
        4739,
        b"raw6",
    );
    let c = eth(0x0800, &[], &ipv4_raw(EXP, COL, 6, &tcp_segment(), (0, 3)));
    let d = eth(0x0800, &[], &ipv4_udp(EXP, 50000, COL, 2055, b"simple"));
    let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap();
    // Interface 0: Ethernet, default microsecond timestamps. Interface 1: raw IP, nanoseconds.
    w.write_pcapng_block(idb(DataLink::ETHERNET, None)).unwrap();
    w.write_pcapng_block(idb(DataLink::RAW, Some(9))).unwrap();
    w.write_pcapng_block(epb(0, 1_699_913_603_250_000, &a))
        .unwrap();
    w.write_pcapng_block(epb(1, 1_699_913_604_500_000_000, &b))
        .unwrap();
    w.write_pcapng_block(epb(0, 1_699_913_605_000_000, &c))
        .unwrap();
    w.write_pcapng_block(SimplePacketBlock {
        original_len: d.len() as u32,
        data: Cow::Borrowed(&d),
    })
    .unwrap();
    w.into_inner()
}

#[test]
fn pcapng_interfaces_resolutions_and_simple_packets() {
    for endianness in [Endianness::Little, Endianness::Big] {
        let bytes = pcapng_sample(endianness);
        let mut r =
            CaptureReader::from_reader("t.pcapng", Cursor::new(bytes.clone()), Options::default())
                .unwrap();
        assert_eq!(r.format(), Format::PcapNg);
        assert!(r.next_datagram().is_some());
        let (got, errors, stats) = read_all(bytes, Options::default());
        assert!(errors.is_empty(), "{errors:?}");
        let payloads: Vec<&[u8]> = got.iter().map(|g| &g.payload[..]).collect();
        assert_eq!(payloads, [&b"eth"[..], b"raw6", b"simple"]);
        assert_eq!(got[0].time_ms, 1_699_913_603_250);
        assert_eq!(got[1].time_ms, 1_699_913_604_500);
        assert_eq!(got[1].source, sa(Ipv6Addr::LOCALHOST, 40000));
        // A simple packet block has no timestamp: the previous one is kept.
        assert_eq!(got[2].time_ms, 1_699_913_605_000);
        assert_eq!(got.iter().map(|g| g.frame).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(stats.frames, 4);
        assert_eq!(stats.not_udp, 1);
    }
}

#[test]
fn pcapng_packet_of_undeclared_interface_is_corrupt() {
    let d = eth(0x0800, &[], &ipv4_udp(EXP, 1, COL, 2, b"x"));
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
    w.write_pcapng_block(idb(DataLink::ETHERNET, None)).unwrap();
    w.write_pcapng_block(epb(0, 0, &d)).unwrap();
    let at = w.get_ref().len() + 8;
    w.write_pcapng_block(epb(0, 0, &d)).unwrap();
    // The writer refuses an undeclared interface: patch the id in.
    let mut bytes = w.into_inner();
    bytes[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
    let (got, errors, _) = read_all(bytes, Options::default());
    assert_eq!(got.len(), 1);
    assert!(
        matches!(&errors[..], [CaptureError::Corrupt { packet: 2, .. }]),
        "{errors:?}"
    );
}

#[test]
fn pcapng_bad_block_length_is_corrupt() {
    let mut bytes = pcapng_sample(Endianness::Little);
    let n = bytes.len();
    // Break the trailing length of the last block.
    bytes[n - 4] ^= 0x40;
    let (got, errors, _) = read_all(bytes, Options::default());
    assert_eq!(got.len(), 2);
    assert!(
        matches!(&errors[..], [CaptureError::Corrupt { packet: 4, .. }]),
        "{errors:?}"
    );
}

// ---- hex text ------------------------------------------------------------------

#[test]
fn hex_lines_with_comments_blanks_and_bad_lines() {
    let text = "# exports\n\n000a0010\r\n  DEADbeef 00 01  \n#x\nnot hex\n0a0\n00\n";
    let (got, errors, stats) = read_all(
        text.as_bytes().to_vec(),
        Options {
            port: Some(1),
            first_index: 0,
        },
    );
    let payloads: Vec<&[u8]> = got.iter().map(|g| &g.payload[..]).collect();
    assert_eq!(
        payloads,
        [
            &[0x00, 0x0a, 0x00, 0x10][..],
            &[0xde, 0xad, 0xbe, 0xef, 0, 1],
            &[0]
        ]
    );
    assert_eq!(got.iter().map(|g| g.index).collect::<Vec<_>>(), [0, 1, 4]);
    assert_eq!(got.iter().map(|g| g.frame).collect::<Vec<_>>(), [3, 4, 8]);
    assert!(got
        .iter()
        .all(|g| g.time_ms == 0 && g.source == UNSPECIFIED && g.destination == UNSPECIFIED));
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| !e.is_fatal()));
    assert!(matches!(
        errors[0],
        CaptureError::InvalidHex {
            line: 6,
            index: 2,
            ..
        }
    ));
    assert_eq!(errors[1].datagram_index(), Some(3));
    assert_eq!(errors[0].to_string(), "test: line 6: invalid hex text");
    assert_eq!(stats.invalid_lines, 2);
    assert_eq!(stats.datagrams, 3);
}

#[test]
fn empty_input_is_empty_hex_text() {
    let r =
        CaptureReader::from_reader("empty", Cursor::new(Vec::new()), Options::default()).unwrap();
    assert_eq!(r.format(), Format::HexText);
    let (got, errors, _) = read_all(Vec::new(), Options::default());
    assert!(got.is_empty() && errors.is_empty());
}

#[test]
fn binary_that_is_no_capture_is_unknown() {
    let e = CaptureReader::from_reader(
        "raw.bin",
        Cursor::new(vec![0, 9, 0, 1, 2, 3]),
        Options::default(),
    )
    .unwrap_err();
    assert!(matches!(e, CaptureError::UnknownFormat { .. }));
    assert_eq!(
        e.to_string(),
        "raw.bin: not a pcap, pcapng or hex text file"
    );
}

#[test]
fn missing_file_cannot_be_opened() {
    let e = CaptureReader::open(Path::new("/nonexistent/x.pcap"), Options::default()).unwrap_err();
    assert!(matches!(e, CaptureError::Open { .. }));
    assert!(e
        .to_string()
        .starts_with("/nonexistent/x.pcap: cannot open: "));
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn format_detection() {
    assert_eq!(
        Format::detect(&[0xD4, 0xC3, 0xB2, 0xA1]),
        Some(Format::Pcap)
    );
    assert_eq!(
        Format::detect(&[0xA1, 0xB2, 0x3C, 0x4D]),
        Some(Format::Pcap)
    );
    assert_eq!(
        Format::detect(&[0x0A, 0x0D, 0x0D, 0x0A]),
        Some(Format::PcapNg)
    );
    assert_eq!(Format::detect(b"0009"), Some(Format::HexText));
    assert_eq!(Format::detect(b"00"), Some(Format::HexText));
    assert_eq!(Format::detect(&[0x00, 0x09]), None);
}

// ---- robustness -------------------------------------------------------------

/// Deterministic xorshift for corruption positions.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn corrupted_captures_never_panic() {
    let v6a: Ipv6Addr = "2001:db8::a".parse().unwrap();
    let frames = vec![
        eth(
            0x0800,
            &[(0x8100, 1)],
            &ipv4_udp(EXP, 50000, COL, 2055, &[1u8; 40]),
        ),
        eth(0x86DD, &[], &ipv6_udp(v6a, 50003, v6a, 4739, &[2u8; 30])),
        eth(
            0x0800,
            &[],
            &ipv4_raw(EXP, COL, 17, &udp_hdr(1, 2, &[3u8; 64])[..48], (0x2000, 5)),
        ),
    ];
    let samples = [
        pcap(DataLink::ETHERNET, &frames),
        pcapng_sample(Endianness::Little),
        pcapng_sample(Endianness::Big),
    ];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for sample in &samples {
        for _ in 0..400 {
            let mut bytes = sample.clone();
            let flips = 1 + xorshift(&mut seed) % 4;
            for _ in 0..flips {
                let at = (xorshift(&mut seed) % bytes.len() as u64) as usize;
                bytes[at] = xorshift(&mut seed) as u8;
            }
            if xorshift(&mut seed) % 4 == 0 {
                let cut = (xorshift(&mut seed) % bytes.len() as u64) as usize;
                bytes.truncate(cut);
            }
            if let Ok(mut r) =
                CaptureReader::from_reader("fuzz", Cursor::new(bytes), Options::default())
            {
                let mut n = 0;
                while let Some(item) = r.next_datagram() {
                    let _ = item.map(|d| d.payload.len());
                    n += 1;
                    assert!(n < 10_000);
                }
            }
        }
    }
}
