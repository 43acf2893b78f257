"""commands about heartbeats → the `heartbeats` configuration table and indexes → control messages, replies.

1. the topic: `commands` (engine/commands.py applies them), kinds `heartbeat.create`,
   `heartbeat.update`, `heartbeat.delete`, keyed by the heartbeat id; the API
   validated the body and waits for the reply;
2. the state: `heartbeats`, configuration by id, remembering the command offset
   it last applied (a redelivered command only repeats its reply);
3. the transitions: a create or delete (un)lists the heartbeat in its
   organisation's index, collection "heartbeats", and, when it belongs to a
   service, in collection "heartbeats:<service_id>" too, so a list filtered by
   service costs about its page as well (invariant 7); the organisation's
   partition applies both in order and answers after the second;
4. the events: `configure` / `purge` control messages on topic `heartbeats`,
   because the heartbeats fold (agents/heartbeats/fold.py) owns the runtime (invariant 1); replies on
   `command-replies`.
"""
from __future__ import annotations

import orjson

from engine import directory, topics
from engine.commands import CommandApplier
from engine.partitioning import entity_key
from schemas.heartbeat import HeartbeatPatch, HeartbeatSpec
from tables.heartbeat_data import runtime_key
from tables.heartbeat_schedule import Schedule
from tables.heartbeat_views import COLLECTION, heartbeat_view, service_collection


def view(applier: CommandApplier, partition: int, config: dict) -> dict:
    return heartbeat_view(config, applier.engine.heartbeat_data.get(partition, runtime_key(config["id"])))


def configure(applier: CommandApplier, partition: int, config: dict, at: float) -> None:
    """Tell the heartbeats agent the schedule and labels it judges check-ins by."""
    spec = config["spec"]
    schedule = Schedule(interval=spec.get("interval"), cron=spec.get("cron"), timezone=spec["timezone"],
                        grace=spec["grace"])
    message = {"kind": "configure", "heartbeat_id": config["id"], "at": at, "org_id": config["org_id"],
               "service_id": spec.get("service_id"), "name": spec["name"], "enabled": spec["enabled"],
               "schedule": schedule.to_dict()}
    applier.state.emit(topics.HEARTBEATS, entity_key(config["id"]), orjson.dumps(message), partition)


def list_in_service(applier: CommandApplier, command: dict, kind: str, config: dict, service_id: str) -> None:
    """(Un)list in the service's collection; nobody waits for this reply, the organisation's next one answers."""
    applier.forward_to_index({**command, "id": command["id"] + ":service"}, kind, config, 204, None,
                             collection=service_collection(service_id))


def heartbeat_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    table = applier.engine.heartbeats
    key = entity_key(command["entity_id"])
    existing = table.get(partition, key)
    if existing is not None:
        if existing["pos"] == offset:  # redelivered: answer again
            applier.forward_to_index(command, "index.add", existing, 201, view(applier, partition, existing),
                                     collection=COLLECTION)
        else:
            applier.error(command, 409, "conflict",
                          f"a heartbeat with id {command['entity_id']} exists; an imported id or push token can be used once")
        return
    config = {
        "pos": offset,
        "id": command["entity_id"],
        "org_id": command["org_id"],
        "spec": command["body"]["spec"],
        "push_token": command["body"].get("push_token"),
        "created_at": command["at"],
        "updated_at": command["at"],
    }
    table.put(partition, key, config)
    directory.publish(applier.state, partition, directory.heartbeat_entry(config))
    configure(applier, partition, config, command["at"])
    service_id = config["spec"].get("service_id")
    if service_id:
        list_in_service(applier, command, "index.add", config, service_id)
    applier.forward_to_index(command, "index.add", config, 201, view(applier, partition, config),
                             collection=COLLECTION)


def heartbeat_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.owned(applier.engine.heartbeats, partition, command, "heartbeat")
    if config is None:
        return
    if config["pos"] < offset:  # not yet applied
        spec = applier.patched(command, "heartbeat", HeartbeatPatch, HeartbeatSpec, config["spec"])
        if spec is None:
            return
        updated = {**config, "spec": spec.stored(), "updated_at": command["at"], "pos": offset}
        applier.engine.heartbeats.put(partition, entity_key(config["id"]), updated)
        directory.publish(applier.state, partition, directory.heartbeat_entry(updated))
        configure(applier, partition, updated, command["at"])
        before, after = config["spec"].get("service_id"), spec.service_id
        if before != after:
            if before:
                list_in_service(applier, command, "index.remove", config, before)
            if after:
                list_in_service(applier, command, "index.add", updated, after)
            # the reply goes through the organisation's partition, after the service lists changed
            return applier.forward_to_index(command, "index.add", updated, 200, view(applier, partition, updated),
                                            collection=COLLECTION)
        config = updated
    applier.reply(command["id"], 200, view(applier, partition, config))


def heartbeat_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.owned(applier.engine.heartbeats, partition, command, "heartbeat")
    if config is None:
        return
    applier.engine.heartbeats.delete(partition, entity_key(config["id"]))
    directory.withdraw(applier.state, partition, directory.HEARTBEAT, config["id"])
    purge = {"kind": "purge", "heartbeat_id": config["id"], "at": command["at"]}
    applier.state.emit(topics.HEARTBEATS, entity_key(config["id"]), orjson.dumps(purge), partition)
    service_id = config["spec"].get("service_id")
    if service_id:
        list_in_service(applier, command, "index.remove", config, service_id)
    applier.forward_to_index(command, "index.remove", config, 204, None, collection=COLLECTION)


COMMANDS = {"heartbeat.create": heartbeat_create, "heartbeat.update": heartbeat_update,
            "heartbeat.delete": heartbeat_delete}
