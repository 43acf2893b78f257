"""`python -m bench.rescale`: how long `pingstream rescale` takes for a deployment with history.

One embedded broker, a worker and the API on 4 partitions; 10,000 monitors
(--monitors) with 7 days (--days) of hourly results each, folded into their
statistics; then, in one run:

1. the baseline: reading the worker's whole changelog once (the least any
   re-keying of the state has to do);
2. the rescale to 8 partitions (--partitions), through every step of the CLI's
   `rescale` (checking, switching ingest, draining, copying), and how soon after
   it every monitor answers again with its history.

Prints the records moved, each step's time and the copy's ratio to the baseline.
"""
from __future__ import annotations

import argparse
import asyncio
import platform
import random
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.run import PARTITIONS, create_monitors, start_cluster
from engine import topics
from engine.broker import EmbeddedBroker
from engine.partitioning import partition_for
from engine.deployment import Deployment
from engine.following import end_offsets
from engine.rescale import _lag, rescale
from tests.integration.cluster import wait_for

HOUR = 3600


async def produce_history(bootstrap: str, monitors: list[str], days: int) -> int:
    """One result an hour for every monitor over `days` days, oldest hour first, in envelopes per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                                max_request_size=8 * 1024 * 1024, max_batch_size=1024 * 1024)
    await producer.start()
    homes = {mid: partition_for(mid, PARTITIONS) for mid in monitors}
    start = (time.time() // HOUR - days * 24) * HOUR
    sent = 0
    try:
        for hour in range(days * 24):
            pending: dict[int, list[dict]] = {}
            for mid in monitors:
                pending.setdefault(homes[mid], []).append({
                    "monitor_id": mid, "status": "up" if random.random() > 0.01 else "down",
                    "response_time_ms": 20.0 + random.random() * 80, "region": "eu-west",
                    "checked_at": start + hour * HOUR + random.random() * HOUR})
            sends = []
            for partition, results in pending.items():
                for at in range(0, len(results), 500):
                    sends.append(await producer.send(topics.CHECK_RESULTS, orjson.dumps({"results": results[at:at + 500]}),
                                                     partition=partition))
            await asyncio.gather(*sends)
            sent += len(monitors)
        return sent
    finally:
        await producer.stop()


async def read_changelog(settings, partitions: int) -> tuple[int, float]:
    """(records, seconds) to read the worker group's changelog from start to end."""
    topic = topics.changelog(settings.app_id)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        started = time.perf_counter()
        ends = await end_offsets(settings, consumer, tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records = 0

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])
        while await behind():
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            records += sum(len(found) for found in batch.values())
        return records, time.perf_counter() - started
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--partitions", type=int, default=8, help="the partition count to move to (from 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pingstream-bench-") as tmp:
        broker = EmbeddedBroker(log_path=Path(tmp) / "broker.log")
        broker.start()
        cluster = None
        try:
            cluster, worker, api, _, _, client = start_cluster(broker, Path(tmp), "bench-rescale")
            settings = cluster.settings()
            monitors = create_monitors(client, args.monitors)
            started = time.perf_counter()
            results = asyncio.run(produce_history(settings.bootstrap_servers, monitors, args.days))
            folding = Deployment(0, PARTITIONS)  # folded means committed: the worker group has no lag left
            wait_for("the history to be folded", lambda: not asyncio.run(_lag(settings, folding)), 1800, interval=2.0)
            print(f"{results:,} results over {args.days} days produced and folded in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            records, read_seconds = asyncio.run(read_changelog(settings, PARTITIONS))
            print(f"baseline: read the changelog ({records:,} records) in {read_seconds:.1f} s", flush=True)
            started = time.perf_counter()
            report = asyncio.run(rescale(settings, args.partitions, say=lambda line: print("  " + line, flush=True)))
            moved = time.perf_counter() - started
            sample = random.sample(monitors, min(50, len(monitors)))
            wait_for("every sampled monitor to answer with its history", lambda: all(
                (r := client.get(f"/v1/monitors/{m}")).status == 200 and
                r.body["data"]["uptime_30d"]["total_checks"] == args.days * 24 for m in sample), 600, interval=0.5)
            served = time.perf_counter() - started
            copy = report.seconds.get("copying", 0.0)
            print(f"""
machine: {platform.machine()}, {__import__('os').cpu_count()} cores
monitors: {args.monitors:,}, {args.days} days of hourly results ({results:,})
rescale {PARTITIONS} -> {args.partitions}: {report.records_moved:,} table records moved, {report.entries_moved:,} directory entries
  steps: {', '.join(f'{name} {seconds:.1f} s' for name, seconds in report.seconds.items())}
  the CLI returned after {moved:.1f} s; every sampled monitor answered with its history after {served:.1f} s
  copy vs reading the changelog once: {copy:.1f} s vs {read_seconds:.1f} s = {copy / read_seconds:.2f}x""")
        finally:
            if cluster is not None:
                cluster.stop()
            broker.stop()


if __name__ == "__main__":
    main()
