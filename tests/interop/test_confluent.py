"""Interop with confluent-kafka (librdkafka 2.16): bulk produce/consume with
every compression codec and acks level, timestamp lookups, LogAppendTime
topics and the AdminClient."""

from __future__ import annotations

import time
import warnings

import pytest
from confluent_kafka import (TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME,
                             KafkaError, KafkaException, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic, OffsetSpec,
                                   ResourceType)

from helpers import (DeliveryLog, admin, consume_range, consumer, create_topic,
                     expect_empty, first_mismatches, produce_all, producer, unique,
                     wait_until)

N_RECORDS = 100_000
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ACKS = ["0", "1", "all"]

_FILLER = bytes(range(32, 127)) * 3


def make_dataset(n: int, base_ts: int):
    """n records: distinct keys and values (49..98 bytes, some binary),
    1-2 headers each (a null-valued third one now and then) and strictly
    increasing explicit timestamps base_ts + 3*i."""
    records = []
    for i in range(n):
        key = b"key-%07d" % i
        start = i % 90
        value = (b"value-%07d|" % i) + bytes([i % 256]) + _FILLER[start:start + 35 + i % 50]
        headers = [("seq", b"%d" % i)]
        if i % 2:
            headers.append(("bin", bytes([(i * 7) % 256, 0, 255])))
        if i % 5000 == 0:
            headers.append(("nullh", None))
        records.append((key, value, headers, base_ts + 3 * i))
    return records


@pytest.fixture(scope="module")
def dataset():
    # An hour in the past: well inside any timestamp-skew window.
    base_ts = int(time.time() * 1000) - 3_600_000
    return base_ts, make_dataset(N_RECORDS, base_ts)


def source_of(entry: ConfigEntry) -> int:
    return int(getattr(entry.source, "value", entry.source))


def kafka_error_code(exc: BaseException):
    if isinstance(exc, KafkaException):
        return exc.args[0].code()
    return None


# ---------------------------------------------------------------------------
# Bulk round trip
# ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("acks", ACKS)
@pytest.mark.parametrize("codec", CODECS)
def test_bulk_roundtrip(broker, dataset, codec, acks):
    base_ts, records = dataset
    n = len(records)
    topic = unique(f"bulk-{codec}-acks{acks}")
    create_topic(broker.bootstrap, topic, partitions=1)

    log = DeliveryLog()
    p = producer(broker.bootstrap, acks=acks, **{
        "compression.type": codec, "linger.ms": 20,
        "queue.buffering.max.messages": 200_000})
    produce_all(p, topic, records, partition=0, on_delivery=log)
    assert not log.errors, f"{len(log.errors)} delivery errors, first: {log.errors[:3]}"
    assert len(log.delivered) == n, f"{len(log.delivered)} delivery reports for {n} records"
    if acks != "0":
        bad = first_mismatches(
            (rec[0], log.delivered[rec[0]], (0, i, (TIMESTAMP_CREATE_TIME, rec[3])))
            for i, rec in enumerate(records))
        assert not bad, "delivery reports (partition, offset, timestamp) differ:\n" + "\n".join(bad)

    msgs = consume_range(broker.bootstrap, topic, 0, 0, n, timeout=120)
    bad = []
    for i, (m, (key, value, headers, ts)) in enumerate(zip(msgs, records)):
        got = (m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp())
        want = (0, i, key, value, headers, (TIMESTAMP_CREATE_TIME, ts))
        if got != want:
            bad.append(f"record {i}: got {got!r}\n           expected {want!r}")
            if len(bad) >= 5:
                break
    assert not bad, "consumed records differ:\n" + "\n".join(bad)

    c = consumer(broker.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        assert c.get_watermark_offsets(tp, timeout=10, cached=False) == (0, n)

        last_ts = records[-1][3]
        probes = [
            (base_ts - 10_000, 0),             # before everything
            (base_ts, 0),                       # exactly the first
            (records[1][3], 1),
            (records[12345][3], 12345),         # exact hit
            (records[12345][3] + 1, 12346),     # between two records
            (records[54321][3] + 2, 54322),
            (last_ts, n - 1),
            (last_ts + 1, -1),                  # after everything: "no offset"
        ]
        # One lookup per call: a partition may appear only once in a request.
        got = []
        for ts, _ in probes:
            [res] = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=15)
            got.append((res.error, res.offset))
        assert got == [(None, want) for _, want in probes], list(zip(probes, got))
    finally:
        c.close()


# ---------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_log_append_time_topic(broker, codec):
    topic = unique(f"lat-{codec}")
    create_topic(broker.bootstrap, topic, partitions=1,
                 config={"message.timestamp.type": "LogAppendTime"})

    a = admin(broker.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic)
    cfg = a.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert cfg["message.timestamp.type"].value == "LogAppendTime"

    old = 1_000_000_000_000  # 2001: clearly not "now"
    records = [(b"k%d" % i, b"v%d" % i, [("h", b"%d" % i)], old + i) for i in range(200)]
    log = DeliveryLog()
    before = int(time.time() * 1000)
    p = producer(broker.bootstrap, acks="all", **{"compression.type": codec,
                                                  "linger.ms": 50})
    produce_all(p, topic, records, on_delivery=log)
    after = int(time.time() * 1000)
    assert not log.errors, log.errors[:3]

    def recent(ts):
        return before - 5000 <= ts <= after + 5000

    # The ProduceResponse carries the broker's append time; librdkafka puts it
    # into the delivery report as LOG_APPEND_TIME.
    for key, (_, offset, (tstype, ts)) in log.delivered.items():
        assert tstype == TIMESTAMP_LOG_APPEND_TIME and recent(ts), (key, offset, tstype, ts)

    msgs = consume_range(broker.bootstrap, topic, 0, 0, len(records))
    for i, m in enumerate(msgs):
        tstype, ts = m.timestamp()
        assert (m.offset(), m.key(), m.value(), m.headers()) == \
            (i, records[i][0], records[i][1], records[i][2]), i
        assert tstype == TIMESTAMP_LOG_APPEND_TIME, (i, m.timestamp())
        assert recent(ts), (i, ts, before, after)
        assert ts == log.delivered[m.key()][2][1], "consumed and acknowledged append times differ"


def test_admin_list_offsets(broker):
    topic = unique("listoffsets")
    create_topic(broker.bootstrap, topic, partitions=1)
    base = int(time.time() * 1000) - 600_000
    stamps = [base + 10 * i for i in range(10)]
    stamps[6] = base + 1000  # the maximum sits in the middle of the batch
    p = producer(broker.bootstrap, acks="all", **{"linger.ms": 200})
    produce_all(p, topic, [(b"k%d" % i, b"v%d" % i, None, stamps[i]) for i in range(10)])

    a = admin(broker.bootstrap)
    tp = TopicPartition(topic, 0)

    def lookup(spec):
        fut = a.list_offsets({tp: spec}, request_timeout=15)[tp]
        info = fut.result(timeout=15)
        return info.offset, info.timestamp

    assert lookup(OffsetSpec.earliest())[0] == 0
    assert lookup(OffsetSpec.latest())[0] == 10
    # KIP-734: offset (and timestamp) of the record with the largest timestamp.
    assert lookup(OffsetSpec.max_timestamp()) == (6, base + 1000)
    # First offset whose timestamp is >= the target.
    assert lookup(OffsetSpec.for_timestamp(base + 35))[0] == 4
    assert lookup(OffsetSpec.for_timestamp(base + 95))[0] == 6
    assert lookup(OffsetSpec.for_timestamp(base))[0] == 0
    assert lookup(OffsetSpec.for_timestamp(base + 1001))[0] == -1

    # An empty partition: earliest == latest == 0, no timestamp match.
    empty = unique("listoffsets-empty")
    create_topic(broker.bootstrap, empty, partitions=1)
    etp = TopicPartition(empty, 0)
    for spec, want in ((OffsetSpec.earliest(), 0), (OffsetSpec.latest(), 0),
                       (OffsetSpec.for_timestamp(base), -1)):
        assert a.list_offsets({etp: spec}, request_timeout=15)[etp].result(timeout=15).offset == want


# ---------------------------------------------------------------------------
# Fetch edge cases and limits
# ---------------------------------------------------------------------------

def test_consume_empty_partition_then_new_data(broker):
    topic = unique("wait-for-data")
    create_topic(broker.bootstrap, topic, partitions=1)
    expect_empty(broker.bootstrap, topic, 0, 0, wait=1.5)

    c = consumer(broker.bootstrap, **{"fetch.wait.max.ms": 500})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        # Let it reach the (empty) end first, then produce.
        assert c.consume(num_messages=10, timeout=1.0) == []
        p = producer(broker.bootstrap, acks="1")
        produce_all(p, topic, [(b"k", b"late", None, None)])
        deadline = time.monotonic() + 15
        got = []
        while not got and time.monotonic() < deadline:
            got = [m for m in c.consume(num_messages=10, timeout=0.5) if m.error() is None]
        assert [(m.offset(), m.value()) for m in got] == [(0, b"late")]
    finally:
        c.close()


def test_multi_partition_keys_and_watermarks(broker):
    topic = unique("multi")
    create_topic(broker.bootstrap, topic, partitions=4)
    per_part = {p: [(b"p%d-k%d" % (p, i), b"v%d" % i, [("p", b"%d" % p)], None)
                    for i in range(250 + 50 * p)] for p in range(4)}
    pr = producer(broker.bootstrap, acks="all")
    for part, recs in per_part.items():
        produce_all(pr, topic, recs, partition=part)
    c = consumer(broker.bootstrap)
    try:
        for part, recs in per_part.items():
            assert c.get_watermark_offsets(TopicPartition(topic, part), timeout=10,
                                           cached=False) == (0, len(recs))
    finally:
        c.close()
    for part, recs in per_part.items():
        msgs = consume_range(broker.bootstrap, topic, part, 0, len(recs))
        assert [(m.offset(), m.key(), m.value()) for m in msgs] == \
            [(i, k, v) for i, (k, v, _, _) in enumerate(recs)]


def test_message_max_bytes_is_enforced(broker_factory):
    b = broker_factory({"message.max.bytes": 10_000})
    topic = unique("too-large")
    create_topic(b.bootstrap, topic, partitions=1)
    log = DeliveryLog()
    p = producer(b.bootstrap, acks="all", **{"message.timeout.ms": 10_000})
    produce_all(p, topic, [(b"big", b"x" * 20_000, None, None)], on_delivery=log)
    assert [(k, e.code()) for k, e in log.errors] == [(b"big", KafkaError.MSG_SIZE_TOO_LARGE)], \
        log.errors
    # The rejected batch used no offset.
    log = DeliveryLog()
    produce_all(p, topic, [(b"small", b"y" * 100, None, None)], on_delivery=log)
    assert not log.errors and log.delivered[b"small"][1] == 0, (log.errors, log.delivered)


# ---------------------------------------------------------------------------
# AdminClient
# ---------------------------------------------------------------------------

def describe_topic_configs(a, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([res], request_timeout=15)[res].result(timeout=15)


def test_admin_topic_lifecycle(broker):
    a = admin(broker.bootstrap)
    topic = unique("admin")
    futs = a.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1,
                                     config={"retention.ms": "3600000",
                                             "retention.bytes": "1048576000"})],
                           operation_timeout=30, request_timeout=30)
    assert futs[topic].result(timeout=30) is None

    # list_topics: partitions, leaders, replicas, the broker itself.
    def described():
        md = a.list_topics(timeout=10)
        t = md.topics.get(topic)
        return md if t is not None and t.error is None and len(t.partitions) == 4 else None
    md = wait_until(described, timeout=15, what="new topic in metadata")
    assert list(md.brokers) == [1]
    assert (md.brokers[1].host, md.brokers[1].port) == ("127.0.0.1", broker.port)
    assert md.controller_id == 1
    for pid, pm in md.topics[topic].partitions.items():
        assert (pm.id, pm.leader, list(pm.replicas), list(pm.isrs), pm.error) == \
            (pid, 1, [1], [1], None), pm

    # describe_configs: explicit settings are dynamic topic configs.
    cfg = describe_topic_configs(a, topic)
    assert cfg["retention.ms"].value == "3600000"
    assert source_of(cfg["retention.ms"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not cfg["retention.ms"].is_default
    assert cfg["retention.bytes"].value == "1048576000"
    assert cfg["message.timestamp.type"].value == "CreateTime"
    assert cfg["message.timestamp.type"].is_default

    # incremental_alter_configs: SET one key, DELETE (revert) another.
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    assert a.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=15) is None
    cfg = describe_topic_configs(a, topic)
    assert cfg["retention.ms"].value == "7200000"
    assert cfg["retention.bytes"].value == "-1"
    assert cfg["retention.bytes"].is_default
    assert source_of(cfg["retention.bytes"]) == ConfigSource.DEFAULT_CONFIG.value

    # alter_configs (legacy) replaces the whole set of topic overrides.
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.bytes", "5000000", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=15)
    assert describe_topic_configs(a, topic)["retention.bytes"].value == "5000000"
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "86400000"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # alter_configs is deprecated client-side
        assert a.alter_configs([res], request_timeout=15)[res].result(timeout=15) is None
    cfg = describe_topic_configs(a, topic)
    assert cfg["retention.ms"].value == "86400000"
    assert cfg["retention.bytes"].value == "-1", "AlterConfigs must reset omitted overrides"
    assert cfg["retention.bytes"].is_default

    # create_partitions: 4 -> 6, and the new partitions take data.
    fut = a.create_partitions([NewPartitions(topic, 6)], operation_timeout=30,
                              request_timeout=30)[topic]
    assert fut.result(timeout=30) is None
    wait_until(lambda: len(a.list_topics(topic=topic, timeout=10).topics[topic].partitions) == 6,
               timeout=15, what="6 partitions")
    p = producer(broker.bootstrap, acks="all")
    produce_all(p, topic, [(b"k", b"in-p5", None, None)], partition=5)
    assert [m.value() for m in consume_range(broker.bootstrap, topic, 5, 0, 1)] == [b"in-p5"]

    # delete_topics
    assert a.delete_topics([topic], operation_timeout=30,
                           request_timeout=30)[topic].result(timeout=30) is None
    wait_until(lambda: topic not in a.list_topics(timeout=10).topics, timeout=15,
               what="topic gone from metadata")


def test_admin_describe_cluster_and_topics(broker):
    a = admin(broker.bootstrap)
    desc = a.describe_cluster(request_timeout=15).result(timeout=15)
    assert [(n.id, n.host, n.port) for n in desc.nodes] == [(1, "127.0.0.1", broker.port)]
    assert desc.controller is not None and desc.controller.id == 1
    assert isinstance(desc.cluster_id, str) and desc.cluster_id

    topic = unique("describe")
    create_topic(broker.bootstrap, topic, partitions=3)
    futs = a.describe_topics(TopicCollection([topic]), request_timeout=15)
    td = futs[topic].result(timeout=15)
    assert td.name == topic
    assert [(pi.id, pi.leader.id, [r.id for r in pi.replicas], [r.id for r in pi.isr])
            for pi in td.partitions] == [(i, 1, [1], [1]) for i in range(3)]
    assert not td.is_internal


def test_admin_errors(broker):
    a = admin(broker.bootstrap)
    topic = unique("errs")
    create_topic(broker.bootstrap, topic, partitions=2)

    def failure(fut):
        with pytest.raises(KafkaException) as info:
            fut.result(timeout=30)
        return kafka_error_code(info.value)

    assert failure(a.create_topics([NewTopic(topic, 1, 1)], request_timeout=15)[topic]) \
        == KafkaError.TOPIC_ALREADY_EXISTS
    assert failure(a.create_partitions([NewPartitions(topic, 1)], request_timeout=15)[topic]) \
        == KafkaError.INVALID_PARTITIONS
    missing = unique("missing")
    assert failure(a.delete_topics([missing], request_timeout=15)[missing]) \
        == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert failure(a.create_partitions([NewPartitions(missing, 3)], request_timeout=15)[missing]) \
        == KafkaError.UNKNOWN_TOPIC_OR_PART
    for bad in ("bad name!", "..", "x" * 250):
        assert failure(a.create_topics([NewTopic(bad, 1, 1)], request_timeout=15)[bad]) \
            == KafkaError.TOPIC_EXCEPTION, bad
    assert bad not in a.list_topics(timeout=10).topics
    # The existing topic is untouched by the failed calls.
    assert len(a.list_topics(topic=topic, timeout=10).topics[topic].partitions) == 2


def test_describe_broker_configs(broker_factory):
    b = broker_factory({"log.segment.bytes": 1048576, "num.partitions": 2})
    a = admin(b.bootstrap)
    res = ConfigResource(ResourceType.BROKER, "1")
    cfg = a.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert cfg["log.segment.bytes"].value == "1048576"
    assert cfg["num.partitions"].value == "2"
    # A topic without its own override inherits the broker's setting.
    topic = unique("inherit")
    create_topic(b.bootstrap, topic, partitions=1)
    tcfg = describe_topic_configs(a, topic)
    assert tcfg["segment.bytes"].value == "1048576"
    assert source_of(tcfg["segment.bytes"]) == ConfigSource.STATIC_BROKER_CONFIG.value
