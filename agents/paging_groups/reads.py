"""Owner reads of an organisation's paging groups, served by the worker owning the team's partition.

`group_members` is also what a feature of this worker asks (in the team's
partition) to learn whom a page to a group reaches.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from agents.teams.reads import live_members
from engine.owner_reads import BASE, engine_of, not_found, owned_partition
from engine.responses import json_response
from tables.entity_keys import item_key, prefix
from tables.paging_groups import group_view, people

routes = web.RouteTableDef()


def group_members(engine: Any, partition: int, org_id: str, group_id: str) -> list[dict] | None:
    """Whom group `group_id` of team `org_id` reaches: [{user_id, name, email}] of its members still in the
    team, in the group's order; None when the team has no such group."""
    record = engine.paging_groups.get(partition, item_key(org_id, group_id))
    if record is None:
        return None
    return people(record, live_members(engine, partition, org_id))


@routes.get(BASE + "/groups")
async def list_groups(request: web.Request) -> web.Response:
    engine, partition, org_id = engine_of(request), owned_partition(request), request.query["org"]
    members = live_members(engine, partition, org_id)
    records = sorted((record for _, record in engine.paging_groups.scan(partition, *prefix(org_id))),
                     key=lambda r: (r["created_at"], r["id"]))
    return json_response({"data": [group_view(record, members) for record in records]})


@routes.get(BASE + "/groups/{id}")
async def get_group(request: web.Request) -> web.Response:
    engine, partition, org_id = engine_of(request), owned_partition(request), request.query["org"]
    record = engine.paging_groups.get(partition, item_key(org_id, request.match_info["id"]))
    if record is None:
        return not_found("group", request.match_info["id"])
    return json_response({"data": group_view(record, live_members(engine, partition, org_id))})
