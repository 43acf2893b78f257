"""directory → which registrable domain each monitor names → `name` messages to the domains' partitions.

1. the topic: `directory` (compacted, engine/directory.py), read whole by this
   worker's group: an entry `monitor:<id>` per monitor, in the monitor's
   partition, published by the monitors' commands on every create and change;
   a tombstone when it is deleted. Other kinds are not ours;
2. the state: the monitor's naming record (tables/certificates.py naming_key),
   remembering the directory offset it last applied;
3. the transitions: the monitor's host → its registrable domain
   (tables/certificates.py registrable_domain); a change of domain unnames the
   old one and names the new;
4. the events: `name` (named true/false) on `certificates`, keyed by the domain,
   to the domain's partition, whose fold keeps who names it; `purge` to the
   monitor's own partition when it is deleted, and `certificate.reminders.purge`
   on `commands` for its reminders.

So agents/monitors knows nothing of domains: the directory it already
publishes says everything this needs.
"""
from __future__ import annotations

import time
from typing import Any

import orjson

from engine import directory, topics
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key, partition_for
from tables import certificates as rules


class MonitorDomains:
    """Folds `monitor:` entries of owned partitions of `directory` into naming records."""

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        self.state = engine.state
        self.data = engine.certificates
        self.partitions = engine.settings.partitions
        self.dead_letters = dead_letters
        self.named = 0

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        raise TypeError("the directory is folded by key: fold_keyed_message")

    def fold_keyed_message(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        kind, _, monitor_id = (key or b"").decode(errors="replace").partition(":")
        if kind != directory.MONITOR or not monitor_id:
            return
        naming = self.data.get(partition, rules.naming_key(monitor_id))
        if naming is not None and naming["pos"] >= offset:
            return  # applied before
        try:
            entry = None if value is None else orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            self.dead_letters.send(topics.DIRECTORY, partition, offset, 0, value, f"not JSON: {exc}")
            return
        now = time.time()
        before = naming["domain"] if naming is not None else None
        domain = None if entry is None else rules.registrable_domain(rules.host_of(entry.get("spec") or {}))
        if entry is None:  # its runtime, and its reminders (the commands agent's keys: a command asks for them)
            self.tell(topics.CERTIFICATES, monitor_id, {"kind": "purge", "monitor_id": monitor_id, "at": now})
            self.tell(topics.COMMANDS, monitor_id, {
                "id": f"purge-reminders:{monitor_id}:{partition}-{offset}", "kind": "certificate.reminders.purge",
                "org_id": naming["org_id"] if naming else None, "entity_id": monitor_id, "body": {}, "at": now})
        if before is not None and before != domain:
            self.tell(topics.CERTIFICATES, before, {"kind": "name", "named": False, "domain": before,
                                                    "monitor_id": monitor_id, "at": now})
        if domain is not None and (domain != before or naming.get("org_id") != entry["org_id"]):
            self.tell(topics.CERTIFICATES, domain, {"kind": "name", "named": True, "domain": domain,
                                                    "monitor_id": monitor_id, "org_id": entry["org_id"], "at": now})
            self.named += 1
        if entry is None:
            self.data.delete(partition, rules.naming_key(monitor_id))
        else:
            self.data.put(partition, rules.naming_key(monitor_id),
                          {"pos": offset, "domain": domain, "org_id": entry["org_id"]})

    def tell(self, topic: str, key: str, message: dict) -> None:
        self.state.emit(topic, entity_key(key), orjson.dumps(message), partition_for(key, self.partitions))
