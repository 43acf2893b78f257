"""What the API knows of the directory topic (engine/directory.py): which monitors, heartbeats, webhooks exist.

Every API process follows the directory from its start, so ingest needs no
worker: `POST /v1/checks` admits the results of the caller's own monitors,
a check-in its heartbeat if enabled, a webhook event its webhook, all from
memory. The worker still drops items of an entity deleted meanwhile, to
dead-letters. About 100 bytes per entity; organisation ids are shared.
"""
from __future__ import annotations

import sys

import orjson

from engine.directory import HEARTBEAT, MONITOR, WEBHOOK


class Directory:
    def __init__(self) -> None:
        self.monitors: dict[str, str] = {}              # monitor id -> its organisation
        self.heartbeats: dict[str, tuple[str, bool]] = {}  # heartbeat id -> (organisation, enabled)
        self.webhooks: dict[str, str] = {}              # webhook id -> its organisation

    def apply(self, key: bytes, value: bytes | None) -> None:
        kind, _, entity_id = key.decode().partition(":")
        if value is None:  # deleted
            {MONITOR: self.monitors, HEARTBEAT: self.heartbeats, WEBHOOK: self.webhooks}[kind].pop(entity_id, None)
            return
        entry = orjson.loads(value)
        org_id = sys.intern(entry["org_id"])
        if kind == MONITOR:
            self.monitors[entity_id] = org_id
        elif kind == HEARTBEAT:
            self.heartbeats[entity_id] = (org_id, entry["enabled"])
        elif kind == WEBHOOK:
            self.webhooks[entity_id] = org_id

    def unknown_monitors(self, org_id: str, monitor_ids: set[str]) -> set[str]:
        """Those of `monitor_ids` that are not monitors of `org_id` (another organisation's count as unknown)."""
        monitors = self.monitors
        return {monitor_id for monitor_id in monitor_ids if monitors.get(monitor_id) != org_id}

    def heartbeat_enabled(self, heartbeat_id: str) -> bool | None:
        """None if no such heartbeat; else whether it takes check-ins."""
        known = self.heartbeats.get(heartbeat_id)
        return None if known is None else known[1]

    def webhook_owner(self, webhook_id: str) -> str | None:
        return self.webhooks.get(webhook_id)
