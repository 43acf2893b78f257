"""`python -m bench.recovery`: how soon a worker's partitions are served again after a SIGKILL.

One embedded broker, one API, monitors with folded results; then, in one run:

1. restart: the worker is SIGKILLed and started again on its port and data directory
   (its RocksDB kept, as a supervisor restarting it would);
2. cold start (the baseline): the same, with its data directory deleted first, so
   every table is restored from the changelogs;
3. take-over: a second worker joins; when both serve, one of them is SIGKILLed and
   not started again; the other takes its partitions when the group's session
   timeout (PINGSTREAM_SESSION_TIMEOUT) has passed.

"Served again" means: a monitor in every partition answers its read with the checks
it had before the kill, and a result posted after the kill is counted. Each time is
from the SIGKILL.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import tempfile
import time
from pathlib import Path

from bench.run import PARTITIONS, create_monitors, produce_envelopes, start_cluster, worker_health
from engine.broker import EmbeddedBroker
from engine.partitioning import partition_for
from tests.integration.cluster import Client, Process, wait_for

SESSION_TIMEOUT = "10"  # the default of a deployment


def total_checks(client: Client, monitor_id: str) -> int | None:
    try:
        response = client.get(f"/v1/monitors/{monitor_id}")
    except OSError:
        return None
    if response.status != 200:
        return None
    return response.body["data"]["uptime_30d"]["total_checks"]


def served_again(client: Client, samples: dict[int, str], counts: dict[str, int], killed_at: float,
                 posted: int) -> tuple[float, float]:
    """(seconds from the kill until every sample reads its count, until a result posted then is counted too)."""
    def answered(m: str) -> bool:  # with its checks from before the kill, or already the new one too
        seen = total_checks(client, m)
        return seen is not None and counts[m] <= seen <= counts[m] + posted
    wait_for("every partition to answer with its state", lambda: all(map(answered, samples.values())), 300,
             interval=0.05)
    reads = time.perf_counter() - killed_at
    wait_for("the results posted after the kill to be counted",
             lambda: all(total_checks(client, m) == counts[m] + posted for m in samples.values()), 300,
             interval=0.05)
    return reads, time.perf_counter() - killed_at


def post_one_each(client: Client, samples: dict[int, str], n: int) -> None:
    now = time.time()
    results = [{"id": f"after-kill-{n}-{p}", "monitor_id": m, "status": "up", "response_time_ms": 10.0,
                "region": "eu-west", "checked_at": now} for p, m in samples.items()]
    response = client.post("/v1/checks", results)
    assert response.status == 202, response.body


def kill(process: Process) -> float:
    process.popen.send_signal(signal.SIGKILL)
    process.popen.wait(10)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=2_000)
    parser.add_argument("--results", type=int, default=200_000, help="results folded before the first kill")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="pingstream-recovery-") as tmp:
        workdir = Path(tmp)
        with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
            cluster, worker, api, _, _, client = start_cluster(
                broker, workdir, "bench-recovery", {"PINGSTREAM_SESSION_TIMEOUT": SESSION_TIMEOUT})
            try:
                monitors = create_monitors(client, args.monitors)
                before = worker_health(cluster, worker)["results_applied"]
                asyncio.run(produce_envelopes(broker.bootstrap, monitors, args.results, 500))
                wait_for("the results to be folded",
                         lambda: worker_health(cluster, worker)["results_applied"] - before >= args.results, 600)
                samples = {}
                for m in monitors:
                    samples.setdefault(partition_for(m, PARTITIONS), m)
                counts = {m: total_checks(client, m) for m in samples.values()}
                print(f"{args.monitors:,} monitors, {args.results:,} results folded; "
                      f"session timeout {SESSION_TIMEOUT} s", flush=True)

                for n, (case, cold) in enumerate((("restart, data directory kept", False),
                                                  ("cold start, data directory deleted", True)), 1):
                    port = worker.port
                    killed_at = kill(worker)
                    if cold:
                        shutil.rmtree(cluster.root / f"worker-{port}")
                    post_one_each(client, samples, n)
                    worker = cluster.start_worker("worker", port=port)
                    reads, counted = served_again(client, samples, counts, killed_at, 1)
                    counts = {m: c + 1 for m, c in counts.items()}
                    rows.append((case, f"{reads:.1f}", f"{counted:.1f}"))
                    print(f"{case}: reads answered {reads:.1f} s after the SIGKILL, new results counted "
                          f"{counted:.1f} s after", flush=True)

                second = cluster.start_worker("worker-2")
                cluster.wait_serving(second)
                time.sleep(10)  # the group settles with both members: the second has its share
                wait_for("every partition to answer again after the join",
                         lambda: all(total_checks(client, m) == counts[m] for m in samples.values()), 120)
                killed_at = kill(worker)
                post_one_each(client, samples, 3)
                reads, counted = served_again(client, samples, counts, killed_at, 1)
                case = f"take-over by a second worker (session timeout {SESSION_TIMEOUT} s)"
                rows.append((case, f"{reads:.1f}", f"{counted:.1f}"))
                print(f"{case}: reads answered {reads:.1f} s after the SIGKILL, new results counted "
                      f"{counted:.1f} s after", flush=True)
            finally:
                cluster.stop()
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"broker: embedded Tansu (shares the cores); {args.monitors:,} monitors, {args.results:,} results\n")
    print("| after a worker's SIGKILL | every partition read again (s) | a result posted after counted (s) |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {' | '.join(row)} |")


if __name__ == "__main__":
    main()
