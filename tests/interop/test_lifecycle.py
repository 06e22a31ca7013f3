"""Log lifecycle with real clients: compaction, DeleteRecords, retention."""
import time

from confluent_kafka import KafkaError, TopicPartition
from kafka import KafkaAdminClient
from kafka.structs import TopicPartition as KTopicPartition

from helpers import admin, consumer, create_topic, produce_all, producer, unique, wait_until

FAST = {
    "log.cleaner.backoff.ms": 200,
    "log.retention.check.interval.ms": 200,
}


def read_to_end(bootstrap, topic, partition=0, timeout=60):
    """Every record from the log start to the high watermark, as (offset, key, value)."""
    c = consumer(bootstrap)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
        out = []
        if hi <= lo:
            return lo, hi, out
        c.assign([TopicPartition(topic, partition, lo)])
        deadline = time.monotonic() + timeout
        while not out or out[-1][0] < hi - 1:
            assert time.monotonic() < deadline, f"read only up to {out[-1][0] if out else None} of {hi}"
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error: {m.error()}")
                out.append((m.offset(), m.key(), m.value()))
        return lo, hi, out
    finally:
        c.close()


def watermarks(bootstrap, topic, partition=0):
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def test_compaction_keeps_exactly_the_latest_value_per_key(broker_factory):
    b = broker_factory(overrides=FAST)
    topic = unique("compacted")
    create_topic(b.bootstrap, topic, config={
        "cleanup.policy": "compact", "segment.bytes": str(256 * 1024), "segment.ms": "1000",
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "2000"})
    keys, updates = 1000, 100_000
    latest = {}
    delivered = {}

    def on_delivery(err, msg):
        assert err is None, err
        delivered[(msg.key(), msg.value())] = msg.offset()

    records = []
    for n in range(updates):
        key = f"key-{n % keys}".encode()
        # The last update of every 20th key is a tombstone.
        value = None if n >= updates - keys and (n % keys) % 20 == 0 else f"value-{n}".encode()
        latest[key] = value
        records.append((key, value, None, None))
    p = producer(b.bootstrap, **{"compression.type": "lz4", "linger.ms": 20})
    produce_all(p, topic, records, on_delivery=on_delivery)
    # A record more than segment.ms later rolls the last segment, so every update is closed.
    time.sleep(1.5)
    produce_all(p, topic, [(b"zz-roll", b"x", None, None)], on_delivery=on_delivery)
    live = {k: v for k, v in latest.items() if v is not None}
    live[b"zz-roll"] = b"x"

    def compacted():
        _, _, out = read_to_end(b.bootstrap, topic)
        return {k: v for _, k, v in out} == live and len(out) == len(live)

    wait_until(compacted, timeout=90, interval=0.5, what="compaction to the latest value per key, tombstones gone")
    lo, hi, out = read_to_end(b.bootstrap, topic)
    assert hi == updates + 1, "offsets are never renumbered"
    offsets = [o for o, _, _ in out]
    assert offsets == sorted(offsets)
    for o, k, v in out:
        assert delivered[(k, v)] == o, f"{k} moved from offset {delivered[(k, v)]} to {o}"


def test_delete_records_from_both_admin_clients(broker):
    topic = unique("delrec")
    create_topic(broker.bootstrap, topic, config={"segment.bytes": "4096"})
    p = producer(broker.bootstrap)
    produce_all(p, topic, [(f"k{i}".encode(), b"v" * 100, None, None) for i in range(500)])
    a = admin(broker.bootstrap)
    fut = a.delete_records([TopicPartition(topic, 0, 123)])
    res = list(fut.values())[0].result(timeout=30)
    assert res.low_watermark == 123
    assert watermarks(broker.bootstrap, topic) == (123, 500)
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)
    try:
        k.delete_records({KTopicPartition(topic, 0): 300})
    finally:
        k.close()
    assert watermarks(broker.bootstrap, topic) == (300, 500)
    lo, _, out = read_to_end(broker.bootstrap, topic)
    assert lo == 300 and out[0][0] == 300 and len(out) == 200
    # Beyond the high watermark: refused, nothing changes.
    fut = a.delete_records([TopicPartition(topic, 0, 501)])
    try:
        list(fut.values())[0].result(timeout=30)
        raise AssertionError("deleting past the high watermark succeeded")
    except Exception as e:  # confluent raises KafkaException(OFFSET_OUT_OF_RANGE)
        assert "OFFSET_OUT_OF_RANGE" in str(e) or "out of range" in str(e).lower(), e
    assert watermarks(broker.bootstrap, topic) == (300, 500)


def test_retention_ms_drops_old_segments_and_keeps_the_active_one(broker_factory):
    b = broker_factory(overrides=FAST)
    topic = unique("retained")
    create_topic(b.bootstrap, topic, config={"retention.ms": "2000", "segment.bytes": "8192", "file.delete.delay.ms": "0"})
    p = producer(b.bootstrap)
    old = int(time.time() * 1000) - 3_600_000
    # Separate flushes: one big batch would land in a single (active) segment.
    for chunk in range(8):
        produce_all(p, topic, [(f"k{i}".encode(), b"v" * 200, None, old + i) for i in range(chunk * 50, chunk * 50 + 50)])
    wait_until(lambda: watermarks(b.bootstrap, topic)[0] > 0, timeout=30, what="old segments deleted")
    lo, hi = watermarks(b.bootstrap, topic)
    assert 0 < lo < hi == 400, (lo, hi)
    _, _, out = read_to_end(b.bootstrap, topic)
    assert out[-1][0] == 399 and out[0][0] == lo
