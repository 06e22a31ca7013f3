"""Consumer groups with kafka-python 3 (pure Python): KafkaConsumer members in
threads, commit and resume, KafkaAdminClient's group calls, and a group that
mixes kafka-python and librdkafka members."""

from __future__ import annotations

import threading
import time
import warnings

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata

from group_helpers import (CLASSIC_CONF, GROUP_OVERRIDES, JOIN_TIMEOUT_S,
                           MemberSet, wait_split)
from helpers import create_topic, unique, wait_until

TIMEOUT_MS = 15_000


@pytest.fixture
def gbroker(broker_factory):
    return broker_factory(GROUP_OVERRIDES)


@pytest.fixture
def kadmin(gbroker):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        a = KafkaAdminClient(bootstrap_servers=gbroker.bootstrap,
                             client_id="strand-interop-kp-admin",
                             request_timeout_ms=TIMEOUT_MS)
    yield a
    a.close()


@pytest.fixture
def kp_members():
    started = []
    yield started
    for m in started:
        m.stop(check=False)


@pytest.fixture
def members(tmp_path):
    ms = MemberSet(tmp_path)
    yield ms
    ms.cleanup()


def produce(bootstrap, topic, prefix, n):
    """n keyed records through kafka-python; {key: (partition, offset)}."""
    p = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                      acks="all", linger_ms=5, request_timeout_ms=TIMEOUT_MS,
                      max_block_ms=TIMEOUT_MS)
    try:
        futs = [(f"{prefix}-{i:06d}", p.send(topic, key=f"{prefix}-{i:06d}".encode(),
                                               value=b"v"))
                for i in range(n)]
        p.flush(timeout=30)
        out = {}
        for key, f in futs:
            md = f.get(timeout=30)
            out[key] = (md.partition, md.offset)
        return out
    finally:
        p.close(timeout=10)


class KpMember:
    """A kafka-python KafkaConsumer in a group, polling in its own thread;
    commits synchronously after each batch it handled."""

    def __init__(self, bootstrap, group, topic, name, **conf):
        self.name = name
        self.topic = topic
        self.lock = threading.Lock()
        self.records = []          # (partition, offset, key)
        self.assignment = set()
        self.commit_errors = []
        self.error = None
        self._stop = threading.Event()
        base = dict(bootstrap_servers=bootstrap, group_id=group,
                    client_id=f"strand-interop-{name}", enable_auto_commit=False,
                    auto_offset_reset="earliest", session_timeout_ms=6000,
                    heartbeat_interval_ms=500, request_timeout_ms=TIMEOUT_MS)
        base.update(conf)
        self.consumer = KafkaConsumer(**base)
        self.consumer.subscribe([topic])
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                batches = self.consumer.poll(timeout_ms=200, max_records=200)
                offsets = {}
                with self.lock:
                    for tp, recs in batches.items():
                        for r in recs:
                            self.records.append((r.partition, r.offset, r.key.decode()))
                            offsets[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
                    self.assignment = {tp.partition for tp in self.consumer.assignment()}
                if offsets:
                    try:
                        self.consumer.commit(offsets)
                    except Exception as exc:  # e.g. CommitFailedError mid-rebalance
                        self.commit_errors.append(repr(exc))
        except BaseException as exc:
            self.error = exc
        finally:
            try:
                self.consumer.close()  # LeaveGroup
            except BaseException as exc:
                self.error = self.error or exc

    def owned(self):
        if self.error is not None:
            raise AssertionError(f"{self.name} failed: {self.error!r}")
        with self.lock:
            return set(self.assignment)

    def seen(self):
        with self.lock:
            return list(self.records)

    def stop(self, check=True):
        self._stop.set()
        self.thread.join(timeout=30)
        if check:
            assert not self.thread.is_alive(), f"{self.name} did not stop within 30s"
            assert self.error is None, f"{self.name} failed: {self.error!r}"


def wait_kp_split(ms, n_partitions, sizes, timeout=JOIN_TIMEOUT_S):
    def check():
        owned = [m.owned() for m in ms]
        union = set().union(*owned)
        return (sum(map(len, owned)) == len(union) == n_partitions
                and sorted(map(len, owned)) == sorted(sizes))
    try:
        wait_until(check, timeout=timeout, interval=0.1, what=f"split {sizes}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {[(m.name, sorted(m.owned())) for m in ms]}") from None


def wait_kp_consumed(ms, delivered, timeout=60):
    def missing():
        seen = {}
        for m in ms:
            for p, o, k in m.seen():
                seen[(p, o)] = k
        return [(k, po) for k, po in delivered.items() if seen.get(po) != k]
    last = []

    def check():
        nonlocal last
        last = missing()
        return not last
    try:
        wait_until(check, timeout=timeout, interval=0.2,
                   what=f"{len(delivered)} records consumed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {len(last)} missing, first {sorted(last)[:5]}") from None


def group_offsets(kadmin, group):
    res = kadmin.list_group_offsets({group: None})
    return {(tp.topic, tp.partition): om.offset for tp, om in res[group].items()}


def test_two_members_split_commit_resume(gbroker, kadmin, kp_members):
    bs = gbroker.bootstrap
    topic = unique("kp-group")
    group = unique("g-kp")
    create_topic(bs, topic, partitions=4)
    first = produce(bs, topic, "first", 200)

    m1 = KpMember(bs, group, topic, "m1")
    kp_members.append(m1)
    wait_kp_split([m1], 4, [4])
    m2 = KpMember(bs, group, topic, "m2")
    kp_members.append(m2)
    wait_kp_split([m1, m2], 4, [2, 2])
    wait_kp_consumed([m1, m2], first)

    end = {}
    for key, (p, o) in first.items():
        end[(topic, p)] = max(end.get((topic, p), 0), o + 1)
    wait_until(lambda: group_offsets(kadmin, group) == end, timeout=30,
               what=f"committed offsets {end}")

    # KafkaAdminClient views of the live group.
    listed = {g["group_id"]: g for g in kadmin.list_groups()}
    assert listed[group]["group_state"] == "Stable", listed[group]
    assert listed[group]["protocol_type"] == "consumer", listed[group]
    assert group in {g["group_id"] for g in kadmin.list_groups(states_filter=["Stable"])}
    assert group not in {g["group_id"] for g in kadmin.list_groups(states_filter=["Empty"])}
    desc = kadmin.describe_groups([group])[group]
    assert desc["group_state"] == "Stable", desc
    assert desc["protocol_type"] == "consumer", desc
    assert desc["protocol_data"] in ("range", "roundrobin"), desc
    assert len(desc["members"]) == 2, desc["members"]
    owned = []
    for mem in desc["members"]:
        assert mem["client_id"] in ("strand-interop-m1", "strand-interop-m2"), mem
        assert mem["member_metadata"]["topics"] == [topic], mem
        for a in mem["member_assignment"]["assigned_partitions"]:
            assert a["topic"] == topic, a
            owned += list(a["partitions"])
    assert sorted(owned) == [0, 1, 2, 3], desc["members"]
    assert dict(kadmin.delete_groups([group]))[group] == "NonEmptyGroupError"

    m1.stop()
    m2.stop()
    assert not m1.commit_errors and not m2.commit_errors, (m1.commit_errors, m2.commit_errors)
    wait_until(lambda: kadmin.describe_groups([group])[group]["group_state"] == "Empty",
               timeout=10, what="group Empty after both closed")
    assert group_offsets(kadmin, group) == end

    # A new member resumes at the committed offsets.
    second = produce(bs, topic, "second", 100)
    m3 = KpMember(bs, group, topic, "m3")
    kp_members.append(m3)
    wait_kp_consumed([m3], second)
    time.sleep(0.5)  # anything re-delivered below the commit would show up now
    seen = m3.seen()
    below = [(p, o) for p, o, _ in seen if o < end[(topic, p)]]
    assert not below, f"re-consumed below the committed offsets {end}: {below[:10]}"
    assert sorted((p, o) for p, o, _ in seen) == sorted(second.values()), \
        "the resumed member saw records other than exactly the new ones"
    m3.stop()


def test_admin_offsets_multi_group_and_delete(gbroker, kadmin):
    """OffsetCommit through alter_group_offsets, OffsetFetch for several
    groups in one request (v8+), OffsetDelete, DeleteGroups."""
    bs = gbroker.bootstrap
    topic = unique("kp-adm")
    create_topic(bs, topic, partitions=3)
    g1, g2, g3 = (unique(f"g-kp-adm{i}") for i in range(3))
    for i, g in enumerate((g1, g2)):
        res = kadmin.alter_group_offsets(g, {
            TopicPartition(topic, p): OffsetAndMetadata(10 * (i + 1) + p, f"meta-{g}-{p}", -1)
            for p in range(3)})
        assert {tp.partition: e.__name__ for tp, e in res.items()} == \
            {0: "NoError", 1: "NoError", 2: "NoError"}, res

    both = kadmin.list_group_offsets([g1, g2, g3])
    assert set(both) == {g1, g2, g3}, both
    for i, g in enumerate((g1, g2)):
        got = {tp.partition: (om.offset, om.metadata) for tp, om in both[g].items()}
        assert got == {p: (10 * (i + 1) + p, f"meta-{g}-{p}") for p in range(3)}, got
    assert not both[g3], both[g3]

    listed = {g["group_id"]: g for g in kadmin.list_groups()}
    assert listed[g1]["group_state"] == "Empty", listed[g1]
    desc = kadmin.describe_groups([g1])[g1]
    assert desc["group_state"] == "Empty" and desc["members"] == [], desc

    res = kadmin.delete_group_offsets(g1, [TopicPartition(topic, 1)])
    assert {tp.partition: e.__name__ for tp, e in res.items()} == {1: "NoError"}, res
    assert {tp.partition for tp in kadmin.list_group_offsets({g1: None})[g1]} == {0, 2}

    # kafka-python reports 'OK' or the error class name per group.
    res = dict(kadmin.delete_groups([g1, g2, g3]))
    assert res == {g1: "OK", g2: "OK", g3: "GroupIdNotFoundError"}, res
    remaining = {g["group_id"] for g in kadmin.list_groups()}
    assert not remaining & {g1, g2, g3}, remaining


def test_mixed_clients_in_one_group(gbroker, members, kp_members):
    """A librdkafka member and a kafka-python member agree on a protocol
    (range) through the coordinator and split the topic."""
    bs = gbroker.bootstrap
    topic = unique("mixed")
    group = unique("g-mixed")
    create_topic(bs, topic, partitions=4)
    rd = members.start("rd", bs, group, topic, CLASSIC_CONF)
    wait_split([rd], topic, 4, JOIN_TIMEOUT_S, what="librdkafka member owns all four")
    kp = KpMember(bs, group, topic, "kp")
    kp_members.append(kp)

    def split():
        rd.refresh()
        a, b = rd.partitions(topic), kp.owned()
        return len(a) == 2 and len(b) == 2 and a | b == {0, 1, 2, 3}
    try:
        wait_until(split, timeout=JOIN_TIMEOUT_S, what="2/2 across the two clients")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: kp={sorted(kp.owned())}\n{rd.summary()}") from None
    delivered = produce(bs, topic, "mixed", 100)
    wait_kp_consumed([kp], {k: v for k, v in delivered.items() if v[0] in kp.owned()})
    kp.stop()
    wait_split([rd], topic, 4, 6.0, what="librdkafka member owns all four after "
                                          "the kafka-python member left")
    rd.close()


def test_remove_crashed_static_members_batched(gbroker, kadmin, members):
    """KafkaAdminClient.remove_group_members: one batched LeaveGroup (v3+)
    removing two static members by group.instance.id (their processes
    crashed; their 30 s session would keep them for long) and an unknown
    instance (UNKNOWN_MEMBER_ID); the survivor owns everything at once."""
    from kafka.admin import MemberToRemove

    bs = gbroker.bootstrap
    topic = unique("kp-remove")
    group = unique("g-kp-remove")
    create_topic(bs, topic, partitions=6)

    def conf(inst):
        return {**CLASSIC_CONF, "session.timeout.ms": "30000", "group.instance.id": inst}
    ms = [members.start(n, bs, group, topic, conf(f"inst-{n}")) for n in "abc"]
    wait_split(ms, topic, 6, JOIN_TIMEOUT_S, sizes=[2, 2, 2], what="2/2/2")
    a, b, c = ms
    b.kill9()
    c.kill9()
    t0 = time.monotonic()
    res = kadmin.remove_group_members(group, [
        MemberToRemove(group_instance_id="inst-b"),
        MemberToRemove(group_instance_id="inst-c"),
        MemberToRemove(group_instance_id="inst-nope")])
    by_key = {k: e.__name__ for k, e in res.items()}
    assert len(by_key) == 3, by_key
    assert by_key.get("inst-nope") == "UnknownMemberIdError", by_key
    assert sorted(by_key.values()) == ["NoError", "NoError", "UnknownMemberIdError"], by_key
    wait_split([a], topic, 6, 15, sizes=[6], what="a to own all six after the removal",
               everyone=ms)
    assert time.monotonic() - t0 < 15
    desc = kadmin.describe_groups([group])[group]
    assert [m["group_instance_id"] for m in desc["members"]] == ["inst-a"], desc["members"]
    a.close()
