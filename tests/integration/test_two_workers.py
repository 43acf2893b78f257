"""Two workers share the partitions; a read sent to either is answered by the owner."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from engine.partitioning import partition_for
from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.integration.test_monitors import create, post_results


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("two-workers"), workers=2) as cluster:
        workers = [p for p in cluster.processes if p.name.startswith("worker")]
        def split() -> bool:
            owned = [Client(w.url).get("/internal/health", headers={"X-Pingstream-Internal": cluster.token})
                     .body["partitions"] for w in workers]
            return all(owned) and sorted(sum(owned, [])) == list(range(cluster.partitions))
        wait_for("both workers to own partitions", split, 90, interval=0.5)
        cluster.wait_serving(next(p for p in cluster.processes if p.name == "api"))
        yield cluster


def test_a_read_sent_to_either_worker_returns_the_owners_answer(two_workers: Cluster) -> None:
    cluster = two_workers
    workers = [p for p in cluster.processes if p.name.startswith("worker")]
    for worker in workers:
        cluster.wait_serving(worker)
    _, key = cluster.new_org()
    api = ready_client(cluster, key)
    now = time.time()
    monitors = [create(api, name=f"m{n}", regions=[])["id"] for n in range(16)]
    post_results(api, [{"monitor_id": mid, "status": "up", "checked_at": now - n, "response_time_ms": float(n + 1)}
                       for n, mid in enumerate(monitors) for _ in range(n + 1)])
    owners = {}
    for worker in workers:
        health = Client(worker.url).get("/internal/health", headers={"X-Pingstream-Internal": cluster.token}).body
        owners.update({partition: worker.url for partition in health["partitions"]})
    for n, mid in enumerate(monitors):
        wait_for(f"{mid} counted", lambda: api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] == n + 1, 30)
        answers = [Client(worker.url, key).get(f"/v1/monitors/{mid}/uptime") for worker in workers]
        assert {a.status for a in answers} == {200}
        assert answers[0].body == answers[1].body
        assert answers[0].body["data"]["total_checks"] == n + 1
        served_by = {a.headers["X-Pingstream-Owner"] for a in answers}
        assert served_by == {owners[partition_for(mid, cluster.partitions)]}
    # both workers owned some of these monitors, so local and forwarded reads were both exercised
    assert {owners[partition_for(mid, cluster.partitions)] for mid in monitors} == {w.url for w in workers}
