#!/usr/bin/env python3
"""Decode throughput of the Python original (PyPI netflow==0.12.2) on the same
packets as `cargo bench -p netflow --bench decode` (testdata/seed_vectors.json),
templates warm, every record's fields read. Prints records/s per case.

    pip install netflow==0.12.2 && python3 bench/python_original.py
"""
import json
import os
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


def run(case, warm, packets, seconds=2.0):
    templates = {"netflow": {}, "ipfix": {}}
    for w in warm:
        netflow.parse_packet(VECTORS[w], templates)
    payloads = [VECTORS[p] for p in packets]
    records = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for p in payloads:
            export = netflow.parse_packet(p, templates)
            for flow in export.flows:
                for _ in flow.data.values():
                    pass
                records += 1
    elapsed = time.perf_counter() - start
    print(f"{case}: {records / elapsed / 1e6:.4f} M records/s ({records} records in {elapsed:.2f} s)")


for c in CASES:
    run(*c)
