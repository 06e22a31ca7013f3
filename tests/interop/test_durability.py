"""Crash and restart behaviour.

acks=all is acknowledged only after fsync, so every record a producer saw
acknowledged must survive a SIGKILL of the broker: present once, in order,
at the offset the broker acknowledged.  Producers here run with retries=0,
so a record is never written twice by the client; records that were in
flight when the broker died are reported as failed and may or may not be in
the log.
"""

from __future__ import annotations

import collections
import signal
import threading
import time

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from helpers import (DeliveryLog, admin, consume_all, consume_range, consumer,
                     create_topic, produce_all, producer, unique, wait_until)

_FILLER = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" * 70


def value_for(seq: int) -> bytes:
    # ~4 KiB: big enough that produce requests (and their fsyncs) take long
    # enough for some to be in flight when the broker is killed (most runs
    # see a few thousand records fail with a transport error).
    return b"rec-%08d-" % seq + _FILLER[seq % 20: seq % 20 + 4000]


def seq_of(value: bytes) -> int:
    return int(value[4:12])


class AckTracker:
    def __init__(self):
        self.acked: dict[int, int] = {}   # seq -> offset
        self.failed: dict[int, str] = {}  # seq -> error

    def __call__(self, err, msg):
        seq = seq_of(msg.value())
        if err is None:
            assert msg.partition() == 0
            self.acked[seq] = msg.offset()
        else:
            self.failed[seq] = str(err)


def crash_producer(bootstrap):
    return producer(bootstrap, acks="all", **{
        "retries": 0,                 # never resend: no client-made duplicates
        "linger.ms": 2,
        "message.timeout.ms": 30_000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "queue.buffering.max.messages": 50_000,
    })


def produce_one(p, topic, seq, on_delivery, deadline):
    while True:
        try:
            p.produce(topic, value=value_for(seq), key=b"%d" % seq, partition=0,
                      on_delivery=on_delivery)
            return
        except BufferError:
            if time.monotonic() > deadline:
                raise AssertionError("producer queue stayed full")
            p.poll(0.01)


def check_acked_records(bootstrap, topic, acked: dict[int, int]):
    """Every acknowledged record is in the log exactly once, at its offset,
    and acknowledged records appear in production order."""
    c = consumer(bootstrap)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    finally:
        c.close()
    assert lo == 0, (lo, hi)
    assert hi > max(acked.values()), f"high watermark {hi} below acked offset {max(acked.values())}"
    msgs = consume_range(bootstrap, topic, 0, 0, hi, timeout=120)
    offsets = [m.offset() for m in msgs]
    assert offsets == list(range(hi)), "log offsets are not contiguous from 0"
    log = [m.value() for m in msgs]

    missing = [(s, o) for s, o in sorted(acked.items()) if log[o] != value_for(s)]
    assert not missing, (
        f"{len(missing)} acknowledged records are not at their acknowledged offset; first: "
        + ", ".join(f"seq {s}@{o} -> {log[o][:12]!r}" for s, o in missing[:5]))
    counts = collections.Counter(seq_of(v) for v in log)
    dup = [s for s in acked if counts[s] != 1]
    assert not dup, f"acknowledged records present more than once: {dup[:10]}"
    by_seq = [acked[s] for s in sorted(acked)]
    assert by_seq == sorted(by_seq), "acknowledged records are out of production order"
    return log


class BackgroundProducer(threading.Thread):
    """Produces value_for(0), value_for(1), ... to partition 0 as fast as the
    local queue allows, until stopped; serves delivery callbacks."""

    def __init__(self, p, topic, on_delivery):
        super().__init__(daemon=True)
        self.p, self.topic, self.on_delivery = p, topic, on_delivery
        self.seq = 0
        self.stop_flag = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stop_flag.is_set():
                try:
                    self.p.produce(self.topic, value=value_for(self.seq),
                                   key=b"%d" % self.seq, partition=0,
                                   on_delivery=self.on_delivery)
                except BufferError:
                    self.p.poll(0.01)
                    continue
                self.seq += 1
                if self.seq % 50 == 0:
                    self.p.poll(0)
                if len(self.p) > 20_000:     # keep the backlog bounded
                    self.p.poll(0.005)
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def halt(self):
        self.stop_flag.set()
        self.join(30)
        assert not self.is_alive(), "producer thread did not stop"
        if self.error is not None:
            raise self.error


@pytest.mark.slow
def test_acked_records_survive_kill9(broker_factory):
    # Small segments so recovery has to deal with several of them.
    b = broker_factory({"log.segment.bytes": 262_144})
    topic = unique("crash")
    create_topic(b.bootstrap, topic, partitions=2)

    kill_after_acks = 20_000
    after_restart = 5_000
    tracker = AckTracker()
    p = crash_producer(b.bootstrap)
    bg = BackgroundProducer(p, topic, tracker)
    bg.start()
    try:
        wait_until(lambda: bg.error or len(tracker.acked) >= kill_after_acks, timeout=120,
                   interval=0.001, what=f"{kill_after_acks} acks")
        assert bg.error is None, bg.error
        b.kill9()                       # the producer thread keeps going
        acked_at_kill, produced_at_kill = len(tracker.acked), bg.seq
        time.sleep(0.5)
        b.start()
        first_after_restart = bg.seq
        wait_until(lambda: bg.error or any(s >= first_after_restart + after_restart
                                           for s in list(tracker.acked)[-100:]),
                   timeout=120, what=f"{after_restart} acks after the restart")
    finally:
        bg.halt()
    remaining = p.flush(60)
    assert remaining == 0, f"{remaining} records neither delivered nor failed"
    produced = bg.seq

    # Every record got exactly one report.
    assert len(tracker.acked) + len(tracker.failed) == produced
    after = [s for s in range(first_after_restart, produced) if s not in tracker.acked]
    assert not after, (f"{len(after)} records produced after the restart were not acknowledged; "
                       f"first errors: {[tracker.failed.get(s) for s in after[:3]]}")
    print(f"produced {produced}; at kill: produced {produced_at_kill}, acked {acked_at_kill}; "
          f"in the end: acked {len(tracker.acked)}, failed {len(tracker.failed)} "
          f"(first failure: {next(iter(tracker.failed.values()), None)})")

    check_acked_records(b.bootstrap, topic, tracker.acked)

    # Topic metadata survived the crash as well.
    md = admin(b.bootstrap).list_topics(topic=topic, timeout=10)
    assert len(md.topics[topic].partitions) == 2
    c = consumer(b.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, 0)
    finally:
        c.close()


def test_repeated_crashes(broker_factory):
    b = broker_factory({"log.segment.bytes": 65_536})
    topic = unique("crashes")
    create_topic(b.bootstrap, topic, partitions=1)
    tracker = AckTracker()
    seq = 0
    for cycle in range(3):
        p = crash_producer(b.bootstrap)
        deadline = time.monotonic() + 60
        for _ in range(3000):
            produce_one(p, topic, seq, tracker, deadline)
            seq += 1
        assert p.flush(60) == 0
        assert not tracker.failed, list(tracker.failed.items())[:3]
        b.kill9()
        b.start()
        check_acked_records(b.bootstrap, topic, tracker.acked)
    assert sorted(tracker.acked.values()) == list(range(seq))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_clean_restart_keeps_everything(broker_factory, sig):
    b = broker_factory({"log.segment.bytes": 65_536})
    a = admin(b.bootstrap)
    data_topic, lat_topic, gone_topic = unique("keep"), unique("keep-lat"), unique("gone")
    create_topic(b.bootstrap, data_topic, partitions=2, config={"retention.ms": "123456789"})
    create_topic(b.bootstrap, lat_topic, partitions=1,
                 config={"message.timestamp.type": "LogAppendTime"})
    create_topic(b.bootstrap, gone_topic, partitions=1)

    base_ts = int(time.time() * 1000) - 100_000
    p0 = [(b"k%d" % i, b"p0-%d" % i, [("i", b"%d" % i)], base_ts + i) for i in range(3000)]
    p1 = [(b"k%d" % i, b"p1-%d" % i, None, base_ts + i) for i in range(1000)]
    pr = producer(b.bootstrap, acks="all", **{"compression.type": "lz4"})
    produce_all(pr, data_topic, p0, partition=0)
    produce_all(pr, data_topic, p1, partition=1)
    produce_all(pr, lat_topic, [(b"l%d" % i, b"lat-%d" % i, None, None) for i in range(10)])
    produce_all(pr, gone_topic, [(b"x", b"y", None, None)])
    a.delete_topics([gone_topic], operation_timeout=30)[gone_topic].result(timeout=30)
    wait_until(lambda: gone_topic not in a.list_topics(timeout=10).topics, timeout=15,
               what="deleted topic gone")
    lat_before = [(m.offset(), m.value(), m.timestamp())
                  for m in consume_range(b.bootstrap, lat_topic, 0, 0, 10)]
    assert all(ts[0] == TIMESTAMP_LOG_APPEND_TIME for _, _, ts in lat_before)

    b.stop(sig)
    b.start()

    a = admin(b.bootstrap)
    topics = a.list_topics(timeout=10).topics
    assert len(topics[data_topic].partitions) == 2
    assert len(topics[lat_topic].partitions) == 1
    assert gone_topic not in topics, "a deleted topic came back after restart"

    def configs(topic):
        res = ConfigResource(ResourceType.TOPIC, topic)
        return a.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert configs(data_topic)["retention.ms"].value == "123456789"
    assert configs(lat_topic)["message.timestamp.type"].value == "LogAppendTime"

    got = consume_all(b.bootstrap, data_topic, [0, 1])
    assert [(m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in got[0]] == \
        [(i, k, v, h, ts) for i, (k, v, h, ts) in enumerate(p0)]
    assert [(m.offset(), m.value()) for m in got[1]] == [(i, v) for i, (_, v, _, _) in enumerate(p1)]
    assert [(m.offset(), m.value(), m.timestamp())
            for m in consume_range(b.bootstrap, lat_topic, 0, 0, 10)] == lat_before

    # Timestamp lookups work on the reopened log.
    c = consumer(b.bootstrap)
    try:
        found = c.offsets_for_times([TopicPartition(data_topic, 0, base_ts + 2500)], timeout=15)
        assert found[0].offset == 2500
    finally:
        c.close()

    # Offsets continue where they stopped.
    log = DeliveryLog()
    produce_all(pr, data_topic, [(b"n%d" % i, b"new-%d" % i, None, None) for i in range(500)],
                partition=0, on_delivery=log)
    assert not log.errors
    assert sorted(o for _, o, _ in log.delivered.values()) == list(range(3000, 3500))
    c = consumer(b.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(data_topic, 0), timeout=10,
                                       cached=False) == (0, 3500)
    finally:
        c.close()
