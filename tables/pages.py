"""Pages: a message to people that repeats and escalates until someone acknowledges it. Pure rules.

Keys of the `pages` table, in the organisation's partition (the team's own,
where its members, schedules and groups are), written by the page commands
only (agents/pages/commands.py):

    <org> 00 <page id>               -> the page (below)
    00 'pdue' <ms, 8 bytes> <org>/<page id>  -> 1: the page's next timer (DueIndex)

A page's clock is its own record: `next_step_at` (the next escalation step),
`next_repeat_at` (the next repeat to everyone paged), `expires_at`. `fire`
does what is due by a tick's clock, and nothing it did before: every message
it asks for has an id derived from (page, recipient, step or repeat number),
so a tick applied again after a crash asks for the same messages, which the
delivery dedup (per message id and channel) sends once.

Escalation step k fires `delay_seconds` after step k-1 (step 0: the page
itself). A step reaches its user or group; `repeat_page` sends the page again
to everyone already paged. A recipient gets at most one message per page per
repeat interval: a repeat skips whoever a step reached less than an interval ago.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from tables.entity_keys import DueIndex, item_key
from tables.monitor_views import iso

DUE = DueIndex(b"\x00pdue")
STATUSES = ("active", "acknowledged", "cancelled", "expired", "resolved")
PRIORITIES = ("low", "normal", "high", "critical")
ENDED = ("acknowledged", "cancelled", "expired", "resolved")
LINK_LIFETIME = 7 * 24 * 3600.0   # an acknowledge link of a page that never expires works this long
EPSILON = 0.001                    # seconds: float sums of due times compare within a millisecond


def page_key(org_id: str, page_id: str) -> bytes:
    return item_key(org_id, page_id)


def due_ref(org_id: str, page_id: str) -> str:
    return f"{org_id}/{page_id}"


def parse_ref(ref: str) -> tuple[str, str]:
    org_id, _, page_id = ref.partition("/")
    return org_id, page_id


@dataclass(frozen=True, slots=True)
class Message:
    """One message a page asks for: to `user_id`, with an id that names it once and for all."""

    user_id: str
    message_id: str
    label: str          # "s0" the page, "s<k>" escalation step k, "r<n>" the n-th repeat
    due_at: float


def new_page(page_id: str, org_id: str, spec: dict, at: float, created_by: str | None,
             incident_id: str | None = None) -> dict:
    """The record of a page as asked (schemas/page.py PageSpec), before anyone is paged."""
    escalation = list(spec.get("escalation") or [])
    expires = spec.get("expires_minutes")
    interval = spec.get("repeat_interval_s")
    return {
        "id": page_id, "org_id": org_id, "subject": spec["subject"], "message": spec.get("message") or "",
        "priority": spec.get("priority") or "normal", "delivery_mode": spec.get("delivery_mode") or "single",
        "target_user_id": spec.get("target_user_id"), "target_group_id": spec.get("target_group_id"),
        "repeat_interval_s": interval, "escalation": escalation, "incident_id": incident_id,
        "created_at": at, "created_by": created_by, "status": "active", "ended_at": None,
        "expires_at": at + expires * 60 if expires else None,
        "recipients": [], "step": 0, "repeat": 0,
        "next_step_at": at + escalation[0]["delay_seconds"] if escalation else None,
        "next_repeat_at": at + interval if interval else None,
        "first_sent_at": None, "acknowledged_at": None, "acknowledged_by": None, "response_note": None,
        "method": None, "indexed_ms": None,
    }


def message_id(page_id: str, user_id: str, label: str) -> str:
    return f"page:{page_id}:{user_id}:{label}"


def _reach(record: dict, people: list[dict], label: str, due: float, step: int) -> list[Message]:
    """Add `people` not yet paged as recipients, and ask a message for each of them."""
    known = {r["user_id"]: r for r in record["recipients"]}
    messages = []
    for person in people:
        recipient = known.get(person["user_id"])
        if recipient is None:
            recipient = {"user_id": person["user_id"], "name": person.get("name"), "email": person.get("email"),
                         "step": step, "first_sent_at": None, "last_sent_at": None, "messages": 0}
            record["recipients"].append(recipient)
            known[person["user_id"]] = recipient
        messages.append(_sent(record, recipient, label, due))
    return messages


def _sent(record: dict, recipient: dict, label: str, due: float) -> Message:
    recipient["first_sent_at"] = recipient["first_sent_at"] or due
    recipient["last_sent_at"] = due
    recipient["messages"] += 1
    record["first_sent_at"] = record["first_sent_at"] or due
    return Message(recipient["user_id"], message_id(record["id"], recipient["user_id"], label), label, due)


def open_page(record: dict, people: list[dict]) -> list[Message]:
    """The page itself, to its first recipients, at its creation."""
    return _reach(record, people, "s0", record["created_at"], 0)


def fire(record: dict, at: float, reach: Callable[[dict], list[dict]]) -> list[Message]:
    """Everything due by `at` that has not happened: expiry, escalation steps, the latest repeat.

    `reach(step)`: the people an escalation step's target names now.
    """
    if record["status"] != "active":
        return []
    if record["expires_at"] is not None and record["expires_at"] <= at + EPSILON:
        end(record, "expired", record["expires_at"])
        return []
    messages: list[Message] = []
    escalation = record["escalation"]
    while record["next_step_at"] is not None and record["next_step_at"] <= at + EPSILON:
        due = record["next_step_at"]
        step = escalation[record["step"]]
        record["step"] += 1
        number = record["step"]
        record["next_step_at"] = due + escalation[number]["delay_seconds"] if number < len(escalation) else None
        already = [r for r in record["recipients"]]
        messages += _reach(record, reach(step), f"s{number}", due, number)
        if step.get("repeat_page"):
            reached = {m.user_id for m in messages}
            messages += [_sent(record, r, f"s{number}", due) for r in already if r["user_id"] not in reached]
    interval = record["repeat_interval_s"]
    while interval and record["next_repeat_at"] is not None and record["next_repeat_at"] <= at + EPSILON:
        due = record["next_repeat_at"]
        record["repeat"] += 1
        record["next_repeat_at"] = due + interval
        if record["next_repeat_at"] <= at + EPSILON:
            continue  # more than an interval late (a worker was down): only the latest repeat goes
        for recipient in record["recipients"]:
            last = recipient["last_sent_at"]
            if last is None or due - last >= interval - EPSILON:  # at most one message per interval
                messages.append(_sent(record, recipient, f"r{record['repeat']}", due))
    return messages


def next_due(record: dict) -> float | None:
    """When the page's next timer is due; None once it ended or has nothing left to do."""
    if record["status"] != "active":
        return None
    times = [t for t in (record["next_step_at"], record["next_repeat_at"] if record["repeat_interval_s"] else None,
                         record["expires_at"]) if t is not None]
    return min(times) if times else None


def end(record: dict, status: str, at: float) -> bool:
    """Stop the page (acknowledged, cancelled, expired, resolved); False when it had ended already."""
    if record["status"] != "active":
        return False
    record["status"], record["ended_at"] = status, at
    return True


def acknowledge(record: dict, user_id: str | None, at: float, note: str | None, method: str | None) -> bool:
    if not end(record, "acknowledged", at):
        return False
    record.update(acknowledged_at=at, acknowledged_by=user_id, response_note=note, method=method or "api")
    return True


def is_recipient(record: dict, user_id: str | None) -> bool:
    return any(r["user_id"] == user_id for r in record["recipients"])


def page_view(record: dict) -> dict:
    return {
        "id": record["id"], "subject": record["subject"], "message": record["message"],
        "priority": record["priority"], "delivery_mode": record["delivery_mode"], "status": record["status"],
        "target_user_id": record["target_user_id"], "target_group_id": record["target_group_id"],
        "repeat_interval_s": record["repeat_interval_s"], "escalation": record["escalation"],
        "escalation_step": record["step"], "repeats_sent": record["repeat"], "incident_id": record["incident_id"],
        "created_by": record["created_by"],
        "recipients": [{"user_id": r["user_id"], "name": r["name"], "email": r["email"], "step": r["step"],
                        "first_sent_at": iso(r["first_sent_at"]) if r["first_sent_at"] else None,
                        "last_sent_at": iso(r["last_sent_at"]) if r["last_sent_at"] else None,
                        "messages": r["messages"]} for r in record["recipients"]],
        "created_at": iso(record["created_at"]),
        "first_sent_at": iso(record["first_sent_at"]) if record["first_sent_at"] else None,
        "expires_at": iso(record["expires_at"]) if record["expires_at"] else None,
        "acknowledged_at": iso(record["acknowledged_at"]) if record["acknowledged_at"] else None,
        "acknowledged_by": record["acknowledged_by"], "response_note": record["response_note"],
        "method": record["method"], "ended_at": iso(record["ended_at"]) if record["ended_at"] else None,
    }


# -- one-click acknowledge links -------------------------------------------------------------------


def _link_key(secret: str) -> bytes:
    return hashlib.sha256(b"page-ack\x00" + secret.encode()).digest()  # not the key of any other token


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def link_expiry(record: dict) -> float:
    return record["expires_at"] or record["created_at"] + LINK_LIFETIME


def ack_token(secret: str, org_id: str, page_id: str, user_id: str, expires_at: float) -> str:
    """A token naming (team, page, recipient) until `expires_at`, signed with HMAC-SHA256."""
    payload = _b64(orjson.dumps({"o": org_id, "p": page_id, "u": user_id, "x": int(expires_at)}))
    signature = _b64(hmac.new(_link_key(secret), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def read_ack_token(secret: str, token: str, now: float) -> tuple[str, str, str] | str:
    """(org id, page id, user id) of a valid token; otherwise why not ("invalid" or "expired")."""
    payload, _, signature = token.partition(".")
    expected = _b64(hmac.new(_link_key(secret), payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature, expected):
        return "invalid"
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        org_id, page_id, user_id, expires = claims["o"], claims["p"], claims["u"], claims["x"]
    except (ValueError, KeyError, TypeError):
        return "invalid"
    if expires < now:
        return "expired"
    return org_id, page_id, user_id
