"""Webhooks in, rulesets, incidents and their timelines, through the public API of a real cluster."""
from __future__ import annotations

import time

from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client
from tests.integration.test_monitors import create, post_results
from tests.unit.test_alert_payloads import (
    ALERTMANAGER_FIRING, GRAFANA_ALERTING, alertmanager_resolved, grafana_ok,
)

CRITICAL_PROBES = {
    "rule_type": "webhook", "name": "Critical probes", "description": "Probe failures page the platform team",
    "level": "team", "team_id": "platform", "urgency": "critical", "assignees": ["alice"],
    "actions": ["trigger-alerts", "trigger-statuspage-update"],
    "conditions": [{"type": "json-check", "key": "alerts[0].labels.severity", "operator": "equal",
                    "values": ["critical"]},
                   {"type": "json-check", "key": "commonLabels.job", "operator": "matches", "values": ["^http_"]}],
}


def new_webhook(api: Client, name: str = "alertmanager") -> dict:
    response = api.post("/v1/webhooks", {"name": name, "description": "prod Alertmanager"})
    assert response.status == 201, response.body
    return response.body["data"]


def new_ruleset(api: Client, spec: dict) -> dict:
    response = api.post("/v1/rulesets", spec)
    assert response.status == 201, response.body
    return response.body["data"]


def send(api: Client, webhook: dict, payload: object = None, *, raw: bytes | None = None,
         content_type: str = "application/json") -> dict:
    """As Alertmanager does: no API key, just the ingest URL."""
    anonymous = Client(api.base)
    response = anonymous.request("POST", f"/v1/webhooks/{webhook['id']}/events", payload, raw=raw,
                                 headers={"Content-Type": content_type})
    assert response.status == 202, response.body
    return response.body["data"]


def incidents(api: Client, query: str = "") -> list[dict]:
    response = api.get(f"/v1/incidents{query}")
    assert response.status == 200, response.body
    return response.body["data"]


def incident(api: Client, incident_id: str) -> dict:
    response = api.get(f"/v1/incidents/{incident_id}")
    assert response.status == 200, response.body
    return response.body["data"]


def test_alertmanager_firing_opens_one_incident_repeats_update_it_resolved_resolves_it(api: Client) -> None:
    webhook = new_webhook(api)
    assert webhook["ingest_url"].endswith(f"/v1/webhooks/{webhook['id']}/events")
    ruleset = new_ruleset(api, CRITICAL_PROBES)
    received = send(api, webhook, ALERTMANAGER_FIRING)
    assert received["id"].startswith("wev_") and received["ip"] == "127.0.0.1"
    assert received["content_type"] == "application/json"

    opened = wait_for("the firing alert to open an incident", lambda: incidents(api, "?status=open"), 20)
    assert len(opened) == 1
    first = opened[0]
    assert first["source"] == "webhook" and first["webhook_id"] == webhook["id"]
    assert first["status"] == "investigating" and first["urgency"] == "critical"
    assert first["team_id"] == "platform" and first["assignees"] == ["alice"]
    assert first["ruleset_ids"] == [ruleset["id"]] and first["name"] == "[FIRING:2] ProbeFailure"

    send(api, webhook, ALERTMANAGER_FIRING)  # Alertmanager repeats while it fires
    repeated = wait_for("the repeat to count on the same incident",
                        lambda: (i := incident(api, first["id"]))["event_count"] == 2 and i, 20)
    assert [i["id"] for i in incidents(api)] == [first["id"]]
    assert repeated["status"] == "investigating"

    send(api, webhook, alertmanager_resolved())
    resolved = wait_for("the resolved payload to resolve it",
                        lambda: (i := incident(api, first["id"]))["status"] == "resolved" and i, 20)
    assert resolved["resolved_at"] is not None
    assert [entry["type"] for entry in resolved["timeline"]] == ["created", "event", "resolved"]
    assert all(entry["actor"] == {"type": "source"} and entry["at"] for entry in resolved["timeline"])
    assert resolved["timeline"][0]["event"]["alerts_firing"] == 2
    # lists follow the incident through its organisation's index, a moment later
    wait_for("the resolved list to show it",
             lambda: [i["id"] for i in incidents(api, "?status=resolved")] == [first["id"]], 10)
    assert incidents(api, "?status=open") == []
    assert [i["id"] for i in incidents(api, "?team_id=platform")] == [first["id"]]

    actions = api.get(f"/v1/incidents/{first['id']}/actions").body["data"]
    assert {a["action"]: a["status"] for a in actions} == {"trigger-alerts": "done",
                                                           "trigger-statuspage-update": "done"}
    events = api.get(f"/v1/webhooks/{webhook['id']}/events").body["data"]
    assert len(events) == 3 and events[2]["body"] == ALERTMANAGER_FIRING  # newest first
    assert events[2]["matched_rulesets"] == [ruleset["id"]] and events[0]["parsed"] is True
    older = api.get(f"/v1/webhooks/{webhook['id']}/events?limit=1&last_received_at={events[1]['received_at']}")
    assert [e["id"] for e in older.body["data"]] == [events[2]["id"]]


def test_grafana_alerting_then_ok(api: Client) -> None:
    webhook = new_webhook(api, "grafana")
    new_ruleset(api, {"rule_type": "webhook", "name": "Grafana", "urgency": "medium", "webhook_id": webhook["id"],
                      "conditions": [{"key": "alerts[*].values.B", "operator": "greater", "values": [40]}]})
    send(api, webhook, GRAFANA_ALERTING)
    opened = wait_for("grafana's alert to open an incident", lambda: incidents(api), 20)[0]
    assert opened["name"] == GRAFANA_ALERTING["title"] and opened["urgency"] == "medium"
    send(api, webhook, grafana_ok())
    wait_for("state ok to resolve it", lambda: incident(api, opened["id"])["status"] == "resolved", 20)


def test_monitor_down_opens_an_incident_with_its_cause_and_recovery_resolves_it(api: Client) -> None:
    new_ruleset(api, {"rule_type": "state-change", "name": "Monitors down", "urgency": "high",
                      "conditions": [{"key": "event", "operator": "equal", "values": ["monitor.down"]}]})
    monitor = create(api, regions=[])
    now = time.time()
    post_results(api, [{"monitor_id": monitor["id"], "status": "up", "checked_at": now - 30}])
    post_results(api, [{"monitor_id": monitor["id"], "status": "down", "cause": "connection refused",
                        "checked_at": now - 20}])
    opened = wait_for("the monitor going down to open an incident",
                      lambda: incidents(api, f"?monitor_id={monitor['id']}"), 20)[0]
    assert opened["monitor_id"] == monitor["id"] and opened["source"] == "monitor"
    assert opened["cause"] == "connection refused" and opened["name"] == "Homepage is down"
    post_results(api, [{"monitor_id": monitor["id"], "status": "up", "checked_at": now - 10}])
    resolved = wait_for("the recovery to resolve it",
                        lambda: (i := incident(api, opened["id"]))["status"] == "resolved" and i, 20)
    timeline = resolved["timeline"]
    assert [(e["type"], e["event"]["event"]) for e in timeline] == [("created", "monitor.down"),
                                                                    ("resolved", "monitor.recovered")]
    assert timeline[0]["message"] == "connection refused"
    post_results(api, [{"monitor_id": monitor["id"], "status": "down", "cause": "timeout", "checked_at": now - 5}])
    reopened = wait_for("a flap to reopen the same incident",
                        lambda: (i := incident(api, opened["id"]))["status"] == "investigating" and i, 20)
    assert reopened["reopened_count"] == 1 and [e["type"] for e in reopened["timeline"]][-1] == "reopened"
    assert len(incidents(api, f"?monitor_id={monitor['id']}")) == 1


def test_incidents_by_hand_move_through_statuses_with_messages(api: Client) -> None:
    created = api.post("/v1/incidents", {"name": "Checkout slow", "description": "p95 above 2 s",
                                         "urgency": "high", "impact": "major", "component_ids": ["cmp_checkout"],
                                         "assignees": ["bob"], "actions": []})
    assert created.status == 201, created.body
    opened = created.body["data"]
    assert opened["status"] == "investigating" and opened["impact"] == "major" and opened["source"] == "manual"
    for status, message in (("identified", "a bad deploy"), ("monitoring", "rolled back"), ("resolved", None)):
        changed = api.patch(f"/v1/incidents/{opened['id']}", {"status": status, **({"message": message} if message else {})})
        assert changed.status == 200 and changed.body["data"]["status"] == status, changed.body
    noted = api.patch(f"/v1/incidents/{opened['id']}", {"message": "postmortem on Friday", "impact": "minor"})
    assert noted.status == 200 and noted.body["data"]["impact"] == "minor"
    timeline = incident(api, opened["id"])["timeline"]
    assert [(e["type"], e.get("status"), e.get("message")) for e in timeline] == [
        ("created", "investigating", "p95 above 2 s"), ("status_change", "identified", "a bad deploy"),
        ("status_change", "monitoring", "rolled back"), ("status_change", "resolved", None),
        ("update", None, "postmortem on Friday")]
    assert all(e["actor"]["type"] == "api_key" for e in timeline)
    assert [i["id"] for i in incidents(api, "?status=resolved")] == [opened["id"]]
    assert api.patch(f"/v1/incidents/{opened['id']}", {"status": "sideways"}).status == 422
    assert api.patch(f"/v1/incidents/{opened['id']}", {}).status == 422
    assert api.patch("/v1/incidents/inc_00000000000000000000-1", {"message": "x"}).status == 404


def test_a_malformed_payload_is_stored_matches_nothing_and_breaks_nothing(api: Client) -> None:
    webhook = new_webhook(api, "ci")
    new_ruleset(api, {"rule_type": "webhook", "name": "Everything", "conditions": []})
    received = send(api, webhook, raw=b"status=failed&job=deploy {", content_type="application/x-www-form-urlencoded")
    assert received["parsed"] is False
    send(api, webhook, {"fingerprint": "deploy-42", "title": "Deploy failed", "status": "failed"})
    opened = wait_for("the good payload after it to open an incident", lambda: incidents(api), 20)
    assert len(opened) == 1 and opened[0]["name"] == "Deploy failed"
    events = api.get(f"/v1/webhooks/{webhook['id']}/events").body["data"]
    malformed = events[1]
    assert malformed["body"] == "status=failed&job=deploy {" and malformed["parsed"] is False
    assert malformed["content_type"] == "application/x-www-form-urlencoded" and malformed["matched_rulesets"] == []
    assert Client(api.base).post("/v1/webhooks/whk_doesnotexist000000000/events", {"a": 1}).status == 404
    assert Client(api.base).post(f"/v1/webhooks/{webhook['id']}/events", raw=b"x" * (600 * 1024)).status == 413


def test_rulesets_are_grouped_replaced_and_their_actions_edited(api: Client) -> None:
    org_level = new_ruleset(api, {"rule_type": "webhook", "name": "org", "urgency": "low"})
    team_level = new_ruleset(api, {**CRITICAL_PROBES, "name": "team"})
    listed = api.get("/v1/rulesets").body["data"]
    assert [r["id"] for r in listed["organisation"]] == [org_level["id"]]
    assert listed["teams"] == [{"team_id": "platform", "rulesets": [team_level]}]
    replaced = api.request("PUT", f"/v1/rulesets/{org_level['id']}", {"rule_type": "state-change", "name": "renamed"})
    assert replaced.status == 200 and replaced.body["data"]["rule_type"] == "state-change"
    assert api.get(f"/v1/rulesets/{org_level['id']}/actions").body["data"]["actions"] == ["trigger-alerts"]
    assert api.request("PUT", f"/v1/rulesets/{org_level['id']}/actions", ["trigger-statuspage-update"]).status == 200
    assert api.get(f"/v1/rulesets/{org_level['id']}/actions").body["data"]["actions"] == ["trigger-statuspage-update"]
    bad = api.post("/v1/rulesets", {"rule_type": "webhook", "name": "bad", "conditions": [
        {"key": "alerts[0", "operator": "equal", "values": ["x"]}, {"key": "a", "operator": "greater", "values": ["x"]}]})
    assert bad.status == 422 and set(bad.body["errors"]) == {"conditions.0.key", "conditions.1.values"}
    teamless = api.post("/v1/rulesets", {"rule_type": "webhook", "name": "bad", "level": "team"})
    assert teamless.status == 422 and set(teamless.body["errors"]) == {"team_id"}
    assert api.delete(f"/v1/rulesets/{org_level['id']}").status == 204
    assert api.delete(f"/v1/rulesets/{org_level['id']}").status == 404
    assert [r["id"] for r in api.get("/v1/rulesets").body["data"]["organisation"]] == []


def test_another_organisations_resources_answer_404(cluster: Cluster, api: Client) -> None:
    webhook = new_webhook(api)
    ruleset = new_ruleset(api, {"rule_type": "webhook", "name": "all"})
    opened = api.post("/v1/incidents", {"name": "mine"}).body["data"]
    alert = api.post("/v1/alerts", {"name": "mine", "url": "http://127.0.0.1:9/hook"}).body["data"]
    _, key = cluster.new_org(name="other org")
    other = ready_client(cluster, key)
    for method, path, body in (
        ("GET", f"/v1/incidents/{opened['id']}", None), ("GET", f"/v1/incidents/{opened['id']}/actions", None),
        ("PATCH", f"/v1/incidents/{opened['id']}", {"status": "resolved"}),
        ("GET", f"/v1/webhooks/{webhook['id']}", None), ("GET", f"/v1/webhooks/{webhook['id']}/events", None),
        ("DELETE", f"/v1/webhooks/{webhook['id']}", None),
        ("GET", f"/v1/rulesets/{ruleset['id']}", None), ("GET", f"/v1/rulesets/{ruleset['id']}/actions", None),
        ("PUT", f"/v1/rulesets/{ruleset['id']}", {"rule_type": "webhook", "name": "theirs"}),
        ("DELETE", f"/v1/rulesets/{ruleset['id']}", None),
        ("GET", f"/v1/alerts/{alert['id']}", None), ("GET", f"/v1/alerts/{alert['id']}/deliveries", None),
        ("POST", f"/v1/alerts/{alert['id']}/rotate-secret", None), ("DELETE", f"/v1/alerts/{alert['id']}", None),
    ):
        response = other.request(method, path, body)
        assert response.status == 404, (method, path, response.status, response.body)
    assert other.get("/v1/incidents").body["data"] == [] and other.get("/v1/webhooks").body["data"] == []
    assert other.get("/v1/rulesets").body["data"] == {"organisation": [], "teams": []}
    assert incident(api, opened["id"])["status"] == "investigating"


def test_health_check_reports_the_incident_engine(cluster: Cluster, api: Client) -> None:
    anonymous = Client(api.base).get("/v1/health-check")
    assert anonymous.status == 200 and anonymous.body == {"data": {"status": "ok"}}  # up: nothing internal
    for wrong in ("", "change-me", cluster.token[:-1]):
        assert Client(api.base).get("/v1/health-check", headers={"X-Pingstream-Internal": wrong}).body == \
            anonymous.body
    health = Client(api.base).get("/v1/health-check", headers={"X-Pingstream-Internal": cluster.token})
    assert health.status == 200
    engine = health.body["data"]["incident_engine"]
    assert engine["status"] == "ok"
    worker = next(iter(engine["workers"].values()))
    assert worker["org_config"]["ready"] is True
    assert {"webhooks", "incidents", "notifications", "state_changes"} <= set(worker)
