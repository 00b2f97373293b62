#!/usr/bin/env bash
# make-captures.sh - regenerate testdata/captures/ from real NetFlow/IPFIX exporters.
#
# What it does
#   1. scripts/synth_traffic.py writes testdata/captures/input-traffic.pcap: a
#      deterministic (fixed seed) ~2 minute Ethernet traffic mix (TCP 80/443/22/...,
#      DNS, mDNS, NTP, random UDP, ICMP, IPv6 TCP/UDP/ICMPv6, 802.1Q VLAN frames,
#      several TOS values).
#   2. Feeds that file to real exporters shipped by Debian 12, which export to
#      127.0.0.1:$PORT, while `tcpdump -i lo` records the export datagrams:
#        softflowd 1.1.0  (-r FILE: reads the pcap itself)  -> NetFlow v1/v5/v9, IPFIX
#        pmacctd 1.7.7    (pcap_savefile + nfprobe plugin)  -> NetFlow v5/v9, IPFIX
#        fprobe 1.1       (-i -: reads the pcap from stdin)  -> NetFlow v1/v5/v7
#      fprobe takes its flow times from the pcap, but its header times (sysUptime,
#      unix_secs) are wall clock and which flows share a datagram depends on when its
#      scan thread runs, so its captures differ from run to run in those respects.
#   3. Checks every capture with tshark (must decode as CFLOW, contain templates (v9/
#      IPFIX) and data, no malformed/expert errors), and checks the datagram count
#      against the exporter's own statistics where it prints them (softflowd).
#   4. Writes <name>.tshark.jsonl next to every capture with scripts/tshark_flows.py
#      (the independent ground truth for the Rust decoder tests).
#   testdata/captures/README.md documents every file (hand-written; the counts it
#   lists are printed by this script at the end, see the summary).
#
# Usage:   scripts/make-captures.sh [OUTDIR]        (default: testdata/captures)
#          env PORT=29055 (UDP port used on loopback), KEEP_WORK=1 keeps the temp dir,
#          EXPORTERS="softflowd pmacct fprobe" (the default) makes only the captures of
#          the exporters named; every capture in OUTDIR is verified either way.
# Needs:   root (tcpdump on lo), python3, tcpdump, tshark, softflowd, pmacct, fprobe:
#          echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
#          DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
#              tshark tcpdump softflowd pmacct fprobe python3
# Idempotent: every output file is rewritten from scratch.  input-traffic.pcap and the
#   softflowd captures' flow contents are deterministic (softflowd runs with -a, so all
#   its timestamps come from the pcap); what changes between runs is loopback metadata
#   (pcap record times, IP ids, the exporter's UDP source port) and, for pmacct, the
#   header times (sysUptime/unix_secs/exportTime are wall clock; flow start/end are
#   taken from the pcap) and, for the sampled pmacct capture, which packets are sampled
#   (pmacct samples randomly).
# Only loopback traffic is generated: a local UDP sink listens on 127.0.0.1:$PORT so that
# the exporters' connected sockets do not get ICMP port-unreachable errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/testdata/captures}
PORT=${PORT:-29055}
EXPORTERS=${EXPORTERS:-softflowd pmacct fprobe}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

wants() { [[ " $EXPORTERS " == *" $1 "* ]]; }
tools="python3 tcpdump tshark"
wants softflowd && tools+=" softflowd"
wants pmacct && tools+=" pmacctd"
wants fprobe && tools+=" fprobe"
for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (see 'Needs' at the top of $0)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "error: must run as root (tcpdump -i lo)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/make-captures.XXXXXX)
chmod 755 "$WORK"
SINK_PID=""
TCPDUMP_PID=""
cleanup() {
    [ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null || true
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

log() { printf '\n=== %s\n' "$*"; }

# ---------------------------------------------------------------- 1. input traffic
log "synthesizing input-traffic.pcap"
INPUT=$OUT/input-traffic.pcap
python3 "$ROOT/scripts/synth_traffic.py" "$INPUT"

# ---------------------------------------------------------------- UDP sink
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    s.recv(65535)
' "$PORT" &
SINK_PID=$!
sleep 0.5
kill -0 "$SINK_PID" || { echo "error: cannot bind UDP 127.0.0.1:$PORT (set PORT=...)" >&2; exit 1; }

# capture NAME CMD...: run CMD while recording datagrams sent to 127.0.0.1:$PORT
capture() {
    local name=$1; shift
    local pcap=$WORK/$name.pcap
    log "$name: $*"
    tcpdump -i lo -n -U -s 0 -Z root -w "$pcap" "udp and dst host 127.0.0.1 and dst port $PORT" \
        2>"$WORK/$name.tcpdump.log" &
    TCPDUMP_PID=$!
    for _ in $(seq 100); do
        grep -q 'listening on' "$WORK/$name.tcpdump.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q 'listening on' "$WORK/$name.tcpdump.log" || { cat "$WORK/$name.tcpdump.log"; exit 1; }
    if ! (cd "$WORK" && timeout 120 "$@") >"$WORK/$name.exporter.log" 2>&1; then
        cat "$WORK/$name.exporter.log"; echo "error: exporter failed" >&2; exit 1
    fi
    sleep 1
    kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true; TCPDUMP_PID=""
    grep -E 'packets (captured|dropped by kernel)' "$WORK/$name.tcpdump.log" | sed 's/^/  tcpdump: /'
    if grep -q '^[1-9][0-9]* packets dropped by kernel' "$WORK/$name.tcpdump.log"; then
        echo "error: tcpdump dropped packets" >&2; exit 1
    fi
    # softflowd prints "Flows exported: F (R records) in P packets (X failures)"
    local stats
    stats=$(grep -E '^Flows exported:' "$WORK/$name.exporter.log" || true)
    if [ -n "$stats" ]; then
        echo "  softflowd: $stats"
        local want got
        want=$(sed -E 's/.* in ([0-9]+) packets.*/\1/' <<<"$stats")
        got=$(tshark -r "$pcap" 2>/dev/null | wc -l)
        [ "$want" = "$got" ] || { echo "error: softflowd sent $want datagrams, captured $got" >&2; exit 1; }
        grep -q '(0 failures)' <<<"$stats" || { echo "error: softflowd send failures" >&2; exit 1; }
    fi
    cp "$pcap" "$OUT/$name.pcap"
}

# ---------------------------------------------------------------- 2a. softflowd
# -r FILE  read the pcap;  -a  take all times from the pcap (header unix_secs/uptime and
# flow times become deterministic instead of wall clock);  -d foreground;  -c none  no
# control socket (softflowd 1.1.0 in -r mode otherwise blocks in accept() on its control
# socket before reading the file);  at pcap EOF softflowd expires ("flushes") every flow
# and exits, so no timeout tuning is needed.  The file is given by a relative name (run in
# $WORK) because softflowd puts the first 16 bytes of it into the interfaceName (82) of its
# options record: "input-traffic.pc".
cp "$INPUT" "$WORK/input-traffic.pcap"
if wants softflowd; then
SF=(softflowd -d -a -c none -p "$WORK/softflowd.pid" -r input-traffic.pcap -n "127.0.0.1:$PORT")
capture softflowd-v1            "${SF[@]}" -v 1
capture softflowd-v5            "${SF[@]}" -v 5
capture softflowd-v9            "${SF[@]}" -v 9
capture softflowd-v9-sampled    "${SF[@]}" -v 9 -s 8
capture softflowd-v9-ether      "${SF[@]}" -v 9 -T ether
capture softflowd-ipfix         "${SF[@]}" -v 10
capture softflowd-ipfix-sampled "${SF[@]}" -v 10 -s 8
capture softflowd-ipfix-ether-milli "${SF[@]}" -v 10 -T ether -A milli
capture softflowd-ipfix-biflow-nano "${SF[@]}" -v 10 -b -A nano
fi

# ---------------------------------------------------------------- 2b. pmacct nfprobe
# networks_file gives pmacct origin ASNs and prefix lengths for src_as/dst_as/src_mask/dst_mask.
cat >"$WORK/networks.lst" <<'EOF'
64496,192.0.2.0/24
64497,198.51.100.0/24
64498,203.0.113.0/24
65001,10.0.0.0/16
65002,10.100.0.0/16
64499,2001:db8:ffff::/48
65001,2001:db8:1::/48
EOF
pmacct_conf() { # VERSION ENGINE EXTRA-LINES...
    local version=$1 engine=$2; shift 2
    cat <<EOF
daemonize: false
pcap_savefile: $INPUT
plugins: nfprobe[np]
nfprobe_receiver[np]: 127.0.0.1:$PORT
nfprobe_version[np]: $version
nfprobe_engine[np]: $engine
nfprobe_direction[np]: in
nfprobe_ifindex[np]: 3
networks_file: $WORK/networks.lst
pmacctd_as: file
pmacctd_net: file
EOF
    printf '%s\n' "$@"
}
AGG='aggregate[np]: src_host, dst_host, src_port, dst_port, proto, tos, tcpflags, src_mac, dst_mac, vlan, src_as, dst_as, src_mask, dst_mask'
pmacct_conf 5 1:2 >"$WORK/pmacct-v5.conf"
pmacct_conf 9 7 "$AGG" >"$WORK/pmacct-v9.conf"
pmacct_conf 10 7 "$AGG" >"$WORK/pmacct-ipfix.conf"
pmacct_conf 10 9 "$AGG" 'sampling_rate: 8' >"$WORK/pmacct-ipfix-sampled.conf"
if wants pmacct; then
    for name in pmacct-v5 pmacct-v9 pmacct-ipfix pmacct-ipfix-sampled; do
        capture "$name" pmacctd -f "$WORK/$name.conf"
    done
fi

# ---------------------------------------------------------------- 2c. fprobe
# -i - reads the pcap from stdin; at its end fprobe emits every flow it holds and exits.
# -q 100000: the queue between its capture and flow threads; at the default 100 a file
# read at full speed overflows it and packets are lost (the flow count then varies from
# run to run: 68 to 99 flows instead of 228). -f ip: IPv4 only (fprobe has no IPv6;
# 802.1Q-tagged frames are left out too). -x 3:5: input/output interface indexes, so
# that those fields are not all zero. -l 2: log to stdout, stay in the foreground.
if wants fprobe; then
    for version in 1 5 7; do
        capture "fprobe-v$version" sh -c \
            "exec fprobe -i - -f ip -q 100000 -x 3:5 -l 2 -n $version 127.0.0.1:$PORT <input-traffic.pcap"
    done
fi

# ---------------------------------------------------------------- 3. verify + 4. ground truth
log "verifying captures with tshark"
status=0
summary=""
for f in "$OUT"/softflowd-*.pcap "$OUT"/pmacct-*.pcap "$OUT"/fprobe-*.pcap; do
    name=$(basename "$f" .pcap)
    # -d is harmless when tshark already decodes the port as cflow
    dgrams=$(tshark -r "$f" 2>/dev/null | wc -l)
    cflow=$(tshark -r "$f" -d "udp.port==$PORT,cflow" -Y cflow 2>/dev/null | wc -l)
    # malformed, expert errors, or expert warnings other than softflowd's IPFIX sequence
    # numbers (it counts the records of the current message too, see README)
    bad=$(tshark -r "$f" -d "udp.port==$PORT,cflow" -Y '_ws.malformed || _ws.expert.severity >= 0x00800000 || (_ws.expert.severity == 0x00600000 && !(_ws.expert.message contains "Unexpected flow sequence"))' 2>/dev/null | wc -l)
    tmpl=$(tshark -r "$f" -d "udp.port==$PORT,cflow" -T fields -e cflow.template_id 2>/dev/null | tr ',' '\n' | grep -c . || true)
    if ! python3 "$ROOT/scripts/tshark_flows.py" --port "$PORT" "$f" >"$OUT/$name.tshark.jsonl"; then
        echo "  ^^^ tshark_flows.py FAILED" >&2; status=1
    fi
    recs=$(wc -l <"$OUT/$name.tshark.jsonl")
    line=$(printf '%-34s datagrams=%-3s cflow=%-3s templates=%-3s records=%-4s bad=%s' "$name" "$dgrams" "$cflow" "$tmpl" "$recs" "$bad")
    echo "$line"
    summary+="$line"$'\n'
    if [ "$dgrams" = 0 ] || [ "$cflow" != "$dgrams" ] || [ "$bad" != 0 ] || [ "$recs" = 0 ]; then
        echo "  ^^^ FAILED" >&2; status=1
    fi
    case $name in *v1|*v5|*v7) ;; *) [ "$tmpl" -gt 0 ] || { echo "  ^^^ no templates" >&2; status=1; } ;; esac
done
ls -l "$OUT"
exit $status
