"""/v1/monitors: configuration through commands, state and statistics from the owning worker."""
from __future__ import annotations

import re
import time
import uuid

from aiohttp import web

from api import params
from api.auth import principal_of
from api.org_lists import indexed_page
from api.owner_reads import Resource, answer, delete_each, gateway_of
from api.params import Choice, Id, Ids, Integer, Moment
from api.routes import Auth, Data, Page, Routes
from engine.responses import json_response
from schemas.monitor import (
    BulkDeleted, Check, Monitor, MonitorPatch, MonitorSpec, PerformancePoint, StateChange, Uptime,
)
from schemas.validation import InvalidInput

routes = Routes()
MONITOR_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MONITOR = Resource.matching("monitor", "/monitors", MONITOR_ID.pattern)
MONITOR_PATH = {"id": Id("monitor", MONITOR_ID)}
MAX_BULK = 100
READS, WRITES = Auth("monitors:read"), Auth("monitors:write")


def new_monitor_id() -> str:
    return "mon_" + uuid.uuid4().hex[:20]


@routes.post("/v1/monitors", auth=WRITES, body=MonitorSpec, answers={201: Data(Monitor)})
async def create_monitor(request: web.Request, body: MonitorSpec) -> web.Response:
    status, reply = await gateway_of(request).command(
        "monitor.create", principal_of(request).org_id, new_monitor_id(), body.model_dump(mode="json"))
    return answer(status, reply)


@routes.get("/v1/monitors", auth=READS, query=params.pagination(), answers={200: Page(Monitor)})
async def list_monitors(request: web.Request, page: int, per_page: int) -> web.Response:
    data, total = await indexed_page(gateway_of(request), principal_of(request).org_id, "monitors",
                                     page, per_page, "/monitors")
    return json_response(params.paginated(data, page, per_page, total))


@routes.get("/v1/monitors/{id}", auth=READS, path_params=MONITOR_PATH, answers={200: Data(Monitor)})
async def get_monitor(request: web.Request) -> web.Response:
    return await MONITOR.read(request)


@routes.patch("/v1/monitors/{id}", auth=WRITES, path_params=MONITOR_PATH, body=MonitorPatch,
              answers={200: Data(Monitor)})
async def update_monitor(request: web.Request, body: MonitorPatch) -> web.Response:
    monitor_id = MONITOR.id_of(request)
    status, reply = await gateway_of(request).command(
        "monitor.update", principal_of(request).org_id, monitor_id, body.model_dump(exclude_unset=True))
    return answer(status, reply)


@routes.delete("/v1/monitors/{id}", auth=WRITES, path_params=MONITOR_PATH, answers={204: None})
async def delete_monitor(request: web.Request) -> web.Response:
    gateway, monitor_id = gateway_of(request), MONITOR.id_of(request)
    status, body = await gateway.directory_command("monitor.delete", principal_of(request).org_id, monitor_id)
    return answer(status, body)


@routes.delete("/v1/monitors", auth=WRITES,
                query={"id": Ids(MAX_BULK, "the monitors to delete", MONITOR_PATH["id"])},
                answers={200: Data(BulkDeleted)})
async def delete_monitors(request: web.Request, id: list[str]) -> web.Response:
    """Delete several: ?id=..&id=..; answers which were deleted and which not found."""
    return await delete_each(request, "monitor.delete", id, lambda raw: raw if MONITOR_ID.match(raw) else None)


async def monitor_command(request: web.Request, kind: str) -> web.Response:
    status, body = await gateway_of(request).command(kind, principal_of(request).org_id, MONITOR.id_of(request))
    return answer(status, body)


@routes.post("/v1/monitors/{id}/pause", auth=WRITES, path_params=MONITOR_PATH, answers={200: Data(Monitor)})
async def pause_monitor(request: web.Request) -> web.Response:
    return await monitor_command(request, "monitor.pause")


@routes.post("/v1/monitors/{id}/resume", auth=WRITES, path_params=MONITOR_PATH, answers={200: Data(Monitor)})
async def resume_monitor(request: web.Request) -> web.Response:
    return await monitor_command(request, "monitor.resume")


@routes.get("/v1/monitors/{id}/uptime", auth=READS, path_params=MONITOR_PATH,
            query={"period": Choice("24h", ("24h", "7d", "30d", "90d"))}, answers={200: Data(Uptime)})
async def monitor_uptime(request: web.Request, period: str) -> web.Response:
    return await MONITOR.read(request, "/uptime", {"period": period})


@routes.get("/v1/monitors/{id}/performance", auth=READS, path_params=MONITOR_PATH,
            query={"interval": Choice("1h", ("1h", "1d")), "start_date": Moment("default: a day ago"),
                   "end_date": Moment("default: now")},
            answers={200: Data(list[PerformancePoint])})
async def monitor_performance(request: web.Request, interval: str, start_date: float | None,
                              end_date: float | None) -> web.Response:
    now = time.time()
    start = now - 86400 if start_date is None else start_date
    end = now if end_date is None else end_date
    if end <= start:
        raise InvalidInput("end_date must be after start_date", {"end_date": "must be after start_date"})
    return await MONITOR.read(request, "/performance",
                            {"start": start, "end": end, "interval": interval})


@routes.get("/v1/monitors/{id}/checks", auth=READS, path_params=MONITOR_PATH, query=params.pagination(500),
            answers={200: Page(Check)})
async def monitor_checks(request: web.Request, page: int, per_page: int) -> web.Response:
    return await MONITOR.read(request, "/checks", {"page": page, "per_page": per_page})


@routes.get("/v1/monitors/{id}/state-changes", auth=READS, path_params=MONITOR_PATH,
            query={"start_date": Moment("default: 90 days ago"), "end_date": Moment("default: now"),
                   "limit": Integer(100, 1, 1000)},
            answers={200: Data(list[StateChange])})
async def monitor_state_changes(request: web.Request, start_date: float | None, end_date: float | None,
                                limit: int) -> web.Response:
    now = time.time()
    start = now - 90 * 86400 if start_date is None else start_date
    end = now if end_date is None else end_date
    return await MONITOR.read(request, "/state-changes",
                            {"start": start, "end": end, "limit": limit})
