"""Record-level produce validation as librdkafka meets it (KIP-467 per-record errors).

Keyless records in a compacted topic fail with INVALID_RECORD, and the other
records of their batch with librdkafka's "an invalid record in the same batch"
error; nothing of that batch is appended, and the next batch is.
A timestamp beyond message.timestamp.after.max.ms fails with INVALID_TIMESTAMP.
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError

from helpers import consume_range, create_topic, producer, unique


def send_batch(bs, topic, records):
    """Produce ``records`` ((key, value, timestamp) tuples) in one batch (a long
    linger), returns each record's delivery error (None when delivered)."""
    p = producer(bs, **{"linger.ms": 200, "batch.num.messages": 1000, "retries": 0})
    results = {}

    def report(i):
        return lambda err, _msg: results.__setitem__(i, err)

    for i, (key, value, ts) in enumerate(records):
        kwargs = {"timestamp": ts} if ts is not None else {}
        p.produce(topic, key=key, value=value, partition=0, on_delivery=report(i), **kwargs)
    assert p.flush(30) == 0
    return [results[i] for i in range(len(records))]


def test_keyless_record_in_a_compacted_topic_fails_alone(broker):
    bs = broker.bootstrap
    topic = unique("compacted")
    create_topic(bs, topic, partitions=1, config={"cleanup.policy": "compact"})
    # Two keyless records: with a single record error librdkafka 2.16 reports the
    # partition's error for every record of the batch (its own choice).
    errors = send_batch(bs, topic, [(b"a", b"1", None), (None, b"2", None), (b"c", b"3", None),
                                    (None, b"4", None), (b"e", b"5", None)])
    for i in (1, 3):
        assert errors[i] is not None and errors[i].code() == KafkaError.INVALID_RECORD, errors
    for i in (0, 2, 4):
        assert errors[i] is not None and \
            errors[i].code() == KafkaError._INVALID_DIFFERENT_RECORD, errors
    # Nothing of that batch was appended; a keyed batch is, at offset 0.
    assert send_batch(bs, topic, [(b"a", b"1", None), (b"b", b"2", None)]) == [None, None]
    got = consume_range(bs, topic, 0, 0, 2)
    assert [(m.offset(), m.key()) for m in got] == [(0, b"a"), (1, b"b")]


def test_timestamps_too_far_ahead_are_refused(broker):
    bs = broker.bootstrap
    topic = unique("future")
    create_topic(bs, topic, partitions=1)
    now = int(time.time() * 1000)
    errors = send_batch(bs, topic, [(b"a", b"1", now), (b"b", b"2", now + 2 * 3_600_000)])
    assert errors[1] is not None and errors[1].code() == KafkaError.INVALID_TIMESTAMP, errors
    assert errors[0] is not None, "the whole batch is refused"
