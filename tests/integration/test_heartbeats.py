"""Heartbeats through the public API and Kafka: configuration, check-ins, missed deadlines, runs, statistics."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.partitioning import partition_for
from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client
from tests.integration.test_bad_input_and_access import assert_error


@dataclass
class Emitted:
    """One event on monitor-events, with when the worker produced it."""

    produced_at: float
    event: dict


def create_heartbeat(api: Client, **fields) -> dict:
    response = api.post("/v1/heartbeats", {"name": "backup", "interval": 60, **fields})
    assert response.status == 201, response.body
    return response.body["data"]


def check_in(api: Client, heartbeat_id: str, result: str = "tick", **query: str) -> dict:
    params = "&".join(f"{k}={v}" for k, v in {"result": result, **query}.items())
    response = Client(api.base).post(f"/v1/heartbeats/{heartbeat_id}/events?{params}")  # no API key needed
    assert response.status == 202, response.body
    return response.body["data"]


def history(api: Client, heartbeat_id: str, **query) -> list[dict]:
    response = api.get(f"/v1/heartbeats/{heartbeat_id}/events" + ("?" + "&".join(f"{k}={v}" for k, v in query.items())
                                                                  if query else ""))
    assert response.status == 200, response.body
    return response.body["data"]


def status_of(api: Client, heartbeat_id: str) -> str:
    return api.get(f"/v1/heartbeats/{heartbeat_id}").body["data"]["status"]


def heartbeat_events(cluster: Cluster, heartbeat_id: str | None = None) -> list[Emitted]:
    """Events on monitor-events about this heartbeat (its partition only), or about any heartbeat."""
    async def read() -> list[Emitted]:
        consumer = AIOKafkaConsumer(bootstrap_servers=cluster.broker_url.removeprefix("kafka://"), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            partitions = range(cluster.partitions) if heartbeat_id is None else \
                [partition_for(heartbeat_id, cluster.partitions)]
            tps = [TopicPartition("monitor-events", partition) for partition in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            found: list[Emitted] = []
            deadline = time.monotonic() + 10
            # until nothing more comes (Tansu's end offsets cannot be trusted, see BROKER-NOTES)
            while (batch := await consumer.getmany(*tps, timeout_ms=400)) and time.monotonic() < deadline:
                for records in batch.values():
                    for record in records:
                        event = orjson.loads(record.value)
                        if "heartbeat_id" in event and heartbeat_id in (None, event["heartbeat_id"]):
                            found.append(Emitted(record.timestamp / 1000, event))
            found.sort(key=lambda emitted: emitted.produced_at)
            return found
        finally:
            await consumer.stop()
    return asyncio.run(read())


def events_named(cluster: Cluster, heartbeat_id: str, *kinds: str) -> list[str]:
    return [e.event["event"] for e in heartbeat_events(cluster, heartbeat_id) if e.event["event"] in kinds or not kinds]


# -- configuration ----------------------------------------------------------------


def test_create_answers_the_stored_heartbeat_with_its_check_in_urls(api: Client) -> None:
    created = create_heartbeat(api, name="Nightly backup", interval=86400, grace=3600, service_id="db")
    assert created["status"] == "new" and created["enabled"] is True and created["cron"] is None
    assert uuid.UUID(created["id"]) and len(created["push_token"]) == 32
    urls = created["checkin_urls"]
    assert urls["healthchecks"] == f"{api.base}/ping/{created['id']}"
    assert urls["uptime_kuma"] == f"{api.base}/api/push/{created['push_token']}?status=up&msg=OK&ping="
    assert urls["events"] == f"{api.base}/v1/heartbeats/{created['id']}/events"
    fetched = api.get(f"/v1/heartbeats/{created['id']}")
    assert fetched.status == 200 and fetched.body["data"] == created


def test_list_pages_and_filters_by_service_and_updates_move_between_services(api: Client) -> None:
    db = [create_heartbeat(api, name=f"db {n}", service_id="db")["id"] for n in range(3)]
    web = create_heartbeat(api, name="web", service_id="web")["id"]
    loose = create_heartbeat(api, name="no service")["id"]
    first = api.get("/v1/heartbeats?per_page=2").body
    assert first["meta"] == {"page": 1, "per_page": 2, "total": 5, "total_pages": 3}
    assert [h["id"] for h in first["data"]] == db[:2]
    assert [h["id"] for h in api.get("/v1/heartbeats?per_page=2&page=3").body["data"]] == [loose]
    by_db = api.get("/v1/heartbeats?service_id=db").body
    assert [h["id"] for h in by_db["data"]] == db and by_db["meta"]["total"] == 3
    moved = api.request("PUT", f"/v1/heartbeats/{db[0]}", {"service_id": "web", "name": "moved"})
    assert moved.status == 200 and moved.body["data"]["service_id"] == "web"
    assert [h["id"] for h in api.get("/v1/heartbeats?service_id=db").body["data"]] == db[1:]
    assert [h["id"] for h in api.get("/v1/heartbeats?service_id=web").body["data"]] == [db[0], web]
    assert api.get("/v1/heartbeats?service_id=nothing").body == {
        "data": [], "meta": {"page": 1, "per_page": 20, "total": 0, "total_pages": 0}}


def test_update_switches_to_cron_and_validates_the_result(api: Client) -> None:
    heartbeat = create_heartbeat(api, interval=300)
    changed = api.request("PUT", f"/v1/heartbeats/{heartbeat['id']}",
                          {"cron": "30 2 * * *", "timezone": "Europe/Berlin", "grace": 900})
    assert changed.status == 200, changed.body
    data = changed.body["data"]
    assert (data["cron"], data["interval"], data["timezone"], data["grace"]) == ("30 2 * * *", None, "Europe/Berlin", 900)
    assert data["checkin_urls"]["healthchecks"].endswith(heartbeat["id"])
    invalid = api.request("PUT", f"/v1/heartbeats/{heartbeat['id']}", {"timezone": "Moon/Base"})
    assert_error(invalid, 422, "validation_error", "timezone")
    both = api.request("PUT", f"/v1/heartbeats/{heartbeat['id']}", {"interval": 60, "cron": "* * * * *"})
    assert_error(both, 422, "validation_error", "cron")
    assert api.get(f"/v1/heartbeats/{heartbeat['id']}").body["data"]["cron"] == "30 2 * * *"


def test_delete_and_bulk_delete(api: Client) -> None:
    a, b, c = (create_heartbeat(api, name=n, service_id="s")["id"] for n in "abc")
    assert api.delete(f"/v1/heartbeats/{a}").status == 204
    assert api.get(f"/v1/heartbeats/{a}").status == 404
    assert api.delete(f"/v1/heartbeats/{a}").status == 404
    missing = str(uuid.uuid4())
    response = api.delete(f"/v1/heartbeats?id={b}&id={c}&id={missing}&id=garbage")
    assert response.status == 200
    assert sorted(response.body["data"]["deleted"]) == sorted([b, c])
    assert response.body["data"]["not_found"] == [missing, "garbage"]
    assert api.get("/v1/heartbeats").body["meta"]["total"] == 0
    assert api.get("/v1/heartbeats?service_id=s").body["meta"]["total"] == 0
    assert_error(api.delete("/v1/heartbeats"), 422, "validation_error", "id")
    assert_error(Client(api.base).post(f"/v1/heartbeats/{a}/events"), 404, "not_found")


def test_imported_ids_and_tokens_keep_existing_urls_working_and_are_used_once(cluster: Cluster, api: Client) -> None:
    hc_id = str(uuid.uuid4())
    imported = create_heartbeat(api, id=hc_id.upper())
    assert imported["id"] == hc_id and imported["push_token"] is None
    assert imported["checkin_urls"]["uptime_kuma"] is None
    token = "kuma" + uuid.uuid4().hex[:20]
    from_kuma = create_heartbeat(api, push_token=token)
    assert from_kuma["push_token"] == token
    _, key = cluster.new_org()
    stranger = ready_client(cluster, key)
    for body in ({"name": "x", "interval": 60, "id": hc_id}, {"name": "x", "interval": 60, "push_token": token}):
        assert_error(stranger.post("/v1/heartbeats", body), 409, "conflict")
    assert stranger.get("/v1/heartbeats").body["data"] == []


@pytest.mark.parametrize("body, field", [
    ({"name": "x"}, "interval"),
    ({"name": "x", "interval": 60, "cron": "* * * * *"}, "cron"),
    ({"name": "x", "cron": "every night"}, "cron"),
    ({"name": "x", "cron": "0 3 * * *", "timezone": "Europe/Atlantis"}, "timezone"),
    ({"name": "", "interval": 60}, "name"),
    ({"name": "x", "interval": "hourly"}, "interval"),
    ({"name": "x", "interval": 60, "grace": -5}, "grace"),
    ({"name": "x", "interval": 60, "colour": "red"}, "colour"),
])
def test_invalid_heartbeats_get_per_field_errors(api: Client, body: dict, field: str) -> None:
    assert_error(api.post("/v1/heartbeats", body), 422, "validation_error", field)
    assert api.get("/v1/heartbeats").body["meta"]["total"] == 0


def test_another_organisations_heartbeat_is_404_and_untouched(cluster: Cluster, api: Client) -> None:
    mine = create_heartbeat(api, name="mine")["id"]
    _, key = cluster.new_org()
    stranger = ready_client(cluster, key)
    for method, path in (("GET", f"/v1/heartbeats/{mine}"), ("GET", f"/v1/heartbeats/{mine}/events"),
                         ("GET", f"/v1/heartbeats/{mine}/statistics"), ("PUT", f"/v1/heartbeats/{mine}"),
                         ("DELETE", f"/v1/heartbeats/{mine}")):
        response = stranger.request(method, path, {"name": "stolen"} if method == "PUT" else None)
        assert response.status == 404, (method, path, response.body)
    assert stranger.delete(f"/v1/heartbeats?id={mine}").body["data"] == {"deleted": [], "not_found": [mine]}
    assert stranger.get("/v1/heartbeats").body["data"] == []
    assert api.get(f"/v1/heartbeats/{mine}").body["data"]["name"] == "mine"


def test_scopes_and_keys_are_enforced_but_check_ins_need_none(cluster: Cluster, api: Client) -> None:
    heartbeat = create_heartbeat(api)["id"]
    _, key = cluster.new_org(scopes=("monitors:read",))
    reader = ready_client(cluster, key)
    assert_error(reader.post("/v1/heartbeats", {"name": "x", "interval": 60}), 403, "insufficient_scope")
    assert_error(reader.get("/v1/heartbeats"), 403, "insufficient_scope")
    assert_error(Client(api.base).get("/v1/heartbeats"), 401, "unauthorized")
    assert Client(api.base).get(f"/v1/heartbeats/{heartbeat}/events?result=tick").status == 202  # no key needed
    without_result = Client(api.base).get(f"/v1/heartbeats/{heartbeat}/events")  # the history: a key is
    assert_error(without_result, 401, "unauthorized")
    assert "result=tick" in without_result.body["message"]
    document = Client(api.base).get("/v1/openapi.json").body
    assert document["paths"]["/v1/heartbeats"]["post"]["x-scope"] == "heartbeats:write"
    assert "HeartbeatSpec" in document["components"]["schemas"]


# -- check-ins, detection, history, statistics ---------------------------------------


def test_on_time_late_and_back(cluster: Cluster, api: Client) -> None:
    heartbeat = create_heartbeat(api, interval=2, grace=1)["id"]
    for _ in range(3):  # on time: every second, well inside interval + grace
        check_in(api, heartbeat)
        time.sleep(1)
    assert status_of(api, heartbeat) == "up" and events_named(cluster, heartbeat) == []
    last = wait_for("the last tick in the history", lambda: (h := history(api, heartbeat)) and len(h) == 3 and h[0])
    received = datetime.fromisoformat(last["received_at"]).timestamp()
    down = wait_for("the missed deadline to take it down",
                    lambda: [e for e in heartbeat_events(cluster, heartbeat) if e.event["event"] == "heartbeat.down"],
                    15, interval=0.3)[0]
    deadline = down.event["at"]
    assert abs(deadline - (received + 2 + 1)) < 0.002 and down.event["cause"] == "missed"  # interval + grace
    assert down.event["id"] == f"{heartbeat}:down:{round(deadline * 1000)}"
    assert 0 <= down.produced_at - deadline <= 1.0, "detected more than 1 s after the deadline"
    assert status_of(api, heartbeat) == "down"
    check_in(api, heartbeat, message="back")
    wait_for("the next check-in to bring it up", lambda: status_of(api, heartbeat) == "up", 15)
    kinds = events_named(cluster, heartbeat)
    assert kinds == ["heartbeat.down", "heartbeat.recovered"]


def test_a_failing_job_goes_down_at_once_and_recovers(cluster: Cluster, api: Client) -> None:
    heartbeat = create_heartbeat(api, interval=3600)["id"]
    check_in(api, heartbeat, "fail", message="disk%20full")
    wait_for("the failure to take it down", lambda: status_of(api, heartbeat) == "down", 15)
    check_in(api, heartbeat, "complete")
    wait_for("the success to bring it up", lambda: status_of(api, heartbeat) == "up", 15)
    events = [e.event for e in heartbeat_events(cluster, heartbeat)]
    assert [(e["event"], e["cause"], e["message"]) for e in events] == [
        ("heartbeat.down", "failed", "disk full"), ("heartbeat.recovered", None, None)]
    assert events[0]["previous_status"] == "new"


def test_overlapping_runs_are_measured_and_a_hung_run_goes_down(cluster: Cluster, api: Client) -> None:
    heartbeat = create_heartbeat(api, interval=3600, grace=2)["id"]
    check_in(api, heartbeat, "run", rid="job-a")
    time.sleep(0.3)
    check_in(api, heartbeat, "run", rid="job-b")
    time.sleep(0.3)
    check_in(api, heartbeat, "complete", rid="job-b")
    time.sleep(0.3)
    check_in(api, heartbeat, "complete", rid="job-a")
    rows = wait_for("four check-ins in the history", lambda: (h := history(api, heartbeat)) and len(h) == 4 and h)
    assert [(r["result"], r["rid"]) for r in rows] == [
        ("complete", "job-a"), ("complete", "job-b"), ("run", "job-b"), ("run", "job-a")]
    a, b = rows[0]["duration"], rows[1]["duration"]
    assert 0.85 <= a <= 1.6 and 0.25 <= b <= 0.9 and a > b  # each end paired with its own start
    stats = api.get(f"/v1/heartbeats/{heartbeat}/statistics?interval=1h").body
    assert stats["meta"]["run_count"] == 2 and stats["meta"]["complete_count"] == 2
    assert stats["meta"]["measured_runs"] == 2
    assert stats["meta"]["mean_run_duration"] == pytest.approx((a + b) / 2, abs=0.002)
    assert stats["meta"]["p95_run_duration"] == pytest.approx(a, rel=0.02)
    assert sum(r["run_count"] for r in stats["data"]) == 2
    assert {r["received_at"][-4:] for r in stats["data"]} == {"000Z"}
    # a run that never ends: down once grace has passed
    check_in(api, heartbeat, "run", rid="job-c")
    down = wait_for("the hung run to take it down",
                    lambda: [e for e in heartbeat_events(cluster, heartbeat) if e.event["event"] == "heartbeat.down"],
                    15, interval=0.3)
    assert [e.event["cause"] for e in down] == ["run_timeout"]
    assert api.get(f"/v1/heartbeats/{heartbeat}").body["data"]["status"] == "down"


def test_history_pages_back_by_received_at(api: Client) -> None:
    heartbeat = create_heartbeat(api)["id"]
    for n in range(5):
        check_in(api, heartbeat, message=f"n{n}")
    rows = wait_for("five check-ins", lambda: (h := history(api, heartbeat)) and len(h) == 5 and h)
    assert [r["message"] for r in rows] == ["n4", "n3", "n2", "n1", "n0"]
    older = history(api, heartbeat, limit=2, last_received_at=rows[1]["received_at"])
    assert [r["message"] for r in older] == ["n2", "n1"]
    assert_error(api.get(f"/v1/heartbeats/{heartbeat}/events?limit=0"), 422, "validation_error", "limit")


def test_statistics_parameters_are_checked(api: Client) -> None:
    heartbeat = create_heartbeat(api)["id"]
    for interval in ("1h", "3h", "12h", "1d", "3d", "7d", "30d"):
        response = api.get(f"/v1/heartbeats/{heartbeat}/statistics?interval={interval}")
        assert response.status == 200 and response.body["data"], interval
    day = api.get(f"/v1/heartbeats/{heartbeat}/statistics?interval=1h&start_date=2026-01-01&end_date=2026-01-02").body
    assert len(day["data"]) == 24 and day["data"][0]["received_at"] == "2026-01-01T00:00:00.000Z"
    assert_error(api.get(f"/v1/heartbeats/{heartbeat}/statistics?interval=5m"), 422, "validation_error", "interval")
    assert_error(api.get(f"/v1/heartbeats/{heartbeat}/statistics?start_date=2026-01-02&end_date=2026-01-01"),
                 422, "validation_error", "end_date")
    assert_error(api.get(f"/v1/heartbeats/{heartbeat}/statistics?interval=1h&start_date=2020-01-01"),
                 422, "validation_error", "interval")


def test_bad_check_ins_are_refused(api: Client) -> None:
    heartbeat = create_heartbeat(api)["id"]
    anonymous = Client(api.base)
    assert_error(anonymous.post(f"/v1/heartbeats/{heartbeat}/events?result=ok"), 422, "validation_error", "result")
    assert_error(anonymous.post(f"/v1/heartbeats/{heartbeat}/events?rid=a%20b"), 422, "validation_error", "rid")
    assert_error(anonymous.post(f"/v1/heartbeats/{uuid.uuid4()}/events"), 404, "not_found")
    assert_error(anonymous.post("/v1/heartbeats/not-a-uuid/events"), 404, "not_found")
    assert history(api, heartbeat) == []
