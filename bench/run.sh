#!/usr/bin/env bash
# Benchmarks Strand with the neutral librdkafka-based kbench (../shared/tools/kbench).
#
#   bench/run.sh [ROUNDS] [ONLY-REGEX]
#
# Builds strand and kbench (release), then runs kbench's matrix runner, which starts a fresh
# broker (empty data dir) for every case, samples its idle and peak RSS and CPU, and reports
# median (min-max) over the rounds. Then bench/client.py runs the same produce and consume
# jobs with `strand perf` and with kbench, a fresh broker each, and reports the broker's CPU
# per GiB. Both summaries are printed and appended to bench/RESULTS.md with the date, the
# machine and the exact command. Default: every case of the matrix (issue 6's workloads:
# acks=1/all, 1 and 6 partitions, none/lz4, consume, latency at 10,000 records/s with and
# without linger.ms=0), 3 rounds: about 25 minutes on 2 cores. CLIENT=0 skips client.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KBENCH_DIR="${KBENCH_DIR:-$ROOT/../shared/tools/kbench}"
ROUNDS="${1:-3}"
ONLY="${2:-.}"
PORT="${PORT:-29292}"

# kbench builds librdkafka from source: cmake and a few -dev packages.
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
for p in libcurl4-openssl-dev libssl-dev libsasl2-dev zlib1g-dev; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ "${#need[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release -p strand --manifest-path "$ROOT/Cargo.toml"
KB_TARGET="${KBENCH_TARGET_DIR:-/tmp/kbench-target}"
(cd "$KBENCH_DIR" && CARGO_TARGET_DIR="$KB_TARGET" cargo build --release)

DATA="$(mktemp -d /tmp/strand-bench.XXXXXX)"
OUT="$(mktemp /tmp/strand-bench.XXXXXX.jsonl)"
trap 'rm -rf "$DATA"' EXIT
START="rm -rf $DATA/d && exec $ROOT/target/release/strand broker --override listeners=PLAINTEXT://127.0.0.1:$PORT --override log.dirs=$DATA/d"
CMD=(python3 "$KBENCH_DIR/bench.py" --kbench "$KB_TARGET/release/kbench" --start "$START" --port "$PORT" --rounds "$ROUNDS" --only "$ONLY" --out "$OUT")
STRAND_LOG=warn "${CMD[@]}"
SUMMARY="$(python3 "$KBENCH_DIR/bench.py" --summarize "$OUT")"
echo "$SUMMARY"
{
    echo
    echo "## $(date -u +%Y-%m-%d) — $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), commit $(git -C "$ROOT" rev-parse --short HEAD)"
    echo
    echo "Command: \`bench/run.sh $ROUNDS '$ONLY'\` (kbench: \`bench.py --rounds $ROUNDS --only '$ONLY' --start 'strand broker ...'\`)"
    echo
    echo "$SUMMARY"
} >> "$ROOT/bench/RESULTS.md"

if [ "${CLIENT:-1}" != 0 ]; then
    python3 "$ROOT/bench/client.py" --strand "$ROOT/target/release/strand" \
        --kbench "$KB_TARGET/release/kbench" --rounds "$ROUNDS" --results "$ROOT/bench/RESULTS.md"
fi
