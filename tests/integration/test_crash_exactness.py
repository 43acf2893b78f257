"""Nothing lost, nothing counted twice, whatever is killed when (invariant 4).

A known set of results over many monitors is produced straight to Kafka, as
probes do, while a worker is SIGKILLed; afterwards every monitor's counts and
state-change history are exactly what the results imply, computed here with the
same pure state machine. The last test posts results through the API while the
worker is killed three times, under deliberate contention: a producer batch so
small that sends wait (so folding goes on while a flush is under way), another
agent folding heartbeat pings beside it, and a process burning CPU.
"""
from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from engine.partitioning import entity_key, partition_for
from tables.monitor_state import MonitorState, apply_result
from tests.integration.cluster import Client, Cluster, cpu_burners, wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.integration.crash_scenario import health, scenario
from tests.integration.test_dead_letters import dead_letters

MONITORS = 40
PER_MONITOR = 1500     # results per monitor: 60,000 in all


@dataclass
class Expected:
    total: int
    up: int
    transitions: list[str]


def status_of(n: int) -> str:
    return "down" if (n // 9) % 4 == 0 else "up"  # runs of 9 downs among ups: many transitions


def plan(monitors: list[str], start: float) -> tuple[list[tuple[str, dict]], dict[str, Expected]]:
    """Every result in production order, and what each monitor must end up with."""
    results, expected = [], {}
    for mid in monitors:
        state, transitions = MonitorState(), []
        for n in range(PER_MONITOR):
            at = start + n * 0.01
            if (t := apply_result(state, region="default", status=status_of(n), checked_at=at, cause="boom",
                                  grace_period=0, recovery_period=0, configured_regions=())) is not None:
                transitions.append(t.kind)
        ups = sum(1 for n in range(PER_MONITOR) if status_of(n) == "up")
        expected[mid] = Expected(PER_MONITOR, ups, transitions)
    for n in range(PER_MONITOR):  # interleaved across monitors, as probes report
        for mid in monitors:
            results.append((mid, {"id": f"{mid}-{n}", "monitor_id": mid, "status": status_of(n),
                                  "checked_at": start + n * 0.01, "response_time_ms": 10.0, "cause": "boom"}))
    return results, expected


async def produce(bootstrap: str, results: list[tuple[str, dict]], partitions: int) -> None:
    """Envelopes of up to 200 per partition, every tenth message a single result instead."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending: dict[int, list[dict]] = {}
        sends = []
        for count, (mid, result) in enumerate(results):
            partition = partition_for(mid, partitions)
            if count % 10 == 0:
                sends.append(await producer.send("check-results", orjson.dumps(result), key=entity_key(mid)))
                continue
            batch = pending.setdefault(partition, [])
            batch.append(result)
            if len(batch) == 200:
                sends.append(await producer.send("check-results", orjson.dumps({"results": batch}), partition=partition))
                pending[partition] = []
        for partition, batch in pending.items():
            if batch:
                sends.append(await producer.send("check-results", orjson.dumps({"results": batch}), partition=partition))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def stored_per_monitor(cluster: Cluster) -> Counter[str]:
    """How many results of each monitor `check-results` holds (envelopes and single results)."""
    return Counter(item["monitor_id"] for value in asyncio.run(cluster.records("check-results"))
                   for item in value.get("results", [value])
                   if "kind" not in item)  # a monitor's control records and ticks are no results


def why_not_counted(cluster: Cluster, api: Client, expected: dict[str, Expected]) -> str:
    """Where the missing results are: per partition, counted vs in Kafka vs produced; what the workers say."""
    counted = {mid: api.get(f"/v1/monitors/{mid}/uptime?period=24h").body["data"]["total_checks"] for mid in expected}
    stored = stored_per_monitor(cluster)
    rows: dict[int, list[int]] = {}
    for mid, e in expected.items():
        row = rows.setdefault(partition_for(mid, cluster.partitions), [0, 0, 0])
        row[0] += counted[mid]
        row[1] += stored[mid]
        row[2] += e.total
    workers = {}
    for process in cluster.processes:
        if process.name.startswith("worker") and process.popen.poll() is None:
            h = health(process)
            workers[process.name] = {k: h.get(k) for k in ("partitions", "rebalancing", "results_applied",
                                                            "results_redelivered_and_skipped")}
    notes = [line for process in cluster.processes if process.name.startswith("worker")
             for line in (cluster.root / f"{process.name}.log").read_text(errors="replace").splitlines()
             if "unfolded" in line or "did not come again" in line or "Traceback" in line]
    short = {mid: (partition_for(mid, cluster.partitions), counted[mid], stored[mid]) for mid, e in expected.items()
             if counted[mid] != e.total}
    letters = Counter(letter.get("reason", "?")[:80] for letter in asyncio.run(dead_letters(cluster)))
    return (f"(counted, in check-results, produced) per partition: {rows}; monitors short (partition, counted, "
            f"stored): {short}; dead letters by reason: {dict(letters)}; workers: {workers}; "
            f"their logs say: {notes[-12:]}")


def assert_exact(cluster: Cluster, api: Client, expected: dict[str, Expected]) -> None:
    def all_counted() -> bool:
        return all(api.get(f"/v1/monitors/{mid}/uptime?period=24h").body["data"]["total_checks"] >= e.total
                   for mid, e in expected.items())
    try:
        wait_for("every result to be counted", all_counted, 180, interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {why_not_counted(cluster, api, expected)}") from None
    usage = api.get("/v1/account/usage").body["data"]  # the organisation's per-partition counters, added up
    assert usage["checks_last_24h"] == sum(e.total for e in expected.values())
    for mid, e in expected.items():
        stats = api.get(f"/v1/monitors/{mid}/uptime?period=24h").body["data"]
        assert (stats["total_checks"], stats["up_checks"]) == (e.total, e.up), mid
        changes = api.get(f"/v1/monitors/{mid}/state-changes?limit=1000").body["data"]
        assert len({c["id"] for c in changes}) == len(changes), f"duplicate state changes for {mid}"
        assert [c["event"] for c in reversed(changes)] == e.transitions, mid
        checks = api.get(f"/v1/monitors/{mid}/checks?per_page=500").body["data"]
        assert len({c["id"] for c in checks}) == len(checks) == 500, mid


@pytest.fixture
def crash_cluster(tmp_path) -> Iterator[Cluster]:
    # offsets committed every 5 s instead of 1: a kill a few seconds in always finds applied results whose
    # offsets Kafka does not have yet, so the restart really meets redelivery (with 1 s the kill sometimes
    # landed right after a commit that covered everything, and there was nothing to redeliver)
    with running_cluster(tmp_path, workers=1, env={"PINGSTREAM_COMMIT_INTERVAL": "5"}) as cluster:
        yield cluster


def setup_monitors(cluster: Cluster) -> tuple[Client, list[str]]:
    _, key = cluster.new_org()
    api = ready_client(cluster, key)
    monitors = []
    for n in range(MONITORS):
        # checked once a day: no region goes stale while the test runs, so the state changes are the results'
        response = api.post("/v1/monitors", {"name": f"crash {n}", "url": "https://example.com", "regions": [],
                                             "interval_seconds": 86400})
        assert response.status == 201, response.body
        monitors.append(response.body["data"]["id"])
    return api, monitors


def bootstrap_of(cluster: Cluster) -> str:
    return cluster.broker_url.removeprefix("kafka://")


def test_sigkill_and_restart_with_the_same_data_directory(crash_cluster: Cluster) -> None:
    cluster = crash_cluster
    api, monitors = setup_monitors(cluster)
    results, expected = plan(monitors, time.time() - 3600)
    half = len(results) // 2
    worker = next(p for p in cluster.processes if p.name == "worker-0")
    asyncio.run(produce(bootstrap_of(cluster), results[:half], cluster.partitions))
    wait_for("the worker to be half way through", lambda: health(worker)["results_applied"] >= half // 3, 60, 0.02)
    worker.stop(signal.SIGKILL)
    asyncio.run(produce(bootstrap_of(cluster), results[half:], cluster.partitions))
    restarted = cluster.start_worker("worker-0-restarted", port=worker.port)  # same port: same data directory
    wait_for("the restarted worker to fold the backlog (within 30 s, or it stalled)",
             lambda: health(restarted)["results_applied"] + health(restarted)["results_redelivered_and_skipped"] > 0,
             30, 0.1)
    cluster.wait_serving(restarted)
    assert_exact(cluster, api, expected)
    assert health(restarted)["results_redelivered_and_skipped"] > 0  # the crash really made Kafka redeliver


def test_a_second_worker_joins_and_is_sigkilled(crash_cluster: Cluster) -> None:
    cluster = crash_cluster
    api, monitors = setup_monitors(cluster)
    results, expected = plan(monitors, time.time() - 3600)
    third = len(results) // 3
    first = next(p for p in cluster.processes if p.name == "worker-0")
    asyncio.run(produce(bootstrap_of(cluster), results[:third], cluster.partitions))
    second = cluster.start_worker("worker-1")
    wait_for("the second worker to own partitions", lambda: health(second)["partitions"] and
             not health(second)["rebalancing"], 90, 0.1)
    asyncio.run(produce(bootstrap_of(cluster), results[third:2 * third], cluster.partitions))
    wait_for("the second worker to apply results", lambda: health(second)["results_applied"] > 0, 60, 0.02)
    second.stop(signal.SIGKILL)
    asyncio.run(produce(bootstrap_of(cluster), results[2 * third:], cluster.partitions))
    wait_for("the first worker to own every partition again",
             lambda: len(health(first)["partitions"]) == cluster.partitions and not health(first)["rebalancing"],
             90, 0.2)
    assert_exact(cluster, api, expected)


def test_results_posted_through_the_api_survive_repeated_sigkills_under_contention(tmp_path) -> None:
    with cpu_burners(1):
        outcome = scenario(tmp_path, results=40_000, monitors=40, kills=2, seconds_per_kill=8,
                           env={"PINGSTREAM_PRODUCER_BATCH_BYTES": "2048"})
    assert outcome.kills == 2
    assert outcome.exact, outcome.line()
    assert max(outcome.refold_seconds) < 30, f"a restarted worker stalled: {outcome.line()}"
