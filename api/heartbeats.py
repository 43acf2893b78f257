"""/v1/heartbeats: configuration through commands; state, history, statistics from the owner; check-ins.

Check-ins (POST, or GET with `result`, `/v1/heartbeats/{id}/events`) need no API
key: the id is the secret (api/checkins.py). A GET of the same URL without
`result` reads the history instead, with an API key.
"""
from __future__ import annotations

import time

from aiohttp import web

from api import params
from api.auth import authorize, presented_credential, principal_of
from api.checkins import check_in, ingest_of, read_body
from api.errors import ApiError
from api.monitors import MAX_BULK
from api.owner_reads import OWNER_HEADER, Resource, answer, delete_each, gateway_of, read_owner
from api.org_lists import indexed_page
from api.params import Choice, Id, Ids, Integer, Moment, Text
from api.rate_limits import unmetered, unmetered_if
from api.routes import Auth, Bare, Body, Data, Page, Routes
from schemas.heartbeat import (
    RID, SERVICE_ID, CheckInAccepted, Heartbeat, HeartbeatEvent, HeartbeatPatch, HeartbeatSpec,
    HeartbeatStatistics, id_for_token, new_push_token, parse_heartbeat_id,
)
from schemas.monitor import BulkDeleted
from schemas.validation import InvalidInput
from tables.heartbeat_state import RESULTS
from tables.heartbeat_views import COLLECTION, INTERVALS, service_collection
from engine.responses import error_response, json_response
from tables.monitor_views import iso

routes = Routes()
HEARTBEAT = Resource("heartbeat", "/heartbeats", parse_heartbeat_id)
HEARTBEAT_PATH = {"id": Id("heartbeat", valid=parse_heartbeat_id, format="uuid")}
READS, WRITES = Auth("heartbeats:read"), Auth("heartbeats:write")
DEFAULT_RECORDS = 24      # statistics records when no start_date is given (90 days at most)
MAX_RECORDS = 2000


def public_base(request: web.Request) -> str:
    """Where clients reach us, as the caller did (a trusted proxy says so in X-Forwarded-*: api/forwarding.py)."""
    return f"{request.scheme}://{request.host}"


def checkin_urls(request: web.Request, heartbeat: dict) -> dict[str, str | None]:
    base, heartbeat_id, token = public_base(request), heartbeat["id"], heartbeat.get("push_token")
    return {
        "events": f"{base}/v1/heartbeats/{heartbeat_id}/events",
        "healthchecks": f"{base}/ping/{heartbeat_id}",
        "uptime_kuma": f"{base}/api/push/{token}?status=up&msg=OK&ping=" if token else None,
    }


def answer_with_urls(request: web.Request, status: int, body: object) -> web.Response:
    if status in (200, 201) and isinstance(body, dict) and "id" in body:
        body = {**body, "checkin_urls": checkin_urls(request, body)}
    return answer(status, body)


# -- configuration --------------------------------------------------------------


@routes.post("/v1/heartbeats", auth=WRITES, body=HeartbeatSpec, answers={201: Data(Heartbeat)}, errors=(409,))
async def create_heartbeat(request: web.Request, body: HeartbeatSpec) -> web.Response:
    """Create a heartbeat; the answer carries its check-in URLs."""
    if body.id is not None:
        heartbeat_id, token = body.id, None
    else:
        token = body.push_token or new_push_token()
        heartbeat_id = id_for_token(token)
    status, reply = await gateway_of(request).command(
        "heartbeat.create", principal_of(request).org_id, heartbeat_id, {"spec": body.stored(), "push_token": token})
    return answer_with_urls(request, status, reply)


@routes.get("/v1/heartbeats", auth=READS, answers={200: Page(Heartbeat)}, query={
    **params.pagination(), "service_id": Text(SERVICE_ID, "1-64 letters, digits and '_', '.', ':', '-'")})
async def list_heartbeats(request: web.Request, page: int, per_page: int, service_id: str | None) -> web.Response:
    """Heartbeats in creation order, a page at a time; ?service_id= lists one service's."""
    collection = COLLECTION if not service_id else service_collection(service_id)
    views, total = await indexed_page(gateway_of(request), principal_of(request).org_id, collection,
                                      page, per_page, "/heartbeats")
    data = [{**view, "checkin_urls": checkin_urls(request, view)} for view in views]
    return json_response(params.paginated(data, page, per_page, total))


@routes.get("/v1/heartbeats/{id}", auth=READS, path_params=HEARTBEAT_PATH, answers={200: Data(Heartbeat)})
async def get_heartbeat(request: web.Request) -> web.Response:
    heartbeat_id = HEARTBEAT.id_of(request)
    status, body, owner = await read_owner(request, heartbeat_id, f"/heartbeats/{heartbeat_id}")
    if status == 200:
        body = {"data": {**body["data"], "checkin_urls": checkin_urls(request, body["data"])}}
    return json_response(body, status, headers={OWNER_HEADER: owner})


@routes.put("/v1/heartbeats/{id}", auth=WRITES, path_params=HEARTBEAT_PATH, body=HeartbeatPatch,
            answers={200: Data(Heartbeat)})
async def update_heartbeat(request: web.Request, body: HeartbeatPatch) -> web.Response:
    """Change the fields given (null clears an optional one); giving cron drops interval and back."""
    heartbeat_id = HEARTBEAT.id_of(request)
    status, reply = await gateway_of(request).directory_command(  # enabled may have changed
        "heartbeat.update", principal_of(request).org_id, heartbeat_id, body.model_dump(exclude_unset=True))
    return answer_with_urls(request, status, reply)


@routes.delete("/v1/heartbeats/{id}", auth=WRITES, path_params=HEARTBEAT_PATH, answers={204: None})
async def delete_heartbeat(request: web.Request) -> web.Response:
    heartbeat_id = HEARTBEAT.id_of(request)
    status, body = await gateway_of(request).directory_command("heartbeat.delete", principal_of(request).org_id,
                                                               heartbeat_id)
    return answer(status, body)


@routes.delete("/v1/heartbeats", auth=WRITES,
                query={"id": Ids(MAX_BULK, "the heartbeats to delete", HEARTBEAT_PATH["id"])},
                answers={200: Data(BulkDeleted)})
async def delete_heartbeats(request: web.Request, id: list[str]) -> web.Response:
    """Delete several: ?id=..&id=..; answers which were deleted and which not found."""
    return await delete_each(request, "heartbeat.delete", id, parse_heartbeat_id)


# -- check-ins, history, statistics ---------------------------------------------------


CHECK_IN = {"result": Choice("tick", RESULTS, "what happened: tick (alive), run (started), complete, fail, log"),
            "message": Text(description="kept with the check-in (its first 1,000 characters)"),
            "rid": Text(RID, "1-64 printable characters without spaces", description="pairs a run with its end")}
HISTORY = {"limit": Integer(100, 1, 1000),
           "last_received_at": Moment("page back: the oldest received_at you have")}


@routes.post("/v1/heartbeats/{id}/events", auth=None, path_params=HEARTBEAT_PATH, query=CHECK_IN,
             body=Body(raw=True), answers={202: Data(CheckInAccepted)}, errors=(429,))
@unmetered  # a check-in: limited per heartbeat (api/checkins.py)
async def post_check_in(request: web.Request, result: str, message: str | None, rid: str | None) -> web.Response:
    """Check in: ?result=tick|run|complete|fail|log (default tick)&message=..&rid=..; no API key needed."""
    return await record_check_in(request, result, message, rid)


@routes.get("/v1/heartbeats/{id}/events", auth=None, path_params=HEARTBEAT_PATH, query={**CHECK_IN, **HISTORY},
            answers={200: Data(list[HeartbeatEvent]), 202: Data(CheckInAccepted)}, errors=(401, 403, 429))
@unmetered_if(lambda request: "result" in request.query)  # a check-in; the history is metered
async def heartbeat_events(request: web.Request, result: str, message: str | None, rid: str | None, limit: int,
                           last_received_at: float | None) -> web.Response:
    """With ?result=: check in (no API key needed). Without: the history, newest first."""
    if "result" in request.query:
        return await record_check_in(request, result, message, rid)
    if presented_credential(request) is None:
        raise ApiError(401, "unauthorized", "Reading the history needs an API key ('Authorization: Bearer <key>'); "
                                            "to check in with GET, add ?result=tick (or run, complete, fail, log).")
    return await heartbeat_history(request, limit, last_received_at)


async def record_check_in(request: web.Request, result: str, message: str | None, rid: str | None) -> web.Response:
    heartbeat_id = HEARTBEAT.id_of(request)
    ingest = ingest_of(request)
    wait = ingest.too_many(heartbeat_id)
    if wait is not None:
        response = error_response(429, "rate_limited", f"Too many check-ins for this heartbeat; retry in {wait:g} s.")
        response.headers["Retry-After"] = str(int(wait))
        return response
    if await ingest.enabled(heartbeat_id) is None:
        raise ApiError(404, "not_found", f"heartbeat {heartbeat_id} not found")
    record = check_in(heartbeat_id, result, request, message=message, rid=rid,
                      body=await read_body(request))
    await ingest.send(record)
    return json_response({"data": {"heartbeat_id": heartbeat_id, "result": result,
                                   "received_at": iso(record["received_at"])}}, 202)


@authorize("heartbeats:read")
async def heartbeat_history(request: web.Request, limit: int, last_received_at: float | None) -> web.Response:
    return await HEARTBEAT.read(request, "/events", {"limit": limit, "before": last_received_at or None})


@routes.get("/v1/heartbeats/{id}/statistics", auth=READS, path_params=HEARTBEAT_PATH, answers={200: Bare(HeartbeatStatistics)},
            query={"interval": Choice("1h", tuple(INTERVALS)), "start_date": Moment("default: 24 intervals before end_date"),
                   "end_date": Moment("default: now")})
async def heartbeat_statistics(request: web.Request, interval: str, start_date: float | None,
                               end_date: float | None) -> web.Response:
    """Counts of tick/run/complete/fail per interval, with mean and p95 run durations (seconds)."""
    end = time.time() if end_date is None else end_date
    default_start = max(0.0, end - min(DEFAULT_RECORDS * INTERVALS[interval], 90 * 86400))
    start = default_start if start_date is None else start_date
    if end <= start:
        raise InvalidInput("end_date must be after start_date", {"end_date": "must be after start_date"})
    if (end - start) / INTERVALS[interval] > MAX_RECORDS:
        raise InvalidInput(f"At most {MAX_RECORDS:,} records at once: choose a wider interval or a shorter range",
                           {"interval": f"too narrow for this range (more than {MAX_RECORDS:,} records)"})
    return await HEARTBEAT.read(request, "/statistics", {"start": start, "end": end, "interval": interval})
