#!/usr/bin/env bash
# Quick single measurements against one fresh broker, with the broker's CPU time from /proc.
# For looking at one change; bench/run.sh is the full, 3-round record.
#
#   bench/probe.sh produce  BINARY [KBENCH PRODUCE ARGS...]   1M x 1 KiB, one run
#   bench/probe.sh consume  BINARY [KBENCH CONSUME ARGS...]   produce 1M x 1 KiB, read it 3 times
#   bench/probe.sh latency  BINARY SECONDS [KBENCH LATENCY ARGS...]  10,000 records/s
#
# BINARY is a strand binary (e.g. target/release/strand); the broker listens on 127.0.0.1:$PORT
# (default 29405) with a data dir under /tmp, removed afterwards. kbench is taken from
# $KBENCH (default /tmp/kbench-target/release/kbench, as bench/run.sh builds it).
set -euo pipefail
MODE=$1 BIN=$2; shift 2
PORT="${PORT:-29405}"
KB="${KBENCH:-/tmp/kbench-target/release/kbench}"
BOOT="127.0.0.1:$PORT"
DATA="$(mktemp -d /tmp/strand-probe.XXXXXX)"
STRAND_LOG="${STRAND_LOG:-warn}" "$BIN" broker --override "listeners=PLAINTEXT://$BOOT" \
    --override "log.dirs=$DATA/d" >"$DATA/broker.log" 2>&1 &
BP=$!
trap 'kill -INT $BP 2>/dev/null; wait $BP 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
cpu() { awk '{print $14 + $15}' "/proc/$BP/stat"; }   # utime + stime, clock ticks
secs() { echo "scale=2; ($2 - $1) / $(getconf CLK_TCK)" | bc; }
field() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print($1)"; }

case "$MODE" in
produce)
    c0=$(cpu)
    "$KB" produce --bootstrap "$BOOT" --topic p --records 1000000 --record-size 1024 "$@" |
        field "f\"{d['mib_per_s']:.1f} MiB/s, ack p99 {d['ack_latency_ms']['p99']:.1f} ms\""
    echo "broker CPU $(secs "$c0" "$(cpu)") s; peak RSS $(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$BP/status") MiB"
    ;;
consume)
    "$KB" produce --bootstrap "$BOOT" --topic c --partitions 1 --records 1000000 --record-size 1024 --acks 1 >/dev/null
    for i in 1 2 3; do
        c0=$(cpu)
        "$KB" consume --bootstrap "$BOOT" --topic c --records 1000000 "$@" | field "f\"{d['mib_per_s']:.1f} MiB/s\""
        echo "  broker CPU $(secs "$c0" "$(cpu)") s"
    done
    ;;
latency)
    SECONDS_=$1; shift
    c0=$(cpu)
    "$KB" latency --bootstrap "$BOOT" --topic l --partitions 1 --duration-s "$SECONDS_" --drain-s 2 "$@" |
        field "'e2e ms: ' + ', '.join(f'{k} {d[\"e2e_latency_ms\"][k]:.2f}' for k in ('p50','p99','p999','max'))"
    used=$(( $(cpu) - c0 ))
    echo "broker CPU $(secs 0 "$used") s = $(echo "scale=1; $used * 1000000 / $(getconf CLK_TCK) / ($SECONDS_ * 10000)" | bc) µs per record"
    ;;
*) echo "usage: bench/probe.sh produce|consume|latency BINARY ..." >&2; exit 2 ;;
esac
