"""Every API process knows what exists from the directory topic, at once after a change made through another.

A monitor, heartbeat or webhook created through one API process is usable for
ingest through another right away (an unknown id costs one catch-up with the
directory, never a read from a worker); one deleted or disabled through a
process is refused by that process as soon as the command answered.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cluster import Client, Cluster, Process, wait_for
from tests.integration.conftest import ready_client


@pytest.fixture(scope="module")
def second_api(cluster: Cluster) -> Iterator[Process]:
    process = cluster.start_api("api-directory")
    wait_for("the second API to serve", lambda: Client(process.url).get("/v1/health-check").status == 200, 60,
             interval=0.25)
    yield process
    process.stop()
    cluster.processes.remove(process)


def test_a_monitor_created_through_one_process_takes_results_through_another_at_once(
        cluster: Cluster, second_api: Process) -> None:
    _, key = cluster.new_org()
    first = ready_client(cluster, key)
    second = Client(second_api.url, key)
    wait_for("the key to work on the second API", lambda: second.get("/v1/monitors").status == 200, 30)
    for n in range(5):
        created = first.post("/v1/monitors", {"name": f"directory {n}", "url": "https://example.com"})
        assert created.status == 201, created.body
        posted = second.post("/v1/checks", {"monitor_id": created.body["data"]["id"], "status": "up"})
        assert posted.status == 202, posted.body  # not 422: the second process caught up with the directory

    monitor_id = created.body["data"]["id"]
    assert first.delete(f"/v1/monitors/{monitor_id}").status == 204
    refused = first.post("/v1/checks", {"monitor_id": monitor_id, "status": "up"})
    assert refused.status == 422 and refused.body["error"] == "unknown_monitor", refused.body
    wait_for("the second process to learn of the delete", lambda: second.post(
        "/v1/checks", {"monitor_id": monitor_id, "status": "up"}).status == 422, 10)

    other_org_key = cluster.new_org()[1]
    stranger = ready_client(cluster, other_org_key)
    kept = first.post("/v1/monitors", {"name": "mine", "url": "https://example.com"}).body["data"]["id"]
    refused = stranger.post("/v1/checks", {"monitor_id": kept, "status": "up"})
    assert refused.status == 422 and refused.body["error"] == "unknown_monitor"  # another team's is unknown


def test_heartbeats_and_webhooks_follow_the_directory_too(cluster: Cluster, second_api: Process) -> None:
    _, key = cluster.new_org()
    first = ready_client(cluster, key)
    anonymous = Client(second_api.url)

    heartbeat = first.post("/v1/heartbeats", {"name": "nightly", "interval": 3600}).body["data"]
    assert anonymous.post(f"/v1/heartbeats/{heartbeat['id']}/events?result=tick").status == 202
    assert first.delete(f"/v1/heartbeats/{heartbeat['id']}").status == 204
    refused = Client(first.base).post(f"/v1/heartbeats/{heartbeat['id']}/events?result=tick")
    assert refused.status == 404, refused.body  # at once through the process that deleted it
    wait_for("the second process to learn of the delete", lambda: anonymous.post(
        f"/v1/heartbeats/{heartbeat['id']}/events?result=tick").status == 404, 10)

    webhook = first.post("/v1/webhooks", {"name": "alerts"}).body["data"]
    accepted = anonymous.post(f"/v1/webhooks/{webhook['id']}/events", {"alert": "disk full"})
    assert accepted.status == 202, accepted.body
    assert first.delete(f"/v1/webhooks/{webhook['id']}").status == 204
    gone = Client(first.base).post(f"/v1/webhooks/{webhook['id']}/events", {"alert": "disk full"})
    assert gone.status == 404, gone.body
