"""Probes check monitors themselves: from two regions, on schedule, through the broker, shared and failed over.

Real processes throughout: a broker, a worker, the API, probe processes, and
targets on 127.0.0.1 that the test starts and stops.
"""
from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.integration.cluster import Client, Cluster, Process, free_port, wait_for
from tests.integration.conftest import ready_client, running_cluster

INTERVAL = 10   # the shortest a monitor may have


class Target:
    """An HTTP server and a TCP listener on 127.0.0.1, in a thread, that can be stopped."""

    def __init__(self) -> None:
        self.http_port, self.tcp_port = free_port(), free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.listener: socket.socket | None = None

    def start(self) -> Target:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start_http(), self.loop).result(10)
        self.listener = socket.create_server(("127.0.0.1", self.tcp_port))
        self.listener.listen(100)
        return self

    async def _start_http(self) -> None:
        app = web.Application()
        app.router.add_get("/health", lambda _: web.json_response({"status": "ok", "service": "pinghome"}))
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.http_port).start()

    def stop_http(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)

    def stop_tcp(self) -> None:
        self.listener.close()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[str, Process]]]:
    with running_cluster(tmp_path_factory.mktemp("probes")) as cluster:
        probes = {region: cluster.start_probe(region) for region in ("eu", "us")}
        yield cluster, probes


@pytest.fixture
def target() -> Iterator[Target]:
    served = Target().start()
    yield served
    served.close()


def status_of(api: Client, monitor_id: str) -> dict:
    return api.get(f"/v1/monitors/{monitor_id}").body["data"]


def probes_of(api: Client) -> list[dict]:
    return api.get("/v1/probes").body["data"]


def test_monitors_go_up_then_down_with_a_precise_cause_from_two_regions(
        probed: tuple[Cluster, dict[str, Process]], target: Target) -> None:
    cluster, _ = probed
    _, key = cluster.new_org()
    api = ready_client(cluster, key)
    regions = ["eu", "us"]
    http = api.post("/v1/monitors", {
        "name": "pinghome", "url": f"http://127.0.0.1:{target.http_port}/health", "regions": regions,
        "interval_seconds": INTERVAL, "timeout_seconds": 2,
        "conditions": [{"type": "keyword", "operator": "contains", "values": ["pinghome"]}]}).body["data"]
    tcp = api.post("/v1/monitors", {"name": "port", "type": "tcp", "host": "127.0.0.1", "port": target.tcp_port,
                                    "regions": regions, "interval_seconds": INTERVAL,
                                    "timeout_seconds": 2}).body["data"]

    for monitor in (http, tcp):
        wait_for(f"{monitor['name']} to go up", lambda m=monitor: status_of(api, m["id"])["status"] == "up",
                 4 * INTERVAL, interval=0.5)

    def checked_from_both() -> bool:
        checks = api.get(f"/v1/monitors/{http['id']}/checks").body["data"]
        return {check["region"] for check in checks} == set(regions)
    wait_for("checks from both regions", checked_from_both, 3 * INTERVAL, interval=0.5)

    target.stop_http()
    target.stop_tcp()
    for monitor in (http, tcp):
        wait_for(f"{monitor['name']} to go down", lambda m=monitor: status_of(api, m["id"])["status"] == "down",
                 4 * INTERVAL, interval=0.5)
    checks = api.get(f"/v1/monitors/{http['id']}/checks").body["data"]
    causes = {check.get("cause") for check in checks if check["status"] == "down"}
    assert any(cause and "connection refused" in cause for cause in causes), causes

    listed = probes_of(api)
    assert {probe["region"] for probe in listed} >= set(regions)
    for probe in listed:
        assert probe["monitors"] >= 2 and probe["stale"] is False, probe
        assert probe["schedule_lag_p99_ms"] < 1000, probe


def test_probes_of_a_region_share_its_monitors_and_take_over_from_a_killed_one(
        probed: tuple[Cluster, dict[str, Process]], target: Target) -> None:
    cluster, probes = probed
    _, key = cluster.new_org()
    api = ready_client(cluster, key)
    monitors = [api.post("/v1/monitors", {
        "name": f"shared {n}", "url": f"http://127.0.0.1:{target.http_port}/health", "regions": ["eu"],
        "interval_seconds": INTERVAL, "timeout_seconds": 2}).body["data"]["id"] for n in range(12)]
    second = cluster.start_probe("eu", name="probe-eu-2")
    try:
        def eu_probes() -> list[dict]:
            return [p for p in probes_of(api) if p["region"] == "eu" and not p["stale"]]

        def shared() -> bool:
            found = eu_probes()
            owned = [set(p["partitions"]) for p in found]
            return len(found) == 2 and all(owned) and set().union(*owned) == set(range(cluster.partitions))
        wait_for("the two eu probes to share the partitions", shared, 60, interval=0.5)

        probes["eu"].stop(signal.SIGKILL)  # no goodbye: its partitions move after the session timeout

        def taken_over() -> bool:
            alive = [p for p in eu_probes() if p["id"].split(":")[1] == str(second.popen.pid)]
            return bool(alive) and set(alive[0]["partitions"]) == set(range(cluster.partitions))
        wait_for("the surviving probe to take every partition", taken_over, 60, interval=0.5)

        before = {mid: api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] for mid in monitors}

        def all_checked_again() -> bool:
            return all(api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] > before[mid]
                       for mid in monitors)
        wait_for("every monitor to be checked by the surviving probe", all_checked_again, 3 * INTERVAL,
                 interval=0.5)
    finally:
        second.stop()
        probes["eu"] = cluster.start_probe("eu")  # the module's other tests keep two regions
