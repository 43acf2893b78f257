"""webhook-events → each webhook's recent events → rule evaluation → incident-signals.

1. the topic: `webhook-events`, keyed by webhook id: one received request or an
   envelope `{"org_id", "events": [...]}` of that partition's requests (what the
   API sends: the batched ingest path), plus `purge` when a webhook is deleted;
2. the state: `webhook_data` (tables/webhook_data.py: bounded, chunked history
   per webhook), read-only `webhooks` (written by the webhook.* commands below)
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

import orjson
from aiohttp import web
from pydantic import ValidationError

from agents.commands import CommandApplier, handles
from agents.folding import fold_batches
from agents.incidents import send_signal
from api.errors import error_response, json_response
from engine import topics
from engine.app import Engine, raw_topic
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key, partition_for
from engine.web import BASE, owned_partition
from schemas.webhook import WebhookEvent
from schemas.validation import field_errors
from tables import incidents as book
from tables import webhook_data as layout
from tables.alert_payloads import GENERIC_TITLE, recognise
from tables.monitor_data import position
from tables.monitor_views import iso
from tables.rulesets import matching, verdict



class WebhookFolder:
    """Folds webhook events of owned partitions into webhook_data and judges them."""

    def __init__(self, engine: Engine, dead_letters: DeadLetters) -> None:
        self.engine = engine
        self.data = engine.webhook_data
        self.webhooks = engine.webhooks
        self.dead_letters = dead_letters
        self.applied = 0
        self.matched = 0
        self.duplicates = 0

    def health(self) -> dict:
        return {"applied": self.applied, "matched": self.matched, "redelivered_and_skipped": self.duplicates,
                "dead_letters": sum(self.dead_letters.counts.values())}

    def fold_message(self, partition: int, offset: int, value: bytes | None) -> None:
        try:
            message = orjson.loads(value or b"")
        except orjson.JSONDecodeError as exc:
            self.dead_letters.send(topics.WEBHOOK_EVENTS, partition, offset, 0, value, f"not JSON: {exc}")
            return
        if isinstance(message, dict) and message.get("kind") == "purge":
            for key in self.data.keys(partition, *layout.prefix(str(message.get("webhook_id")))):
                self.data.delete(partition, key)
            return
        if isinstance(message, dict) and isinstance(message.get("events"), list):
            events, org_id = message["events"], message.get("org_id")
        elif isinstance(message, dict):
            events, org_id = [message], None
        else:
            self.dead_letters.send(topics.WEBHOOK_EVENTS, partition, offset, 0, value,
                                   'a message must be a webhook event or {"events": [...]}')
            return
        for index, raw in enumerate(events):
            self.fold_event(partition, offset, index, raw, org_id)

    def fold_event(self, partition: int, offset: int, index: int, raw: Any, org_id: str | None) -> None:
        try:
            event = WebhookEvent.model_validate(raw)
        except ValidationError as exc:
            self.dead_letters.send(topics.WEBHOOK_EVENTS, partition, offset, index, raw, "invalid webhook event",
                                   field_errors(exc))
            return
        webhook_id = event.webhook_id
        home = partition_for(webhook_id, self.engine.partitions)
        if home != partition:  # keyed differently: the partition that owns the webhook stores it
            body = {**raw, "id": event.id or f"{partition}-{offset}-{index}"}
            self.engine.state.emit(topics.WEBHOOK_EVENTS, entity_key(webhook_id), orjson.dumps({"events": [body]}),
                                   home)
            return
        config = self.webhooks.get(partition, entity_key(webhook_id))
        org_id = org_id or event.org_id
        if config is None or (org_id is not None and config["org_id"] != org_id):
            self.dead_letters.send(topics.WEBHOOK_EVENTS, partition, offset, index, raw,
                                   f"unknown webhook {webhook_id!r}: create it first (POST /v1/webhooks)")
            return
        pos = position(offset, index)
        key = layout.runtime_key(webhook_id)
        runtime = self.data.get(partition, key) or layout.WebhookRuntime()
        if runtime.pos >= pos:
            self.duplicates += 1
            return
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
            signal.update({k: found[k] for k in ("urgency", "team_id", "assignees", "actions", "ruleset_ids")})
        send_signal(self.engine, signal)
        return (found["ruleset_ids"] if found else []), dedup_key


# -- webhook commands (applied by the commands agent, entity id = webhook id) ----------------

def webhook_view(config: dict, runtime: layout.WebhookRuntime | None) -> dict:
    return {"id": config["id"], **config["spec"],
            "events_received": runtime.received if runtime else 0,
            "last_received_at": iso(runtime.last_received_at) if runtime else None,
            "created_at": iso(config["created_at"])}


@handles("webhook.create")
def webhook_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    key = entity_key(command["entity_id"])
    existing = applier.engine.webhooks.get(partition, key)
    if existing is not None:
        if existing["pos"] == offset:
            applier.forward_to_index(command, "index.add", existing, 201, webhook_view(existing, None),
                                     collection="webhooks")
        else:
            applier.reply(command["id"], 409, {"error": "conflict", "message": "a webhook with this id exists"})
        return
    config = {"pos": offset, "id": command["entity_id"], "org_id": command["org_id"], "spec": command["body"],
              "created_at": command["at"], "updated_at": command["at"]}
    applier.engine.webhooks.put(partition, key, config)
    applier.forward_to_index(command, "index.add", config, 201, webhook_view(config, None), collection="webhooks")


@handles("webhook.delete")
def webhook_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.engine.webhooks.get(partition, entity_key(command["entity_id"]))
    if config is None or config["org_id"] != command["org_id"]:
        return applier.reply(command["id"], 404, {"error": "not_found",
                                                  "message": f"webhook {command['entity_id']} not found"})
    applier.engine.webhooks.delete(partition, entity_key(config["id"]))
    applier.state.emit(topics.WEBHOOK_EVENTS, entity_key(config["id"]),
                       orjson.dumps({"kind": "purge", "webhook_id": config["id"]}), partition)
    applier.forward_to_index(command, "index.remove", config, 204, None, collection="webhooks")


# -- owner reads -----------------------------------------------------------------------

reads = web.RouteTableDef()


def _webhook(request: web.Request, partition: int, webhook_id: str) -> dict | None:
    engine: Engine = request.app["engine"]
    config = engine.webhooks.get(partition, entity_key(webhook_id))
    return config if config is not None and config["org_id"] == request.query.get("org") else None


@reads.get(BASE + "/webhooks")
async def webhook_views(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    engine: Engine = request.app["engine"]
    views = []
    for webhook_id in filter(None, request.query.get("ids", "").split(",")):
        config = _webhook(request, partition, webhook_id)
        if config is not None:
            views.append(webhook_view(config, engine.webhook_data.get(partition, layout.runtime_key(webhook_id))))
    return json_response({"data": views})


@reads.get(BASE + "/webhooks/{id}/owner")
async def webhook_owner(request: web.Request) -> web.Response:
    """For unauthenticated ingest: which organisation a webhook id belongs to (the id is the secret)."""
    partition = owned_partition(request)
    engine: Engine = request.app["engine"]
    config = engine.webhooks.get(partition, entity_key(request.match_info["id"]))
    if config is None:
        return error_response(404, "not_found", f"webhook {request.match_info['id']} not found")
    return json_response({"data": {"org_id": config["org_id"]}})


@reads.get(BASE + "/webhooks/{id}/events")
async def webhook_events(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    webhook_id = request.match_info["id"]
    if _webhook(request, partition, webhook_id) is None:
        return error_response(404, "not_found", f"webhook {webhook_id} not found")
    engine: Engine = request.app["engine"]
    before = request.query.get("before")
    events = layout.recent_events(engine.webhook_data, partition, webhook_id, int(request.query["limit"]),
                                  None if before is None else float(before))
    return json_response({"data": events})


def register(engine: Engine) -> WebhookFolder:
    dead_letters = DeadLetters(engine.state)
    folder = WebhookFolder(engine, dead_letters)
    engine.internal_routes.append(reads)
    engine.incident_engine["webhooks"] = folder

    @engine.app.agent(raw_topic(engine.app, topics.WEBHOOK_EVENTS, engine.partitions), name="webhooks")
    async def webhooks(stream):
        await fold_batches(engine, stream, folder, topics.WEBHOOK_EVENTS)

    return folder
