#!/usr/bin/env python3
"""Synthesize a small, deterministic Ethernet traffic pcap for feeding flow exporters.

Usage: synth_traffic.py OUTPUT.pcap

Standard library only (struct/random).  The output is byte-identical on every
run (fixed seed, fixed base timestamp), so captures made from it by the
exporters in scripts/make-captures.sh are reproducible up to the exporters' own
wall-clock fields.

Contents (all addresses are documentation / private ranges):
  * IPv4 TCP connections (3-way handshake, data both directions, FIN/ACK close,
    a few RST-terminated) to ports 80, 443, 22, 25, 8080, 3306;
  * IPv4 UDP: DNS (53) query/response pairs, mDNS (5353) multicast announcements,
    random high-port "RTP-like" streams, NTP (123);
  * ICMP echo request/reply sessions and a couple of ICMP port unreachables;
  * IPv6 TCP, UDP (DNS + high ports) and ICMPv6 echo request/reply;
  * 802.1Q VLAN-tagged frames (VLAN 100 and 200, some with PCP bits);
  * a selection of IPv4 TOS / IPv6 traffic-class values (0, 0x10, 0x28, 0x2e<<2, 0xb8, ECN bits);
  * timestamps spread over ~120 s starting at 2023-11-14T22:13:20Z (1700000000).

Large data segments are stored truncated (pcap caplen 96 < wire length) to
keep the file small while flows still get realistic byte counts: exporters use
the IP total-length field, not the captured length.
"""

import random
import struct
import sys

SEED = 0x6E6574666C6F77  # "netflow"
BASE_TS = 1_700_000_000
DURATION = 120.0
SNAPLEN = 96
LINKTYPE_ETHERNET = 1

rng = random.Random(SEED)
packets = []  # (ts_float, frame_bytes, wire_len)


# --------------------------------------------------------------------------- helpers
def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def ip6(a: str) -> bytes:
    # minimal RFC 4291 text parser (handles one "::")
    if "::" in a:
        head, tail = a.split("::")
        h = [int(x, 16) for x in head.split(":")] if head else []
        t = [int(x, 16) for x in tail.split(":")] if tail else []
        words = h + [0] * (8 - len(h) - len(t)) + t
    else:
        words = [int(x, 16) for x in a.split(":")]
    return struct.pack("!8H", *words)


def mac(m: str) -> bytes:
    return bytes(int(x, 16) for x in m.split(":"))


ROUTER_MAC = mac("00:1b:21:3a:4f:01")
HOST_MACS = {}


def host_mac(addr: str) -> bytes:
    if addr not in HOST_MACS:
        HOST_MACS[addr] = bytes([0x02, 0x00, 0x5E]) + bytes(rng.randrange(256) for _ in range(3))
    return HOST_MACS[addr]


def ether(src_ip: str, dst_ip: str, ethertype: int, vlan=None, dst_mac=None) -> bytes:
    dmac = dst_mac if dst_mac is not None else (ROUTER_MAC if is_local(src_ip) else host_mac(dst_ip))
    smac = host_mac(src_ip) if is_local(src_ip) else ROUTER_MAC
    if vlan is not None:
        vid, pcp = vlan
        return dmac + smac + struct.pack("!HHH", 0x8100, (pcp << 13) | vid, ethertype)
    return dmac + smac + struct.pack("!H", ethertype)


def is_local(addr: str) -> bool:
    return addr.startswith("10.") or addr.startswith("2001:db8:1:")


def l4_checksum(pseudo: bytes, seg: bytes, cksum_off: int) -> bytes:
    c = csum(pseudo + seg)
    if c == 0 and cksum_off is not None:
        c = 0xFFFF
    return seg[:cksum_off] + struct.pack("!H", c) + seg[cksum_off + 2 :]


IP_ID = {}


def ipv4_packet(src, dst, proto, l4, tos=0, ttl=64, df=True):
    ident = IP_ID.setdefault(src, rng.randrange(1, 65536))
    IP_ID[src] = (ident + 1) & 0xFFFF
    total = 20 + len(l4)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, total, ident, 0x4000 if df else 0, ttl, proto, 0, ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + l4


def ipv6_packet(src, dst, nh, l4, tclass=0, hlim=64, flow_label=0):
    vtf = (6 << 28) | (tclass << 20) | flow_label
    return struct.pack("!IHBB16s16s", vtf, len(l4), nh, hlim, ip6(src), ip6(dst)) + l4


def pseudo4(src, dst, proto, length):
    return ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, length)


def pseudo6(src, dst, nh, length):
    return ip6(src) + ip6(dst) + struct.pack("!IxxxB", length, nh)


def tcp_seg(sport, dport, seq, ack, flags, payload=b"", window=64240):
    off = 5 << 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off, flags, window, 0, 0) + payload
    return seg


def udp_dgram(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def emit(ts, src, dst, proto, l4, cksum_off, tos=0, vlan=None, ttl=64, dst_mac=None):
    """Build a full frame (v4 or v6 chosen by address family) and queue it."""
    if ":" in src:
        nh = {1: 58}.get(proto, proto)
        l4 = l4_checksum(pseudo6(src, dst, nh, len(l4)), l4, cksum_off)
        ip = ipv6_packet(src, dst, nh, l4, tclass=tos, hlim=ttl)
        frame = ether(src, dst, 0x86DD, vlan, dst_mac) + ip
    else:
        if cksum_off is not None:
            if proto == 1:
                c = csum(l4)
                l4 = l4[:cksum_off] + struct.pack("!H", c) + l4[cksum_off + 2 :]
            else:
                l4 = l4_checksum(pseudo4(src, dst, proto, len(l4)), l4, cksum_off)
        ip = ipv4_packet(src, dst, proto, l4, tos=tos, ttl=ttl)
        frame = ether(src, dst, 0x0800, vlan, dst_mac) + ip
    packets.append((ts, frame, len(frame)))


def payload(n):
    # cheap deterministic filler; only the first SNAPLEN bytes of a frame are stored anyway
    return bytes((i * 7 + n) & 0xFF for i in range(n))


# --------------------------------------------------------------------------- flow generators
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 1, 2, 4, 8, 16, 32, 64, 128


def tcp_conn(t0, cli, srv, sport, dport, exchanges, tos=0, vlan=None, rst=False, ttl_c=64, ttl_s=57):
    """A complete TCP connection; exchanges = list of (client_bytes, server_bytes)."""
    t = t0
    rtt = rng.uniform(0.002, 0.08)
    cseq, sseq = rng.getrandbits(32), rng.getrandbits(32)

    def c2s(flags, data=b""):
        nonlocal cseq
        emit(t, cli, srv, 6, tcp_seg(sport, dport, cseq, sseq if flags & ACK else 0, flags, data), 16, tos, vlan, ttl_c)
        cseq = (cseq + len(data) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF

    def s2c(flags, data=b""):
        nonlocal sseq
        emit(t, srv, cli, 6, tcp_seg(dport, sport, sseq, cseq, flags, data, 65160), 16, tos, vlan, ttl_s)
        sseq = (sseq + len(data) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF

    c2s(SYN)
    t += rtt / 2
    s2c(SYN | ACK)
    t += rtt / 2
    c2s(ACK)
    for cb, sb in exchanges:
        t += rng.uniform(0.001, 0.5)
        while cb > 0:
            n = min(cb, 1448)
            c2s(PSH | ACK, payload(n))
            cb -= n
            t += 0.0005
        t += rtt
        while sb > 0:
            n = min(sb, 1448)
            s2c(PSH | ACK if sb <= 1448 else ACK, payload(n))
            sb -= n
            t += 0.0003
        t += rtt / 2
        c2s(ACK)
    t += rng.uniform(0.01, 2.0)
    if rst:
        c2s(RST | ACK)
        return
    c2s(FIN | ACK)
    t += rtt / 2
    s2c(FIN | ACK)
    t += rtt / 2
    c2s(ACK)


def dns_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


NAMES = ["example.com", "www.example.org", "mail.example.net", "cdn.example.com", "api.example.org"]


def dns_pair(v6=False):
    """(query, response) DNS messages for an A or AAAA lookup."""
    txid, name = rng.randrange(65536), rng.choice(NAMES)
    qtype = 28 if v6 or rng.random() < 0.3 else 1
    question = dns_name(name) + struct.pack("!HH", qtype, 1)
    query = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + question
    answers = b""
    n = rng.randrange(1, 4)
    for _ in range(n):
        rdata = bytes(rng.randrange(256) for _ in range(16 if qtype == 28 else 4))
        answers += struct.pack("!HHHIH", 0xC00C, qtype, 1, rng.randrange(30, 86400), len(rdata)) + rdata
    resp = struct.pack("!HHHHHH", txid, 0x8180, 1, n, 0, 0) + question + answers
    return query, resp


def mdns_announce(host):
    name = dns_name(host + ".local")
    rr = name + struct.pack("!HHIH", 1, 0x8001, 120, 4) + bytes(rng.randrange(256) for _ in range(4))
    return struct.pack("!HHHHHH", 0, 0x8400, 0, 1, 0, 0) + rr


def udp_exchange(t0, cli, srv, sport, dport, qlen, rlen, count=1, gap=1.0, tos=0, vlan=None):
    """qlen/rlen: payload sizes (ints) or literal payload bytes; rlen 0 = no reply."""
    t = t0
    for _ in range(count):
        q = qlen if isinstance(qlen, bytes) else payload(qlen)
        emit(t, cli, srv, 17, udp_dgram(sport, dport, q), 6, tos, vlan)
        if rlen:
            t += rng.uniform(0.001, 0.03)
            r = rlen if isinstance(rlen, bytes) else payload(rlen)
            emit(t, srv, cli, 17, udp_dgram(dport, sport, r), 6, tos, vlan, 58)
        t += gap * rng.uniform(0.5, 1.5)


def icmp_echo(t0, cli, srv, count, tos=0, vlan=None):
    ident = rng.randrange(1, 65536)
    v6 = ":" in cli
    req, rep = (128, 129) if v6 else (8, 0)
    t = t0
    for seq in range(1, count + 1):
        body = struct.pack("!BBHHH", req, 0, 0, ident, seq) + payload(56)
        emit(t, cli, srv, 1, body, 2, tos, vlan)
        t += rng.uniform(0.005, 0.05)
        body = struct.pack("!BBHHH", rep, 0, 0, ident, seq) + payload(56)
        emit(t, srv, cli, 1, body, 2, tos, vlan, 55)
        t += 1.0


def icmp_unreach(t, router, victim, orig_src, orig_dst, sport, dport):
    inner = ipv4_packet(orig_src, orig_dst, 17, udp_dgram(sport, dport, b""))[:28]
    body = struct.pack("!BBHI", 3, 3, 0, 0) + inner
    emit(t, router, victim, 1, body, 2, 0xC0)


# --------------------------------------------------------------------------- the mix
CLIENTS4 = ["10.0.%d.%d" % (rng.randrange(0, 3), rng.randrange(2, 250)) for _ in range(12)]
SERVERS4 = ["192.0.2.%d" % i for i in (10, 11, 80)] + ["198.51.100.%d" % i for i in (5, 25, 53)] + [
    "203.0.113.%d" % i for i in (7, 99, 200)
]
CLIENTS6 = ["2001:db8:1:0:%x::%x" % (rng.randrange(1, 0xFFFF), rng.randrange(1, 0xFFFF)) for _ in range(4)]
SERVERS6 = ["2001:db8:ffff::%x" % i for i in (0x80, 0x443, 0x53, 0x22)]
RESOLVER4 = "198.51.100.53"
RESOLVER6 = "2001:db8:ffff::53"
TOS_CHOICES = [0, 0, 0, 0, 0x10, 0x28, 0xB8, 0x02, 0x20]


def eph():
    return rng.randrange(32768, 61000)


def when():
    return rng.uniform(0, DURATION - 15)


def tcp_mix():
    ports = [(80, 40), (443, 80), (22, 15), (25, 3), (8080, 4), (3306, 2)]
    for _ in range(48):
        dport = rng.choice([p for p, w in ports for _ in range(w)])
        cli, srv = rng.choice(CLIENTS4), rng.choice(SERVERS4)
        if dport == 22:
            ex = [(rng.randrange(36, 120), rng.randrange(36, 200)) for _ in range(rng.randrange(4, 12))]
        elif dport in (80, 8080):
            ex = [(rng.randrange(200, 700), rng.choice([512, 1500, 6000, 12000, 40000]))]
        elif dport == 443:
            ex = [(517, 2900)] + [(rng.randrange(100, 900), rng.randrange(100, 12000)) for _ in range(rng.randrange(1, 3))]
        else:
            ex = [(rng.randrange(20, 300), rng.randrange(20, 300)) for _ in range(3)]
        tcp_conn(when(), cli, srv, eph(), dport, ex, tos=rng.choice(TOS_CHOICES), rst=rng.random() < 0.1)


def udp_mix():
    for _ in range(40):  # DNS
        udp_exchange(when(), rng.choice(CLIENTS4), RESOLVER4, eph(), 53, *dns_pair())
    for i in range(6):  # mDNS announcements (multicast, no reply)
        src = CLIENTS4[i]
        emit(when(), src, "224.0.0.251", 17, udp_dgram(5353, 5353, mdns_announce("host%d" % i)), 6, 0, None, 255,
             dst_mac=mac("01:00:5e:00:00:fb"))
    for _ in range(12):  # RTP-ish / games
        udp_exchange(when(), rng.choice(CLIENTS4), rng.choice(SERVERS4), eph(), rng.randrange(10000, 60000),
                     rng.randrange(100, 200), rng.randrange(100, 200), count=rng.randrange(3, 12), gap=0.5,
                     tos=rng.choice([0xB8, 0x88, 0]))
    for _ in range(4):  # NTP
        udp_exchange(when(), rng.choice(CLIENTS4), "203.0.113.123", 123, 123, 48, 48)


def icmp_mix():
    for _ in range(8):
        icmp_echo(when(), rng.choice(CLIENTS4), rng.choice(SERVERS4), rng.randrange(1, 6))
    for _ in range(2):
        icmp_unreach(when(), "192.0.2.1", rng.choice(CLIENTS4), "10.0.0.1", "192.0.2.200", eph(), 33434)


def v6_mix():
    for _ in range(10):
        srv = rng.choice(SERVERS6)
        dport = {0x80: 80, 0x443: 443, 0x53: 443, 0x22: 22}[int(srv.rsplit(":", 1)[1], 16)]
        tcp_conn(when(), rng.choice(CLIENTS6), srv, eph(), dport,
                 [(rng.randrange(100, 600), rng.choice([800, 5000, 15000]))], tos=rng.choice([0, 0x28, 0xB8]))
    for _ in range(10):
        udp_exchange(when(), rng.choice(CLIENTS6), RESOLVER6, eph(), 53, *dns_pair(True))
    for _ in range(3):
        udp_exchange(when(), rng.choice(CLIENTS6), rng.choice(SERVERS6), eph(), rng.randrange(10000, 60000), 300, 120,
                     count=4, gap=0.3)
    for _ in range(4):
        icmp_echo(when(), rng.choice(CLIENTS6), rng.choice(SERVERS6), rng.randrange(1, 4))


def vlan_mix():
    for vid, pcp in ((100, 0), (100, 5), (200, 3)):
        tcp_conn(when(), "10.100.%d.2" % (vid // 100), "192.0.2.80", eph(), 80, [(300, 3000)], vlan=(vid, pcp))
        udp_exchange(when(), "10.100.%d.3" % (vid // 100), RESOLVER4, eph(), 53, *dns_pair(), vlan=(vid, pcp))
    icmp_echo(when(), "10.100.2.4", "192.0.2.10", 2, vlan=(200, 0))


tcp_mix()
udp_mix()
icmp_mix()
v6_mix()
vlan_mix()


# --------------------------------------------------------------------------- write
def write_pcap(path):
    packets.sort(key=lambda p: p[0])
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for ts, frame, wire_len in packets:
            usec_total = int(round(ts * 1_000_000))
            sec, usec = divmod(usec_total, 1_000_000)
            data = frame[:SNAPLEN]
            f.write(struct.pack("<IIII", BASE_TS + sec, usec, len(data), wire_len))
            f.write(data)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    write_pcap(sys.argv[1])
    print("%s: %d packets" % (sys.argv[1], len(packets)), file=sys.stderr)
