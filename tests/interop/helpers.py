"""Client-side helpers shared by the interop tests (no fixtures here).

All waits are bounded: every loop has a deadline and every subprocess a
timeout, so a misbehaving broker turns into a failure, not a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

KCAT_TIMEOUT_S = 30
# Never group-managed: consumers only use assign(); librdkafka still wants a
# group.id value for a KafkaConsumer handle.
UNUSED_GROUP = "strand-interop-assign-only"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last failure
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}"
                + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# kcat
# ---------------------------------------------------------------------------

def kcat(*args: str, input: bytes | None = None, timeout: float = KCAT_TIMEOUT_S,
         check: bool = True) -> subprocess.CompletedProcess:
    """Run kcat with a hard timeout.  Ignores any user kcat.conf."""
    env = dict(os.environ)
    env["KCAT_CONFIG"] = os.devnull
    cmd = ["kcat", *args]
    try:
        proc = subprocess.run(cmd, input=input, capture_output=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"kcat did not finish within {timeout}s: {' '.join(cmd)}\n"
            f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from None
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kcat exited with {proc.returncode}: {' '.join(cmd)}\n"
            f"stdout: {proc.stdout!r}\nstderr: {proc.stderr!r}")
    return proc


def kcat_metadata(bootstrap: str, topic: str | None = None) -> dict:
    args = ["-L", "-J", "-b", bootstrap, "-m", "10"]
    if topic is not None:
        args += ["-t", topic]
    proc = kcat(*args)
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------
# confluent-kafka
# ---------------------------------------------------------------------------

def admin(bootstrap: str, **conf) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **conf})


def create_topic(bootstrap: str, name: str, partitions: int = 1,
                 config: dict | None = None, timeout: float = 30) -> None:
    a = admin(bootstrap)
    futures = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1,
                  config=config or {})],
        operation_timeout=timeout, request_timeout=timeout)
    futures[name].result(timeout=timeout)
    wait_until(lambda: topic_partition_count(a, name) == partitions,
               timeout=15, what=f"topic {name} with {partitions} partitions in metadata")


def topic_partition_count(a: AdminClient, name: str) -> int:
    md = a.list_topics(topic=name, timeout=10)
    t = md.topics.get(name)
    if t is None or t.error is not None:
        return -1
    return len(t.partitions)


def producer(bootstrap: str, **conf) -> Producer:
    base = {
        "bootstrap.servers": bootstrap,
        # Plain producers here (librdkafka's default); idempotent and
        # transactional ones are tested in test_exactly_once.py.
        "enable.idempotence": False,
        "linger.ms": 5,
        "message.timeout.ms": 60000,
    }
    base.update(conf)
    return Producer(base)


def consumer(bootstrap: str, **conf) -> Consumer:
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": UNUSED_GROUP,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "check.crcs": True,
    }
    base.update(conf)
    return Consumer(base)


@dataclass
class DeliveryLog:
    """Collects delivery reports (record index is carried in the key)."""
    errors: list = field(default_factory=list)
    delivered: dict = field(default_factory=dict)  # key -> (partition, offset, ts)

    def __call__(self, err, msg):
        if err is not None:
            self.errors.append((msg.key(), err))
        else:
            self.delivered[msg.key()] = (msg.partition(), msg.offset(), msg.timestamp())


def produce_all(p: Producer, topic: str, records, partition: int | None = 0,
                on_delivery=None, flush_timeout: float = 120) -> None:
    """Produce ``records`` (iterable of (key, value, headers, timestamp_ms)),
    retrying on a full local queue, then flush with a deadline."""
    kwargs = {}
    if partition is not None:
        kwargs["partition"] = partition
    if on_delivery is not None:
        kwargs["on_delivery"] = on_delivery
    n = 0
    deadline = time.monotonic() + flush_timeout
    for key, value, headers, ts in records:
        while True:
            try:
                if ts is None:
                    p.produce(topic, value=value, key=key, headers=headers, **kwargs)
                else:
                    p.produce(topic, value=value, key=key, headers=headers,
                              timestamp=ts, **kwargs)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise AssertionError("producer queue stayed full until the deadline")
                p.poll(0.05)
        n += 1
        if n % 1000 == 0:
            p.poll(0)
    remaining = p.flush(max(1.0, deadline - time.monotonic()))
    assert remaining == 0, f"{remaining} messages still undelivered after flush"


def consume_range(bootstrap: str, topic: str, partition: int, start: int,
                  count: int, timeout: float = 60, **conf) -> list:
    """Consume ``count`` messages from ``topic``/``partition`` starting at
    offset ``start`` via assign(); returns confluent Message objects.
    Fails on any consumer error or when the deadline passes first."""
    c = consumer(bootstrap, **conf)
    out = []
    try:
        c.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        while len(out) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consumed only {len(out)}/{count} messages from "
                    f"{topic}[{partition}] starting at {start} within {timeout}s")
            batch = c.consume(num_messages=min(10000, count - len(out)), timeout=0.5)
            for m in batch:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error on {topic}[{partition}]: {err}")
                out.append(m)
        return out
    finally:
        c.close()


def consume_all(bootstrap: str, topic: str, partitions, timeout: float = 60, **conf) -> dict:
    """Everything currently in the given partitions, up to the high
    watermark read at the start: {partition: [Message, ...]}."""
    c = consumer(bootstrap, **conf)
    try:
        result = {}
        for p in partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            result[p] = (lo, hi)
    finally:
        c.close()
    out = {}
    for p, (lo, hi) in result.items():
        out[p] = consume_range(bootstrap, topic, p, lo, hi - lo, timeout=timeout, **conf) if hi > lo else []
    return out


def expect_empty(bootstrap: str, topic: str, partition: int, offset: int,
                 wait: float = 2.0, **conf) -> None:
    """Fetching from ``offset`` returns nothing (and no error) for ``wait`` s."""
    c = consumer(bootstrap, **conf)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=100, timeout=0.2):
                err = m.error()
                if err is not None and err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(
                    f"expected no data at {topic}[{partition}]@{offset}, got "
                    f"{'error ' + str(err) if err else 'offset %d' % m.offset()}")
    finally:
        c.close()


def first_mismatches(pairs, limit: int = 5) -> list:
    """[(label, got, expected)] -> the first few where got != expected."""
    bad = []
    for label, got, want in pairs:
        if got != want:
            bad.append(f"{label}: got {got!r}, expected {want!r}")
            if len(bad) >= limit:
                break
    return bad
