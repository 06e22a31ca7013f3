"""Consumer groups across broker restarts: a clean stop (SIGTERM) and a crash
(SIGKILL) while a classic group is consuming.  Group metadata and committed
offsets live in __consumer_offsets and are replayed at start."""

from __future__ import annotations

import time
import warnings

import pytest
from confluent_kafka import (ConsumerGroupState, ConsumerGroupTopicPartitions,
                             TopicPartition)
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient

from group_helpers import (CLASSIC_CONF, GROUP_OVERRIDES, JOIN_TIMEOUT_S,
                           SESSION_TIMEOUT_MS, MemberSet, bounce, describe_group,
                           first_good_offsets, list_groups, produce_keyed,
                           run_restart_scenario, wait_committed, wait_split)
from helpers import admin, create_topic, unique, wait_until


@pytest.fixture
def members(tmp_path):
    ms = MemberSet(tmp_path)
    yield ms
    ms.cleanup()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sigterm", "kill9"])
@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_group_survives_broker_restart(broker_factory, members, mode, strategy):
    broker = broker_factory(GROUP_OVERRIDES)
    topic = unique(f"restart-{mode}")
    group = unique("g-restart")
    create_topic(broker.bootstrap, topic, partitions=4)
    conf = {**CLASSIC_CONF, "partition.assignment.strategy": strategy}
    run_restart_scenario(broker, members, topic, group, conf, mode,
                         rejoin_timeout=SESSION_TIMEOUT_MS / 1000 + 20)


@pytest.mark.parametrize("mode", ["sigterm", "kill9"])
def test_group_deletions_and_updates_survive_restart(broker_factory, mode):
    """What replay must get right besides plain commits: the latest of several
    commits wins, OffsetDelete and DeleteGroups stay in effect (tombstones),
    Empty groups with offsets come back Empty -- across two restarts."""
    broker = broker_factory(GROUP_OVERRIDES)
    bs = broker.bootstrap
    topic = unique("replay")
    create_topic(bs, topic, partitions=3)
    keep, gone, upd = (unique(f"g-replay-{n}") for n in ("keep", "gone", "upd"))
    a = admin(bs)

    def commit(group, offsets):
        a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, p, o) for p, o in offsets.items()])],
            request_timeout=15)[group].result(timeout=20)

    commit(keep, {0: 1, 1: 2, 2: 3})
    commit(gone, {0: 5})
    for o in (1, 2, 3):
        commit(upd, {0: o})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        kadmin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15_000)
    try:
        res = kadmin.delete_group_offsets(keep, [KTopicPartition(topic, 1)])
        assert [e.__name__ for e in res.values()] == ["NoError"], res
    finally:
        kadmin.close()
    a.delete_consumer_groups([gone], request_timeout=15)[gone].result(timeout=20)

    expected = {keep: {(topic, 0): 1, (topic, 2): 3}, gone: {}, upd: {(topic, 0): 3}}
    for round_ in (1, 2):
        bounce(broker, mode)
        got = {g: first_good_offsets(bs, g) for g in expected}
        assert got == expected, f"after restart {round_} ({mode}): {got}"
        listed = {g.group_id: g.state for g in list_groups(bs).valid}
        assert listed.get(keep) == ConsumerGroupState.EMPTY, listed
        assert listed.get(upd) == ConsumerGroupState.EMPTY, listed
        assert gone not in listed, f"deleted group came back after restart {round_}: {listed}"


@pytest.mark.parametrize("mode", ["sigterm", "kill9"])
def test_static_members_survive_broker_restart(broker_factory, members, mode):
    """Static member ids are part of the persisted group metadata: after a
    broker restart, a static member that restarts gets its own partitions
    back without the others being revoked -- exactly as without the broker
    restart (test_groups_confluent::test_static_member_restart_keeps_assignment)."""
    broker = broker_factory(GROUP_OVERRIDES)
    bs = broker.bootstrap
    topic = unique("static-crash")
    group = unique("g-static-crash")
    create_topic(bs, topic, partitions=6)

    def conf(inst):
        return {**CLASSIC_CONF, "session.timeout.ms": "30000", "group.instance.id": inst}
    a = members.start("a", bs, group, topic, conf("inst-a"))
    wait_split([a], topic, 6, JOIN_TIMEOUT_S, what="a alone (leader)")
    b = members.start("b", bs, group, topic, conf("inst-b"))
    c = members.start("c", bs, group, topic, conf("inst-c"))
    wait_split([a, b, c], topic, 6, JOIN_TIMEOUT_S, sizes=[2, 2, 2], what="2/2/2")
    owned = {m.name: set(m.assignment) for m in (a, b, c)}
    history = {m.name: (len(m.assigns), len(m.revokes)) for m in (a, c)}

    bounce(broker, mode)
    wait_until(lambda: len(describe_group(bs, group, timeout=5).members) == 3, timeout=20,
               what="the group with its three static members after the restart")
    time.sleep(1.0)  # heartbeats of a and c against the restarted coordinator
    b.close()
    b2 = members.start("b2", bs, group, topic, conf("inst-b"))
    try:
        wait_until(lambda: b2.refresh().assignment == owned["b"], timeout=20,
                   what=f"the restarted static member to get {sorted(owned['b'])} back")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{members.summary()}\n{broker.log_tail(40)}") from None
    time.sleep(1.5)
    for m in (a, c):
        m.refresh()
        assert set(m.assignment) == owned[m.name], m.summary()
        assert (len(m.assigns), len(m.revokes)) == history[m.name], (
            f"{m.name} went through a rebalance when the static member b "
            f"restarted after the broker {mode}:\n{m.summary()}")
    d = describe_group(bs, group)
    assert sorted(x.group_instance_id for x in d.members) == ["inst-a", "inst-b", "inst-c"]


@pytest.mark.slow
def test_offsets_retention_and_restart(broker_factory, members):
    """offsets.retention.minutes=1 (the smallest value; this test takes over
    a minute): offsets of a group that became Empty expire a retention period
    after it emptied, offsets committed without a group (admin) a retention
    period after the commit, and both groups disappear; a group with an active
    member subscribed to the topic keeps its offsets.  Expiry is durable: the
    expired groups do not come back after a restart."""
    broker = broker_factory({**GROUP_OVERRIDES, "offsets.retention.minutes": "1"})
    bs = broker.bootstrap
    topic = unique("retention")
    create_topic(bs, topic, partitions=2)
    delivered = produce_keyed(bs, topic, "ret", 20)
    admin_only, left, active = (unique(f"g-ret-{n}") for n in ("admin", "left", "active"))
    a = admin(bs)  # keep the handle alive until its future resolves
    a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        admin_only, [TopicPartition(topic, 0, 5)])],
        request_timeout=15)[admin_only].result(timeout=20)
    t_admin = time.monotonic()
    ml = members.start("left", bs, left, topic, CLASSIC_CONF)
    ma = members.start("active", bs, active, topic, CLASSIC_CONF)
    hw = {p: 1 + max(o for (pp, o) in delivered.values() if pp == p) for p in range(2)}
    wait_committed(bs, left, topic, hw, timeout=30, members=[ml])
    wait_committed(bs, active, topic, hw, timeout=30, members=[ma])
    ml.close()
    t_left = time.monotonic()

    def groups():
        return {g.group_id for g in list_groups(bs).valid}
    # Nothing expires early.
    time.sleep(max(0.0, 45 - (time.monotonic() - t_admin)))
    assert {admin_only, left, active} <= groups()
    assert first_good_offsets(bs, admin_only) == {(topic, 0): 5}
    wait_until(lambda: admin_only not in groups(), timeout=30,
               what="the admin-only group's offsets to expire")
    assert time.monotonic() - t_admin >= 55, "admin offsets expired before 1 minute"
    wait_until(lambda: left not in groups(), timeout=max(5.0, 75 - (time.monotonic() - t_left)),
               what="the emptied group's offsets to expire")
    assert time.monotonic() - t_left >= 55, "offsets of the emptied group expired before 1 minute"
    assert first_good_offsets(bs, left) == {}
    assert first_good_offsets(bs, active) == {(topic, p): hw[p] for p in range(2)}
    ma.close()

    bounce(broker, "sigterm")
    listed = groups()
    assert admin_only not in listed and left not in listed, listed
    assert first_good_offsets(bs, left) == {} and first_good_offsets(bs, admin_only) == {}
    assert first_good_offsets(bs, active) == {(topic, p): hw[p] for p in range(2)}
