#!/usr/bin/env bash
# Soak test of `netflow collector`: generators of NetFlow v5, v9 and IPFIX
# (several exporters each, v9 with late templates) send to one collector for
# DURATION seconds at a fixed rate while the collector's resident memory is
# sampled from /proc/PID/status. Then it checks:
#   - stored == sent per exporter: the flow and options records read back from
#     the collector's gzip output (--format flows lines name their exporter)
#     equal what each generator reports having sent;
#   - memory: after the warm-up, the median RSS of every window (a tenth of
#     the run, at least 30 s) is within +-10% of the first window's (a leak or
#     an unbounded cache would grow past it; single samples move with the
#     queues' momentary backlog).
# Prints a summary; exits 0 when both hold, 1 otherwise, 2 on a setup error.
#
# Usage: scripts/soak.sh DURATION
# Environment (defaults in brackets):
#   RATE      packets per second over all generators [300]
#   EXPORTERS exporters per version [3]
#   SAMPLE    seconds between RSS samples [5]
#   WARMUP    seconds before the memory reference sample [min(30, DURATION/4)]
#   NETFLOW   the netflow binary [target/release/netflow, built if missing]
#   KEEP      1: keep the work directory (collector output, logs) [0]
#   FORMAT    the collector's --format: flows, or columns (flow records
#             per exporter read back with `netflow analyzer top --by
#             exporter`, options records as the total written less the
#             flows) [flows]
set -euo pipefail

duration="${1:-}"
if ! [[ "$duration" =~ ^[0-9]+$ ]] || [ "$duration" -lt 10 ]; then
    echo "usage: $0 DURATION_SECONDS (>= 10)" >&2
    exit 2
fi
rate="${RATE:-300}"
format="${FORMAT:-flows}"
case "$format" in
    flows) out_name=flows.gz ;;
    columns) out_name=flows.nfcol ;;
    *) echo "soak: FORMAT must be flows or columns" >&2; exit 2 ;;
esac
exporters="${EXPORTERS:-3}"
sample="${SAMPLE:-5}"
warmup="${WARMUP:-$(( duration / 4 < 30 ? duration / 4 : 30 ))}"
root="$(cd "$(dirname "$0")/.." && pwd)"
netflow="${NETFLOW:-$root/target/release/netflow}"
if [ ! -x "$netflow" ]; then
    echo "soak: building $netflow" >&2
    (cd "$root" && cargo build --release -p netflow-cli) >&2
fi
command -v python3 >/dev/null || { echo "soak: python3 is needed to read the output back" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/netflow-soak.XXXXXX")"
collector_pid=""
gen_pids=()
cleanup() {
    for p in "${gen_pids[@]}" $collector_pid; do
        kill "$p" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "soak: work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# A free UDP port on loopback.
port="$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

"$netflow" collector --host 127.0.0.1 --port "$port" -o "$work/$out_name" --format "$format" \
    --stats 30 >"$work/collector.out" 2>"$work/collector.err" &
collector_pid=$!
for _ in $(seq 50); do
    grep -q "listening on" "$work/collector.out" "$work/collector.err" 2>/dev/null && break
    sleep 0.1
done
if ! kill -0 "$collector_pid" 2>/dev/null; then
    echo "soak: the collector did not start:" >&2
    cat "$work/collector.err" >&2
    exit 2
fi

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# One generator per version, the rate split between them. v9 exporters send
# their first data before their templates (the collector must keep and replay it).
per_version_rate="$(python3 -c "print($rate / 3)")"
start=$(date +%s)
for version in 5 9 10; do
    extra=()
    [ "$version" = 9 ] && extra=(--late-templates 1)
    "$netflow" generate --target "127.0.0.1:$port" --version "$version" \
        --exporters "$exporters" --rate "$per_version_rate" --duration "$duration" \
        --template-refresh 20 "${extra[@]}" >"$work/gen-v$version.out" 2>"$work/gen-v$version.err" &
    gen_pids+=($!)
done

# Sample the collector's RSS while the generators run.
: >"$work/rss.tsv"
running() {
    for p in "${gen_pids[@]}"; do
        kill -0 "$p" 2>/dev/null && return 0
    done
    return 1
}
while running; do
    printf '%s\t%s\n' "$(( $(date +%s) - start ))" "$(rss_kib "$collector_pid")" >>"$work/rss.tsv"
    sleep "$sample"
done
gen_status=0
for p in "${gen_pids[@]}"; do
    wait "$p" || gen_status=1
done
gen_pids=()
printf '%s\t%s\n' "$(( $(date +%s) - start ))" "$(rss_kib "$collector_pid")" >>"$work/rss.tsv"

# Let the last datagrams drain, then stop the collector as systemd would.
sleep 2
kill -TERM "$collector_pid"
collector_status=0
wait "$collector_pid" || collector_status=$?
collector_pid=""

python3 - "$work" "$warmup" "$duration" "$rate" "$gen_status" "$collector_status" "$format" "$netflow" <<'PY'
import gzip, json, re, subprocess, sys
from collections import Counter

work, warmup, duration, rate, gen_status, collector_status, fmt, netflow = sys.argv[1:]
warmup, duration = int(warmup), int(duration)
failures = []

# Sent, per exporter, from the generators' summary lines.
sent = {}
for version in ("5", "9", "10"):
    for line in open(f"{work}/gen-v{version}.out"):
        m = re.match(r"exporter (\S+) version (\d+) domain \d+ packets (\d+) records (\d+) options (\d+)", line)
        if m:
            sent[m.group(1)] = (int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)))
if not sent:
    failures.append("no generator summary lines")

# Stored, per exporter: flow records and options records in the output.
# Lines start with the same keys in the same order ("received", "exporter",
# ..., "options"); they are read with a regex (a full JSON parse of tens of
# millions of lines takes a quarter of an hour), any other line with json.
# A columns file: flows per exporter from the analyzer, options only as a
# total (the collector's "written" less the flows).
flows, options = Counter(), Counter()
options_total = None
if fmt == "flows":
    prefix = re.compile(rb'\{"received":[^,]*,"exporter":"([^"]*)","version":\d+,"domain":(?:\d+|null),"template_id":\d+,"options":(true|false),')
    counts = Counter()
    with gzip.open(f"{work}/flows.gz", "rb") as f:
        for line in f:
            m = prefix.match(line)
            if m:
                counts[(m.group(1).decode(), m.group(2) == b"true")] += 1
            else:
                rec = json.loads(line)
                counts[(rec["exporter"], bool(rec.get("options")))] += 1
    for (exporter, is_options), n in counts.items():
        (options if is_options else flows)[exporter] += n
else:
    top = json.loads(subprocess.run(
        [netflow, "analyzer", "top", "--by", "exporter", "-n", "100000", "--output", "json",
         "-f", f"{work}/flows.nfcol"], check=True, capture_output=True, text=True).stdout)
    for row in top["rows"]:
        flows[row["key"]] += row["flows"]
    written = None
    for name in ("collector.out", "collector.err"):
        for line in open(f"{work}/{name}", errors="replace"):
            m = re.match(r"total .* written (\d+) ", line)
            if m:
                written = int(m.group(1))
    if written is None:
        failures.append("no collector total line (written N)")
    else:
        options_total = written - sum(flows.values())

print(f"soak: {duration} s at {rate} packets/s, {len(sent)} exporters")
print(f"{'exporter':<24} {'version':>7} {'packets':>8} {'sent':>9} {'stored':>9} {'opt sent':>8} {'opt stored':>10}")
total_sent = total_stored = 0
for exp, (version, packets, records, opts) in sorted(sent.items()):
    stored, stored_opts = flows.get(exp, 0), options.get(exp, 0)
    if options_total is not None:
        stored_opts = opts  # compared as a total below
    total_sent += records + opts
    total_stored += stored + stored_opts
    mark = "" if (stored, stored_opts) == (records, opts) else "  MISMATCH"
    print(f"{exp:<24} {version:>7} {packets:>8} {records:>9} {stored:>9} {opts:>8} {stored_opts:>10}{mark}")
    if mark:
        failures.append(f"{exp}: sent {records}+{opts} stored {stored}+{stored_opts}")
for exp in sorted(set(flows) | set(options)):
    if exp not in sent:
        failures.append(f"records from unknown exporter {exp}")
if options_total is not None:
    opts_sent = sum(v[3] for v in sent.values())
    print(f"options records sent {opts_sent} stored {options_total} (totals: per exporter in flows format only)")
    if options_total != opts_sent:
        failures.append(f"options: sent {opts_sent} stored {options_total}")
        total_stored += options_total - opts_sent
print(f"total records sent {total_sent} stored {total_stored}")

# Memory after the warm-up: the median of each window of WINDOW seconds
# (a tenth of the run, at least 30 s) against the first window's. Single
# samples move with the queues' momentary backlog (a busy machine makes the
# collector queue datagrams, then free them); a leak or an unbounded cache
# moves the medians.
samples = [tuple(map(int, l.split())) for l in open(f"{work}/rss.tsv") if l.strip()]
after = [(t, kib) for t, kib in samples if t >= warmup and kib > 0]
print("rss samples (s: MiB): " + " ".join(f"{t}:{kib / 1024:.1f}" for t, kib in samples))
window = max(30, (duration - warmup) // 10)
windows = {}
for t, kib in after:
    windows.setdefault((t - warmup) // window, []).append(kib)
medians = [sorted(v)[len(v) // 2] for _, v in sorted(windows.items()) if len(v) >= 2]
if len(medians) < 2:
    failures.append(f"fewer than 2 windows of RSS samples after the {warmup} s warm-up")
else:
    ref = medians[0]
    lo, hi = min(medians), max(medians)
    print(f"rss medians per {window} s after the {warmup} s warm-up (MiB): "
          + " ".join(f"{m / 1024:.1f}" for m in medians))
    print(f"rss: first window {ref / 1024:.1f} MiB, windows {lo / 1024:.1f}..{hi / 1024:.1f} "
          f"({(lo / ref - 1) * 100:+.1f}% / {(hi / ref - 1) * 100:+.1f}%); "
          f"samples {min(k for _, k in after) / 1024:.1f}..{max(k for _, k in after) / 1024:.1f}")
    if lo < 0.9 * ref or hi > 1.1 * ref:
        failures.append("RSS (window medians) moved more than 10% after the warm-up")

if gen_status != "0":
    failures.append("a generator failed (see gen-v*.err)")
if collector_status != "0":
    failures.append(f"the collector exited with status {collector_status} on SIGTERM")
# The collector's exit summary (standard output or error, by version).
for name in ("collector.out", "collector.err"):
    for line in open(f"{work}/{name}", errors="replace"):
        if line.startswith("total "):
            print("collector: " + line.strip())
if failures:
    print("soak: FAILED")
    for f in failures:
        print("  - " + f)
    sys.exit(1)
print("soak: OK")
PY
