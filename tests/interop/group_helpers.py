"""Consumer-group helpers shared by the ``test_groups_*`` files (no fixtures).

Group members are separate processes (``group_member.py``) so that one can be
SIGKILLed like a crashed application; they report everything they see as
JSON lines in a file, which the test reads back.  As in ``helpers.py`` every
wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import (ConsumerGroupState, ConsumerGroupTopicPartitions,
                             KafkaError, TopicPartition)

from helpers import DeliveryLog, admin, consumer, producer, wait_until

MEMBER_SCRIPT = Path(__file__).resolve().with_name("group_member.py")

# Brokers for group tests: no initial rebalance delay (Kafka's 3 s default
# only slows tests down).
GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
# KIP-848 groups: the session timeout and heartbeat interval are broker-side.
CONSUMER_PROTOCOL_OVERRIDES = {
    **GROUP_OVERRIDES,
    "group.consumer.session.timeout.ms": "6000",
    "group.consumer.heartbeat.interval.ms": "500",
}

SESSION_TIMEOUT_MS = 6000  # the broker's group.min.session.timeout.ms
# Classic members: the minimum session timeout, frequent heartbeats so a
# rebalance is noticed quickly.
CLASSIC_CONF = {"session.timeout.ms": str(SESSION_TIMEOUT_MS),
                "heartbeat.interval.ms": "500"}
# KIP-848 members: timeouts and assignment are the broker's business.
CONSUMER_PROTOCOL_CONF = {"group.protocol": "consumer"}

JOIN_TIMEOUT_S = 30.0
MEMBER_CLOSE_TIMEOUT_S = 30.0

# Commit failures that are part of normal rebalancing (at-least-once: the
# records are consumed again by the next owner).
REBALANCE_COMMIT_ERRORS = {
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.FENCED_MEMBER_EPOCH,
    KafkaError.STALE_MEMBER_EPOCH,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._STATE,
    KafkaError._NO_OFFSET,
}


# ---------------------------------------------------------------------------
# Member processes
# ---------------------------------------------------------------------------

class MemberProcess:
    """A ``group_member.py`` process and what it reported so far."""

    def __init__(self, workdir: Path, name: str, bootstrap: str, group: str,
                 topics, conf: dict | None = None, commit: bool = True):
        self.name = name
        self.bootstrap = bootstrap
        self.group = group
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.conf = {k: str(v) for k, v in (conf or {}).items()}
        self.commit = commit
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.out_path = self.workdir / f"{name}.events.jsonl"
        self.err_path = self.workdir / f"{name}.stderr.log"
        self.proc: subprocess.Popen | None = None
        self._pos = 0
        self._partial = b""
        self.events: list[dict] = []
        self.assignment: set = set()
        self.records: list = []          # [topic, partition, offset, key]
        self.commits: list = []          # [[topic, p, next_offset], ...] per commit
        self.commit_errors: list = []    # (code, name)
        self.errors: list = []           # error events (error_cb / consume)
        self.revokes: list = []          # (time, parts)
        self.assigns: list = []          # (time, parts)
        self.closed = False
        self.start_time = None

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "MemberProcess":
        cmd = [sys.executable, str(MEMBER_SCRIPT), "--bootstrap", self.bootstrap,
               "--group", self.group, "--topics", ",".join(self.topics),
               "--out", str(self.out_path)]
        for k, v in self.conf.items():
            cmd += ["--conf", f"{k}={v}"]
        if not self.commit:
            cmd.append("--no-commit")
        self.start_time = time.monotonic()
        with open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                         stdout=err, stderr=err)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self, timeout: float = MEMBER_CLOSE_TIMEOUT_S) -> float:
        """consumer.close() in the member; returns the seconds it took."""
        assert self.alive, f"{self.name} is not running\n{self.summary()}"
        t0 = time.monotonic()
        try:
            self.proc.stdin.write(b"close\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(
                f"{self.name}: consumer.close() did not finish within "
                f"{timeout}s\n{self.summary()}") from None
        self.refresh()
        assert code == 0 and self.closed, \
            f"{self.name} exited with {code} (closed={self.closed})\n{self.summary()}"
        return time.monotonic() - t0

    def kill9(self) -> None:
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.refresh()

    # -- events -------------------------------------------------------------
    def refresh(self) -> "MemberProcess":
        try:
            with open(self.out_path, "rb") as f:
                f.seek(self._pos)
                data = f.read()
        except FileNotFoundError:
            return self
        self._pos += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._apply(json.loads(line))
        return self

    def _apply(self, ev: dict) -> None:
        self.events.append(ev)
        kind = ev["ev"]
        if kind == "assignment":
            self.assignment = {tuple(p) for p in ev["parts"]}
        elif kind == "recs":
            self.records.extend(ev["r"])
        elif kind == "commit":
            self.commits.append(ev["offsets"])
        elif kind == "commit_err":
            self.commit_errors.append((ev["code"], ev["name"]))
        elif kind == "error":
            self.errors.append(ev)
        elif kind == "revoke":
            self.revokes.append((ev["t"], [tuple(p) for p in ev["parts"]]))
        elif kind == "lost":
            self.revokes.append((ev["t"], [tuple(p) for p in ev["parts"]]))
        elif kind == "assign":
            self.assigns.append((ev["t"], [tuple(p) for p in ev["parts"]]))
        elif kind == "closed":
            self.closed = True

    def partitions(self, topic: str) -> set:
        return {p for t, p in self.assignment if t == topic}

    def last_committed(self) -> dict:
        """{(topic, partition): next offset} of this member's successful commits."""
        out = {}
        for offsets in self.commits:
            for t, p, o in offsets:
                out[(t, p)] = o
        return out

    def summary(self) -> str:
        self.refresh()
        try:
            err = self.err_path.read_bytes().decode("utf-8", "replace")[-3000:]
        except OSError:
            err = ""
        errs = [f"{e['name']}: {e['str']}" for e in self.errors[-8:]]
        return (f"[{self.name} pid={self.proc.pid if self.proc else None} "
                f"alive={self.alive} closed={self.closed}] "
                f"assignment={sorted(self.assignment)} records={len(self.records)} "
                f"commits={len(self.commits)} commit_errors={self.commit_errors[-5:]} "
                f"revokes={len(self.revokes)} errors(last 8)={errs}"
                + (f"\n  stderr: {err}" if err.strip() else ""))


class MemberSet:
    """Every member a test starts; ``cleanup()`` kills what is left."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.members: list[MemberProcess] = []

    def start(self, name: str, bootstrap: str, group: str, topics,
              conf: dict | None = None, commit: bool = True) -> MemberProcess:
        m = MemberProcess(self.workdir / "members", name, bootstrap, group,
                          topics, conf, commit)
        self.members.append(m)
        return m.start()

    def refresh(self) -> None:
        for m in self.members:
            m.refresh()

    def summary(self) -> str:
        return "\n".join(m.summary() for m in self.members)

    def cleanup(self) -> None:
        for m in self.members:
            try:
                m.kill9()
            except Exception:
                pass


def wait_split(members, topic: str, n_partitions: int, timeout: float,
               sizes=None, what: str = "assignment", everyone=None) -> float:
    """Wait until the members' assignments of ``topic`` are disjoint, cover
    all ``n_partitions`` and (if given) have the sizes ``sizes`` (sorted);
    returns the seconds waited."""
    t0 = time.monotonic()

    def check():
        for m in members:
            m.refresh()
            if not m.alive:
                raise AssertionError(f"{m.name} exited\n{m.summary()}")
        owned = [m.partitions(topic) for m in members]
        union = set().union(*owned)
        if sum(len(o) for o in owned) != len(union):
            return False
        if union != set(range(n_partitions)):
            return False
        if sizes is not None and sorted(len(o) for o in owned) != sorted(sizes):
            return False
        return True

    try:
        wait_until(check, timeout=timeout, interval=0.05, what=what)
    except AssertionError as exc:
        everyone = everyone or members
        raise AssertionError(f"{exc}\n" + "\n".join(m.summary() for m in everyone)) from None
    return time.monotonic() - t0


# ---------------------------------------------------------------------------
# Producing while the group churns
# ---------------------------------------------------------------------------

class BackgroundProducer:
    """Produces keyed records (``<prefix>-<n>``) at a steady rate in a thread."""

    def __init__(self, bootstrap: str, topic: str, prefix: str = "rec",
                 per_tick: int = 5, tick_s: float = 0.02):
        self.topic = topic
        self.prefix = prefix
        self.per_tick = per_tick
        self.tick_s = tick_s
        self.log = DeliveryLog()
        self.p = producer(bootstrap, acks="all")
        self.n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._exc = None

    def start(self) -> "BackgroundProducer":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for _ in range(self.per_tick):
                    key = f"{self.prefix}-{self.n:07d}".encode()
                    self.p.produce(self.topic, key=key, value=key, on_delivery=self.log)
                    self.n += 1
                self.p.poll(0)
                time.sleep(self.tick_s)
        except BaseException as exc:  # reported by stop()
            self._exc = exc

    def stop(self, flush_timeout: float = 60) -> dict:
        """Stop, flush; returns {key: (partition, offset)} of delivered records."""
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "producer thread did not stop"
        if self._exc is not None:
            raise AssertionError(f"producer thread failed: {self._exc!r}")
        remaining = self.p.flush(flush_timeout)
        assert remaining == 0, f"{remaining} records undelivered after {flush_timeout}s"
        assert not self.log.errors, \
            f"{len(self.log.errors)} delivery errors, first: {self.log.errors[:3]}"
        assert len(self.log.delivered) == self.n, (len(self.log.delivered), self.n)
        return {k.decode(): (p, o) for k, (p, o, _ts) in self.log.delivered.items()}


def produce_keyed(bootstrap: str, topic: str, prefix: str, n: int,
                  partition: int | None = None) -> dict:
    """Produce n keyed records synchronously; {key: (partition, offset)}."""
    log = DeliveryLog()
    p = producer(bootstrap, acks="all")
    for i in range(n):
        key = f"{prefix}-{i:07d}".encode()
        kwargs = {} if partition is None else {"partition": partition}
        while True:
            try:
                p.produce(topic, key=key, value=key, on_delivery=log, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
    remaining = p.flush(60)
    assert remaining == 0 and not log.errors, (remaining, log.errors[:3])
    return {k.decode(): (part, off) for k, (part, off, _ts) in log.delivered.items()}


def consumed_map(members, topic: str) -> dict:
    """{(partition, offset): key} over everything the members reported;
    fails if two members saw different keys at one offset."""
    seen = {}
    for m in members:
        m.refresh()
        for t, p, o, k in m.records:
            if t != topic:
                continue
            prev = seen.setdefault((p, o), k)
            assert prev == k, f"{topic}[{p}]@{o}: key {k!r} vs {prev!r}"
    return seen


def missing_records(delivered: dict, members, topic: str) -> list:
    seen = consumed_map(members, topic)
    missing = []
    for key, (p, o) in delivered.items():
        got = seen.get((p, o))
        if got != key:
            missing.append((key, p, o, got))
    return sorted(missing, key=lambda x: (x[1], x[2]))


def wait_all_consumed(delivered: dict, members, topic: str, timeout: float,
                      everyone=None) -> None:
    last = []

    def check():
        nonlocal last
        last = missing_records(delivered, everyone or members, topic)
        return not last

    try:
        wait_until(check, timeout=timeout, interval=0.2,
                   what=f"all {len(delivered)} delivered records of {topic} consumed")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}: {len(last)} missing, first {last[:5]} (key, partition, offset, "
            f"key seen there)\n" + "\n".join(m.summary() for m in (everyone or members))) from None


def bad_commit_errors(members) -> list:
    out = []
    for m in members:
        m.refresh()
        for code, name in m.commit_errors:
            if code not in REBALANCE_COMMIT_ERRORS:
                out.append((m.name, code, name))
    return out


def fatal_errors(members) -> list:
    return [(m.name, e["name"], e["str"]) for m in members for e in m.errors if e.get("fatal")]


# ---------------------------------------------------------------------------
# Admin helpers (confluent-kafka AdminClient)
# ---------------------------------------------------------------------------

def committed_offsets(bootstrap: str, group: str, topic: str, partitions,
                      timeout: float = 15) -> dict:
    """{partition: committed offset} (-1001 = none) via OffsetFetch."""
    a = admin(bootstrap)
    req = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in partitions])
    fut = a.list_consumer_group_offsets([req], request_timeout=timeout)[group]
    res = fut.result(timeout=timeout + 5)
    out = {}
    for tp in res.topic_partitions:
        assert tp.error is None, f"offset fetch {tp.topic}[{tp.partition}]: {tp.error}"
        out[tp.partition] = tp.offset
    return out


def all_committed_offsets(bootstrap: str, group: str, timeout: float = 15) -> dict:
    """{(topic, partition): offset} of every committed offset of ``group``."""
    a = admin(bootstrap)
    fut = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                        request_timeout=timeout)[group]
    res = fut.result(timeout=timeout + 5)
    return {(tp.topic, tp.partition): tp.offset for tp in res.topic_partitions}


def high_watermarks(bootstrap: str, topic: str, partitions) -> dict:
    c = consumer(bootstrap)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                           cached=False)[1] for p in partitions}
    finally:
        c.close()


def describe_group(bootstrap: str, group: str, timeout: float = 15):
    a = admin(bootstrap)
    fut = a.describe_consumer_groups([group], request_timeout=timeout)[group]
    return fut.result(timeout=timeout + 5)


def list_groups(bootstrap: str, timeout: float = 15, **kwargs):
    a = admin(bootstrap)
    return a.list_consumer_groups(request_timeout=timeout, **kwargs).result(timeout=timeout + 5)


def wait_committed(bootstrap: str, group: str, topic: str, expected: dict,
                   timeout: float, members=()) -> dict:
    last = {}

    def check():
        nonlocal last
        last = committed_offsets(bootstrap, group, topic, list(expected))
        return last == expected

    try:
        wait_until(check, timeout=timeout, interval=0.2,
                   what=f"committed offsets of {group} to reach {expected}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen {last}\n"
                             + "\n".join(m.summary() for m in members)) from None
    return last


# ---------------------------------------------------------------------------
# The churn scenario: join, leave, crash with a producer running, then resume
# ---------------------------------------------------------------------------

def run_churn_scenario(broker, members: MemberSet, topic: str, group: str,
                       conf: dict, session_timeout_s: float,
                       sticky: bool) -> dict:
    """Three members on a 6-partition topic (which must exist) while a
    producer runs:

    1. all three join: 2/2/2;
    2. one closes (LeaveGroup / leave heartbeat): the other two own 3/3
       sooner than a session timeout;
    3. one is SIGKILLed: the survivor owns all six, but only after the
       session timeout has (about) passed;
    4. the producer stops; every delivered record was consumed at least once,
       and the commits reach the high watermarks; the survivor closes;
    5. more records are produced to the empty group; two new members resume
       exactly at the committed offsets: they see every new record and
       nothing below the committed offsets.

    ``sticky``: assignments are incremental (cooperative-sticky, KIP-848):
    the members that stay are never revoked anything in steps 2 and 3.
    Returns the measured timings (seconds).
    """
    bs = broker.bootstrap
    parts = range(6)
    timings = {}

    prod = BackgroundProducer(bs, topic, prefix="churn").start()
    try:
        a = members.start("a", bs, group, topic, conf)
        b = members.start("b", bs, group, topic, conf)
        c = members.start("c", bs, group, topic, conf)
        trio = [a, b, c]
        timings["join"] = wait_split(trio, topic, 6, JOIN_TIMEOUT_S, sizes=[2, 2, 2],
                                     what="three members to own 2/2/2")

        # -- 2. c leaves --------------------------------------------------
        revokes_before = {m.name: len(m.revokes) for m in (a, b)}
        c.close()
        timings["leave"] = wait_split([a, b], topic, 6, session_timeout_s + 10,
                                      sizes=[3, 3], what="a and b to own 3/3 after c left",
                                      everyone=trio)
        assert timings["leave"] < session_timeout_s, (
            f"partitions of the member that left were reassigned only after "
            f"{timings['leave']:.1f}s (session timeout {session_timeout_s}s): "
            f"the leave was not acted upon\n{members.summary()}")
        if sticky:
            for m in (a, b):
                new = m.revokes[revokes_before[m.name]:]
                assert not new, (f"{m.name} had partitions revoked when c left "
                                 f"(incremental assignment expected): {new}")

        # Let the producer make progress on the new owners.
        time.sleep(1.0)

        # -- 3. b crashes -------------------------------------------------
        revokes_before = len(a.revokes)
        b.kill9()
        timings["crash"] = wait_split([a], topic, 6, session_timeout_s + 20,
                                      sizes=[6], what="a to own all six after b crashed",
                                      everyone=trio)
        assert timings["crash"] >= 0.5 * session_timeout_s, (
            f"a crashed member's partitions moved after {timings['crash']:.1f}s, "
            f"well before the session timeout ({session_timeout_s}s)")
        if sticky:
            new = a.revokes[revokes_before:]
            assert not new, f"a had partitions revoked when b crashed: {new}"
    finally:
        delivered = prod.stop()

    # -- 4. at least once; commits reach the end ------------------------------
    assert len(delivered) > 100, f"only {len(delivered)} records produced"
    wait_all_consumed(delivered, [a], topic, timeout=60, everyone=[a, b, c])
    hw = high_watermarks(bs, topic, parts)
    assert sum(hw.values()) == len(delivered), (hw, len(delivered))
    wait_committed(bs, group, topic, hw, timeout=30, members=[a])
    assert not bad_commit_errors([a, b, c]), bad_commit_errors([a, b, c])
    assert not fatal_errors([a, b, c]), fatal_errors([a, b, c])
    a.close()

    committed = committed_offsets(bs, group, topic, parts)
    assert committed == hw, (committed, hw)

    # -- 5. a new generation of members resumes at the committed offsets ------
    more = produce_keyed(bs, topic, "resume", 600)
    f = members.start("f", bs, group, topic, conf)
    g = members.start("g", bs, group, topic, conf)
    wait_split([f, g], topic, 6, JOIN_TIMEOUT_S, sizes=[3, 3],
               what="two new members to own 3/3")
    wait_all_consumed(more, [f, g], topic, timeout=60)
    seen = consumed_map([f, g], topic)
    below = sorted((p, o) for (p, o) in seen if o < committed[p])
    assert not below, (f"the restarted group consumed records below the committed "
                       f"offsets {committed}: first {below[:10]}")
    new_hw = high_watermarks(bs, topic, parts)
    for p in parts:
        got = sorted(o for (pp, o) in seen if pp == p)
        assert got == list(range(committed[p], new_hw[p])), (
            f"partition {p}: consumed offsets {got[:5]}..{got[-5:]} "
            f"(expected {committed[p]}..{new_hw[p] - 1} without gaps)")
    wait_committed(bs, group, topic, new_hw, timeout=30, members=[f, g])
    assert not bad_commit_errors([f, g]), bad_commit_errors([f, g])
    f.close()
    g.close()
    timings["records"] = len(delivered) + len(more)
    return timings


# ---------------------------------------------------------------------------
# Broker restart / crash in the middle of a group's life
# ---------------------------------------------------------------------------

def bounce(broker, mode: str) -> None:
    if mode == "sigterm":
        broker.stop()          # requires exit status 0
    elif mode == "kill9":
        broker.kill9()
    else:
        raise ValueError(mode)
    broker.start()             # same port, same log directory


def first_good_offsets(bootstrap: str, group: str, timeout: float = 20) -> dict:
    """The first *successful* OffsetFetch answer after a restart (errors such
    as COORDINATOR_LOAD_IN_PROGRESS are retried; a wrong answer is not)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            return all_committed_offsets(bootstrap, group, timeout=5)
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"no OffsetFetch answer within {timeout}s: {last!r}")
        time.sleep(0.2)


def run_restart_scenario(broker, members: MemberSet, topic: str, group: str,
                         conf: dict, mode: str, rejoin_timeout: float) -> None:
    """Two members on a 4-partition topic, broker bounced (``sigterm``: clean
    stop, ``kill9``: crash) twice:

    A. quiet: everything consumed and committed; the committed offsets read
       after the restart equal those before; the members rejoin (Stable, 2/2)
       and new records are consumed starting exactly at the committed offsets;
    B. busy: a producer runs and the members consume and commit while the
       broker goes down and comes back; every acknowledged record is
       consumed at least once and the commits reach the high watermarks.
    """
    bs = broker.bootstrap
    parts = range(4)
    a = members.start("a", bs, group, topic, conf)
    b = members.start("b", bs, group, topic, conf)
    wait_split([a, b], topic, 4, JOIN_TIMEOUT_S, sizes=[2, 2], what="2/2")
    first = produce_keyed(bs, topic, "before", 200)
    wait_all_consumed(first, [a, b], topic, timeout=60)
    hw = high_watermarks(bs, topic, parts)
    wait_committed(bs, group, topic, hw, timeout=30, members=[a, b])
    before = all_committed_offsets(bs, group)
    assert before == {(topic, p): hw[p] for p in parts}, before

    # -- A. quiet restart -----------------------------------------------------
    marks = {m.name: len(m.records) for m in (a, b)}
    bounce(broker, mode)
    after = first_good_offsets(bs, group)
    assert after == before, (f"committed offsets changed across a {mode} restart: "
                             f"before {before}, after {after}")

    def rejoined():
        d = describe_group(bs, group, timeout=5)
        return d.state == ConsumerGroupState.STABLE and len(d.members) == 2
    try:
        wait_until(rejoined, timeout=rejoin_timeout, interval=0.2,
                   what=f"both members back in a Stable group after the {mode} restart")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{members.summary()}\n{broker.log_tail(60)}") from None
    wait_split([a, b], topic, 4, rejoin_timeout, sizes=[2, 2],
               what="2/2 again after the restart")
    second = produce_keyed(bs, topic, "after", 200)
    wait_all_consumed(second, [a, b], topic, timeout=60)
    post = [r for m in (a, b) for r in m.records[marks[m.name]:] if r[0] == topic]
    below = sorted({(p, o) for _, p, o, _ in post if o < hw[p]})
    assert not below, (f"after the restart the members re-consumed records below "
                       f"the committed offsets {hw}: {below[:10]}")
    hw = high_watermarks(bs, topic, parts)
    wait_committed(bs, group, topic, hw, timeout=30, members=[a, b])

    # -- B. busy restart ------------------------------------------------------
    prod = BackgroundProducer(bs, topic, prefix="busy").start()
    try:
        time.sleep(1.5)
        bounce(broker, mode)
        time.sleep(2.5)
    finally:
        delivered = prod.stop()
    assert delivered, "nothing produced"
    wait_all_consumed(delivered, [a, b], topic, timeout=60)
    hw = high_watermarks(bs, topic, parts)
    wait_committed(bs, group, topic, hw, timeout=rejoin_timeout + 30, members=[a, b])
    assert not bad_commit_errors([a, b]), bad_commit_errors([a, b])
    assert not fatal_errors([a, b]), fatal_errors([a, b])
    a.close()
    b.close()
    assert all_committed_offsets(bs, group) == {(topic, p): hw[p] for p in parts}
