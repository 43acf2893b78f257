"""Notification channel commands → the owner's record in `notification_channels` → replies, and codes to send.

Applied by engine/commands.py in the owner's partition (entity id = the owner,
`user:<id>` or `team:<id>`: the API derives it from the credentials, so nobody
names another's). A new or changed destination gets a verification code,
generated here, stored only as a hash and sent sealed through the channel
itself (a `code` message on `notification-deliveries`, same partition).
"""
from __future__ import annotations

import orjson

from engine import topics
from engine.commands import CommandApplier
from engine.partitioning import entity_key
from engine.sealing import seal
from tables import notification_channels as layout
from tables.accounts import check_code, code_record, new_code

NOUN = "notification channel"
DESTINATIONS = ("address", "phone", "url", "sealed_url", "url_hint", "secret", "secret_prefix")


def record_of(applier: CommandApplier, partition: int, owner: str) -> dict:
    return applier.engine.notification_channels.get(partition, entity_key(owner)) or {
        "owner": owner, "channels": {}, "codes_sent": [], "pos": -1}


def store(applier: CommandApplier, partition: int, record: dict, offset: int) -> None:
    applier.engine.notification_channels.put(partition, entity_key(record["owner"]), {**record, "pos": offset})


def with_new_code(applier: CommandApplier, partition: int, offset: int, command: dict, record: dict,
                  channel: dict) -> tuple[dict, dict]:
    """The record and channel with a fresh code, which is queued for the channel (sealed on the topic)."""
    code = new_code()
    channel = {**channel, "code": code_record(code, channel["id"], command["at"])}
    message = {"kind": "code", "id": f"code:{partition}:{offset}", "owner": record["owner"],
               "channel_id": channel["id"], "code": seal(applier.engine.settings.secrets_key, code),
               "at": command["at"]}
    applier.state.emit(topics.NOTIFICATION_DELIVERIES, entity_key(record["owner"]), orjson.dumps(message), partition)
    return layout.with_code_sent(record, command["at"]), channel


def channel_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    owner, body = command["entity_id"], command["body"]
    record = record_of(applier, partition, owner)
    existing = record["channels"].get(body["id"])
    if record["pos"] >= offset and existing is None:  # redelivered, and the channel deleted since
        applier.error(command, 409, "conflict", f"{NOUN} {body['id']} was made and deleted since")
        return
    if existing is not None:  # a redelivered command repeats its answer
        if existing["pos"] == offset:
            applier.reply(command["id"], 201, layout.channel_view(existing))
        else:
            applier.error(command, 409, "conflict", f"a {NOUN} with this id exists")
        return
    if len(record["channels"]) >= layout.MAX_CHANNELS:
        applier.error(command, 409, "limit_reached", f"at most {layout.MAX_CHANNELS} notification channels each")
        return
    if not layout.may_send_code(record, command["at"]):
        applier.error(command, 429, "too_many_codes", "too many verification codes sent this hour; try later")
        return
    spec = body["spec"]
    channel = {"id": body["id"], "type": spec["type"], "name": spec["name"], "priority": spec["priority"],
               "enabled": spec["enabled"], "verified": False, "verified_at": None,
               **{name: body.get(name) for name in DESTINATIONS if body.get(name) is not None},
               "created_at": command["at"], "updated_at": command["at"], "pos": offset}
    record, channel = with_new_code(applier, partition, offset, command, record, channel)
    store(applier, partition, {**record, "channels": {**record["channels"], channel["id"]: channel}}, offset)
    applier.reply(command["id"], 201, layout.channel_view(channel))


def owned_channel(applier: CommandApplier, partition: int, command: dict) -> tuple[dict, dict] | None:
    record = applier.engine.notification_channels.get(partition, entity_key(command["entity_id"]))
    channel_id = command["body"]["id"]
    channel = None if record is None else record["channels"].get(channel_id)
    if channel is None:
        applier.not_found(command, NOUN, channel_id)
        return None
    return record, channel


def changed(applier: CommandApplier, partition: int, offset: int, command: dict, record: dict, channel: dict,
            status: int = 200) -> None:
    channel = {**channel, "updated_at": command["at"], "pos": offset}
    store(applier, partition, {**record, "channels": {**record["channels"], channel["id"]: channel}}, offset)
    applier.reply(command["id"], status, layout.channel_view(channel))


def channel_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    found = owned_channel(applier, partition, command)
    if found is None:
        return
    record, channel = found
    if channel["pos"] >= offset:
        applier.reply(command["id"], 200, layout.channel_view(channel))
        return
    patch, body = command["body"]["patch"], command["body"]
    new_destination = {name: body[name] for name in DESTINATIONS if body.get(name) is not None}
    wanted = layout.TARGET_FIELD[channel["type"]]
    given = next((name for name in ("address", "phone", "url") if name in new_destination), None)
    if given is not None and given != wanted:
        applier.reply(command["id"], 422, {
            "error": "validation_error", "message": f"a {channel['type']} channel takes `{wanted}`, not `{given}`",
            "errors": {given: f"not a field of a {channel['type']} channel"}})
        return
    channel = {**channel, **{k: patch[k] for k in ("name", "priority", "enabled") if patch.get(k) is not None},
               **new_destination}
    if new_destination:
        if not layout.may_send_code(record, command["at"]):
            applier.error(command, 429, "too_many_codes", "too many verification codes sent this hour; try later")
            return
        channel = {**channel, "verified": False, "verified_at": None}
        record, channel = with_new_code(applier, partition, offset, command, record, channel)
    changed(applier, partition, offset, command, record, channel)


def channel_verify(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    found = owned_channel(applier, partition, command)
    if found is None:
        return
    record, channel = found
    if channel["pos"] >= offset or channel["verified"]:
        applier.reply(command["id"], 200, layout.channel_view(channel))
        return
    outcome, kept = check_code(channel.get("code"), command["body"]["code"], channel["id"], command["at"])
    if outcome == "ok":
        changed(applier, partition, offset, command, record,
                {**channel, "verified": True, "verified_at": command["at"], "code": None})
        return
    store(applier, partition, {**record, "channels": {**record["channels"], channel["id"]: {
        **channel, "code": kept, "pos": offset}}}, offset)
    why = {"wrong": "the code is not right", "expired": "the code has expired: ask for a new one",
           "none": "no code is waiting: ask for a new one"}[outcome]
    applier.reply(command["id"], 422, {"error": "invalid_code", "message": why, "errors": {"code": why}})


def channel_resend(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    found = owned_channel(applier, partition, command)
    if found is None:
        return
    record, channel = found
    if channel["pos"] >= offset:
        applier.reply(command["id"], 202, layout.channel_view(channel))
        return
    if channel["verified"]:
        applier.error(command, 409, "already_verified", f"{NOUN} {channel['id']} is verified already")
        return
    if not layout.may_send_code(record, command["at"]):
        applier.error(command, 429, "too_many_codes", "too many verification codes sent this hour; try later")
        return
    record, channel = with_new_code(applier, partition, offset, command, record, channel)
    changed(applier, partition, offset, command, record, channel, 202)


def channel_test(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    found = owned_channel(applier, partition, command)
    if found is None:
        return
    record, channel = found
    if not channel["verified"]:
        applier.error(command, 409, "not_verified", f"{NOUN} {channel['id']} is not verified: it gets nothing "
                                                    "but its verification code")
        return
    if not channel["enabled"]:
        applier.error(command, 409, "disabled", f"{NOUN} {channel['id']} is disabled")
        return
    message_id = f"test:{command['id']}"
    message = {"kind": "test", "id": message_id, "owner": record["owner"], "channel_id": channel["id"],
               "subject": "pingstream test message",
               "text": f"This is a test of the notification channel \"{channel['name']}\": it works.",
               "at": command["at"]}
    applier.state.emit(topics.NOTIFICATION_DELIVERIES, entity_key(record["owner"]), orjson.dumps(message), partition)
    applier.reply(command["id"], 202, {"delivery_id": message_id})


def channel_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    stored = applier.engine.notification_channels.get(partition, entity_key(command["entity_id"]))
    if stored is not None and stored["pos"] >= offset:  # redelivered: it was deleted by this very command
        applier.reply(command["id"], 204, None)
        return
    found = owned_channel(applier, partition, command)
    if found is None:
        return
    record, channel = found
    store(applier, partition, {**record, "channels": {k: v for k, v in record["channels"].items()
                                                      if k != channel["id"]}}, offset)
    applier.state.emit(topics.NOTIFICATION_DELIVERIES, entity_key(record["owner"]), orjson.dumps(
        {"kind": "purge", "owner": record["owner"], "channel_id": channel["id"]}), partition)
    applier.reply(command["id"], 204, None)


COMMANDS = {"notification_channel.create": channel_create, "notification_channel.update": channel_update,
            "notification_channel.verify": channel_verify, "notification_channel.resend": channel_resend,
            "notification_channel.test": channel_test, "notification_channel.delete": channel_delete}
