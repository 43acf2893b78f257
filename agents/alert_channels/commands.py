"""Alert channel commands → the `alert_channels` table and the `org-config` replica → replies.

Applied by engine/commands.py in the channel's partition (entity id = alert
channel id). The wire keeps the first names: kinds `alert.*`, index collection
"alerts", org-config records of kind "alert" (stored data and commands in
flight still carry them). A channel's subscriptions (never its secret) are
published to `org-config`, so any worker knows whom to tell about an event.
"""
from __future__ import annotations

import orjson

from engine import topics
from engine.commands import CommandApplier
from engine.org_config import alert_channel_key
from engine.partitioning import entity_key
from tables.alert_channels import COLLECTION, channel_view


def publish(applier: CommandApplier, config: dict | None, channel_id: str) -> None:
    value = None if config is None else orjson.dumps(
        {"kind": "alert", "id": channel_id, "org_id": config["org_id"], "events": config["spec"]["events"]})
    applier.state.emit(topics.ORG_CONFIG, alert_channel_key(channel_id), value, 0)


def alert_channel_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    key = entity_key(command["entity_id"])
    existing = applier.engine.alert_channels.get(partition, key)
    if existing is not None:
        if existing["pos"] == offset:
            applier.forward_to_index(command, "index.add", existing, 201, channel_view(existing),
                                     collection=COLLECTION)
        else:
            applier.error(command, 409, "conflict", "an alert with this id exists")
        return
    # the secret arrives sealed (engine/sealing.py) and stays so; the API adds the clear one to its answer
    config = {"pos": offset, "id": command["entity_id"], "org_id": command["org_id"], "spec": command["body"]["spec"],
              "secret": command["body"]["secret"], "secret_prefix": command["body"].get("secret_prefix"),
              "secret_rotated_at": None, "created_at": command["at"], "updated_at": command["at"]}
    applier.engine.alert_channels.put(partition, key, config)
    publish(applier, config, config["id"])
    applier.forward_to_index(command, "index.add", config, 201, channel_view(config), collection=COLLECTION)


def alert_channel_rotate(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.owned(applier.engine.alert_channels, partition, command, "alert")
    if config is None:
        return
    if config["pos"] < offset:
        config = {**config, "secret": command["body"]["secret"], "secret_prefix": command["body"].get("secret_prefix"),
                  "secret_rotated_at": command["at"], "updated_at": command["at"], "pos": offset}
        applier.engine.alert_channels.put(partition, entity_key(config["id"]), config)
    applier.reply(command["id"], 200, channel_view(config))


def alert_channel_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.owned(applier.engine.alert_channels, partition, command, "alert")
    if config is None:
        return
    applier.engine.alert_channels.delete(partition, entity_key(config["id"]))
    publish(applier, None, config["id"])
    applier.state.emit(topics.ALERT_CHANNEL_DELIVERIES, entity_key(config["id"]),
                       orjson.dumps({"kind": "purge", "channel_id": config["id"]}), partition)
    applier.forward_to_index(command, "index.remove", config, 204, None, collection=COLLECTION)


COMMANDS = {"alert.create": alert_channel_create, "alert.rotate": alert_channel_rotate,
            "alert.delete": alert_channel_delete}
