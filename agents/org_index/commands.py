"""Organisation index commands → `org_index` → the reply a resource's own partition asked for.

1. the topic: `commands`, kinds index.add / index.remove, keyed by the
   organisation id, forwarded by a resource's partition after it changed the
   resource (engine/commands.py `forward_to_index`);
2. the state: `org_index` (tables/org_index.py: the ids an organisation owns,
   in creation order, with a count);
3. the transitions: (un)list the resource. That partition also holds the team,
   so it is where a plan's limit is enforced: an `index.add` past it is refused
   with 403 and a compensating delete goes back to the resource's partition;
4. the events: the reply the resource's partition handed over, once listed.
"""
from __future__ import annotations

from engine.commands import CommandApplier
from engine.partitioning import entity_key
from tables import org_index, usage


def index_add(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    body = command["body"]
    index = applier.engine.org_index
    org_id, collection = command["org_id"], body["collection"]
    if not org_index.holds(index, partition, org_id, collection, body["id"], body["created_at"]):
        refusal = usage.limit_refusal(applier.engine.teams.get(partition, entity_key(org_id)), collection,
                                      org_index.count(index, partition, org_id, collection))
        if refusal is not None:  # a redelivered add of a listed resource is never refused
            undo_create(applier, command, org_index.DELETE_KINDS[collection], body["id"])
            return applier.reply(command["id"], 403, refusal)
    org_index.add(index, partition, org_id, collection, body["id"], body["created_at"])
    applier.reply(command["id"], command["reply"]["status"], command["reply"]["body"])


def undo_create(applier: CommandApplier, command: dict, kind: str, resource_id: str) -> None:
    """Delete a resource created past the plan's limit, in its own partition; nobody waits for the reply."""
    applier.send(command["id"] + ":over-limit", kind, command["org_id"], resource_id, None, command["at"])


def index_remove(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    body = command["body"]
    org_index.remove(applier.engine.org_index, partition, command["org_id"], body["collection"], body["id"],
                     body["created_at"])
    applier.reply(command["id"], command["reply"]["status"], command["reply"]["body"])


COMMANDS = {"index.add": index_add, "index.remove": index_remove}
