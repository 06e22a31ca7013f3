"""The Strand client (through the `strand produce`, `strand consume` and
`strand perf` commands) interoperating with real third-party clients.

- Records produced by the Strand producer, with every codec, keys and headers,
  are read intact by confluent-kafka and kafka-python consumers.
- Records produced by confluent-kafka and kafka-python (every codec, headers,
  explicit timestamps) are read intact by the Strand consumer.
- The Strand producer's default partitioner places keys where librdkafka's
  Java-compatible ``murmur2_random`` partitioner does.
- Strand consumers and confluent-kafka consumers share one group.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer as CKConsumer
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer

from conftest import strand_bin
from helpers import (consume_all, create_topic, producer, produce_all,
                     unique, wait_until)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CLI_TIMEOUT_S = 120


def strand(*args: str, input: bytes | None = None, timeout: float = CLI_TIMEOUT_S,
           check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(strand_bin()), *args], input=input, capture_output=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"strand {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stderr.decode(errors='replace')[-4000:]}")
    return proc


def lines_for(n: int, tag: str) -> bytes:
    # --parse-headers format: "h1:v1,h2:v2<TAB>key:value"
    return "".join(f"idx:{i},codec:{tag}\tk{i}:{tag}-value-{i}-{'x' * (i % 37)}\n"
                   for i in range(n)).encode()


@pytest.mark.parametrize("codec", CODECS)
def test_strand_producer_records_read_by_confluent_and_kafka_python(broker, codec):
    topic = unique(f"sp-{codec}")
    create_topic(broker.bootstrap, topic, partitions=3)
    n = 5000
    before_ms = int(time.time() * 1000)
    out = strand("produce", "-b", broker.bootstrap, "-t", topic, "-K", ":",
                 "--parse-headers", "-z", codec, "--acks", "all", "--output", "json",
                 input=lines_for(n, codec))
    after_ms = int(time.time() * 1000)
    summary = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert summary["records"] == n and summary["failed"] == 0, summary

    got = consume_all(broker.bootstrap, topic, range(3))
    msgs = [m for ms in got.values() for m in ms]
    assert len(msgs) == n
    seen = set()
    for m in msgs:
        key = m.key().decode()
        i = int(key[1:])
        seen.add(i)
        assert m.value().decode() == f"{codec}-value-{i}-{'x' * (i % 37)}"
        assert m.headers() == [("idx", str(i).encode()), ("codec", codec.encode())]
        ts_type, ts = m.timestamp()
        assert ts_type == 1 and before_ms - 1000 <= ts <= after_ms + 1000, (ts_type, ts)
    assert seen == set(range(n))

    kc = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                       enable_auto_commit=False, consumer_timeout_ms=10000, group_id=None)
    try:
        kp = {}
        for m in kc:
            kp[m.key.decode()] = (m.value.decode(), dict(m.headers))
            if len(kp) == n:
                break
    finally:
        kc.close()
    assert len(kp) == n
    assert kp["k42"] == (f"{codec}-value-42-{'x' * 5}", {"idx": b"42", "codec": codec.encode()})


@pytest.mark.parametrize("codec", CODECS)
def test_strand_consumer_reads_what_confluent_produces(broker, codec):
    topic = unique(f"sc-{codec}")
    create_topic(broker.bootstrap, topic, partitions=2)
    n = 3000
    ts0 = 1_700_000_000_000
    p = producer(broker.bootstrap, **{"compression.type": codec})
    produce_all(p, topic, ((f"k{i}".encode(), f"value {i} {codec}".encode(),
                            [("i", str(i).encode()), ("empty", b"")], ts0 + i)
                           for i in range(n)), partition=None)
    out = strand("consume", "-b", broker.bootstrap, "-t", topic, "--from-beginning",
                 "--output", "json", "-n", str(n), "--timeout-ms", "20000")
    recs = [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
    assert len(recs) == n
    by_key = {r["key"]: r for r in recs}
    assert len(by_key) == n
    for i in range(n):
        r = by_key[f"k{i}"]
        assert r["value"] == f"value {i} {codec}"
        assert r["timestamp"] == ts0 + i and r["timestamp_type"] == "CreateTime"
        assert r["headers"] == [["i", str(i)], ["empty", ""]]
    # Offsets within a partition come back in order, without gaps.
    for part in (0, 1):
        offs = [r["offset"] for r in recs if r["partition"] == part]
        assert offs == list(range(len(offs)))


@pytest.mark.parametrize("codec", CODECS)
def test_strand_consumer_reads_what_kafka_python_produces(broker, codec):
    topic = unique(f"kp-{codec}")
    create_topic(broker.bootstrap, topic, partitions=1)
    n = 2000
    ts0 = 1_650_000_000_000
    # kafka-python 3's default producer: idempotent with acks=all.
    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                       compression_type=None if codec == "none" else codec)
    try:
        futures = [kp.send(topic, key=f"k{i}".encode(), value=f"kafka-python {i}".encode(),
                           headers=[("src", b"kp"), ("i", str(i).encode())], timestamp_ms=ts0 + i)
                   for i in range(n)]
        kp.flush(timeout=60)
        offsets = [f.get(timeout=30).offset for f in futures]
    finally:
        kp.close(timeout=10)
    assert offsets == list(range(n))
    out = strand("consume", "-b", broker.bootstrap, "-t", topic, "--partition", "0",
                 "--offset", "earliest", "--output", "json", "-n", str(n), "--timeout-ms", "20000")
    recs = [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
    assert [r["offset"] for r in recs] == list(range(n))
    for i, r in enumerate(recs):
        assert (r["key"], r["value"], r["timestamp"]) == (f"k{i}", f"kafka-python {i}", ts0 + i)
        assert r["headers"] == [["src", "kp"], ["i", str(i)]]


def test_keys_land_on_the_same_partitions_as_murmur2_random(broker):
    topic_strand = unique("m2-strand")
    topic_ck = unique("m2-ck")
    for t in (topic_strand, topic_ck):
        create_topic(broker.bootstrap, t, partitions=7)
    keys = [f"user-{i}" for i in range(300)] + ["21", "foobar", "abc"]
    strand("produce", "-b", broker.bootstrap, "-t", topic_strand, "-K", ":",
           input="".join(f"{k}:v\n" for k in keys).encode())
    p = producer(broker.bootstrap, partitioner="murmur2_random")
    produce_all(p, topic_ck, ((k.encode(), b"v", None, None) for k in keys), partition=None)
    def placement(topic):
        got = consume_all(broker.bootstrap, topic, range(7))
        return {m.key().decode(): part for part, ms in got.items() for m in ms}
    a, b = placement(topic_strand), placement(topic_ck)
    assert len(a) == len(keys)
    assert a == b


def test_strand_and_confluent_consumers_share_a_group(broker_factory):
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0"})
    topic = unique("shared-group")
    group = unique("mixed")
    create_topic(broker.bootstrap, topic, partitions=4)
    n = 4000
    # One Strand consumer (its own process) and one confluent-kafka consumer.
    proc = subprocess.Popen([str(strand_bin()), "consume", "-b", broker.bootstrap, "-t", topic,
                             "-g", group, "--from-beginning", "--output", "json",
                             "-X", "partition.assignment.strategy=range",
                             "-X", "session.timeout.ms=10000", "-X", "heartbeat.interval.ms=500"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    strand_lines: list[dict] = []
    reader = threading.Thread(target=lambda: strand_lines.extend(
        json.loads(l) for l in proc.stdout if l.strip()), daemon=True)
    reader.start()
    ck = CKConsumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "partition.assignment.strategy": "range",
                     "heartbeat.interval.ms": 500, "session.timeout.ms": 10000,
                     "enable.auto.commit": True})
    ck_keys = set()
    a = AdminClient({"bootstrap.servers": broker.bootstrap})

    def poll_ck(seconds: float):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for m in ck.consume(num_messages=500, timeout=0.2):
                if m.error() is None:
                    ck_keys.add(m.key().decode())

    def both_members_own_two():
        poll_ck(0.5)
        desc = a.describe_consumer_groups([group])[group].result(timeout=10)
        owned = sorted(len(m.assignment.topic_partitions) for m in desc.members)
        return owned == [2, 2] and str(desc.state).endswith("STABLE")

    try:
        ck.subscribe([topic])
        wait_until(both_members_own_two, timeout=60, interval=0.1,
                   what="a Strand and a confluent-kafka member owning two partitions each")
        p = producer(broker.bootstrap)
        produce_all(p, topic, ((f"k{i}".encode(), f"v{i}".encode(), None, None) for i in range(n)),
                    partition=None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            poll_ck(0.5)
            if len(ck_keys | {r["key"] for r in list(strand_lines)}) >= n:
                break
    finally:
        ck.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    reader.join(timeout=10)
    strand_keys = {r["key"] for r in strand_lines}
    assert strand_keys and ck_keys, (len(strand_keys), len(ck_keys))
    assert strand_keys | ck_keys == {f"k{i}" for i in range(n)}
    assert proc.returncode == 0, proc.stderr.read().decode(errors="replace")[-2000:]


def test_perf_commands_report_throughput(broker):
    topic = unique("perf")
    out = strand("perf", "produce", "-b", broker.bootstrap, "-t", topic, "-n", "20000",
                 "-s", "512", "--partitions", "2", "--acks", "all", "--output", "json")
    r = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert r["records"] == 20000 and r["errors"] == 0, r
    assert r["records_per_s"] > 0 and r["ack_latency_ms"]["count"] == 20000
    assert r["ack_latency_ms"]["p50"] <= r["ack_latency_ms"]["p99"] <= r["ack_latency_ms"]["max"]
    out = strand("perf", "consume", "-b", broker.bootstrap, "-t", topic, "-n", "20000",
                 "--output", "json")
    c = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert c["records"] == 20000 and c["bytes"] == 20000 * 512, c
