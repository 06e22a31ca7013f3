#!/usr/bin/env python3
"""10,000 partitions: broker restart to serving, and a metadata request for all of them.

  .venv/bin/python bench/scale.py --strand target/release/strand [--topics 100 --partitions 100]

Creates TOPICS x PARTITIONS partitions with confluent-kafka's admin client on a fresh broker,
writes one record to every partition, stops the broker (SIGTERM), starts it again and measures
the time until it answers a full Metadata request with every partition (restart to serving),
then times 20 full Metadata requests (confluent-kafka's `list_topics`, so librdkafka's own
parsing is included) and reports their median and max.
"""
import argparse, os, signal, socket, statistics, subprocess, tempfile, time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ap = argparse.ArgumentParser()
ap.add_argument("--strand", required=True)
ap.add_argument("--topics", type=int, default=100)
ap.add_argument("--partitions", type=int, default=100)
ap.add_argument("--port", type=int, default=29595)
args = ap.parse_args()
BOOT = f"127.0.0.1:{args.port}"
DATA = tempfile.mkdtemp(prefix="strand-scale.")


def start():
    p = subprocess.Popen([args.strand, "broker", "--override", f"listeners=PLAINTEXT://{BOOT}",
                          "--override", f"log.dirs={DATA}/d"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "STRAND_LOG": "warn"})
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)


def full_metadata_s(a, timeout=60):
    t = time.monotonic()
    md = a.list_topics(timeout=timeout)
    n = sum(len(t.partitions) for name, t in md.topics.items() if not name.startswith("__"))
    return time.monotonic() - t, n


b = start()
a = AdminClient({"bootstrap.servers": BOOT})
deadline = time.monotonic() + 30
while True:
    try:
        a.list_topics(timeout=1)
        break
    except Exception:
        if time.monotonic() > deadline:
            raise
names = [f"scale-{i}" for i in range(args.topics)]
for chunk in range(0, len(names), 20):
    fs = a.create_topics([NewTopic(n, num_partitions=args.partitions, replication_factor=1)
                          for n in names[chunk:chunk + 20]], operation_timeout=120, request_timeout=120)
    for f in fs.values():
        f.result(timeout=180)
p = Producer({"bootstrap.servers": BOOT, "linger.ms": 50, "enable.idempotence": False})
for n in names:
    for part in range(args.partitions):
        p.produce(n, value=b"x", partition=part)
    p.poll(0)
assert p.flush(120) == 0
_, total = full_metadata_s(a)
stop(b)

t0 = time.monotonic()
b = start()
a = AdminClient({"bootstrap.servers": BOOT})
while True:
    try:
        _, n = full_metadata_s(a, timeout=1)
        if n == total:
            break
    except Exception:
        pass
    if time.monotonic() - t0 > 120:
        raise SystemExit("broker not serving after 120 s")
    time.sleep(0.02)
restart_s = time.monotonic() - t0
samples = [full_metadata_s(a)[0] * 1000 for _ in range(20)]
stop(b)
subprocess.run(["rm", "-rf", DATA])
print(f"| partitions | restart to serving s | full metadata ms, median (max) of 20 |")
print(f"|---|---|---|")
print(f"| {total:,} | {restart_s:.2f} | {statistics.median(samples):.1f} ({max(samples):.1f}) |")
