"""Monitor commands → the `monitors` configuration table → control messages, replies.

1. the topic: `commands` (engine/commands.py applies them), kinds monitor.*,
   keyed by the monitor id; the API validated the body and waits for the reply;
2. the state: `monitors` (configuration by id); each partition counts its
   organisations' active monitors (tables/usage.py);
3. the transitions: create, update, delete, pause, resume, each applied once
   (a configuration remembers the command offset it last applied, and a
   redelivered command only repeats its reply); a change that touches the
   organisation's list forwards an `index.*` command to the organisation's
   partition (agents/org_index/commands.py), which answers for both, so a
   reply means every read sees it;
4. the events: replies on `command-replies`; configure/pause/resume/purge
   control messages on `check-results`, because the checks fold owns runtime
   state (configure: when the monitor is due next, its maintenance windows).
"""
from __future__ import annotations

import orjson

from engine import directory, topics
from engine.commands import CommandApplier
from engine.partitioning import entity_key
from schemas.monitor import MonitorPatch, MonitorSpec
from tables import usage
from tables.monitor_data import runtime_key
from tables.monitor_views import monitor_view


def view(applier: CommandApplier, partition: int, config: dict) -> dict:
    return monitor_view(config, applier.engine.monitor_data.get(partition, runtime_key(config["id"])))


def control(applier: CommandApplier, partition: int, kind: str, monitor_id: str, at: float) -> None:
    message = orjson.dumps({"kind": kind, "monitor_id": monitor_id, "at": at})
    applier.state.emit(topics.CHECK_RESULTS, entity_key(monitor_id), message, partition)


def monitor_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    monitors = applier.engine.monitors
    key = entity_key(command["entity_id"])
    existing = monitors.get(partition, key)
    if existing is not None:
        if existing["pos"] == offset:  # redelivered: answer again
            applier.forward_to_index(command, "index.add", existing, 201, view(applier, partition, existing))
        else:
            applier.error(command, 409, "conflict", "a monitor with this id exists")
        return
    config = {
        "pos": offset,
        "id": command["entity_id"],
        "org_id": command["org_id"],
        "spec": command["body"],
        "paused": False,
        "created_at": command["at"],
        "updated_at": command["at"],
    }
    usage.count_active(monitors, partition, offset, config["org_id"], 1)
    monitors.put(partition, key, config)
    directory.publish(applier.state, partition, directory.monitor_entry(config))
    control(applier, partition, "configure", config["id"], command["at"])
    applier.forward_to_index(command, "index.add", config, 201, view(applier, partition, config))


def monitor_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.owned(applier.engine.monitors, partition, command, "monitor")
    if config is None:
        return
    if config["pos"] < offset:  # not yet applied
        spec = applier.patched(command, "monitor", MonitorPatch, MonitorSpec, config["spec"])
        if spec is None:
            return
        config = {**config, "spec": spec.model_dump(mode="json"), "updated_at": command["at"], "pos": offset}
        applier.engine.monitors.put(partition, entity_key(config["id"]), config)
        directory.publish(applier.state, partition, directory.monitor_entry(config))
        control(applier, partition, "configure", config["id"], command["at"])
    applier.reply(command["id"], 200, view(applier, partition, config))


def monitor_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.owned(applier.engine.monitors, partition, command, "monitor")
    if config is None:
        return
    if not config["paused"]:
        usage.count_active(applier.engine.monitors, partition, offset, config["org_id"], -1)
    applier.engine.monitors.delete(partition, entity_key(config["id"]))
    directory.withdraw(applier.state, partition, directory.MONITOR, config["id"])
    control(applier, partition, "purge", config["id"], command["at"])
    applier.forward_to_index(command, "index.remove", config, 204, None)


def monitor_pause(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    set_paused(applier, partition, offset, command, True)


def monitor_resume(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    set_paused(applier, partition, offset, command, False)


def set_paused(applier: CommandApplier, partition: int, offset: int, command: dict, paused: bool) -> None:
    config = applier.owned(applier.engine.monitors, partition, command, "monitor")
    if config is None:
        return
    if config["pos"] < offset and config["paused"] != paused:
        config = {**config, "paused": paused, "updated_at": command["at"], "pos": offset}
        usage.count_active(applier.engine.monitors, partition, offset, config["org_id"], -1 if paused else 1)
        applier.engine.monitors.put(partition, entity_key(config["id"]), config)
        directory.publish(applier.state, partition, directory.monitor_entry(config))
        control(applier, partition, "pause" if paused else "resume", config["id"], command["at"])
    applier.reply(command["id"], 200, view(applier, partition, config))


COMMANDS = {
    "monitor.create": monitor_create,
    "monitor.update": monitor_update,
    "monitor.delete": monitor_delete,
    "monitor.pause": monitor_pause,
    "monitor.resume": monitor_resume,
}
