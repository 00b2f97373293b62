#!/usr/bin/env python3
"""What issue 5's v9 target (netflow-rs >= 1000x the Python original) asks
of each part of the decode, measured in one run on this machine.

For each v9 input of bench/decode_vs_python.py (the same payloads), it
measures, best of N alternated runs:

- the Python original's records/s (as decode_vs_python.py does);
- netflow-rs `decode_loop` mode `visit_columns_bench` (every value of every
  record decoded and folded: the figure the ratio is taken on);
- netflow-rs `decode_loop` mode `visit_only` (the same packet and set walk,
  no value read): the walk's share of a record;
- the values a record holds (`decode_loop` mode `count`);
- the fixed cost of a packet: the same payloads cut to their 20-byte v9
  header (no set left), mode `visit_only`, less the loop's own cost a
  payload (mode `v9_header_only`: the header parsed, nothing else);

and prints, per record: the time now, the time 1000x Python allows, the
walk's time, the time per value left once the walk is taken out (also in
cycles at the clock /proc/cpuinfo reports), and what 1000x would need:
the value cost with the walk as it is, and the walk cost with values at
their present cost or at one cycle each. One cycle a value is a reference,
not a floor: it is the latency of the one add the bench's fold makes per
value into its single accumulator, so values read one after the other
cost about that much; only where LLVM regroups the adds of straight-line
reads (a few values summed before they meet the accumulator) does a value
cost less (the seed v9 packets: ~0.9 cycles).

    pip install netflow==0.12.2
    python3 bench/v9_budget.py           # ~60 s: 3 runs x 1 s a side
    python3 bench/v9_budget.py --smoke   # a few seconds
"""
import argparse
import os
import sys
import tempfile

import decode_vs_python as dvp
import python_original as original

TARGET = dvp.TARGET
# RFC 3954 section 5.1: the v9 packet header.
V9_HEADER_LEN = 20


def cpu_mhz():
    """The clock /proc/cpuinfo reports for the first CPU (None if absent)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1])
    except OSError:
        pass
    return None


def fields_per_record(binary, path):
    """Mean number of values a record holds (mode `count` sums them)."""
    fields = dvp.timed(binary, path, 0.05, "count")
    return int(fields["checksum"]) / int(fields["records"])


def per_payload_ns(binary, path, seconds, mode, payloads):
    """ns a payload of decode_loop in `mode` (passes over `payloads` payloads)."""
    fields = dvp.timed(binary, path, seconds, mode)
    return float(fields["seconds"]) * 1e9 / (int(fields["passes"]) * payloads)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    dvp.add_run_args(ap, runs=3)
    args = ap.parse_args()
    binary = dvp.decode_loop(args)
    mhz = cpu_mhz()
    print(f"# {' '.join(sys.argv)}")
    print(f"# {args.runs} runs x {args.seconds} s a side, clock {mhz or '?'} MHz, "
          f"load average {dvp.loadavg()}", flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, warm, payloads in original.inputs():
            if "v9" not in name:
                continue
            label = dvp.SEEDS.get(name, name)
            path = os.path.join(tmp, name + ".payloads")
            dvp.write_payloads(path, warm, payloads)
            headers = os.path.join(tmp, name + ".headers.payloads")
            dvp.write_payloads(headers, warm + payloads, [p[:V9_HEADER_LEN] for p in payloads])
            py = dvp.Python(warm, payloads)
            pys, full, walk, empty, harness, counts = [], [], [], [], [], []

            def rust_side():
                count, r = dvp.rust(binary, path, args.seconds, "visit_columns_bench")
                counts.append(count)
                full.append(r)
                walk.append(dvp.rust(binary, path, args.seconds, "visit_only")[1])
                empty.append(per_payload_ns(binary, headers, args.seconds, "visit_only",
                                            len(payloads)))
                harness.append(per_payload_ns(binary, headers, args.seconds, "v9_header_only",
                                              len(payloads)))

            dvp.alternate(args.runs, lambda: pys.append(py.rate(args.seconds)), rust_side)
            per_pass = counts[-1]
            if per_pass != py.per_pass:
                print(f"{label}: record counts differ (Python {py.per_pass}, "
                      f"netflow-rs {per_pass}): not compared")
                continue
            values = fields_per_record(binary, path)
            ns_now = 1e9 / max(full)
            ns_walk = 1e9 / max(walk)
            ns_target = 1e9 / (TARGET * max(pys))
            ns_value = (ns_now - ns_walk) / values
            one_cycle = 1e3 / mhz if mhz else None

            def cycles(ns):
                return f"{ns / one_cycle:.2f}" if one_cycle else "?"

            # What 1000x needs with one part as it is.
            value_needed = (ns_target - ns_walk) / values
            walk_needed = ns_target - ns_value * values
            walk_at_floor = ns_target - one_cycle * values if one_cycle else None
            packet_fixed = min(empty) - min(harness)
            rows.append((
                label, f"{values:.1f}", f"{per_pass / len(payloads):.1f}",
                f"{packet_fixed:.1f} ({packet_fixed * len(payloads) / per_pass:.2f})",
                f"{max(full) / max(pys):.0f}x",
                f"{ns_now:.2f}", f"{ns_target:.2f}", f"{ns_walk:.2f}",
                f"{ns_value:.3f} ({cycles(ns_value)})",
                f"{value_needed:.3f} ({cycles(value_needed)})" if value_needed > 0 else "none left",
                f"{walk_needed:.2f}" if walk_needed > 0 else "none left",
                (f"{walk_at_floor:.2f}" if walk_at_floor > 0 else "none left")
                if walk_at_floor is not None else "?",
            ))
            print(f"{label}: Python {', '.join(dvp.rate(p) for p in pys)}; netflow-rs "
                  f"{', '.join(dvp.rate(r) for r in full)}; walk alone "
                  f"{', '.join(dvp.rate(r) for r in walk)}", flush=True)

    print()
    print("Per record, in ns (a value's cost also in cycles):")
    print()
    print("(An empty packet: ns a packet with no set in it, the loop's own cost taken out;")
    print("in brackets its share of a record.)")
    print()
    dvp.print_table(["input", "values a record", "records a packet", "an empty packet",
                     "ratio now", "now", f"{TARGET}x Python allows", "walk alone", "a value now",
                     f"a value {TARGET}x needs (walk as now)",
                     f"walk {TARGET}x needs (values as now)",
                     f"walk {TARGET}x needs (values at 1 cycle)"], rows)


if __name__ == "__main__":
    main()
