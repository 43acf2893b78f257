"""Webhook commands → the `webhooks` configuration table → purge control messages, replies.

Applied by engine/commands.py in the webhook's partition (entity id = webhook id):
create and delete (un)list the webhook in its organisation's index; a delete
tells the webhooks fold to purge the events it kept (invariant 1).
"""
from __future__ import annotations

import orjson

from engine import directory, topics
from engine.commands import CommandApplier
from engine.partitioning import entity_key
from tables.webhook_data import webhook_view


def webhook_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    key = entity_key(command["entity_id"])
    existing = applier.engine.webhooks.get(partition, key)
    if existing is not None:
        if existing["pos"] == offset:
            applier.forward_to_index(command, "index.add", existing, 201, webhook_view(existing, None),
                                     collection="webhooks")
        else:
            applier.error(command, 409, "conflict", "a webhook with this id exists")
        return
    config = {"pos": offset, "id": command["entity_id"], "org_id": command["org_id"], "spec": command["body"],
              "created_at": command["at"], "updated_at": command["at"]}
    applier.engine.webhooks.put(partition, key, config)
    directory.publish(applier.state, partition, directory.webhook_entry(config))
    applier.forward_to_index(command, "index.add", config, 201, webhook_view(config, None), collection="webhooks")


def webhook_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.owned(applier.engine.webhooks, partition, command, "webhook")
    if config is None:
        return
    applier.engine.webhooks.delete(partition, entity_key(config["id"]))
    directory.withdraw(applier.state, partition, directory.WEBHOOK, config["id"])
    applier.state.emit(topics.WEBHOOK_EVENTS, entity_key(config["id"]),
                       orjson.dumps({"kind": "purge", "webhook_id": config["id"]}), partition)
    applier.forward_to_index(command, "index.remove", config, 204, None, collection="webhooks")


COMMANDS = {"webhook.create": webhook_create, "webhook.delete": webhook_delete}
