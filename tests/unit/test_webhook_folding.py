"""The webhooks agent's fold: events stored as received, bounded history, judged by rulesets."""
from __future__ import annotations

import orjson

from agents.webhooks.fold import WebhookFolder
from engine import topics
from engine.dead_letters import DeadLetters
from engine.org_config import OrgConfig, ruleset_key
from engine.partitioning import entity_key, partition_for
from tables import webhook_data as layout
from tests.unit.memory_tables import MemoryTable, memory_engine
from tests.unit.test_alert_payloads import ALERTMANAGER_FIRING, alertmanager_resolved

WEBHOOK = "whk_unit_test_webhook_01"


class Worker:
    def __init__(self) -> None:
        self.engine = memory_engine()
        self.engine.partitions = self.engine.settings.partitions
        self.engine.webhooks = MemoryTable("webhooks")
        self.engine.webhook_data = MemoryTable("webhook_data")
        self.engine.org_config = OrgConfig()
        self.partition = partition_for(WEBHOOK, self.engine.partitions)
        self.engine.webhooks.put(self.partition, entity_key(WEBHOOK), {"id": WEBHOOK, "org_id": "org_1"})
        self.folder = WebhookFolder(self.engine, DeadLetters(self.engine.state))
        self.offset = 0

    def receive(self, body: object = None, *, text: str | None = None, offset: int | None = None) -> None:
        if offset is None:
            self.offset += 1
        event = {"id": f"wev_{self.offset}", "webhook_id": WEBHOOK, "received_at": 1000.0 + self.offset,
                 "ip": "10.0.0.1", "content_type": "application/json"}
        event.update({"text": text} if text is not None else {"json": body})
        self.folder.fold_message(self.partition, self.offset if offset is None else offset,
                                 orjson.dumps({"org_id": "org_1", "events": [event]}))

    def events(self, limit: int = 100) -> list[dict]:
        return layout.recent_events(self.engine.webhook_data, self.partition, WEBHOOK, limit, None)

    def signals(self) -> list[dict]:
        return [sent.body for sent in self.engine.state.on(topics.INCIDENT_SIGNALS)]


def add_ruleset(worker: Worker, **spec: object) -> None:
    record = {"kind": "ruleset", "id": "rs_1", "org_id": "org_1", "created_at": 1.0, "rule_type": "webhook",
              "name": "critical", "urgency": "critical", "level": "organisation", "team_id": None, "assignees": [],
              "actions": ["trigger-alerts"], "webhook_id": None,
              "conditions": [{"type": "json-check", "key": "commonLabels.severity", "operator": "equal",
                              "values": ["critical"]}], **spec}
    worker.engine.org_config.apply(ruleset_key("rs_1"), orjson.dumps(record))


def test_a_matching_firing_payload_triggers_and_resolved_resolves_the_same_route() -> None:
    worker = Worker()
    add_ruleset(worker)
    worker.receive(ALERTMANAGER_FIRING)
    worker.receive(alertmanager_resolved())
    trigger, resolve = worker.signals()
    assert trigger["kind"] == "trigger" and resolve["kind"] == "resolve"
    assert trigger["route"] == resolve["route"] and trigger["urgency"] == "critical"
    assert trigger["dedup_key"] == f"webhook:{WEBHOOK}:{ALERTMANAGER_FIRING['groupKey']}"
    newest, oldest = worker.events()
    assert oldest["matched_rulesets"] == ["rs_1"] and oldest["body"] == ALERTMANAGER_FIRING


def test_no_matching_ruleset_means_no_incident_but_resolutions_still_go_out() -> None:
    worker = Worker()
    add_ruleset(worker, conditions=[{"type": "json-check", "key": "commonLabels.severity", "operator": "equal",
                                     "values": ["info"]}])
    worker.receive(ALERTMANAGER_FIRING)
    assert worker.signals() == []
    worker.receive(alertmanager_resolved())                     # closes whatever the key has open, if anything
    assert [s["kind"] for s in worker.signals()] == ["resolve"]


def test_a_ruleset_limited_to_another_webhook_does_not_match() -> None:
    worker = Worker()
    add_ruleset(worker, webhook_id="whk_someone_else")
    worker.receive(ALERTMANAGER_FIRING)
    assert worker.signals() == []


def test_malformed_payloads_are_stored_and_match_nothing() -> None:
    worker = Worker()
    add_ruleset(worker, conditions=[])
    worker.receive(text="<html>not json</html>")
    [event] = worker.events()
    assert event["parsed"] is False and event["body"] == "<html>not json</html>" and event["matched_rulesets"] == []
    assert worker.signals() == []


def test_redelivery_is_skipped_and_history_is_bounded() -> None:
    worker = Worker()
    worker.receive({"n": 1})
    worker.receive({"n": 1}, offset=worker.offset)
    assert len(worker.events()) == 1 and worker.folder.duplicates == 1
    for n in range(layout.CHUNK * (layout.KEEP_CHUNKS + 3)):
        worker.receive({"n": n})
    runtime = worker.engine.webhook_data.get(worker.partition, layout.runtime_key(WEBHOOK))
    chunks = worker.engine.webhook_data.keys(worker.partition, *layout.prefix(WEBHOOK))
    assert len(chunks) == layout.KEEP_CHUNKS + 1                 # the kept chunks and the runtime
    assert runtime.received == 1 + layout.CHUNK * (layout.KEEP_CHUNKS + 3)
    assert len(worker.events(1000)) == layout.CHUNK * layout.KEEP_CHUNKS + len(runtime.recent)


def test_an_unknown_webhook_is_dead_lettered() -> None:
    worker = Worker()
    worker.engine.webhooks.delete(worker.partition, entity_key(WEBHOOK))
    worker.receive({"a": 1})
    [letter] = [sent.body for sent in worker.engine.state.on(topics.DEAD_LETTERS)]
    assert "unknown webhook" in letter["reason"]
