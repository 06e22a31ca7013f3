"""Interop with kcat (Debian's kcat 1.7.1 on librdkafka 2.0.2).

librdkafka 2.0.2 is strict about response encoding; in particular an empty
partition whose Fetch response carries a null records field (instead of an
empty one) makes it refetch forever, so every "read to the end" here runs
with a timeout.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from helpers import (create_topic, kcat, kcat_metadata, producer, produce_all,
                     unique, wait_until)

TAB = "\t"


def consume_lines(bootstrap, topic, *extra, fmt="%o\\t%s\\n", timeout=30):
    """kcat -C ... -e with a format string; returns stdout lines."""
    proc = kcat("-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", fmt,
                *extra, timeout=timeout)
    text = proc.stdout.decode("utf-8")
    assert text == "" or text.endswith("\n"), text
    return text.splitlines()


def kcat_produce(bootstrap, topic, lines, *extra, partition=0):
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    args = ["-P", "-b", bootstrap, "-t", topic, "-X", "acks=all"]
    if partition is not None:
        args += ["-p", str(partition)]
    kcat(*args, *extra, input=data)


def topic_entry(md, name):
    for t in md["topics"]:
        if t["topic"] == name:
            return t
    return None


# ---------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------

def test_metadata_lists_broker_and_topics(broker):
    one, three = unique("md-one"), unique("md-three")
    create_topic(broker.bootstrap, one, partitions=1)
    create_topic(broker.bootstrap, three, partitions=3)

    md = kcat_metadata(broker.bootstrap)
    assert md["brokers"] == [{"id": 1, "name": broker.bootstrap}], md["brokers"]
    assert md["controllerid"] == 1, md
    for name, count in ((one, 1), (three, 3)):
        t = topic_entry(md, name)
        assert t is not None, f"{name} missing from {md['topics']}"
        assert "error" not in t, t
        assert sorted(p["partition"] for p in t["partitions"]) == list(range(count)), t
        for p in t["partitions"]:
            assert "error" not in p, p
            assert p["leader"] == 1, p
            assert p["replicas"] == [{"id": 1}], p
            assert p["isrs"] == [{"id": 1}], p

    # The plain-text listing too (different code path in kcat, same data).
    text = kcat("-L", "-b", broker.bootstrap, "-m", "10").stdout.decode()
    assert re.search(rf"^\s+broker 1 at {re.escape(broker.bootstrap)}( \(controller\))?$",
                     text, re.M), text
    assert f'topic "{three}" with 3 partitions:\n' in text, text
    assert "partition 2, leader 1, replicas: 1, isrs: 1\n" in text, text

    # Metadata for one topic only.
    md = kcat_metadata(broker.bootstrap, topic=three)
    assert [t["topic"] for t in md["topics"]] == [three], md
    assert len(md["topics"][0]["partitions"]) == 3


def test_node_id_override_is_advertised(broker_factory):
    b = broker_factory({"node.id": 7})
    topic = unique("nodeid")
    kcat_produce(b.bootstrap, topic, ["x"], partition=None)
    md = kcat_metadata(b.bootstrap, topic=topic)
    assert md["brokers"] == [{"id": 7, "name": b.bootstrap}], md
    assert md["controllerid"] == 7, md
    part = md["topics"][0]["partitions"][0]
    assert part["leader"] == 7 and part["replicas"] == [{"id": 7}], part
    assert consume_lines(b.bootstrap, topic) == ["0\tx"]


def test_metadata_request_auto_creates_topic(broker):
    topic = unique("autocreated")
    # kcat -L uses a producer handle, so its Metadata request allows
    # auto-creation. The first answer may still say "leader not available".
    first = kcat_metadata(broker.bootstrap, topic=topic)
    assert [t["topic"] for t in first["topics"]] == [topic], first

    def listed():
        t = topic_entry(kcat_metadata(broker.bootstrap), topic)
        return t is not None and "error" not in t and len(t["partitions"]) == 1 \
            and t["partitions"][0]["leader"] == 1
    wait_until(listed, timeout=15, what=f"auto-created topic {topic} in the full listing")

    # And it is usable: empty, then one record.
    assert consume_lines(broker.bootstrap, topic) == []
    kcat_produce(broker.bootstrap, topic, ["hello"])
    assert consume_lines(broker.bootstrap, topic) == ["0\thello"]


# ---------------------------------------------------------------------------
# Produce / consume
# ---------------------------------------------------------------------------

def test_keyed_records_with_headers_roundtrip(broker):
    topic = unique("keyed")
    create_topic(broker.bootstrap, topic, partitions=1)
    lines = [
        "k1:v1",
        "k2:value with spaces",
        "k3:a:b:c",            # only the first ':' separates key and value
        "k\u00e9y4:v\u00e4l\u00fc\u00e9",  # non-ASCII bytes both sides
        ":no-key",             # empty (not null) key
    ]
    before = int(time.time() * 1000)
    kcat_produce(broker.bootstrap, topic, lines, "-K:", "-H", "h1=v1", "-H", "h2=v2")
    after = int(time.time() * 1000)

    out = consume_lines(broker.bootstrap, topic, "-p", "0", "-o", "beginning",
                        fmt="%k\\t%s\\t%h\\t%o\\t%p\\t%K\\t%S\\t%T\\n")
    expected = [
        ("k1", "v1"), ("k2", "value with spaces"), ("k3", "a:b:c"),
        ("k\u00e9y4", "v\u00e4l\u00fc\u00e9"), ("", "no-key"),
    ]
    assert len(out) == len(expected), out
    for offset, (line, (key, value)) in enumerate(zip(out, expected)):
        k, v, h, o, p, klen, vlen, ts = line.split(TAB)
        assert (k, v, h, o, p) == (key, value, "h1=v1,h2=v2", str(offset), "0"), line
        assert int(klen) == len(key.encode()) and int(vlen) == len(value.encode()), line
        assert before - 5000 <= int(ts) <= after + 5000, (line, before, after)

    # Same data through the JSON envelope: headers, timestamp type, broker id.
    proc = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-q", "-J")
    msgs = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [(m["key"], m["payload"]) for m in msgs] == expected
    for i, m in enumerate(msgs):
        assert m["offset"] == i and m["partition"] == 0, m
        assert m["headers"] == ["h1", "v1", "h2", "v2"], m
        assert m["tstype"] == "create", m
        assert m["broker"] == 1, m


def test_null_key_and_null_value(broker):
    topic = unique("nulls")
    create_topic(broker.bootstrap, topic, partitions=1)
    # -Z: an empty key or value is sent as NULL (a tombstone for the value).
    kcat_produce(broker.bootstrap, topic, ["a:1", "b:", ":c"], "-K:", "-Z")
    proc = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-q", "-J")
    msgs = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [(m["offset"], m["key"], m["payload"]) for m in msgs] == [
        (0, "a", "1"), (1, "b", None), (2, None, "c")], msgs
    out = consume_lines(broker.bootstrap, topic, "-Z", fmt="%K|%S|%k|%s\\n")
    assert out == ["1|1|a|1", "1|-1|b|NULL", "-1|1|NULL|c"], out


def test_consume_empty_topic_reaches_eof_and_exits(broker):
    topic = unique("empty")
    create_topic(broker.bootstrap, topic, partitions=1)
    # If the broker encodes an empty partition's records as null,
    # librdkafka 2.0.2 never reports EOF and kcat runs until the timeout.
    for extra in ((), ("-p", "0"), ("-p", "0", "-o", "end"), ("-o", "beginning")):
        proc = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", *extra, timeout=20)
        assert proc.stdout == b"", (extra, proc.stdout)
        assert b"Reached end of topic" in proc.stderr, (extra, proc.stderr)


def test_consume_empty_partition_next_to_full_one(broker):
    topic = unique("half-empty")
    create_topic(broker.bootstrap, topic, partitions=2)
    kcat_produce(broker.bootstrap, topic, [f"m{i}" for i in range(5)], partition=0)

    # All partitions: p0's data, then EOF on both.
    out = consume_lines(broker.bootstrap, topic, fmt="%p:%o:%s\\n", timeout=20)
    assert out == [f"0:{i}:m{i}" for i in range(5)], out
    # Only the empty one.
    assert consume_lines(broker.bootstrap, topic, "-p", "1", timeout=20) == []
    # The full one, starting at its end (a fetch at the high watermark).
    assert consume_lines(broker.bootstrap, topic, "-p", "0", "-o", "end", timeout=20) == []
    assert consume_lines(broker.bootstrap, topic, "-p", "0", "-o", "5", timeout=20) == []


def test_consume_from_offsets(broker):
    topic = unique("offsets")
    create_topic(broker.bootstrap, topic, partitions=1)
    kcat_produce(broker.bootstrap, topic, [f"m{i}" for i in range(10)])

    def run(*extra):
        return consume_lines(broker.bootstrap, topic, "-p", "0", *extra)

    assert run() == [f"{i}\tm{i}" for i in range(10)]
    assert run("-o", "5") == [f"{i}\tm{i}" for i in range(5, 10)]
    assert run("-o", "9") == ["9\tm9"]
    assert run("-o", "-3") == [f"{i}\tm{i}" for i in range(7, 10)]
    # -c stops after n messages (no -e needed, but it is harmless).
    assert run("-o", "3", "-c", "2") == ["3\tm3", "4\tm4"]

    # Appending more and reading only the new part.
    kcat_produce(broker.bootstrap, topic, [f"n{i}" for i in range(3)])
    assert run("-o", "10") == ["10\tn0", "11\tn1", "12\tn2"]


def test_offset_queries_by_timestamp(broker):
    """kcat -Q and -o s@<ts> both use ListOffsets with a timestamp."""
    topic = unique("ts-query")
    create_topic(broker.bootstrap, topic, partitions=1)
    base = int(time.time() * 1000) - 600_000
    stamps = [base + 1000 * i for i in range(10)]
    p = producer(broker.bootstrap, acks="all")
    produce_all(p, topic, [(b"k%d" % i, b"v%d" % i, None, stamps[i]) for i in range(10)])

    def query(ts):
        proc = kcat("-Q", "-J", "-b", broker.bootstrap, "-t", f"{topic}:0:{ts}")
        res = json.loads(proc.stdout)
        entry = res[topic]["0"]
        assert "error" not in entry, res
        return entry["offset"]

    assert query(base - 1) == 0
    assert query(stamps[4]) == 4
    assert query(stamps[4] + 1) == 5
    assert query(stamps[9]) == 9
    assert query(stamps[9] + 1) == -1  # no such record: "end"

    out = consume_lines(broker.bootstrap, topic, "-p", "0", "-o", f"s@{stamps[6]}",
                        fmt="%o\\t%s\\t%T\\n")
    assert out == [f"{i}\tv{i}\t{stamps[i]}" for i in range(6, 10)], out
    # Stop timestamp (exclusive).
    out = consume_lines(broker.bootstrap, topic, "-p", "0", "-o", f"s@{stamps[2]}",
                        "-o", f"e@{stamps[5]}", fmt="%o\\n")
    assert out == ["2", "3", "4"], out


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches(broker, codec):
    topic = unique(f"kcat-{codec}")
    create_topic(broker.bootstrap, topic, partitions=1)
    lines = [f"{i:05d}:" + ("payload-%d-" % i) * (1 + i % 7) for i in range(500)]
    # A long linger puts many records in each (compressed) batch.
    kcat_produce(broker.bootstrap, topic, lines, "-K:", "-z", codec, "-X", "linger.ms=100")
    out = consume_lines(broker.bootstrap, topic, fmt="%o|%k|%s\\n")
    assert out == [f"{i}|{line.replace(':', '|', 1)}" for i, line in enumerate(lines)]


def test_large_record_from_file(broker, tmp_path):
    topic = unique("large")
    create_topic(broker.bootstrap, topic, partitions=1)
    payload = bytes((i * 31 + 7) % 251 for i in range(900_000))
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    # A file argument (without -l) is produced as one message.
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-p", "0", str(path))
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-p", "0", input=b"small\n")
    proc = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-q", "-f", "%S\\n")
    assert proc.stdout == b"900000\n5\n"
    proc = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-e", "-q", "-c", "1", "-f", "%s")
    assert proc.stdout == payload


def test_kcat_reads_topic_created_by_other_client(broker):
    """Records written by librdkafka 2.16 (confluent-kafka), read by 2.0.2."""
    topic = unique("cross")
    p = producer(broker.bootstrap, acks="all", **{"compression.type": "zstd"})
    produce_all(p, topic, [(b"k%d" % i, b"v%d" % i, [("h", b"x%d" % i)], None)
                           for i in range(100)], partition=None)
    md = kcat_metadata(broker.bootstrap, topic=topic)
    assert len(md["topics"][0]["partitions"]) == 1
    out = consume_lines(broker.bootstrap, topic, fmt="%o %k %s %h\\n")
    assert out == [f"{i} k{i} v{i} h=x{i}" for i in range(100)], out[:5]
