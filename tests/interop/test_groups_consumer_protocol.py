"""KIP-848 consumer groups (``group.protocol=consumer``) with confluent-kafka /
librdkafka 2.16: ConsumerGroupHeartbeat membership with server-side
assignors, ConsumerGroupDescribe, OffsetCommit checked by member epoch.

The session timeout and heartbeat interval of such groups are broker configs
(group.consumer.session.timeout.ms=6000, group.consumer.heartbeat.interval.ms
=500 here); members set neither.
"""

from __future__ import annotations

import time
import warnings

import pytest
from confluent_kafka import (ConsumerGroupState, ConsumerGroupType, KafkaError,
                             KafkaException)
from confluent_kafka.admin import NewPartitions
from kafka.admin import KafkaAdminClient
from kafka.protocol.consumer import OffsetCommitRequest

from group_helpers import (CONSUMER_PROTOCOL_CONF, CONSUMER_PROTOCOL_OVERRIDES,
                           JOIN_TIMEOUT_S, MemberSet, committed_offsets,
                           describe_group, list_groups, produce_keyed,
                           run_churn_scenario,
                           run_restart_scenario, wait_split)
from helpers import admin, create_topic, unique, wait_until

SESSION_S = int(CONSUMER_PROTOCOL_OVERRIDES["group.consumer.session.timeout.ms"]) / 1000


@pytest.fixture
def cbroker(broker_factory):
    return broker_factory(CONSUMER_PROTOCOL_OVERRIDES)


@pytest.fixture
def members(tmp_path):
    ms = MemberSet(tmp_path)
    yield ms
    ms.cleanup()


@pytest.mark.slow
@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_consumer_protocol_churn_at_least_once_and_resume(cbroker, members, assignor):
    """The classic churn scenario with KIP-848 members: 2/2/2, a leave
    (others own 3/3 before a session timeout, nothing revoked from them), a
    SIGKILL (reassigned after the session timeout), no lost records, and a
    new set of members resumes at the committed offsets."""
    topic = unique(f"kip848-{assignor}")
    group = unique("g-kip848")
    create_topic(cbroker.bootstrap, topic, partitions=6)
    conf = {**CONSUMER_PROTOCOL_CONF, "group.remote.assignor": assignor}
    # The range assignor is not sticky when membership changes (a member's
    # range moves); the uniform one keeps what members own.
    timings = run_churn_scenario(cbroker, members, topic, group, conf,
                                 session_timeout_s=SESSION_S,
                                 sticky=assignor == "uniform")
    print(f"consumer protocol, {assignor}: {timings}")


def test_consumer_group_describe_and_list(cbroker, members):
    bs = cbroker.bootstrap
    topic = unique("kip848-desc")
    group = unique("g-kip848-desc")
    create_topic(bs, topic, partitions=6)
    ms = [members.start(n, bs, group, topic, CONSUMER_PROTOCOL_CONF) for n in "ab"]
    wait_split(ms, topic, 6, JOIN_TIMEOUT_S, sizes=[3, 3], what="3/3")

    def settled():
        d = describe_group(bs, group)
        return d if d.state == ConsumerGroupState.STABLE else None
    d = wait_until(settled, timeout=15, what="group Stable")
    assert d.type == ConsumerGroupType.CONSUMER, d.type
    assert d.partition_assignor == "uniform", d.partition_assignor
    assert d.is_simple_consumer_group is False
    assert len(d.members) == 2, d.members
    owned = []
    for mem in d.members:
        assert mem.member_id and mem.client_id and mem.host, mem
        current = sorted(tp.partition for tp in mem.assignment.topic_partitions)
        assert mem.target_assignment is not None, mem
        target = sorted(tp.partition for tp in mem.target_assignment.topic_partitions)
        assert current == target, (current, target)
        owned += current
    assert sorted(owned) == list(range(6)), owned
    # What the members themselves hold agrees with the coordinator.
    assert sorted(sorted(m.refresh().partitions(topic)) for m in ms) == \
        sorted(sorted(tp.partition for tp in mem.assignment.topic_partitions)
               for mem in d.members)

    listed = {g.group_id: g for g in list_groups(bs).valid}
    assert listed[group].type == ConsumerGroupType.CONSUMER, listed[group]
    assert listed[group].state == ConsumerGroupState.STABLE, listed[group]
    assert group in {g.group_id for g in list_groups(bs, types={ConsumerGroupType.CONSUMER}).valid}
    assert group not in {g.group_id for g in list_groups(bs, types={ConsumerGroupType.CLASSIC}).valid}
    assert group in {g.group_id for g in list_groups(bs, states={ConsumerGroupState.STABLE}).valid}

    for m in ms:
        m.close()
    d = wait_until(lambda: (lambda x: x if x.state == ConsumerGroupState.EMPTY else None)(
        describe_group(bs, group)), timeout=10, what="group Empty after both left")
    assert d.type == ConsumerGroupType.CONSUMER and d.members == [], d


def test_consumer_protocol_commit_checked_by_member_epoch(cbroker, members):
    """OffsetCommit v9 from a consumer-group member: only the member's current
    epoch is accepted; any other epoch, older or newer, gets
    STALE_MEMBER_EPOCH (Kafka's ConsumerGroup.validateMemberEpoch does not
    tell the two apart for commits), an unknown member UNKNOWN_MEMBER_ID."""
    bs = cbroker.bootstrap
    topic = unique("kip848-epoch")
    group = unique("g-kip848-epoch")
    create_topic(bs, topic, partitions=2)
    a = members.start("a", bs, group, topic, CONSUMER_PROTOCOL_CONF, commit=False)
    wait_split([a], topic, 2, JOIN_TIMEOUT_S, what="a owns both")
    [mem] = describe_group(bs, group).members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        kadmin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15_000)
    try:
        T = OffsetCommitRequest.OffsetCommitRequestTopic
        P = T.OffsetCommitRequestPartition

        def commit(epoch, member_id, offset):
            req = OffsetCommitRequest(
                group_id=group, generation_id_or_member_epoch=epoch, member_id=member_id,
                group_instance_id=None, retention_time_ms=-1,
                topics=[T(name=topic, partitions=[P(
                    partition_index=0, committed_offset=offset,
                    committed_leader_epoch=-1, committed_metadata="")])],
                min_version=9, max_version=9)

            async def send():
                return await kadmin._manager.send(req, node_id=1)
            return kadmin._manager.run(send).topics[0].partitions[0].error_code

        results = {e: commit(e, mem.member_id, 1000 + e) for e in range(0, 25)}
        accepted = [e for e, code in results.items() if code == 0]
        assert len(accepted) == 1, results
        cur = accepted[0]
        assert cur >= 1, results
        assert all(code == 113 for e, code in results.items() if e != cur), \
            f"expected STALE_MEMBER_EPOCH (113) for every epoch but {cur}: {results}"
        assert committed_offsets(bs, group, topic, [0]) == {0: 1000 + cur}
        assert commit(cur, "no-such-member", 5) == 25
        assert committed_offsets(bs, group, topic, [0]) == {0: 1000 + cur}
    finally:
        kadmin.close()
    a.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sigterm", "kill9"])
def test_consumer_group_survives_broker_restart(cbroker, members, mode):
    """KIP-848 members are fenced by a restart (membership is not persisted)
    and rejoin by themselves; committed offsets survive; consumption resumes
    at them."""
    topic = unique(f"kip848-restart-{mode}")
    group = unique("g-kip848-restart")
    create_topic(cbroker.bootstrap, topic, partitions=4)
    run_restart_scenario(cbroker, members, topic, group, CONSUMER_PROTOCOL_CONF, mode,
                         rejoin_timeout=SESSION_S + 20)


def test_consumer_protocol_new_partitions_assigned(cbroker, members):
    """In KIP-848 the coordinator, not a client leader, must notice that a
    subscribed topic grew and assign the new partitions."""
    bs = cbroker.bootstrap
    topic = unique("kip848-grow")
    group = unique("g-kip848-grow")
    create_topic(bs, topic, partitions=2)
    ms = [members.start(n, bs, group, topic, CONSUMER_PROTOCOL_CONF) for n in "ab"]
    wait_split(ms, topic, 2, JOIN_TIMEOUT_S, sizes=[1, 1], what="1/1")
    a = admin(bs)
    a.create_partitions([NewPartitions(topic, 6)], request_timeout=15)[topic].result(timeout=20)
    wait_split(ms, topic, 6, 30, sizes=[3, 3], what="3/3 after growing the topic to 6")


def test_consumer_protocol_regex_subscription(cbroker, members):
    """A regex subscription (``^prefix.*``) is resolved by the coordinator in
    KIP-848: the member gets exactly the matching topics' partitions, and a
    matching topic created later is picked up."""
    bs = cbroker.bootstrap
    prefix = unique("kip848re")
    group = unique("g-kip848-re")
    t1, t2, t3 = f"{prefix}-x", f"{prefix}-y", f"{prefix}-z"
    other = unique("kip848-other")
    for t in (t1, t2, other):
        create_topic(bs, t, partitions=2)
    m = members.start("m", bs, group, f"^{prefix}-.*", CONSUMER_PROTOCOL_CONF)
    want = {(t, p) for t in (t1, t2) for p in range(2)}
    try:
        wait_until(lambda: m.refresh().assignment == want, timeout=15,
                   what=f"assignment of the topics matching ^{prefix}-.*")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{m.summary()}") from None
    create_topic(bs, t3, partitions=2)
    want |= {(t3, 0), (t3, 1)}
    try:
        wait_until(lambda: m.refresh().assignment == want, timeout=45,
                   what=f"the new matching topic {t3} to be assigned")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{m.summary()}") from None
    m.close()


def test_consumer_protocol_static_member_restart(cbroker, members):
    """KIP-848 static membership: a member with group.instance.id that closes
    leaves with epoch -2 (a temporary leave); the coordinator keeps its
    partitions for it until its session expires, so the others are not given
    them, and the restarted instance gets them back."""
    bs = cbroker.bootstrap
    topic = unique("kip848-static")
    group = unique("g-kip848-static")
    create_topic(bs, topic, partitions=6)

    def conf(inst):
        return {**CONSUMER_PROTOCOL_CONF, "group.instance.id": inst}
    a, b, c = (members.start(n, bs, group, topic, conf(f"inst-{n}")) for n in "abc")
    wait_split([a, b, c], topic, 6, JOIN_TIMEOUT_S, sizes=[2, 2, 2], what="2/2/2")
    owned = {m.name: set(m.assignment) for m in (a, b, c)}
    history = {m.name: (len(m.assigns), len(m.revokes)) for m in (a, c)}

    b.close()
    time.sleep(1.5)  # several heartbeat intervals (0.5 s): a reassignment would show
    for m in (a, c):
        m.refresh()
        assert set(m.assignment) == owned[m.name], (
            f"{m.name} was given partitions of a static member that only left "
            f"temporarily (epoch -2):\n{m.summary()}")
    b2 = members.start("b2", bs, group, topic, conf("inst-b"))
    try:
        wait_until(lambda: b2.refresh().assignment == owned["b"], timeout=20,
                   what=f"the restarted static member to get {sorted(owned['b'])} back")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{members.summary()}") from None
    time.sleep(1.0)
    for m in (a, c):
        m.refresh()
        assert set(m.assignment) == owned[m.name], m.summary()
        assert (len(m.assigns), len(m.revokes)) == history[m.name], m.summary()
    d = describe_group(bs, group)
    assert sorted(x.group_instance_id for x in d.members) == ["inst-a", "inst-b", "inst-c"], d.members


def test_consumer_protocol_heterogeneous_subscriptions(cbroker, members):
    """Members with different subscriptions: a partition only goes to a
    member subscribed to its topic; everything is owned exactly once."""
    bs = cbroker.bootstrap
    t1, t2 = unique("kip848-t1"), unique("kip848-t2")
    group = unique("g-kip848-het")
    create_topic(bs, t1, partitions=4)
    create_topic(bs, t2, partitions=2)
    a = members.start("a", bs, group, [t1], CONSUMER_PROTOCOL_CONF)
    b = members.start("b", bs, group, [t1, t2], CONSUMER_PROTOCOL_CONF)
    everything = {(t1, p) for p in range(4)} | {(t2, p) for p in range(2)}

    def done():
        a.refresh(), b.refresh()
        return (not a.assignment & b.assignment
                and a.assignment | b.assignment == everything
                and a.assignment and b.assignment)
    try:
        wait_until(done, timeout=JOIN_TIMEOUT_S, what="both topics fully assigned")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{a.summary()}\n{b.summary()}") from None
    assert {t for t, _ in a.assignment} == {t1}, a.assignment
    assert {(t2, 0), (t2, 1)} <= b.assignment, b.assignment


def test_consumer_protocol_unknown_assignor_is_refused(cbroker, members):
    """An unknown server-side assignor (group.remote.assignor) is refused with
    UNSUPPORTED_ASSIGNOR, as Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid
    does ("ServerAssignor X is not supported. Supported assignors: ...")."""
    bs = cbroker.bootstrap
    topic = unique("kip848-badassignor")
    create_topic(bs, topic, partitions=2)
    bad = members.start("bad", bs, unique("g-kip848-badassignor"), topic,
                        {**CONSUMER_PROTOCOL_CONF, "group.remote.assignor": "no-such-assignor"})
    try:
        wait_until(lambda: any(e["code"] == KafkaError.UNSUPPORTED_ASSIGNOR
                               or "assignor" in e.get("str", "").lower()
                               for e in bad.refresh().errors),
                   timeout=10, what="UNSUPPORTED_ASSIGNOR reported to the client")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{bad.summary()}") from None
    assert bad.assignment == set(), bad.summary()


def test_consumer_protocol_delete_group(cbroker, members):
    """DeleteGroups on a KIP-848 group: NON_EMPTY_GROUP with members, then
    deleted once they left (committed offsets go with it)."""
    bs = cbroker.bootstrap
    topic = unique("kip848-del")
    create_topic(bs, topic, partitions=2)
    group = unique("g-kip848-del")
    m = members.start("m", bs, group, topic, CONSUMER_PROTOCOL_CONF)
    wait_split([m], topic, 2, JOIN_TIMEOUT_S, what="m owns both")
    produce_keyed(bs, topic, "del", 20)
    wait_until(lambda: sum(committed_offsets(bs, group, topic, [0, 1]).values()) == 20,
               timeout=30, what="commits of all 20 records")
    a = admin(bs)
    try:
        a.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
        raise AssertionError("DeleteGroups on a group with a member succeeded")
    except KafkaException as exc:
        assert exc.args[0].code() == KafkaError.NON_EMPTY_GROUP, exc
    m.close()
    wait_until(lambda: describe_group(bs, group).state == ConsumerGroupState.EMPTY,
               timeout=10, what="group Empty")
    a.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
    assert group not in {g.group_id for g in list_groups(bs).valid}
    assert committed_offsets(bs, group, topic, [0, 1]) == {0: -1001, 1: -1001}
