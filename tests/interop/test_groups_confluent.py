"""Consumer groups (classic protocol) with confluent-kafka / librdkafka 2.16.

Members run as separate processes (group_member.py) so one can be SIGKILLed;
the AdminClient checks what the coordinator reports.  The broker runs with
group.initial.rebalance.delay.ms=0; members use the minimum session timeout
(6 s) with 0.5 s heartbeats.
"""

from __future__ import annotations

import time
import warnings

import pytest
from confluent_kafka import (ConsumerGroupState, ConsumerGroupTopicPartitions,
                             ConsumerGroupType, KafkaError, KafkaException,
                             TopicPartition)
from confluent_kafka.admin import ConfigResource, NewPartitions, ResourceType
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.protocol.consumer import OffsetCommitRequest

from group_helpers import (CLASSIC_CONF, GROUP_OVERRIDES, JOIN_TIMEOUT_S,
                           SESSION_TIMEOUT_MS, MemberSet, all_committed_offsets,
                           committed_offsets, describe_group, high_watermarks,
                           list_groups, produce_keyed, run_churn_scenario,
                           wait_committed, wait_split)
from helpers import admin, create_topic, unique, wait_until

SESSION_S = SESSION_TIMEOUT_MS / 1000


@pytest.fixture
def gbroker(broker_factory):
    return broker_factory(GROUP_OVERRIDES)


@pytest.fixture
def members(tmp_path):
    ms = MemberSet(tmp_path)
    yield ms
    ms.cleanup()


@pytest.fixture
def kadmin_factory():
    made = []

    def make(bootstrap):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            a = KafkaAdminClient(bootstrap_servers=bootstrap,
                                 client_id="strand-interop-group-admin",
                                 request_timeout_ms=15_000)
        made.append(a)
        return a
    yield make
    for a in made:
        a.close()


@pytest.fixture
def kadmin(gbroker, kadmin_factory):
    return kadmin_factory(gbroker.bootstrap)


def admin_error(fut, timeout=20):
    """The KafkaError a future failed with, or the first partition-level
    error of its result (fails if there is none)."""
    try:
        res = fut.result(timeout=timeout)
    except KafkaException as exc:
        return exc.args[0]
    for tp in getattr(res, "topic_partitions", None) or []:
        if tp.error is not None:
            return tp.error
    parts = [(tp.topic, tp.partition, tp.offset, tp.error)
             for tp in getattr(res, "topic_partitions", None) or []]
    raise AssertionError(f"expected an error, got {res!r} {parts}")


# ---------------------------------------------------------------------------
# Churn: join / leave / crash with a producer running, then resume
# ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_churn_at_least_once_and_resume(gbroker, members, strategy):
    """Three members split 6 partitions 2/2/2; one leaves (others own 3/3
    before a session timeout could expire), one is SIGKILLed (the survivor
    owns all six after the session timeout); with a producer running
    throughout, every record is consumed at least once; a new set of members
    resumes exactly at the committed offsets."""
    topic = unique(f"churn-{strategy}")
    group = unique("g-churn")
    create_topic(gbroker.bootstrap, topic, partitions=6)
    conf = {**CLASSIC_CONF, "partition.assignment.strategy": strategy}
    timings = run_churn_scenario(gbroker, members, topic, group, conf,
                                 session_timeout_s=SESSION_S,
                                 sticky=strategy == "cooperative-sticky")
    print(f"{strategy}: {timings}")


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_assignors_split_and_rebalance_on_leave(gbroker, members, strategy):
    """Every client-side assignor: 3 members -> 2/2/2, a 4th joins (all six
    still owned exactly once), two leave -> the two left own 3/3."""
    topic = unique(f"assignor-{strategy}")
    group = unique("g-assignor")
    create_topic(gbroker.bootstrap, topic, partitions=6)
    conf = {**CLASSIC_CONF, "partition.assignment.strategy": strategy}
    bs = gbroker.bootstrap
    ms = [members.start(n, bs, group, topic, conf) for n in ("a", "b", "c")]
    wait_split(ms, topic, 6, JOIN_TIMEOUT_S, sizes=[2, 2, 2], what="2/2/2")
    d = members.start("d", bs, group, topic, conf)
    wait_split(ms + [d], topic, 6, JOIN_TIMEOUT_S, sizes=[1, 1, 2, 2], what="2/2/1/1")

    desc = describe_group(bs, group)
    assert desc.state == ConsumerGroupState.STABLE, desc.state
    assert desc.partition_assignor == strategy, desc.partition_assignor
    assert len(desc.members) == 4, desc.members

    ms[0].close()
    ms[1].close()
    wait_split([ms[2], d], topic, 6, SESSION_S, sizes=[3, 3],
               what="3/3 after two members left (sooner than a session timeout)")
    ms[2].close()
    d.close()
    wait_until(lambda: describe_group(bs, group).state == ConsumerGroupState.EMPTY,
               timeout=10, what="group Empty after every member left")


# ---------------------------------------------------------------------------
# Static membership
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("strategy,restarted,subscription", [
    ("range", "b", "plain"),
    ("range", "a", "regex"),
    ("cooperative-sticky", "a", "plain"),
    ("cooperative-sticky", "b", "regex"),
])
def test_static_member_restart_keeps_assignment(gbroker, members, strategy, restarted,
                                                subscription):
    """KIP-345: a static member (group.instance.id) that restarts within its
    session timeout gets the same partitions back and nobody rebalances: the
    others are revoked nothing, through metadata refreshes, whether the member
    is a follower (b) or the leader (a, which librdkafka's JoinGroup v5 names
    under its old id so that it does not assign again), with an eager and a
    cooperative assignor, and with a plain or a regex subscription."""
    bs = gbroker.bootstrap
    topic = unique("static")
    group = unique("g-static")
    create_topic(bs, topic, partitions=6)
    subscribe = topic if subscription == "plain" else f"^{topic}.*"

    def conf(inst):
        # A long session: the restart (a new Python process) must fit in it.
        return {**CLASSIC_CONF, "session.timeout.ms": "30000",
                "group.instance.id": inst,
                "partition.assignment.strategy": strategy,
                "topic.metadata.refresh.interval.ms": "1000"}

    # a first, so that it is the leader.
    a = members.start("a", bs, group, subscribe, conf("inst-a"))
    wait_split([a], topic, 6, JOIN_TIMEOUT_S, what="a alone owns all six")
    b = members.start("b", bs, group, subscribe, conf("inst-b"))
    c = members.start("c", bs, group, subscribe, conf("inst-c"))
    wait_split([a, b, c], topic, 6, JOIN_TIMEOUT_S, sizes=[2, 2, 2], what="2/2/2")
    time.sleep(1.5)  # let a cooperative rebalance finish its second round

    before = describe_group(bs, group)
    by_inst = {m.group_instance_id: m for m in before.members}
    assert set(by_inst) == {"inst-a", "inst-b", "inst-c"}, by_inst
    old_id = by_inst[f"inst-{restarted}"].member_id
    gone = {"a": a, "b": b}[restarted]
    stay = [m for m in (a, b, c) if m is not gone]
    owned = {m.name: set(m.assignment) for m in (a, b, c)}
    history = {m.name: (len(m.assigns), len(m.revokes)) for m in stay}

    gone.close()  # librdkafka: a static member sends no LeaveGroup
    # The coordinator still counts it as a member until its session expires.
    mid = describe_group(bs, group)
    assert mid.state == ConsumerGroupState.STABLE, mid.state
    assert len(mid.members) == 3, [m.group_instance_id for m in mid.members]

    back = members.start(f"{restarted}2", bs, group, subscribe, conf(f"inst-{restarted}"))
    wait_until(lambda: back.refresh().assignment == owned[gone.name], timeout=20,
               what=f"restarted static member to get {sorted(owned[gone.name])} back")
    time.sleep(3.0)  # metadata refreshes (every second); a rebalance would show by now
    for m in stay:
        m.refresh()
        assert set(m.assignment) == owned[m.name], (m.name, m.assignment, owned[m.name])
        assert (len(m.assigns), len(m.revokes)) == history[m.name], (
            f"{m.name} went through a rebalance when a static member restarted:\n"
            f"{m.summary()}")
    back.refresh()
    assert back.assignment == owned[gone.name], back.summary()

    after = describe_group(bs, group)
    assert after.state == ConsumerGroupState.STABLE, after.state
    by_inst = {m.group_instance_id: m for m in after.members}
    assert set(by_inst) == {"inst-a", "inst-b", "inst-c"}, by_inst
    assert by_inst[f"inst-{restarted}"].member_id != old_id, \
        "static member kept its old member id"
    assert {(tp.topic, tp.partition)
            for tp in by_inst[f"inst-{restarted}"].assignment.topic_partitions} \
        == owned[gone.name]


# ---------------------------------------------------------------------------
# AdminClient
# ---------------------------------------------------------------------------

def test_admin_group_lifecycle(gbroker, members, kadmin):
    bs = gbroker.bootstrap
    topic = unique("adm")
    other = unique("adm-other")
    group = unique("g-adm")
    idle = unique("g-adm-idle")
    create_topic(bs, topic, partitions=6)
    create_topic(bs, other, partitions=2)
    a = admin(bs)

    # Offsets for a topic the group will not subscribe to, committed while
    # the group does not exist yet (the admin path: generation -1).
    res = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(other, 0, 7), TopicPartition(other, 1, 9)])],
        request_timeout=15)[group].result(timeout=20)
    assert [(tp.partition, tp.offset, tp.error) for tp in res.topic_partitions] == \
        [(0, 7, None), (1, 9, None)], res.topic_partitions
    # A second group that only has offsets: Empty.
    a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        idle, [TopicPartition(topic, 0, 1)])], request_timeout=15)[idle].result(timeout=20)

    produce_keyed(bs, topic, "adm", 120)
    m1 = members.start("m1", bs, group, topic, CLASSIC_CONF)
    m2 = members.start("m2", bs, group, topic, CLASSIC_CONF)
    wait_split([m1, m2], topic, 6, JOIN_TIMEOUT_S, sizes=[3, 3], what="3/3")
    hw = high_watermarks(bs, topic, range(6))
    wait_committed(bs, group, topic, hw, timeout=30, members=[m1, m2])

    # -- ListGroups with filters ------------------------------------------------
    listed = {g.group_id: g for g in list_groups(bs).valid}
    assert group in listed and idle in listed, sorted(listed)
    assert listed[group].state == ConsumerGroupState.STABLE, listed[group].state
    assert listed[group].type == ConsumerGroupType.CLASSIC, listed[group].type
    assert listed[group].is_simple_consumer_group is False
    assert listed[idle].state == ConsumerGroupState.EMPTY, listed[idle].state
    stable = {g.group_id for g in list_groups(bs, states={ConsumerGroupState.STABLE}).valid}
    assert group in stable and idle not in stable, stable
    empty = {g.group_id for g in list_groups(bs, states={ConsumerGroupState.EMPTY}).valid}
    assert idle in empty and group not in empty, empty
    classic = {g.group_id for g in list_groups(bs, types={ConsumerGroupType.CLASSIC}).valid}
    assert group in classic, classic
    modern = {g.group_id for g in list_groups(bs, types={ConsumerGroupType.CONSUMER}).valid}
    assert group not in modern and idle not in modern, modern

    # -- DescribeGroups (two groups and an unknown one in one call) -----------
    unknown = unique("g-unknown")
    futs = a.describe_consumer_groups([group, idle, unknown], request_timeout=15)
    desc = futs[group].result(timeout=20)
    assert desc.state == ConsumerGroupState.STABLE, desc.state
    assert desc.type == ConsumerGroupType.CLASSIC, desc.type
    assert desc.partition_assignor == "range", desc.partition_assignor
    assert desc.is_simple_consumer_group is False
    assert len(desc.members) == 2, desc.members
    owned = []
    for mem in desc.members:
        assert mem.member_id and mem.client_id and mem.host, mem
        assert mem.group_instance_id is None, mem
        owned += [(tp.topic, tp.partition) for tp in mem.assignment.topic_partitions]
    assert sorted(owned) == [(topic, p) for p in range(6)], owned
    assert sorted(len(mem.assignment.topic_partitions) for mem in desc.members) == [3, 3]
    d_idle = futs[idle].result(timeout=20)
    assert d_idle.state == ConsumerGroupState.EMPTY and d_idle.members == [], d_idle
    d_unknown = futs[unknown].result(timeout=20)
    assert d_unknown.state in (ConsumerGroupState.DEAD, ConsumerGroupState.UNKNOWN), d_unknown.state
    assert d_unknown.members == [], d_unknown.members

    # -- OffsetFetch ----------------------------------------------------------
    everything = all_committed_offsets(bs, group)
    assert everything == {**{(topic, p): hw[p] for p in range(6)},
                          (other, 0): 7, (other, 1): 9}, everything

    # -- what an active group refuses ---------------------------------------------
    err = admin_error(a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 0)])], request_timeout=15)[group])
    assert err.code() == KafkaError.UNKNOWN_MEMBER_ID, err
    err = admin_error(a.delete_consumer_groups([group], request_timeout=15)[group])
    assert err.code() == KafkaError.NON_EMPTY_GROUP, err
    err = admin_error(a.delete_consumer_groups([unknown], request_timeout=15)[unknown])
    assert err.code() == KafkaError.GROUP_ID_NOT_FOUND, err
    # OffsetDelete (confluent-kafka-python has no delete_consumer_group_offsets;
    # kafka-python's delete_group_offsets sends the same OffsetDelete v0).
    res = kadmin.delete_group_offsets(group, [KTopicPartition(topic, 0),
                                              KTopicPartition(other, 0)])
    errs = {(tp.topic, tp.partition): e.__name__ for tp, e in res.items()}
    assert errs == {(topic, 0): "GroupSubscribedToTopicError",
                    (other, 0): "NoError"}, errs
    assert all_committed_offsets(bs, group) == {
        **{(topic, p): hw[p] for p in range(6)}, (other, 1): 9}

    # -- once empty, the same requests succeed --------------------------------
    m1.close()
    m2.close()
    wait_until(lambda: describe_group(bs, group).state == ConsumerGroupState.EMPTY,
               timeout=10, what="group Empty after both members left")
    empty = {g.group_id for g in list_groups(bs, states={ConsumerGroupState.EMPTY}).valid}
    assert group in empty, empty
    res = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 1)])],
        request_timeout=15)[group].result(timeout=20)
    assert all(tp.error is None for tp in res.topic_partitions), res.topic_partitions
    got = committed_offsets(bs, group, topic, range(6))
    assert got == {**hw, 0: 0, 1: 1}, got
    res = kadmin.delete_group_offsets(group, [KTopicPartition(topic, 2)])
    assert {(tp.topic, tp.partition): e.__name__ for tp, e in res.items()} == \
        {(topic, 2): "NoError"}, res
    got = committed_offsets(bs, group, topic, range(6))
    assert got == {**hw, 0: 0, 1: 1, 2: -1001}, got

    for g in (group, idle):
        a.delete_consumer_groups([g], request_timeout=15)[g].result(timeout=20)
    left = {g.group_id for g in list_groups(bs).valid}
    assert group not in left and idle not in left, left
    assert all_committed_offsets(bs, group) == {}
    d = describe_group(bs, group)
    assert d.state in (ConsumerGroupState.DEAD, ConsumerGroupState.UNKNOWN), d.state
    err = admin_error(a.delete_consumer_groups([group], request_timeout=15)[group])
    assert err.code() == KafkaError.GROUP_ID_NOT_FOUND, err


# ---------------------------------------------------------------------------
# Bad input from clients
# ---------------------------------------------------------------------------

def _commit(kadmin, group, generation, member_id, topic, offset, instance=None):
    """A raw OffsetCommit (kafka-python's protocol classes); returns the
    partition error code."""
    T = OffsetCommitRequest.OffsetCommitRequestTopic
    P = T.OffsetCommitRequestPartition
    req = OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
        group_instance_id=instance, retention_time_ms=-1,
        topics=[T(name=topic, partitions=[P(partition_index=0, committed_offset=offset,
                                            committed_leader_epoch=-1,
                                            committed_metadata="")])],
        max_version=8)

    async def send():
        return await kadmin._manager.send(req, node_id=1)

    resp = kadmin._manager.run(send)
    [t] = resp.topics
    [p] = t.partitions
    return p.error_code


def test_commit_with_stale_generation_is_rejected(gbroker, members, kadmin):
    """OffsetCommit from a member of an older generation is refused with
    ILLEGAL_GENERATION; an unknown member id with UNKNOWN_MEMBER_ID; only the
    current generation's commit is stored."""
    bs = gbroker.bootstrap
    topic = unique("stale")
    group = unique("g-stale")
    create_topic(bs, topic, partitions=2)
    a = members.start("a", bs, group, topic, CLASSIC_CONF, commit=False)
    wait_split([a], topic, 2, JOIN_TIMEOUT_S, what="a owns both")
    b = members.start("b", bs, group, topic, CLASSIC_CONF, commit=False)
    wait_split([a, b], topic, 2, JOIN_TIMEOUT_S, sizes=[1, 1], what="1/1")
    # a is still in the group after the second rebalance; its id:
    a_id = [m.member_id for m in describe_group(bs, group).members]
    assert len(a_id) == 2, a_id

    # Exactly one generation is current; b's arrival made it at least 2.
    results = {}
    for gen in range(0, 12):
        results[gen] = _commit(kadmin, group, gen, a_id[0], topic, 100 + gen)
    accepted = [g for g, code in results.items() if code == 0]
    assert len(accepted) == 1, results
    current = accepted[0]
    assert current >= 2, results
    assert all(code == 22 for g, code in results.items() if g != current), \
        f"expected ILLEGAL_GENERATION (22) for every other generation: {results}"
    assert committed_offsets(bs, group, topic, [0]) == {0: 100 + current}

    assert _commit(kadmin, group, current, "no-such-member", topic, 5) == 25  # UNKNOWN_MEMBER_ID
    assert _commit(kadmin, group, current - 1, a_id[1], topic, 6) == 22
    assert committed_offsets(bs, group, topic, [0]) == {0: 100 + current}
    # Admin-style commit (generation -1, no member) to a non-empty group.
    assert _commit(kadmin, group, -1, "", topic, 7) == 25
    a.close()
    b.close()
    wait_until(lambda: describe_group(bs, group).state == ConsumerGroupState.EMPTY,
               timeout=10, what="group Empty")
    assert _commit(kadmin, group, -1, "", topic, 8) == 0
    assert committed_offsets(bs, group, topic, [0]) == {0: 8}


def test_commit_accepted_while_preparing_rebalance(gbroker, members, kadmin):
    """Kafka accepts an OffsetCommit with the current generation while the
    group is PreparingRebalance ("we rely on heartbeat response to eventually
    notify the rebalance in progress signal to the consumer"); only
    CompletingRebalance answers REBALANCE_IN_PROGRESS.  Member a heartbeats
    every 8 s, so a join by another member leaves the group PreparingRebalance
    long enough to commit in that state."""
    bs = gbroker.bootstrap
    topic = unique("prep")
    group = unique("g-prep")
    create_topic(bs, topic, partitions=2)
    slow = {"session.timeout.ms": "30000", "heartbeat.interval.ms": "8000"}
    a = members.start("a", bs, group, topic, slow, commit=False)
    wait_split([a], topic, 2, JOIN_TIMEOUT_S, what="a owns both")
    a_id = describe_group(bs, group).members[0].member_id

    def state():
        return describe_group(bs, group, timeout=5).state

    for attempt in range(3):
        wait_until(lambda: state() == ConsumerGroupState.STABLE, timeout=30,
                   what="group Stable")
        gens = [g for g in range(0, 15) if _commit(kadmin, group, g, a_id, topic, 1) == 0]
        assert len(gens) == 1, gens
        members.start(f"joiner{attempt}", bs, group, topic, slow, commit=False)
        wait_until(lambda: state() == ConsumerGroupState.PREPARING_REBALANCING, timeout=15,
                   what="group PreparingRebalance after a new member joined")
        code = _commit(kadmin, group, gens[0], a_id, topic, 100 + attempt)
        if state() == ConsumerGroupState.PREPARING_REBALANCING:
            assert code == 0, (
                f"OffsetCommit with the current generation {gens[0]} while the group was "
                f"PreparingRebalance was refused with error {code} (Kafka accepts it)")
            assert committed_offsets(bs, group, topic, [0]) == {0: 100 + attempt}
            return
    raise AssertionError("the group never stayed PreparingRebalance long enough to commit")


@pytest.mark.parametrize("session_ms, overrides", [
    (3000, {}),                                          # below the 6000 minimum
    (20000, {"group.max.session.timeout.ms": "10000"}),  # above a lowered maximum
], ids=["below-min", "above-max"])
def test_session_timeout_outside_broker_bounds(broker_factory, members, session_ms, overrides):
    """A member asking for a session timeout outside [group.min.session.timeout.ms,
    group.max.session.timeout.ms] is refused (INVALID_SESSION_TIMEOUT) and
    never gets an assignment."""
    bs = broker_factory({**GROUP_OVERRIDES, **overrides}).bootstrap
    topic = unique("badsession")
    group = unique("g-badsession")
    create_topic(bs, topic, partitions=1)
    m = members.start("m", bs, group, topic,
                      {"session.timeout.ms": str(session_ms), "heartbeat.interval.ms": "500"})
    wait_until(lambda: any(e["code"] == KafkaError.INVALID_SESSION_TIMEOUT
                           for e in m.refresh().errors),
               timeout=20, what="INVALID_SESSION_TIMEOUT reported to the client")
    assert m.assignment == set(), m.summary()


def test_group_max_size(broker_factory, members):
    """group.max.size=2: a third member is refused with GROUP_MAX_SIZE_REACHED;
    the two members keep their partitions."""
    bs = broker_factory({**GROUP_OVERRIDES, "group.max.size": "2"}).bootstrap
    topic = unique("maxsize")
    group = unique("g-maxsize")
    create_topic(bs, topic, partitions=4)
    a = members.start("a", bs, group, topic, CLASSIC_CONF)
    b = members.start("b", bs, group, topic, CLASSIC_CONF)
    wait_split([a, b], topic, 4, JOIN_TIMEOUT_S, sizes=[2, 2], what="2/2")
    owned = {m.name: set(m.assignment) for m in (a, b)}
    c = members.start("c", bs, group, topic, CLASSIC_CONF)
    wait_until(lambda: any(e["code"] == KafkaError.GROUP_MAX_SIZE_REACHED
                           for e in c.refresh().errors),
               timeout=20, what="GROUP_MAX_SIZE_REACHED reported to the third member")
    time.sleep(1.0)
    assert c.refresh().assignment == set(), c.summary()
    for m in (a, b):
        assert m.refresh().assignment == owned[m.name], m.summary()
    d = describe_group(bs, group)
    assert d.state == ConsumerGroupState.STABLE and len(d.members) == 2, (d.state, d.members)


def test_static_member_fenced_by_newer_instance(gbroker, members):
    """Two live consumers with the same group.instance.id: the newer one takes
    over the member (and its partitions); the older one is fenced
    (FENCED_INSTANCE_ID, fatal in librdkafka)."""
    bs = gbroker.bootstrap
    topic = unique("fenced")
    group = unique("g-fenced")
    create_topic(bs, topic, partitions=2)
    conf = {**CLASSIC_CONF, "group.instance.id": "same-instance"}
    old = members.start("old", bs, group, topic, conf)
    wait_split([old], topic, 2, JOIN_TIMEOUT_S, what="old owns both")
    new = members.start("new", bs, group, topic, conf)

    def fenced(e):
        # librdkafka reports it through error_cb as _FATAL ("Fatal error:
        # Broker: Static consumer fenced ..."), or as FENCED_INSTANCE_ID.
        return e["code"] == KafkaError.FENCED_INSTANCE_ID or (
            e["code"] == KafkaError._FATAL and "fenced" in e.get("str", "").lower())
    wait_until(lambda: any(fenced(e) for e in old.refresh().errors), timeout=20,
               what="the older instance to be fenced")
    wait_until(lambda: new.refresh().partitions(topic) == {0, 1}, timeout=20,
               what="the newer instance to own both partitions")
    d = describe_group(bs, group)
    assert [m.group_instance_id for m in d.members] == ["same-instance"], d.members


def test_offsets_topic_partitions_and_unknown_topic_commit(broker_factory, kadmin_factory):
    """offsets.topic.num.partitions sizes __consumer_offsets (an internal,
    compacted topic, created on first use); a commit for a topic that does not
    exist is refused with UNKNOWN_TOPIC_OR_PARTITION."""
    broker = broker_factory({**GROUP_OVERRIDES, "offsets.topic.num.partitions": "3"})
    bs = broker.bootstrap
    topic = unique("otp")
    group = unique("g-otp")
    create_topic(bs, topic, partitions=1)
    a = admin(bs)
    a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 3)])], request_timeout=15)[group].result(timeout=20)
    assert committed_offsets(bs, group, topic, [0]) == {0: 3}
    kadmin = kadmin_factory(bs)
    [meta] = [t for t in kadmin.describe_topics(["__consumer_offsets"])
              if t["name"] == "__consumer_offsets"]
    assert meta["error_code"] == 0 and meta["is_internal"] is True, meta
    assert len(meta["partitions"]) == 3, meta["partitions"]
    res = ConfigResource(ResourceType.TOPIC, "__consumer_offsets")
    configs = a.describe_configs([res], request_timeout=15)[res].result(timeout=20)
    assert configs["cleanup.policy"].value == "compact", configs["cleanup.policy"]

    missing = unique("no-such-topic")
    err = admin_error(a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(missing, 0, 1)])], request_timeout=15)[group])
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    assert (missing, 0) not in all_committed_offsets(bs, group)


def test_initial_rebalance_delay_gathers_members(broker_factory, members):
    """group.initial.rebalance.delay.ms: members that join a new group within
    the delay form one first generation -- nobody is assigned anything before
    the delay has passed, and each member's first assignment is already its
    2/2/2 share (no interim generation where the first member owns all)."""
    delay_ms = 2500
    bs = broker_factory({"group.initial.rebalance.delay.ms": str(delay_ms)}).bootstrap
    topic = unique("delay")
    group = unique("g-delay")
    create_topic(bs, topic, partitions=6)
    t0 = time.time()
    ms = [members.start(n, bs, group, topic, CLASSIC_CONF) for n in "abc"]
    wait_split(ms, topic, 6, JOIN_TIMEOUT_S, sizes=[2, 2, 2], what="2/2/2")
    for m in ms:
        first_t, first_parts = m.assigns[0]
        assert len(first_parts) == 2, (
            f"{m.name}'s first assignment was {first_parts}: the initial delay did "
            f"not gather the three members into one generation\n{m.summary()}")
        assert first_t - t0 >= delay_ms / 1000, (
            f"{m.name} was assigned {first_t - t0:.2f}s after the members started, "
            f"before group.initial.rebalance.delay.ms={delay_ms}")


def test_partition_growth_reaches_classic_group(gbroker, members):
    """CreatePartitions on a subscribed topic: the (librdkafka) leader sees the
    new partition count in metadata and rejoins; the new partitions are
    assigned."""
    bs = gbroker.bootstrap
    topic = unique("grow")
    group = unique("g-grow")
    create_topic(bs, topic, partitions=2)
    conf = {**CLASSIC_CONF, "topic.metadata.refresh.interval.ms": "1000"}
    ms = [members.start(n, bs, group, topic, conf) for n in "ab"]
    wait_split(ms, topic, 2, JOIN_TIMEOUT_S, sizes=[1, 1], what="1/1")
    a = admin(bs)
    a.create_partitions([NewPartitions(topic, 6)], request_timeout=15)[topic].result(timeout=20)
    wait_split(ms, topic, 6, 30, sizes=[3, 3], what="3/3 after growing the topic to 6")


def test_no_common_assignor_is_refused(gbroker, members):
    """A member whose assignors share nothing with the group's is refused
    with INCONSISTENT_GROUP_PROTOCOL; the group is not disturbed."""
    bs = gbroker.bootstrap
    topic = unique("noproto")
    group = unique("g-noproto")
    create_topic(bs, topic, partitions=2)
    a = members.start("a", bs, group, topic,
                      {**CLASSIC_CONF, "partition.assignment.strategy": "range"})
    wait_split([a], topic, 2, JOIN_TIMEOUT_S, what="a owns both")
    b = members.start("b", bs, group, topic,
                      {**CLASSIC_CONF, "partition.assignment.strategy": "roundrobin"})
    wait_until(lambda: any(e["code"] == KafkaError.INCONSISTENT_GROUP_PROTOCOL
                           for e in b.refresh().errors),
               timeout=20, what="INCONSISTENT_GROUP_PROTOCOL for the odd member")
    assert b.assignment == set(), b.summary()
    assert a.refresh().partitions(topic) == {0, 1}, a.summary()
    d = describe_group(bs, group)
    assert d.state == ConsumerGroupState.STABLE and len(d.members) == 1, (d.state, d.members)
    assert d.partition_assignor == "range", d.partition_assignor
