"""The worker's HTTP server: owner reads of its partitions, and the public API too.

Owner reads live under /internal/partitions/{p}/...; they answer 421 when this
worker does not own p (or is still restoring it), and the caller looks up the
owner again. The public API is mounted beside them, so a request may land on
any worker (or on a separate API process) and still be answered by the owner.
"""
from __future__ import annotations

import logging
import time

import mode
from aiohttp import web

from api.app import create_app
from api.errors import error_response, json_response
from api.gateway import INTERNAL_HEADER, Gateway
from engine import topics
from engine.app import Engine
from engine.partitioning import entity_key
from tables import monitor_views, org_index, usage
from tables.monitor_data import runtime_key

log = logging.getLogger(__name__)

internal = web.RouteTableDef()
BASE = "/internal/partitions/{partition:\\d+}"


def has_internal_token(request: web.Request) -> bool:
    """Does the request carry this deployment's internal token? Compared in constant time; empty never passes."""
    return request.app["gateway"].is_internal(request.headers.get(INTERNAL_HEADER, ""))


@web.middleware
async def internal_routes_need_the_token(request: web.Request, handler):
    """Every /internal/ route (owner reads, health, engine state) answers only to other pingstream processes."""
    if request.path.startswith("/internal/") and not has_internal_token(request):
        return error_response(403, "forbidden", "internal routes need the internal token")
    return await handler(request)


def owned_partition(request: web.Request) -> int:
    engine: Engine = request.app["engine"]
    partition = int(request.match_info["partition"])
    app = engine.app
    owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topics.CHECK_RESULTS}
    if app.rebalancing or partition not in owned:
        raise web.HTTPMisdirectedRequest(reason=f"partition {partition} is not served here")
    return partition


def monitor_config(request: web.Request, partition: int) -> dict | None:
    engine: Engine = request.app["engine"]
    config = engine.monitors.get(partition, entity_key(request.match_info["id"]))
    if config is None or config["org_id"] != request.query.get("org"):
        return None
    return config


def not_found(request: web.Request) -> web.Response:
    return error_response(404, "not_found", f"monitor {request.match_info['id']} not found")


@internal.get(BASE + "/index/{org}/{collection}")
async def index_page(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    engine: Engine = request.app["engine"]
    ids, total = org_index.page(engine.org_index, partition, request.match_info["org"],
                                request.match_info["collection"], int(request.query["page"]),
                                int(request.query["per_page"]))
    return json_response({"ids": ids, "total": total})


@internal.get(BASE + "/usage/{org}")
async def usage_share(request: web.Request) -> web.Response:
    """This partition's share of an organisation's usage; the API adds up every partition's."""
    partition = owned_partition(request)
    engine: Engine = request.app["engine"]
    return json_response({"data": usage.partition_usage(engine.monitors, engine.monitor_data, engine.org_index,
                                                        partition, request.match_info["org"], time.time())})


def requested_configs(request: web.Request, partition: int) -> list[dict]:
    """Configurations of the ?ids= monitors that exist in the ?org= organisation."""
    engine: Engine = request.app["engine"]
    org = request.query.get("org")
    configs = []
    for monitor_id in filter(None, request.query.get("ids", "").split(",")):
        config = engine.monitors.get(partition, entity_key(monitor_id))
        if config is not None and config["org_id"] == org:
            configs.append(config)
    return configs


@internal.get(BASE + "/monitor-ids")
async def known_monitor_ids(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    return json_response({"data": [config["id"] for config in requested_configs(request, partition)]})


@internal.get(BASE + "/monitors")
async def monitor_views_of(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    engine: Engine = request.app["engine"]
    return json_response({"data": [
        monitor_views.monitor_view(config, engine.monitor_data.get(partition, runtime_key(config["id"])))
        for config in requested_configs(request, partition)
    ]})


@internal.get(BASE + "/monitors/{id}")
async def monitor(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    config = monitor_config(request, partition)
    if config is None:
        return not_found(request)
    engine: Engine = request.app["engine"]
    view = monitor_views.monitor_view(config, engine.monitor_data.get(partition, runtime_key(config["id"])))
    month = monitor_views.uptime(engine.monitor_data, partition, config["id"], "30d")
    view["uptime_30d"] = {k: month[k] for k in ("uptime_percentage", "total_checks", "up_checks", "down_checks")}
    return json_response({"data": view})


@internal.get(BASE + "/monitors/{id}/uptime")
async def uptime(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    if monitor_config(request, partition) is None:
        return not_found(request)
    engine: Engine = request.app["engine"]
    data = monitor_views.uptime(engine.monitor_data, partition, request.match_info["id"], request.query["period"])
    return json_response({"data": data})


@internal.get(BASE + "/monitors/{id}/performance")
async def performance(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    if monitor_config(request, partition) is None:
        return not_found(request)
    engine: Engine = request.app["engine"]
    interval = {"1h": 3600, "1d": 86400}[request.query["interval"]]
    points = monitor_views.performance(engine.monitor_data, partition, request.match_info["id"],
                                       float(request.query["start"]), float(request.query["end"]), interval)
    return json_response({"data": points})


@internal.get(BASE + "/monitors/{id}/checks")
async def checks(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    if monitor_config(request, partition) is None:
        return not_found(request)
    engine: Engine = request.app["engine"]
    page, per_page = int(request.query["page"]), int(request.query["per_page"])
    rows, total = monitor_views.recent_checks(engine.monitor_data, partition, request.match_info["id"], page, per_page)
    return json_response({"data": rows, "meta": {"page": page, "per_page": per_page, "total": total,
                                                 "total_pages": (total + per_page - 1) // per_page}})


@internal.get(BASE + "/monitors/{id}/state-changes")
async def state_changes(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    if monitor_config(request, partition) is None:
        return not_found(request)
    engine: Engine = request.app["engine"]
    changes = monitor_views.state_changes(engine.monitor_data, partition, request.match_info["id"],
                                          float(request.query["start"]), float(request.query["end"]),
                                          int(request.query["limit"]))
    return json_response({"data": changes})


@internal.get("/internal/health")
async def worker_health(request: web.Request) -> web.Response:
    engine: Engine = request.app["engine"]
    folder = engine.check_folder
    return json_response({
        "partitions": sorted(tp.partition for tp in engine.app.consumer.assignment()
                             if tp.topic == topics.CHECK_RESULTS),
        "rebalancing": engine.app.rebalancing,
        "results_applied": folder.applied,
        "results_redelivered_and_skipped": folder.duplicates,
        "dead_letters": dict(folder.dead_letters.counts),
        "state_records_flushed": engine.state.records_flushed,
    })


def register(engine: Engine) -> None:
    class WorkerWeb(mode.Service):
        """Starts with the worker; serves owner reads and the public API on worker_port."""

        async def on_start(self) -> None:
            self.gateway = Gateway(engine.settings)
            await self.gateway.start()
            application = create_app(self.gateway, manage_gateway=False)
            application["engine"] = engine
            application.middlewares.insert(0, internal_routes_need_the_token)
            application.add_routes(internal)
            for routes in engine.internal_routes:
                application.add_routes(routes)
            self.runner = web.AppRunner(application, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, engine.settings.worker_host, engine.settings.worker_port)
            await site.start()
            log.info("worker serving on http://%s:%d", engine.settings.worker_host, engine.settings.worker_port)

        async def on_stop(self) -> None:
            await self.runner.cleanup()
            await self.gateway.stop()

    engine.app.service(WorkerWeb)
