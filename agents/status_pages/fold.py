"""status-pages, monitor-events, incident-events → each page's live model → status-page-views.

Reads top to bottom as the stream goes:

1. the topics: `status-pages`, keyed by the partition's entity (and `tick`s, every
   REFRESH_EVERY seconds, which refresh the bars): `config` (a
   page created, changed or deleted: agents/status_pages/commands.py), `bind`
   (a page's components show a source now, or no longer), `source` (what a
   monitor or heartbeat says now), `incident` (an incident naming a source) and
   `page_incident` (that incident, for one page). Two watchers send them:
   `monitor-events` (a monitor's or heartbeat's transition, in its partition)
   and `incident-events` (an incident created, updated, resolved);
2. the state: table `status_pages` (tables/status_pages.py): in a source's
   partition which page components show it (`binding`); in a page's partition
   its model: configuration, each component's source status and daily uptime,
   the incidents naming its components;
3. the transitions: tables/status_pages.py, pure;
4. the events: the page's view on `status-page-views` (compacted, keyed by
   page id), which every API process follows, so serving a page is one lookup
   in memory whatever the number of monitors.

A source's partition is the one writer of its binding, a page's of its model
(invariant 1); messages carry the time they speak of, and an older one never
overwrites a newer (invariant 4).
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson

from agents.alert_channels.announce import announce, deliver, event_body
from engine import mail, topics
from engine.dead_letters import DeadLetters
from engine.folding import decoded
from engine.partitioning import entity_key, partition_for
from tables import status_pages as rules
from tables.entity_keys import runtime_key
from tables.incidents import on_status_pages
from tables.monitor_views import buckets_between
from tables.uptime import series

TAKE = 200
REFRESH_EVERY = 300.0   # seconds between refreshes of the uptime bars from the monitors' statistics
MAX_VIEW = 900_000   # bytes a published view may take (Kafka's default message limit is 1 MB)
WITHIN = 0.02   # a state change waits at most this long in a batch before it reaches the page (seconds)


def entity_of(source: str) -> str:
    """The entity whose partition keeps a source's binding: "monitor:<id>" -> <id>."""
    return source.partition(":")[2]


class PageFolder:
    """Folds `status-pages` messages of owned partitions into bindings and page models."""

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        self.engine = engine
        self.state = engine.state
        self.data = engine.status_pages
        self.partitions = engine.settings.partitions
        self.dead_letters = dead_letters
        self.published = 0
        self.mailed = 0
        self.hooked = 0

    def health(self) -> dict:
        return {"views_published": self.published, "subscribers_mailed": self.mailed, "webhooks_told": self.hooked,
                "dead_letters": self.dead_letters.counts.get(topics.STATUS_PAGES, 0)}

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        message = decoded(self.dead_letters, topics.STATUS_PAGES, partition, offset, value, "a status page message",
                          "kind")
        if message is None:
            return
        kind = message["kind"]
        if kind == "config":
            self.configure(partition, message)
        elif kind == "bind":
            self.bind(partition, message)
        elif kind == "source":
            self.source(partition, message)
        elif kind == "incident":
            self.incident(partition, message)
        elif kind == "page_incident":
            self.page_incident(partition, message)
        elif kind == "tick":
            self.refresh(partition)
        else:
            self.dead_letters.send(topics.STATUS_PAGES, partition, offset, 0, value, f"unknown kind {kind!r}")

    # -- in a page's partition ------------------------------------------------

    def model(self, partition: int, page_id: str) -> dict:
        return self.data.get(partition, rules.model_key(page_id)) or rules.new_model(page_id)

    def configure(self, partition: int, message: dict) -> None:
        page_id, config = message["page_id"], message["config"]
        model = self.model(partition, page_id)
        if model.get("config_pos", -1) >= message["pos"]:
            return  # applied before
        before_config = model["config"]
        before = rules.sources_of(model["config"]["spec"]) if model["config"] else {}
        after = rules.sources_of(config["spec"]) if config else {}
        for source in before.keys() | after.keys():
            if before.get(source) != after.get(source):
                self.tell(source, {"kind": "bind", "source": source, "page_id": page_id,
                                   "component_ids": after.get(source, []), "at": message["at"]})
        if config is None:
            self.data.delete(partition, rules.model_key(page_id))
            self.state.emit(topics.STATUS_PAGE_VIEWS, entity_key(page_id), None, partition)
            return
        model["config"] = {name: config[name] for name in ("org_id", "spec", "password_hash", "created_at",
                                                            "updated_at")}
        announced = {m["id"] for m in (before_config or {}).get("maintenances", [])}
        model["config"]["maintenances"] = config.get("maintenances", [])
        for maintenance in model["config"]["maintenances"]:
            if maintenance["id"] not in announced and maintenance["ends_at"] > message["at"]:
                window = f"{rules.iso(maintenance['starts_at'])} to {rules.iso(maintenance['ends_at'])}"
                self.tell_subscribers(partition, model, f"{maintenance['id']}:announced", maintenance["name"],
                                      "scheduled maintenance", f"{window}\n\n{maintenance.get('message') or ''}",
                                      maintenance["component_ids"], message["at"])
        model["config_pos"] = message["pos"]
        components = {component["id"] for component in config["spec"].get("components", [])}
        model["sources"] = {cid: held for cid, held in model["sources"].items() if cid in components}
        self.publish(partition, model)

    def source(self, partition: int, message: dict) -> None:
        model = self.data.get(partition, rules.model_key(message["page_id"]))
        if model is None or model["config"] is None:
            return  # deleted meanwhile
        changed = False
        said = {"status": message["status"], "maintenance": message["maintenance"], "daily": message["daily"],
                "at": message["at"]}
        for component_id in message["component_ids"]:
            held = model["sources"].get(component_id)
            if held is None or (held["at"] <= message["at"] and held != said):
                model["sources"][component_id] = said
                changed = True
        if changed:
            self.publish(partition, model)

    def page_incident(self, partition: int, message: dict) -> None:
        model = self.data.get(partition, rules.model_key(message["page_id"]))
        if model is None or model["config"] is None:
            return
        incident = dict(message["incident"])
        held = model["incidents"].get(incident["id"])
        incident["component_ids"] = sorted(set(message["component_ids"]) | set(held["component_ids"] if held else ()))
        last = held["updates"][-1]["id"] if held and held["updates"] else None
        if rules.apply_incident(model, incident, message["at"]):
            shown = model["incidents"][incident["id"]]
            update = shown["updates"][-1]
            if update["id"] != last:  # a new update: each subscriber is told once (the mail's id is the update's)
                self.tell_subscribers(partition, model, update["id"], shown["name"], update["status"],
                                      update["body"], shown["component_ids"], message["at"])
            self.publish(partition, model)
        elif held is not None and incident["component_ids"] != held["component_ids"]:
            held["component_ids"] = incident["component_ids"]  # the same change, heard through another source
            self.publish(partition, model)

    def tell_subscribers(self, partition: int, model: dict, update_id: str, title: str, status: str, body: str,
                         component_ids: list[str], at: float) -> None:
        """A mail to each confirmed subscriber of the page, with the page's link and the subscriber's own
        unsubscribe link, and a delivery to each alert channel subscribed to status_page.updated; the ids
        derive from the update, so the mail agent and the deliveries send each once."""
        spec = model["config"]["spec"]
        names = {component["id"]: component["name"] for component in spec.get("components", [])}
        # `at`: the change's own time, so a delivery made again has the same key and is sent once
        org_id, event = model["config"]["org_id"], "status_page.updated"
        data = {"page_id": model["id"], "page_name": spec.get("page_name") or spec["name"],
                "subdomain": spec["subdomain"], "update_id": update_id, "title": title, "status": status,
                "body": body, "component_ids": component_ids,
                "components": [names[c] for c in component_ids if c in names]}
        # the organisation's own alert channels subscribed to status_page.updated, signed
        announce(self.engine, org_id, event, at, data, f"status-update:{update_id}")
        signed = event_body(event, at, data)
        for _, subscriber in self.data.scan(partition, *rules.subscribers_range(model["id"])):
            if subscriber.get("webhook"):  # delivered, signed and retried by the alert channels' fold, here
                deliver(self.engine, rules.webhook_target(model["id"], subscriber["id"]), org_id, event, at, signed,
                        f"status-update:{update_id}:{subscriber['id']}", entity_key(model["id"]), partition)
                self.hooked += 1
                continue
            if not subscriber["confirmed"]:
                continue
            links = rules.subscriber_links(subscriber)
            mail.queue(self.state, self.partitions, f"status-update:{update_id}:{subscriber['id']}",
                       subscriber["email"], "status_update", {
                           "page_name": spec.get("page_name") or spec["name"], "title": title, "status": status,
                           "body": body, "components": [names[c] for c in component_ids if c in names],
                           "page_url": links["page_url"], "unsubscribe_url": links["unsubscribe_url"]})
            self.mailed += 1

    def publish(self, partition: int, model: dict) -> None:
        model["version"] += 1
        self.data.put(partition, rules.model_key(model["id"]), model)
        view = rules.page_view(model, time.time())
        encoded = orjson.dumps(view)
        while len(encoded) > MAX_VIEW and rules.drop_oldest_resolved(view):
            encoded = orjson.dumps(view)  # past incidents go first: a view must fit in one Kafka message
        self.state.emit(topics.STATUS_PAGE_VIEWS, entity_key(model["id"]), encoded, partition)
        self.published += 1

    # -- in a source's partition ----------------------------------------------

    def bind(self, partition: int, message: dict) -> None:
        source, page_id = message["source"], message["page_id"]
        key = rules.binding_key(source)
        binding = self.data.get(partition, key) or {}
        if message["component_ids"]:
            binding[page_id] = message["component_ids"]
            self.data.put(partition, key, binding)
            kind, _, entity_id = source.partition(":")
            if kind in ("monitor", "heartbeat"):  # the page learns the source's state at once
                self.tell_page(page_id, {**self.source_state(partition, kind, entity_id, None, None),
                                         "component_ids": message["component_ids"]})
        elif binding.pop(page_id, None) is not None:
            if binding:
                self.data.put(partition, key, binding)
            else:
                self.data.delete(partition, key)

    def refresh(self, partition: int) -> None:
        """A tick: every monitor and heartbeat shown here tells its pages its state and days again, so the
        uptime bars follow the days (and today's checks) without a transition; a page publishes only a change."""
        for key, binding in self.data.scan(partition, rules.BINDING, rules.BINDING + b"\xff"):
            kind, _, entity_id = key[len(rules.BINDING):].decode().partition(":")
            if kind not in ("monitor", "heartbeat"):
                continue
            state = self.source_state(partition, kind, entity_id, None, None)
            for page_id, component_ids in binding.items():
                self.tell_page(page_id, {**state, "component_ids": component_ids})

    def incident(self, partition: int, message: dict) -> None:
        for page_id, component_ids in (self.data.get(partition, rules.binding_key(message["source"])) or {}).items():
            self.tell_page(page_id, {"kind": "page_incident", "page_id": page_id, "component_ids": component_ids,
                                     "incident": message["incident"], "at": message["at"]})

    def source_state(self, partition: int, kind: str, entity_id: str, status: str | None,
                     at: float | None) -> dict:
        """What a monitor or heartbeat says now, from its runtime in this partition: status, maintenance, days.

        `at`: the transition's time; None: the time of the source's last change (its own clock, which is
        what a page compares transitions by), 0 if it has none yet.
        """
        engine = self.engine
        maintenance, daily = False, None
        data = engine.monitor_data if kind == "monitor" else engine.heartbeat_data
        runtime = data.get(partition, runtime_key(entity_id))
        if runtime is not None:
            status = runtime.state.status if status is None else status
            at = (runtime.state.since or 0.0) if at is None else at
        if kind == "monitor":
            maintenance = runtime is not None and runtime.maintenance is not None
            now = time.time()
            daily = rules.daily_uptime(series(buckets_between(engine.monitor_data, partition, entity_id,
                                                              now - rules.DAYS * 86400, now + 3600), 86400), now)
        return {"kind": "source", "status": status, "maintenance": maintenance, "daily": daily, "at": at or 0.0}

    def tell(self, source: str, message: dict) -> None:
        entity = entity_of(source)
        self.state.emit(topics.STATUS_PAGES, entity_key(entity), orjson.dumps(message),
                        partition_for(entity, self.partitions))

    def tell_page(self, page_id: str, message: dict) -> None:
        message["page_id"] = page_id
        self.state.emit(topics.STATUS_PAGES, entity_key(page_id), orjson.dumps(message),
                        partition_for(page_id, self.partitions))


class StateWatch:
    """monitor-events → `source` messages to the pages showing the monitor or heartbeat (nothing stored)."""

    def __init__(self, folder: PageFolder, dead_letters: DeadLetters) -> None:
        self.folder = folder
        self.dead_letters = dead_letters

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        event = decoded(self.dead_letters, topics.MONITOR_EVENTS, partition, offset, value, "a state change",
                        "event")
        if event is None or "status" not in event:
            return  # not a transition (certificates, domains)
        kind = "monitor" if event.get("monitor_id") else "heartbeat"
        entity_id = event.get("monitor_id") or event.get("heartbeat_id")
        if not entity_id:
            return
        binding = self.folder.data.get(partition, rules.binding_key(f"{kind}:{entity_id}"))
        if not binding:
            return
        state = self.folder.source_state(partition, kind, entity_id, event["status"], float(event["at"]))
        for page_id, component_ids in binding.items():
            self.folder.tell_page(page_id, {**state, "component_ids": component_ids})


class IncidentWatch:
    """incident-events → `incident` messages to the partitions of the sources and components it names."""

    def __init__(self, folder: PageFolder, dead_letters: DeadLetters) -> None:
        self.folder = folder
        self.dead_letters = dead_letters

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        event = decoded(self.dead_letters, topics.INCIDENT_EVENTS, partition, offset, value, "an incident event",
                        "incident")
        if event is None:
            return
        if not on_status_pages(event["incident"]):
            return  # opened by a rule without trigger-statuspage-update
        incident = page_incident(event["incident"], event.get("message"))
        sources = [f"component:{cid}" for cid in incident["component_ids"]]
        if incident.get("monitor_id"):
            sources.append(f"monitor:{incident['monitor_id']}")
        if incident.get("heartbeat_id"):
            sources.append(f"heartbeat:{incident['heartbeat_id']}")
        for source in sources:
            self.folder.tell(source, {"kind": "incident", "source": source, "incident": incident,
                                      "at": float(event["at"])})


def page_incident(view: dict, message: str | None) -> dict:
    """What a page keeps of an incident view (times as seconds, so they compare and sort)."""
    def seconds(text: str | None) -> float | None:
        return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    return {"id": view["id"], "name": view["name"], "description": view.get("description"),
            "status": view["status"], "impact": view.get("impact"), "source": view.get("source"),
            "monitor_id": view.get("monitor_id"), "heartbeat_id": view.get("heartbeat_id"),
            "component_ids": list(view.get("component_ids") or []),
            "message": message,
            "created_at": seconds(view["created_at"]), "updated_at": seconds(view["updated_at"]),
            "resolved_at": seconds(view.get("resolved_at"))}
