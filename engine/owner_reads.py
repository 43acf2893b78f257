"""The worker's HTTP server: owner reads of its partitions, and whatever public application is mounted beside them.

Owner reads live under /internal/partitions/{p}/...; they answer 421 when this
worker does not own p (or is still restoring it), and the caller looks up the
owner again. Components declare their owner reads (engine/component.py); the
composition root may mount the public API on the same server, so a request may
land on any worker (or on a separate API process) and still be answered by the
owner.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import mode
from aiohttp import web

from engine import metrics, ownership
from engine.partitioning import entity_key
from engine.responses import error_response, json_response
from engine.settings import INTERNAL_HEADER
from tables.entity_keys import runtime_key

log = logging.getLogger(__name__)

BASE = "/internal/partitions/{partition:\\d+}"


def engine_of(request: web.Request) -> Any:
    return request.app["engine"]


def has_internal_token(request: web.Request) -> bool:
    """Does the request carry this deployment's internal token? Compared in constant time; empty never passes."""
    return engine_of(request).settings.is_internal(request.headers.get(INTERNAL_HEADER, ""))


@web.middleware
async def internal_routes_need_the_token(request: web.Request, handler):
    """Every /internal/ route (owner reads, health, engine state) answers only to other pingstream processes."""
    if request.path.startswith("/internal/") and not has_internal_token(request):
        return error_response(403, "forbidden", "internal routes need the internal token")
    return await handler(request)


def owned_partition(request: web.Request) -> int:
    """The request's partition, if this worker serves it; 421 elsewhere (the token is checked before: 403)."""
    engine = engine_of(request)
    partition = int(request.match_info["partition"])
    if not ownership.serves(engine.app, partition):
        raise web.HTTPMisdirectedRequest(reason=f"partition {partition} is not served here")
    return partition


def requested_ids(request: web.Request) -> list[str]:
    """The ids of ?ids=a,b,c, in order."""
    return list(filter(None, request.query.get("ids", "").split(",")))


def org_record(request: web.Request, table: Any, partition: int, key: bytes) -> dict | None:
    """The record under `key` if it belongs to the ?org= organisation: another's is as good as absent (invariant 6)."""
    record = table.get(partition, key)
    return record if record is not None and record["org_id"] == request.query.get("org") else None


def not_found(noun: str, entity_id: str) -> web.Response:
    return error_response(404, "not_found", f"{noun} {entity_id} not found")


def health_route(path: str, health: Callable[[], dict]) -> web.RouteTableDef:
    """A feature's counts at `path` (an /internal/ route: only the deployment's own processes may read it)."""
    routes = web.RouteTableDef()

    @routes.get(path)
    async def feature_health(request: web.Request) -> web.Response:
        return json_response(health())

    return routes


def health_routes(org_config: Any, healths: Mapping[str, Callable[[], dict]]) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/internal/incident-engine")
    async def incident_engine_health(request: web.Request) -> web.Response:
        """This worker's part of the incident engine: its replica of the rules, and each agent's counts."""
        return json_response({"org_config": org_config.summary(),
                              **{name: health() for name, health in sorted(healths.items())}})

    return routes


def serve(engine: Any, routes: Iterable[web.RouteTableDef],
          public_app: Callable[[], web.Application] | None = None) -> type[mode.Service]:
    """A service that starts with the worker and serves `routes` (and the public app, if any) on worker_port."""
    settings = engine.settings

    class WorkerWeb(mode.Service):
        async def on_start(self) -> None:
            application = public_app() if public_app is not None else web.Application()
            application["engine"] = engine
            application.middlewares.insert(0, internal_routes_need_the_token)
            metrics.serve_metrics(application, settings.metrics_token)
            for table in routes:
                application.add_routes(table)
            self.runner = web.AppRunner(application, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, settings.worker_host, settings.worker_port)
            await site.start()
            log.info("worker serving on http://%s:%d", settings.worker_host, settings.worker_port)

        async def on_stop(self) -> None:
            await self.runner.cleanup()

    return WorkerWeb


def requested_records(request: web.Request, table: Any, partition: int,
                      key: Callable[[str], bytes] = entity_key) -> list[dict]:
    """The records of the ?ids= entities that exist in the ?org= organisation, in the order asked."""
    found = (org_record(request, table, partition, key(entity_id)) for entity_id in requested_ids(request))
    return [record for record in found if record is not None]


def requested_views(request: web.Request, table: Any, data: Any, partition: int,
                    view: Callable[[dict, Any], dict]) -> list[dict]:
    """`view(configuration, runtime)` of each ?ids= entity of the ?org= organisation; runtimes from `data`."""
    return [view(config, data.get(partition, runtime_key(config["id"])))
            for config in requested_records(request, table, partition)]


def listed_views(table_of: Callable[[Any], Any], data_of: Callable[[Any], Any],
                 view: Callable[[dict, Any], dict]) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An owner read of the ?ids= entities of ?org=, each as `view(configuration, runtime)`, in the order asked."""

    async def read(request: web.Request) -> web.Response:
        engine = engine_of(request)
        return json_response({"data": requested_views(request, table_of(engine), data_of(engine),
                                                      owned_partition(request), view)})

    return read


def owned_entity(noun: str, table_of: Callable[[Any], Any], key: Callable[[str], bytes] = entity_key):
    """An owner read of one entity, {id} in the path: the view gets (request, partition, record), or 404 is answered.

    The record must belong to the ?org= organisation: another's is as good as absent (invariant 6).
    """

    def wrap(view: Callable[[web.Request, int, dict], Awaitable[web.Response]]) -> Callable[..., Any]:
        @functools.wraps(view)
        async def read(request: web.Request) -> web.Response:
            partition = owned_partition(request)
            entity_id = request.match_info["id"]
            record = org_record(request, table_of(engine_of(request)), partition, key(entity_id))
            if record is None:
                return not_found(noun, entity_id)
            return await view(request, partition, record)

        return read

    return wrap
