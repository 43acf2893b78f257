"""Dedup and resolve logic: signals folded by the incidents agent against in-memory tables.

What users would see is read back from the incident records, their timelines,
the incident-events, index commands and replies the agent emitted.
"""
from __future__ import annotations

from itertools import count

import orjson

from agents.incidents.fold import IncidentBook, StateChangeJudge
from engine import topics
from engine.dead_letters import DeadLetters
from engine.org_config import OrgConfig, alert_channel_key, ruleset_key
from engine.partitioning import partition_for
from tables import incidents as book
from tests.unit.memory_tables import MemoryTable, memory_engine

ORG = "org_1"
T0 = 1_800_000_000.0


class Worker:
    def __init__(self) -> None:
        self.engine = memory_engine()
        self.engine.incidents = MemoryTable("incidents")
        self.engine.partitions = self.engine.settings.partitions
        self.engine.org_config = OrgConfig()
        self.book = IncidentBook(self.engine, DeadLetters(self.engine.state))
        self.judge = StateChangeJudge(self.engine, DeadLetters(self.engine.state))
        self.offsets = count(100)

    def signal(self, kind: str, dedup_key: str = "webhook:whk_1:group-a", at: float = T0, origin_pos: int | None = None,
               **fields: object) -> dict:
        route = fields.pop("route", None) or book.route_of(fields.pop("org_id", ORG), dedup_key)
        signal = {"kind": kind, "id": f"sig-{at}-{kind}", "route": route, "org_id": ORG, "dedup_key": dedup_key,
                  "origin": "webhook-events/0", "origin_pos": next(self.offsets) if origin_pos is None else origin_pos,
                  "at": at, "source": "webhook", "entity_id": "whk_1", "name": "[FIRING:1] HighLatency",
                  "urgency": "high", "event": {"resolved": kind == "resolve"}, **fields}
        partition = partition_for(signal["route"], self.engine.partitions)
        self.book.fold_message(partition, next(self.offsets), orjson.dumps(signal))
        return signal

    def incidents_of(self, dedup_key: str = "webhook:whk_1:group-a") -> list[dict]:
        route = book.route_of(ORG, dedup_key)
        partition = partition_for(route, self.engine.partitions)
        return [value for key, value in self.engine.incidents.scan(partition, route.encode(), route.encode() + b"\xff")
                if key == book.incident_key(value.get("id", ""))]

    def timeline(self, incident: dict) -> list[str]:
        partition = partition_for(book.route_of_incident(incident["id"]), self.engine.partitions)
        return [entry["type"] for _, entry in self.engine.incidents.scan(partition, *book.timeline_range(incident["id"]))]

    def emitted(self, topic: str) -> list[dict]:
        return [sent.body for sent in self.engine.state.on(topic)]


def test_a_storm_of_identical_alerts_is_one_incident() -> None:
    worker = Worker()
    for n in range(50):
        worker.signal("trigger", at=T0 + n)
    [incident] = worker.incidents_of()
    assert incident["event_count"] == 50 and incident["status"] == "investigating"
    assert worker.timeline(incident) == ["created"] + ["event"] * 49
    assert [e["event"] for e in worker.emitted(topics.INCIDENT_EVENTS)] == ["incident.created"]


def test_a_redelivered_signal_changes_nothing() -> None:
    worker = Worker()
    worker.signal("trigger", origin_pos=7)
    worker.signal("trigger", origin_pos=7)
    worker.signal("trigger", origin_pos=3)  # older than what was applied from that origin
    [incident] = worker.incidents_of()
    assert incident["event_count"] == 1 and worker.book.duplicates == 2


def test_resolve_resolves_and_then_only_counts() -> None:
    worker = Worker()
    worker.signal("trigger")
    worker.signal("resolve", at=T0 + 60)
    worker.signal("resolve", at=T0 + 70)
    [incident] = worker.incidents_of()
    assert incident["status"] == "resolved" and incident["resolved_at"] == T0 + 60
    assert worker.timeline(incident) == ["created", "resolved", "event"]
    assert [e["event"] for e in worker.emitted(topics.INCIDENT_EVENTS)] == ["incident.created", "incident.resolved"]


def test_resolving_what_was_never_opened_stores_nothing() -> None:
    worker = Worker()
    worker.signal("resolve")
    assert worker.engine.incidents.partitions == {} and worker.emitted(topics.INCIDENT_EVENTS) == []


def test_a_flap_reopens_and_a_later_trigger_opens_the_next_incident() -> None:
    worker = Worker()
    worker.signal("trigger")
    worker.signal("resolve", at=T0 + 10)
    worker.signal("trigger", at=T0 + 20)                              # within the reopen window
    [reopened] = worker.incidents_of()
    assert reopened["status"] == "investigating" and reopened["reopened_count"] == 1
    assert worker.timeline(reopened) == ["created", "resolved", "reopened"]
    worker.signal("resolve", at=T0 + 30)
    worker.signal("trigger", at=T0 + 30 + book.REOPEN_WINDOW + 1)     # long after: a new incident
    first, second = sorted(worker.incidents_of(), key=lambda i: i["id"])
    assert first["id"].endswith("-1") and second["id"].endswith("-2")
    assert first["status"] == "resolved" and second["status"] == "investigating"


def test_a_more_urgent_repeat_raises_the_urgency() -> None:
    worker = Worker()
    worker.signal("trigger", urgency="medium")
    worker.signal("trigger", urgency="critical", at=T0 + 1)
    worker.signal("trigger", urgency="low", at=T0 + 2)
    [incident] = worker.incidents_of()
    assert incident["urgency"] == "critical"
    assert [e["event"] for e in worker.emitted(topics.INCIDENT_EVENTS)] == ["incident.created", "incident.updated"]


def test_index_follows_the_status_and_replies_wait_for_it() -> None:
    worker = Worker()
    worker.signal("trigger")
    worker.signal("resolve", at=T0 + 5)
    created, resolved = [c for c in worker.emitted(topics.COMMANDS) if c["kind"] == "incident.index"]
    assert set(created["body"]["add"]) == {"incidents", "incidents:open"} and created["reply"] is None
    assert created["body"]["remove"] == [] and created["entity_id"] == ORG
    assert resolved["body"] == {**resolved["body"], "add": ["incidents:resolved"], "remove": ["incidents:open"]}


def test_manual_create_and_update_reply_and_other_organisations_get_404() -> None:
    worker = Worker()
    route = "inc_" + "a" * 20
    worker.signal("create", dedup_key=f"manual:{route}", route=route, source="manual", request_id="req-1",
                  actor={"type": "api_key", "id": "key_1"}, origin="commands/0")
    [index] = [c for c in worker.emitted(topics.COMMANDS) if c["kind"] == "incident.index"]
    assert index["id"] == "req-1" and index["reply"]["status"] == 201
    incident_id = index["reply"]["body"]["id"]
    worker.signal("update", dedup_key="-", route=route, request_id="req-2", incident_id=incident_id,
                  patch={"name": "Renamed", "message": "looking"}, origin="commands/0")
    [reply] = [r.body for r in worker.engine.state.replies]
    assert reply["request_id"] == "req-2" and reply["status"] == 200 and reply["body"]["name"] == "Renamed"
    worker.signal("update", dedup_key="-", route=route, request_id="req-3", incident_id=incident_id,
                  patch={"status": "resolved"}, origin="commands/0", org_id="org_2")
    assert worker.engine.state.replies[-1].body["status"] == 404


def test_the_timeline_is_bounded() -> None:
    worker = Worker()
    for n in range(book.TIMELINE_MAX + 5):
        worker.signal("trigger", at=T0 + n)
    [incident] = worker.incidents_of()
    assert incident["timeline_count"] == book.TIMELINE_MAX and incident["timeline_dropped"] == 5
    assert incident["event_count"] == book.TIMELINE_MAX + 5


def test_monitor_transitions_are_judged_by_state_change_rulesets() -> None:
    worker = Worker()
    down = {"id": "mon_1:9", "event": "monitor.down", "monitor_id": "mon_1", "org_id": ORG, "at": T0,
            "cause": "timeout", "status": "down", "previous_status": "up", "regions": {}}
    worker.judge.fold_message(1, 9, orjson.dumps(down))
    assert worker.emitted(topics.INCIDENT_SIGNALS) == []                # no ruleset: no incident
    ruleset = {"kind": "ruleset", "id": "rs_1", "org_id": ORG, "created_at": T0, "rule_type": "state-change",
               "name": "down", "urgency": "critical", "level": "organisation", "team_id": None,
               "assignees": ["ann"], "actions": ["trigger-alerts"],
               "conditions": [{"type": "json-check", "key": "cause", "operator": "equal", "values": ["timeout"]}]}
    worker.engine.org_config.apply(ruleset_key("rs_1"), orjson.dumps(ruleset))
    worker.engine.org_config.apply(alert_channel_key("alc_1"), orjson.dumps(
        {"kind": "alert", "id": "alc_1", "org_id": ORG, "events": ["monitor.down"]}))
    worker.judge.fold_message(1, 10, orjson.dumps({**down, "id": "mon_1:10"}))
    [trigger] = worker.emitted(topics.INCIDENT_SIGNALS)
    assert trigger["kind"] == "trigger" and trigger["cause"] == "timeout" and trigger["urgency"] == "critical"
    assert trigger["dedup_key"] == "monitor:mon_1" and trigger["origin"] == "monitor-events/1"
    [notification] = worker.emitted(topics.ALERT_CHANNEL_DELIVERIES)
    assert notification["channel_id"] == "alc_1" and orjson.loads(notification["body"])["event"] == "monitor.down"
    worker.judge.fold_message(1, 11, orjson.dumps({**down, "id": "mon_1:11", "event": "monitor.recovered"}))
    assert worker.emitted(topics.INCIDENT_SIGNALS)[-1]["kind"] == "resolve"
    worker.engine.org_config.apply(ruleset_key("rs_1"), None)          # deleted: nothing matches any more
    assert worker.engine.org_config.rulesets_of(ORG, "state-change") == []
