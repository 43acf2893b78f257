"""Owner reads of an organisation's rulesets, grouped by scope (engine/owner_reads.py)."""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, not_found, owned_partition
from engine.responses import json_response
from tables.rulesets import grouped, org_range, ruleset_key, ruleset_view

routes = web.RouteTableDef()


@routes.get(BASE + "/rulesets")
async def list_rulesets(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    configs = [config for _, config in engine_of(request).rulesets.scan(partition, *org_range(request.query["org"]))]
    return json_response({"data": grouped(configs)})


@routes.get(BASE + "/rulesets/{id}")
async def get_ruleset(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    config = engine_of(request).rulesets.get(partition, ruleset_key(request.query["org"], request.match_info["id"]))
    if config is None:
        return not_found("ruleset", request.match_info["id"])
    return json_response({"data": ruleset_view(config)})
