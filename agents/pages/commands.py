"""Page commands and ticks → the organisation's `pages` table → notifications, replies.

1. the topic: `commands` (engine/commands.py applies them), keyed by the team
   (organisation) id, where its members, schedules and groups are:
   `page.create` (the API's, or an incident's), `page.acknowledge`,
   `page.cancel` (by an admin, or as `resolved` when its incident is), and `page.tick`, the
   timer's clock (agents/pages/__init__.py): time goes through the topic
   (invariant 3);
2. the state: `pages` (tables/pages.py), each page with its recipients and its
   clock, and each partition's due index of the pages' next timers;
3. the transitions: tables/pages.py, pure: open, fire what is due (expiry,
   escalation steps, repeats), acknowledge, end;
4. the events: every message a page asks for goes to notify()
   (agents/notification_channels/notify.py) under an id derived from (page,
   recipient, step or repeat number), before the page's state: a tick applied
   again after a crash asks for the same ids, which reach each channel once;
   a page of an incident (agents/incidents/fold.py sends page.create and, on
   resolution, page.cancel) acknowledges its incident on incident-signals
   and tells everyone paged when it is resolved; replies on `command-replies`.
"""
from __future__ import annotations

from typing import Any

from agents.incidents.signals import send_signal
from agents.notification_channels.notify import notify, person
from agents.on_call.reads import on_call
from agents.paging_groups.reads import group_members
from agents.teams.reads import live_members
from engine import topics
from engine.commands import CommandApplier
from tables.incidents import route_of_incident
from tables.pages import (
    DUE, Message, ack_token, acknowledge, due_ref, end, fire, is_recipient, link_expiry, message_id, new_page,
    next_due, open_page, page_key, page_view, parse_ref,
)

DUE_PER_TICK = 500     # pages one tick fires at most; the next tick takes the rest


class Unreachable(Exception):
    """A target names nobody who can be paged: the request is refused with why."""


def people_of(engine: Any, partition: int, org_id: str, mode: str, user_id: str | None, group_id: str | None,
              at: float) -> list[dict]:
    """Whom a target reaches now, in the team's partition."""
    members = live_members(engine, partition, org_id)
    if mode == "broadcast":
        return [{"user_id": uid, "name": m.get("name"), "email": m.get("email")} for uid, m in members.items()]
    if group_id is not None:
        people = group_members(engine, partition, org_id, group_id)
        if people is None:
            raise Unreachable(f"group {group_id} not found (GET /v1/groups lists them)")
        return people
    if user_id is not None:
        member = members.get(user_id)
        if member is None:
            raise Unreachable(f"{user_id} is not a member of this team (GET /v1/team/{{id}}/members lists them)")
        return [{"user_id": user_id, "name": member.get("name"), "email": member.get("email")}]
    seen: dict[str, dict] = {}
    for row in on_call(engine, partition, org_id, at):
        seen.setdefault(row["user_id"], {"user_id": row["user_id"], "name": row.get("name"), "email": row.get("email")})
    return list(seen.values())


def assignees(engine: Any, partition: int, org_id: str, targets: list[str]) -> list[dict]:
    """The members an incident's assignees name (by user id or email); others are names, not people."""
    members = live_members(engine, partition, org_id)
    by_email = {(m.get("email") or "").lower(): uid for uid, m in members.items()}
    found = dict.fromkeys(uid for uid in (t if t in members else by_email.get(t.lower()) for t in targets) if uid)
    return [{"user_id": uid, "name": members[uid].get("name"), "email": members[uid].get("email")} for uid in found]


def step_reach(engine: Any, partition: int, org_id: str, at: float):
    def reach(step: dict) -> list[dict]:
        try:
            return people_of(engine, partition, org_id, "single", step.get("target_user_id"),
                             step.get("target_group_id"), at)
        except Unreachable:
            return []  # the group was deleted, or the person left, meanwhile: the step reaches no one
    return reach


def tell(engine: Any, record: dict, messages: list[Message]) -> None:
    """Each message to its recipient's enabled, verified channels, with a one-click acknowledge link."""
    settings = engine.settings
    for message in messages:
        kind = {"s0": "page", "resolved": "resolved"}.get(message.label) or (
            "escalation" if message.label[0] == "s" else "repeat")
        link, text = None, record["message"]
        if kind == "resolved":
            subject = f"[resolved] {record['subject']}"
        else:
            token = ack_token(settings.jwt_secret, record["org_id"], record["id"], message.user_id,
                              link_expiry(record))
            link = f"{settings.public_base_url}/v1/pages/ack/{token}"
            subject, text = f"[{record['priority']}] {record['subject']}", f"{text}\n\nAcknowledge: {link}".lstrip()
        notify(engine, person(message.user_id), message.message_id, subject, text, message.due_at, link=link,
               data={"page_id": record["id"], "kind": kind, "label": message.label, "due_at": message.due_at,
                     "priority": record["priority"], "incident_id": record["incident_id"]})


def save(engine: Any, partition: int, record: dict) -> None:
    """Store the page with its one due-index entry at its next timer (none once it ended).

    The new entry first, the old one last: a flush cut short by a crash may
    leave a stale entry, which a tick finds stale and drops, never a page whose
    entry is gone (and whose timers would never fire).
    """
    ref, old = due_ref(record["org_id"], record["id"]), record["indexed_ms"]
    due = next_due(record)
    record["indexed_ms"] = None if due is None else int(due * 1000)
    if record["indexed_ms"] is not None and record["indexed_ms"] != old:
        engine.pages.put(partition, DUE.key(record["indexed_ms"], ref), 1)
    engine.pages.put(partition, page_key(record["org_id"], record["id"]), record)
    if old is not None and old != record["indexed_ms"]:
        engine.pages.delete(partition, DUE.key(old, ref))


def refused(applier: CommandApplier, command: dict, field: str, reason: str) -> None:
    applier.reply(command["id"], 422, {"error": "validation_error", "message": f"{field}: {reason}",
                                       "errors": {field: reason}})


def page_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: id, spec (schemas/page.py PageSpec), created_by, incident_id."""
    engine, org_id, body, at = applier.engine, command["org_id"], command["body"], float(command["at"])
    spec = body["spec"]
    existing = engine.pages.get(partition, page_key(org_id, body["id"]))
    if existing is not None:
        if existing["pos"] == offset:  # redelivered: answer again
            return applier.reply(command["id"], 201, created(existing))
        return applier.error(command, 409, "conflict", "a page with this id exists")
    try:
        people = assignees(engine, partition, org_id, body.get("targets") or []) or people_of(
            engine, partition, org_id, spec.get("delivery_mode") or "single", spec.get("target_user_id"),
            spec.get("target_group_id"), at)
        for n, step in enumerate(spec.get("escalation") or []):
            try:
                people_of(engine, partition, org_id, "single", step.get("target_user_id"),
                          step.get("target_group_id"), at)
            except Unreachable as exc:
                raise Unreachable(f"step {n + 1}: {exc}") from None
    except Unreachable as exc:
        return refused(applier, command, "target", str(exc))
    if not people:
        return refused(applier, command, "target", "no one to page: nobody is on call now and no target_user_id "
                                                   "was given")
    record = {**new_page(body["id"], org_id, spec, at, body.get("created_by"), body.get("incident_id")),
              "pos": offset}
    tell(engine, record, open_page(record, people))
    save(engine, partition, record)
    applier.reply(command["id"], 201, created(record))


def created(record: dict) -> dict:
    return {"message": "Page sent", "page_id": record["id"],
            "recipients": [{"user_id": r["user_id"], "name": r["name"], "email": r["email"]}
                           for r in record["recipients"]]}


def page_acknowledge(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: id, user_id (who acknowledges), admin (may acknowledge a page they did not receive),
    response_note, method."""
    engine, body = applier.engine, command["body"]
    record = engine.pages.get(partition, page_key(command["org_id"], body["id"]))
    if record is None or not (body.get("admin") or is_recipient(record, body.get("user_id"))):
        return applier.not_found(command, "page", body["id"])
    if record["pos"] < offset:  # not yet applied
        if record["status"] not in ("active", "acknowledged"):
            return applier.error(command, 409, "page_ended", f"the page was {record['status']}; nothing to "
                                                              "acknowledge")
        if acknowledge(record, body.get("user_id"), float(command["at"]), body.get("response_note"),
                       body.get("method")):
            record["pos"] = offset
            save(engine, partition, record)
            if record["incident_id"]:
                acknowledge_incident(applier, partition, offset, record)
    applier.reply(command["id"], 200, page_view(record))


def acknowledge_incident(applier: CommandApplier, partition: int, offset: int, record: dict) -> None:
    """Acknowledging an incident's page acknowledges the incident (agents/incidents/fold.py), once."""
    incident_id = record["incident_id"]
    route = route_of_incident(incident_id)
    send_signal(applier.engine, {
        "kind": "acknowledge", "id": f"{record['id']}:acknowledged", "route": route, "org_id": record["org_id"],
        "dedup_key": "-", "origin": f"{topics.COMMANDS}/{partition}", "origin_pos": offset,
        "at": record["acknowledged_at"], "source": "manual", "incident_id": incident_id,
        "acknowledged_by": record["acknowledged_by"], "note": record["response_note"], "method": record["method"]})


def page_cancel(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: id, status (cancelled, or resolved when its incident was); nobody waits for a resolve."""
    engine, body = applier.engine, command["body"]
    record = engine.pages.get(partition, page_key(command["org_id"], body["id"]))
    if record is None:
        return applier.not_found(command, "page", body["id"])
    if record["pos"] < offset:  # not yet applied
        at, status = float(command["at"]), body.get("status") or "cancelled"
        ended = end(record, status, at)
        if status == "resolved" and record.get("resolved_at") is None:  # everyone paged hears that it is over,
            record["resolved_at"] = at                                  # acknowledged or not
            tell(engine, record, [Message(r["user_id"], message_id(record["id"], r["user_id"], "resolved"),
                                          "resolved", at) for r in record["recipients"]])
        elif not ended:
            return applier.reply(command["id"], 200, page_view(record))
        record["pos"] = offset
        save(engine, partition, record)
    applier.reply(command["id"], 200, page_view(record))


class PageClock:
    """`page.tick`: what is due by the tick's clock fires, once; remembers which ticks were applied."""

    def __init__(self) -> None:
        self.ticks_applied: dict[int, float] = {}  # partition -> `at` of the last tick applied (this process)
        self.fired = 0

    def is_due(self, engine: Any, partition: int, now: float) -> bool:
        return bool(engine.pages.scan(partition, *DUE.until(int(now * 1000)), limit=1))

    def tick(self, applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
        engine, at = applier.engine, float(command["at"])
        for entry, indexed_ms, ref in DUE.due(engine.pages, partition, int(at * 1000), DUE_PER_TICK):
            org_id, page_id = parse_ref(ref)
            record = engine.pages.get(partition, page_key(org_id, page_id))
            if record is None or record["indexed_ms"] != indexed_ms:
                engine.pages.delete(partition, entry)
                continue  # ended or filed again elsewhere meanwhile
            messages = fire(record, at, step_reach(engine, partition, org_id, at))
            tell(engine, record, messages)
            self.fired += len(messages)
            save(engine, partition, record)  # moves the entry on, deleting this one after the record
        self.ticks_applied[partition] = at


CLOCK = PageClock()

COMMANDS = {"page.create": page_create, "page.acknowledge": page_acknowledge, "page.cancel": page_cancel,
            "page.tick": CLOCK.tick}
