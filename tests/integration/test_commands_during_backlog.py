"""Commands keep their latency while a worker folds a backlog of check results (issue 11, item 7).

A backlog of result envelopes is produced straight to Kafka, as batching probes
send them; while the one worker folds it, monitors are created one at a time
through the API: each create is a command through the worker's consumer, then
a second one to the organisation's partition, answered once durable. Before
the fold loop let the other tasks run until they waited again, every hand-off
of a command cost a slice of folding, and a create took 1-4 s during such a
backlog (p99 1.9-4 s, median 0.6-2.7 s); now a few hundred milliseconds at most.
"""
from __future__ import annotations

import asyncio
import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
from aiokafka import AIOKafkaProducer

from engine.partitioning import partition_for
from tests.integration.cluster import wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.integration.crash_scenario import health

MONITORS = 200
RESULTS = 400_000   # a few seconds of folding on a quiet machine; many more on a loaded one
ENVELOPE = 500      # results a message, as the API and batching probes send them
CREATES = 40        # creates timed at most


async def produce_backlog(bootstrap: str, monitors: list[str], partitions: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_request_size=8 * 1024 * 1024, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        now, sends = time.time(), []
        pending: dict[int, list[dict]] = {}
        for n in range(RESULTS):
            monitor_id = monitors[n % len(monitors)]
            partition = partition_for(monitor_id, partitions)
            envelope = pending.setdefault(partition, [])
            envelope.append({"id": f"r{n}", "monitor_id": monitor_id, "status": "down" if n % 97 == 0 else "up",
                             "checked_at": now - 3000 + n * 0.001, "response_time_ms": 20.0})
            if len(envelope) == ENVELOPE:
                sends.append(await producer.send("check-results", orjson.dumps({"results": envelope}),
                                                 partition=partition))
                pending[partition] = []
        for partition, envelope in pending.items():
            if envelope:
                sends.append(await producer.send("check-results", orjson.dumps({"results": envelope}),
                                                 partition=partition))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def test_monitor_creates_stay_fast_while_the_worker_folds_a_backlog(tmp_path) -> None:
    with running_cluster(tmp_path) as cluster:
        worker = next(p for p in cluster.processes if p.name == "worker-0")
        _, key = cluster.new_org()
        api = ready_client(cluster, key)

        def create(name: str) -> str:
            response = api.post("/v1/monitors", {"name": name, "url": "https://example.com"})
            assert response.status == 201, response.body
            return response.body["data"]["id"]

        with ThreadPoolExecutor(8) as pool:
            monitors = list(pool.map(create, (f"backlog {n}" for n in range(MONITORS))))
        before = health(worker)["results_applied"]

        def applied() -> int:
            return health(worker)["results_applied"] - before

        asyncio.run(produce_backlog(cluster.broker_url.removeprefix("kafka://"), monitors, cluster.partitions))
        wait_for("the worker to start folding the backlog", lambda: applied() > 0, 60, 0.02)
        during: list[float] = []  # seconds of each create that ended before 95 % of the backlog was folded
        first = last = applied()
        while len(during) < CREATES:
            started = time.perf_counter()
            create(f"during the backlog {len(during)}")
            took, now_applied = time.perf_counter() - started, applied()
            if now_applied >= RESULTS * 0.95:
                break  # the backlog is (nearly) folded: this create no longer waited behind it
            during.append(took)
            last = now_applied

    assert during and first < last < RESULTS, "the worker was not folding the backlog while the creates were timed"
    timings = ", ".join(f"{t:.2f}" for t in during)
    print(f"{len(during)} creates while {first:,}-{last:,} of {RESULTS:,} results were folded: {timings}")
    during.sort()
    median, p90 = statistics.median(during), during[math.ceil(len(during) * 0.9) - 1]
    assert median < 0.5, f"a create took {median:.2f} s (median) while the worker folded a backlog: {timings}"
    assert p90 < 1.0, f"creates took {p90:.2f} s (90th percentile) while the worker folded a backlog: {timings}"
    assert len(during) >= 5, f"the backlog was folded after {len(during)} creates: make it larger"
