"""/v1/heartbeats: configuration through commands; state, history, statistics from the owner; check-ins.

Check-ins (POST, or GET with `result`, `/v1/heartbeats/{id}/events`) need no API
key: the id is the secret (api/checkins.py). A GET of the same URL without
`result` reads the history instead, with an API key.
"""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from api import params
from api.auth import authorize, presented_credential, principal_of
from api.checkins import check_in, ingest_of, read_body
from api.errors import ApiError, error_response, json_response
from api.monitors import MAX_BULK, answer, body_of, gateway_of
from api.org_lists import indexed_page
from api.rate_limits import unmetered, unmetered_if
from schemas.heartbeat import (
    RID, SERVICE_ID, HeartbeatPatch, HeartbeatSpec, id_for_token, new_push_token, parse_heartbeat_id,
)
from schemas.validation import InvalidInput, parse
from tables.heartbeat_state import RESULTS
from tables.heartbeat_views import COLLECTION, INTERVALS, service_collection
from tables.monitor_views import iso

routes = web.RouteTableDef()
DEFAULT_RECORDS = 24      # statistics records when no start_date is given (90 days at most)
MAX_RECORDS = 2000


def heartbeat_id_of(request: web.Request) -> str:
    heartbeat_id = parse_heartbeat_id(request.match_info["id"])
    if heartbeat_id is None:
        raise ApiError(404, "not_found", f"heartbeat {request.match_info['id']} not found")
    return heartbeat_id


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


async def owner_read(request: web.Request, heartbeat_id: str, view: str, query: dict | None = None) -> tuple[int, dict, str]:
    gateway = gateway_of(request)
    return await gateway.read_from_owner(gateway.partition_of(heartbeat_id), f"/heartbeats/{heartbeat_id}{view}",
                                         {"org": principal_of(request).org_id, **(query or {})})


# -- configuration --------------------------------------------------------------


@routes.post("/v1/heartbeats")
@authorize("heartbeats:write")
async def create_heartbeat(request: web.Request) -> web.Response:
    """Create a heartbeat; the answer carries its check-in URLs."""
    spec = parse(HeartbeatSpec, await body_of(request))
    if spec.id is not None:
        heartbeat_id, token = spec.id, None
    else:
        token = spec.push_token or new_push_token()
        heartbeat_id = id_for_token(token)
    status, body = await gateway_of(request).command(
        "heartbeat.create", principal_of(request).org_id, heartbeat_id, {"spec": spec.stored(), "push_token": token})
    return answer_with_urls(request, status, body)


@routes.get("/v1/heartbeats")
@authorize("heartbeats:read")
async def list_heartbeats(request: web.Request) -> web.Response:
    """Heartbeats in creation order, a page at a time; ?service_id= lists one service's."""
    page, per_page = params.pagination(request)
    service_id = request.query.get("service_id")
    if service_id and not SERVICE_ID.match(service_id):
        raise InvalidInput("Query parameter 'service_id' is invalid: 1-64 letters, digits and '_', '.', ':', '-'.",
                           {"service_id": "1-64 letters, digits and '_', '.', ':', '-'"})
    collection = COLLECTION if not service_id else service_collection(service_id)
    views, total = await indexed_page(gateway_of(request), principal_of(request).org_id, collection,
                                      page, per_page, "/heartbeats")
    data = [{**view, "checkin_urls": checkin_urls(request, view)} for view in views]
    return json_response(params.paginated(data, page, per_page, total))


@routes.get("/v1/heartbeats/{id}")
@authorize("heartbeats:read")
async def get_heartbeat(request: web.Request) -> web.Response:
    status, body, owner = await owner_read(request, heartbeat_id_of(request), "")
    if status == 200:
        body = {"data": {**body["data"], "checkin_urls": checkin_urls(request, body["data"])}}
    return json_response(body, status, headers={"X-Pingstream-Owner": owner})


@routes.put("/v1/heartbeats/{id}")
@authorize("heartbeats:write")
async def update_heartbeat(request: web.Request) -> web.Response:
    """Change the fields given (null clears an optional one); giving cron drops interval and back."""
    heartbeat_id = heartbeat_id_of(request)
    patch = parse(HeartbeatPatch, await body_of(request))
    status, body = await gateway_of(request).command(
        "heartbeat.update", principal_of(request).org_id, heartbeat_id, patch.model_dump(exclude_unset=True))
    ingest_of(request).forget(heartbeat_id)  # enabled may have changed
    return answer_with_urls(request, status, body)


@routes.delete("/v1/heartbeats/{id}")
@authorize("heartbeats:write")
async def delete_heartbeat(request: web.Request) -> web.Response:
    heartbeat_id = heartbeat_id_of(request)
    status, body = await gateway_of(request).command("heartbeat.delete", principal_of(request).org_id, heartbeat_id)
    ingest_of(request).forget(heartbeat_id)
    return answer(status, body)


@routes.delete("/v1/heartbeats")
@authorize("heartbeats:write")
async def delete_heartbeats(request: web.Request) -> web.Response:
    """Delete several: ?id=..&id=..; answers which were deleted and which not found."""
    ids = list(dict.fromkeys(request.query.getall("id", [])))
    if not ids or len(ids) > MAX_BULK:
        raise InvalidInput(f"Give between 1 and {MAX_BULK} heartbeats to delete as ?id=..&id=..",
                           {"id": f"between 1 and {MAX_BULK} ids required"})
    gateway, org_id, ingest = gateway_of(request), principal_of(request).org_id, ingest_of(request)

    async def delete(raw: str) -> int:
        heartbeat_id = parse_heartbeat_id(raw)
        if heartbeat_id is None:
            return 404
        status, _ = await gateway.command("heartbeat.delete", org_id, heartbeat_id)
        ingest.forget(heartbeat_id)
        return status

    statuses = await asyncio.gather(*[delete(raw) for raw in ids])
    return json_response({"data": {"deleted": [i for i, s in zip(ids, statuses) if s == 204],
                                   "not_found": [i for i, s in zip(ids, statuses) if s == 404]}})


# -- check-ins, history, statistics ---------------------------------------------------


@routes.post("/v1/heartbeats/{id}/events")
@unmetered  # a check-in: limited per heartbeat (api/checkins.py)
async def post_check_in(request: web.Request) -> web.Response:
    """Check in: ?result=tick|run|complete|fail|log (default tick)&message=..&rid=..; no API key needed."""
    return await record_check_in(request)


@routes.get("/v1/heartbeats/{id}/events")
@unmetered_if(lambda request: "result" in request.query)  # a check-in; the history is metered
async def heartbeat_events(request: web.Request) -> web.Response:
    """With ?result=: check in (no API key needed). Without: the history, newest first."""
    if "result" in request.query:
        return await record_check_in(request)
    if presented_credential(request) is None:
        raise ApiError(401, "unauthorized", "Reading the history needs an API key ('Authorization: Bearer <key>'); "
                                            "to check in with GET, add ?result=tick (or run, complete, fail, log).")
    return await heartbeat_history(request)


async def record_check_in(request: web.Request) -> web.Response:
    heartbeat_id = heartbeat_id_of(request)
    result = request.query.get("result") or "tick"
    if result not in RESULTS:
        raise InvalidInput(f"result must be one of {', '.join(RESULTS)}", {"result": f"{result!r} is not a check-in result"})
    rid = request.query.get("rid") or None
    if rid is not None and not RID.match(rid):
        raise InvalidInput("rid must be 1-64 printable characters without spaces, e.g. a UUID",
                           {"rid": "1-64 printable characters without spaces"})
    ingest = ingest_of(request)
    wait = ingest.too_many(heartbeat_id)
    if wait is not None:
        response = error_response(429, "rate_limited", f"Too many check-ins for this heartbeat; retry in {wait:g} s.")
        response.headers["Retry-After"] = str(int(wait))
        return response
    if await ingest.enabled(heartbeat_id) is None:
        raise ApiError(404, "not_found", f"heartbeat {heartbeat_id} not found")
    record = check_in(heartbeat_id, result, request, message=request.query.get("message"), rid=rid,
                      body=await read_body(request))
    await ingest.send(record)
    return json_response({"data": {"heartbeat_id": heartbeat_id, "result": result,
                                   "received_at": iso(record["received_at"])}}, 202)


@authorize("heartbeats:read")
async def heartbeat_history(request: web.Request) -> web.Response:
    heartbeat_id = heartbeat_id_of(request)
    limit = params.integer(request, "limit", 100, 1, 1000)
    before = params.moment(request, "last_received_at", 0.0) or None
    status, body, owner = await owner_read(request, heartbeat_id, "/events", {"limit": limit, "before": before})
    return json_response(body, status, headers={"X-Pingstream-Owner": owner})


@routes.get("/v1/heartbeats/{id}/statistics")
@authorize("heartbeats:read")
async def heartbeat_statistics(request: web.Request) -> web.Response:
    """Counts of tick/run/complete/fail per interval, with mean and p95 run durations (seconds)."""
    heartbeat_id = heartbeat_id_of(request)
    now = time.time()
    interval = params.choice(request, "interval", "1h", tuple(INTERVALS))
    end = params.moment(request, "end_date", now)
    start = params.moment(request, "start_date", end - min(DEFAULT_RECORDS * INTERVALS[interval], 90 * 86400))
    if end <= start:
        raise InvalidInput("end_date must be after start_date", {"end_date": "must be after start_date"})
    if (end - start) / INTERVALS[interval] > MAX_RECORDS:
        raise InvalidInput(f"At most {MAX_RECORDS:,} records at once: choose a wider interval or a shorter range",
                           {"interval": f"too narrow for this range (more than {MAX_RECORDS:,} records)"})
    status, body, owner = await owner_read(request, heartbeat_id, "/statistics",
                                           {"start": start, "end": end, "interval": interval})
    return json_response(body, status, headers={"X-Pingstream-Owner": owner})
