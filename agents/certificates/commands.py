"""Reminder commands → the `certificate_reminders` table → a `reminders` control message, replies.

1. the topic: `commands` (engine/commands.py applies them), kinds
   `certificate.reminder.set` and `certificate.reminder.delete`, keyed by the
   monitor id; the API validated the body and waits for the reply; and
   `certificate.reminders.purge` from the directory fold once the monitor is deleted;
2. the state: `certificate_reminders`, per monitor its `ssl` and `domain`
   reminders, remembering the command offset it last applied;
3. the transitions: set (create or replace) and delete, only for a monitor of
   the command's organisation (another's answers 404, invariant 6);
4. the events: `reminders` on topic `certificates`, so the certificates fold
   (agents/certificates/fold.py) judges the monitor's thresholds again at once;
   replies on `command-replies`.
"""
from __future__ import annotations

import orjson

from engine import topics
from engine.commands import CommandApplier
from engine.partitioning import entity_key
from tables.certificates import reminder_view

KINDS = ("ssl", "domain")


def judge_again(applier: CommandApplier, partition: int, monitor_id: str, at: float) -> None:
    message = {"kind": "reminders", "monitor_id": monitor_id, "at": at}
    applier.state.emit(topics.CERTIFICATES, entity_key(monitor_id), orjson.dumps(message), partition)


def reminder_set(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """Body {"kind": "ssl"|"domain", "days_before": [...], "create": bool}: create (409 if one exists) or replace."""
    if applier.owned(applier.engine.monitors, partition, command, "monitor") is None:
        return
    body, monitor_id = command["body"], command["entity_id"]
    kind, created = body["kind"], 201 if body.get("create") else 200
    table, key = applier.engine.certificate_reminders, entity_key(monitor_id)
    record = table.get(partition, key) or {"pos": -1, "org_id": command["org_id"]}
    if record["pos"] >= offset:  # redelivered: answer again
        return applier.reply(command["id"], created, reminder_view(monitor_id, kind, record.get(kind)))
    existing = record.get(kind)
    if existing is not None and body.get("create"):
        return applier.error(command, 409, "conflict",
                             f"monitor {monitor_id} has a {kind} reminder: PUT changes it, DELETE removes it")
    record[kind] = {"days_before": body["days_before"], "updated_at": command["at"],
                    "created_at": existing["created_at"] if existing else command["at"]}
    record["pos"] = offset
    table.put(partition, key, record)
    judge_again(applier, partition, monitor_id, command["at"])
    applier.reply(command["id"], created, reminder_view(monitor_id, kind, record[kind]))


def reminder_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    if applier.owned(applier.engine.monitors, partition, command, "monitor") is None:
        return
    monitor_id, kind = command["entity_id"], command["body"]["kind"]
    table, key = applier.engine.certificate_reminders, entity_key(monitor_id)
    record = table.get(partition, key)
    if record is not None and record["pos"] == offset:  # redelivered
        return applier.reply(command["id"], 204)
    if record is None or record.get(kind) is None:
        return applier.error(command, 404, "not_found", f"monitor {monitor_id} has no {kind} reminder")
    record[kind] = None
    record["pos"] = offset
    table.put(partition, key, record)
    judge_again(applier, partition, monitor_id, command["at"])
    applier.reply(command["id"], 204)


def reminders_purge(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """The monitor is gone (agents/certificates/directory.py saw its tombstone): its reminders go too. No reply."""
    applier.engine.certificate_reminders.delete(partition, entity_key(command["entity_id"]))


COMMANDS = {"certificate.reminder.set": reminder_set, "certificate.reminder.delete": reminder_delete,
            "certificate.reminders.purge": reminders_purge}
