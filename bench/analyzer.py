#!/usr/bin/env python3
"""Analyzer scan speed on the same flows: `netflow analyzer top` on the
collector's file vs `nfdump -r` on nfcapd's file (issue 4 / issue 5).

1. The same `netflow generate --seed 1 --start-time 1700000000` stream (v9 by
   default) is sent once to `netflow collector --format FORMAT` and once to
   nfcapd (Debian's nfdump), on loopback at a rate both take without loss.
2. Both stored the same flows: the collector's record count (its lines read
   back here) and nfcapd's (`nfdump -I`) must equal what the generator sent;
   otherwise the run stops (comparing different work would mean nothing).
3. Timed, best of --repeat runs each, alternating:
     ours    netflow analyzer top --by src --metric bytes -n 10 -f FILE
     nfdump  nfdump -r FILE -s srcip/bytes -n 10 -q
   and, as a cross-check that both did the same work, the bytes of the top
   source must be equal in both outputs.
Prints flows/s of each and the ratio (ours / nfdump; the issue's target is
>= 3).

With --format columns the collector writes its binary columns file
(`.nfcol`); its stored flow count is then taken from `netflow analyzer top
--by exporter --output json` (and must still equal the generator's count and
nfcapd's).

  cargo build --release -p netflow-cli && python3 bench/analyzer.py
  python3 bench/analyzer.py --packets 40000 --format flows
  python3 bench/analyzer.py --format columns
"""
import argparse
import glob
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bound(port):
    """True once a UDP socket is bound to 127.0.0.1:port (/proc/net/udp)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in f.readlines()[1:])


def start(cmd, port, cwd):
    err = open(os.path.join(cwd, "stderr"), "w+")
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 20
    while not bound(port):
        if proc.poll() is not None or time.time() > deadline:
            err.seek(0)
            sys.exit(f"{cmd[0]} did not bind 127.0.0.1:{port}: {err.read()[-1000:]}")
        time.sleep(0.05)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


def generate(args, port):
    cmd = [args.netflow, "generate", "--target", f"127.0.0.1:{port}", "--version",
           str(args.version), "--rate", str(args.rate), "--count", str(args.packets),
           "--seed", "1", "--start-time", "1700000000", "--exporters", "4"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"^total .*packets (\d+) records (\d+) options (\d+)", out, re.M)
    if not m:
        sys.exit(f"generator output not understood: {out}")
    return int(m.group(2)), int(m.group(3))


def collector_records(path, fmt, netflow=None):
    if fmt == "columns":
        out = subprocess.run([netflow, "analyzer", "top", "--by", "exporter", "--output", "json",
                              "-f", path], capture_output=True, text=True, check=True).stdout
        return json.loads(out)["total"]["flows"]
    n = 0
    with gzip.open(path, "rt") as f:
        for line in f:
            obj = json.loads(line)
            if fmt == "flows":
                n += 0 if obj.get("options") else 1
            else:
                (export,) = obj.values()
                n += len(export["flows"])
    return n


def best_of(cmd, repeat):
    best, out = None, None
    for _ in range(repeat):
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t
        if res.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {res.stderr[-1000:]}")
        best = dt if best is None else min(best, dt)
        out = res.stdout
    return best, out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--netflow", default=os.path.join(ROOT, "target/release/netflow"))
    p.add_argument("--nfcapd", default=shutil.which("nfcapd") or "/usr/bin/nfcapd")
    p.add_argument("--nfdump", default=shutil.which("nfdump") or "/usr/bin/nfdump")
    p.add_argument("--version", type=int, default=9, choices=(5, 9, 10))
    p.add_argument("--packets", type=int, default=20000, help="export datagrams sent (default 20000)")
    p.add_argument("--rate", type=int, default=4000, help="datagrams/s, low enough for zero loss")
    p.add_argument("--format", default="original", choices=("original", "flows", "columns"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, help="netflow analyzer top --threads (default: its own)")
    p.add_argument("--by", default="src", choices=("src", "proto"),
                   help="the query: top sources (nfdump -s srcip/bytes, the issue's) or protocols "
                        "(nfdump -s proto/bytes: few keys, so mostly reading)")
    p.add_argument("--keep", metavar="DIR",
                   help="keep both files in DIR (created; for profiling the same flows)")
    p.add_argument("--reuse", metavar="DIR",
                   help="time the files an earlier --keep DIR run made (same --format) instead of "
                        "making new ones: both must still hold the same number of flows")
    args = p.parse_args()
    for tool in (args.netflow, args.nfcapd, args.nfdump):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} not found (cargo build --release -p netflow-cli; apt-get install nfdump)")

    if args.reuse:
        work = args.reuse
    elif args.keep:
        os.makedirs(args.keep, exist_ok=False)
        work = args.keep
    else:
        work = tempfile.mkdtemp(prefix="bench-analyzer-")
    try:
        if args.reuse:
            nf_files = sorted(glob.glob(os.path.join(work, "nfcapd", "nfcapd.*")))
            name = "flows.nfcol" if args.format == "columns" else "flows.gz"
            gz = os.path.join(work, "collector", name)
            if len(nf_files) != 1 or not os.path.exists(gz):
                sys.exit(f"{work}: expected nfcapd/nfcapd.* and collector/{name} from --keep")
            info = subprocess.run([args.nfdump, "-r", nf_files[0], "-I"], capture_output=True,
                                  text=True, check=True).stdout
            nf_flows = int(re.search(r"^Flows: (\d+)$", info, re.M).group(1))
            ours_flows = collector_records(gz, args.format, args.netflow)
            print(f"reusing {work}: collector {ours_flows} flows, nfcapd {nf_flows}")
            if ours_flows != nf_flows:
                sys.exit("the two files do not hold the same flows")
        else:
            nf_files, nf_flows, gz, ours_flows = make_files(args, work)
        time_both(args, nf_files, nf_flows, gz, ours_flows)
    finally:
        if args.keep or args.reuse:
            print(f"files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def make_files(args, work):
    """The same stream into nfcapd and into our collector; both must store every flow."""
    # nfcapd
    nf_dir = os.path.join(work, "nfcapd")
    os.mkdir(nf_dir)
    port = free_port()
    proc = start([args.nfcapd, "-b", "127.0.0.1", "-p", str(port), "-w", nf_dir, "-B", "33554432"],
                 port, nf_dir)
    sent, options = generate(args, port)
    time.sleep(1)
    stop(proc)
    nf_files = sorted(glob.glob(os.path.join(nf_dir, "nfcapd.*")))
    if len(nf_files) != 1:
        sys.exit(f"expected one nfcapd file, found {nf_files}")
    info = subprocess.run([args.nfdump, "-r", nf_files[0], "-I"], capture_output=True, text=True,
                          check=True).stdout
    nf_flows = int(re.search(r"^Flows: (\d+)$", info, re.M).group(1))

    # netflow collector
    nc_dir = os.path.join(work, "collector")
    os.mkdir(nc_dir)
    port = free_port()
    gz = os.path.join(nc_dir, "flows.nfcol" if args.format == "columns" else "flows.gz")
    proc = start([args.netflow, "collector", "--listen", f"127.0.0.1:{port}", "-o", gz,
                  "--format", args.format, "--receive-buffer", "32M"], port, nc_dir)
    sent2, _ = generate(args, port)
    time.sleep(1)
    stop(proc)
    ours = collector_records(gz, args.format, args.netflow)

    # IPFIX options records are in the original layout's flows (as the
    # Python original stores them); nfcapd keeps only flows.
    ours_flows = ours - options if (args.format == "original" and args.version == 10) else ours
    print(f"sent {sent} flow records (+{options} options) twice; stored: collector {ours_flows}, "
          f"nfcapd {nf_flows}")
    if not (sent == sent2 == ours_flows == nf_flows):
        sys.exit("the two receivers did not store the same flows: lower --rate and retry")
    return nf_files, nf_flows, gz, ours_flows


def time_both(args, nf_files, nf_flows, gz, ours_flows):
    """Best of --repeat, alternating, and the cross-check of the top row."""

    ours_cmd = [args.netflow, "analyzer", "top", "--by", args.by, "--metric", "bytes", "-n", "10",
                "--output", "csv", "-f", gz]
    if args.threads:
        ours_cmd += ["--threads", str(args.threads)]
    nf_stat = "srcip/bytes" if args.by == "src" else "proto/bytes"
    nf_cmd = [args.nfdump, "-r", nf_files[0], "-s", nf_stat, "-n", "10", "-q", "-o", "csv"]
    t_ours = t_nf = None
    out_ours = out_nf = ""
    for _ in range(args.repeat):
        a, out_ours = best_of(ours_cmd, 1)
        b, out_nf = best_of(nf_cmd, 1)
        t_ours = a if t_ours is None else min(t_ours, a)
        t_nf = b if t_nf is None else min(t_nf, b)

    # Cross-check: the top source's (protocol's) bytes agree.
    top_ours = out_ours.splitlines()[1].split(",")
    ours_top = (top_ours[1], int(top_ours[4]))
    if args.by == "proto":
        ours_top = ({"TCP": "6", "UDP": "17", "ICMP": "1"}.get(ours_top[0], ours_top[0]), ours_top[1])
    nf_rows = [r.split(",") for r in out_nf.splitlines() if r and r[0].isdigit()]
    # nfdump csv stat columns: ts,te,td,pr,val,fl,flP,pkt,pktP,byt,...
    nf_top = (nf_rows[0][4], int(nf_rows[0][9])) if nf_rows else None
    agree = nf_top is not None and ours_top == nf_top
    print(f"top {args.by}: ours {ours_top}, nfdump {nf_top} -> {'agree' if agree else 'DISAGREE'}")

    size_gz = os.path.getsize(gz)
    size_nf = os.path.getsize(nf_files[0])
    kind = "" if args.format == "columns" else " gzip"
    print(f"files: collector {args.format}{kind} {size_gz:,} bytes, nfcapd {size_nf:,} bytes")
    print()
    print("| tool | command | flows | best of %d | flows/s |" % args.repeat)
    print("|---|---|---|---|---|")
    threads = f" --threads {args.threads}" if args.threads else ""
    print(f"| netflow analyzer ({args.format}) | top --by {args.by} --metric bytes{threads} | {ours_flows:,} | "
          f"{t_ours:.3f} s | {ours_flows / t_ours:,.0f} |")
    print(f"| nfdump 1.7.1 | -r FILE -s {nf_stat} | {nf_flows:,} | {t_nf:.3f} s | {nf_flows / t_nf:,.0f} |")
    print(f"\nratio ours / nfdump: {(ours_flows / t_ours) / (nf_flows / t_nf):.2f}x (target >= 3x)")
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
