"""Owner reads of accounts and teams, served by the worker that owns the partition (see engine/web.py).

Only API processes call these (they carry the internal token): an account's
read includes its password hash, which the API verifies a log-in against.
"""
from __future__ import annotations

from aiohttp import web

from api.errors import error_response, json_response
from engine.app import Engine
from engine.partitioning import entity_key
from engine.web import BASE, owned_partition

routes = web.RouteTableDef()


@routes.get(BASE + "/accounts/{email}")
async def account(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    engine: Engine = request.app["engine"]
    record = engine.accounts.get(partition, entity_key(request.match_info["email"]))
    if record is None or record["status"] == "deleted":
        return error_response(404, "not_found", "no such account")
    return json_response({key: value for key, value in record.items()
                          if key not in ("confirmation", "recovery", "sessions")})


@routes.get(BASE + "/teams/{org}")
async def team(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    engine: Engine = request.app["engine"]
    record = engine.teams.get(partition, entity_key(request.match_info["org"]))
    if record is None or record.get("deleted_at") is not None:
        return error_response(404, "not_found", f"team {request.match_info['org']} not found")
    return json_response(record)


def register(engine: Engine) -> None:
    from agents import account_commands, team_commands  # noqa: F401  (add their command handlers on import)

    engine.internal_routes.append(routes)
