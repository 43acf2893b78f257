"""Status pages' pure rules: component statuses, the page's status, uptime bars, Statuspage's documents."""
from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from schemas.status_page import SubscriptionCreate
from tables import status_pages as rules

NOW = 1_790_000_000.0


def model(components: list[dict], sources: dict | None = None) -> dict:
    built = rules.new_model("sp_0123456789abcdef0123")
    built["config"] = {"org_id": "org", "spec": {"name": "Acme", "subdomain": "acme", "type": "public",
                                                 "components": components},
                       "password_hash": None, "created_at": NOW - 86400, "updated_at": NOW - 86400}
    built["sources"] = sources or {}
    return built


def incident(incident_id: str, status: str, impact: str, component_ids: list[str], at: float = NOW) -> dict:
    return {"id": incident_id, "name": f"{incident_id} broke", "description": "looking", "status": status,
            "impact": impact, "source": "manual", "component_ids": component_ids, "created_at": at - 60,
            "updated_at": at, "resolved_at": at if status == "resolved" else None}


def test_a_component_follows_its_monitor_its_incidents_or_its_hand_set_status() -> None:
    bound = {"id": "c1", "monitor_id": "mon_1"}
    assert rules.component_status(bound, {"status": "down"}, []) == "major_outage"
    assert rules.component_status(bound, {"status": "up"}, []) == "operational"
    assert rules.component_status(bound, None, []) == "operational"
    assert rules.component_status(bound, {"status": "up", "maintenance": True}, []) == "under_maintenance"
    manual = {"id": "c2", "status": "degraded_performance"}
    assert rules.component_status(manual, None, []) == "degraded_performance"
    assert rules.component_status(manual, None, [incident("i1", "identified", "critical", ["c2"])]) == "major_outage"
    assert rules.component_status(manual, None, [incident("i1", "resolved", "critical", ["c2"])]) == \
        "degraded_performance"
    assert rules.component_status(manual, None, [incident("i1", "monitoring", "major", ["c9"])]) == \
        "degraded_performance"


def test_the_page_status_is_the_worst_in_statuspage_words() -> None:
    page = rules.page_view(model([{"id": "c1", "name": "API", "monitor_id": "m"}, {"id": "c2", "name": "Web"}],
                                 {"c1": {"status": "up", "at": NOW}}), NOW)
    assert page["status"] == {"indicator": "none", "description": "All Systems Operational"}
    down = rules.page_view(model([{"id": "c1", "name": "API", "monitor_id": "m"}],
                                 {"c1": {"status": "down", "at": NOW}}), NOW)
    assert down["status"] == {"indicator": "critical", "description": "Major System Outage"}
    minor = model([{"id": "c1", "name": "API"}])
    rules.apply_incident(minor, incident("i1", "investigating", "minor", ["c1"]), NOW)
    assert rules.page_view(minor, NOW)["status"]["indicator"] == "minor"


def test_ninety_daily_bars_with_uptime_and_the_incidents_of_the_day() -> None:
    today, yesterday = rules.day_of(NOW), rules.day_of(NOW - 86400)
    points = [{"start": f"{yesterday}T00:00:00Z", "up_checks": 50, "total_checks": 100},
              {"start": f"{today}T00:00:00Z", "up_checks": 999, "total_checks": 1000}]
    daily = rules.daily_uptime(points, NOW)
    assert daily["end"] == today and len(daily["values"]) == 90 and daily["values"][-2:] == [50.0, 99.9]
    assert rules.overall_uptime(daily) == round(100 * 1049 / 1100, 3)
    bars = rules.uptime_bars(daily, [incident("i1", "resolved", "minor", ["c1"], NOW - 86400)], "c1", NOW)
    assert len(bars) == 90 and bars[-1]["date"] == today and bars[-2]["date"] == yesterday
    assert bars[-1] == {"date": today, "uptime_percentage": 99.9, "incidents": [], "colour": "up"}
    assert bars[-2]["colour"] == "down" and bars[-2]["incidents"] == ["i1 broke"]
    assert bars[0]["uptime_percentage"] is None and bars[0]["colour"] == "none"
    # a day later, with nothing new: the bars move on, today has no data yet
    later = rules.uptime_bars(daily, [], "c1", NOW + 86400)
    assert later[-1]["uptime_percentage"] is None and later[-2]["uptime_percentage"] == 99.9
    assert rules.uptime_bars(None, [], "c1", NOW)[-1]["colour"] == "none"


def test_incident_updates_follow_status_changes_once_and_old_events_change_nothing() -> None:
    page = model([{"id": "c1", "name": "API"}])
    assert rules.apply_incident(page, incident("i1", "investigating", "major", ["c1"], NOW), NOW)
    assert rules.apply_incident(page, incident("i1", "investigating", "major", ["c1"], NOW + 1), NOW + 1)
    assert rules.apply_incident(page, incident("i1", "resolved", "major", ["c1"], NOW + 2), NOW + 2)
    assert not rules.apply_incident(page, incident("i1", "identified", "major", ["c1"], NOW + 1), NOW + 3)
    updates = page["incidents"]["i1"]["updates"]
    assert [(u["status"], u["body"]) for u in updates] == [("investigating", "looking"),
                                                         ("resolved", "This incident has been resolved.")]


def test_groups_keep_the_order_of_their_first_component_and_show_their_worst() -> None:
    page = rules.page_view(model([{"id": "a", "name": "A", "group": "Core", "status": "partial_outage"},
                                  {"id": "b", "name": "B"}, {"id": "c", "name": "C", "group": "Core"}]), NOW)
    assert [(g["name"], [c["id"] for c in g["components"]], g["status"]) for g in page["groups"]] == [
        ("Core", ["a", "c"], "partial_outage"), (None, ["b"], "operational")]
    rows = rules.statuspage_components(page)
    assert [(row["name"], row["group"], row["group_id"]) for row in rows][:3] == [
        ("Core", True, None), ("A", False, page["groups"][0]["id"]), ("C", False, page["groups"][0]["id"])]


def test_statuspage_documents_have_their_published_shape() -> None:
    page = model([{"id": "c1", "name": "API"}])
    rules.apply_incident(page, incident("i1", "investigating", "critical", ["c1"]), NOW)
    view = rules.page_view(page, time.time())
    url = "https://status.acme.test/"
    summary = rules.statuspage_document(view, url, "summary")
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert summary["page"] == {"id": view["id"], "name": "Acme", "url": url, "time_zone": "Etc/UTC",
                               "updated_at": rules.iso(NOW)}
    shown = summary["incidents"][0]
    assert shown["shortlink"] == url + "#incident-i1" and shown["impact"] == "critical"
    assert shown["incident_updates"][0]["affected_components"] == [
        {"code": "c1", "name": "API", "old_status": "major_outage", "new_status": "major_outage"}]
    assert set(rules.statuspage_document(view, url, "status")) == {"page", "status"}
    assert rules.statuspage_document(view, url, "scheduled-maintenances")["scheduled_maintenances"] == []


def test_incidents_opened_by_rules_are_posted_only_with_the_statuspage_action() -> None:
    from tables.incidents import on_status_pages

    assert on_status_pages({"source": "manual", "actions": []})
    assert not on_status_pages({"source": "monitor", "actions": ["trigger-alerts"]})
    assert on_status_pages({"source": "webhook", "actions": ["trigger-statuspage-update"]})


def test_a_view_too_big_drops_its_oldest_resolved_incidents_first() -> None:
    page = model([{"id": "c1", "name": "API"}])
    for n, status in enumerate(("resolved", "investigating", "resolved")):
        rules.apply_incident(page, incident(f"i{n}", status, "minor", ["c1"], NOW + n), NOW + n)
    view = rules.page_view(page, NOW)
    assert rules.drop_oldest_resolved(view) and [i["id"] for i in view["incidents"]] == ["i2", "i1"]
    assert rules.drop_oldest_resolved(view) and [i["id"] for i in view["incidents"]] == ["i1"]
    assert not rules.drop_oldest_resolved(view)


def test_maintenance_in_progress_puts_its_components_under_maintenance_unless_worse() -> None:
    page = model([{"id": "c1", "name": "DB"}, {"id": "c2", "name": "Web", "status": "major_outage"},
                  {"id": "c3", "name": "API"}])
    page["config"]["maintenances"] = [{"id": "m1", "name": "Upgrade", "message": None, "starts_at": NOW + 100,
                                       "ends_at": NOW + 200, "component_ids": ["c1", "c2"]}]
    view = rules.page_view(page, NOW)
    assert rules.maintenance_phase(view, NOW) == ("scheduled",) and rules.at_time(view, NOW) is view
    during = rules.at_time(view, NOW + 150)
    assert [c["status"] for c in during["components"]] == ["under_maintenance", "major_outage", "operational"]
    assert during["status"]["indicator"] == "critical"
    assert rules.maintenance_phase(view, NOW + 250) == ("completed",)
    document = rules.statuspage_document(view, "https://s.test/", "scheduled-maintenances", NOW + 150)
    assert [(m["status"], m["scheduled_for"]) for m in document["scheduled_maintenances"]] == [
        ("in_progress", rules.iso(NOW + 100))]


def test_webhook_subscribers_are_delivery_targets_shown_masked() -> None:
    target = rules.webhook_target("sp_0123456789abcdef0123", "sub_0123456789abcdef")
    assert rules.webhook_of(target) == ("sp_0123456789abcdef0123", "sub_0123456789abcdef")
    assert rules.webhook_of("alc_0123456789abcdef0123") is None
    assert len(target) <= 64  # a delivery's channel_id
    assert rules.masked_url("https://hooks.example.com/T0/secret?x=1") == "https://hooks.example.com/…"
    assert rules.masked_url("http://user:pw@example.com") == "http://example.com/…"
    assert rules.masked_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    view = rules.subscription_view({"id": "sub_1", "webhook": "https://h.example.com/x", "secret": "sealed",
                                    "confirmed": True, "created_at": NOW})
    assert view["type"] == "webhook" and view["email"] is None and "secret" not in view
    assert rules.subscription_view({"id": "sub_2", "email": "a@example.com", "token": "t", "confirmed": False,
                                    "created_at": NOW})["type"] == "email"


def test_a_subscription_is_an_email_or_a_webhook_url() -> None:
    assert SubscriptionCreate(webhook="https://hooks.example.com/x").email is None
    assert SubscriptionCreate(email="a@example.com").webhook is None
    for body in ({}, {"webhook": "ftp://example.com"}, {"webhook": "example.com/x"},
                 {"email": "a@example.com", "webhook": "https://hooks.example.com/x"}):
        with pytest.raises(ValidationError):
            SubscriptionCreate(**body)
