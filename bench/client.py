#!/usr/bin/env python3
"""The Strand producer and consumer against librdkafka, like for like.

  bench/client.py --strand target/release/strand --kbench KBENCH [--rounds 3] [--records 1000000]

For every round and case a fresh broker (`strand broker`, empty data dir under /tmp) is
started; kbench (librdkafka) and `strand perf` then do the same job against it, one after
the other, interleaved across rounds: produce 1 KiB records to one partition with acks=1 and
acks=all (batch.size 1 MB, linger.ms 5: librdkafka's defaults), then read them back from the
beginning. Prints a Markdown table of median (min-max) per client and case, with the broker's
CPU time (utime + stime from /proc) per GiB moved in each step; with --results appends it to
that file with the date, the machine and this command.
"""
import argparse, json, os, shlex, signal, socket, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--strand", required=True)
ap.add_argument("--kbench", required=True)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--records", type=int, default=1_000_000)
ap.add_argument("--port", type=int, default=29494)
ap.add_argument("--results")
args = ap.parse_args()
BOOT = f"127.0.0.1:{args.port}"


def port_open():
    try:
        with socket.create_connection(("127.0.0.1", args.port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="strand-client-bench.")
        self.proc = subprocess.Popen(
            [args.strand, "broker", "--override", f"listeners=PLAINTEXT://{BOOT}",
             "--override", f"log.dirs={self.dir}/d"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "STRAND_LOG": "warn"})
        deadline = time.monotonic() + 20
        while not port_open():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("broker did not start")
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["rm", "-rf", self.dir])


def last_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_s(pid):
    """utime + stime of a process, in seconds (from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_gib(cpu, records):
    return cpu / (records * 1024 / 2**30)


def kbench(acks, pid):
    c0 = cpu_s(pid)
    p = last_json([args.kbench, "produce", "--bootstrap", BOOT, "--topic", "t", "--partitions", "1",
                   "--records", str(args.records), "--record-size", "1024", "--acks", acks])
    c1 = cpu_s(pid)
    c = last_json([args.kbench, "consume", "--bootstrap", BOOT, "--topic", "t", "--records", str(args.records)])
    c2 = cpu_s(pid)
    return {"produce": (p["records_per_s"], p["mib_per_s"], p["ack_latency_ms"]["p99"], per_gib(c1 - c0, p["records"])),
            "consume": (c["records_per_s"], c["mib_per_s"], None, per_gib(c2 - c1, c["records"]))}


def strand(acks, pid):
    c0 = cpu_s(pid)
    p = last_json([args.strand, "perf", "produce", "-b", BOOT, "-t", "t", "--partitions", "1",
                   "-n", str(args.records), "-s", "1024", "--acks", acks, "--batch-size", "1000000",
                   "--linger-ms", "5", "--progress-s", "0", "--output", "json"])
    c1 = cpu_s(pid)
    c = last_json([args.strand, "perf", "consume", "-b", BOOT, "-t", "t", "-n", str(args.records),
                   "--progress-s", "0", "--output", "json"])
    c2 = cpu_s(pid)
    return {"produce": (p["records_per_s"], p["mib_per_s"], p["ack_latency_ms"]["p99"], per_gib(c1 - c0, args.records)),
            "consume": (c["records_per_s"], c["mib_per_s"], None, per_gib(c2 - c1, args.records))}


results = {}  # (client, acks, step) -> list of (rps, mibs, p99)
for r in range(args.rounds):
    for acks in ("1", "all"):
        for name, fn in (("librdkafka (kbench)", kbench), ("strand perf", strand)):
            b = Broker()
            try:
                got = fn(acks, b.proc.pid)
            finally:
                b.stop()
            for step, v in got.items():
                results.setdefault((name, acks, step), []).append(v)
            print(f"round {r + 1} acks={acks} {name}: {got}", file=sys.stderr)


def mmm(vals, fmt):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    return f"{fmt.format(statistics.median(vals))} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


lines = ["| client | acks | step | records/s | MiB/s | ack p99 ms | broker CPU s per GiB |",
         "|---|---|---|---|---|---|---|"]
for (name, acks, step), vals in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
    lines.append(f"| {name} | {acks} | {step} | {mmm([v[0] for v in vals], '{:,.0f}')} | "
                 f"{mmm([v[1] for v in vals], '{:,.1f}')} | {mmm([v[2] for v in vals], '{:.1f}')} | "
                 f"{mmm([v[3] for v in vals], '{:.2f}')} |")
table = "\n".join(lines)
print(table)
if args.results:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    mem = int(open("/proc/meminfo").read().split()[1]) / 1048576
    with open(args.results, "a") as f:
        f.write(f"\n## {time.strftime('%Y-%m-%d', time.gmtime())} — Strand client vs librdkafka "
                f"({os.cpu_count()} cores, {mem:.0f} GiB, commit {rev})\n\n")
        f.write(f"{args.records:,} x 1 KiB records, one partition, batch.size 1 MB, linger.ms 5, a fresh broker "
                f"per run, median (min–max) of {args.rounds} interleaved rounds. Client and broker share the "
                "two cores.\n\n")
        f.write(f"Command: `.venv/bin/python bench/client.py --strand target/release/strand --kbench "
                f"/tmp/kbench-target/release/kbench --rounds {args.rounds} --records {args.records}`\n\n")
        f.write(table + "\n")
