"""Owner reads of teams, served by the worker that owns the team's partition (engine/owner_reads.py).

Only API processes call these (they carry the internal token).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.owner_reads import BASE, engine_of, not_found, owned_partition
from engine.partitioning import entity_key
from engine.responses import json_response

routes = web.RouteTableDef()


def live_members(engine: Any, partition: int, org_id: str) -> dict[str, dict]:
    """A live team's members by user id ({} for a team that is gone), read in the team's partition."""
    team = engine.teams.get(partition, entity_key(org_id))
    return {} if team is None or team.get("deleted_at") is not None else team["members"]


@routes.get(BASE + "/teams/{org}")
async def team(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    record = engine_of(request).teams.get(partition, entity_key(request.match_info["org"]))
    if record is None or record.get("deleted_at") is not None:
        return not_found("team", request.match_info["org"])
    return json_response(record)
