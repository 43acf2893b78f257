"""webhook-events → each webhook's recent events → rule evaluation → incident-signals.

1. the topic: `webhook-events`, keyed by webhook id: one received request or an
   envelope `{"org_id", "events": [...]}` of that partition's requests (what the
   API sends: the batched ingest path), plus `purge` when a webhook is deleted;
2. the state: `webhook_data` (tables/webhook_data.py: bounded, chunked history
   per webhook), read-only `webhooks` (written by agents/webhooks/commands.py)
   and the organisation's rulesets (engine/org_config.py);
3. the transitions: the event is stored as received (a body that is not JSON
   too, with its content type: it then matches nothing); a JSON body is
   recognised (tables/alert_payloads.py: Alertmanager, Grafana, generic) and
   judged by the organisation's webhook rulesets (tables/conditions.py);
4. the events: a match of a firing alert becomes a `trigger` signal, any
   resolved alert a `resolve` signal, for the route of
   `webhook:<webhook id>:<group key>` on `incident-signals`; unusable input goes
   to `dead-letters`. Positions make redelivery harmless.
"""
from __future__ import annotations

from typing import Any

from agents.incidents.signals import send_signal
from engine import topics
from engine.dead_letters import DeadLetters
from engine.folding import EntityFold, Ingest
from engine.partitioning import entity_key
from schemas.webhook import WebhookEvent
from tables import incidents as book
from tables import webhook_data as layout
from tables.alert_payloads import GENERIC_TITLE, recognise
from tables.rulesets import matching, verdict


class WebhookFolder(EntityFold):
    """Folds webhook events of owned partitions into webhook_data and judges them."""

    ingest = Ingest(topics.WEBHOOK_EVENTS, "events", WebhookEvent, "webhook_id", "webhook event",
                    "webhook", "/v1/webhooks", control_kinds=frozenset({"purge"}), accepts_list=False,
                    shape_error='a message must be a webhook event or {"events": [...]}')

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        super().__init__(engine.state, engine.settings.partitions, dead_letters)
        self.engine = engine
        self.data = engine.webhook_data
        self.webhooks = engine.webhooks
        self.matched = 0

    def health(self) -> dict:
        return {"applied": self.applied, "matched": self.matched, "redelivered_and_skipped": self.duplicates,
                "dead_letters": sum(self.dead_letters.counts.values())}

    def fold_control(self, partition: int, offset: int, message: dict) -> None:
        for key in self.data.keys(partition, *layout.prefix(str(message.get("webhook_id")))):  # purge
            self.data.delete(partition, key)

    def forwarded(self, event: WebhookEvent, raw: Any, org_id: str | None, derived_id: str,
                  timestamp: float) -> dict:
        return {"events": [{**raw, "id": event.id or derived_id}]}

    def known(self, partition: int, webhook_id: str, event: WebhookEvent, org_id: str | None,
              timestamp: float) -> tuple[dict, bytes, layout.WebhookRuntime] | str:
        config = self.webhooks.get(partition, entity_key(webhook_id))
        org_id = org_id or event.org_id
        if config is None or (org_id is not None and config["org_id"] != org_id):
            return self.unknown(webhook_id)
        key = layout.runtime_key(webhook_id)
        return config, key, self.data.get(partition, key) or layout.WebhookRuntime()

    def apply(self, partition: int, offset: int, index: int, event: WebhookEvent, config: dict, key: bytes,
              runtime: layout.WebhookRuntime, pos: int, timestamp: float) -> None:
        webhook_id = event.webhook_id
        event_id = event.id or f"{partition}-{offset}-{index}"
        parsed = "json_body" in event.model_fields_set
        body = event.json_body if parsed else event.text
        matched, dedup_key = self.judge(partition, pos, event_id, event, config["org_id"], body) if parsed else ([], None)
        row = [event_id, event.received_at, event.ip, event.content_type, parsed, body, matched, dedup_key]
        appended = runtime.append(row, pos)
        # derived keys first: a flush that stops half way never holds a runtime without them
        if appended.sealed_chunk is not None:
            number, rows = appended.sealed_chunk
            self.data.put(partition, layout.chunk_key(webhook_id, number), rows)
        if appended.expired_chunk is not None:
            self.data.delete(partition, layout.chunk_key(webhook_id, appended.expired_chunk))
        self.data.put(partition, key, runtime)
        self.applied += 1

    def judge(self, partition: int, pos: int, event_id: str, event: WebhookEvent, org_id: str,
              payload: Any) -> tuple[list[str], str | None]:
        """Signals for what the payload says; returns the matching ruleset ids and the dedup key used."""
        alert = recognise(payload)
        if alert is None:
            return [], None
        rulesets = self.engine.org_config.rulesets_of(org_id, "webhook", event.webhook_id)
        found = verdict(matching(rulesets, payload))
        if found is None and not alert.resolved:
            return [], None
        dedup_key = f"webhook:{event.webhook_id}:{alert.group_key}"
        signal: dict[str, Any] = {
            "kind": "resolve" if alert.resolved else "trigger",
            "id": event_id, "route": book.route_of(org_id, dedup_key), "org_id": org_id, "dedup_key": dedup_key,
            "origin": f"{topics.WEBHOOK_EVENTS}/{partition}", "origin_pos": pos, "at": event.received_at,
            "source": "webhook", "entity_id": event.webhook_id,
            "name": found["ruleset_name"] if found and alert.title == GENERIC_TITLE else alert.title,
            "description": alert.description or (found and found["ruleset_description"]),
            "cause": alert.description,
            "event": {"webhook_event_id": event_id, "format": alert.source, "group_key": alert.group_key,
                      "title": alert.title, "resolved": alert.resolved, "alerts_firing": alert.firing,
                      "alerts_resolved": alert.resolved_alerts, "fingerprints": list(alert.fingerprints[:20]),
                      **({"details": alert.details} if alert.details else {})},
        }
        if found is not None:
            self.matched += 1
            signal.update({k: found[k]
                           for k in ("urgency", "team_id", "assignees", "actions", "ruleset_ids", "paging")})
        send_signal(self.engine, signal)
        return (found["ruleset_ids"] if found else []), dedup_key

