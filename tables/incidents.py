"""Incidents: deduplicated by a key, opened, repeated, resolved, reopened; with a timeline. Pure logic.

Every incident belongs to a *route*: the hash of its organisation and dedup key
(`monitor:<id>`, `heartbeat:<id>`, `webhook:<id>:<group key>`, or
`manual:<route>` for incidents opened by hand). A route's signals all reach the
same partition of `incident-signals` (keyed by the route), whose agent alone
writes these keys of the `incidents` table:

    <route> 00 'r'                        RouteState: the generation and positions applied
    <incident id> 00 'i'                  the incident
    <incident id> 00 't' <n, 8 bytes>     its n-th timeline entry

An incident's id is `<route>-<generation>`, so any id names its partition. A
trigger on a route whose incident is open is a repeat (one incident however
many alerts); on a route whose incident was resolved less than REOPEN_WINDOW
ago it reopens that incident (a flapping monitor does not multiply); otherwise
it opens the next generation. Signals are deduplicated by their origin
position: a route remembers, per origin partition, the last position applied.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from tables.monitor_views import iso

REOPEN_WINDOW = 3600.0     # seconds after resolution in which a new trigger reopens instead of opening anew
TIMELINE_MAX = 2000        # entries kept per incident; later ones are counted in timeline_dropped
OPEN = ("investigating", "acknowledged", "identified", "monitoring")
RESOLVED = "resolved"
URGENCY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
INCIDENT_ID = re.compile(r"^(inc_[0-9a-f]{20})-([1-9][0-9]{0,8})$")
SEP = b"\x00"
SOURCE_ACTOR = {"type": "source"}
PATCHABLE = ("name", "description", "urgency", "impact", "assignees")
#: what trigger-statuspage-update does: the status pages showing the incident's monitor, heartbeat or components
#: post it (agents/status_pages/fold.py follows incident-events); an incident opened by a rule without it is not
#: posted (its monitor's component still shows the outage)
STATUSPAGE_UPDATED = "posted on the status pages showing its monitor, heartbeat or components"
STATUSPAGE_ACTION = "trigger-statuspage-update"


def on_status_pages(incident: dict) -> bool:
    """Is the incident posted on status pages: opened by hand (naming components), or with the action."""
    return incident["source"] == "manual" or STATUSPAGE_ACTION in (incident.get("actions") or ())


def route_of(org_id: str, dedup_key: str) -> str:
    digest = hashlib.blake2b(f"{org_id}\x00{dedup_key}".encode(), digest_size=10).hexdigest()
    return f"inc_{digest}"


def incident_id(route: str, generation: int) -> str:
    return f"{route}-{generation}"


def route_of_incident(incident_id_: str) -> str | None:
    """The route (hence the partition) an incident id belongs to; None if it is no incident id."""
    found = INCIDENT_ID.match(incident_id_)
    return found[1] if found else None


def route_key(route: str) -> bytes:
    return route.encode() + SEP + b"r"


def incident_key(incident_id_: str) -> bytes:
    return incident_id_.encode() + SEP + b"i"


def timeline_key(incident_id_: str, n: int) -> bytes:
    return incident_id_.encode() + SEP + b"t" + n.to_bytes(8, "big")


def timeline_range(incident_id_: str) -> tuple[bytes, bytes]:
    head = incident_id_.encode() + SEP + b"t"
    return head, head + b"\xff" * 9


def status_group(incident: dict) -> str:
    return "resolved" if incident["status"] == RESOLVED else "open"


def collection(status: str | None = None, monitor_id: str | None = None, team_id: str | None = None) -> str:
    """The organisation-index collection listing incidents filtered this way (tables/org_index.py)."""
    name = "incidents"
    if status:
        name += f":{status}"
    if monitor_id:
        name += f":monitor:{monitor_id}"
    if team_id:
        name += f":team:{team_id}"
    return name


def collections(incident: dict) -> set[str]:
    """Every filtered list this incident appears in: so each filter pages through its own index."""
    monitor = incident.get("entity_id") if incident["source"] == "monitor" else None
    team = incident.get("team_id")
    return {collection(status, m, t)
            for status in (None, status_group(incident))
            for m in {None, monitor}
            for t in {None, team}}


@dataclass(slots=True)
class RouteState:
    org_id: str
    dedup_key: str
    generation: int = 0
    applied: dict[str, int] = field(default_factory=dict)   # origin ("topic/partition") -> last position

    def seen(self, origin: str, pos: int) -> bool:
        return self.applied.get(origin, -1) >= pos

    def to_dict(self) -> dict:
        return {"org_id": self.org_id, "dedup_key": self.dedup_key, "generation": self.generation,
                "applied": self.applied}

    @classmethod
    def from_dict(cls, d: dict) -> RouteState:
        return cls(d["org_id"], d["dedup_key"], d["generation"], d["applied"])


@dataclass(slots=True)
class Outcome:
    """What one signal changed: the incident to store, timeline entries to add, events to emit."""

    incident: dict | None = None
    timeline: list[dict] = field(default_factory=list)
    events: list[str] = field(default_factory=list)     # incident.created / .updated / .resolved
    before: set[str] = field(default_factory=set)       # index collections before the change
    reply: tuple[int, Any] | None = None


def entry(kind: str, at: float, actor: dict, **fields: Any) -> dict:
    return {"type": kind, "at": at, "actor": actor, **{k: v for k, v in fields.items() if v is not None}}


def _summary(event: dict | None) -> dict | None:
    """The incident keeps the latest event without its details; the timeline entry has them."""
    return None if not event else {k: v for k, v in event.items() if k != "details"}


def _actor(signal: dict) -> dict:
    return signal.get("actor") or SOURCE_ACTOR


def new_incident(route: RouteState, route_id: str, signal: dict) -> dict:
    at = signal["at"]
    route.generation += 1
    source = signal["source"]
    return {
        "id": incident_id(route_id, route.generation),
        "org_id": route.org_id,
        "dedup_key": route.dedup_key,
        "name": signal.get("name") or "Incident",
        "description": signal.get("description"),
        "cause": signal.get("cause"),
        "status": "investigating",
        "urgency": signal.get("urgency") or "medium",
        "impact": signal.get("impact") or "none",
        "source": source,
        "entity_id": signal.get("entity_id"),
        "team_id": signal.get("team_id"),
        "assignees": list(signal.get("assignees") or []),
        "component_ids": list(signal.get("component_ids") or []),
        "actions": list(signal["actions"] if signal.get("actions") is not None else ["trigger-alerts"]),
        "action_runs": {},
        "ruleset_ids": list(signal.get("ruleset_ids") or []),
        "paging": signal.get("paging"),
        "acknowledged_at": None,
        "acknowledged_by": None,
        "created_at": at,
        "updated_at": at,
        "resolved_at": None,
        "reopened_count": 0,
        "event_count": 0 if source == "manual" else 1,
        "last_event_at": None if source == "manual" else at,
        "last_event": _summary(signal.get("event")),
        "timeline_count": 0,
        "timeline_dropped": 0,
    }


def trigger(route: RouteState, route_id: str, incident: dict | None, signal: dict) -> Outcome:
    """A rule matched an opening event (monitor down, alert firing)."""
    at, event = signal["at"], signal.get("event") or None
    if incident is None or (incident["status"] == RESOLVED and at - (incident["resolved_at"] or 0) > REOPEN_WINDOW):
        created = new_incident(route, route_id, signal)
        return Outcome(created, [entry("created", at, SOURCE_ACTOR, status=created["status"],
                                       message=signal.get("cause") or signal.get("description"), event=event)],
                       ["incident.created"])
    before = collections(incident)
    ruleset_ids = sorted(set(incident["ruleset_ids"]) | set(signal.get("ruleset_ids") or []))
    incident = {**incident, "event_count": incident["event_count"] + 1, "last_event_at": at,
                "last_event": _summary(event), "ruleset_ids": ruleset_ids}
    if incident["status"] == RESOLVED:
        incident.update(status="investigating", resolved_at=None, updated_at=at,
                        reopened_count=incident["reopened_count"] + 1, cause=signal.get("cause") or incident["cause"])
        return Outcome(incident, [entry("reopened", at, SOURCE_ACTOR, previous_status=RESOLVED, status="investigating",
                                        message=signal.get("cause"), event=event)], ["incident.updated"], before)
    urgency = signal.get("urgency")
    if urgency and URGENCY_RANK[urgency] > URGENCY_RANK[incident["urgency"]]:
        changes = {"urgency": [incident["urgency"], urgency]}
        incident.update(urgency=urgency, updated_at=at)
        return Outcome(incident, [entry("event", at, SOURCE_ACTOR, event=event, changes=changes)],
                       ["incident.updated"], before)
    return Outcome(incident, [entry("event", at, SOURCE_ACTOR, event=event)], [], before)


def resolve(incident: dict | None, signal: dict) -> Outcome:
    """The source says it is over (monitor recovered, alert resolved)."""
    if incident is None:
        return Outcome()
    at, event = signal["at"], signal.get("event") or None
    before = collections(incident)
    incident = {**incident, "event_count": incident["event_count"] + 1, "last_event_at": at,
                "last_event": _summary(event)}
    if incident["status"] == RESOLVED:
        return Outcome(incident, [entry("event", at, SOURCE_ACTOR, event=event)], [], before)
    previous = incident["status"]
    incident.update(status=RESOLVED, resolved_at=at, updated_at=at)
    return Outcome(incident, [entry("resolved", at, SOURCE_ACTOR, previous_status=previous, status=RESOLVED,
                                    message=signal.get("cause"), event=event)], ["incident.resolved"], before)


def create(route: RouteState, route_id: str, signal: dict) -> Outcome:
    """Opened by hand (POST /v1/incidents)."""
    incident = new_incident(route, route_id, signal)
    return Outcome(incident, [entry("created", signal["at"], _actor(signal), status=incident["status"],
                                    message=incident["description"])], ["incident.created"])


def update(incident: dict, signal: dict) -> Outcome:
    """Changed by hand (PATCH /v1/incidents/{id}): fields, status, and a message for the timeline."""
    at, actor, patch = signal["at"], _actor(signal), dict(signal.get("patch") or {})
    message = patch.pop("message", None)
    before = collections(incident)
    changes = {name: [incident[name], patch[name]] for name in PATCHABLE if name in patch and patch[name] != incident[name]}
    updated = {**incident, **{name: new for name, (_, new) in changes.items()}}
    timeline, events = [], []
    status = patch.get("status")
    if status is not None and status != incident["status"]:
        updated["status"] = status
        if status == RESOLVED:
            updated["resolved_at"] = at
            events.append("incident.resolved")
        else:
            if incident["status"] == RESOLVED:
                updated["resolved_at"] = None
                updated["reopened_count"] = incident["reopened_count"] + 1
            events.append("incident.updated")
        timeline.append(entry("status_change", at, actor, previous_status=incident["status"], status=status,
                              message=message))
        message = None
    if changes:
        timeline.append(entry("update", at, actor, changes=changes, message=message))
        message = None
        if not events:
            events.append("incident.updated")
    if message is not None:
        timeline.append(entry("message", at, actor, message=message))
    if changes or events:
        updated["updated_at"] = at
    return Outcome(updated, timeline, events, before)


def acknowledge(incident: dict | None, signal: dict) -> Outcome:
    """Someone acknowledged the incident's page: an open incident is `acknowledged`, by them, then."""
    if incident is None or incident["status"] not in ("investigating", "identified", "monitoring"):
        return Outcome()  # resolved meanwhile, or acknowledged already: nothing changes
    at, by = signal["at"], signal.get("acknowledged_by")
    before = collections(incident)
    previous = incident["status"]
    incident = {**incident, "status": "acknowledged", "acknowledged_at": at, "acknowledged_by": by, "updated_at": at}
    actor = {"type": "user", "id": by} if by else SOURCE_ACTOR
    return Outcome(incident, [entry("acknowledged", at, actor, previous_status=previous, status="acknowledged",
                                    message=signal.get("note"), method=signal.get("method"))],
                   ["incident.updated"], before)


def page_id_of(incident_id_: str) -> str:
    """The page an incident's trigger-alerts sends: one per incident, whoever asks again."""
    return "pg_" + hashlib.blake2b(incident_id_.encode(), digest_size=10).hexdigest()


PAGE_PRIORITY = {"low": "low", "medium": "normal", "high": "high", "critical": "critical"}


def page_request(incident: dict) -> dict:
    """What trigger-alerts asks of pages (agents/pages): the assignees, else whoever is on call, paged by the
    ruleset's policy."""
    paging = incident.get("paging") or {}
    text = incident.get("cause") or incident.get("description") or ""
    return {"id": page_id_of(incident["id"]), "incident_id": incident["id"], "targets": incident["assignees"],
            "created_by": None,
            "spec": {"subject": incident["name"], "message": text, "delivery_mode": "single",
                     "priority": PAGE_PRIORITY.get(incident["urgency"], "high"),
                     "repeat_interval_s": paging.get("repeat_interval_s"),
                     "escalation": list(paging.get("escalation") or [])}}


def run_actions(incident: dict, event: str, at: float) -> bool:
    """Record this event's run of the incident's actions; True when alert channels are to be told."""
    runs = dict(incident.get("action_runs") or {})
    notify = False
    for action in incident["actions"]:
        run = dict(runs.get(action) or {"runs": 0})
        run["runs"] += 1
        run["last_run_at"] = at
        run["last_event"] = event
        run["status"] = "done"
        if action == "trigger-alerts":
            notify = True
        else:
            run["reason"] = STATUSPAGE_UPDATED
        runs[action] = run
    incident["action_runs"] = runs
    return notify


def incident_view(incident: dict) -> dict:
    """What the API shows of an incident."""
    source = incident["source"]
    return {
        "id": incident["id"],
        "name": incident["name"],
        "description": incident["description"],
        "cause": incident["cause"],
        "status": incident["status"],
        "urgency": incident["urgency"],
        "impact": incident["impact"],
        "source": source,
        "monitor_id": incident["entity_id"] if source == "monitor" else None,
        "heartbeat_id": incident["entity_id"] if source == "heartbeat" else None,
        "webhook_id": incident["entity_id"] if source == "webhook" else None,
        "dedup_key": incident["dedup_key"],
        "team_id": incident["team_id"],
        "assignees": incident["assignees"],
        "component_ids": incident["component_ids"],
        "actions": incident["actions"],
        "ruleset_ids": incident["ruleset_ids"],
        "event_count": incident["event_count"],
        "reopened_count": incident["reopened_count"],
        "last_event": incident["last_event"],
        "last_event_at": iso(incident["last_event_at"]),
        "created_at": iso(incident["created_at"]),
        "updated_at": iso(incident["updated_at"]),
        "resolved_at": iso(incident["resolved_at"]),
        "acknowledged_at": iso(incident.get("acknowledged_at")),
        "acknowledged_by": incident.get("acknowledged_by"),
    }


def actions_view(incident: dict) -> list[dict]:
    runs = incident.get("action_runs") or {}
    views = []
    for action in incident["actions"]:
        run = runs.get(action)
        views.append({
            "action": action,
            "status": run["status"] if run else "pending",
            "runs": run["runs"] if run else 0,
            "last_run_at": iso(run["last_run_at"]) if run else None,
            "last_event": run.get("last_event") if run else None,
            "reason": run.get("reason") if run else None,
        })
    return views


def timeline_view(entry_: dict) -> dict:
    return {**entry_, "at": iso(entry_["at"])}
