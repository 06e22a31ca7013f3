"""One confluent-kafka consumer-group member, run as its own process.

Used by the group tests (``group_helpers.MemberProcess``) so that a member
can be killed with SIGKILL (no LeaveGroup, no final commit), exactly like a
crashed application.

    python group_member.py --bootstrap H:P --group G --topics t1,t2 \
        --out events.jsonl [--conf key=value ...] [--no-commit]

Everything the member sees is appended to ``--out`` as JSON lines, one
``write()`` per line, flushed at once, so a SIGKILL loses nothing that was
reported:

    {"ev": "started"}
    {"ev": "assign", "parts": [[topic, p], ...]}      on_assign callback
    {"ev": "revoke", "parts": [...]}                   on_revoke callback
    {"ev": "lost", "parts": [...]}                     on_lost callback
    {"ev": "assignment", "parts": [...]}               consumer.assignment() changed
    {"ev": "recs", "r": [[topic, p, offset, key], ...]}  records handled
    {"ev": "commit", "offsets": [[topic, p, next_offset], ...]}  sync commit ok
    {"ev": "commit_err", "code": int, "name": str, "offsets": [...]}
    {"ev": "error", "code": int, "name": str, "fatal": bool, "str": str}
    {"ev": "closed"}

Records are reported *before* their offsets are committed (process, then
commit), so every committed offset is covered by a reported record.  A
commit that fails (e.g. REBALANCE_IN_PROGRESS) is retried every 0.5 s for
the partitions the member still owns.

Commands on stdin, one per line: ``close`` (consumer.close(), which sends
LeaveGroup for dynamic members, then exit 0).  EOF on stdin is treated as
``close`` so an orphaned member does not linger.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


class Out:
    def __init__(self, path: str):
        # Unbuffered binary file: each line is one write(2), so a SIGKILL
        # never leaves half of an earlier line behind.
        self.f = open(path, "ab", buffering=0)
        self.lock = threading.Lock()

    def emit(self, ev: str, **fields) -> None:
        fields["ev"] = ev
        fields["t"] = time.time()
        data = (json.dumps(fields, separators=(",", ":")) + "\n").encode()
        with self.lock:
            self.f.write(data)


def parts_of(partitions) -> list:
    return sorted([tp.topic, tp.partition] for tp in partitions)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topics", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--conf", action="append", default=[])
    ap.add_argument("--no-commit", action="store_true")
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()

    out = Out(args.out)
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "check.crcs": True,
    }
    for kv in args.conf:
        k, _, v = kv.partition("=")
        conf[k] = v

    def on_error(err):
        out.emit("error", code=err.code(), name=err.name(), fatal=err.fatal(),
                 str=err.str())

    conf["error_cb"] = on_error
    c = Consumer(conf)

    def on_assign(_c, partitions):
        out.emit("assign", parts=parts_of(partitions))

    def on_revoke(_c, partitions):
        out.emit("revoke", parts=parts_of(partitions))

    def on_lost(_c, partitions):
        out.emit("lost", parts=parts_of(partitions))

    c.subscribe(args.topics.split(","), on_assign=on_assign,
                on_revoke=on_revoke, on_lost=on_lost)
    out.emit("started", pid=os.getpid())

    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "close":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()

    last_assignment = None
    # Offsets handled but not yet committed (a commit failed, e.g. during a
    # rebalance): retried for the partitions still owned, as an application
    # (or auto commit) would, until they are committed.
    pending = {}
    last_attempt = 0.0
    while not stop.is_set():
        msgs = c.consume(num_messages=args.batch, timeout=0.1)
        recs = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                out.emit("error", code=err.code(), name=err.name(),
                         fatal=err.fatal(), str=err.str())
                continue
            key = m.key()
            recs.append([m.topic(), m.partition(), m.offset(),
                         key.decode("utf-8", "replace") if key is not None else None])
            pending[(m.topic(), m.partition())] = m.offset() + 1
        if recs:
            out.emit("recs", r=recs)
        try:
            owned = {(tp.topic, tp.partition) for tp in c.assignment()}
        except KafkaException:
            owned = set()
        pending = {tp: o for tp, o in pending.items() if tp in owned}
        retry_due = time.monotonic() - last_attempt >= 0.5
        if pending and not args.no_commit and (recs or retry_due):
            last_attempt = time.monotonic()
            tps = [TopicPartition(t, p, o) for (t, p), o in sorted(pending.items())]
            listed = [[t, p, o] for (t, p), o in sorted(pending.items())]
            try:
                res = c.commit(offsets=tps, asynchronous=False)
                bad = [tp for tp in (res or []) if tp.error is not None]
                if bad:
                    e = bad[0].error
                    out.emit("commit_err", code=e.code(), name=e.name(), offsets=listed)
                else:
                    out.emit("commit", offsets=listed)
                    pending = {}
            except KafkaException as exc:
                e = exc.args[0]
                out.emit("commit_err", code=e.code(), name=e.name(), offsets=listed)
        now = sorted([t, p] for t, p in owned)
        if now != last_assignment:
            out.emit("assignment", parts=now)
            last_assignment = now

    c.close()
    out.emit("closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
