"""Missed deadlines fire exactly once, on time or as soon as a worker can, across SIGKILL, restart and rebalance.

Three groups of heartbeats miss their deadlines: before the only worker is
SIGKILLed, while it is dead (it restarts from the same data directory), and
while a second worker joins and partitions move. Every heartbeat must go down
exactly once, at its deadline, and nothing that fired before the crash fires
again after it.
"""
from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.integration.cluster import Client, Cluster, Process, wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.integration.test_heartbeats import check_in, create_heartbeat, heartbeat_events, history

PER_GROUP = 4
INTERVAL = 2


@pytest.fixture
def restart_cluster(tmp_path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, workers=1) as cluster:
        yield cluster


def last_received_at(api: Client, heartbeat_id: str) -> float:
    rows = wait_for(f"the check-in of {heartbeat_id} to be applied", lambda: history(api, heartbeat_id), 30)
    return datetime.fromisoformat(rows[0]["received_at"]).timestamp()


def ping_group(api: Client, heartbeats: dict[str, int]) -> dict[str, float]:
    """One tick each; returns each heartbeat's deadline (received + interval + grace)."""
    for heartbeat_id in heartbeats:
        check_in(api, heartbeat_id)
    return {heartbeat_id: last_received_at(api, heartbeat_id) + INTERVAL + grace
            for heartbeat_id, grace in heartbeats.items()}


def health(worker: Process) -> dict:
    return Client(worker.url).get("/internal/health", headers=worker.internal).body


def downs(cluster: Cluster) -> list:
    return [e for e in heartbeat_events(cluster) if e.event["event"] == "heartbeat.down"]


def test_deadlines_fire_exactly_once_across_sigkill_restart_and_rebalance(restart_cluster: Cluster) -> None:
    cluster = restart_cluster
    _, key = cluster.new_org()
    api = ready_client(cluster, key)
    # heartbeat id -> grace; the last group's deadlines are spread over 3-9 s, to meet the rebalance
    graces = [[1] * PER_GROUP, [1] * PER_GROUP, [1 + 2 * n for n in range(PER_GROUP)]]
    groups = [{create_heartbeat(api, name=f"group {g}", interval=INTERVAL, grace=grace)["id"]: grace
               for grace in group_graces} for g, group_graces in enumerate(graces)]
    worker: Process = next(p for p in cluster.processes if p.name == "worker-0")

    before_crash = ping_group(api, groups[0])
    wait_for("the first group to go down", lambda: len(downs(cluster)) >= PER_GROUP, 30, interval=0.5)

    during_crash = ping_group(api, groups[1])
    worker.stop(signal.SIGKILL)  # its deadlines pass while no worker runs
    killed_at = time.time()
    restarted = cluster.start_worker("worker-0-restarted", port=worker.port)  # same port: same data directory
    cluster.wait_serving(restarted)
    wait_for("the missed deadlines to fire after the restart", lambda: len(downs(cluster)) >= 2 * PER_GROUP, 60,
             interval=0.5)

    during_rebalance = ping_group(api, groups[2])
    second = cluster.start_worker("worker-1")
    wait_for("the second worker to own partitions", lambda: (h := health(second))["partitions"] and not h["rebalancing"],
             90, interval=0.5)
    wait_for("the third group to go down", lambda: len(downs(cluster)) >= 3 * PER_GROUP, 60, interval=0.5)
    time.sleep(2 * (INTERVAL + 1))  # room for a duplicate to show up, were there one

    events = downs(cluster)
    per_heartbeat = Counter(e.event["heartbeat_id"] for e in events)
    assert per_heartbeat == {heartbeat_id: 1 for group in groups for heartbeat_id in group}, per_heartbeat
    assert len({e.event["id"] for e in events}) == len(events)
    deadlines = {**before_crash, **during_crash, **during_rebalance}
    for emitted in events:
        heartbeat_id, at = emitted.event["heartbeat_id"], emitted.event["at"]
        assert abs(at - deadlines[heartbeat_id]) < 0.002, "the transition is dated at the deadline itself"
        if heartbeat_id in during_crash:
            assert emitted.produced_at >= killed_at  # nobody was there; the restarted worker caught up
        elif heartbeat_id in during_rebalance:
            assert at <= emitted.produced_at <= at + 15.0  # partitions move for a few seconds
        else:
            assert at <= emitted.produced_at <= at + 1.0
    for heartbeat_id in deadlines:
        assert api.get(f"/v1/heartbeats/{heartbeat_id}").body["data"]["status"] == "down"
