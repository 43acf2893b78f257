"""Schedule commands → the organisation's `on_call_schedules` table → replies.

1. the topic: `commands` (engine/commands.py applies them), kinds
   `schedule.create`, `schedule.update`, `schedule.delete`, keyed by the team
   (organisation) id, so a schedule lives in the partition that keeps the
   team's members and is checked against them where they are written;
2. the state: `on_call_schedules`, one record per schedule under its team
   (tables/on_call.py), remembering the command offset it last applied;
3. the transitions: create, replace, delete; a team's schedule may name only
   members of the team, a person's own schedule only that person; another
   person's own schedule is as good as absent (404);
4. the events: replies on `command-replies`.
"""
from __future__ import annotations

from agents.teams.commands import live_team
from engine.commands import CommandApplier
from tables.entity_keys import item_key, prefix
from tables.on_call import MAX_SCHEDULES_PER_ORG, parse_schedule, schedule_view, strangers


def team_members(applier: CommandApplier, partition: int, command: dict) -> dict | None:
    """The live team's members by user id, or None after replying 404."""
    team = live_team(applier, partition, command)
    return None if team is None else team["members"]


def refused_people(applier: CommandApplier, command: dict, spec: dict, members: dict, owner_id: str | None) -> bool:
    """Does the schedule name someone it may not? Then reply 422 naming them."""
    unknown = strangers(parse_schedule(spec), list(members), owner_id)
    if not unknown:
        return False
    reason = (f"not members of this team: {', '.join(unknown)} (GET /v1/team/{{id}}/members lists them)"
              if owner_id is None else f"your own schedule can name only you, not: {', '.join(unknown)}")
    applier.reply(command["id"], 422, {"error": "validation_error", "message": f"The schedule names {reason}.",
                                       "errors": {"user_id": reason}})
    return True


def owned_schedule(applier: CommandApplier, partition: int, command: dict) -> dict | None:
    """The schedule the command names if it is the command's owner's (the team's, or the person's); else 404."""
    body = command["body"]
    record = applier.engine.on_call_schedules.get(partition, item_key(command["org_id"], body["id"]))
    if record is None or record["owner_id"] != body.get("owner_id"):
        applier.not_found(command, "schedule", body["id"])
        return None
    return record


def schedule_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: id, owner_id (None: the team's), spec."""
    org_id, body = command["org_id"], command["body"]
    table = applier.engine.on_call_schedules
    existing = table.get(partition, item_key(org_id, body["id"]))
    if existing is not None:
        if existing["pos"] == offset:  # redelivered: answer again
            return applier.reply(command["id"], 201, schedule_view(existing))
        return applier.error(command, 409, "conflict", "a schedule with this id exists")
    members = team_members(applier, partition, command)
    if members is None or refused_people(applier, command, body["spec"], members, body.get("owner_id")):
        return None
    if len(table.keys(partition, *prefix(org_id))) >= MAX_SCHEDULES_PER_ORG:
        return applier.reply(command["id"], 422, {
            "error": "limit_reached",
            "message": f"A team has at most {MAX_SCHEDULES_PER_ORG} schedules (its members' own included); "
                       "delete some first."})
    record = {"pos": offset, "id": body["id"], "org_id": org_id, "owner_id": body.get("owner_id"),
              "spec": body["spec"], "created_at": command["at"], "updated_at": command["at"]}
    table.put(partition, item_key(org_id, record["id"]), record)
    applier.reply(command["id"], 201, schedule_view(record))


def schedule_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: id, owner_id, spec (the whole new spec)."""
    record = owned_schedule(applier, partition, command)
    if record is None:
        return
    if record["pos"] < offset:  # not yet applied
        members = team_members(applier, partition, command)
        if members is None or refused_people(applier, command, command["body"]["spec"], members, record["owner_id"]):
            return None
        record = {**record, "spec": command["body"]["spec"], "updated_at": command["at"], "pos": offset}
        applier.engine.on_call_schedules.put(partition, item_key(record["org_id"], record["id"]), record)
    applier.reply(command["id"], 200, schedule_view(record))


def schedule_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    record = owned_schedule(applier, partition, command)
    if record is None:
        return
    applier.engine.on_call_schedules.delete(partition, item_key(record["org_id"], record["id"]))
    applier.reply(command["id"], 204, None)


COMMANDS = {"schedule.create": schedule_create, "schedule.update": schedule_update,
            "schedule.delete": schedule_delete}
