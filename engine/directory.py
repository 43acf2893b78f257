"""The directory: which monitors, heartbeats and webhooks exist, whose they are, and how a monitor is checked.

Topic `directory` (compacted, keyed like the entity: an entry lives in the
entity's partition) holds one entry per entity under `<kind>:<id>`; a deleted
entity leaves a tombstone. The agent owning the entity publishes its entry in
the same flush as the change, before the reply (tables/store.py sends events
first), so whoever has the reply can find the entry on the topic.

Who follows it: every API process, so ingest (`POST /v1/checks`, check-ins,
webhook events) knows what exists and whose it is without asking a worker,
and keeps answering while partitions move (api/directory.py); probes, for
what to check.
"""
from __future__ import annotations

import orjson

from engine import topics
from tables.store import StateStore

MONITOR, HEARTBEAT, WEBHOOK = "monitor", "heartbeat", "webhook"


def entry_key(kind: str, entity_id: str) -> bytes:
    return f"{kind}:{entity_id}".encode()


def monitor_entry(config: dict) -> dict:
    """What probes check and the API admits results for: the monitor's spec, owner, and whether it is paused."""
    return {"kind": MONITOR, "id": config["id"], "org_id": config["org_id"], "paused": config["paused"],
            "spec": config["spec"], "updated_at": config["updated_at"]}


def heartbeat_entry(config: dict) -> dict:
    return {"kind": HEARTBEAT, "id": config["id"], "org_id": config["org_id"],
            "enabled": config["spec"].get("enabled", True)}


def webhook_entry(config: dict) -> dict:
    return {"kind": WEBHOOK, "id": config["id"], "org_id": config["org_id"]}


def publish(state: StateStore, partition: int, entry: dict) -> None:
    state.emit(topics.DIRECTORY, entry_key(entry["kind"], entry["id"]), orjson.dumps(entry), partition)


def withdraw(state: StateStore, partition: int, kind: str, entity_id: str) -> None:
    """The entity is deleted: a tombstone, so compaction forgets it."""
    state.emit(topics.DIRECTORY, entry_key(kind, entity_id), None, partition)
