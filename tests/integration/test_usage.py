"""Plan limits and usage through the public API, against a real broker, worker and API.

A free team may hold 10 monitors and 10 heartbeats; one more is refused with 403
and leaves nothing behind. GET /v1/account/usage adds up every partition's
counts. A free key may make 60 requests a minute, so these tests poll gently.
"""
from __future__ import annotations

import time
import uuid

from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.test_monitors import HTTP_MONITOR, create, post_results

FREE_LIMIT = 10
POLL = 0.5   # seconds between polls: a free key has 60 requests a minute


def free_team(cluster: Cluster, name: str) -> Client:
    _, key = cluster.new_org(name=name, plan="free")
    return cluster.client(key)


def usage(api: Client) -> dict:
    response = api.get("/v1/account/usage")
    assert response.status == 200, response.body
    return response.body["data"]


def refusal(collection: str) -> dict:
    return {"error": "plan_limit_reached",
            "message": f"Your free plan allows 10 {collection}; delete some or upgrade the plan."}


def test_a_free_team_gets_ten_monitors_then_403_until_it_deletes_one(cluster: Cluster) -> None:
    api = free_team(cluster, "free monitors")
    created = [create(api)["id"] for _ in range(FREE_LIMIT)]

    refused = api.post("/v1/monitors", HTTP_MONITOR)

    assert refused.status == 403 and refused.body == refusal("monitors")
    listed = api.get("/v1/monitors?per_page=100").body
    assert [monitor["id"] for monitor in listed["data"]] == created and listed["meta"]["total"] == FREE_LIMIT
    # the refused monitor was created in its partition, then undone there: active goes back to 10
    wait_for("the refused monitor to be undone", lambda: usage(api)["monitors_active"] == FREE_LIMIT, 20, POLL)
    assert usage(api)["monitors_used"] == FREE_LIMIT

    assert api.delete(f"/v1/monitors/{created[0]}").status == 204
    again = create(api)
    assert api.post("/v1/monitors", HTTP_MONITOR).status == 403
    listed = api.get("/v1/monitors?per_page=100").body
    assert [monitor["id"] for monitor in listed["data"]] == created[1:] + [again["id"]]


def test_a_free_team_gets_ten_heartbeats_and_a_refused_one_is_gone(cluster: Cluster) -> None:
    api = free_team(cluster, "free heartbeats")
    for n in range(FREE_LIMIT):
        response = api.post("/v1/heartbeats", {"name": f"job {n}", "interval": 3600, "service_id": "db"})
        assert response.status == 201, response.body
    rejected = str(uuid.uuid4())   # an imported Healthchecks id, so we know which one was refused

    refused = api.post("/v1/heartbeats", {"name": "one too many", "interval": 3600, "service_id": "db",
                                          "id": rejected})

    assert refused.status == 403 and refused.body == refusal("heartbeats")
    wait_for("the refused heartbeat to be undone",
             lambda: api.get(f"/v1/heartbeats/{rejected}").status == 404, 20, POLL)
    assert api.get("/v1/heartbeats?service_id=db&per_page=100").body["meta"]["total"] == FREE_LIMIT
    assert api.post("/v1/monitors", HTTP_MONITOR).status == 201   # monitors are counted apart
    counted = usage(api)
    assert (counted["heartbeats_used"], counted["heartbeats_limit"]) == (FREE_LIMIT, FREE_LIMIT)
    assert counted["monitors_used"] == 1


def test_usage_counts_monitors_paused_ones_and_every_check_exactly(cluster: Cluster) -> None:
    api = free_team(cluster, "usage")
    assert usage(api) == {"plan": "free", "monitors_used": 0, "monitors_active": 0, "monitors_limit": 10,
                          "heartbeats_used": 0, "heartbeats_limit": 10, "checks_last_24h": 0,
                          "requests_per_minute": 60}
    monitors = [create(api)["id"] for _ in range(6)]   # spread over the partitions by their ids
    paused = monitors[0]
    assert api.post(f"/v1/monitors/{paused}/pause").status == 200
    counted = usage(api)
    assert (counted["monitors_used"], counted["monitors_active"]) == (6, 5)

    now = time.time()
    first = [{"monitor_id": monitor_id, "region": "eu-west", "status": "up", "response_time_ms": 10.0 + n,
              "checked_at": now - 120 + n} for n, monitor_id in enumerate(monitors[1:] * 7)]   # 35
    second = [{"monitor_id": monitor_id, "region": "us-east", "status": "down", "cause": "timeout",
               "checked_at": now - 60 + n} for n, monitor_id in enumerate(monitors[1:] * 3)]   # 15
    post_results(api, first)
    wait_for("35 checks to be counted", lambda: usage(api)["checks_last_24h"] == 35, 20, POLL)
    post_results(api, second)
    post_results(api, [{"monitor_id": paused, "region": "eu-west", "status": "up", "checked_at": now - 30}])
    wait_for("50 checks to be counted", lambda: usage(api)["checks_last_24h"] == 50, 20, POLL)

    # the paused monitor's result was dropped, not counted; and what is counted is what the monitors show
    totals = [api.get(f"/v1/monitors/{monitor_id}/uptime?period=24h").body["data"]["total_checks"]
              for monitor_id in monitors]
    assert totals == [0] + [10] * 5
    assert usage(api)["checks_last_24h"] == 50

    assert api.post(f"/v1/monitors/{paused}/resume").status == 200
    assert api.delete(f"/v1/monitors/{monitors[1]}").status == 204
    counted = usage(api)
    assert (counted["monitors_used"], counted["monitors_active"]) == (5, 5)


def test_usage_needs_the_account_read_scope(cluster: Cluster) -> None:
    _, key = cluster.new_org(scopes=("monitors:read",), name="no account scope", plan="free")
    response = cluster.client(key).get("/v1/account/usage")
    assert response.status == 403 and response.body["error"] == "insufficient_scope"
