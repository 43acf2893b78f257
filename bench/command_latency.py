"""Do commands and reads keep their latency while a worker folds a large backlog of check results?

Monitors are created (a command through the owning worker, answered once its
state is durable) and read, one at a time, while one worker folds a backlog of
300,000 results produced straight to Kafka; then the same on the idle worker,
as the baseline of the same run. Prints p50/p99/max and the ratios.

    python -m bench.command_latency [--results 300000]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.run import backlog_folded, create_monitors, produce_envelopes, start_cluster, worker_health
from engine.broker import EmbeddedBroker
from tests.integration.cluster import Client, wait_for


def quantiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], ordered[-1]


def timed_commands(client: Client, keep_going, at_most: int) -> tuple[list[float], list[float]]:
    """Create a monitor and read it back, one at a time, while `keep_going()`; seconds each."""
    creates, reads = [], []
    for n in range(at_most):
        if not keep_going():
            break
        started = time.perf_counter()
        response = client.post("/v1/monitors", {"name": f"latency {n}", "url": "https://example.com"})
        creates.append(time.perf_counter() - started)
        assert response.status == 201, response.body
        started = time.perf_counter()
        read = client.get(f"/v1/monitors/{response.body['data']['id']}")
        reads.append(time.perf_counter() - started)
        assert read.status == 200, read.body
    return creates, reads


def line(name: str, samples: list[float]) -> str:
    p50, p99, most = quantiles(samples)
    return f"{name}: {len(samples)} samples, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {most * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=300_000)
    parser.add_argument("--monitors", type=int, default=2_000)
    parser.add_argument("--samples", type=int, default=200, help="commands timed at most, per phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pingstream-bench-") as tmp:
        workdir = Path(tmp)
        with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
            cluster, worker, _, _, _, client = start_cluster(broker, workdir, "bench-latency")
            try:
                monitors = create_monitors(client, args.monitors)
                before = worker_health(cluster, worker)["results_applied"]
                asyncio.run(produce_envelopes(broker.bootstrap, monitors, args.results, 500))
                started = time.perf_counter()

                def backlog() -> bool:
                    return worker_health(cluster, worker)["results_applied"] - before < args.results * 0.9

                busy_creates, busy_reads = timed_commands(client, backlog, args.samples)
                busy_seconds = time.perf_counter() - started
                wait_for("the backlog to be folded", lambda: backlog_folded(cluster, worker), 600, 0.5)
                folded = time.perf_counter() - started
                idle_creates, idle_reads = timed_commands(client, lambda: True, min(args.samples, 100))
            finally:
                cluster.stop()
    print(f"backlog of {args.results:,} results folded in {folded:.1f} s; commands timed during the first "
          f"{busy_seconds:.1f} s of it")
    print(line("create monitor, worker folding the backlog", busy_creates))
    print(line("create monitor, idle worker", idle_creates))
    print(line("read monitor, worker folding the backlog", busy_reads))
    print(line("read monitor, idle worker", idle_reads))
    print(f"p99 ratio busy/idle: create {quantiles(busy_creates)[1] / quantiles(idle_creates)[1]:.1f}x, "
          f"read {quantiles(busy_reads)[1] / quantiles(idle_reads)[1]:.1f}x")


if __name__ == "__main__":
    main()
