"""Consumer groups with kcat's balanced consumer (``kcat -G``, librdkafka's
high-level consumer; Debian's kcat links librdkafka 2.0).  kcat keeps
librdkafka's defaults: auto commit of consumed offsets, and a final commit
when it closes (after ``-c``/``-e`` or on SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from confluent_kafka import ConsumerGroupState

from group_helpers import (GROUP_OVERRIDES, committed_offsets, describe_group,
                           high_watermarks, produce_keyed)
from helpers import create_topic, kcat, unique, wait_until

FMT = "%p %o %k\\n"


@pytest.fixture
def gbroker(broker_factory):
    return broker_factory(GROUP_OVERRIDES)


def group_args(bootstrap, group, *extra):
    return ["-b", bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
            "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
            "-f", FMT, "-u", *extra]


def parse(out: bytes) -> list:
    recs = []
    for line in out.decode().splitlines():
        if line.strip():
            p, o, k = line.split(" ", 2)
            recs.append((int(p), int(o), k))
    return recs


def test_kcat_group_reads_all_commits_and_resumes(gbroker):
    bs = gbroker.bootstrap
    topic = unique("kcat-group")
    group = unique("g-kcat")
    create_topic(bs, topic, partitions=3)
    first = produce_keyed(bs, topic, "first", 300)

    proc = kcat(*group_args(bs, group, "-c", "300", topic), timeout=60)
    recs = parse(proc.stdout)
    assert len(recs) == 300, (len(recs), proc.stderr[-2000:])
    assert {(p, o): k for p, o, k in recs} == {po: k for k, po in first.items()}
    hw = high_watermarks(bs, topic, range(3))
    assert committed_offsets(bs, group, topic, range(3)) == hw

    # Nothing new: -e ends at the committed position without output.
    proc = kcat(*group_args(bs, group, "-e", topic), timeout=60)
    assert parse(proc.stdout) == [], proc.stdout[:500]

    # A second kcat in the same group continues where the first stopped.
    second = produce_keyed(bs, topic, "second", 150)
    proc = kcat(*group_args(bs, group, "-c", "150", topic), timeout=60)
    recs = parse(proc.stdout)
    below = [(p, o) for p, o, _ in recs if o < hw[p]]
    assert not below, f"re-read below the committed offsets {hw}: {below[:10]}"
    assert {(p, o): k for p, o, k in recs} == {po: k for k, po in second.items()}
    assert len(recs) == 150
    assert committed_offsets(bs, group, topic, range(3)) == high_watermarks(bs, topic, range(3))


def test_two_kcat_members_split_partitions(gbroker, tmp_path):
    bs = gbroker.bootstrap
    topic = unique("kcat-pair")
    group = unique("g-kcat-pair")
    create_topic(bs, topic, partitions=4)
    env = dict(os.environ, KCAT_CONFIG=os.devnull)
    procs = []
    outs = []
    try:
        for i in range(2):
            out = tmp_path / f"kcat{i}.out"
            err = tmp_path / f"kcat{i}.err"
            outs.append((out, err))
            with open(out, "wb") as o, open(err, "wb") as e:
                procs.append(subprocess.Popen(["kcat", *group_args(bs, group, topic)],
                                              stdout=o, stderr=e, env=env,
                                              stdin=subprocess.DEVNULL))

        def split():
            d = describe_group(bs, group)
            if d.state != ConsumerGroupState.STABLE or len(d.members) != 2:
                return False
            owned = [sorted(tp.partition for tp in m.assignment.topic_partitions)
                     for m in d.members]
            return sorted(map(len, owned)) == [2, 2] and \
                sorted(owned[0] + owned[1]) == [0, 1, 2, 3]

        def diag():
            return "\n".join(e.read_text(errors="replace")[-1500:] for _, e in outs)
        try:
            wait_until(split, timeout=30, what="two kcat members with 2 partitions each")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{diag()}") from None

        delivered = produce_keyed(bs, topic, "pair", 200)
        want = {po: k for k, po in delivered.items()}

        def seen():
            per = [{(p, o): k for p, o, k in parse(out.read_bytes())} for out, _ in outs]
            return per
        try:
            wait_until(lambda: {**seen()[0], **seen()[1]} == want, timeout=30,
                       what="both kcat members together to print all 200 records")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{diag()}") from None
        per = seen()
        parts = [{p for p, _ in s} for s in per]
        assert parts[0] and parts[1] and not parts[0] & parts[1], parts

        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # kcat closes the consumer: final commit
        for proc in procs:
            assert proc.wait(timeout=30) == 0, diag()
        hw = high_watermarks(bs, topic, range(4))
        assert committed_offsets(bs, group, topic, range(4)) == hw
        wait_until(lambda: describe_group(bs, group).state == ConsumerGroupState.EMPTY,
                   timeout=10, what="group Empty once both kcat members left")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
