"""`make bench`: the embedded broker on durable storage against memory, side by side in one run.

For each storage, a fresh embedded broker, one worker and the API (bench/run.py's
set-up): monitors are created through the API, then results are produced in
the API's envelopes (acks=all) and folded by the worker; reported are the
producer's rate (what Kafka acknowledges), end-to-end results/s (produced to
folded and flushed), POST /v1/checks results/s, monitors created/s through the
API (each a command to a worker and its reply) and one at a time, the broker's start time and,
for durable storage, the bytes it keeps. Rounds alternate the two storages, so
a machine that slows down during the run hurts both.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from bench.run import create_monitors, http_rate, produce_envelopes, result, start_cluster, worker_health
from engine.broker import EmbeddedBroker
from tests.integration.cluster import wait_for

STORAGES = ("memory", "durable")


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def one_run(storage: str, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    storage_dir = workdir / "broker" if storage == "durable" else None
    started = time.perf_counter()
    with EmbeddedBroker(log_path=workdir / "broker.log", storage_dir=storage_dir) as broker:
        broker_start = time.perf_counter() - started
        cluster, worker, api, _, key, client = start_cluster(broker, workdir, f"bench-{storage}")
        try:
            created = time.perf_counter()
            monitors = create_monitors(client, args.monitors)
            creates = args.monitors / (time.perf_counter() - created)
            latencies = []
            for n in range(args.latency_samples):  # one at a time: a command's round trip, nothing queued
                began = time.perf_counter()
                answer = client.post("/v1/monitors", {"name": f"latency {n}", "url": "https://example.com"})
                latencies.append((time.perf_counter() - began) * 1000)
                assert answer.status == 201, answer.body
            before = worker_health(cluster, worker)["results_applied"]
            started = time.perf_counter()
            produce_seconds = asyncio.run(produce_envelopes(broker.bootstrap, monitors, args.results, args.envelope))
            wait_for("the worker to fold every result",
                     lambda: worker_health(cluster, worker)["results_applied"] - before >= args.results, 900, 0.05)
            e2e = args.results / (time.perf_counter() - started)
            now = time.time()
            bodies = [orjson.dumps({"results": [result(monitors[(b * 1000 + n) % len(monitors)], n, now)
                                                for n in range(1000)]}) for b in range(8)]
            http = asyncio.run(http_rate(f"{api.url}/v1/checks", key, bodies, args.http_seconds))
        finally:
            cluster.stop()
        kept = directory_bytes(storage_dir) / 1e6 if storage_dir else 0.0
    row = {"produce": args.results / produce_seconds, "e2e": e2e, "http": http, "start": broker_start, "mb": kept,
           "creates": creates, "latency": statistics.median(latencies)}
    print(f"{storage}: {creates:,.0f} monitors created/s, one alone in {row['latency']:.0f} ms (median), produced {row['produce']:,.0f} results/s, end to end {e2e:,.0f} results/s, "
          f"POST /v1/checks {http:,.0f} results/s, broker ready in {broker_start:.2f} s"
          + (f", {kept:,.0f} MB on disk" if storage_dir else ""), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=200_000, help="results per end-to-end run")
    parser.add_argument("--monitors", type=int, default=1_000)
    parser.add_argument("--envelope", type=int, default=500, help="results per envelope")
    parser.add_argument("--http-seconds", type=float, default=6.0)
    parser.add_argument("--latency-samples", type=int, default=40, help="monitors created one at a time")
    parser.add_argument("--rounds", type=int, default=1, help="memory then durable, this many times")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {storage: [] for storage in STORAGES}
    for n in range(args.rounds):
        for storage in STORAGES:
            with tempfile.TemporaryDirectory(prefix=f"pingstream-bench-{storage}-") as tmp:
                runs[storage].append(one_run(storage, Path(tmp), args))

    def median(storage: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[storage])

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"embedded Tansu, one worker, the API; {args.results:,} results over {args.monitors:,} monitors, "
          f"median of {args.rounds} round(s)\n")
    print("| measure | memory | durable (local S3) | durable / memory |\n|---|---|---|---|")
    for key, name in (("produce", "producer, envelopes of 500, acks=all (results/s)"),
                      ("e2e", "end to end, produced to folded (results/s)"),
                      ("http", "HTTP POST /v1/checks, batches of 1,000 (results/s)"),
                      ("creates", "POST /v1/monitors, 32 clients: a command and its reply each (monitors/s)")):
        memory, durable = median("memory", key), median("durable", key)
        print(f"| {name} | {memory:,.0f} | {durable:,.0f} | {durable / memory:.2f} |")
    print(f"| POST /v1/monitors one at a time, median (ms) | {median('memory', 'latency'):.0f} | "
          f"{median('durable', 'latency'):.0f} | {median('durable', 'latency') / median('memory', 'latency'):.1f} |")
    print(f"| broker ready (s) | {median('memory', 'start'):.2f} | {median('durable', 'start'):.2f} | |")
    print(f"| broker data on disk after the run (MB) | - | {median('durable', 'mb'):,.0f} | |")


if __name__ == "__main__":
    main()
