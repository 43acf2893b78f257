"""Owner reads of accounts, served by the worker that owns the account's partition (engine/owner_reads.py).

Only API processes call these (they carry the internal token): an account's
read includes its password hash, which the API verifies a log-in against.
"""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, owned_partition
from engine.partitioning import entity_key
from engine.responses import error_response, json_response

routes = web.RouteTableDef()


@routes.get(BASE + "/accounts/{email}")
async def account(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    record = engine_of(request).accounts.get(partition, entity_key(request.match_info["email"]))
    if record is None or record["status"] == "deleted":
        return error_response(404, "not_found", "no such account")
    return json_response({key: value for key, value in record.items()
                          if key not in ("confirmation", "recovery", "sessions")})
