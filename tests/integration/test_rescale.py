"""`pingstream rescale`: 4 → 8 → 3 partitions under a stream of results and check-ins, each move killed once.

Through the public surface only: the CLI moves the deployment while a poster
keeps sending results and check-ins, a reader keeps reading and a probe keeps
checking. Afterwards every
accepted result and ping is counted exactly once, every resource is readable,
ingest was never refused, and reads answered 503 (with Retry-After) at most.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.cluster import ROOT, Client, Cluster, wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.integration.test_ingest_during_rebalance import Poster
from tests.integration.test_monitors import create

MONITORS = 16
HEARTBEATS = 4


class Pinger(Poster):
    """Checks every heartbeat in, one after the other, a few times a second (below the per-heartbeat limit)."""

    def run(self) -> None:
        while not self.halt.is_set():
            for heartbeat_id in self.monitors:
                try:
                    response = self.api.post(f"/v1/heartbeats/{heartbeat_id}/events")
                except Exception as exc:
                    self.failures.append(repr(exc))
                    continue
                self.statuses[response.status] += 1
                if response.status == 202:
                    self.posted[heartbeat_id] += 1
                else:
                    self.failures.append(f"{response.status}: {response.body}")
            time.sleep(0.25)


class Reader(Poster):
    """Reads a monitor and the monitor list until stopped; keeps what each answer said."""

    def run(self) -> None:
        while not self.halt.is_set():
            for path in (f"/v1/monitors/{self.monitors[0]}", "/v1/monitors?per_page=5"):
                try:
                    response = self.api.get(path)
                except Exception as exc:
                    self.failures.append(repr(exc))
                    continue
                self.statuses[response.status] += 1
                if response.status == 503 and not response.headers.get("Retry-After"):
                    self.failures.append(f"503 without Retry-After: {response.body}")
                elif response.status not in (200, 503):
                    self.failures.append(f"{response.status}: {response.body}")
            time.sleep(0.2)


def rescale(cluster: Cluster, partitions: int, *, kill_at: str | None = None) -> str:
    """Run `pingstream rescale`; with `kill_at`, SIGKILL it once it prints that, then run it again to the end."""
    command = [sys.executable, "-m", "pingstream.cli", "rescale", "--partitions", str(partitions)]
    said = ""
    if kill_at is not None:
        process = subprocess.Popen(command, cwd=ROOT, env=cluster.env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 180
        try:
            for line in process.stdout:
                said += line
                if kill_at in line or time.monotonic() > deadline:
                    break
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        assert kill_at in said, f"the rescale never said {kill_at!r}:\n{said}"
    finished = subprocess.run(command, cwd=ROOT, env=cluster.env(), capture_output=True, text=True, timeout=300)
    said += finished.stdout + finished.stderr
    assert finished.returncode == 0, said
    assert f"to {partitions} partitions" in finished.stdout, said
    return said


@pytest.mark.timeout(600)
def test_rescale_4_to_8_to_3_under_ingest_loses_and_repeats_nothing(tmp_path: Path) -> None:
    with running_cluster(tmp_path, workers=2) as cluster:
        api_process = next(p for p in cluster.processes if p.name == "api")
        org_id, key = cluster.new_org()
        api = ready_client(cluster, key)
        monitors = [create(api, name=f"rescale {n}", regions=[])["id"] for n in range(MONITORS)]
        # a probe checks one more monitor (the API's health check) every 10 s, and must follow every move
        cluster.start_probe("eu")
        watched = create(api, name="watched", url=f"{api_process.url}/v1/health-check", regions=["eu"],
                         interval_seconds=10, timeout_seconds=5)["id"]
        heartbeats = []
        for n in range(HEARTBEATS):
            created = api.post("/v1/heartbeats", {"name": f"rescale {n}", "interval": 3600, "grace": 3600})
            assert created.status == 201, created.body
            heartbeats.append(created.body["data"]["id"])
        others = {
            "/v1/webhooks": api.post("/v1/webhooks", {"name": "alertmanager"}),
            "/v1/rulesets": api.post("/v1/rulesets", {"rule_type": "webhook", "name": "all"}),
            "/v1/incidents": api.post("/v1/incidents", {"name": "Checkout slow"}),
            "/v1/groups": api.post("/v1/groups", {"name": "database"}),
            "/v1/status-pages": api.post("/v1/status-pages", {"name": "Rescaled", "subdomain": f"rescaled-{org_id[-8:]}",
                                                              "components": [{"name": "API"}]}),
            f"/v1/team/{org_id}/schedules": api.post(f"/v1/team/{org_id}/schedules", {"name": "rota"}),
        }
        for path, response in others.items():
            assert response.status == 201, (path, response.body)
        poster, pinger, reader = Poster(api, monitors), Pinger(api, heartbeats), Reader(api, monitors)
        for thread in (poster, pinger, reader):
            thread.start()
        try:
            wait_for("results to be posted", lambda: poster.statuses[202] >= 10, 30)
            first = rescale(cluster, 8, kill_at="ingest goes to the new topics in every process")
            assert "resuming the move from 4 to 8 partitions (moving)" in first, first
            cluster.wait_serving(api_process)
            middle = poster.statuses[202]
            second = rescale(cluster, 3, kill_at="copied partition 0")
            assert "resuming the move from 8 to 3 partitions (copying)" in second, second
            cluster.wait_serving(api_process)
            wait_for("results posted after the second move", lambda: poster.statuses[202] > middle + 20, 60)
        finally:
            for thread in (poster, pinger, reader):
                thread.halt.set()
                thread.join(30)

        # ingest was never refused, reads at most asked to come back later
        assert poster.failures == [] and set(poster.statuses) == {202}, (poster.failures[:5], poster.statuses)
        assert pinger.failures == [] and set(pinger.statuses) == {202}, (pinger.failures[:5], pinger.statuses)
        assert reader.failures == [], reader.failures[:5]
        assert reader.statuses[200] > 0 and reader.statuses[503] > 0, reader.statuses

        def counted() -> bool:
            return all(api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] == poster.posted[mid]
                       for mid in monitors) and all(
                api.get(f"/v1/heartbeats/{hid}/statistics").body["meta"]["tick_count"] == pinger.posted[hid]
                for hid in heartbeats)
        try:
            wait_for("every accepted result and ping to be counted once", counted, 90, interval=1.0)
        except AssertionError:
            seen = {mid: (api.get(f"/v1/monitors/{mid}/uptime").body, poster.posted[mid]) for mid in monitors[:4]}
            raise AssertionError(f"counted vs posted: {seen}") from None

        # every resource is where the new count puts it, and readable
        assert api.get("/v1/monitors").body["meta"]["total"] == MONITORS + 1
        for mid in monitors:
            assert api.get(f"/v1/monitors/{mid}").status == 200
        for hid in heartbeats:
            assert api.get(f"/v1/heartbeats/{hid}").status == 200
        for path, response in others.items():
            assert api.get(f"{path}/{response.body['data']['id']}").status == 200, path
        # the probe went on checking on the last generation: its results are counted there
        checked = api.get(f"/v1/monitors/{watched}/uptime").body["data"]["total_checks"]
        wait_for("a check by the probe after the moves", lambda: api.get(
            f"/v1/monitors/{watched}/uptime").body["data"]["total_checks"] > checked, 60, interval=1.0)
        # and commands work again, on the new partitions
        assert api.post("/v1/monitors", {"name": "after", "url": "https://example.com", "regions": []}).status == 201
        health = Client(api_process.url).get("/v1/health-check", headers={"X-Pingstream-Internal": cluster.token})
        assert health.body["data"]["partitions"] == 3 and health.body["data"]["generation"] == 2, health.body
        print(*[line for line in (first + second).splitlines() if " done: " in line], sep="\n")  # for -s runs
