"""Monitors through the public API: CRUD, pagination, pause/resume, delete."""
from __future__ import annotations

import time

from tests.integration.cluster import Client, wait_for

HTTP_MONITOR = {"name": "Homepage", "url": "https://example.com/health", "regions": ["eu-west", "us-east", "ap-south"]}


def create(api: Client, **overrides) -> dict:
    response = api.post("/v1/monitors", {**HTTP_MONITOR, **overrides})
    assert response.status == 201, response.body
    return response.body["data"]


def post_results(api: Client, results: list[dict]) -> None:
    response = api.post("/v1/checks", {"results": results})
    assert response.status == 202, response.body
    assert response.body["data"]["accepted"] == len(results)


def test_create_returns_the_stored_monitor_and_the_next_read_sees_it(api: Client) -> None:
    created = create(api, grace_period=30, recovery_period=60, conditions=[
        {"type": "status_code", "operator": "equal", "values": [200, 204]}])
    assert created["id"].startswith("mon_")
    assert created["status"] == "unknown" and created["paused"] is False
    assert created["grace_period"] == 30 and created["recovery_period"] == 60
    fetched = api.get(f"/v1/monitors/{created['id']}")
    assert fetched.status == 200
    assert {k: v for k, v in fetched.body["data"].items() if k != "uptime_30d"} == created
    assert fetched.body["data"]["uptime_30d"]["total_checks"] == 0


def test_list_is_paginated_in_creation_order(api: Client) -> None:
    ids = [create(api, name=f"m{n}")["id"] for n in range(5)]
    first = api.get("/v1/monitors?per_page=2")
    assert first.status == 200
    assert first.body["meta"] == {"page": 1, "per_page": 2, "total": 5, "total_pages": 3}
    assert [m["id"] for m in first.body["data"]] == ids[:2]
    last = api.get("/v1/monitors?per_page=2&page=3")
    assert [m["id"] for m in last.body["data"]] == ids[4:]
    assert api.get("/v1/monitors?page=4&per_page=2").body["data"] == []


def test_patch_changes_fields_and_validates_the_result(api: Client) -> None:
    monitor = create(api)
    changed = api.patch(f"/v1/monitors/{monitor['id']}", {"name": "Renamed", "interval_seconds": 120})
    assert changed.status == 200, changed.body
    assert changed.body["data"]["name"] == "Renamed" and changed.body["data"]["interval_seconds"] == 120
    assert api.get(f"/v1/monitors/{monitor['id']}").body["data"]["name"] == "Renamed"
    invalid = api.patch(f"/v1/monitors/{monitor['id']}", {"timeout_seconds": 500})
    assert invalid.status == 422
    assert "timeout_seconds" in invalid.body["errors"]
    clash = api.patch(f"/v1/monitors/{monitor['id']}", {"timeout_seconds": 119, "interval_seconds": 60})
    assert clash.status == 422 and clash.body["error"] == "validation_error"
    assert api.get(f"/v1/monitors/{monitor['id']}").body["data"]["interval_seconds"] == 120


def test_pause_stops_transitions_and_resume_starts_fresh(api: Client) -> None:
    monitor = create(api, regions=[])
    now = time.time()
    paused = api.post(f"/v1/monitors/{monitor['id']}/pause")
    assert paused.status == 200 and paused.body["data"]["status"] == "paused"
    post_results(api, [{"monitor_id": monitor["id"], "status": "down", "checked_at": now - 5, "cause": "refused"}])
    assert api.get(f"/v1/monitors/{monitor['id']}").body["data"]["status"] == "paused"
    # the resume reaches check-results after that result, so the result met a paused monitor
    resumed = api.post(f"/v1/monitors/{monitor['id']}/resume")
    assert resumed.status == 200 and resumed.body["data"]["paused"] is False
    post_results(api, [{"monitor_id": monitor["id"], "status": "down", "checked_at": now, "cause": "refused"}])
    down = wait_for("the resumed monitor to go down",
                    lambda: (m := api.get(f"/v1/monitors/{monitor['id']}").body["data"])["status"] == "down" and m, 15)
    assert down["uptime_30d"]["total_checks"] == 1  # the result sent while paused was not counted
    changes = api.get(f"/v1/monitors/{monitor['id']}/state-changes").body["data"]
    assert [c["event"] for c in changes] == ["monitor.down"]


def test_delete_removes_the_monitor_and_its_data(api: Client) -> None:
    keep, gone = create(api, name="keep"), create(api, name="gone")
    post_results(api, [{"monitor_id": gone["id"], "status": "up", "checked_at": time.time()}])
    wait_for("the result to be counted",
             lambda: api.get(f"/v1/monitors/{gone['id']}/uptime").body["data"]["total_checks"] == 1, 15)
    assert api.delete(f"/v1/monitors/{gone['id']}").status == 204
    for view in ("", "/uptime", "/checks", "/state-changes", "/performance"):
        response = api.get(f"/v1/monitors/{gone['id']}{view}")
        assert response.status == 404, (view, response.body)
    assert [m["id"] for m in api.get("/v1/monitors").body["data"]] == [keep["id"]]
    assert api.delete(f"/v1/monitors/{gone['id']}").status == 404
    refused = api.post("/v1/checks", {"monitor_id": gone["id"], "status": "up"})
    assert refused.status == 422 and refused.body["error"] == "unknown_monitor"


def test_bulk_delete_reports_what_was_deleted(api: Client) -> None:
    a, b = create(api, name="a"), create(api, name="b")
    response = api.delete(f"/v1/monitors?id={a['id']}&id={b['id']}&id=mon_missing")
    assert response.status == 200
    assert sorted(response.body["data"]["deleted"]) == sorted([a["id"], b["id"]])
    assert response.body["data"]["not_found"] == ["mon_missing"]
    assert api.get("/v1/monitors").body["meta"]["total"] == 0
    assert api.delete("/v1/monitors").status == 422
