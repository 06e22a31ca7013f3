#!/usr/bin/env python3
"""Rebalance timings of a consumer group against a running broker.

    bench/rebalance.py --bootstrap 127.0.0.1:9092 [--protocol classic|consumer]
                       [--session-timeout-ms 6000] [--rounds 1] [--topic T]

Starts nothing but consumers: three confluent-kafka consumers (each its own
process, so one can be SIGKILLed) in one group on a 6-partition topic
(created if --topic is not given), and reports the wall time of

  join   all three subscribe at once -> every partition assigned, 2/2/2
  leave  one member closes (LeaveGroup / leave heartbeat) -> the other two own 3/3
  crash  one member is SIGKILLed (no goodbye) -> the survivor owns all six

as a table, then one JSON line.  Times are measured from the parent's action
(the "go" that makes members subscribe, the close command, the kill) to the
moment the last member reports the final assignment; member process startup
is excluded.  For --protocol consumer (KIP-848) the session timeout is the
broker's group.consumer.session.timeout.ms; pass the same value as
--session-timeout-ms so the crash phase waits long enough.  The broker should
run with a small group.initial.rebalance.delay.ms, or join includes it.

Needs confluent-kafka (e.g. the repo's .venv/bin/python).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

N_PARTITIONS = 6


# ---------------------------------------------------------------------------
# Member process
# ---------------------------------------------------------------------------

def member_main(args) -> int:
    from confluent_kafka import Consumer, KafkaException

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "latest",
    }
    if args.protocol == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf["session.timeout.ms"] = str(args.session_timeout_ms)
        if args.heartbeat_interval_ms:
            conf["heartbeat.interval.ms"] = str(args.heartbeat_interval_ms)
        if args.assignor:
            conf["partition.assignment.strategy"] = args.assignor
    if args.protocol == "consumer" and args.assignor:
        conf["group.remote.assignor"] = args.assignor

    def emit(**fields):
        fields["t"] = time.time()
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

    c = Consumer(conf)
    emit(ev="ready")
    stop = threading.Event()
    go = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "go":
                go.set()
            elif cmd == "close":
                break
        stop.set()
        go.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    go.wait()
    if stop.is_set():
        c.close()
        return 0
    c.subscribe([args.topic])
    last = None
    while not stop.is_set():
        c.poll(0.02)
        try:
            now = sorted(tp.partition for tp in c.assignment())
        except KafkaException:
            continue
        if now != last:
            emit(ev="assignment", parts=now)
            last = now
    t0 = time.time()
    c.close()
    emit(ev="closed", close_s=time.time() - t0)
    return 0


# ---------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------

class Member:
    def __init__(self, name, args, group):
        self.name = name
        self.events = queue.Queue()
        self.assignment = None
        self.assigned_at = None
        self.closed = None
        cmd = [sys.executable, os.path.abspath(__file__), "--member",
               "--bootstrap", args.bootstrap, "--group", group, "--topic", args.topic,
               "--protocol", args.protocol,
               "--session-timeout-ms", str(args.session_timeout_ms)]
        if args.heartbeat_interval_ms:
            cmd += ["--heartbeat-interval-ms", str(args.heartbeat_interval_ms)]
        if args.assignor:
            cmd += ["--assignor", args.assignor]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL if not args.verbose else None)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def pump(self):
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return
            if ev["ev"] == "assignment":
                self.assignment = set(ev["parts"])
                self.assigned_at = ev["t"]
            elif ev["ev"] == "ready":
                self.ready = True
            elif ev["ev"] == "closed":
                self.closed = ev

    def send(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()

    def kill9(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def alive(self):
        return self.proc.poll() is None


def wait_for(pred, timeout, what, members):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            m.pump()
        if pred():
            return
        time.sleep(0.005)
    state = ", ".join(f"{m.name}={sorted(m.assignment or [])}" for m in members)
    raise SystemExit(f"timed out after {timeout}s waiting for {what} ({state})")


def split_done(ms, sizes):
    owned = [m.assignment or set() for m in ms]
    union = set().union(*owned)
    return (sum(map(len, owned)) == len(union) == N_PARTITIONS
            and sorted(map(len, owned)) == sorted(sizes))


def one_round(args, group) -> dict:
    ms = [Member(n, args, group) for n in ("a", "b", "c")]
    try:
        wait_for(lambda: all(getattr(m, "ready", False) for m in ms), 60,
                 "member processes to start", ms)
        # join
        t0 = time.time()
        for m in ms:
            m.send("go")
        wait_for(lambda: split_done(ms, [2, 2, 2]), 60, "2/2/2", ms)
        join = max(m.assigned_at for m in ms) - t0

        # leave: c closes
        a, b, c = ms
        t0 = time.time()
        c.send("close")
        wait_for(lambda: split_done([a, b], [3, 3]), args.session_timeout_ms / 1000 + 60,
                 "3/3 after a member left", ms)
        leave = max(a.assigned_at, b.assigned_at) - t0
        c.proc.wait(timeout=30)
        c.pump()
        close_s = c.closed["close_s"] if c.closed else float("nan")

        # crash: b is killed
        t0 = time.time()
        b.kill9()
        wait_for(lambda: split_done([a], [6]), args.session_timeout_ms / 1000 + 60,
                 "the survivor to own all six after a crash", [a])
        crash = a.assigned_at - t0
        a.send("close")
        a.proc.wait(timeout=30)
        return {"join_ms": round(join * 1000, 1), "leave_ms": round(leave * 1000, 1),
                "leave_close_call_ms": round(close_s * 1000, 1),
                "crash_ms": round(crash * 1000, 1)}
    finally:
        for m in ms:
            if m.alive():
                m.kill9()


def ensure_topic(args):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": args.bootstrap})
    if args.topic is None:
        args.topic = f"rebalance-bench-{uuid.uuid4().hex[:8]}"
        a.create_topics([NewTopic(args.topic, num_partitions=N_PARTITIONS,
                                  replication_factor=1)])[args.topic].result(timeout=30)
    deadline = time.monotonic() + 30
    while True:
        md = a.list_topics(topic=args.topic, timeout=10).topics.get(args.topic)
        if md is not None and md.error is None and len(md.partitions) == N_PARTITIONS:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"topic {args.topic} does not have {N_PARTITIONS} partitions")
        time.sleep(0.2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--protocol", choices=["classic", "consumer"], default="classic")
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--heartbeat-interval-ms", type=int, default=None,
                    help="classic only; default: librdkafka's (3000)")
    ap.add_argument("--assignor", default=None,
                    help="classic: partition.assignment.strategy; consumer: group.remote.assignor")
    ap.add_argument("--topic", default=None, help=f"existing {N_PARTITIONS}-partition topic")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="show members' stderr")
    ap.add_argument("--member", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--group", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.member:
        return member_main(args)

    ensure_topic(args)
    rounds = []
    for i in range(args.rounds):
        group = f"rebalance-bench-{uuid.uuid4().hex[:8]}"
        rounds.append(one_round(args, group))

    keys = ["join_ms", "leave_ms", "crash_ms"]
    print(f"protocol={args.protocol} session.timeout.ms={args.session_timeout_ms} "
          f"heartbeat.interval.ms={args.heartbeat_interval_ms or 'default'} "
          f"assignor={args.assignor or 'default'} topic={args.topic} rounds={args.rounds}")
    print(f"{'round':>5}  {'join ms':>9}  {'leave ms':>9}  {'crash ms':>9}")
    for i, r in enumerate(rounds, 1):
        print(f"{i:>5}  {r['join_ms']:>9.1f}  {r['leave_ms']:>9.1f}  {r['crash_ms']:>9.1f}")
    summary = {k: round(statistics.median(r[k] for r in rounds), 1) for k in keys}
    if args.rounds > 1:
        print(f"{'med':>5}  {summary['join_ms']:>9.1f}  {summary['leave_ms']:>9.1f}  "
              f"{summary['crash_ms']:>9.1f}")
    print(json.dumps({"bench": "rebalance", "protocol": args.protocol,
                      "session_timeout_ms": args.session_timeout_ms,
                      "heartbeat_interval_ms": args.heartbeat_interval_ms,
                      "assignor": args.assignor, **summary, "rounds": rounds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
