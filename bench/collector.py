#!/usr/bin/env python3
"""Highest zero-loss rate on loopback of three receivers fed the same
`netflow generate` stream (issue 7):

  collector  `netflow collector` (release build), writing its default gzip file
             (<unix-seconds>.gz, Python original's line layout) in a temporary
             directory;
  columns    the same collector with --format columns (its binary block-columnar
             file, <unix-seconds>.nfcol);
  nfcapd     nfcapd from nfdump (Debian: /usr/bin/nfcapd), writing its default
             uncompressed files in a temporary directory;
  nfcapd-lz4 the same with -y: its blocks LZ4-compressed, as the columns
             collector's are (the comparison at equal compression);
  null       tools/null-receiver: recvmmsg and discard, the floor; with
             --gro (UDP GRO) as the collector receives (session 16), when
             the build has it, unless --null-no-gro (plain recvmmsg, one
             datagram a message, as issue 5 words the null receiver).

One run at a given rate: start the receiver, wait until its UDP socket is in
/proc/net/udp, run `netflow generate --rate R --duration D --seed 1
--prebuild` (the run's datagrams built in memory first, then sent on
schedule with sendmmsg: the same stream as without --prebuild, at rates the
building would not reach; the building time is not counted), wait
until the socket's kernel queue is empty, read the socket's kernel drop count
(/proc/net/udp), stop the receiver with SIGTERM, then count what it stored,
independently of its own counters:

  collector  flow records in its file (zcat, every line parsed as JSON, the
             lengths of the "flows" lists summed; for IPFIX the options
             records are among them, as in the Python original's layout);
  columns    the rows of its file's blocks, read here from the block headers
             (layout in crates/netflow-store/src/columns/mod.rs; header
             checksums checked with zlib.crc32): flow and options records;
  nfcapd     `nfdump -R DIR -I` "Flows:" (flows in the files it wrote; the
             same for nfcapd-lz4);
  null       datagrams it received (its JSON report).

Zero loss = stored == sent (flow records for collector and nfcapd, datagrams
for null; the generator's total line), the generator reported no send error,
and the receiver kept up: it was done (queue drained, process exited after
SIGTERM) at most --slack seconds after the last datagram was sent. Without
that last condition a short run measures queue sizes, not throughput: the
collector queues 65,536 datagrams internally, more than a 3 s run at 20,000
datagrams/s, and the kernel buffer holds thousands more. The rate (datagrams/s) is searched by doubling from --start until a
loss, then bisection, then the result is confirmed --confirm times (stepping
down 10 % on a failed confirmation). When the generator cannot reach the rate
asked (achieved < 95 %), the search stops there and the result is marked as
limited by the generator.

Rates are in export datagrams per second and in flow records per second.

  python3 bench/collector.py                      # full search, v5, v9, IPFIX
  python3 bench/collector.py --smoke              # one tiny round of each (CI)
  python3 bench/collector.py --versions 9 --receivers collector,null --duration 5

--gso: the generator hands runs of equal-sized datagrams to the kernel as
one UDP GSO send each (generate --gso): the receivers get the same
datagrams, the generator (which shares the 2 cores with them) spends far
less CPU on v5, whose datagrams are all one size (v9 and IPFIX datagrams
differ in size one to the next, so they gain little, unless --ipv6-percent
0 or 100 makes the flows, and so the data datagrams, all of one kind).

  python3 bench/collector.py --versions 5 --gso

CPU for the same stream (--cpu RATE): each receiver is fed the same stream
at RATE datagrams/s for --duration seconds (a rate every receiver keeps
up with, so all do the same work), --cpu-repeat times, the receivers
interleaved; the CPU time of the receiver process from its start to its
exit after SIGTERM (user + system, getrusage of the reaped child: every
thread, the final flush included), its minor page faults and context
switches, and the CPU time per thread read from /proc/PID/task just before
SIGTERM. Printed: the median CPU seconds per receiver, microseconds per
datagram, and the ratios to nfcapd and the null receiver measured in the
same run; a run that lost records is marked.

  python3 bench/collector.py --versions 9 --cpu 30000 --duration 5 --cpu-repeat 3

--replay CAPTURE: the stream is a real exporter's instead of the generator's:
`netflow replay --rate R --prebuild` of the capture's datagrams (read first,
then sent with sendmmsg; without --prebuild when the build has none or
--no-prebuild is given), the capture repeated as
often as the run needs (rate x duration datagrams, rounded to whole copies;
every copy the same datagrams from the same exporters, so templates stay
valid). Records expected: the capture's records (`netflow decode`) times the
copies. --versions is then ignored (the capture's datagrams are what they
are); the tables name the capture.

  python3 bench/collector.py --replay testdata/captures/pmacct-v9.pcap \
      --receivers columns,nfcapd,nfcapd-lz4 --cpu 40000 --duration 3

With --replay, --gso is `netflow replay --prebuild --gso`: each exporter's
runs of equal-sized datagrams as one GSO send.
"""
import argparse
import resource
import statistics
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
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECEIVERS = ("collector", "columns", "nfcapd", "nfcapd-lz4", "null")
VERSION_NAMES = {5: "v5", 9: "v9", 10: "IPFIX"}


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_row(port):
    """(rx_queue bytes, drops) of the IPv4 UDP socket bound to 127.0.0.1:port
    or 0.0.0.0:port, from /proc/net/udp (columns as the kernel's
    udp4_format_sock prints them), or None."""
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            cols = line.split()
            addr, hexport = cols[1].split(":")
            if int(hexport, 16) == port and addr in ("0100007F", "00000000"):
                rx_queue = int(cols[4].split(":")[1], 16)
                return rx_queue, int(cols[12])
    return None


def wait_bound(port, proc, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if udp_row(port) is not None:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode} before binding port {port}")
        time.sleep(0.02)
    raise RuntimeError(f"nothing bound UDP port {port} within {timeout} s")


def wait_drained(port, timeout=120.0):
    """Wait until the socket's kernel receive queue stayed empty for 0.3 s;
    returns its drop count then."""
    end = time.monotonic() + timeout
    empty_since = None
    while time.monotonic() < end:
        row = udp_row(port)
        if row is None:
            raise RuntimeError(f"socket on port {port} vanished")
        rx_queue, drops = row
        if rx_queue == 0:
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since >= 0.3:
                return drops
        else:
            empty_since = None
        time.sleep(0.05)
    raise RuntimeError(f"receive queue of port {port} not drained within {timeout} s")


class Receiver:
    """One receiver process in its own temporary directory."""

    def __init__(self, kind, args, port):
        self.kind, self.args, self.port = kind, args, port
        self.dir = tempfile.mkdtemp(prefix=f"bench-{kind}-")
        # Where the receiver writes (nfdump -R reads every file of it).
        self.out = os.path.join(self.dir, "out")
        os.mkdir(self.out)
        if kind in ("collector", "columns"):
            # Default output file (<unix-seconds>.gz or .nfcol in the working directory).
            cmd = [args.netflow, "collector", "--listen", f"127.0.0.1:{port}",
                   "--workers", str(args.workers)]
            if kind == "columns":
                cmd += ["--format", "columns"]
            if args.collector_has_receive_buffer:
                cmd += ["--receive-buffer", str(args.rcvbuf)]
        elif kind in ("nfcapd", "nfcapd-lz4"):
            cmd = [args.nfcapd, "-b", "127.0.0.1", "-p", str(port), "-w", self.out,
                   "-B", str(args.rcvbuf)]
            if kind == "nfcapd-lz4":
                cmd.append("-y")
        else:
            cmd = [args.null_receiver, "--listen", f"127.0.0.1:{port}",
                   "--idle-timeout", "0", "--rcvbuf", str(args.rcvbuf)]
            if args.null_gro:
                cmd.append("--gro")
        self.stdout = open(os.path.join(self.dir, "stdout"), "w+")
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen(cmd, cwd=self.out, stdout=self.stdout, stderr=self.stderr)
        wait_bound(port, self.proc)

    def threads_cpu(self):
        """CPU seconds per thread name now (from /proc/PID/task/*/stat)."""
        ticks = os.sysconf("SC_CLK_TCK")
        out = {}
        for stat in glob.glob(f"/proc/{self.proc.pid}/task/*/stat"):
            try:
                with open(stat) as f:
                    text = f.read()
            except OSError:
                continue
            name = text[text.index("(") + 1:text.rindex(")")]
            fields = text[text.rindex(")") + 2:].split()
            # utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the name.
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"{self.kind} did not exit within 120 s of SIGTERM")
        if self.proc.returncode != 0:
            raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}: {self.log()[-2000:]}")

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def stored(self):
        """What the receiver stored, counted from its output."""
        if self.kind == "collector":
            flows = 0
            for path in glob.glob(os.path.join(self.out, "*.gz")):
                with gzip.open(path, "rt") as f:
                    for line in f:
                        (export,) = json.loads(line).values()
                        flows += len(export["flows"])
            return flows
        if self.kind == "columns":
            return sum(columns_rows(p) for p in glob.glob(os.path.join(self.out, "*.nfcol")))
        if self.kind in ("nfcapd", "nfcapd-lz4"):
            if not glob.glob(os.path.join(self.out, "nfcapd.*")):
                return 0
            out = subprocess.run([self.args.nfdump, "-R", self.out, "-I"],
                                 capture_output=True, text=True, check=True).stdout
            return int(re.search(r"^Flows: (\d+)$", out, re.M).group(1))
        self.stdout.seek(0)
        return json.loads(self.stdout.read())["datagrams"]

    def cleanup(self):
        self.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def columns_rows(path):
    """Rows in the blocks of a columns file, from the block headers:
    "NFCB" | rows u32 | columns u16 | reserved u16 | body_len u32 | min i64 |
    max i64 | crc32 (of the 32 bytes before it and the directory)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"NFCOLS\r\n":
        raise RuntimeError(f"{path}: not a columns file")
    pos, rows = 16, 0
    while pos < len(data):
        if data[pos:pos + 4] == b"NFCF":
            (n,) = struct.unpack_from("<I", data, pos + 4)
            pos += 8 + 28 * n + 16
            continue
        if data[pos:pos + 4] != b"NFCB":
            raise RuntimeError(f"{path}: no block at offset {pos}")
        n, ncols, _, body = struct.unpack_from("<IHHI", data, pos + 4)
        crc = zlib.crc32(data[pos:pos + 32] + data[pos + 36:pos + 36 + 16 * ncols])
        if crc != struct.unpack_from("<I", data, pos + 32)[0] or pos + 36 + body > len(data):
            raise RuntimeError(f"{path}: damaged or cut block at offset {pos}")
        rows += n
        pos += 36 + body
    return rows


def generate(args, port, version, rate, duration, count=None):
    # The generator sends rate x duration datagrams (or --count), however
    # long that takes when it cannot keep up.
    limit = ["--count", str(count)] if count else ["--duration", str(duration)]
    cmd = [args.generator, "generate", "--target", f"127.0.0.1:{port}", "--version", str(version),
           "--rate", str(rate), *limit, "--seed", "1",
           "--start-time", "1700000000", "--exporters", str(args.exporters)]
    if args.prebuild:
        cmd.append("--prebuild")
        if args.gso:
            cmd.append("--gso")
    if args.ipv6_percent is not None and version in (9, 10):
        cmd += ["--ipv6-percent", str(args.ipv6_percent)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    total = re.search(r"^total .*packets (\d+) records (\d+) options (\d+) .*errors (\d+)$",
                      out.stdout, re.M)
    achieved = re.search(r"^rate requested \S+ achieved (\S+) elapsed (\S+)", out.stdout, re.M)
    if not total or not achieved:
        raise RuntimeError(f"generator output not understood: {out.stdout}{out.stderr}")
    built = re.search(r"^prebuild .* seconds (\S+)$", out.stdout, re.M)
    return {"packets": int(total.group(1)), "records": int(total.group(2)),
            "options": int(total.group(3)), "send_errors": int(total.group(4)), "achieved": float(achieved.group(1)),
            "elapsed": float(achieved.group(2)), "prebuild_s": float(built.group(1)) if built else 0.0}


def capture_counts(args):
    """Datagrams, flow records and options records of one copy of the
    --replay capture, and its NetFlow version (from `netflow decode`)."""
    out = subprocess.run([args.netflow, "decode", args.replay], capture_output=True, text=True)
    records = options = 0
    version = None
    for line in out.stdout.splitlines():
        d = json.loads(line)
        version = version or d["version"]
        if d["options"]:
            options += 1
        else:
            records += 1
    summary = re.search(r"packets (\d+), records (\d+), errors (\d+)", out.stderr)
    if not summary or version is None:
        raise RuntimeError(f"netflow decode {args.replay}: {out.stderr[-500:]}")
    datagrams = int(summary.group(1)) + int(summary.group(3))
    return {"datagrams": datagrams, "records": records, "options": options, "version": version}


# Copies of a --replay capture in one file when a run needs many.
MANY = 1000


def repeat_pcap(path, times, out):
    """Write a pcap of `path`'s packet records repeated `times` times; False
    when `path` is not a classic pcap (e.g. pcapng)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4",
                        b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        return False
    with open(out, "wb") as f:
        f.write(data[:24])
        for _ in range(times):
            f.write(data[24:])
    return True


def replay(args, port, rate, duration, count=None):
    """The --replay capture sent at `rate` datagrams/s, as many whole copies
    as rate x duration (or `count`) datagrams need; the same result as
    `generate`."""
    per = args.replay_counts
    want = count or int(rate * duration)
    copies = max(1, round(want / per["datagrams"]))
    # A short name for the capture: thousands of copies on one command line;
    # for more, a pcap of MANY copies (its packet records repeated) named
    # once per MANY, so that the command line stays short.
    with tempfile.TemporaryDirectory() as d:
        os.symlink(os.path.abspath(args.replay), os.path.join(d, "c"))
        files = ["c"] * copies
        if copies > MANY and repeat_pcap(args.replay, MANY, os.path.join(d, "m")):
            files = ["m"] * (copies // MANY) + ["c"] * (copies % MANY)
        cmd = [args.generator, "replay", "--target", f"127.0.0.1:{port}", "--rate", str(rate),
               *(["--prebuild"] if args.replay_prebuild else []),
               *(["--gso"] if args.gso else []), *files]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=d)
    total = re.search(r"^total exporters \d+ datagrams (\d+) bytes \d+ errors (\d+)$", out.stdout, re.M)
    achieved = re.search(r"^rate achieved (\S+) elapsed (\S+)", out.stdout, re.M)
    if not total or not achieved:
        raise RuntimeError(f"replay output not understood: {out.stdout}{out.stderr}")
    if int(total.group(1)) != per["datagrams"] * copies:
        raise RuntimeError(f"replay sent {total.group(1)} datagrams, expected "
                           f"{per['datagrams']} x {copies} (`netflow decode` counts differently)")
    # --prebuild: the reading, before the first datagram is sent.
    built = re.search(r"^prebuild .* seconds (\S+)$", out.stdout, re.M)
    return {"packets": int(total.group(1)), "records": per["records"] * copies,
            "options": per["options"] * copies, "send_errors": int(total.group(2)),
            "achieved": float(achieved.group(1)), "elapsed": float(achieved.group(2)),
            "prebuild_s": float(built.group(1)) if built else 0.0}


def send(args, port, version, rate, duration, count=None):
    """The run's stream: the generator's, or the --replay capture's."""
    if args.replay:
        return replay(args, port, rate, duration, count)
    return generate(args, port, version, rate, duration, count)


def run_once(args, kind, version, rate, duration, count=None):
    port = free_port()
    r = Receiver(kind, args, port)
    try:
        started = time.monotonic()
        sent = send(args, port, version, rate, duration, count)
        drops = wait_drained(port)
        r.stop()
        # From the first datagram sent to everything received (and, for the
        # collector, its queue decoded and the file closed); a prebuilding
        # generator builds everything before it sends the first.
        busy = time.monotonic() - started - sent["prebuild_s"]
        stored = r.stored()
    finally:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()
        r.cleanup()
    if kind == "null":
        expected = sent["packets"]
    elif kind == "columns":
        # Every record is a row: flow and options records (v9 and IPFIX).
        expected = sent["records"] + sent["options"]
    elif kind == "collector" and (args.replay_counts or {}).get("version", version) == 10:
        # The Python original's layout writes IPFIX options records as flows
        # (spec/original.md, collector output); v9 options are not written.
        expected = sent["records"] + sent["options"]
    else:
        expected = sent["records"]
    result = dict(receiver=kind, version=version, rate=rate, duration=duration, stored=stored,
                  expected=expected, kernel_drops=drops, busy_s=round(busy, 3), **sent)
    # Seconds the receiver needed after the last datagram was sent: its
    # backlog (kernel queue, internal queues, final flush).
    result["backlog_s"] = round(busy - sent["elapsed"], 3)
    result["lossless"] = stored == expected and sent["send_errors"] == 0
    result["kept_up"] = result["backlog_s"] <= args.slack
    result["zero_loss"] = result["lossless"] and result["kept_up"]
    result["generator_limited"] = sent["achieved"] < 0.95 * rate
    if args.verbose:
        print("   ", json.dumps(result), flush=True)
    return result


def processed_rate(run):
    """Flow records a receiver stored per second of being busy (first
    datagram sent to done), whatever was lost: its throughput when the run
    overloads it. For the null receiver, datagrams times records each."""
    stored = run["stored"]
    if run["receiver"] == "null" and run["packets"]:
        stored *= run["records"] / run["packets"]
    return stored / run["busy_s"] if run["busy_s"] > 0 else 0.0


def search(args, kind, version):
    """Highest zero-loss rate (datagrams/s): doubling, bisection, confirmation."""
    runs = []

    def trial(rate):
        res = run_once(args, kind, version, int(rate), args.duration)
        runs.append(res)
        return res

    good, bad, limited = None, None, False
    rate = args.start
    while rate <= args.max_rate:
        res = trial(rate)
        if not res["zero_loss"]:
            bad = rate
            break
        good = res
        if res["generator_limited"]:
            limited = True
            break
        if rate == args.max_rate:
            # No loss at --max-rate (or what a prebuilt run can hold): a lower bound.
            limited = True
            break
        # Doubling, the last step to --max-rate itself: a receiver that
        # takes more than half of it is then tried at it, not reported as
        # "at least half of it".
        rate = min(rate * 2, args.max_rate)
    else:
        # No loss up to --max-rate (or what a prebuilt run can hold): a lower bound.
        limited = good is not None
    if good is None:
        return {"rate": 0, "runs": runs, "limited": False, "good": None,
                "processed": max(processed_rate(r) for r in runs)}
    if bad is not None:
        lo, hi = good["rate"], bad
        while hi / lo > 1 + args.precision:
            mid = int((lo * hi) ** 0.5)
            res = trial(mid)
            if res["zero_loss"]:
                lo, good = mid, res
                if res["generator_limited"]:
                    limited = True
                    break
            else:
                hi = mid
    # Confirm: every repeat must be lossless, else step down.
    rate = good["rate"]
    while rate >= args.start:
        repeats = [trial(rate) for _ in range(args.confirm)]
        if all(r["zero_loss"] for r in repeats):
            good = min(repeats, key=lambda r: r["achieved"])
            break
        rate = int(rate * 0.9)
    else:
        return {"rate": 0, "runs": runs, "limited": False, "good": None,
                "processed": max(processed_rate(r) for r in runs)}
    records_per_datagram = good["records"] / good["packets"] if good["packets"] else 0
    limited = limited or good["generator_limited"]
    if limited:
        # The receiver took all the generator could send: a lower bound.
        rate = int(good["achieved"])
    return {"rate": rate, "processed": max(processed_rate(r) for r in runs), "achieved": good["achieved"], "limited": limited,
            "records_per_datagram": records_per_datagram, "runs": runs, "good": good}


def generator_ceiling(args, version):
    """Datagrams/s the generator reaches unpaced into the null receiver
    (a short calibration run, then one of about --duration seconds)."""
    unpaced = 100_000_000
    res = run_once(args, "null", version, unpaced, None, count=20_000)
    count = int(min(res["achieved"], args.max_rate) * args.duration)
    res = run_once(args, "null", version, unpaced, None, count=count)
    return res["achieved"], res


def cpu_once(args, kind, version, rate):
    """One run of the CPU measurement: the receiver's CPU seconds (all
    threads, start to exit), page faults, context switches, per thread."""
    port = free_port()
    r = Receiver(kind, args, port)
    try:
        sent = send(args, port, version, rate, args.duration)
        drops = wait_drained(port)
        threads = r.threads_cpu()
        # Only the receiver is reaped between the two readings (the
        # generator was reaped by subprocess.run above).
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        stored = r.stored()
    finally:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()
        r.cleanup()
    if kind == "null":
        expected = sent["packets"]
    elif kind == "columns" or (kind == "collector" and (args.replay_counts or {}).get("version", version) == 10):
        expected = sent["records"] + sent["options"]
    else:
        expected = sent["records"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = dict(receiver=kind, version=version, rate=rate, cpu_s=round(cpu, 3),
                  user_s=round(after.ru_utime - before.ru_utime, 3),
                  sys_s=round(after.ru_stime - before.ru_stime, 3),
                  page_faults=after.ru_minflt - before.ru_minflt,
                  context_switches=(after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw),
                  threads={k: round(v, 2) for k, v in sorted(threads.items(), key=lambda kv: -kv[1])},
                  stored=stored, expected=expected, kernel_drops=drops,
                  lossless=stored == expected and sent["send_errors"] == 0, **sent)
    if args.verbose:
        print("   ", json.dumps(result), flush=True)
    return result


def cpu_table(args, receivers):
    """CPU for the same stream, every receiver, --cpu-repeat rounds interleaved."""
    print(f"CPU for the same stream: {args.cpu:,} datagrams/s for {args.duration} s, "
          f"{args.cpu_repeat} rounds; load average {os.getloadavg()[0]:.2f} before", flush=True)
    all_runs = []
    for version in args.versions:
        runs = {k: [] for k in receivers}
        for _ in range(args.cpu_repeat):
            for kind in receivers:
                runs[kind].append(cpu_once(args, kind, version, args.cpu))
        all_runs.extend(r for rs in runs.values() for r in rs)
        median = {k: statistics.median(r["cpu_s"] for r in rs) for k, rs in runs.items()}
        print(f"\n{VERSION_NAMES[version]}: load average {os.getloadavg()[0]:.2f} after")
        print("| receiver | CPU s (median) | all runs | µs per datagram | page faults | context switches "
              "| vs nfcapd | vs nfcapd-lz4 | vs null receiver | threads (CPU s, median run) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for kind, rs in runs.items():
            mid = sorted(rs, key=lambda r: r["cpu_s"])[len(rs) // 2]
            lost = [r for r in rs if not r["lossless"]]

            def ratio(other):
                if other not in median or other == kind or not median[other]:
                    return "-"
                return f"{median[kind] / median[other]:.2f}"

            threads = ", ".join(f"{n} {c:.2f}" for n, c in mid["threads"].items() if c >= 0.01)
            every = ", ".join(f"{r['cpu_s']:.2f}" for r in rs)
            print(f"| {kind} | {median[kind]:.2f} | {every}"
                  f"{f' ({len(lost)} with LOSS)' if lost else ''} | "
                  f"{median[kind] / mid['packets'] * 1e6:.1f} | {mid['page_faults']:,} | "
                  f"{mid['context_switches']:,} | {ratio('nfcapd')} | {ratio('nfcapd-lz4')} | {ratio('null')} | {threads} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(all_runs, f, indent=1)


def smoke(args, receivers):
    """One tiny round of each receiver and version: must be lossless."""
    failures = 0
    for version in args.versions:
        for kind in receivers:
            res = run_once(args, kind, version, 2000, 1)
            ok = res["lossless"]
            failures += not ok
            print(f"smoke {kind:10} {VERSION_NAMES[version]:5}: sent {res['expected']} stored {res['stored']} "
                  f"kernel drops {res['kernel_drops']} -> {'ok' if ok else 'LOSS'}", flush=True)
    return failures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--netflow", default=os.path.join(target_dir(), "release", "netflow"))
    p.add_argument("--generator", help="the netflow binary whose `generate` sends the stream "
                   "[default: --netflow] (to measure another collector build with the same stream)")
    p.add_argument("--null-receiver", default=os.path.join(target_dir(), "release", "null-receiver"))
    p.add_argument("--null-no-gro", action="store_true",
                   help="the null receiver without UDP GRO: recvmmsg of one datagram per message, "
                        "as issue 5 words it (default: with --gro, as the collector receives)")
    p.add_argument("--gso", action="store_true",
                   help="the generator sends with UDP GSO (generate --gso, with --prebuild): the same "
                        "datagrams for less of its CPU. Only runs of equal-sized datagrams gain: v5 "
                        "(every datagram 1,464 bytes) unpaced 220,000 -> 634,000/s here; v9 and IPFIX "
                        "datagrams differ in size one to the next and gain little (see --ipv6-percent)")
    p.add_argument("--ipv6-percent", type=int, metavar="PERCENT",
                   help="v9/IPFIX: generate --ipv6-percent (share of IPv6 flows, 30 by default): 0 or "
                        "100 makes every data datagram one size, so --gso sends them in long runs")
    p.add_argument("--nfcapd", default=shutil.which("nfcapd") or "/usr/bin/nfcapd")
    p.add_argument("--nfdump", default=shutil.which("nfdump") or "/usr/bin/nfdump")
    p.add_argument("--receivers", default=",".join(RECEIVERS))
    p.add_argument("--versions", default="5,9,10")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    p.add_argument("--slack", type=float, default=1.5,
                   help="a run counts only if the receiver was done this many seconds after the last "
                        "datagram (so queues cannot hide a receiver slower than the rate)")
    p.add_argument("--start", type=int, default=1000, help="first rate tried, datagrams/s")
    p.add_argument("--max-rate", type=int, default=2_000_000)
    p.add_argument("--precision", type=float, default=0.1, help="bisection stops at hi/lo <= 1+this")
    p.add_argument("--confirm", type=int, default=2, help="repeats that must all be lossless")
    p.add_argument("--exporters", type=int, default=1)
    p.add_argument("--workers", type=int, default=1, help="netflow collector --workers")
    p.add_argument("--rcvbuf", type=int, default=32 << 20,
                   help="receive buffer asked by all three (nfcapd -B, null-receiver --rcvbuf, "
                        "collector --receive-buffer); the kernel caps it at net.core.rmem_max "
                        "unless the receiver may use SO_RCVBUFFORCE")
    p.add_argument("--prebuild", action=argparse.BooleanOptionalAction, default=None,
                   help="netflow generate --prebuild: every datagram built before the clock starts, "
                        "then sent with sendmmsg, so the sending, not the building, is the generator's "
                        "limit [default: when the generator has it]")
    p.add_argument("--json", help="write every run to this file")
    p.add_argument("--smoke", action="store_true", help="one tiny lossless round of each (< 30 s)")
    p.add_argument("--cpu", type=int, metavar="RATE",
                   help="instead of the search: CPU seconds of each receiver for the same stream "
                        "at RATE datagrams/s for --duration seconds")
    p.add_argument("--cpu-repeat", type=int, default=3, help="rounds of --cpu (median reported)")
    p.add_argument("--replay", metavar="CAPTURE",
                   help="the stream: this capture's datagrams (netflow replay --rate), repeated, "
                        "instead of the generator's; --versions is ignored")
    p.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = p.parse_args()
    args.versions = [int(v) for v in args.versions.split(",")]
    args.replay_counts = None
    args.generator = args.generator or args.netflow
    for attr in ("netflow", "generator", "null_receiver", "nfcapd", "nfdump"):
        setattr(args, attr, os.path.abspath(getattr(args, attr)))
    receivers = [r for r in args.receivers.split(",") if r]
    for r in receivers:
        if r not in RECEIVERS:
            p.error(f"unknown receiver {r}")
    for path in (args.netflow, args.null_receiver):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} not found: cargo build --release -p netflow-cli -p null-receiver")
    # Same kernel buffer asked by all three (older collectors ask 32 MiB themselves).
    help_text = subprocess.run([args.netflow, "collector", "--help"], capture_output=True, text=True).stdout
    args.collector_has_receive_buffer = "--receive-buffer" in help_text
    generate_help = subprocess.run([args.generator, "generate", "--help"], capture_output=True, text=True).stdout
    if args.gso and "--gso" not in generate_help:
        sys.exit(f"{args.generator} generate has no --gso")
    if args.ipv6_percent is not None and "--ipv6-percent" not in generate_help:
        sys.exit(f"{args.generator} generate has no --ipv6-percent")
    null_help = subprocess.run([args.null_receiver, "--help"], capture_output=True, text=True).stdout
    args.null_gro = "--gro" in null_help and not args.null_no_gro
    if args.prebuild is None:
        args.prebuild = "--prebuild" in generate_help
    if args.prebuild:
        # The generator holds a run's datagrams (<= 1472 bytes each) in at
        # most 4 GiB: the highest rate a run of --duration can have.
        args.max_rate = min(args.max_rate, int((4 << 30) / 1472 / args.duration))
    if args.replay:
        args.replay_counts = capture_counts(args)
        replay_help = subprocess.run([args.generator, "replay", "--help"], capture_output=True,
                                     text=True).stdout
        # Read first, then sent with sendmmsg (as generate --prebuild).
        args.replay_prebuild = args.prebuild is not False and "--prebuild" in replay_help
        if args.gso and not (args.replay_prebuild and "--gso" in replay_help):
            sys.exit(f"{args.generator} replay has no --gso (or --prebuild is off)")
        # One "version": the capture, by name in the tables.
        args.versions = [0]
        VERSION_NAMES[0] = os.path.basename(args.replay)
        print(f"stream: {args.replay} ({args.replay_counts['datagrams']} datagrams, "
              f"{args.replay_counts['records']} records, {args.replay_counts['options']} options "
              f"records a copy), netflow replay --rate", flush=True)
    if not os.access(args.nfcapd, os.X_OK):
        for kind in ("nfcapd", "nfcapd-lz4"):
            if kind in receivers:
                print(f"warning: {args.nfcapd} not found (apt-get install nfdump); {kind} skipped",
                      file=sys.stderr)
                receivers.remove(kind)

    if args.smoke:
        started = time.monotonic()
        failures = smoke(args, receivers)
        print(f"smoke: {failures} failure(s) in {time.monotonic() - started:.1f} s")
        sys.exit(1 if failures else 0)

    if args.cpu:
        cpu_table(args, receivers)
        return

    print(f"duration {args.duration} s per run, {args.exporters} exporter(s), start {args.start}/s, "
          f"confirm x{args.confirm}, collector workers {args.workers}", flush=True)
    results, ceilings, all_runs = {}, {}, []
    for version in args.versions:
        ceiling, res = generator_ceiling(args, version)
        ceilings[version] = ceiling
        all_runs.append(res)
        print(f"{VERSION_NAMES[version]}: generator unpaced into the null receiver: "
              f"{ceiling:,.0f} datagrams/s ({res['records'] / max(res['elapsed'], 1e-9):,.0f} records/s), "
              f"stored {res['stored']} of {res['expected']}", flush=True)
        for kind in receivers:
            found = search(args, kind, version)
            results[(kind, version)] = found
            all_runs.extend(found["runs"])
            g = found["good"]
            if g is None:
                print(f"  {kind:10}: loss even at {args.start}/s", flush=True)
                continue
            print(f"  {kind:10}: {found['rate']:,} datagrams/s zero loss "
                  f"({found['rate'] * found['records_per_datagram']:,.0f} records/s)"
                  f"{'  [generator-limited]' if found['limited'] else ''}; "
                  f"{len(found['runs'])} runs", flush=True)

    print(f"\nzero loss: every record stored and done <= {args.slack} s after the last datagram, "
          f"{args.duration} s runs; processed: best records stored per busy second over all runs")
    print("| version | receiver | zero-loss datagrams/s | zero-loss records/s | vs nfcapd | vs nfcapd-lz4 "
          "| vs null receiver | processed records/s |")
    print("|---|---|---|---|---|---|---|---|")
    for version in args.versions:
        for kind in receivers:
            f = results[(kind, version)]
            rec = f["rate"] * f.get("records_per_datagram", 0)

            def ratio(other):
                o = results.get((other, version))
                if not o or not o["rate"] or other == kind:
                    return "-"
                return f"{f['rate'] / o['rate']:.2f}"

            mark = " (generator limit: at least)" if f["limited"] else ""
            print(f"| {VERSION_NAMES[version]} | {kind} | {f['rate']:,}{mark} | {rec:,.0f} | "
                  f"{ratio('nfcapd')} | {ratio('nfcapd-lz4')} | {ratio('null')} | {f['processed']:,.0f} |")
    print("\ngenerator ceiling (unpaced, into the null receiver): " +
          ", ".join(f"{VERSION_NAMES[v]} {c:,.0f}/s" for v, c in ceilings.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(all_runs, f, indent=1)


if __name__ == "__main__":
    main()
