"""Topic auto-creation (auto.create.topics.enable, num.partitions) and the
broker's --config file."""

from __future__ import annotations

from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import UnknownTopicOrPartitionError

from helpers import (DeliveryLog, admin, consumer, create_topic, kcat_metadata,
                     produce_all, producer, unique, wait_until)


def partition_count(bootstrap, topic):
    """Partition count from an all-topics listing (which never auto-creates);
    -1 when the topic is not listed."""
    md = admin(bootstrap).list_topics(timeout=10)
    t = md.topics.get(topic)
    return -1 if t is None else len(t.partitions)


def test_produce_to_missing_topic_creates_it(broker_factory):
    b = broker_factory({"num.partitions": 3})
    topic = unique("auto")
    assert partition_count(b.bootstrap, topic) == -1
    log = DeliveryLog()
    p = producer(b.bootstrap, acks="all")
    produce_all(p, topic, [(b"key-%d" % i, b"v%d" % i, None, None) for i in range(60)],
                partition=None, on_delivery=log)
    assert not log.errors, log.errors[:3]
    assert len(log.delivered) == 60

    assert partition_count(b.bootstrap, topic) == 3
    md = admin(b.bootstrap).list_topics(topic=topic, timeout=10)
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    assert all(pm.leader == 1 and pm.error is None
               for pm in md.topics[topic].partitions.values())
    c = consumer(b.bootstrap)
    try:
        total = 0
        for part in range(3):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10, cached=False)
            assert lo == 0
            total += hi
        assert total == 60
    finally:
        c.close()


def test_kafka_python_producer_auto_creates_with_num_partitions(broker_factory):
    b = broker_factory({"num.partitions": 3})
    topic = unique("auto-kp")
    p = KafkaProducer(bootstrap_servers=b.bootstrap, enable_idempotence=False, acks=1,
                      request_timeout_ms=15000, max_block_ms=15000)
    try:
        p.send(topic, key=b"k", value=b"v").get(timeout=30)
        assert p.partitions_for(topic) == {0, 1, 2}
    finally:
        p.close(timeout=10)
    assert partition_count(b.bootstrap, topic) == 3


def test_metadata_without_auto_create_flag_does_not_create(broker):
    """Auto-creation is enabled on the broker, but Metadata requests that
    set allow_auto_topic_creation=false must not create anything."""
    topic = unique("no-flag")
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        # kafka-python's admin always sends allow_auto_topic_creation=False.
        [meta] = kp.describe_topics([topic])
        assert meta["error_code"] == UnknownTopicOrPartitionError.errno, meta
    finally:
        kp.close()
    # A librdkafka consumer handle defaults to allow.auto.create.topics=false.
    c = consumer(broker.bootstrap)
    try:
        md = c.list_topics(topic=topic, timeout=10)
        assert md.topics[topic].error is not None
        assert md.topics[topic].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        c.close()
    assert partition_count(broker.bootstrap, topic) == -1


def test_auto_create_disabled(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "false", "num.partitions": 3})
    topic = unique("not-created")

    # kcat -L -t uses a producer handle: its Metadata request asks for
    # auto-creation, which the broker must refuse.
    md = kcat_metadata(b.bootstrap, topic=topic)
    [entry] = md["topics"]
    assert entry["topic"] == topic
    assert entry.get("error") == "Broker: Unknown topic or partition", entry
    assert entry["partitions"] == []

    a = admin(b.bootstrap)  # also a producer-type handle in librdkafka
    t = a.list_topics(topic=topic, timeout=10).topics[topic]
    assert t.error is not None and t.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, t.error

    kp = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000)
    try:
        [meta] = kp.describe_topics([topic])
        assert meta["error_code"] == UnknownTopicOrPartitionError.errno, meta
    finally:
        kp.close()

    # Producing fails instead of creating the topic.
    log = DeliveryLog()
    p = producer(b.bootstrap, acks="all", **{"message.timeout.ms": 3000})
    produce_all(p, topic, [(b"k", b"v", None, None)], partition=None, on_delivery=log,
                flush_timeout=20)
    assert not log.delivered, log.delivered
    assert [e.code() for _, e in log.errors][0] in (
        KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
        KafkaError._MSG_TIMED_OUT), log.errors

    assert partition_count(b.bootstrap, topic) == -1
    assert all(t["topic"] != topic for t in kcat_metadata(b.bootstrap)["topics"])

    # Explicit creation still works (and takes num.partitions as default).
    res = a.create_topics([NewTopic(topic)],  # -1/-1: broker defaults
                          request_timeout=15)
    res[topic].result(timeout=15)
    wait_until(lambda: partition_count(b.bootstrap, topic) == 3, timeout=15,
               what="explicitly created topic with num.partitions partitions")


def test_config_file_and_override_precedence(broker_factory):
    # Values from --config apply; --override wins over the file.
    b = broker_factory({"num.partitions": 4},
                       config_text="# written by the interop suite\n"
                                   "num.partitions=2\n"
                                   "auto.create.topics.enable=true\n")
    topic = unique("cfgfile")
    kcat_metadata(b.bootstrap, topic=topic)  # auto-creates
    wait_until(lambda: partition_count(b.bootstrap, topic) == 4, timeout=15,
               what="auto-created topic with 4 partitions (override beats file)")

    b2 = broker_factory(config_text="num.partitions=2\n", name="fileonly")
    topic2 = unique("cfgfile2")
    kcat_metadata(b2.bootstrap, topic=topic2)
    wait_until(lambda: partition_count(b2.bootstrap, topic2) == 2, timeout=15,
               what="auto-created topic with num.partitions from the config file")
    create_topic(b2.bootstrap, unique("explicit"), partitions=1)
