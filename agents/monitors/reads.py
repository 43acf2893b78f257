"""Owner reads of monitors, served by the worker that owns the partition (engine/owner_reads.py)."""
from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from engine import ownership
from engine.owner_reads import BASE, engine_of, listed_views, owned_entity
from engine.responses import json_response
from tables import monitor_views
from tables.monitor_data import runtime_key

routes = web.RouteTableDef()
owned_monitor = owned_entity("monitor", lambda engine: engine.monitors)


routes.get(BASE + "/monitors")(
    listed_views(lambda engine: engine.monitors, lambda engine: engine.monitor_data, monitor_views.monitor_view))


@routes.get(BASE + "/monitors/{id}")
@owned_monitor
async def monitor(request: web.Request, partition: int, config: dict) -> web.Response:
    data = engine_of(request).monitor_data
    view = monitor_views.monitor_view(config, data.get(partition, runtime_key(config["id"])))
    month = monitor_views.uptime(data, partition, config["id"], "30d")
    view["uptime_30d"] = {k: month[k] for k in ("uptime_percentage", "total_checks", "up_checks", "down_checks")}
    return json_response({"data": view})


@routes.get(BASE + "/monitors/{id}/uptime")
@owned_monitor
async def uptime(request: web.Request, partition: int, config: dict) -> web.Response:
    data = monitor_views.uptime(engine_of(request).monitor_data, partition, config["id"], request.query["period"],
                                spec=config["spec"])
    return json_response({"data": data})


@routes.get(BASE + "/monitors/{id}/performance")
@owned_monitor
async def performance(request: web.Request, partition: int, config: dict) -> web.Response:
    interval = {"1h": 3600, "1d": 86400}[request.query["interval"]]
    points = monitor_views.performance(engine_of(request).monitor_data, partition, config["id"],
                                       float(request.query["start"]), float(request.query["end"]), interval)
    return json_response({"data": points})


@routes.get(BASE + "/monitors/{id}/checks")
@owned_monitor
async def checks(request: web.Request, partition: int, config: dict) -> web.Response:
    page, per_page = int(request.query["page"]), int(request.query["per_page"])
    rows, total = monitor_views.recent_checks(engine_of(request).monitor_data, partition, config["id"], page, per_page)
    return json_response({"data": rows, "meta": {"page": page, "per_page": per_page, "total": total,
                                                 "total_pages": (total + per_page - 1) // per_page}})


@routes.get(BASE + "/monitors/{id}/state-changes")
@owned_monitor
async def state_changes(request: web.Request, partition: int, config: dict) -> web.Response:
    changes = monitor_views.state_changes(engine_of(request).monitor_data, partition, config["id"],
                                          float(request.query["start"]), float(request.query["end"]),
                                          int(request.query["limit"]))
    return json_response({"data": changes})


def health_routes(health: Callable[[], dict]) -> web.RouteTableDef:
    """The worker's health: its partitions, and what the checks fold applied."""
    health_table = web.RouteTableDef()

    @health_table.get("/internal/health")
    async def worker_health(request: web.Request) -> web.Response:
        engine = engine_of(request)
        return json_response({
            "partitions": sorted(ownership.assigned(engine.app)),
            "rebalancing": engine.app.rebalancing,
            **health(),
            "state_records_flushed": engine.state.records_flushed,
        })

    return health_table
