#!/usr/bin/env bash
# Exactly-once benchmarks (issue 10), each case against a fresh broker, ROUNDS rounds (default
# 3), medians (min-max) appended to bench/RESULTS.md:
#
#   - produce 1M x 1 KiB, acks=all, 1 partition, plain vs idempotent: kbench (librdkafka,
#     --idempotence; librdkafka then counts *records* against its limit of 5 in flight per
#     partition, so it sends one request at a time per partition: plain runs with its default
#     and with max.in.flight.requests.per.connection 5 and 1, to compare like with like) and
#     `strand perf produce` (-X enable.idempotence=false vs the default);
#   - transactions of 100 records (`strand perf produce --transaction-size 100`): commits per
#     second and commit latency p50 / p99;
#   - consume the transactional topic with kbench, read_uncommitted vs read_committed.
#
#   bench/eos.sh [ROUNDS]
#
# kbench is taken from $KBENCH (default /tmp/kbench-target/release/kbench, built from
# $KBENCH_DIR if missing, as bench/run.sh does); the broker listens on 127.0.0.1:$PORT.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
PORT="${PORT:-29406}"
BOOT="127.0.0.1:$PORT"
BIN="$ROOT/target/release/strand"
KBENCH_DIR="${KBENCH_DIR:-$ROOT/../shared/tools/kbench}"
KB="${KBENCH:-/tmp/kbench-target/release/kbench}"
RECORDS="${RECORDS:-1000000}"
TXN_RECORDS="${TXN_RECORDS:-200000}"

cargo build --release -p strand --manifest-path "$ROOT/Cargo.toml" >&2
if [ ! -x "$KB" ]; then
    CARGO_TARGET_DIR=/tmp/kbench-target cargo build --release --manifest-path "$KBENCH_DIR/Cargo.toml" >&2
fi

BP=""
DATA=""
start_broker() {
    DATA="$(mktemp -d /tmp/strand-eos.XXXXXX)"
    # This VM hands freed memory back to its host, so the first write to a page faults there
    # (bench/RESULTS.md, "warm vs cold"): touch 2 GiB first, so every case starts alike.
    dd if=/dev/zero of="$DATA/warm" bs=1M count=2048 status=none
    rm -f "$DATA/warm"
    STRAND_LOG=warn "$BIN" broker --override "listeners=PLAINTEXT://$BOOT" \
        --override "log.dirs=$DATA/d" >"$DATA/broker.log" 2>&1 &
    BP=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return; sleep 0.1; done
    echo "broker did not start" >&2; exit 1
}
stop_broker() {
    kill -INT "$BP" 2>/dev/null || true
    wait "$BP" 2>/dev/null || true
    rm -rf "$DATA"
}
trap stop_broker EXIT
last_json() { python3 -c "import json,sys; print(json.dumps(json.loads(sys.stdin.read().strip().splitlines()[-1])))"; }

OUT="$(mktemp /tmp/strand-eos-results.XXXXXX)"
for round in $(seq "$ROUNDS"); do
    # Plain and idempotent alternate who goes first, round by round.
    if [ $((round % 2)) -eq 1 ]; then
        order="kbench-plain kbench-plain5 kbench-plain1 kbench-idempotent perf-plain perf-idempotent txn consume"
    else
        order="kbench-idempotent kbench-plain1 kbench-plain5 kbench-plain perf-idempotent perf-plain txn consume"
    fi
    for case in $order; do
        start_broker
        case "$case" in
        kbench-plain) r=$("$KB" produce --bootstrap "$BOOT" --topic p --partitions 1 --records "$RECORDS" --record-size 1024 --acks all | last_json) ;;
        kbench-plain1) r=$("$KB" produce --bootstrap "$BOOT" --topic p --partitions 1 --records "$RECORDS" --record-size 1024 --acks all -X max.in.flight.requests.per.connection=1 | last_json) ;;
        kbench-plain5) r=$("$KB" produce --bootstrap "$BOOT" --topic p --partitions 1 --records "$RECORDS" --record-size 1024 --acks all -X max.in.flight.requests.per.connection=5 | last_json) ;;
        kbench-idempotent) r=$("$KB" produce --bootstrap "$BOOT" --topic p --partitions 1 --records "$RECORDS" --record-size 1024 --acks all --idempotence | last_json) ;;
        perf-plain) r=$("$BIN" perf produce -b "$BOOT" --topic p --partitions 1 --num-records "$RECORDS" --record-size 1024 --acks all -X enable.idempotence=false --progress-s 0 --output json | last_json) ;;
        perf-idempotent) r=$("$BIN" perf produce -b "$BOOT" --topic p --partitions 1 --num-records "$RECORDS" --record-size 1024 --acks all --progress-s 0 --output json | last_json) ;;
        txn) r=$("$BIN" perf produce -b "$BOOT" --topic t --partitions 1 --num-records "$TXN_RECORDS" --record-size 1024 --acks all --transactional-id bench --transaction-size 100 --progress-s 0 --output json | last_json) ;;
        consume)
            "$BIN" perf produce -b "$BOOT" --topic t --partitions 1 --num-records "$RECORDS" --record-size 1024 --acks all --transactional-id bench --transaction-size 100 --progress-s 0 --output json >/dev/null
            # A first read warms the page cache; then one of each, alternating who goes first.
            "$KB" consume --bootstrap "$BOOT" --topic t --records "$RECORDS" >/dev/null
            if [ $((round % 2)) -eq 1 ]; then
                u=$("$KB" consume --bootstrap "$BOOT" --topic t --records "$RECORDS" -X isolation.level=read_uncommitted | last_json)
                c=$("$KB" consume --bootstrap "$BOOT" --topic t --records "$RECORDS" -X isolation.level=read_committed | last_json)
            else
                c=$("$KB" consume --bootstrap "$BOOT" --topic t --records "$RECORDS" -X isolation.level=read_committed | last_json)
                u=$("$KB" consume --bootstrap "$BOOT" --topic t --records "$RECORDS" -X isolation.level=read_uncommitted | last_json)
            fi
            r="{\"uncommitted\": $u, \"committed\": $c}"
            ;;
        esac
        stop_broker
        echo "{\"round\": $round, \"case\": \"$case\", \"result\": $r}" >>"$OUT"
        echo "round $round $case done" >&2
    done
done

python3 - "$OUT" "$ROUNDS" <<'PY' >>"$ROOT/bench/RESULTS.md"
import json, platform, statistics, subprocess, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(xs):
    return f"{statistics.median(xs):,.1f} ({min(xs):,.1f}–{max(xs):,.1f})"
def pick(case, f):
    return [f(r["result"]) for r in rows if r["case"] == case]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"\n## Exactly-once ({datetime.date.today()}, commit {commit}, {platform.node()}, "
      f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores)\n")
print(f"`bench/eos.sh {sys.argv[2]}`: a fresh broker per case, 1 KiB records, acks=all, one partition; "
      "medians (min–max) of the rounds.\n")
print("| case | MiB/s | ack p99 ms |")
print("|---|---|---|")
for case, label in [("kbench-plain", "kbench, plain"), ("kbench-plain5", "kbench, plain, max.in.flight 5"),
                    ("kbench-plain1", "kbench, plain, max.in.flight 1"),
                    ("kbench-idempotent", "kbench, --idempotence"),
                    ("perf-plain", "strand perf, enable.idempotence=false"), ("perf-idempotent", "strand perf, idempotent (default)")]:
    mib = pick(case, lambda r: r["mib_per_s"])
    p99 = pick(case, lambda r: r["ack_latency_ms"]["p99"])
    print(f"| {label} | {med(mib)} | {med(p99)} |")
for a, b, who in [("kbench-plain", "kbench-idempotent", "kbench"),
                  ("kbench-plain5", "kbench-idempotent", "kbench, plain at 5 in flight"),
                  ("kbench-plain1", "kbench-idempotent", "kbench, plain at 1 request in flight (what librdkafka's idempotent producer sends per partition)"),
                  ("perf-plain", "perf-idempotent", "strand perf")]:
    ratio = [y / x * 100 for x, y in zip(pick(a, lambda r: r["mib_per_s"]), pick(b, lambda r: r["mib_per_s"]))]
    print(f"\nIdempotent / plain, {who}, same round: {med(ratio)} %")
tps = pick("txn", lambda r: r["commits_per_s"])
p50 = pick("txn", lambda r: r["commit_latency_ms"]["p50"])
p99 = pick("txn", lambda r: r["commit_latency_ms"]["p99"])
mib = pick("txn", lambda r: r["mib_per_s"])
print(f"\nTransactions of 100 records (`strand perf produce --transaction-size 100`): "
      f"{med(tps)} commits/s, commit latency p50 {med(p50)} ms, p99 {med(p99)} ms; {med(mib)} MiB/s.\n")
u = pick("consume", lambda r: r["uncommitted"]["mib_per_s"])
c = pick("consume", lambda r: r["committed"]["mib_per_s"])
ratio = [y / x * 100 for x, y in zip(u, c)]
print(f"kbench consume of that transactional topic: read_uncommitted {med(u)} MiB/s, "
      f"read_committed {med(c)} MiB/s; committed / uncommitted {med(ratio)} %.")
PY
echo "appended to bench/RESULTS.md" >&2
