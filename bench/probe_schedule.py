"""Does one probe process keep 10,000 monitors on schedule?

An embedded broker, a target in another process (the aiohttp app and TCP
listener of bench/probe_checks.py), `--monitors` directory entries produced
straight to `directory` (http monitors of the default region, every
`--interval` s), then one `pingstream probe --region default` subprocess,
as an operator runs it. Once the probe reports on `probes` that it schedules
every monitor, the bench measures `--seconds`, stops the probe and reads
`check-results` back:

* drift: each result's checked_at minus its monitor's slot (probe/schedule.py
  phase_of and next_slot: the grid the check was due on), p50/p99/max;
* checks/s done of the slots in the window, against what the schedule demands
  (monitors / interval), and the slots that got no check;
* what the probe itself reported (schedule lag p99, skipped slots);
* the probe's RSS per 10,000 monitors and its CPU; the target's CPU and how busy
  the whole machine was, because all of them share its cores.

The baseline, run just before the probe against the same target: a bare scheduler
in its own process checking the same slots for `--baseline-seconds` (a bare aiohttp
GET or a connect per slot, the probe's GC threshold and concurrency limit, nothing
else): what scheduling these checks in Python costs on this machine right now.

Then the same with tcp monitors, on a fresh broker (`--types` chooses).

    python -m bench.probe_schedule [--monitors 10000] [--interval 10] [--seconds 60] [--types http,tcp]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.run import cpu_seconds
from engine import topics
from engine.broker import EmbeddedBroker
from engine.directory import MONITOR, entry_key
from engine.partitioning import partition_for
from pingstream.cli import tune_gc
from probe.schedule import next_slot, phase_of
from schemas.monitor import MonitorSpec
from tests.integration.cluster import Cluster

ROOT = Path(__file__).resolve().parents[1]
REPORT_SLACK = 1.0         # a report covering the window's last seconds arrives just after it
PROBE_CONCURRENCY = 2000   # probe/runner.py Probe's default


def monitor_ids(kind: str, count: int) -> list[str]:
    return [f"mon_bench{kind}{n:07d}" for n in range(count)]


def monitor_spec(kind: str, http_port: int, tcp_port: int, interval: int, timeout: int) -> dict:
    """A monitor as the API stores it: the validated MonitorSpec, dumped to JSON."""
    target = {"url": f"http://127.0.0.1:{http_port}/"} if kind == "http" else \
        {"type": "tcp", "host": "127.0.0.1", "port": tcp_port}
    return MonitorSpec.model_validate({"name": f"bench {kind}", **target, "interval_seconds": interval,
                                       "timeout_seconds": timeout}).model_dump(mode="json")


async def produce_directory(bootstrap: str, ids: list[str], spec: dict, partitions: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        now = time.time()
        sends = [await producer.send(topics.DIRECTORY, orjson.dumps(
                    {"kind": MONITOR, "id": mid, "org_id": "org_bench", "paused": False, "spec": spec,
                     "updated_at": now}), key=entry_key(MONITOR, mid), partition=partition_for(mid, partitions))
                 for mid in ids]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


class ProbeReports:
    """Follows topic `probes`: every health record the probe publishes, with when it arrived."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.seen: list[tuple[float, dict]] = []
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> ProbeReports:
        self.consumer = AIOKafkaConsumer(topics.PROBES, bootstrap_servers=self.bootstrap, group_id=None,
                                         auto_offset_reset="earliest", fetch_max_wait_ms=200)
        await self.consumer.start()
        self._task = asyncio.create_task(self._follow())
        return self

    async def _follow(self) -> None:
        async for record in self.consumer:
            if record.value is not None:
                self.seen.append((time.time(), orjson.loads(record.value)))

    async def __aexit__(self, *exc_info: object) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()

    async def wait(self, what: str, holds: Callable[[dict], bool], timeout: float) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for arrived, status in reversed(self.seen):
                if holds(status):
                    return arrived, status
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last reports: {self.seen[-3:]}")


async def read_results(bootstrap: str, partitions: int) -> list[dict]:
    """Every result on check-results, up to each partition's fetch highwater (Tansu's ListOffsets is wrong)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        assigned = [TopicPartition(topics.CHECK_RESULTS, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        results: list[dict] = []
        pending = set(assigned)
        while pending:
            for records in (await consumer.getmany(*pending, timeout_ms=1000)).values():
                for record in records:
                    results.extend(orjson.loads(record.value)["results"])
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
        return results
    finally:
        await consumer.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


@dataclass
class Run:
    kind: str
    monitors: int
    interval: int
    seconds: float
    slots: int                # slots of all monitors in the window
    checked: int              # of those, slots that got a check
    repeated: int             # slots checked more than once
    drift_p50: float
    drift_p99: float
    drift_max: float
    drift_p99_per_interval: list[float]   # one interval of the window after another
    down: int
    causes: list[tuple[str, int]]
    reported_lag_p99_ms: list[float]
    in_flight_max: int
    skipped: int
    rss_mb: float
    probe_cpu: float          # cores the probe used in the window
    target_cpu: float
    machine_cpu: float        # cores busy, all processes
    load: str
    #: the bare scheduler on the same grid, just before: drift p50/p99/max and CPU per check (s)
    baseline: dict | None = None

    @property
    def demanded(self) -> float:
        return self.monitors / self.interval

    @property
    def per_second(self) -> float:
        return self.checked / self.seconds

    def rows(self) -> list[tuple[str, str]]:
        k = self.kind
        return [
            (f"{k}: drift p50 / p99 / max (ms)",
             f"{self.drift_p50 * 1000:,.0f} / {self.drift_p99 * 1000:,.0f} / {self.drift_max * 1000:,.0f}"),
            (f"{k}: drift p99 of each {self.interval} s of the window (ms)",
             ", ".join(f"{drift * 1000:,.0f}" for drift in self.drift_p99_per_interval)),
            (f"{k}: baseline, a bare scheduler on the same grid: drift p50 / p99 / max (ms)",
             " / ".join(f"{self.baseline[q] * 1000:,.0f}" for q in ("p50", "p99", "max"))
             + (f" (failed: {self.baseline['failed']})" if self.baseline["failed"] else "")),
            (f"{k}: checks/s done / demanded", f"{self.per_second:,.0f} / {self.demanded:,.0f}"
                                               f" ({self.checked / self.slots:.3f} of the slots)"),
            (f"{k}: slots without a check / checked twice", f"{self.slots - self.checked:,} / {self.repeated:,}"
                                                            f" of {self.slots:,}"),
            (f"{k}: skipped slots (probe's count, whole run)", f"{self.skipped:,}"),
            (f"{k}: probe's own schedule_lag_p99_ms, reports in the window",
             ", ".join(f"{lag:,.0f}" for lag in self.reported_lag_p99_ms)),
            (f"{k}: checks open (running, or waiting for one of {PROBE_CONCURRENCY:,} to end), most reported",
             f"{self.in_flight_max:,}"),
            (f"{k}: results down", f"{self.down:,}" + (f" ({self.causes})" if self.causes else "")),
            (f"{k}: probe RSS per 10,000 monitors (MB)", f"{self.rss_mb * 10_000 / self.monitors:,.0f}"),
            (f"{k}: CPU per check (µs): probe / bare scheduler",
             f"{self.probe_cpu / self.per_second * 1e6:,.0f} / {self.baseline['cpu_per_check'] * 1e6:,.0f}"),
            (f"{k}: CPU in cores: probe / target / whole machine",
             f"{self.probe_cpu:.2f} / {self.target_cpu:.2f} / {self.machine_cpu:.2f}"),
            (f"{k}: load average at the end", self.load),
        ]


def drifts(results: list[dict], interval: int, start: float, end: float) -> tuple[list[tuple[float, float]], Counter]:
    """(slot, drift) of every result whose slot lies in [start, end), and how often each (monitor, slot) was checked."""
    found, per_slot = [], Counter()
    phases: dict[str, float] = {}
    for result in results:
        monitor_id = result["monitor_id"]
        phase = phases.get(monitor_id)
        if phase is None:
            phase = phases[monitor_id] = phase_of(monitor_id, interval)
        slot = next_slot(result["checked_at"] - interval, interval, phase)   # the last slot at or before it
        if start <= slot < end:
            found.append((slot, result["checked_at"] - slot))
            per_slot[monitor_id, slot] += 1
    return found, per_slot


def slots_between(monitor_ids: list[str], interval: int, start: float, end: float) -> int:
    count = 0
    for monitor_id in monitor_ids:
        slot = next_slot(start - 1e-6, interval, phase_of(monitor_id, interval))
        while slot < end:
            count += 1
            slot += interval
    return count


async def measure(kind: str, args: argparse.Namespace, ports: tuple[int, int], target_pid: int,
                  workdir: Path) -> Run:
    with EmbeddedBroker(log_path=workdir / f"broker-{kind}.log") as broker:
        cluster = Cluster(broker.url, on_tansu=True, root=workdir, app_id=f"bench-probe-{kind}")
        await topics.ensure_topics(cluster.settings())
        ids = monitor_ids(kind, args.monitors)
        spec = monitor_spec(kind, *ports, args.interval, args.timeout)
        await produce_directory(broker.bootstrap, ids, spec, cluster.partitions)
        async with ProbeReports(broker.bootstrap) as reports:
            probe = cluster.start_probe("default", name=f"probe-{kind}")
            try:
                start, _ = await reports.wait("the probe to schedule every monitor",
                                              lambda s: s["monitors"] >= args.monitors, 120)
                cpu_before = cpu_seconds(probe.popen.pid), cpu_seconds(target_pid), machine_busy()
                end = start + args.seconds
                await asyncio.sleep(end - time.time())
                probe_cpu, target_cpu = (cpu_seconds(pid) - before for pid, before in
                                         zip((probe.popen.pid, target_pid), cpu_before))
                busy, total = (now - before for now, before in zip(machine_busy(), cpu_before[2]))
                machine_cpu = busy / total * os.cpu_count()
                rss = rss_mb(probe.popen.pid)
                load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
                await asyncio.sleep(args.interval)   # the window's last slots, even late ones, get checked
                last = reports.seen[-1][1]
            finally:
                probe.stop()
            if probe.popen.returncode not in (0, -15):
                raise AssertionError(f"the probe exited with {probe.popen.returncode}:\n{probe.log_tail()}")
        results = await read_results(broker.bootstrap, cluster.partitions)
    timed, per_slot = drifts(results, args.interval, start, end)
    found = sorted(drift for _, drift in timed)
    slices = [sorted(drift for slot, drift in timed if s <= slot - start < s + args.interval)
              for s in range(0, int(args.seconds), args.interval)]
    in_window = [r for r in results if start <= r["checked_at"] < end + args.interval]
    causes = Counter(r.get("cause") for r in in_window if r["status"] == "down")
    return Run(kind, args.monitors, args.interval, args.seconds, slots_between(ids, args.interval, start, end),
               len(per_slot), sum(1 for n in per_slot.values() if n > 1),
               percentile(found, 0.5), percentile(found, 0.99), found[-1] if found else float("nan"),
               [percentile(drifts, 0.99) for drifts in slices],
               sum(causes.values()), causes.most_common(3),
               [s["schedule_lag_p99_ms"] for arrived, s in reports.seen if start < arrived <= end + REPORT_SLACK],
               max(s["in_flight"] for arrived, s in reports.seen if start < arrived <= end + REPORT_SLACK),
               last["skipped_slots"], rss, probe_cpu / args.seconds, target_cpu / args.seconds, machine_cpu, load)


def bare_grid(kind: str, port: int, monitors: int, interval: int, seconds: float) -> None:
    """The baseline process: the same monitors' slots, each checked by the least a scheduler can do (a bare
    aiohttp GET, or asyncio connect and close, on a fresh connection) with the probe's GC threshold and
    limit of concurrent checks; prints its drift and CPU as JSON."""
    tune_gc()

    async def main() -> dict:
        start = time.time() + 1.0
        slots = []
        for monitor_id in monitor_ids(kind, monitors):
            slot = next_slot(start, interval, phase_of(monitor_id, interval))
            while slot < start + seconds:
                slots.append(slot)
                slot += interval
        slots.sort()
        drifts: list[float] = []
        url = f"http://127.0.0.1:{port}/"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True)) as client:
            failed: Counter = Counter()

            concurrent = asyncio.Semaphore(PROBE_CONCURRENCY)

            async def check(slot: float) -> None:
                async with concurrent:
                    drifts.append(time.time() - slot)
                    try:
                        if kind == "http":
                            async with client.get(url) as response:
                                await response.read()
                        else:
                            _, writer = await asyncio.open_connection("127.0.0.1", port)
                            writer.close()
                    except (aiohttp.ClientError, OSError) as exc:   # a target overwhelmed: counted
                        failed[type(exc).__name__] += 1

            in_flight: set[asyncio.Task] = set()
            cpu, next_up = time.process_time(), 0
            while next_up < len(slots):
                now = time.time()
                while next_up < len(slots) and slots[next_up] <= now:
                    task = asyncio.create_task(check(slots[next_up]))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    next_up += 1
                if next_up < len(slots):
                    await asyncio.sleep(slots[next_up] - time.time())
            await asyncio.gather(*in_flight)
            cpu = time.process_time() - cpu
        drifts.sort()
        return {"p50": percentile(drifts, 0.5), "p99": percentile(drifts, 0.99), "max": drifts[-1],
                "cpu_per_check": cpu / len(slots), "failed": dict(failed)}

    print(orjson.dumps(asyncio.run(main())).decode(), flush=True)


def baseline(kind: str, args: argparse.Namespace, ports: tuple[int, int]) -> dict:
    port = ports[0] if kind == "http" else ports[1]
    done = subprocess.run([sys.executable, "-m", "bench.probe_schedule", "--bare", kind, "--port", str(port),
                           "--monitors", str(args.monitors), "--interval", str(args.interval),
                           "--seconds", str(args.baseline_seconds)], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return orjson.loads(done.stdout)




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--interval", type=int, default=10, help="seconds between a monitor's checks")
    parser.add_argument("--timeout", type=int, default=5, help="each check's timeout (s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window, once all are scheduled")
    parser.add_argument("--types", default="http,tcp", help="comma-separated: http, tcp")
    parser.add_argument("--baseline-seconds", type=float, default=30.0,
                        help="how long the bare scheduler runs on the same grid before each probe run")
    parser.add_argument("--bare", choices=("http", "tcp"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        return bare_grid(args.bare, args.port, args.monitors, args.interval, args.baseline_seconds)
    target = subprocess.Popen([sys.executable, "-m", "bench.probe_checks", "--serve"], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    runs: list[Run] = []
    try:
        ports = tuple(int(port) for port in target.stdout.readline().split())
        with tempfile.TemporaryDirectory(prefix="pingstream-bench-probe-") as tmp:
            for kind in args.types.split(","):
                bare = baseline(kind.strip(), args, ports)
                run = asyncio.run(measure(kind.strip(), args, ports, target.pid, Path(tmp)))
                run.baseline = bare
                runs.append(run)
                print(f"{kind}: drift p99 {run.drift_p99 * 1000:,.0f} ms, {run.per_second:,.0f} of "
                      f"{run.demanded:,.0f} checks/s, {run.slots - run.checked:,} slots without a check, "
                      f"probe CPU {run.probe_cpu / run.per_second * 1e6:,.0f} µs a check", flush=True)
    finally:
        target.stdin.close()
        target.wait(10)
    print(f"\none probe process, {args.monitors:,} monitors every {args.interval} s (timeout {args.timeout} s), "
          f"{args.seconds:g} s measured; machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; broker (embedded Tansu) and target share the cores\n")
    print("| measure | value |\n|---|---|")
    for run in runs:
        for name, value in run.rows():
            print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
