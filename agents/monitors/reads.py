"""Owner reads of monitors, served by the worker that owns the partition (engine/owner_reads.py)."""
from __future__ import annotations

from aiohttp import web

from engine import ownership
from engine.owner_reads import BASE, engine_of, not_found, org_record, owned_partition, requested_ids
from engine.partitioning import entity_key
from engine.responses import json_response
from tables import monitor_views
from tables.monitor_data import runtime_key

routes = web.RouteTableDef()


def monitor_config(request: web.Request, partition: int) -> dict | None:
    return org_record(request, engine_of(request).monitors, partition, entity_key(request.match_info["id"]))


def requested_configs(request: web.Request, partition: int) -> list[dict]:
    """Configurations of the ?ids= monitors that exist in the ?org= organisation."""
    monitors = engine_of(request).monitors
    found = (org_record(request, monitors, partition, entity_key(monitor_id)) for monitor_id in requested_ids(request))
    return [config for config in found if config is not None]


def known(request: web.Request) -> tuple[int, str] | None:
    """The request's partition and monitor id, if the monitor exists in the ?org= organisation."""
    partition = owned_partition(request)
    return None if monitor_config(request, partition) is None else (partition, request.match_info["id"])


@routes.get(BASE + "/monitor-ids")
async def known_monitor_ids(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    return json_response({"data": [config["id"] for config in requested_configs(request, partition)]})


@routes.get(BASE + "/monitors")
async def monitor_views_of(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    data = engine_of(request).monitor_data
    return json_response({"data": [
        monitor_views.monitor_view(config, data.get(partition, runtime_key(config["id"])))
        for config in requested_configs(request, partition)
    ]})


@routes.get(BASE + "/monitors/{id}")
async def monitor(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    config = monitor_config(request, partition)
    if config is None:
        return not_found("monitor", request.match_info["id"])
    data = engine_of(request).monitor_data
    view = monitor_views.monitor_view(config, data.get(partition, runtime_key(config["id"])))
    month = monitor_views.uptime(data, partition, config["id"], "30d")
    view["uptime_30d"] = {k: month[k] for k in ("uptime_percentage", "total_checks", "up_checks", "down_checks")}
    return json_response({"data": view})


@routes.get(BASE + "/monitors/{id}/uptime")
async def uptime(request: web.Request) -> web.Response:
    found = known(request)
    if found is None:
        return not_found("monitor", request.match_info["id"])
    partition, monitor_id = found
    data = monitor_views.uptime(engine_of(request).monitor_data, partition, monitor_id, request.query["period"])
    return json_response({"data": data})


@routes.get(BASE + "/monitors/{id}/performance")
async def performance(request: web.Request) -> web.Response:
    found = known(request)
    if found is None:
        return not_found("monitor", request.match_info["id"])
    partition, monitor_id = found
    interval = {"1h": 3600, "1d": 86400}[request.query["interval"]]
    points = monitor_views.performance(engine_of(request).monitor_data, partition, monitor_id,
                                       float(request.query["start"]), float(request.query["end"]), interval)
    return json_response({"data": points})


@routes.get(BASE + "/monitors/{id}/checks")
async def checks(request: web.Request) -> web.Response:
    found = known(request)
    if found is None:
        return not_found("monitor", request.match_info["id"])
    partition, monitor_id = found
    page, per_page = int(request.query["page"]), int(request.query["per_page"])
    rows, total = monitor_views.recent_checks(engine_of(request).monitor_data, partition, monitor_id, page, per_page)
    return json_response({"data": rows, "meta": {"page": page, "per_page": per_page, "total": total,
                                                 "total_pages": (total + per_page - 1) // per_page}})


@routes.get(BASE + "/monitors/{id}/state-changes")
async def state_changes(request: web.Request) -> web.Response:
    found = known(request)
    if found is None:
        return not_found("monitor", request.match_info["id"])
    partition, monitor_id = found
    changes = monitor_views.state_changes(engine_of(request).monitor_data, partition, monitor_id,
                                          float(request.query["start"]), float(request.query["end"]),
                                          int(request.query["limit"]))
    return json_response({"data": changes})


def health_routes(health) -> web.RouteTableDef:
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
