"""Healthchecks and Uptime Kuma check-in URLs, answering exactly what their clients expect.

Healthchecks, any method (HEAD, GET, POST), under /ping/ as a self-hosted
Healthchecks serves them, or at the root as hc-ping.com does (/<uuid>/start):

    /ping/<uuid>                 success          /ping/<uuid>/start   a run starts
    /ping/<uuid>/fail            failure          /ping/<uuid>/log     history only
    /ping/<uuid>/<exit status>   0 success, 1-255 failure, above 255: 400
    ?rid=<uuid>                  pairs a start with its end (not a UUID: 400)

answer `200 OK` with body `OK`, `404 not found` for unknown ids; a POST body is
kept (its first 10,000 bytes, announced in the Ping-Body-Limit header).

Uptime Kuma push, any method: `/api/push/<token>?status=up|down&msg=...&ping=<ms>`
answers `{"ok": true}`, or 404 `{"ok": false, "msg": ...}` for an unknown or
disabled heartbeat.
"""
from __future__ import annotations

import math

from aiohttp import web

from api.checkins import check_in, ingest_of, read_body
from engine.responses import json_response
from api.rate_limits import unmetered
from schemas.heartbeat import MAX_BODY, PUSH_TOKEN, YEAR, id_for_token, parse_heartbeat_id
from tables.heartbeat_state import FAIL, LOG, RUN, TICK

routes = web.RouteTableDef()

ACTIONS = {None: TICK, "start": RUN, "fail": FAIL, "log": LOG}
KUMA_NOT_FOUND = "Monitor not found or not active."
UUID_PATH = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def plain(text: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=text, status=status, headers=headers)


@routes.route("*", "/ping/{id}")
@routes.route("*", "/ping/{id}/{action}")
@routes.route("*", "/{id:" + UUID_PATH + "}")              # hc-ping.com's form: only the host changes
@routes.route("*", "/{id:" + UUID_PATH + "}/{action}")
@unmetered  # limited per heartbeat (api/checkins.py)
async def healthchecks_ping(request: web.Request) -> web.Response:
    heartbeat_id = parse_heartbeat_id(request.match_info["id"])
    action = request.match_info.get("action")
    if heartbeat_id is None or not (action in ACTIONS or (action.isascii() and action.isdigit())):
        return plain("not found", 404)
    ingest = ingest_of(request)
    wait = ingest.too_many(heartbeat_id)
    if wait is not None:
        return plain("rate limited", 429, {"Retry-After": str(int(wait))})
    if await ingest.enabled(heartbeat_id) is None:
        return plain("not found", 404)
    if action in ACTIONS:
        exit_status, result = None, ACTIONS[action]
    else:
        exit_status = int(action)
        if exit_status > 255:
            return plain("invalid url format", 400)
        result = TICK if exit_status == 0 else FAIL
    rid = request.query.get("rid")
    if rid is not None:
        rid = parse_heartbeat_id(rid)
        if rid is None:
            return plain("invalid uuid format", 400)
    body = await read_body(request)
    await ingest.send(check_in(heartbeat_id, result, request, rid=rid, exit_status=exit_status, body=body))
    return plain("OK", headers={"Ping-Body-Limit": str(MAX_BODY), "Access-Control-Allow-Origin": "*"})


@routes.route("*", "/api/push/{token}")
@unmetered  # limited per heartbeat (api/checkins.py)
async def uptime_kuma_push(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not PUSH_TOKEN.match(token):
        return json_response({"ok": False, "msg": KUMA_NOT_FOUND}, 404)
    heartbeat_id = id_for_token(token)
    ingest = ingest_of(request)
    wait = ingest.too_many(heartbeat_id)
    if wait is not None:
        return json_response({"ok": False, "msg": "Too many requests: slow down."}, 429,
                             headers={"Retry-After": str(int(wait))})
    if not await ingest.enabled(heartbeat_id):
        return json_response({"ok": False, "msg": KUMA_NOT_FOUND}, 404)
    result = TICK if (request.query.get("status") or "up") == "up" else FAIL
    await ingest.send(check_in(heartbeat_id, result, request, message=request.query.get("msg") or "OK",
                               duration=kuma_ping_seconds(request.query.get("ping"))))
    return json_response({"ok": True})


def kuma_ping_seconds(raw: str | None) -> float | None:
    """Kuma's `ping` (ms, parsed leniently like parseFloat) as seconds; anything unusable is no ping."""
    try:
        ms = float(raw) if raw else None
    except ValueError:
        return None
    if ms is None or not math.isfinite(ms) or ms < 0 or ms / 1000 > YEAR:
        return None
    return round(ms / 1000, 6)
