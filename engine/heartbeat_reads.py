"""Owner reads of heartbeats, served by the worker that owns the partition (see engine/web.py)."""
from __future__ import annotations

from aiohttp import web

from api.errors import error_response, json_response
from engine.app import Engine
from engine.partitioning import entity_key
from engine.web import BASE, owned_partition
from tables import heartbeat_views
from tables.heartbeat_data import runtime_key

routes = web.RouteTableDef()


def engine_of(request: web.Request) -> Engine:
    return request.app["engine"]


def heartbeat_config(request: web.Request, partition: int) -> dict | None:
    config = engine_of(request).heartbeats.get(partition, entity_key(request.match_info["id"]))
    if config is None or config["org_id"] != request.query.get("org"):
        return None
    return config


def not_found(request: web.Request) -> web.Response:
    return error_response(404, "not_found", f"heartbeat {request.match_info['id']} not found")


@routes.get(BASE + "/heartbeats")
async def heartbeat_views_of(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    engine, org = engine_of(request), request.query.get("org")
    views = []
    for heartbeat_id in filter(None, request.query.get("ids", "").split(",")):
        config = engine.heartbeats.get(partition, entity_key(heartbeat_id))
        if config is not None and config["org_id"] == org:
            views.append(heartbeat_views.heartbeat_view(
                config, engine.heartbeat_data.get(partition, runtime_key(heartbeat_id))))
    return json_response({"data": views})


@routes.get(BASE + "/heartbeats/{id}")
async def heartbeat(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    config = heartbeat_config(request, partition)
    if config is None:
        return not_found(request)
    runtime = engine_of(request).heartbeat_data.get(partition, runtime_key(config["id"]))
    return json_response({"data": heartbeat_views.heartbeat_view(config, runtime)})


@routes.get(BASE + "/heartbeats-enabled")
async def heartbeats_enabled(request: web.Request) -> web.Response:
    """For the public check-in URLs: which of these heartbeats exist, and are they enabled. Nothing else."""
    partition = owned_partition(request)
    table = engine_of(request).heartbeats
    found = {}
    for heartbeat_id in filter(None, request.query.get("ids", "").split(",")):
        config = table.get(partition, entity_key(heartbeat_id))
        if config is not None:
            found[heartbeat_id] = config["spec"]["enabled"]
    return json_response({"data": found})


@routes.get(BASE + "/heartbeats/{id}/events")
async def events(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    if heartbeat_config(request, partition) is None:
        return not_found(request)
    before = request.query.get("before")
    rows = heartbeat_views.history(engine_of(request).heartbeat_data, partition, request.match_info["id"],
                                   int(request.query["limit"]), None if before is None else float(before))
    return json_response({"data": rows})


@routes.get(BASE + "/heartbeats/{id}/statistics")
async def statistics(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    if heartbeat_config(request, partition) is None:
        return not_found(request)
    return json_response(heartbeat_views.statistics(
        engine_of(request).heartbeat_data, partition, request.match_info["id"], float(request.query["start"]),
        float(request.query["end"]), request.query["interval"]))


@routes.get("/internal/heartbeats/health")
async def heartbeat_health(request: web.Request) -> web.Response:
    folder = engine_of(request).heartbeat_folder
    return json_response({
        "checkins_applied": folder.applied,
        "checkins_redelivered_and_skipped": folder.duplicates,
        "deadlines_expired": folder.expired,
        "dead_letters": folder.dead_letters.counts.get("heartbeats", 0),
    })
