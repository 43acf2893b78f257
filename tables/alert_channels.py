"""Alert channels: their view, and each delivery to one: the signed request, its attempts, when to try again.

Pure logic. Keys of the alert channel deliveries table (changelogged as
`deliveries`; in the channel's partition, written by agents/alert_channels/fold.py only):

    <channel> 00 's'                                 runtime: last position applied, deliveries kept
    <channel> 00 'd' <event ms, 8 bytes> <id>        one delivery and its attempts
    01 <due ms, 8 bytes> <delivery key>              due index: pending deliveries by next attempt

A delivery is retried with exponential backoff (initial, 2x, 4x ... at most
MAX_BACKOFF) until it succeeds or `max_attempts` attempts have failed; then it
is given up and dead-lettered. Every attempt is recorded. Receivers verify
`X-Pingstream-Signature: sha256=<hex HMAC-SHA256(secret, "<delivery id>.<timestamp>.<raw body>")>`
with `X-Pingstream-Delivery` and `X-Pingstream-Timestamp` (each attempt is
signed afresh, so a receiver may reject stale timestamps to stop replays; the
id is signed, so a receiver deduplicating on it cannot be fooled by a changed
header; the event name is in the body).
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tables.entity_keys import SEP, prefix, runtime_key  # noqa: F401
from tables.monitor_views import iso

DUE = b"\x01"
KEEP_DELIVERIES = 500      # per channel, newest kept
#: the organisation index collection of alert channels (its first name, kept in stored indexes)
COLLECTION = "alerts"
MAX_BACKOFF = 3600.0
SIGNATURE_HEADER = "X-Pingstream-Signature"
TIMESTAMP_HEADER = "X-Pingstream-Timestamp"
DELIVERY_HEADER = "X-Pingstream-Delivery"
EVENT_HEADER = "X-Pingstream-Event"


def delivery_key(channel_id: str, at: float, delivery_id: str) -> bytes:
    return channel_id.encode() + SEP + b"d" + int(at * 1000).to_bytes(8, "big") + delivery_id.encode()


def deliveries_range(channel_id: str) -> tuple[bytes, bytes]:
    head = channel_id.encode() + SEP + b"d"
    return head, head + b"\xff" * 9


def due_key(due_at: float, key: bytes) -> bytes:
    return DUE + int(due_at * 1000).to_bytes(8, "big") + key


def due_until(now: float) -> tuple[bytes, bytes]:
    return DUE, DUE + (int(now * 1000) + 1).to_bytes(8, "big")


def delivery_of_due(key: bytes) -> bytes:
    return key[9:]


def backoff(failed_attempts: int, initial: float) -> float:
    """Seconds to wait after the n-th failed attempt: initial, 2x, 4x, ... at most MAX_BACKOFF."""
    return min(initial * 2 ** (failed_attempts - 1), MAX_BACKOFF)


def signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(secret: str, timestamp: int, body: bytes, delivery_id: str, event: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "pingstream-webhooks/1",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, delivery_id, timestamp, body),
        DELIVERY_HEADER: delivery_id,
        EVENT_HEADER: event,
    }


def succeeded(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def record_attempt(delivery: dict, attempt: dict, channel: dict | None) -> str:
    """Add one attempt's outcome; returns the delivery's new status: delivered, pending or failed."""
    delivery["attempts"].append(attempt)
    failed = len(delivery["attempts"])
    if succeeded(attempt.get("status_code")):
        delivery["status"], delivery["next_attempt_at"] = "delivered", None
    elif channel is None:
        delivery["status"], delivery["next_attempt_at"] = "failed", None
        delivery["reason"] = "the alert channel was deleted"
    elif failed >= channel["spec"]["max_attempts"]:
        delivery["status"], delivery["next_attempt_at"] = "failed", None
        delivery["reason"] = f"gave up after {failed} attempts"
    else:
        delivery["next_attempt_at"] = attempt["at"] + backoff(failed, channel["spec"]["initial_backoff_seconds"])
    return delivery["status"]


def delivery_view(delivery: dict) -> dict:
    return {"id": delivery["id"], "event": delivery["event"], **delivery_progress(delivery)}


def delivery_progress(delivery: dict) -> dict:
    """How a delivery went, as its log shows it (alert channels' and notification channels' deliveries alike)."""
    return {
        "status": delivery["status"],
        "reason": delivery.get("reason"),
        "created_at": iso(delivery["created_at"]),
        "next_attempt_at": iso(delivery["next_attempt_at"]),
        "attempts": [{**attempt, "at": iso(attempt["at"])} for attempt in delivery["attempts"]],
    }


def channel_view(channel: dict) -> dict[str, Any]:
    """What the API shows of an alert channel; never the secret (the API adds it once, when just made)."""
    view = {
        "id": channel["id"],
        **channel["spec"],
        "secret_prefix": channel.get("secret_prefix") or channel["secret"][:12],  # stored sealed since
        "secret_rotated_at": iso(channel.get("secret_rotated_at")),
        "created_at": iso(channel["created_at"]),
        "updated_at": iso(channel["updated_at"]),
    }
    return view


#: how people are told what happened, by event
SAID = {
    "monitor.down": "is down", "monitor.recovered": "is up again", "heartbeat.down": "is down (no check-in)",
    "heartbeat.recovered": "is up again", "incident.created": "incident opened",
    "incident.updated": "incident updated",
    "incident.resolved": "incident resolved", "monitor.certificate_expiring": "certificate expires soon",
    "monitor.certificate_changed": "certificate changed", "monitor.domain_expiring": "domain expires soon",
    "monitor.domain_renewed": "domain renewed", "status_page.updated": "status page updated",
}


def told(event: str, at: float, data: dict, name: str | None = None) -> tuple[str, str]:
    """The subject and text people get for an event: what it is about, its status, cause and time."""
    what = (name or data.get("name") or data.get("monitor_id") or data.get("heartbeat_id") or data.get("id")
            or "pingstream")
    said = SAID.get(event, event)
    lines = [f"{what} {said}."]
    if data.get("status"):
        before = data.get("previous_status")
        lines.append(f"Status: {before} -> {data['status']}" if before else f"Status: {data['status']}")
    if data.get("cause"):
        lines.append(f"Cause: {data['cause']}")
    if data.get("message"):
        lines.append(f"Message: {data['message']}")
    lines += [f"At: {iso(at)}", f"Event: {event}"]
    return f"[pingstream] {what} {said}", "\n".join(lines)
