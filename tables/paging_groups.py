"""Paging groups: named sets of a team's members that a page can go to at once. Pure rules.

Keys of the `paging_groups` table, in the organisation's partition (the team's
own, where its members are kept), written by the commands agent only:

    <org> 00 <group id>  -> {pos, id, org_id, name, description, members: [user id], created_at, updated_at}

A group keeps the ids it was given; a person who leaves the team stays listed
in `members` but is no longer among the `people` it reaches.
"""
from __future__ import annotations

from collections.abc import Sequence

from tables.monitor_views import iso

MAX_GROUPS_PER_ORG = 100


def people(record: dict, members: dict[str, dict]) -> list[dict]:
    """Who the group reaches: its members still in the team, in the group's order, with name and email."""
    return [{"user_id": user_id, "name": members[user_id].get("name"), "email": members[user_id].get("email")}
            for user_id in record["members"] if user_id in members]


def strangers(user_ids: Sequence[str], members: dict[str, dict]) -> list[str]:
    """The ids that are not members of the team."""
    return sorted(set(user_ids) - set(members))


def group_view(record: dict, members: dict[str, dict]) -> dict:
    return {"id": record["id"], "name": record["name"], "description": record.get("description"),
            "members": list(record["members"]), "people": people(record, members),
            "created_at": iso(record["created_at"]), "updated_at": iso(record["updated_at"])}
