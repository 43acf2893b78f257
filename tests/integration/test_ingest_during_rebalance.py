"""Ingest needs no worker: results posted while partitions move are all accepted (202) and all counted.

The API admits a result from the directory it follows (api/directory.py), so
a worker joining, and another leaving, changes nothing for a probe posting.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from engine.partitioning import partition_for
from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.integration.test_dead_letters import dead_letters
from tests.integration.test_monitors import create

MONITORS = 24


def owned_partitions(cluster: Cluster, worker) -> list[int]:
    response = Client(worker.url).get("/internal/health", headers={"X-Pingstream-Internal": cluster.token})
    return response.body.get("partitions", []) if response.status == 200 else []


class Poster(threading.Thread):
    """Posts a batch of results for every monitor, one request after the other, until stopped."""

    def __init__(self, api: Client, monitors: list[str]) -> None:
        super().__init__(daemon=True)
        self.api, self.monitors = api, monitors
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.posted = Counter()      # monitor -> results accepted
        self.halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            n += 1
            results = [{"monitor_id": mid, "status": "up" if n % 3 else "down", "response_time_ms": 5.0,
                        "checked_at": time.time() - 1} for mid in self.monitors]
            try:
                response = self.api.post("/v1/checks", {"results": results})
            except Exception as exc:  # a timeout or reset counts as not accepted
                self.failures.append(repr(exc))
                continue
            self.statuses[response.status] += 1
            if response.status == 202:
                self.posted.update(self.monitors)
            else:
                self.failures.append(f"{response.status}: {response.body}")
            time.sleep(0.05)


@pytest.mark.timeout(300)
def test_results_posted_while_workers_join_and_leave_are_all_accepted_and_counted(tmp_path: Path) -> None:
    with running_cluster(tmp_path, workers=1) as cluster:
        first = next(p for p in cluster.processes if p.name == "worker-0")
        _, key = cluster.new_org()
        api = ready_client(cluster, key)
        monitors = [create(api, name=f"rebalance {n}", regions=[])["id"] for n in range(MONITORS)]

        poster = Poster(api, monitors)
        poster.start()
        try:
            wait_for("results to be posted", lambda: poster.statuses[202] >= 10, 30)
            second = cluster.start_worker("worker-1")
            wait_for("the joining worker to take partitions", lambda: owned_partitions(cluster, second), 90,
                     interval=0.25)
            joined = poster.statuses[202]
            first.stop()  # SIGTERM: its partitions move to the second worker
            wait_for("the second worker to own every partition",
                     lambda: sorted(owned_partitions(cluster, second)) == list(range(cluster.partitions)), 90,
                     interval=0.25)
            moved = poster.statuses[202]
            time.sleep(1.0)
        finally:
            poster.halt.set()
            poster.join(30)

        assert poster.failures == [], poster.failures[:5]
        assert set(poster.statuses) == {202}
        # posting went on through both moves
        assert 10 <= joined < moved < poster.statuses[202], (joined, moved, poster.statuses)

        def counted() -> bool:
            return all(api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] == poster.posted[mid]
                       for mid in monitors)
        try:
            wait_for("every accepted result to be counted once", counted, 60, interval=0.5)
        except AssertionError:
            answers = {mid: api.get(f"/v1/monitors/{mid}/uptime") for mid in monitors}
            seen = {mid: a.body["data"]["total_checks"] if a.status == 200 else f"{a.status} {a.body}"[:200]
                    for mid, a in answers.items()}
            letters = Counter(letter.get("reason", "?")[:80] for letter in asyncio.run(dead_letters(cluster)))
            # in Kafka: whether a missing result was lost before the topic or by the fold
            stored = Counter(item["monitor_id"] for envelope in asyncio.run(cluster.records("check-results"))
                             for item in (envelope.get("results", []) if isinstance(envelope, dict) else envelope))
            raise AssertionError("(partition, counted, in check-results, accepted) per monitor: " + repr(
                [(partition_for(mid, cluster.partitions), seen[mid], stored[mid], poster.posted[mid])
                 for mid in monitors]) + f"; dead letters by reason: {dict(letters)}") from None

        # an API process started now knows the monitors from the directory at once: no worker asked
        late = cluster.start_api("api-late")
        wait_for("the late API to serve", lambda: Client(late.url).get("/v1/health-check").status == 200, 60,
                 interval=0.25)
        response = Client(late.url, key).post("/v1/checks", [{"monitor_id": mid, "status": "up"} for mid in monitors])
        assert response.status == 202, response.body

