"""/v1/monitors: configuration through commands, state and statistics from the owning worker."""
from __future__ import annotations

import asyncio
import re
import time
import uuid

from aiohttp import web

from api import params
from api.auth import authorize, principal_of
from api.openapi import request_body
from api.org_lists import indexed_page
from api.owner_reads import Resource, answer, body_of, gateway_of
from engine.responses import json_response
from schemas.monitor import MonitorPatch, MonitorSpec
from schemas.validation import InvalidInput, parse

routes = web.RouteTableDef()
MONITOR_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MONITOR = Resource.matching("monitor", "/monitors", MONITOR_ID.pattern)
MAX_BULK = 100


def new_monitor_id() -> str:
    return "mon_" + uuid.uuid4().hex[:20]


@routes.post("/v1/monitors")
@request_body(MonitorSpec)
@authorize("monitors:write")
async def create_monitor(request: web.Request) -> web.Response:
    spec = parse(MonitorSpec, await body_of(request))
    status, body = await gateway_of(request).command(
        "monitor.create", principal_of(request).org_id, new_monitor_id(), spec.model_dump(mode="json"))
    return answer(status, body)


@routes.get("/v1/monitors")
@authorize("monitors:read")
async def list_monitors(request: web.Request) -> web.Response:
    page, per_page = params.pagination(request)
    data, total = await indexed_page(gateway_of(request), principal_of(request).org_id, "monitors",
                                     page, per_page, "/monitors")
    return json_response(params.paginated(data, page, per_page, total))


@routes.get("/v1/monitors/{id}")
@authorize("monitors:read")
async def get_monitor(request: web.Request) -> web.Response:
    return await MONITOR.read(request)


@routes.patch("/v1/monitors/{id}")
@request_body(MonitorPatch)
@authorize("monitors:write")
async def update_monitor(request: web.Request) -> web.Response:
    monitor_id = MONITOR.id_of(request)
    patch = parse(MonitorPatch, await body_of(request))
    status, body = await gateway_of(request).command(
        "monitor.update", principal_of(request).org_id, monitor_id, patch.model_dump(exclude_unset=True))
    return answer(status, body)


@routes.delete("/v1/monitors/{id}")
@authorize("monitors:write")
async def delete_monitor(request: web.Request) -> web.Response:
    gateway, monitor_id = gateway_of(request), MONITOR.id_of(request)
    status, body = await gateway.command("monitor.delete", principal_of(request).org_id, monitor_id)
    gateway.forget_known_monitor(monitor_id)
    return answer(status, body)


@routes.delete("/v1/monitors")
@authorize("monitors:write")
async def delete_monitors(request: web.Request) -> web.Response:
    ids = list(dict.fromkeys(request.query.getall("id", [])))
    if not ids or len(ids) > MAX_BULK:
        raise InvalidInput(f"Give between 1 and {MAX_BULK} monitors to delete as ?id=..&id=..",
                           {"id": f"between 1 and {MAX_BULK} ids required"})
    gateway, org_id = gateway_of(request), principal_of(request).org_id
    answers = await asyncio.gather(*[
        gateway.command("monitor.delete", org_id, monitor_id) if MONITOR_ID.match(monitor_id) else _absent()
        for monitor_id in ids
    ])
    deleted = [monitor_id for monitor_id, (status, _) in zip(ids, answers) if status == 204]
    for monitor_id in deleted:
        gateway.forget_known_monitor(monitor_id)
    missing = [monitor_id for monitor_id, (status, _) in zip(ids, answers) if status == 404]
    return json_response({"data": {"deleted": deleted, "not_found": missing}})


async def _absent() -> tuple[int, None]:
    return 404, None


async def monitor_command(request: web.Request, kind: str) -> web.Response:
    status, body = await gateway_of(request).command(kind, principal_of(request).org_id, MONITOR.id_of(request))
    return answer(status, body)


@routes.post("/v1/monitors/{id}/pause")
@authorize("monitors:write")
async def pause_monitor(request: web.Request) -> web.Response:
    return await monitor_command(request, "monitor.pause")


@routes.post("/v1/monitors/{id}/resume")
@authorize("monitors:write")
async def resume_monitor(request: web.Request) -> web.Response:
    return await monitor_command(request, "monitor.resume")


@routes.get("/v1/monitors/{id}/uptime")
@authorize("monitors:read")
async def monitor_uptime(request: web.Request) -> web.Response:
    period = params.choice(request, "period", "24h", ("24h", "7d", "30d", "90d"))
    return await MONITOR.read(request, "/uptime", {"period": period})


@routes.get("/v1/monitors/{id}/performance")
@authorize("monitors:read")
async def monitor_performance(request: web.Request) -> web.Response:
    now = time.time()
    interval = params.choice(request, "interval", "1h", ("1h", "1d"))
    start = params.moment(request, "start_date", now - 86400)
    end = params.moment(request, "end_date", now)
    if end <= start:
        raise InvalidInput("end_date must be after start_date", {"end_date": "must be after start_date"})
    return await MONITOR.read(request, "/performance",
                            {"start": start, "end": end, "interval": interval})


@routes.get("/v1/monitors/{id}/checks")
@authorize("monitors:read")
async def monitor_checks(request: web.Request) -> web.Response:
    page, per_page = params.pagination(request, max_per_page=500)
    return await MONITOR.read(request, "/checks", {"page": page, "per_page": per_page})


@routes.get("/v1/monitors/{id}/state-changes")
@authorize("monitors:read")
async def monitor_state_changes(request: web.Request) -> web.Response:
    now = time.time()
    start = params.moment(request, "start_date", now - 90 * 86400)
    end = params.moment(request, "end_date", now)
    limit = params.integer(request, "limit", 100, 1, 1000)
    return await MONITOR.read(request, "/state-changes",
                            {"start": start, "end": end, "limit": limit})
