"""`pingstream status` in a terminal: workers, partition owners, lag and rates of the running cluster."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

from tests.integration.cluster import ROOT, Client, Cluster
from tests.integration.test_monitors import create, post_results


def pingstream_status(cluster: Cluster, *args: str) -> str:
    """What `pingstream status` prints, run as an operator would, with the deployment's environment."""
    done = subprocess.run([sys.executable, "-m", "pingstream.cli", "status", *args], cwd=ROOT, env=cluster.env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_shows_every_partition_owned_by_the_worker_with_the_rate_of_results_posted_meanwhile(
        cluster: Cluster, api: Client) -> None:
    worker = next(p for p in cluster.processes if p.name.startswith("worker") and p.alive())
    mid = create(api, regions=[])["id"]
    stop = threading.Event()

    def keep_posting() -> None:
        while not stop.is_set():
            post_results(api, [{"monitor_id": mid, "status": "up", "response_time_ms": 5.0}] * 20)
            stop.wait(0.05)
    poster = threading.Thread(target=keep_posting, daemon=True)
    poster.start()
    try:
        status = json.loads(pingstream_status(cluster, "--json", "--interval", "1"))
    finally:
        stop.set()
        poster.join(30)

    assert status["partitions"] == cluster.partitions
    assert status["owners"] == {str(p): worker.url for p in range(cluster.partitions)}
    [shown] = [w for w in status["workers"] if w["url"] == worker.url]
    assert shown["reachable"] and not shown["stale"] and shown["partitions"] == list(range(cluster.partitions))
    assert status["records_per_second"]["check-results"] > 0, status
    assert set(shown["lag"]["check-results"]) == {str(p) for p in range(cluster.partitions)}
    assert "check-results" in status["lag"] and isinstance(status["probes"], list)

    page = pingstream_status(cluster, "--interval", "0.2")
    assert f"partitions  {cluster.partitions}/{cluster.partitions} owned" in page
    assert f"{worker.url}" in page and "serving" in page
    assert any(line.startswith("check-results") for line in page.splitlines()), page
