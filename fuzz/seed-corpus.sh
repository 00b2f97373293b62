#!/usr/bin/env bash
# Build the committed seed corpus fuzz/corpus/<target>/ from testdata/seed_vectors.json
# (plus a few hand-built packets for what the vectors lack: v7, options
# templates, variable-length fields, RFC 6313 lists) and from the real exporter
# captures testdata/captures/*.pcap.
#
# Usage: fuzz/seed-corpus.sh [CAPTURE.pcap | DIR_OF_RAW_DATAGRAMS]...
#   Without arguments: every testdata/captures/*.pcap except input-*.pcap.
#   A .pcap (classic libpcap, Ethernet/raw IP/Linux cooked) gives its UDP
#   payloads; a directory gives one raw datagram per file. Each datagram goes
#   to the target of its version field (at most 6 distinct ones per source
#   and target), and the source's datagrams in order, in chunks of up to 24,
#   become fuzz_stateful sequences.
# Needs only python3. Files are named by content, so re-running is idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 - "$here" "$@" <<'EOF'
import hashlib, json, os, struct, sys

fuzz_dir = sys.argv[1]
extra_dirs = sys.argv[2:]
root = os.path.dirname(fuzz_dir)
data = json.load(open(os.path.join(root, "testdata", "seed_vectors.json")))
vec = {v["name"]: bytes.fromhex(v["hex"]) for v in data["vectors"]}

def write(target, name, blob):
    d = os.path.join(fuzz_dir, "corpus", target)
    os.makedirs(d, exist_ok=True)
    h = hashlib.sha1(blob).hexdigest()[:12]
    path = os.path.join(d, f"{name}-{h}")
    with open(path, "wb") as f:
        f.write(blob)

def version(b):
    return struct.unpack(">H", b[:2])[0] if len(b) >= 2 else -1

def sets_of(pkt):
    """(offset, bytes) of each set of a v9/IPFIX packet."""
    off = 20 if version(pkt) == 9 else 16
    end = len(pkt) if version(pkt) == 9 else struct.unpack(">H", pkt[2:4])[0]
    out = []
    while off + 4 <= end:
        ln = struct.unpack(">H", pkt[off + 2:off + 4])[0]
        if ln < 4 or off + ln > end:
            break
        out.append(pkt[off:off + ln])
        off += ln
    return out

def ipfix(sets, domain=0):
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), 1700000000, 7, domain) + body

def v9(sets, count, source=0):
    return struct.pack(">HHIIII", 9, count, 123456, 1700000000, 1, source) + b"".join(sets)

def st(set_id, content):
    return struct.pack(">HH", set_id, 4 + len(content)) + content

def tmpl(tid, specs):
    """IPFIX template record; specs = [(id, len) or (id, len, pen)]."""
    out = struct.pack(">HH", tid, len(specs))
    for s in specs:
        if len(s) == 3:
            out += struct.pack(">HHI", s[0] | 0x8000, s[1], s[2])
        else:
            out += struct.pack(">HH", s[0], s[1])
    return out

def opt_tmpl(tid, scope, specs):
    out = struct.pack(">HHH", tid, len(specs), scope)
    for s in specs:
        out += struct.pack(">HH", s[0], s[1])
    return out

def varlen(b):
    return (bytes([len(b)]) if len(b) < 255 else b"\xff" + struct.pack(">H", len(b))) + b

# The stateful target's framing: config byte, then (flags, u16 len, datagram)*.
def frames(packets, config=0, exporter_b=()):
    out = bytes([config])
    for i, p in enumerate(packets):
        flags = (1 if i in exporter_b else 0) | (1 << 1)  # +100 ms per datagram
        out += bytes([flags]) + struct.pack(">H", len(p)) + p
    return out

# ---- v1 / v5 / v7 -----------------------------------------------------------
write("fuzz_v5", "PACKET_V1", vec["PACKET_V1"])
write("fuzz_v5", "PACKET_V5", vec["PACKET_V5"])
v5 = vec["PACKET_V5"]
count = struct.unpack(">H", v5[2:4])[0]
v7 = struct.pack(">HH", 7, count) + v5[4:16] + b"\x00" * 8
for i in range(count):
    v7 += v5[24 + 48 * i:24 + 48 * (i + 1)] + bytes([192, 0, 2, 1])  # + router_sc
write("fuzz_v5", "SYNTH_V7", v7)
write("fuzz_v5", "SYNTH_V5_COUNT_TOO_BIG", v5[:2] + b"\x00\x63" + v5[4:])

# ---- v9 ---------------------------------------------------------------------
for n, b in vec.items():
    if version(b) == 9:
        write("fuzz_v9", n.replace("[", "_").replace("]", ""), b)
t = sets_of(vec["PACKET_V9_TEMPLATE"])
d = sets_of(vec["PACKETS_V9[0]"])
write("fuzz_v9", "MERGED_TEMPLATE_AND_DATA", v9(t + d, 0))
write("fuzz_v9", "MERGED_DATA_BEFORE_TEMPLATE", v9(d + t, 0))
# Options template 260: scope System(1)/4, fields SAMPLING_INTERVAL(34)/4, SAMPLING_ALGORITHM(35)/1;
# options data with padding.
opt = struct.pack(">HHH", 260, 4, 8) + struct.pack(">HHHHHH", 1, 4, 34, 4, 35, 1)
write("fuzz_v9", "SYNTH_OPTIONS", v9([st(1, opt + b"\x00\x00"), st(260, struct.pack(">IIB", 1, 100, 2) + b"\x00" * 3)], 2))
# Zero-length field next to a 1-byte one: many records from few bytes.
write("fuzz_v9", "SYNTH_ZERO_LEN_FIELD", v9([st(0, struct.pack(">HHHHHH", 300, 2, 4, 1, 5, 0)), st(300, bytes(range(1, 33)))], 2))

# ---- IPFIX ------------------------------------------------------------------
for n, b in vec.items():
    if version(b) == 10:
        write("fuzz_ipfix", n, b)
for tn, dn in [("PACKET_IPFIX_TEMPLATE", "PACKET_IPFIX"), ("PACKET_IPFIX_TEMPLATE_ETHER", "PACKET_IPFIX_ETHER")]:
    ts, ds = sets_of(vec[tn]), sets_of(vec[dn])
    write("fuzz_ipfix", "MERGED_" + dn, ipfix([s for s in ts if s[1] in (2, 3)] + ds))
# RFC 6313 lists: template 257 = sourceIPv4Address/4, protocolIdentifier/1;
# template 256 = basicList, subTemplateList, subTemplateMultiList (all variable length).
t257 = tmpl(257, [(8, 4), (4, 1)])
t256 = tmpl(256, [(291, 0xFFFF), (292, 0xFFFF), (293, 0xFFFF)])
bl = bytes([3, 0, 11, 0, 2, 0, 80, 1, 187, 0x1F, 0x90])
stl = bytes([4, 1, 1, 10, 0, 0, 1, 6, 10, 0, 0, 2, 17])
stml = bytes([3, 1, 1, 0, 9, 192, 0, 2, 1, 1])
lists = ipfix([st(2, t257 + t256), st(256, varlen(bl) + varlen(stl) + varlen(stml))])
write("fuzz_ipfix", "SYNTH_LISTS", lists)
# Nested: template 258 = subTemplateList of 258 (self-reference), 6 levels.
inner = b""
for _ in range(6):
    inner = varlen(bytes([0, 1, 2]) + inner)
write("fuzz_ipfix", "SYNTH_NESTED_STL", ipfix([st(2, tmpl(258, [(292, 0xFFFF)])), st(258, inner)]))
# basicList of basicLists with an enterprise element.
inner_bl = bytes([3]) + struct.pack(">HHI", 0x8000 | 14, 2, 6871) + b"\x00\x01\x00\x02"
outer_bl = bytes([3]) + struct.pack(">HH", 291, 0xFFFF) + varlen(inner_bl) + varlen(inner_bl)
write("fuzz_ipfix", "SYNTH_BASICLIST_NESTED", ipfix([st(2, tmpl(259, [(291, 0xFFFF)])), st(259, varlen(outer_bl))]))
# Variable-length strings (both length forms), enterprise and reverse (PEN 29305) elements.
t260 = tmpl(260, [(82, 0xFFFF), (8, 4, 29305), (14, 1, 6871), (1, 3)])
rec = varlen(b"eth0") + bytes([10, 0, 0, 1]) + b"\x07" + b"\x00\x01\x00"
rec2 = varlen(b"x" * 300) + bytes([10, 0, 0, 2]) + b"\x08" + b"\xff\xff\xff"
write("fuzz_ipfix", "SYNTH_VARLEN_ENTERPRISE", ipfix([st(2, t260), st(260, rec + rec2 + b"\x00\x00")]))
# Options template with scope, withdrawal of one and of all templates.
o261 = opt_tmpl(261, 1, [(149, 4), (41, 8)])
write("fuzz_ipfix", "SYNTH_OPTIONS_WITHDRAW", ipfix([
    st(3, o261), st(261, struct.pack(">IQ", 5, 99)),
    st(2, t257), st(2, struct.pack(">HH", 257, 0)), st(2, struct.pack(">HH", 2, 0)),
    st(3, struct.pack(">HH", 3, 0))]))
# Time types: seconds, milliseconds, micro/nanoseconds (NTP), float64, boolean, MAC, IPv6.
t262 = tmpl(262, [(150, 4), (152, 8), (154, 8), (156, 8), (320, 8), (276, 1), (56, 6), (27, 16)])
rec = struct.pack(">IQQQd", 1700000000, 1700000000123, 0xE8FFA080_80000000, 0xE8FFA080_00000001, 1.5) + b"\x01" + b"\x02" * 6 + b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x01"
write("fuzz_ipfix", "SYNTH_TYPES", ipfix([st(2, t262), st(262, rec)]))

# ---- stateful sequences -----------------------------------------------------
for s in data["sequences"]:
    if not isinstance(s["feed"], list):
        continue
    pkts = []
    for n in s["feed"]:
        if n == "PACKETS_V9[random]":
            n = "PACKETS_V9[1]"
        pkts.append(vec[n])
    write("fuzz_stateful", s["name"], frames(pkts))
    # Same feed, two exporters, small limits (config 0x9d: small pending buffer + cache limits).
    write("fuzz_stateful", s["name"] + "_small_limits", frames(pkts, 0x9D, exporter_b={1}))
write("fuzz_stateful", "v9_data_then_template", frames([vec["PACKETS_V9[0]"], vec["PACKETS_V9[1]"], vec["PACKET_V9_TEMPLATE"]]))
write("fuzz_stateful", "ipfix_lists_split", frames([
    ipfix([st(256, varlen(bl) + varlen(stl) + varlen(stml))]),
    ipfix([st(2, t257)]), ipfix([st(2, t256)])]))
write("fuzz_stateful", "mixed_versions", frames([vec["PACKET_V5"], vec["PACKET_IPFIX_TEMPLATE"], vec["PACKET_V9_TEMPLATE"], vec["PACKET_IPFIX"], vec["PACKETS_V9[2]"]], 0, {2, 4}))

# ---- real captures ------------------------------------------------------------
def pcap_udp_payloads(path):
    """UDP payloads of a classic pcap file (IPv4/IPv6 over Ethernet, raw IP or Linux SLL)."""
    raw = open(path, "rb").read()
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        print(f"{path}: not a classic pcap file, skipped", file=sys.stderr)
        return []
    linktype = struct.unpack(e + "I", raw[20:24])[0]
    off, out = 24, []
    while off + 16 <= len(raw):
        incl = struct.unpack(e + "I", raw[off + 8:off + 12])[0]
        frame = raw[off + 16:off + 16 + incl]
        off += 16 + incl
        if linktype == 1:  # Ethernet, with optional 802.1Q tags
            p, ethertype = 14, struct.unpack(">H", frame[12:14])[0] if len(frame) >= 14 else 0
            while ethertype in (0x8100, 0x88A8) and len(frame) >= p + 4:
                ethertype = struct.unpack(">H", frame[p + 2:p + 4])[0]
                p += 4
        elif linktype == 113:  # Linux cooked
            p, ethertype = 16, struct.unpack(">H", frame[14:16])[0] if len(frame) >= 16 else 0
        elif linktype in (101, 12, 14):  # raw IP
            p, ethertype = 0, 0x0800 if frame[:1] and frame[0] >> 4 == 4 else 0x86DD
        else:
            continue
        ip = frame[p:]
        if ethertype == 0x0800 and len(ip) >= 20 and ip[9] == 17:
            udp = ip[(ip[0] & 15) * 4:]
        elif ethertype == 0x86DD and len(ip) >= 40 and ip[6] == 17:
            udp = ip[40:]
        else:
            continue
        if len(udp) >= 8:
            ulen = struct.unpack(">H", udp[4:6])[0]
            out.append(udp[8:ulen] if 8 <= ulen <= len(udp) else udp[8:])
    return out

sources = extra_dirs or sorted(
    os.path.join(root, "testdata", "captures", f)
    for f in (os.listdir(os.path.join(root, "testdata", "captures"))
              if os.path.isdir(os.path.join(root, "testdata", "captures")) else [])
    if f.endswith(".pcap") and not f.startswith("input-"))
targets_by_version = {1: "fuzz_v5", 5: "fuzz_v5", 7: "fuzz_v5", 9: "fuzz_v9", 10: "fuzz_ipfix"}
for src in sources:
    name = os.path.basename(src.rstrip("/")).replace(".pcap", "")
    if os.path.isdir(src):
        pkts = [open(os.path.join(src, f), "rb").read() for f in sorted(os.listdir(src))]
    else:
        pkts = pcap_udp_payloads(src)
    pkts = [b for b in pkts if version(b) in targets_by_version]
    per_target = {}
    for b in pkts:
        t = targets_by_version[version(b)]
        seen = per_target.setdefault(t, set())
        if len(seen) < 6 and b not in seen:
            seen.add(b)
            write(t, f"capture_{name}_{len(seen)}", b)
    for i in range(0, len(pkts), 24):
        write("fuzz_stateful", f"capture_{name}_{i // 24}", frames(pkts[i:i + 24], 0, {1, 5}))

for t in sorted(os.listdir(os.path.join(fuzz_dir, "corpus"))):
    print(t, len(os.listdir(os.path.join(fuzz_dir, "corpus", t))), "files")
EOF
