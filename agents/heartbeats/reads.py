"""Owner reads of heartbeats, served by the worker that owns the partition (engine/owner_reads.py)."""
from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from engine.owner_reads import BASE, engine_of, health_route, listed_views, owned_entity
from engine.responses import json_response
from tables import heartbeat_views
from tables.heartbeat_data import runtime_key

routes = web.RouteTableDef()
owned_heartbeat = owned_entity("heartbeat", lambda engine: engine.heartbeats)


routes.get(BASE + "/heartbeats")(listed_views(lambda engine: engine.heartbeats, lambda engine: engine.heartbeat_data,
                                              heartbeat_views.heartbeat_view))


@routes.get(BASE + "/heartbeats/{id}")
@owned_heartbeat
async def heartbeat(request: web.Request, partition: int, config: dict) -> web.Response:
    runtime = engine_of(request).heartbeat_data.get(partition, runtime_key(config["id"]))
    return json_response({"data": heartbeat_views.heartbeat_view(config, runtime)})


@routes.get(BASE + "/heartbeats/{id}/events")
@owned_heartbeat
async def events(request: web.Request, partition: int, config: dict) -> web.Response:
    before = request.query.get("before")
    rows = heartbeat_views.history(engine_of(request).heartbeat_data, partition, config["id"],
                                   int(request.query["limit"]), None if before is None else float(before))
    return json_response({"data": rows})


@routes.get(BASE + "/heartbeats/{id}/statistics")
@owned_heartbeat
async def statistics(request: web.Request, partition: int, config: dict) -> web.Response:
    return json_response(heartbeat_views.statistics(
        engine_of(request).heartbeat_data, partition, config["id"], float(request.query["start"]),
        float(request.query["end"]), request.query["interval"]))


def health_routes(health: Callable[[], dict]) -> web.RouteTableDef:
    return health_route("/internal/heartbeats/health", health)
