"""Owner reads of an organisation's on-call schedules, served by the worker owning the team's partition.

`on_call` is also what a feature of this worker asks (in the team's partition)
to learn who is on call for a team at a time.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from agents.teams.reads import live_members
from engine.owner_reads import BASE, engine_of, not_found, owned_partition
from engine.responses import json_response
from tables.entity_keys import item_key, prefix
from tables.monitor_views import iso
from tables.on_call import iso_in, parse_schedule, schedule_view, shift_view, shifts_between, team_on_call

routes = web.RouteTableDef()


def schedules_of(engine: Any, partition: int, org_id: str) -> list[dict]:
    """Every schedule of the organisation (the team's and its members' own), as stored."""
    return [record for _, record in engine.on_call_schedules.scan(partition, *prefix(org_id))]


def on_call(engine: Any, partition: int, org_id: str, at: float) -> list[dict]:
    """Who is on call for team `org_id` at `at` (epoch seconds): one row per person and schedule
    (tables.on_call.team_on_call), members only; [] for a team that is gone."""
    members = live_members(engine, partition, org_id)
    return team_on_call(schedules_of(engine, partition, org_id), members, at) if members else []


def owner_of(request: web.Request) -> str | None:
    """?owner=<user id>: that person's own schedules; absent: the team's."""
    return request.query.get("owner") or None


def requested_schedule(request: web.Request, partition: int) -> dict | None:
    record = engine_of(request).on_call_schedules.get(partition, item_key(request.query["org"],
                                                                          request.match_info["id"]))
    return record if record is not None and record["owner_id"] == owner_of(request) else None


@routes.get(BASE + "/schedules")
async def list_schedules(request: web.Request) -> web.Response:
    partition, owner = owned_partition(request), owner_of(request)
    records = [r for r in schedules_of(engine_of(request), partition, request.query["org"]) if r["owner_id"] == owner]
    records.sort(key=lambda r: (r["created_at"], r["id"]))
    return json_response({"data": [schedule_view(record) for record in records]})


@routes.get(BASE + "/schedules/{id}")
async def get_schedule(request: web.Request) -> web.Response:
    record = requested_schedule(request, owned_partition(request))
    if record is None:
        return not_found("schedule", request.match_info["id"])
    return json_response({"data": schedule_view(record)})


@routes.get(BASE + "/schedules/{id}/preview")
async def preview(request: web.Request) -> web.Response:
    """?start= (epoch seconds) &days=: the shifts from start to the same wall-clock time `days` days later."""
    record = requested_schedule(request, owned_partition(request))
    if record is None:
        return not_found("schedule", request.match_info["id"])
    start, days = float(request.query["start"]), int(request.query["days"])
    schedule = parse_schedule(record["spec"])
    end = (datetime.fromtimestamp(start, schedule.zone) + timedelta(days=days)).timestamp()  # wall-clock days
    shifts = shifts_between(schedule, start, end)
    return json_response({"data": {"schedule_id": record["id"], "time_zone": record["spec"]["time_zone"],
                                   "start": iso_in(start, schedule.zone), "end": iso_in(end, schedule.zone),
                                   "shifts": [shift_view(s, schedule, record["spec"]) for s in shifts]}})


@routes.get(BASE + "/on-call")
async def who_is_on_call(request: web.Request) -> web.Response:
    """?at= (epoch seconds): who is on call for the ?org= team then."""
    org_id, at = request.query["org"], float(request.query["at"])
    rows = on_call(engine_of(request), owned_partition(request), org_id, at)
    return json_response({"data": {"team_id": org_id, "at": iso(at), "on_call": rows}})
