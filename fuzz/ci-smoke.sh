#!/usr/bin/env bash
# Fuzz smoke test: build every cargo-fuzz target and run each for N seconds
# (default 30), starting from the committed seed corpus. Exits non-zero on any
# crash, panic, timeout (hang), out-of-memory, or build failure.
#
# Usage: fuzz/ci-smoke.sh [SECONDS]
# Environment:
#   FUZZ_TARGETS    targets to run (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER  none (default; the library is safe Rust) or address
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10)
#   FUZZ_RSS_MB     memory limit in MiB (default 2048)
#
# Works with stable Rust only: cargo-fuzz needs unstable compiler flags, which
# RUSTC_BOOTSTRAP=1 unlocks on a stable toolchain. Installs cargo-fuzz (from
# crates.io) and a C++ compiler (Debian: g++, for libFuzzer) when missing.
set -euo pipefail

seconds="${1:-30}"
sanitizer="${FUZZ_SANITIZER:-none}"
timeout="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
t0=$(date +%s)

if ! command -v cargo >/dev/null; then
    echo "ci-smoke: cargo not found (install Rust stable first)" >&2
    exit 2
fi
if ! command -v c++ >/dev/null && ! command -v clang++ >/dev/null; then
    echo "ci-smoke: no C++ compiler (libfuzzer-sys builds libFuzzer); installing g++" >&2
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
    else
        echo "ci-smoke: install a C++ compiler (apt-get install g++)" >&2
        exit 2
    fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "ci-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --version '^0.13'
fi
t_install=$(date +%s)

echo "ci-smoke: building targets (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer" -a
t_build=$(date +%s)

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
status=0
summary=""
for t in $targets; do
    # New inputs go to a scratch corpus (git-ignored); the committed seed corpus is read only.
    work="corpus-local/$t"
    mkdir -p "$work" "corpus/$t" "artifacts/$t"
    log="$(mktemp)"
    start=$(date +%s)
    set +e
    cargo fuzz run -s "$sanitizer" -a "$t" "$work" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}' | tail -1)
    line="$t: ${execs:-0} execs in $(($(date +%s) - start)) s"
    if [ "$rc" -ne 0 ]; then
        status=1
        line="$line: FAILED (exit $rc)"
        echo "---- $t: last lines of the libFuzzer log ----" >&2
        tail -n 60 "$log" >&2
        for a in artifacts/"$t"/*; do
            [ -f "$a" ] || continue
            echo "reproducer $a ($(wc -c <"$a") bytes), hex:" >&2
            od -An -tx1 -v "$a" | tr -d ' \n' | head -c 4096 >&2
            echo >&2
            echo "  rerun: cargo fuzz run -s $sanitizer -a $t $a" >&2
        done
    fi
    summary="$summary$line"$'\n'
    echo "$line"
    rm -f "$log"
done

t_end=$(date +%s)
echo "ci-smoke: cargo-fuzz install $((t_install - t0)) s, build $((t_build - t_install)) s, runs $((t_end - t_build)) s, total $((t_end - t0)) s"
printf '%s' "$summary"
if [ "$status" -ne 0 ]; then
    echo "ci-smoke: FAILED (see reproducers above; fuzz/artifacts/)" >&2
fi
exit "$status"
