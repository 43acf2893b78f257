"""monitor-events and incident-signals → deduplicated incidents with timelines → incident-events, alert channels.

Two streams meet here:

* `monitor-events` (key: monitor or heartbeat id): `monitor.down` /
  `heartbeat.down` are judged by the organisation's state-change rulesets
  (engine/org_config.py, in memory on every worker); a match becomes a
  `trigger` signal, and `.recovered` a `resolve` signal, for the route of
  `monitor:<id>` / `heartbeat:<id>`. Alert channels subscribed to
  monitor.down / monitor.recovered are told here too. Nothing is stored: the
  signals carry the event's partition and offset, which the incident
  remembers, so a redelivered event changes nothing. Certificates and domains
  about to expire (`monitor.certificate_expiring`, `monitor.domain_expiring`)
  are judged alike, under keys of their own; a renewal resolves them.
* `incident-signals` (key: the incident route, tables/incidents.py): trigger
  and resolve from rule evaluation (here and in agents/webhooks/fold.py), create and
  update by hand (forwarded by the incident.* commands, agents/incidents/commands.py,
  which the API waits on). The agent owning a route's partition alone writes its incidents
  (table `incidents`), applies each signal once, appends the timeline, emits
  incident.created / .updated / .resolved on `incident-events`, runs the
  incident's actions (trigger-alerts: the subscribed alert channels, and a
  page to its assignees or whoever is on call, agents/pages, which its
  resolution ends; `acknowledge` comes back from that page), and keeps
  the organisation's incident lists (tables/org_index.py, one collection per
  filter) through `incident.index` commands to the organisation's partition.
"""
from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import ValidationError

from agents.alert_channels.announce import announce
from agents.incidents.signals import send_signal
from engine import topics
from engine.dead_letters import DeadLetters
from engine.folding import decoded
from engine.partitioning import entity_key, partition_for
from schemas.incident import IncidentSignal
from schemas.validation import field_errors
from tables import incidents as book
from tables.rulesets import matching, verdict


# -- 1. monitor and heartbeat transitions ---------------------------------------------

#: monitor.<change> events of certificates and domains (agents/certificates/fold.py) -> the incident's kind
EXPIRY_EVENTS = {"certificate_expiring": "certificate", "certificate_changed": "certificate",
                 "domain_expiring": "domain", "domain_renewed": "domain"}
EXPIRY_DETAILS = ("threshold_days", "days_left", "not_after", "expires", "domain", "fingerprint_sha256", "renewed")

class StateChangeJudge:
    """Turns monitor/heartbeat transitions into incident signals, and tells the alert channels subscribed."""

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        self.engine = engine
        self.dead_letters = dead_letters
        self.judged = 0

    def health(self) -> dict:
        return {"judged": self.judged, "dead_letters": sum(self.dead_letters.counts.values())}

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        event = decoded(self.dead_letters, topics.MONITOR_EVENTS, partition, offset, value, "a state change",
                        "event", "org_id")
        if event is None:
            return
        kind, org_id = event["event"], event["org_id"]
        source, _, change = str(kind).partition(".")
        entity_id = event.get(f"{source}_id")
        if source == "monitor" and change in EXPIRY_EVENTS and entity_id:
            return self.judge_expiry(partition, offset, event, change, entity_id)
        if source not in ("monitor", "heartbeat") or change not in ("down", "recovered") or not entity_id:
            return  # another kind of event: not ours to judge
        at = float(event.get("at") or time.time())
        event_id = str(event.get("id") or f"{partition}-{offset}")
        name = event.get("name") or self.monitor_name(partition, entity_id) or entity_id
        announce(self.engine, org_id, kind, at, event, f"{event_id}:{kind}", name=name)
        dedup_key = f"{source}:{entity_id}"
        signal: dict[str, Any] = {
            "id": event_id, "route": book.route_of(org_id, dedup_key), "org_id": org_id, "dedup_key": dedup_key,
            "origin": f"{topics.MONITOR_EVENTS}/{partition}", "origin_pos": offset, "at": at, "source": source,
            "entity_id": entity_id, "cause": event.get("cause"),
            "event": {"event": kind, "id": event_id, "cause": event.get("cause"), "regions": event.get("regions"),
                      "status": event.get("status"), "previous_status": event.get("previous_status")},
        }
        self.judged += 1
        if change == "recovered":
            send_signal(self.engine, {**signal, "kind": "resolve"})
            return
        document = {**event, "name": name}
        found = verdict(matching(self.engine.org_config.rulesets_of(org_id, "state-change"), document))
        if found is None:
            return
        send_signal(self.engine, {
            **signal, "kind": "trigger", "name": f"{name} is down",
            "description": found["ruleset_description"] or event.get("cause"),
            **{k: found[k] for k in ("urgency", "team_id", "assignees", "actions", "ruleset_ids", "paging")},
        })

    def judge_expiry(self, partition: int, offset: int, event: dict, change: str, monitor_id: str) -> None:
        """A certificate or domain about to expire opens an incident of its own (`certificate:<monitor id>`,
        `domain:<monitor id>`) when a state-change ruleset matches; its renewal resolves it."""
        kind, org_id, what = event["event"], event["org_id"], EXPIRY_EVENTS[change]
        at = float(event.get("at") or time.time())
        event_id = str(event.get("id") or f"{partition}-{offset}")
        announce(self.engine, org_id, kind, at, event, f"{event_id}:{kind}")
        self.judged += 1
        renewed = change == "domain_renewed" or (change == "certificate_changed" and event.get("renewed"))
        if change == "certificate_changed" and not renewed:
            return  # a new certificate that ends no later: told to the channels, nothing to resolve
        dedup_key = f"{what}:{monitor_id}"
        signal: dict[str, Any] = {
            "id": event_id, "route": book.route_of(org_id, dedup_key), "org_id": org_id, "dedup_key": dedup_key,
            "origin": f"{topics.MONITOR_EVENTS}/{partition}", "origin_pos": offset, "at": at, "source": "monitor",
            "entity_id": monitor_id, "cause": None,
            "event": {"event": kind, "id": event_id, **{k: event.get(k) for k in EXPIRY_DETAILS if k in event}},
        }
        if renewed:
            send_signal(self.engine, {**signal, "kind": "resolve"})
            return
        name = event.get("name") or self.monitor_name(partition, monitor_id) or monitor_id
        subject = "its certificate" if what == "certificate" else f"domain {event.get('domain')}"
        cause = f"{subject} expires in {event.get('days_left')} days ({event.get('not_after') or event.get('expires')})"
        found = verdict(matching(self.engine.org_config.rulesets_of(org_id, "state-change"), {**event, "name": name}))
        if found is None:
            return
        send_signal(self.engine, {
            **signal, "kind": "trigger", "name": f"{name}: {subject} expires in {event.get('days_left')} days",
            "cause": cause, "description": found["ruleset_description"] or cause,
            **{k: found[k] for k in ("urgency", "team_id", "assignees", "actions", "ruleset_ids", "paging")},
        })

    def monitor_name(self, partition: int, monitor_id: str) -> str | None:
        config = self.engine.monitors.get(partition, entity_key(monitor_id))
        return config["spec"].get("name") if config else None


# -- 2. incident signals ----------------------------------------------------------------

class IncidentBook:
    """Applies signals to the incidents of owned partitions."""

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        self.engine = engine
        self.table = engine.incidents
        self.state = engine.state
        self.dead_letters = dead_letters
        self.applied = 0
        self.duplicates = 0

    def health(self) -> dict:
        return {"applied": self.applied, "redelivered_and_skipped": self.duplicates,
                "dead_letters": sum(self.dead_letters.counts.values())}

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        try:
            signal = IncidentSignal.model_validate(orjson.loads(value or b"")).model_dump()
        except orjson.JSONDecodeError as exc:
            self.dead_letters.send(topics.INCIDENT_SIGNALS, partition, offset, 0, value, f"not JSON: {exc}")
            return
        except ValidationError as exc:
            self.dead_letters.send(topics.INCIDENT_SIGNALS, partition, offset, 0, value, "invalid incident signal",
                                   field_errors(exc))
            return
        route_id = signal["route"]
        if partition_for(route_id, self.engine.partitions) != partition:
            self.dead_letters.send(topics.INCIDENT_SIGNALS, partition, offset, 0, value,
                                   f"signal for route {route_id} sent to partition {partition}: key it by the route")
            return
        stored = self.table.get(partition, book.route_key(route_id))
        route = None if stored is None else book.RouteState.from_dict(stored)
        if route is not None and route.org_id != signal["org_id"]:
            route = None  # another organisation's incident is as good as absent (invariant 6)
            if signal["kind"] != "update":
                return
        if route is None:
            if signal["kind"] == "update":
                return self.reply_not_found(signal)
            if signal["kind"] in ("resolve", "acknowledge"):
                return  # nothing open under this key: nothing to resolve or acknowledge
            route = book.RouteState(signal["org_id"], signal["dedup_key"])
        if route.seen(signal["origin"], signal["origin_pos"]):
            self.duplicates += 1
            return self.reply_again(partition, route_id, route, signal)
        current = self.incident(partition, route_id, route, signal)
        kind = signal["kind"]
        if kind == "update" and current is None:
            return self.reply_not_found(signal)
        if kind == "trigger":
            outcome = book.trigger(route, route_id, current, signal)
        elif kind == "resolve":
            outcome = book.resolve(current, signal)
        elif kind == "create":
            outcome = book.create(route, route_id, signal)
        elif kind == "acknowledge":
            outcome = book.acknowledge(current, signal)
        else:
            outcome = book.update(current, signal)
        route.applied[signal["origin"]] = signal["origin_pos"]
        self.record(partition, route_id, route, signal, outcome)
        self.applied += 1

    def incident(self, partition: int, route_id: str, route: book.RouteState, signal: dict) -> dict | None:
        wanted = signal.get("incident_id") or (book.incident_id(route_id, route.generation) if route.generation else None)
        return None if wanted is None else self.table.get(partition, book.incident_key(wanted))

    def record(self, partition: int, route_id: str, route: book.RouteState, signal: dict,
               outcome: book.Outcome) -> None:
        incident = outcome.incident
        if incident is not None:
            for entry in outcome.timeline:
                if incident["timeline_count"] >= book.TIMELINE_MAX:
                    incident["timeline_dropped"] += 1
                    continue
                self.table.put(partition, book.timeline_key(incident["id"], incident["timeline_count"]), entry)
                incident["timeline_count"] += 1
            said = next((entry.get("message") for entry in reversed(outcome.timeline) if entry.get("message")), None)
            for event in outcome.events:
                self.announce(incident, event, signal, said)
            self.table.put(partition, book.incident_key(incident["id"]), incident)
        # derived keys first: the route that records the signal as applied goes last
        self.table.put(partition, book.route_key(route_id), route.to_dict())
        if incident is None:
            return
        reply = None
        if signal["kind"] in ("create", "update"):
            reply = {"status": 201 if signal["kind"] == "create" else 200, "body": book.incident_view(incident)}
        after = book.collections(incident)
        added, removed = sorted(after - outcome.before), sorted(outcome.before - after)
        if added or removed:
            self.index(incident, signal, added, removed, reply)
        elif reply is not None:
            self.reply(signal["request_id"], reply["status"], reply["body"])

    def announce(self, incident: dict, event: str, signal: dict, said: str | None = None) -> None:
        """`said`: the message this change put on the timeline (status pages show it as the update's text)."""
        at = signal["at"]
        view = book.incident_view(incident)
        message = {"id": f"{incident['id']}:{signal['id']}:{event}", "event": event, "incident_id": incident["id"],
                   "org_id": incident["org_id"], "at": at, "incident": view, "message": said}
        self.state.emit(topics.INCIDENT_EVENTS, entity_key(incident["id"]), orjson.dumps(message),
                        partition_for(book.route_of_incident(incident["id"]), self.engine.partitions))
        if book.run_actions(incident, event, at):
            announce(self.engine, incident["org_id"], event, at, view, message["id"])
            self.page(incident, event, at, message["id"])

    def page(self, incident: dict, event: str, at: float, event_id: str) -> None:
        """trigger-alerts pages people (agents/pages): a new incident opens its page, its resolution ends it."""
        if event == "incident.created":
            kind, body = "page.create", book.page_request(incident)
        elif event == "incident.resolved":
            kind, body = "page.cancel", {"id": book.page_id_of(incident["id"]), "status": "resolved"}
        else:
            return
        org_id = incident["org_id"]
        # the page's clock starts now, not at the event (which may be a check stamped minutes ago); the page
        # id derives from the incident, so a replay's second page.create is refused and the first one's clock stands
        command = {"id": f"{event_id}:page", "kind": kind, "org_id": org_id, "entity_id": org_id,
                   "at": max(at, time.time()), "body": body}
        self.state.emit(topics.COMMANDS, entity_key(org_id), orjson.dumps(command),
                        partition_for(org_id, self.engine.partitions))

    def index(self, incident: dict, signal: dict, added: list[str], removed: list[str], reply: dict | None) -> None:
        """The organisation's partition (un)lists the incident, then sends the reply, if one is awaited."""
        org_id = incident["org_id"]
        command = {"id": signal.get("request_id") or f"index:{signal['id']}", "kind": "incident.index",
                   "org_id": org_id, "entity_id": org_id, "at": signal["at"],
                   "body": {"id": incident["id"], "created_at": incident["created_at"], "add": added,
                            "remove": removed},
                   "reply": reply}
        self.state.emit(topics.COMMANDS, entity_key(org_id), orjson.dumps(command),
                        partition_for(org_id, self.engine.partitions))

    def reply(self, request_id: str, status: int, body: Any) -> None:
        message = orjson.dumps({"request_id": request_id, "status": status, "body": body})
        self.state.reply(topics.COMMAND_REPLIES, request_id.encode(), message,
                         partition_for(request_id, self.engine.partitions))

    def reply_not_found(self, signal: dict) -> None:
        if signal.get("request_id"):
            self.reply(signal["request_id"], 404, {"error": "not_found",
                                                   "message": f"incident {signal.get('incident_id')} not found"})

    def reply_again(self, partition: int, route_id: str, route: book.RouteState, signal: dict) -> None:
        """A redelivered create or update: its effect is stored; answer with what is there now."""
        if not signal.get("request_id"):
            return
        incident = self.incident(partition, route_id, route, signal)
        if incident is None:
            return self.reply_not_found(signal)
        self.reply(signal["request_id"], 201 if signal["kind"] == "create" else 200, book.incident_view(incident))

