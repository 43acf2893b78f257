"""Group commands → the organisation's `paging_groups` table → replies.

1. the topic: `commands` (engine/commands.py applies them), kinds
   `group.create`, `group.update`, `group.delete`, keyed by the team
   (organisation) id: a group lives in the partition that keeps the team's
   members and is checked against them there;
2. the state: `paging_groups`, one record per group under its team
   (tables/paging_groups.py), remembering the command offset it last applied;
3. the transitions: create, change (the fields given), delete; members must be
   members of the team;
4. the events: replies on `command-replies`.
"""
from __future__ import annotations

from agents.teams.commands import live_team
from engine.commands import CommandApplier
from tables.entity_keys import item_key, prefix
from tables.paging_groups import MAX_GROUPS_PER_ORG, group_view, strangers


def refused_members(applier: CommandApplier, command: dict, user_ids: list[str], members: dict) -> bool:
    """Does the group name someone outside the team? Then reply 422 naming them."""
    unknown = strangers(user_ids, members)
    if not unknown:
        return False
    reason = f"not members of this team: {', '.join(unknown)} (GET /v1/team/{{id}}/members lists them)"
    applier.reply(command["id"], 422, {"error": "validation_error", "message": f"The group names {reason}.",
                                       "errors": {"members": reason}})
    return True


def group_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: id, name, description, members."""
    org_id, body = command["org_id"], command["body"]
    table = applier.engine.paging_groups
    team = live_team(applier, partition, command)
    if team is None:
        return
    members = team["members"]
    existing = table.get(partition, item_key(org_id, body["id"]))
    if existing is not None:
        if existing["pos"] == offset:  # redelivered: answer again
            return applier.reply(command["id"], 201, group_view(existing, members))
        return applier.error(command, 409, "conflict", "a group with this id exists")
    if refused_members(applier, command, body["members"], members):
        return
    if len(table.keys(partition, *prefix(org_id))) >= MAX_GROUPS_PER_ORG:
        return applier.reply(command["id"], 422, {
            "error": "limit_reached", "message": f"A team has at most {MAX_GROUPS_PER_ORG} groups; delete some first."})
    record = {"pos": offset, "id": body["id"], "org_id": org_id, "name": body["name"],
              "description": body.get("description"), "members": body["members"], "created_at": command["at"],
              "updated_at": command["at"]}
    table.put(partition, item_key(org_id, record["id"]), record)
    applier.reply(command["id"], 201, group_view(record, members))


def group_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: id, and the fields that change (name, description, members)."""
    org_id, body = command["org_id"], command["body"]
    team = live_team(applier, partition, command)
    if team is None:
        return
    members = team["members"]
    record = applier.engine.paging_groups.get(partition, item_key(org_id, body["id"]))
    if record is None:
        return applier.not_found(command, "group", body["id"])
    if record["pos"] < offset:  # not yet applied
        changes = {k: v for k, v in body.items() if k in ("name", "description", "members")}
        if refused_members(applier, command, changes.get("members", []), members):
            return
        record = {**record, **changes, "updated_at": command["at"], "pos": offset}
        applier.engine.paging_groups.put(partition, item_key(org_id, record["id"]), record)
    applier.reply(command["id"], 200, group_view(record, members))


def group_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    key = item_key(command["org_id"], command["body"]["id"])
    if applier.engine.paging_groups.get(partition, key) is None:
        return applier.not_found(command, "group", command["body"]["id"])
    applier.engine.paging_groups.delete(partition, key)
    applier.reply(command["id"], 204, None)


COMMANDS = {"group.create": group_create, "group.update": group_update, "group.delete": group_delete}
