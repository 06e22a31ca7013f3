#!/usr/bin/env bash
# Where the broker's CPU goes under a kbench load: the profile recipe.
#
#   bench/profile.sh [KBENCH ARGS...]      default: produce 1M x 1 KiB, acks=1, one partition
#
# Starts `strand broker` (release build, fresh data dir under /tmp) under `perf record -g`,
# runs ../shared/tools/kbench against it, stops the broker, and prints the hottest symbols
# of the broker process (self time). The raw profile stays in $OUT (default
# /tmp/strand-profile.data) for `perf report -i` or a flame graph:
#   perf script -i /tmp/strand-profile.data | inferno-collapse-perf | inferno-flamegraph > flame.svg
# (inferno: `cargo install inferno`). Needs `perf` (Debian: linux-perf).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KBENCH_DIR="${KBENCH_DIR:-$ROOT/../shared/tools/kbench}"
KB_TARGET="${KBENCH_TARGET_DIR:-/tmp/kbench-target}"
PORT="${PORT:-29393}"
OUT="${OUT:-/tmp/strand-profile.data}"
command -v perf >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf; }
cargo build --release -p strand --manifest-path "$ROOT/Cargo.toml"
[ -x "$KB_TARGET/release/kbench" ] || (cd "$KBENCH_DIR" && CARGO_TARGET_DIR="$KB_TARGET" cargo build --release)
if [ "$#" -eq 0 ]; then
    set -- produce --topic profile --partitions 1 --records 1000000 --record-size 1024 --acks 1
fi
DATA="$(mktemp -d /tmp/strand-profile.XXXXXX)"
trap 'rm -rf "$DATA"' EXIT
STRAND_LOG=warn perf record -g -o "$OUT" -- "$ROOT/target/release/strand" broker \
    --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$DATA/d" &
PERF_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"$KB_TARGET/release/kbench" "$@" --bootstrap "127.0.0.1:$PORT" | tail -n 3
# perf forwards SIGINT to the broker, which stops cleanly; then perf writes the profile.
kill -INT "$PERF_PID"
wait "$PERF_PID" || true
echo
echo "Broker self time by symbol (top 25), from $OUT:"
perf report -i "$OUT" --no-children --sort symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -n 25
