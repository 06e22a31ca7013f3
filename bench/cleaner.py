#!/usr/bin/env python3
"""Compaction benchmark: the cleaner's throughput, and producer latency with and without it.

    .venv/bin/python bench/cleaner.py --strand target/release/strand --kbench /tmp/kbench-target/release/kbench

For each mode (cleaner off, cleaner on) it starts a fresh broker, fills a compacted topic with
--mb MiB of 1 KiB updates over --keys keys, rolls its last segment, then runs kbench latency
(--rate records/s, --seconds s) on another topic while the cleaner (if on) compacts. The
cleaner's MB/s comes from the broker's own "compacted" log lines. Prints a Markdown table.
"""
import argparse, json, os, re, shutil, signal, socket, subprocess, tempfile, time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ap = argparse.ArgumentParser()
ap.add_argument("--strand", required=True)
ap.add_argument("--kbench", required=True)
ap.add_argument("--mb", type=int, default=300)
ap.add_argument("--keys", type=int, default=10_000)
ap.add_argument("--rate", type=int, default=5_000)
ap.add_argument("--seconds", type=int, default=20)
ap.add_argument("--io-limit", default="1.7976931348623157E308", help="log.cleaner.io.max.bytes.per.second")
args = ap.parse_args()


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def run(cleaner: bool):
    port = free_port()
    data = tempfile.mkdtemp(prefix="strand-cleaner-bench.")
    log_path = os.path.join(data, "broker.log")
    cmd = [args.strand, "broker", "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}", "--override", f"log.dirs={data}/d",
           "--override", f"log.cleaner.enable={'true' if cleaner else 'false'}", "--override", "log.cleaner.backoff.ms=500",
           "--override", f"log.cleaner.io.max.bytes.per.second={args.io_limit}"]
    with open(log_path, "w") as log:
        broker = subprocess.Popen(cmd, stderr=log, stdout=log, env={**os.environ, "NO_COLOR": "1"})
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
            except OSError:
                assert time.time() < deadline, "broker did not start"; time.sleep(0.1)
        b = f"127.0.0.1:{port}"
        a = AdminClient({"bootstrap.servers": b})
        for f in a.create_topics([NewTopic("compacted", 1, 1, config={
                "cleanup.policy": "compact", "segment.bytes": str(32 << 20), "segment.ms": "2000",
                "min.cleanable.dirty.ratio": "0.01"})]).values():
            f.result()
        p = Producer({"bootstrap.servers": b, "linger.ms": 20, "batch.size": 1 << 20, "queue.buffering.max.kbytes": 1 << 20})
        value = b"v" * 1000
        for i in range(args.mb * 1024):
            while True:
                try:
                    p.produce("compacted", key=b"key-%d" % (i % args.keys), value=value, partition=0); break
                except BufferError:
                    p.poll(0.05)
        p.flush(300)
        time.sleep(2.1)
        p.produce("compacted", key=b"roll", value=b"x", partition=0); p.flush(30)
        lat = subprocess.run([args.kbench, "latency", "--bootstrap", b, "--topic", "lat", "--partitions", "1",
                              "--rate", str(args.rate), "--duration-s", str(args.seconds)], capture_output=True, text=True, timeout=300)
        result = json.loads(lat.stdout.strip().splitlines()[-1])
        time.sleep(1)
        text = open(log_path).read()
        passes = [(float(m.group(1)), float(m.group(2))) for m in re.finditer(r"compacted partition=compacted-0 .*?read_mb=([\d.]+) .*?mb_per_s=([\d.]+)", text)]
        return result, passes
    finally:
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:
            broker.kill()
        shutil.rmtree(data, ignore_errors=True)


rows = []
for cleaner in (False, True):
    res, passes = run(cleaner)
    ack, e2e = res["ack_latency_ms"], res["e2e_latency_ms"]
    big = max(passes, default=(0, 0))
    rows.append((cleaner, ack["p50"], ack["p99"], e2e["p50"], e2e["p99"], big))
print(f"| cleaner | ack p50 ms | ack p99 ms | e2e p50 ms | e2e p99 ms | largest pass: MB read, MB/s |")
print("|---|---|---|---|---|---|")
for cleaner, a50, a99, e50, e99, (mb, mbs) in rows:
    print(f"| {'on' if cleaner else 'off'} | {a50:.2f} | {a99:.2f} | {e50:.2f} | {e99:.2f} | {f'{mb:.0f} MB at {mbs:.0f} MB/s' if cleaner else '-'} |")
