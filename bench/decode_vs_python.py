#!/usr/bin/env python3
"""Decode throughput of the Python original (PyPI netflow==0.12.2) and of
netflow-rs, measured in the same run on the same payloads, with their ratio
(issue 5 target: netflow-rs >= 1000x the Python original on v9/IPFIX).

Inputs: those of bench/python_original.py (the UDP payloads of the
real-exporter captures in testdata/captures/ and the seed packets of
testdata/seed_vectors.json, template packets decoded first, not counted).
The payloads extracted here are written to `.payloads` files, so both sides
decode exactly the same bytes.

- Python original: `netflow.parse_packet` on every payload, every field value
  of every record read (`python_original.count_and_read`), templates warm.
- netflow-rs: `crates/netflow/examples/decode_loop` in mode `columns_bench`
  (`DataSet::columns()` then `Column::for_each`, the fastest path that
  decodes every field of every record to a typed `Value`; every value folded
  into a checksum as `benches/decode.rs` folds them), templates warm, timed
  in its own process over the same wall-clock duration. `--mode
  visit_columns_bench`: the same columns through `visit_packet` (each data
  set handed to a closure, no `ExportPacket` built).

For each input, N runs alternate the two (Python first on even runs, Rust
first on odd ones); the table reports the best of the N runs of each and
their ratio, plus the lowest and highest ratio of the Python/Rust pairs of
one run. Both must decode the same number of records per pass, or the row
says so. The load average (/proc/loadavg) is printed at the start and end.

    pip install netflow==0.12.2
    python3 bench/decode_vs_python.py            # ~100 s: 5 runs x 1 s a side
    python3 bench/decode_vs_python.py --smoke    # a few seconds: 1 run x 0.2 s

Builds the example first (`cargo build --release -p netflow --example
decode_loop`) unless --no-build.
"""
import argparse
import datetime
import importlib.metadata
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

import netflow

import python_original as original

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
V9_IPFIX = re.compile(r"v9|ipfix")
TARGET = 1000
# Table names of the seed cases.
SEEDS = {case: "seed " + packets[0].split("[")[0] for case, _, packets in original.CASES}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def write_payloads(path, warm, payloads):
    with open(path, "wb") as f:
        for kind, group in ((0, warm), (1, payloads)):
            for p in group:
                f.write(struct.pack(">BI", kind, len(p)) + p)


class Python:
    """The Python original on one input, templates warm."""

    def __init__(self, warm, payloads):
        self.payloads = payloads
        self.templates = {"netflow": {}, "ipfix": {}}
        for p in warm + payloads:
            netflow.parse_packet(p, self.templates)
        self.per_pass = sum(original.count_and_read(netflow.parse_packet(p, self.templates))
                            for p in payloads)

    def rate(self, seconds):
        records, templates, payloads = 0, self.templates, self.payloads
        parse, count = netflow.parse_packet, original.count_and_read
        start = time.perf_counter()
        while True:
            for p in payloads:
                records += count(parse(p, templates))
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return records / elapsed


def timed(binary, path, seconds, mode):
    """The fields of decode_loop's `timed:` line (records_per_pass, passes,
    records, seconds, records_per_s, checksum) for `mode` on a payloads file."""
    out = subprocess.run([binary, path, f"{seconds}s", mode], check=True,
                         capture_output=True, text=True).stdout
    return dict(kv.split("=") for kv in out.split("timed:")[1].split())


def rust(binary, path, seconds, mode="columns_bench"):
    """(records per pass, records/s) of decode_loop on a payloads file."""
    fields = timed(binary, path, seconds, mode)
    return int(fields["records_per_pass"]), float(fields["records_per_s"])


def alternate(runs, python_side, rust_side):
    """Measure each side `runs` times, Python first on even runs, Rust
    first on odd ones (so neither always runs on a machine the other warmed)."""
    for run in range(runs):
        for side in (python_side, rust_side) if run % 2 == 0 else (rust_side, python_side):
            side()


def print_table(columns, rows):
    """A Markdown table of `rows` (tuples of strings) under `columns`."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def rate(r):
    return f"{r / 1e6:.4f} M/s" if r < 1e6 else f"{r / 1e6:.1f} M/s"


def add_run_args(ap, runs):
    """The options this script and bench/v9_budget.py share."""
    ap.add_argument("--runs", type=int, default=runs, help="alternating runs per input (best of N)")
    ap.add_argument("--seconds", type=float, default=1.0, help="timed loop of each side, each run")
    ap.add_argument("--smoke", action="store_true", help="1 run of 0.2 s a side: checks it works")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build first")


def decode_loop(args):
    """Apply --smoke to `args`; the path of the decode_loop example, built
    first unless --no-build."""
    if args.smoke:
        args.runs, args.seconds = 1, 0.2
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "netflow",
                        "--example", "decode_loop"], cwd=ROOT, check=True)
    return os.path.join(target_dir, "release", "examples", "decode_loop")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_args(ap, runs=5)
    ap.add_argument("--only", nargs="*", help="input names to measure (default: all)")
    ap.add_argument("--mode", default="columns_bench",
                    choices=["columns_bench", "visit_columns_bench"],
                    help="decode_loop mode of the netflow-rs side")
    args = ap.parse_args()
    binary = decode_loop(args)
    commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    started = time.monotonic()
    print(f"# {' '.join(sys.argv)}")
    print(f"# commit {commit}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC, "
          f"Python {sys.version.split()[0]}, netflow {importlib.metadata.version('netflow')}, "
          f"{args.runs} runs x {args.seconds} s a side")
    print(f"# load average at start: {loadavg()}", flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, warm, payloads in original.inputs():
            if args.only and name not in args.only:
                continue
            label = SEEDS.get(name, name)
            path = os.path.join(tmp, name + ".payloads")
            write_payloads(path, warm, payloads)
            try:
                py = Python(warm, payloads)
            except Exception as e:  # the original raises on some inputs: say so, go on
                rows.append((label, "-", f"fails: {type(e).__name__}: {e}", "-", "-", "-", "-"))
                print(f"{label}: the Python original fails: {type(e).__name__}: {e}", flush=True)
                continue
            pys, rss, counts = [], [], []

            def rust_side():
                count, r = rust(binary, path, args.seconds, args.mode)
                counts.append(count)
                rss.append(r)

            alternate(args.runs, lambda: pys.append(py.rate(args.seconds)), rust_side)
            per_pass = counts[-1]
            ratios = [r / p for p, r in zip(pys, rss)]
            best = max(rss) / max(pys)
            same = per_pass == py.per_pass
            records = str(py.per_pass) if same else f"Python {py.per_pass}, netflow-rs {per_pass}"
            if not same:
                verdict = "not compared (record counts differ)"
            elif V9_IPFIX.search(name):
                verdict = f"**met** ({best:.0f}x)" if best >= TARGET else f"**not met** ({best:.0f}x)"
            else:
                verdict = "- (v5: no target)"
            rows.append((label, records, rate(max(pys)), rate(max(rss)), f"{best:.0f}x",
                         f"{min(ratios):.0f}x - {max(ratios):.0f}x", verdict))
            print(f"{label}: Python {', '.join(rate(p) for p in pys)}; "
                  f"netflow-rs {', '.join(rate(r) for r in rss)}", flush=True)

    print()
    print_table(["input", "records/pass", f"Python original (best of {args.runs})",
                 f"netflow-rs {args.mode} (best of {args.runs})", "ratio of bests",
                 "ratio per run (min - max)", f">= {TARGET}x on v9/IPFIX"], rows)
    print()
    print(f"# load average at end: {loadavg()}; {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
