"""Ruleset commands → the organisation's `rulesets` table and the `org-config` replica → replies.

Rulesets have no stream of their own: the commands agent applies
`ruleset.create/update/delete/actions` in the organisation's partition (entity
id = organisation id), each once (a ruleset remembers the command offset it
last applied; a redelivered command only repeats its reply), and publishes the
result to `org-config`, which every worker follows (engine/org_config.py) to
judge events wherever they land.
"""
from __future__ import annotations

import orjson

from engine import topics
from engine.commands import CommandApplier
from engine.org_config import ruleset_key as replica_key
from schemas.ruleset import MAX_CONDITIONS_BYTES_PER_ORG, MAX_RULESETS_PER_ORG, conditions_size
from tables.rulesets import org_range, record, ruleset_key, ruleset_view


def _over_size_cap(applier: CommandApplier, partition: int, command: dict, spec: dict) -> bool:
    """Would storing `spec` take the organisation past its conditions budget? Then reply 422."""
    org_id, ruleset_id = command["org_id"], command["body"]["id"]
    others = sum(conditions_size(config["spec"])
                 for _, config in applier.engine.rulesets.scan(partition, *org_range(org_id))
                 if config["id"] != ruleset_id)
    if others + conditions_size(spec) <= MAX_CONDITIONS_BYTES_PER_ORG:
        return False
    applier.reply(command["id"], 422, {
        "error": "limit_reached",
        "message": f"An organisation's rulesets hold at most {MAX_CONDITIONS_BYTES_PER_ORG} bytes of conditions; "
                   "delete or shorten some first."})
    return True


def _publish(applier: CommandApplier, config: dict | None, ruleset_id: str) -> None:
    value = None if config is None else orjson.dumps(record(config))
    applier.state.emit(topics.ORG_CONFIG, replica_key(ruleset_id), value, 0)


def ruleset_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    org_id, ruleset_id = command["org_id"], command["body"]["id"]
    table = applier.engine.rulesets
    key = ruleset_key(org_id, ruleset_id)
    existing = table.get(partition, key)
    if existing is not None:
        if existing["pos"] == offset:  # redelivered: answer again
            return applier.reply(command["id"], 201, ruleset_view(existing))
        return applier.error(command, 409, "conflict", "a ruleset with this id exists")
    if len(table.keys(partition, *org_range(org_id))) >= MAX_RULESETS_PER_ORG:
        return applier.reply(command["id"], 422, {
            "error": "limit_reached",
            "message": f"An organisation has at most {MAX_RULESETS_PER_ORG} rulesets; delete some first."})
    if _over_size_cap(applier, partition, command, command["body"]["spec"]):
        return None
    config = {"pos": offset, "id": ruleset_id, "org_id": org_id, "spec": command["body"]["spec"],
              "created_at": command["at"], "updated_at": command["at"]}
    table.put(partition, key, config)
    _publish(applier, config, ruleset_id)
    applier.reply(command["id"], 201, ruleset_view(config))


def _change(applier: CommandApplier, partition: int, offset: int, command: dict, changed: dict) -> None:
    org_id, ruleset_id = command["org_id"], command["body"]["id"]
    table = applier.engine.rulesets
    config = table.get(partition, ruleset_key(org_id, ruleset_id))
    if config is None:
        return applier.not_found(command, "ruleset", ruleset_id)
    if config["pos"] < offset:  # not yet applied
        if _over_size_cap(applier, partition, command, {**config["spec"], **changed}):
            return None
        config = {**config, "spec": {**config["spec"], **changed}, "updated_at": command["at"], "pos": offset}
        table.put(partition, ruleset_key(org_id, ruleset_id), config)
        _publish(applier, config, ruleset_id)
    applier.reply(command["id"], 200, ruleset_view(config))


def ruleset_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    _change(applier, partition, offset, command, command["body"]["spec"])


def ruleset_actions(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    _change(applier, partition, offset, command, {"actions": command["body"]["actions"]})


def ruleset_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    org_id, ruleset_id = command["org_id"], command["body"]["id"]
    key = ruleset_key(org_id, ruleset_id)
    if applier.engine.rulesets.get(partition, key) is None:
        return applier.not_found(command, "ruleset", ruleset_id)
    applier.engine.rulesets.delete(partition, key)
    _publish(applier, None, ruleset_id)
    applier.reply(command["id"], 204, None)



COMMANDS = {"ruleset.create": ruleset_create, "ruleset.update": ruleset_update, "ruleset.actions": ruleset_actions,
            "ruleset.delete": ruleset_delete}
