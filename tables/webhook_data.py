"""What the webhooks agent keeps of each inbound webhook: its recent events, newest last.

Keys of the `webhook_data` table (all in the webhook's partition):

    <id> 00 's'                  runtime: position applied, counts, the open chunk of events
    <id> 00 'c' <n, 8 bytes>     the n-th sealed chunk of events

As in tables/monitor_data.py the runtime is the one value written per batch;
a chunk is sealed into a key of its own when it holds CHUNK events or
CHUNK_BYTES of them (payloads can be large: a sealed chunk must fit one Kafka
record), and only the newest KEEP_CHUNKS sealed chunks are kept, so a webhook's
history is bounded however much it receives. An event is stored as a row:

    [id, received_at, ip, content_type, parsed, body, matched ruleset ids, dedup key]

`parsed` says whether `body` is the JSON the request carried or its text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tables.entity_keys import SEP, chunk_key, prefix, runtime_key  # noqa: F401
from tables.monitor_views import iso

CHUNK = 20
CHUNK_BYTES = 256 * 1024
KEEP_CHUNKS = 25
ROW_FIELDS = ("id", "received_at", "ip", "content_type", "parsed", "body", "matched_rulesets", "dedup_key")


@dataclass(slots=True)
class Appended:
    sealed_chunk: tuple[int, list] | None = None
    expired_chunk: int | None = None


@dataclass(slots=True)
class WebhookRuntime:
    pos: int = -1
    received: int = 0
    last_received_at: float | None = None
    recent: list = field(default_factory=list)
    recent_bytes: int = 0
    sealed_chunks: int = 0

    def append(self, row: list, pos: int) -> Appended:
        appended = Appended()
        size = len(orjson.dumps(row))
        if self.recent and self.recent_bytes + size > CHUNK_BYTES:
            appended = self._seal()
        self.pos = pos
        self.received += 1
        self.last_received_at = row[1]
        self.recent.append(row)
        self.recent_bytes += size
        if len(self.recent) >= CHUNK and appended.sealed_chunk is None:
            appended = self._seal()
        return appended

    def _seal(self) -> Appended:
        appended = Appended(sealed_chunk=(self.sealed_chunks, self.recent))
        self.recent, self.recent_bytes = [], 0
        self.sealed_chunks += 1
        if self.sealed_chunks > KEEP_CHUNKS:
            appended.expired_chunk = self.sealed_chunks - KEEP_CHUNKS - 1
        return appended

    def to_dict(self) -> dict:
        return {"pos": self.pos, "received": self.received, "last_received_at": self.last_received_at,
                "recent": self.recent, "recent_bytes": self.recent_bytes, "sealed_chunks": self.sealed_chunks}

    @classmethod
    def from_dict(cls, d: dict) -> WebhookRuntime:
        return cls(**d)


def decode_value(key: bytes, raw: bytes) -> Any:
    data = orjson.loads(raw)
    return WebhookRuntime.from_dict(data) if key.endswith(SEP + b"s") else data


def encode_value(value: Any) -> bytes:
    return orjson.dumps(value.to_dict() if hasattr(value, "to_dict") else value)


def event_view(row: list) -> dict:
    event = dict(zip(ROW_FIELDS, row))
    event["received_at"] = iso(event["received_at"])
    return event


def recent_events(data: Any, partition: int, webhook_id: str, limit: int, before: float | None) -> list[dict]:
    """Newest first, received strictly before `before` when given; reads only the chunks needed."""
    runtime = data.get(partition, runtime_key(webhook_id))
    if runtime is None:
        return []
    found: list[list] = []

    def take(rows: list) -> bool:
        for row in reversed(rows):
            if before is None or row[1] < before:
                found.append(row)
                if len(found) >= limit:
                    return True
        return False

    if not take(runtime.recent):
        for number in range(runtime.sealed_chunks - 1, max(-1, runtime.sealed_chunks - KEEP_CHUNKS - 1), -1):
            rows = data.get(partition, chunk_key(webhook_id, number))
            if rows is not None and take(rows):
                break
    return [event_view(row) for row in found]


def webhook_view(config: dict, runtime: WebhookRuntime | None) -> dict:
    return {"id": config["id"], **config["spec"],
            "events_received": runtime.received if runtime else 0,
            "last_received_at": iso(runtime.last_received_at) if runtime else None,
            "created_at": iso(config["created_at"])}
