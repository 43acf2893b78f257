"""Owner reads of heartbeats, served by the worker that owns the partition (engine/owner_reads.py)."""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, not_found, org_record, owned_partition, requested_ids
from engine.partitioning import entity_key
from engine.responses import json_response
from tables import heartbeat_views
from tables.heartbeat_data import runtime_key

routes = web.RouteTableDef()


def heartbeat_config(request: web.Request, partition: int, heartbeat_id: str | None = None) -> dict | None:
    return org_record(request, engine_of(request).heartbeats, partition,
                      entity_key(heartbeat_id or request.match_info["id"]))


@routes.get(BASE + "/heartbeats")
async def heartbeat_views_of(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    data = engine_of(request).heartbeat_data
    views = []
    for heartbeat_id in requested_ids(request):
        config = heartbeat_config(request, partition, heartbeat_id)
        if config is not None:
            views.append(heartbeat_views.heartbeat_view(config, data.get(partition, runtime_key(heartbeat_id))))
    return json_response({"data": views})


@routes.get(BASE + "/heartbeats/{id}")
async def heartbeat(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    config = heartbeat_config(request, partition)
    if config is None:
        return not_found("heartbeat", request.match_info["id"])
    runtime = engine_of(request).heartbeat_data.get(partition, runtime_key(config["id"]))
    return json_response({"data": heartbeat_views.heartbeat_view(config, runtime)})


@routes.get(BASE + "/heartbeats-enabled")
async def heartbeats_enabled(request: web.Request) -> web.Response:
    """For the public check-in URLs: which of these heartbeats exist, and are they enabled. Nothing else."""
    partition = owned_partition(request)
    table = engine_of(request).heartbeats
    found = {}
    for heartbeat_id in requested_ids(request):
        config = table.get(partition, entity_key(heartbeat_id))
        if config is not None:
            found[heartbeat_id] = config["spec"]["enabled"]
    return json_response({"data": found})


@routes.get(BASE + "/heartbeats/{id}/events")
async def events(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    if heartbeat_config(request, partition) is None:
        return not_found("heartbeat", request.match_info["id"])
    before = request.query.get("before")
    rows = heartbeat_views.history(engine_of(request).heartbeat_data, partition, request.match_info["id"],
                                   int(request.query["limit"]), None if before is None else float(before))
    return json_response({"data": rows})


@routes.get(BASE + "/heartbeats/{id}/statistics")
async def statistics(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    if heartbeat_config(request, partition) is None:
        return not_found("heartbeat", request.match_info["id"])
    return json_response(heartbeat_views.statistics(
        engine_of(request).heartbeat_data, partition, request.match_info["id"], float(request.query["start"]),
        float(request.query["end"]), request.query["interval"]))


def health_routes(health) -> web.RouteTableDef:
    health_table = web.RouteTableDef()

    @health_table.get("/internal/heartbeats/health")
    async def heartbeat_health(request: web.Request) -> web.Response:
        return json_response(health())

    return health_table
