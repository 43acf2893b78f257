"""The commands topic: each command applied once, by the handler its component declared for its kind.

1. the topic: `commands`, keyed by the entity the command is about; the API
   validated the body and, for most kinds, waits for the reply;
2. the state: whatever table the handler writes, in the entity's partition; a
   stored value remembers the command offset it last applied, so a redelivered
   command only repeats its reply;
3. the transitions: the handlers, declared by components as {kind: handler}
   (agents/*/commands.py);
4. the events: replies on `command-replies`, once the state is durable;
   commands to another partition (`send`, `forward_to_index`) before it.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from engine import topics
from engine.component import CommandHandler
from engine.dead_letters import DeadLetters
from engine.folding import decoded
from engine.partitioning import entity_key, partition_for
from schemas.validation import field_errors

log = logging.getLogger(__name__)

TAKE = 100      # commands applied per flush at most
WITHIN = 0.01   # a command waits at most this long for others to share its flush (seconds)


class CommandApplier:
    def __init__(self, engine: Any, dead_letters: DeadLetters, handlers: Mapping[str, CommandHandler]) -> None:
        self.engine = engine
        self.state = engine.state
        self.partitions = engine.settings.partitions
        self.dead_letters = dead_letters
        self.handlers = dict(handlers)

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        self.apply_message(partition, offset, value)

    def apply_message(self, partition: int, offset: int, value: bytes | None) -> None:
        command = decoded(self.dead_letters, topics.COMMANDS, partition, offset, value, "a command", "kind", "id")
        if command is None:
            return
        kind, request_id = command["kind"], command["id"]
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
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

    def error(self, command: dict, status: int, code: str, message: str) -> None:
        self.reply(command["id"], status, {"error": code, "message": message})

    def not_found(self, command: dict, noun: str, entity_id: str | None = None) -> None:
        self.error(command, 404, "not_found", f"{noun} {entity_id or command['entity_id']} not found")

    def owned(self, table: Any, partition: int, command: dict, noun: str) -> dict | None:
        """The configuration the command names, or None once answered 404: another organisation's is as
        good as absent (invariant 6)."""
        config = table.get(partition, entity_key(command["entity_id"]))
        if config is None or config["org_id"] != command["org_id"]:
            self.not_found(command, noun)
            return None
        return config

    def patched(self, command: dict, resource: str, patch: type[Any], spec: type[Any], current: dict) -> Any | None:
        """The spec the command's body (a `patch`) makes of `current`, validated whole; None once answered 422."""
        try:
            return spec.model_validate(patch.model_validate(command["body"]).merged_with(current))
        except ValidationError as exc:
            self.invalid_change(command, resource, exc)
            return None

    def invalid_change(self, command: dict, resource: str, exc: ValidationError) -> None:
        """A patch that would leave the resource invalid: 422 with the fields to fix, nothing stored."""
        errors = field_errors(exc)
        self.reply(command["id"], 422, {
            "error": "validation_error",
            "message": f"The change would leave the {resource} invalid: " + "; ".join(f"{k}: {v}" for k, v in errors.items()),
            "errors": errors,
        })

    # -- commands to other partitions -----------------------------------------

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
