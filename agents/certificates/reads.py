"""Owner reads of a monitor's certificate, domain and reminders, served by the worker owning its partition."""
from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from engine.owner_reads import BASE, engine_of, health_route, owned_entity
from engine.partitioning import entity_key
from engine.responses import error_response, json_response
from tables import certificates as rules

routes = web.RouteTableDef()
owned_monitor = owned_entity("monitor", lambda engine: engine.monitors)


def reminders_of(request: web.Request, partition: int, monitor_id: str) -> dict:
    return engine_of(request).certificate_reminders.get(partition, entity_key(monitor_id)) or {}


@routes.get(BASE + "/monitors/{id}/ssl")
@owned_monitor
async def ssl(request: web.Request, partition: int, config: dict) -> web.Response:
    runtime = engine_of(request).certificates.get(partition, rules.monitor_key(config["id"]))
    reminder = reminders_of(request, partition, config["id"]).get("ssl")
    return json_response({"data": rules.certificate_view(config["id"], runtime, reminder, time.time())})


@routes.get(BASE + "/monitors/{id}/domain")
@owned_monitor
async def domain(request: web.Request, partition: int, config: dict) -> web.Response:
    runtime = engine_of(request).certificates.get(partition, rules.monitor_key(config["id"]))
    named = rules.registrable_domain(rules.host_of(config["spec"]))
    reminder = reminders_of(request, partition, config["id"]).get("domain")
    return json_response({"data": rules.domain_view(config["id"], named, runtime, reminder, time.time())})


@routes.get(BASE + "/monitors/{id}/reminders/{kind:ssl|domain}")
@owned_monitor
async def reminder(request: web.Request, partition: int, config: dict) -> web.Response:
    kind = request.match_info["kind"]
    found = reminders_of(request, partition, config["id"]).get(kind)
    if found is None:
        return error_response(404, "not_found", f"monitor {config['id']} has no {kind} reminder")
    return json_response({"data": rules.reminder_view(config["id"], kind, found)})


def health_routes(health: Callable[[], dict]) -> web.RouteTableDef:
    return health_route("/internal/certificates/health", health)
