"""Alert channel commands → the `alert_channels` table and the `org-config` replica → replies.

Applied by engine/commands.py in the channel's partition (entity id = alert
channel id). The wire keeps the first names: kinds `alert.*`, index collection
"alerts", org-config records of kind "alert" (stored data and commands in
flight still carry them). A channel's subscriptions (never its secret) are
published to `org-config`, so any worker knows whom to tell about an event.
"""
from __future__ import annotations

import orjson

from agents.notification_channels.notify import notify, person, team
from agents.on_call.reads import on_call
from engine import topics
from engine.commands import CommandApplier
from engine.org_config import alert_channel_key
from engine.partitioning import entity_key
from tables.alert_channels import COLLECTION, channel_view


def publish(applier: CommandApplier, config: dict | None, channel_id: str) -> None:
    value = None if config is None else orjson.dumps(
        {"kind": "alert", "id": channel_id, "org_id": config["org_id"], "events": config["spec"]["events"],
         "webhook": config["spec"].get("url") is not None, "notify": config["spec"].get("notify", [])})
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


def alert_notify(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """An event for a subscription naming people, in the team's partition: whom it names is resolved here, at
    the event's time (members only; "on-call" by the team's schedules), and each is told once per event."""
    body, org_id = command["body"], command["org_id"]
    engine = applier.engine
    record = engine.teams.get(partition, entity_key(org_id))
    if record is None or record.get("deleted_at") is not None:
        return  # the team is gone
    members = record["members"]
    owners: dict[str, None] = {}
    for recipient in body["notify"]:
        if recipient == "team":
            owners[team(org_id)] = None
        elif recipient == "on-call":
            owners.update(dict.fromkeys(person(row["user_id"]) for row in on_call(engine, partition, org_id,
                                                                                  body["at"])))
        elif recipient.partition(":")[2] in members:  # a member who left is told nothing more
            owners[person(recipient.partition(":")[2])] = None
    for owner in owners:
        # the id derives from the subscription and the event: a replayed event reaches each channel once
        notify(engine, owner, f"alert:{body['subscription_id']}:{body['event_id']}", body["subject"], body["text"],
               body["at"], data={"event": body["event"], "event_id": body["event_id"],
                                 "alert_id": body["subscription_id"]})


COMMANDS = {"alert.create": alert_channel_create, "alert.rotate": alert_channel_rotate,
            "alert.delete": alert_channel_delete, "alert.notify": alert_notify}
