"""Interop with kafka-python (pure-Python client, 3.x).

kafka-python 3 picks request versions from the broker's ApiVersions answer
and enables idempotence by default (KIP-679 style). The producers here pass
enable_idempotence=False to test plain produce; the idempotent default is
tested in test_exactly_once.py.
"""

from __future__ import annotations

import os
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, KafkaAdminClient
from kafka.errors import (InvalidTopicError, TopicAlreadyExistsError,
                          UnknownTopicOrPartitionError)

from helpers import unique, wait_until

TIMEOUT_MS = 15_000


@pytest.fixture
def kadmin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap,
                         client_id="strand-interop-admin",
                         request_timeout_ms=TIMEOUT_MS)
    yield a
    a.close()


def make_producer(bootstrap, **conf):
    base = dict(bootstrap_servers=bootstrap, client_id="strand-interop-producer",
                enable_idempotence=False, acks="all", linger_ms=5,
                request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS)
    base.update(conf)
    return KafkaProducer(**base)


def make_consumer(bootstrap, **conf):
    base = dict(bootstrap_servers=bootstrap, client_id="strand-interop-consumer",
                group_id=None, enable_auto_commit=False, auto_offset_reset="none",
                request_timeout_ms=TIMEOUT_MS, check_crcs=True)
    base.update(conf)
    return KafkaConsumer(**base)


def poll_n(consumer, n, timeout=30.0):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"received {len(out)}/{n} records within {timeout}s")
        batches = consumer.poll(timeout_ms=500, max_records=n - len(out))
        for records in batches.values():
            out.extend(records)
    return out


def topic_meta(kadmin, topic):
    found = [t for t in kadmin.describe_topics([topic]) if t["name"] == topic]
    assert len(found) == 1, found
    return found[0]


def test_admin_topic_lifecycle(broker, kadmin):
    topic = unique("kp-admin")
    res = kadmin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1,
                                        "configs": {"retention.ms": "3600000"}}})
    assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic, 0)], res

    wait_until(lambda: topic in kadmin.list_topics(), timeout=15, what="topic listed")
    meta = topic_meta(kadmin, topic)
    assert meta["error_code"] == 0, meta
    parts = sorted(meta["partitions"], key=lambda p: p["partition_index"])
    assert [(p["partition_index"], p["error_code"], p["leader_id"],
             list(p["replica_nodes"]), list(p["isr_nodes"])) for p in parts] == \
        [(i, 0, 1, [1], [1]) for i in range(3)], parts

    # describe_configs (kafka-python filters to modified keys by default).
    cfg = kadmin.describe_configs([ConfigResource("TOPIC", topic)])
    modified = cfg["topic"][topic]
    assert modified["retention.ms"]["value"] == "3600000", modified
    assert "message.timestamp.type" not in modified, modified
    every = kadmin.describe_configs([ConfigResource("TOPIC", topic)], config_filter="all")
    assert every["topic"][topic]["message.timestamp.type"]["value"] == "CreateTime"

    # alter_configs: the client's default path (IncrementalAlterConfigs when
    # advertised), then the legacy AlterConfigs request.
    out = kadmin.alter_configs([ConfigResource("TOPIC", topic, configs={"retention.ms": "7200000"})])
    assert out == {"topic": {topic: "OK"}}, out
    modified = kadmin.describe_configs([ConfigResource("TOPIC", topic)])["topic"][topic]
    assert modified["retention.ms"]["value"] == "7200000", modified
    out = kadmin.alter_configs(
        [ConfigResource("TOPIC", topic, configs={"retention.bytes": "123456789"})],
        incremental=False)
    assert out == {"topic": {topic: "OK"}}, out
    modified = kadmin.describe_configs([ConfigResource("TOPIC", topic)])["topic"][topic]
    # kafka-python re-sends the other modified keys with a legacy AlterConfigs.
    assert modified["retention.ms"]["value"] == "7200000", modified
    assert modified["retention.bytes"]["value"] == "123456789", modified

    # Cluster and log dirs.
    cluster = kadmin.describe_cluster()
    assert cluster["controller_id"] == 1, cluster
    assert [(b["broker_id"], b["host"], b["port"]) for b in cluster["brokers"]] == \
        [(1, "127.0.0.1", broker.port)], cluster
    assert cluster["cluster_id"], cluster

    p = make_producer(broker.bootstrap)
    try:
        p.send(topic, b"x" * 1000, partition=0).get(timeout=30)
    finally:
        p.close(timeout=10)
    dirs = kadmin.describe_log_dirs()
    assert [d["broker"] for d in dirs] == [1], dirs
    log_dirs = dirs[0]["log_dirs"]
    assert [os.path.realpath(d["log_dir"]) for d in log_dirs] == \
        [os.path.realpath(broker.log_dir)], log_dirs
    assert log_dirs[0]["error_code"] == 0
    entry = [t for t in log_dirs[0]["topics"] if t["name"] == topic]
    assert len(entry) == 1, log_dirs[0]["topics"]
    sizes = {pp["partition_index"]: pp["partition_size"] for pp in entry[0]["partitions"]}
    assert sorted(sizes) == [0, 1, 2], entry
    assert sizes[0] > 1000 and sizes[1] == 0 and sizes[2] == 0, sizes

    # More partitions, then delete.
    kadmin.create_partitions({topic: 5})
    wait_until(lambda: len(topic_meta(kadmin, topic)["partitions"]) == 5, timeout=15,
               what="5 partitions")
    res = kadmin.delete_topics([topic])
    assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic, 0)], res
    wait_until(lambda: topic not in kadmin.list_topics(), timeout=15, what="topic deleted")
    assert topic_meta(kadmin, topic)["error_code"] == UnknownTopicOrPartitionError.errno


def test_create_existing_topic_raises(kadmin):
    topic = unique("kp-dup")
    kadmin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    with pytest.raises(TopicAlreadyExistsError):
        kadmin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    # The same through raise_errors=False: the code is in the response.
    res = kadmin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}},
                               raise_errors=False)
    assert [t["error_code"] for t in res["topics"]] == [TopicAlreadyExistsError.errno]
    assert len(topic_meta(kadmin, topic)["partitions"]) == 1


@pytest.mark.parametrize("name", ["bad name", "bad/name", "..", ".", "x" * 250, ""],
                         ids=["space", "slash", "dotdot", "dot", "too-long", "empty"])
def test_invalid_topic_name_raises(kadmin, name):
    with pytest.raises(InvalidTopicError):
        kadmin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}})
    assert name not in kadmin.list_topics()


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_producer_consumer_roundtrip(broker, kadmin, compression):
    topic = unique("kp-rt")
    kadmin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
    base_ts = int(time.time() * 1000) - 60_000
    n = 500
    records = [(b"key-%d" % i, b"value-%d-" % i + bytes([i % 256]) * (i % 40),
                [("idx", b"%d" % i), ("even", b"1" if i % 2 == 0 else b"0")],
                base_ts + i) for i in range(n)]

    p = make_producer(broker.bootstrap, compression_type=compression)
    try:
        futures = [p.send(topic, key=k, value=v, headers=h, partition=0, timestamp_ms=ts)
                   for k, v, h, ts in records]
        # A tombstone and a keyless record on the other partition.
        other = [p.send(topic, key=b"gone", value=None, partition=1),
                 p.send(topic, value=b"no key", partition=1)]
        p.flush(timeout=30)
        metas = [f.get(timeout=30) for f in futures]
        assert [(m.partition, m.offset) for m in metas] == [(0, i) for i in range(n)]
        assert [m.timestamp for m in metas] == [ts for *_, ts in records]
        assert [(m.partition, m.offset) for m in (f.get(timeout=30) for f in other)] == \
            [(1, 0), (1, 1)]
    finally:
        p.close(timeout=10)

    c = make_consumer(broker.bootstrap)
    try:
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        c.assign([tp0, tp1])
        c.seek_to_beginning()
        got = poll_n(c, n + 2)
        by_part = {0: [], 1: []}
        for r in got:
            by_part[r.partition].append(r)
        bad = []
        for i, (r, (k, v, h, ts)) in enumerate(zip(by_part[0], records)):
            if (r.offset, r.key, r.value, list(r.headers), r.timestamp, r.timestamp_type) != \
                    (i, k, v, h, ts, 0):
                bad.append((i, r))
        assert len(by_part[0]) == n and not bad, bad[:3]
        assert [(r.offset, r.key, r.value) for r in by_part[1]] == \
            [(0, b"gone", None), (1, None, b"no key")]

        assert c.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert c.end_offsets([tp0, tp1]) == {tp0: n, tp1: 2}
        found = c.offsets_for_times({tp0: base_ts + 123})
        assert found[tp0].offset == 123 and found[tp0].timestamp == base_ts + 123, found

        # Seek into the middle and re-read.
        c.seek(tp0, n - 3)
        tail = poll_n(c, 3)
        assert [(r.partition, r.offset) for r in tail] == [(0, n - 3), (0, n - 2), (0, n - 1)]
        # Nothing more arrives.
        assert c.poll(timeout_ms=1000) == {}
    finally:
        c.close()


def test_producer_auto_creates_topic(broker):
    topic = unique("kp-auto")
    p = make_producer(broker.bootstrap)
    try:
        meta = p.send(topic, key=b"k", value=b"v").get(timeout=30)
        assert (meta.topic, meta.offset) == (topic, 0)
    finally:
        p.close(timeout=10)
    c = make_consumer(broker.bootstrap)
    try:
        tp = TopicPartition(topic, meta.partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = poll_n(c, 1)
        assert [(r.key, r.value) for r in got] == [(b"k", b"v")]
    finally:
        c.close()


def test_consumer_on_empty_topic_waits_for_data(broker, kadmin):
    topic = unique("kp-empty")
    kadmin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    c = make_consumer(broker.bootstrap, fetch_max_wait_ms=200)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        assert c.poll(timeout_ms=1500) == {}
        assert c.end_offsets([tp]) == {tp: 0}
        p = make_producer(broker.bootstrap)
        try:
            p.send(topic, b"first", partition=0).get(timeout=30)
        finally:
            p.close(timeout=10)
        got = poll_n(c, 1, timeout=15)
        assert [(r.offset, r.value) for r in got] == [(0, b"first")]
    finally:
        c.close()
