"""commands → monitor configuration and organisation indexes → replies to the API.

1. the topic: `commands`, keyed by the entity the command is about; the API
   validated the body and waits for the reply;
2. the state: `monitors` (configuration by id) and `org_index` (the ids an
   organisation owns, in creation order, with a count);
3. the transitions: create, update, delete, pause, resume, each applied once
   (a configuration remembers the command offset it last applied, and a
   redelivered command only repeats its reply); a monitor change
   that touches the index forwards an `index.*` command to the organisation's
   partition, which answers for both, so a reply means every read sees it.
   That partition also holds the team, so it is where a plan's limit is
   enforced: an `index.add` past it is refused with 403 and a compensating
   delete goes back to the resource's partition. Each partition counts its
   organisations' active monitors (tables/usage.py);
4. the events: replies on `command-replies`; pause/resume/purge control
   messages on `check-results`, because the checks agent owns runtime state.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from engine import topics
from engine.app import Engine
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key, partition_for
from schemas.monitor import MonitorPatch, MonitorSpec
from schemas.validation import field_errors
from tables import org_index, usage
from tables.monitor_data import runtime_key
from tables.monitor_views import monitor_view
from tables.store import writing_as

log = logging.getLogger(__name__)

TAKE = 100
#: the command that deletes a resource, by organisation index collection (plan limits, team deletion)
DELETE_KINDS = {"monitors": "monitor.delete", "heartbeats": "heartbeat.delete"}


CommandHandler = Callable[["CommandApplier", int, int, dict], None]
#: command kind -> handler(applier, partition, offset, command); other modules add theirs with `handles`
HANDLERS: dict[str, CommandHandler] = {}


def handles(kind: str) -> Callable[[CommandHandler], CommandHandler]:
    """Register the handler of one command kind (e.g. "heartbeat.create")."""

    def register(handler: CommandHandler) -> CommandHandler:
        HANDLERS[kind] = handler
        return handler

    return register


class CommandApplier:
    def __init__(self, engine: Engine, dead_letters: DeadLetters) -> None:
        self.engine = engine
        self.monitors = engine.monitors
        self.index = engine.org_index
        self.state = engine.state
        self.partitions = engine.settings.partitions
        self.dead_letters = dead_letters

    def apply_message(self, partition: int, offset: int, value: bytes | None) -> None:
        try:
            command = orjson.loads(value or b"")
            kind, request_id = command["kind"], command["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            self.dead_letters.send(topics.COMMANDS, partition, offset, 0, value, f"not a command: {exc!r}")
            return
        handler = HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            self.dead_letters.send(topics.COMMANDS, partition, offset, 0, value, f"unknown command kind {kind!r}")
            return
        try:
            handler(self, partition, offset, command)
        except Exception as exc:  # one command must never stop the stream
            log.exception("command %s at %s/%d failed", kind, partition, offset)
            self.dead_letters.send(topics.COMMANDS, partition, offset, 0, value, f"failed: {exc!r}")
            self.state.forget_cached()
            self.reply(request_id, 500, {"error": "internal_error", "message": "applying the command failed; it has been logged"})

    # -- replies --------------------------------------------------------------

    def reply(self, request_id: str, status: int, body: Any = None) -> None:
        message = orjson.dumps({"request_id": request_id, "status": status, "body": body})
        self.state.reply(topics.COMMAND_REPLIES, request_id.encode(), message,
                         partition_for(request_id, self.partitions))

    def invalid_change(self, command: dict, resource: str, exc: ValidationError) -> None:
        """A patch that would leave the resource invalid: 422 with the fields to fix, nothing stored."""
        errors = field_errors(exc)
        self.reply(command["id"], 422, {
            "error": "validation_error",
            "message": f"The change would leave the {resource} invalid: " + "; ".join(f"{k}: {v}" for k, v in errors.items()),
            "errors": errors,
        })

    def not_found(self, command: dict) -> None:
        self.reply(command["id"], 404, {"error": "not_found", "message": f"monitor {command['entity_id']} not found"})

    def owned_config(self, partition: int, command: dict) -> dict | None:
        config = self.monitors.get(partition, entity_key(command["entity_id"]))
        if config is None or config["org_id"] != command["org_id"]:
            return None  # another organisation's monitor is as good as absent (invariant 6)
        return config

    def view(self, partition: int, config: dict) -> dict:
        runtime = self.engine.monitor_data.get(partition, runtime_key(config["id"]))
        return monitor_view(config, runtime)

    def control(self, partition: int, kind: str, monitor_id: str, at: float) -> None:
        message = orjson.dumps({"kind": kind, "monitor_id": monitor_id, "at": at})
        self.state.emit(topics.CHECK_RESULTS, entity_key(monitor_id), message, partition)

    def send(self, command_id: str, kind: str, org_id: str, entity_id: str, body: Any, at: float,
             reply: dict | None = None) -> None:
        """A command to the partition owning `entity_id`, sent before this batch's state (invariant 1).

        `reply`: {"status", "body"} the receiving handler answers `command_id`
        with, when it answers for both partitions.
        """
        message = {"id": command_id, "kind": kind, "org_id": org_id, "entity_id": entity_id, "body": body, "at": at}
        if reply is not None:
            message["reply"] = reply
        self.state.emit(topics.COMMANDS, entity_key(entity_id), orjson.dumps(message),
                        partition_for(entity_id, self.partitions))

    def forward_to_index(self, command: dict, kind: str, config: dict, status: int, body: Any,
                         collection: str = "monitors") -> None:
        """Ask the organisation's partition to (un)list a resource; it sends `body` as the reply."""
        self.send(command["id"], kind, command["org_id"], command["org_id"],
                  {"collection": collection, "id": config["id"], "created_at": config["created_at"]},
                  command["at"], {"status": status, "body": body})

    # -- monitors -------------------------------------------------------------

    def monitor_create(self, partition: int, offset: int, command: dict) -> None:
        key = entity_key(command["entity_id"])
        existing = self.monitors.get(partition, key)
        if existing is not None:
            if existing["pos"] == offset:  # redelivered: answer again
                self.forward_to_index(command, "index.add", existing, 201, self.view(partition, existing))
            else:
                self.reply(command["id"], 409, {"error": "conflict", "message": "a monitor with this id exists"})
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
        usage.count_active(self.monitors, partition, offset, config["org_id"], 1)
        self.monitors.put(partition, key, config)
        self.forward_to_index(command, "index.add", config, 201, self.view(partition, config))

    def monitor_update(self, partition: int, offset: int, command: dict) -> None:
        config = self.owned_config(partition, command)
        if config is None:
            return self.not_found(command)
        if config["pos"] < offset:  # not yet applied
            try:
                patch = MonitorPatch.model_validate(command["body"])
                spec = MonitorSpec.model_validate(patch.merged_with(config["spec"]))
            except ValidationError as exc:
                return self.invalid_change(command, "monitor", exc)
            config = {**config, "spec": spec.model_dump(mode="json"), "updated_at": command["at"], "pos": offset}
            self.monitors.put(partition, entity_key(config["id"]), config)
        self.reply(command["id"], 200, self.view(partition, config))

    def monitor_delete(self, partition: int, offset: int, command: dict) -> None:
        config = self.owned_config(partition, command)
        if config is None:
            return self.not_found(command)
        if not config["paused"]:
            usage.count_active(self.monitors, partition, offset, config["org_id"], -1)
        self.monitors.delete(partition, entity_key(config["id"]))
        self.control(partition, "purge", config["id"], command["at"])
        self.forward_to_index(command, "index.remove", config, 204, None)

    def monitor_pause(self, partition: int, offset: int, command: dict) -> None:
        self.set_paused(partition, offset, command, True)

    def monitor_resume(self, partition: int, offset: int, command: dict) -> None:
        self.set_paused(partition, offset, command, False)

    def set_paused(self, partition: int, offset: int, command: dict, paused: bool) -> None:
        config = self.owned_config(partition, command)
        if config is None:
            return self.not_found(command)
        if config["pos"] < offset and config["paused"] != paused:
            config = {**config, "paused": paused, "updated_at": command["at"], "pos": offset}
            usage.count_active(self.monitors, partition, offset, config["org_id"], -1 if paused else 1)
            self.monitors.put(partition, entity_key(config["id"]), config)
            self.control(partition, "pause" if paused else "resume", config["id"], command["at"])
        self.reply(command["id"], 200, self.view(partition, config))

    # -- organisation indexes -------------------------------------------------

    def index_add(self, partition: int, offset: int, command: dict) -> None:
        body = command["body"]
        org_id, collection = command["org_id"], body["collection"]
        if not org_index.holds(self.index, partition, org_id, collection, body["id"], body["created_at"]):
            refusal = usage.limit_refusal(self.engine.teams.get(partition, entity_key(org_id)), collection,
                                          org_index.count(self.index, partition, org_id, collection))
            if refusal is not None:  # a redelivered add of a listed resource is never refused
                self.undo_create(command, DELETE_KINDS[collection], body["id"])
                return self.reply(command["id"], 403, refusal)
        org_index.add(self.index, partition, org_id, collection, body["id"], body["created_at"])
        self.reply(command["id"], command["reply"]["status"], command["reply"]["body"])

    def undo_create(self, command: dict, kind: str, resource_id: str) -> None:
        """Delete a resource created past the plan's limit, in its own partition; nobody waits for the reply."""
        self.send(command["id"] + ":over-limit", kind, command["org_id"], resource_id, None, command["at"])

    def index_remove(self, partition: int, offset: int, command: dict) -> None:
        body = command["body"]
        org_index.remove(self.index, partition, command["org_id"], body["collection"], body["id"], body["created_at"])
        self.reply(command["id"], command["reply"]["status"], command["reply"]["body"])


for _kind in ("monitor.create", "monitor.update", "monitor.delete", "monitor.pause", "monitor.resume",
              "index.add", "index.remove"):
    HANDLERS[_kind] = getattr(CommandApplier, _kind.replace(".", "_"))


def register(engine: Engine) -> None:
    applier = CommandApplier(engine, DeadLetters(engine.state))

    @engine.app.agent(engine.commands, name="commands")
    async def commands(stream):
        writing_as("commands")
        async for events in stream.take_events(TAKE, within=0.01):
            for event in events:
                message = event.message
                applier.apply_message(message.partition, message.offset, message.value)
            await engine.state.flush()
