"""Exactly-once with real clients: idempotent producers (kafka-python's default, confluent-kafka,
aiokafka) through a broker SIGKILL, transactional producers (confluent-kafka, kafka-python,
KafkaJS) with committed, aborted and fenced transactions, consume-transform-produce killed at
random points, and a transaction left open by a broker crash.

Every check reads the data back: acknowledged records exactly once and in order per partition,
aborted records hidden from read_committed consumers and visible to read_uncommitted ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer

from helpers import create_topic, unique, wait_until

HERE = Path(__file__).resolve().parent
RECORDS = 100_000
PARTITIONS = 3


def read_all(bootstrap: str, topic: str, isolation: str, expect: int | None = None,
             timeout: float = 60) -> list:
    """Every record of `topic` as (partition, offset, value), read with `isolation`."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": isolation, "fetch.max.bytes": 8 << 20})
    c.subscribe([topic])
    out, deadline, idle = [], time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        msgs = c.consume(10_000, 0.5)
        got = [m for m in msgs if m.error() is None]
        out.extend((m.partition(), m.offset(), m.value()) for m in got)
        if expect is not None and len(out) >= expect:
            break
        if not got:
            idle = idle or time.monotonic()
            if expect is None and time.monotonic() - idle > 3 and c.assignment():
                break
        else:
            idle = None
    c.close()
    return out


def check_exactly_once(records: list, acked: dict) -> None:
    """`records`: (partition, offset, value b'<seq>'); `acked`: seq -> partition. Every acked
    record is there once, nothing is there twice, and each partition holds its sequences in
    the order they were sent."""
    seqs = [int(v) for _, _, v in records]
    dups = len(seqs) - len(set(seqs))
    assert dups == 0, f"{dups} records written twice"
    present = set(seqs)
    lost = [s for s in acked if s not in present]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
    by_partition: dict[int, list] = {}
    for p, o, v in sorted(records, key=lambda r: (r[0], r[1])):
        by_partition.setdefault(p, []).append(int(v))
    for p, s in by_partition.items():
        assert s == sorted(s), f"partition {p} out of order"
        assert all(acked.get(x, p) == p for x in s), f"partition {p} holds another's records"


def produce_through_crash(broker, send_all) -> dict:
    """Runs `send_all(acked, stop)` in a thread; kills the broker with SIGKILL once a third of
    the records are acknowledged, restarts it, and waits for the producer to finish."""
    acked: dict[int, int] = {}
    errors: list = []

    def run():
        try:
            send_all(acked)
        except BaseException as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    wait_until(lambda: len(acked) >= RECORDS // 3 or not t.is_alive(), 120, what="a third acknowledged")
    broker.kill9()
    time.sleep(0.5)
    broker.start()
    t.join(240)
    assert not t.is_alive(), "the producer did not finish"
    assert not errors, f"the producer failed: {errors[0]!r}"
    return acked


def test_kafka_python_default_producer_is_idempotent_and_reads_back(broker):
    topic = unique("kp-default")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    assert p.config["enable_idempotence"], "kafka-python 3 turns idempotence on with acks=all"
    futures = [p.send(topic, value=b"%d" % i) for i in range(1000)]
    p.flush(60)
    offsets = [f.get(30).offset for f in futures]
    p.close()
    assert offsets == list(range(1000))
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=5000)
    assert [int(m.value) for m in c] == list(range(1000))
    c.close()


def test_confluent_idempotent_producer_through_a_broker_crash(broker):
    topic = unique("idem-ck")
    create_topic(broker.bootstrap, topic, PARTITIONS)

    def send_all(acked):
        p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                      "linger.ms": 5, "message.timeout.ms": 180_000,
                      "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})

        def report(err, msg):
            if err is None:
                acked[int(msg.value())] = msg.partition()
            elif err.fatal():
                raise KafkaException(err)

        for i in range(RECORDS):
            while True:
                try:
                    p.produce(topic, key=b"%d" % i, value=b"%d" % i, on_delivery=report)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        assert p.flush(180) == 0, "records still unanswered"

    acked = produce_through_crash(broker, send_all)
    assert len(acked) == RECORDS, f"only {len(acked)} of {RECORDS} acknowledged"
    check_exactly_once(read_all(broker.bootstrap, topic, "read_uncommitted", RECORDS), acked)


def test_kafka_python_idempotent_producer_through_a_broker_crash(broker):
    topic = unique("idem-kp")
    create_topic(broker.bootstrap, topic, PARTITIONS)

    def send_all(acked):
        p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                          delivery_timeout_ms=180_000, request_timeout_ms=10_000,
                          reconnect_backoff_ms=50, reconnect_backoff_max_ms=500)
        assert p.config["enable_idempotence"]
        for i in range(RECORDS):
            f = p.send(topic, key=b"%d" % i, value=b"%d" % i)
            f.add_callback(lambda md, i=i: acked.__setitem__(i, md.partition))
        p.flush(240)
        p.close(10)

    acked = produce_through_crash(broker, send_all)
    assert len(acked) == RECORDS, f"only {len(acked)} of {RECORDS} acknowledged"
    check_exactly_once(read_all(broker.bootstrap, topic, "read_uncommitted", RECORDS), acked)


def test_aiokafka_idempotent_producer_through_a_broker_crash(broker):
    from aiokafka import AIOKafkaProducer

    topic = unique("idem-aio")
    create_topic(broker.bootstrap, topic, PARTITIONS)

    def send_all(acked):
        async def go():
            p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True,
                                 linger_ms=5, request_timeout_ms=10_000,
                                 retry_backoff_ms=100)
            await p.start()
            try:
                pending = []
                for i in range(RECORDS):
                    while True:
                        try:
                            fut = await p.send(topic, key=b"%d" % i, value=b"%d" % i)
                            break
                        except Exception:  # the broker is down: wait and send again
                            await asyncio.sleep(0.2)
                    fut.add_done_callback(
                        lambda f, i=i: (not f.exception()) and acked.__setitem__(i, f.result().partition))
                    pending.append(fut)
                    if len(pending) >= 5000:
                        await asyncio.gather(*pending, return_exceptions=True)
                        pending.clear()
                await asyncio.gather(*pending, return_exceptions=True)
            finally:
                await p.stop()
        asyncio.run(go())

    acked = produce_through_crash(broker, send_all)
    # aiokafka fails (rather than retries) what was in flight at the crash; those records
    # may or may not be in the log, but never twice, and everything acknowledged is there.
    assert len(acked) > RECORDS // 2
    check_exactly_once(read_all(broker.bootstrap, topic, "read_uncommitted"), acked)


def values(records: list) -> list:
    return [v.decode() for _, _, v in sorted(records, key=lambda r: (r[0], r[1]))]


def test_confluent_transactions_commit_abort_fence_and_run_ten_in_a_row(broker):
    topic = unique("txn-ck")
    create_topic(broker.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": unique("ck")})
    p.init_transactions(30)
    expected = []
    for t in range(10):
        p.begin_transaction()
        for i in range(5):
            p.produce(topic, value=b"t%d-%d" % (t, i), partition=0)
        if t % 3 == 2:
            p.flush(30)  # librdkafka drops what it has not sent yet when aborting
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
            expected += ["t%d-%d" % (t, i) for i in range(5)]
    assert values(read_all(broker.bootstrap, topic, "read_committed", len(expected))) == expected
    assert len(read_all(broker.bootstrap, topic, "read_uncommitted", 50)) == 50


def test_confluent_second_instance_fences_the_first(broker):
    topic = unique("fence-ck")
    create_topic(broker.bootstrap, topic, 1)
    txn_id = unique("fence")
    first = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id})
    first.init_transactions(30)
    first.begin_transaction()
    first.produce(topic, value=b"open", partition=0)
    first.flush(30)
    second = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id})
    second.init_transactions(30)  # aborts the first instance's transaction
    second.begin_transaction()
    second.produce(topic, value=b"second", partition=0)
    second.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        first.commit_transaction(30)
    assert e.value.args[0].fatal(), e.value
    assert values(read_all(broker.bootstrap, topic, "read_committed", 1)) == ["second"]


def test_kafka_python_transactions(broker):
    topic = unique("txn-kp")
    create_topic(broker.bootstrap, topic, 1)
    txn_id = unique("kp")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=txn_id)
    p.init_transactions()
    p.begin_transaction()
    for i in range(5):
        p.send(topic, value=b"commit-%d" % i, partition=0)
    p.commit_transaction()
    p.begin_transaction()
    for i in range(3):
        p.send(topic, value=b"abort-%d" % i, partition=0)
    p.flush()
    p.abort_transaction()
    p.begin_transaction()
    p.send(topic, value=b"commit-5", partition=0)
    p.commit_transaction()
    committed = values(read_all(broker.bootstrap, topic, "read_committed", 6))
    assert committed == ["commit-%d" % i for i in range(6)]
    assert len(read_all(broker.bootstrap, topic, "read_uncommitted", 9)) == 9
    # Fencing: a second instance takes the id over.
    second = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=txn_id)
    second.init_transactions()
    with pytest.raises(Exception):
        p.begin_transaction()
        p.send(topic, value=b"late", partition=0)
        p.commit_transaction()
    second.close()


def test_kafkajs_transactions(broker):
    topic = unique("txn-js")
    create_topic(broker.bootstrap, topic, 1)
    out = subprocess.run(["node", str(HERE / "js" / "transactions.js"), broker.bootstrap, topic],
                         capture_output=True, timeout=120, cwd=HERE / "js")
    report = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert report["ok"], report
    assert report["fenced"], "the first producer was not fenced"
    committed = values(read_all(broker.bootstrap, topic, "read_committed", 5))
    assert committed == ["commit-%d" % i for i in range(5)]
    uncommitted = values(read_all(broker.bootstrap, topic, "read_uncommitted", 7))
    assert uncommitted[:3] == ["commit-0", "commit-1", "commit-2"]
    assert "abort-0" in uncommitted and "abort-1" in uncommitted


def run_ctp_until_done(broker, input_topic, output_topic, group, kill_app: bool,
                       kill_broker: bool, budget_s: float = 180):
    """Runs ctp_app.py until it exits 0, killing it (or the broker) with SIGKILL at random
    points along the way."""
    rng = random.Random(7)
    kills = {"app": 3 if kill_app else 0, "broker": 1 if kill_broker else 0}
    deadline = time.monotonic() + budget_s
    txn_id = unique("ctp")
    cmd = [sys.executable, str(HERE / "ctp_app.py"), broker.bootstrap, input_topic,
           output_topic, group, txn_id]
    while time.monotonic() < deadline:
        app = subprocess.Popen(cmd, stderr=subprocess.PIPE)
        try:
            if kills["app"] or kills["broker"]:
                time.sleep(rng.uniform(2.0, 5.0))
                if app.poll() is None and kills["broker"]:
                    kills["broker"] -= 1
                    broker.kill9()
                    time.sleep(0.5)
                    broker.start()
                elif app.poll() is None and kills["app"]:
                    kills["app"] -= 1
                    os.kill(app.pid, signal.SIGKILL)
                    app.wait(10)
                    continue
            code = app.wait(max(1, deadline - time.monotonic()))
            if code == 0 and not (kills["app"] or kills["broker"]):
                return
        finally:
            if app.poll() is None:
                os.kill(app.pid, signal.SIGKILL)
                app.wait(10)
    raise AssertionError("the consume-transform-produce app did not finish")


def ctp_check(broker, input_topic, output_topic, group, n):
    out = read_all(broker.bootstrap, output_topic, "read_committed", n)
    got = sorted(int(v[len(b"out-"):]) for _, _, v in out)
    dups = len(got) - len(set(got))
    assert dups == 0, f"{dups} input records processed twice"
    assert got == list(range(n)), f"{n - len(set(got))} input records have no output"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    committed = c.committed([TopicPartition(input_topic, p) for p in range(2)], 10)
    ends = [c.get_watermark_offsets(TopicPartition(input_topic, p), 10)[1] for p in range(2)]
    c.close()
    assert [tp.offset for tp in committed] == ends, "the group's offsets are not at the end"


def fill_input(bootstrap, topic, n):
    create_topic(bootstrap, topic, 2)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, value=b"%d" % i, partition=i % 2)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


@pytest.mark.parametrize("kill", ["app", "broker"])
def test_consume_transform_produce_is_exactly_once_through_sigkill(broker_factory, kill):
    broker = broker_factory({"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
                             "group.initial.rebalance.delay.ms": "0"})
    n = 20_000
    input_topic, output_topic, group = unique("ctp-in"), unique("ctp-out"), unique("ctp")
    fill_input(broker.bootstrap, input_topic, n)
    create_topic(broker.bootstrap, output_topic, 2)
    run_ctp_until_done(broker, input_topic, output_topic, group,
                       kill_app=kill == "app", kill_broker=kill == "broker")
    ctp_check(broker, input_topic, output_topic, group, n)


def test_an_open_transaction_survives_a_broker_crash_and_is_aborted(broker_factory):
    broker = broker_factory({"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"})
    topic = unique("open-txn")
    create_topic(broker.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": unique("open"),
                  "transaction.timeout.ms": 3000})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=b"open-%d" % i, partition=0)
    assert p.flush(30) == 0
    broker.kill9()
    broker.start()
    # A committed transaction after the crash becomes readable only once the open one is
    # decided: the coordinator aborts it after transaction.timeout.ms.
    q = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": unique("after")})
    q.init_transactions(30)
    q.begin_transaction()
    q.produce(topic, value=b"after", partition=0)
    q.commit_transaction(30)
    assert values(read_all(broker.bootstrap, topic, "read_committed", 1, timeout=30)) == ["after"]
    uncommitted = values(read_all(broker.bootstrap, topic, "read_uncommitted", 11))
    assert uncommitted == ["open-%d" % i for i in range(10)] + ["after"]
