"""Incident commands: create and update by hand go to the route's partition of incident-signals; lists are kept.

* incident.create / incident.update (entity id = the incident route) are
  forwarded as signals; the incidents fold (agents/incidents/fold.py) applies
  them and replies, so the API waits on the partition that owns the incident;
* incident.index (entity id = the organisation) (un)lists an incident in the
  organisation's incident lists (tables/org_index.py, one collection per filter).
"""
from __future__ import annotations

from agents.incidents.signals import send_signal
from engine import topics
from engine.commands import CommandApplier
from tables import org_index


def incident_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """Forwarded to the route's partition of incident-signals, whose fold replies (entity id = route)."""
    body = dict(command["body"])
    route = command["entity_id"]
    signal = {"kind": "create", "id": command["id"], "route": route, "org_id": command["org_id"],
              "dedup_key": f"manual:{route}", "origin": f"{topics.COMMANDS}/{partition}", "origin_pos": offset,
              "at": command["at"], "source": "manual", "actor": body.pop("actor"), "request_id": command["id"], **body}
    send_signal(applier.engine, signal)


def incident_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    body = dict(command["body"])
    route = command["entity_id"]
    signal = {"kind": "update", "id": command["id"], "route": route, "org_id": command["org_id"],
              "dedup_key": "-", "origin": f"{topics.COMMANDS}/{partition}", "origin_pos": offset,
              "at": command["at"], "source": "manual", "actor": body["actor"], "request_id": command["id"],
              "incident_id": body["incident_id"], "patch": body["patch"]}
    send_signal(applier.engine, signal)


def incident_index(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    body, org_id = command["body"], command["org_id"]
    index = applier.engine.org_index
    for name in body["remove"]:
        org_index.remove(index, partition, org_id, name, body["id"], body["created_at"])
    for name in body["add"]:
        org_index.add(index, partition, org_id, name, body["id"], body["created_at"])
    if command.get("reply"):
        applier.reply(command["id"], command["reply"]["status"], command["reply"]["body"])


COMMANDS = {"incident.create": incident_create, "incident.update": incident_update, "incident.index": incident_index}
