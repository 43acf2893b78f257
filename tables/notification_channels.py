"""Notification channels: each owner's channels in one record, and each delivery to one channel. Pure logic.

An owner is a person (`user:<user id>`) or a team (`team:<team id>`). Table
`notification_channels` (key: the JSON-encoded owner, in the owner's partition;
written by agents/notification_channels/commands.py only) holds

    {"owner", "channels": {id: channel}, "codes_sent": [times], "pos"}

and a channel is {"id", "type", "name", "priority", "enabled", "verified",
"verified_at", "address" | "phone" | "url", "sealed_url" (apprise: the URL,
sealed), "url_hint", "secret" (webhook: sealed signing secret),
"secret_prefix", "code" (a verification code record, tables/accounts.py),
"created_at", "updated_at", "pos"}. A channel receives messages only when
enabled and verified; its verification code is the one thing an unverified or
disabled channel is sent.

Table `notification_deliveries` (owner's partition; written by
agents/notification_channels/fold.py only):

    <owner> 00 'd' <channel> 00 <created ms, 8 bytes> <message id>   a delivery and its attempts
    <owner> 00 'm' <channel> 00 <message id>                         dedup: that delivery's key
    <owner> 00 'k' <channel>                                         deliveries kept for the channel
    01 <due ms, 8 bytes> <delivery key>                              due index: pending, by next attempt

The dedup key is written in the same flush as the delivery, before any
attempt: a message id reaches a channel's log once (among its last
KEEP_DELIVERIES). An attempt is claimed on the topic, and made only if its
claim is the first of that attempt number the fold sees; one found claimed
without an outcome (its worker died or lost the partition
mid-send), or one that timed out, is never made again: it ends `unknown`.
"""
from __future__ import annotations

from typing import Any

from tables.alert_channels import delivery_progress
from tables.entity_keys import SEP
from tables.monitor_views import iso

MAX_CHANNELS = 20           # per owner
KEEP_DELIVERIES = 200       # per channel, newest kept (and every one still pending)
MAX_ATTEMPTS = 6            # attempts with a definite failure before a delivery is given up
INITIAL_BACKOFF = 2.0       # seconds before the first retry; doubles each time
MAX_BACKOFF = 300.0
CODES_PER_HOUR = 10         # verification codes an owner may have sent an hour (all channels)
DUE = b"\x01"
#: what kinds of message exist: a message for the owner, a channel's verification code, a test
KINDS = ("message", "code", "test")
#: which field names each type's destination
TARGET_FIELD = {"email": "address", "webhook": "url", "sms": "phone", "voice": "phone", "apprise": "url"}


def person(user_id: str) -> str:
    return f"user:{user_id}"


def team(team_id: str) -> str:
    return f"team:{team_id}"


# -- the channels record -----------------------------------------------------------------


def deliverable(record: dict | None) -> list[dict]:
    """The channels that receive messages (enabled and verified), in priority order (then oldest first)."""
    if record is None:
        return []
    chosen = [c for c in record["channels"].values() if c["enabled"] and c["verified"]]
    return sorted(chosen, key=lambda c: (c["priority"], c["created_at"], c["id"]))


def ordered(record: dict | None) -> list[dict]:
    if record is None:
        return []
    return sorted(record["channels"].values(), key=lambda c: (c["priority"], c["created_at"], c["id"]))


def may_send_code(record: dict, now: float) -> bool:
    return len([at for at in record.get("codes_sent", []) if at > now - 3600]) < CODES_PER_HOUR


def with_code_sent(record: dict, now: float) -> dict:
    return {**record, "codes_sent": [at for at in record.get("codes_sent", []) if at > now - 3600] + [now]}


def masked_url(url: str) -> str:
    """What is shown of a secret URL: its scheme and its last four characters, never more than a quarter of it."""
    scheme, _, rest = url.partition("://")
    tail = rest[-4:] if len(rest) >= 16 else ""
    return f"{scheme}://****{tail}"


def channel_view(channel: dict) -> dict[str, Any]:
    """What the API shows of a channel: never a secret (an apprise URL shows its scheme and a masked tail)."""
    view = {
        "id": channel["id"],
        "type": channel["type"],
        "name": channel["name"],
        "priority": channel["priority"],
        "enabled": channel["enabled"],
        "verified": channel["verified"],
        "verified_at": iso(channel.get("verified_at")),
        "created_at": iso(channel["created_at"]),
        "updated_at": iso(channel["updated_at"]),
    }
    if channel["type"] == "email":
        view["address"] = channel["address"]
    elif channel["type"] in ("sms", "voice"):
        view["phone"] = channel["phone"]
    elif channel["type"] == "webhook":
        view["url"] = channel["url"]
        view["secret_prefix"] = channel["secret_prefix"]
    else:
        view["url"] = channel["url_hint"]
    return view


# -- deliveries --------------------------------------------------------------------------


def _channel_head(owner: str, channel_id: str, kind: bytes) -> bytes:
    return owner.encode() + SEP + kind + channel_id.encode() + SEP


def delivery_key(owner: str, channel_id: str, at: float, message_id: str) -> bytes:
    return _channel_head(owner, channel_id, b"d") + int(at * 1000).to_bytes(8, "big") + message_id.encode()


def deliveries_range(owner: str, channel_id: str) -> tuple[bytes, bytes]:
    head = _channel_head(owner, channel_id, b"d")
    return head, head + b"\xff" * 9


def dedup_key(owner: str, channel_id: str, message_id: str) -> bytes:
    return _channel_head(owner, channel_id, b"m") + message_id.encode()


def kept_key(owner: str, channel_id: str) -> bytes:
    return owner.encode() + SEP + b"k" + channel_id.encode()


def channel_range(owner: str, channel_id: str) -> list[tuple[bytes, bytes]]:
    """Every key range of one channel's deliveries (for a purge)."""
    ranges = []
    for kind in (b"d", b"m"):
        head = _channel_head(owner, channel_id, kind)
        ranges.append((head, head[:-1] + b"\x01"))
    return ranges


def due_key(due_at: float, key: bytes) -> bytes:
    return DUE + int(due_at * 1000).to_bytes(8, "big") + key


def due_until(now: float) -> tuple[bytes, bytes]:
    return DUE, DUE + (int(now * 1000) + 1).to_bytes(8, "big")


def delivery_of_due(key: bytes) -> bytes:
    return key[9:]


def backoff(failed_attempts: int) -> float:
    return min(INITIAL_BACKOFF * 2 ** (failed_attempts - 1), MAX_BACKOFF)


def in_doubt(delivery: dict) -> bool:
    """Was an attempt claimed whose outcome never came back? It may have reached the receiver."""
    return delivery.get("claimed", 0) > len(delivery["attempts"])


def record_attempt(delivery: dict, attempt: dict) -> str:
    """Add one attempt's outcome; the delivery's new status: delivered, pending, failed or unknown.

    `attempt["outcome"]`: "sent", "failed" (certainly not received: try again after
    a backoff) or "unknown" (may have been received: never tried again).
    """
    delivery["attempts"].append(attempt)
    failed = len(delivery["attempts"])
    outcome = attempt["outcome"]
    if outcome == "sent":
        delivery["status"], delivery["next_attempt_at"] = "delivered", None
    elif outcome == "unknown":
        delivery["status"], delivery["next_attempt_at"] = "unknown", None
        delivery["reason"] = "the outcome of the last attempt is unknown; not repeated so as not to send twice"
    elif attempt.get("final") or failed >= MAX_ATTEMPTS:
        delivery["status"], delivery["next_attempt_at"] = "failed", None
        delivery["reason"] = attempt.get("error") if attempt.get("final") else f"gave up after {failed} attempts"
    else:
        delivery["next_attempt_at"] = attempt["at"] + backoff(failed)
    return delivery["status"]


def delivery_view(delivery: dict) -> dict:
    return {"id": delivery["id"], "kind": delivery["kind"], "subject": delivery["subject"],
            **delivery_progress(delivery)}


def rendered(delivery: dict, code: str | None = None) -> tuple[str, str]:
    """(subject, text) a delivery sends; a code stands on a line of its own, so a person or a script finds it."""
    if delivery["kind"] == "code":
        return ("Your pingstream verification code",
                f"Your verification code: {code}\n\nEnter it to verify this notification channel "
                f"({delivery['channel_name']}) for pingstream.\nIf you did not ask for it, ignore this message.")
    text = delivery["text"]
    if delivery.get("link"):
        text = f"{text}\n\n{delivery['link']}"
    return delivery["subject"], text
