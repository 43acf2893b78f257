"""A tenant's regular expression cannot stall a worker for the others (ReDoS through rulesets)."""
from __future__ import annotations

import time

from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client
from tests.integration.test_incidents import new_ruleset, new_webhook, send
from tests.integration.test_monitors import create

CATASTROPHIC = {"rule_type": "webhook", "name": "evil", "conditions": [
    {"key": "s", "operator": "matches", "values": ["^(a+)+$"]}]}
EVIL_EVENT = {"s": "a" * 29 + "!"}   # ~20 s per event in Python's re, doubling with every extra "a"


def test_a_catastrophic_pattern_leaves_other_teams_reads_fast(cluster: Cluster, api: Client) -> None:
    webhook = new_webhook(api, "evil")
    ruleset = new_ruleset(api, CATASTROPHIC)
    _, key = cluster.new_org(name="bystander")
    bystander = ready_client(cluster, key)
    monitor = create(bystander, name="bystander's monitor")

    slowest = 0.0
    for _ in range(10):
        send(api, webhook, EVIL_EVENT)
        started = time.monotonic()
        assert bystander.get(f"/v1/monitors/{monitor['id']}").status == 200
        slowest = max(slowest, time.monotonic() - started)
    send(api, webhook, {"s": "aaaa"})

    def judged() -> list[dict]:
        events = api.get(f"/v1/webhooks/{webhook['id']}/events?limit=50").body["data"]
        return events if len(events) == 11 else []
    events = wait_for("every event to be judged", judged, 60)
    assert sorted(len(e["matched_rulesets"]) for e in events) == [0] * 10 + [1]
    assert [e["matched_rulesets"] for e in events if e["matched_rulesets"]] == [[ruleset["id"]]]
    assert slowest < 3.0, f"another team's read took {slowest:.2f} s while the pattern ran"


def test_an_organisation_s_rules_are_bounded(api: Client) -> None:
    near_cap = {"rule_type": "webhook", "name": "big", "conditions": [
        {"key": f"k{n}", "operator": "equal", "values": ["v" * 750]} for n in range(20)]}
    for _ in range(16):
        new_ruleset(api, near_cap)
    refused = api.post("/v1/rulesets", near_cap)
    assert refused.status == 422 and refused.body["error"] == "limit_reached", refused.body
    assert "bytes of conditions" in refused.body["message"]
    too_many = api.post("/v1/rulesets", {"rule_type": "webhook", "name": "many", "conditions": [
        {"key": "s", "operator": "matches", "values": ["x"] * 21}]})
    assert too_many.status == 422 and "conditions" in too_many.body["errors"]
    backtracking = api.post("/v1/rulesets", {"rule_type": "webhook", "name": "backref", "conditions": [
        {"key": "s", "operator": "matches", "values": [r"(a)\1"]}]})
    assert backtracking.status == 422 and "RE2" in backtracking.body["errors"]["conditions.0.values"]
