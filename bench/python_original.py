#!/usr/bin/env python3
"""Decode throughput of the Python original (PyPI netflow==0.12.2) on the same
packets as `cargo bench -p netflow --bench decode`: the real-exporter captures
(testdata/captures/*.pcap, their UDP payloads) and the seed packets
(testdata/seed_vectors.json), templates warm (one pass first), every record's
fields read. Prints records/s per case and the records decoded per pass (to
compare with the bench's record counts).

    pip install netflow==0.12.2 && python3 bench/python_original.py

Separate run, so its figures compare with the bench's only roughly; for the
ratio to netflow-rs measured in the same run on the same payloads see
bench/decode_vs_python.py.
"""
import json
import os
import struct
import time

import netflow

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = {v["name"]: bytes.fromhex(v["hex"]) for v in
           json.load(open(os.path.join(HERE, "..", "testdata", "seed_vectors.json")))["vectors"]}

CASES = [
    ("v5", [], ["PACKET_V5"]),
    ("v9", ["PACKET_V9_TEMPLATE"], ["PACKETS_V9[0]", "PACKETS_V9[1]", "PACKETS_V9[2]"]),
    ("ipfix", ["PACKET_IPFIX_TEMPLATE_ETHER"], ["PACKET_IPFIX_ETHER"]),
]


CAPTURES = ["softflowd-v5", "pmacct-v5", "fprobe-v5", "softflowd-v9", "pmacct-v9", "softflowd-ipfix", "pmacct-ipfix"]


def udp_payloads(path):
    """UDP payloads of a classic little/big-endian pcap of Ethernet frames
    (IPv4 or IPv6, optional 802.1Q tag), in order."""
    data = open(path, "rb").read()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    assert linktype == 1, f"{path}: link type {linktype}, expected Ethernet"
    pos, out = 24, []
    while pos + 16 <= len(data):
        caplen = struct.unpack(endian + "I", data[pos + 8:pos + 12])[0]
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        ethertype, off = struct.unpack(">H", frame[12:14])[0], 14
        if ethertype == 0x8100:
            ethertype, off = struct.unpack(">H", frame[16:18])[0], 18
        if ethertype == 0x0800 and frame[off + 9] == 17:
            udp = off + (frame[off] & 0x0F) * 4
        elif ethertype == 0x86DD and frame[off + 6] == 17:
            udp = off + 40
        else:
            continue
        length = struct.unpack(">H", frame[udp + 4:udp + 6])[0]
        out.append(frame[udp + 8:udp + length])
    return out


def count_and_read(export):
    """Records of an export with every field value read: flows, and v9
    options records (IPFIX options records are among the flows)."""
    records = 0
    for flow in export.flows:
        for _ in flow.data.values():
            pass
        records += 1
    for option in getattr(export, "options", None) or []:
        for _ in option.data.values():
            pass
        records += 1
    return records


def run(case, warm, payloads, seconds=2.0):
    templates = {"netflow": {}, "ipfix": {}}
    try:
        for p in warm + payloads:
            netflow.parse_packet(p, templates)
        per_pass = sum(count_and_read(netflow.parse_packet(p, templates)) for p in payloads)
    except Exception as e:  # the original raises on some inputs: say so, go on
        print(f"{case}: the Python original fails: {type(e).__name__}: {e}")
        return
    records = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for p in payloads:
            records += count_and_read(netflow.parse_packet(p, templates))
    elapsed = time.perf_counter() - start
    print(f"{case}: {records / elapsed / 1e6:.4f} M records/s ({per_pass} records per pass, "
          f"{records} records in {elapsed:.2f} s)")


def inputs():
    """(name, warm-up payloads, payloads) of every input, in table order;
    bench/decode_vs_python.py measures the same."""
    for name in CAPTURES:
        yield name, [], udp_payloads(os.path.join(HERE, "..", "testdata", "captures", name + ".pcap"))
    for case, warm, packets in CASES:
        yield case, [VECTORS[w] for w in warm], [VECTORS[p] for p in packets]


if __name__ == "__main__":
    for name, warm, payloads in inputs():
        run(name, warm, payloads)
