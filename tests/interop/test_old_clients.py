"""Clients that speak only request versions Kafka 4 removed (KIP-896).

kafka-python pinned to an old broker version (``api_version=...``) picks its
request versions from its own table for that version and never from the
broker's ApiVersions answer: (0, 10, 1) commits with OffsetCommit v2 and
lists offsets with ListOffsets v1, (0, 10, 0) lists them with ListOffsets v0
(what consumer-lag monitors built on it send), and (0, 8, 2) commits with
OffsetCommit v1. Their commits must be the same offsets a modern client reads.
Produce below v3 and Fetch below v4 (message formats 0 and 1) are not served;
the data here is written by librdkafka.
"""

from __future__ import annotations

import warnings

import pytest
from confluent_kafka import TopicPartition as CTopicPartition
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from helpers import consumer, create_topic, produce_all, producer, unique

TIMEOUT_MS = 15_000


def old_consumer(bootstrap, api_version, group):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return KafkaConsumer(bootstrap_servers=bootstrap, api_version=api_version,
                             group_id=group, enable_auto_commit=False,
                             client_id="strand-interop-old-client",
                             request_timeout_ms=TIMEOUT_MS)


@pytest.mark.parametrize("api_version", [(0, 10, 1), (0, 10, 0), (0, 8, 2)],
                         ids=lambda v: ".".join(map(str, v)))
def test_old_client_commits_fetches_and_lists_offsets(broker, api_version):
    bs = broker.bootstrap
    topic = unique("old")
    group = unique("g-old")
    create_topic(bs, topic, partitions=2)
    p = producer(bs)
    produce_all(p, topic, [(b"k%d" % i, b"v", None, 1_700_000_000_000 + i)
                           for i in range(30)], partition=0)
    produce_all(p, topic, [(b"k%d" % i, b"v", None, None) for i in range(5)], partition=1)

    c = old_consumer(bs, api_version, group)
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        c.assign(tps)
        assert c.end_offsets(tps) == {tps[0]: 30, tps[1]: 5}
        assert c.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
        if api_version >= (0, 10, 1):
            # ListOffsets v1 carries a timestamp; v0 knows only earliest and latest.
            found = c.offsets_for_times({tps[0]: 1_700_000_000_012})
            assert found[tps[0]].offset == 12, found
        c.commit({tps[0]: OffsetAndMetadata(17, "old client", -1),
                  tps[1]: OffsetAndMetadata(3, "", -1)})
        assert c.committed(tps[0]) == 17
        assert c.committed(tps[1]) == 3
    finally:
        c.close(autocommit=False)

    # A modern client (librdkafka, OffsetFetch v8+) reads the same commits.
    modern = consumer(bs, **{"group.id": group})
    try:
        got = modern.committed([CTopicPartition(topic, 0), CTopicPartition(topic, 1)],
                               timeout=15)
        assert [(tp.partition, tp.offset) for tp in got] == [(0, 17), (1, 3)], got
        assert got[0].metadata == "old client"
    finally:
        modern.close()
