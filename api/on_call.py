"""/v1/team/{id}/schedules, /v1/account/schedules: on-call schedules; /v1/team/{id}/on-call: who is on call.

A team's schedules and its members' own ones live in the team's partition
(agents/on_call), where the members are: every change is a command there,
every read is that worker's answer. A person's own schedules are theirs in the
team their token acts in, and name only them.
"""
from __future__ import annotations

import re
import time
import uuid
from typing import Any

from aiohttp import web

from api import params
from api.auth import principal_of
from api.errors import ApiError
from api.owner_reads import answer, gateway_of, owner_data
from api.params import Id, Integer, Moment
from api.routes import Auth, Data, Page, Routes
from engine.responses import json_response
from schemas.on_call import OnCall, Preview, Schedule, ScheduleSpec
from schemas.validation import InvalidInput
from tables.on_call import EARLIEST, LATEST, MAX_PREVIEW_DAYS

routes = Routes()
SCHEDULE_ID = re.compile(r"^sch_[0-9a-f]{20}$")
TEAM = {"id": Id("team")}
TEAM_SCHEDULE = {**TEAM, "schedule": Id("schedule", SCHEDULE_ID)}
OWN_SCHEDULE = {"id": Id("schedule", SCHEDULE_ID)}
READS = Auth("schedules:read", team_in_path=True)
WRITES = Auth("schedules:write", team_in_path=True)
PERSON = Auth(None, people_only=True)
PREVIEW = {"days": Integer(14, 1, MAX_PREVIEW_DAYS, "days of shifts, from start"),
           "start": Moment("from when (default: now)")}


def owner_of(request: web.Request, team: bool) -> str | None:
    """Whose schedules the route is about: the team's (None), or the person's own in the team they act in."""
    principal = principal_of(request)
    if team:
        return None
    if not principal.org_id:
        raise ApiError(403, "no_team", "Your own schedules belong to a team: join or create one first.")
    return principal.user_id


def within(name: str, at: float | None) -> float:
    at = time.time() if at is None else at
    if not EARLIEST <= at <= LATEST:
        raise InvalidInput(f"Query parameter '{name}' is invalid: must be between 1970-01-03 and 2199-12-01.",
                           {name: "must be between 1970-01-03 and 2199-12-01"})
    return at


async def command(request: web.Request, kind: str, body: dict) -> web.Response:
    org_id = principal_of(request).org_id
    return answer(*await gateway_of(request).command(kind, org_id, org_id, body))


async def owner_answer(request: web.Request, path: str, owner: str | None, query: dict | None = None) -> Any:
    """The team's partition answers for the team's schedules and its members' own ones."""
    return await owner_data(request, principal_of(request).org_id, path, {"owner": owner, **(query or {})})


# -- the same five operations and a preview, for a team's schedules and for a person's own ---------------


async def create(request: web.Request, body: ScheduleSpec, team: bool) -> web.Response:
    return await command(request, "schedule.create", {"id": "sch_" + uuid.uuid4().hex[:20],
                                                      "owner_id": owner_of(request, team), "spec": body.stored()})


async def listed(request: web.Request, page: int, per_page: int, team: bool) -> web.Response:
    views = await owner_answer(request, "/schedules", owner_of(request, team))
    return json_response(params.paginated(views[(page - 1) * per_page:page * per_page], page, per_page, len(views)))


async def one(request: web.Request, schedule_id: str, team: bool) -> web.Response:
    return json_response({"data": await owner_answer(request, f"/schedules/{schedule_id}", owner_of(request, team))})


async def replace(request: web.Request, schedule_id: str, body: ScheduleSpec, team: bool) -> web.Response:
    return await command(request, "schedule.update", {"id": schedule_id, "owner_id": owner_of(request, team),
                                                      "spec": body.stored()})


async def delete(request: web.Request, schedule_id: str, team: bool) -> web.Response:
    return await command(request, "schedule.delete", {"id": schedule_id, "owner_id": owner_of(request, team)})


async def preview(request: web.Request, schedule_id: str, days: int, start: float | None, team: bool) -> web.Response:
    start = within("start", start)
    shifts = await owner_answer(request, f"/schedules/{schedule_id}/preview", owner_of(request, team),
                                {"start": start, "days": days})
    return json_response({"data": shifts})


# -- a team's --------------------------------------------------------------------------------------------


@routes.post("/v1/team/{id}/schedules", auth=WRITES, path_params=TEAM, body=ScheduleSpec,
             answers={201: Data(Schedule)}, errors=(409,))
async def create_team_schedule(request: web.Request, body: ScheduleSpec) -> web.Response:
    """A schedule of the team: entries, rotation layers and overrides naming members of the team."""
    return await create(request, body, team=True)


@routes.get("/v1/team/{id}/schedules", auth=READS, path_params=TEAM, query=params.pagination(),
            answers={200: Page(Schedule)})
async def list_team_schedules(request: web.Request, page: int, per_page: int) -> web.Response:
    """The team's schedules, oldest first (its members' own ones: GET /v1/account/schedules)."""
    return await listed(request, page, per_page, team=True)


@routes.get("/v1/team/{id}/schedules/{schedule}", auth=READS, path_params=TEAM_SCHEDULE,
            answers={200: Data(Schedule)})
async def get_team_schedule(request: web.Request) -> web.Response:
    return await one(request, request.match_info["schedule"], team=True)


@routes.put("/v1/team/{id}/schedules/{schedule}", auth=WRITES, path_params=TEAM_SCHEDULE, body=ScheduleSpec,
            answers={200: Data(Schedule)})
async def replace_team_schedule(request: web.Request, body: ScheduleSpec) -> web.Response:
    """The whole schedule anew (overrides included: keep the ones you want)."""
    return await replace(request, request.match_info["schedule"], body, team=True)


@routes.delete("/v1/team/{id}/schedules/{schedule}", auth=WRITES, path_params=TEAM_SCHEDULE, answers={204: None})
async def delete_team_schedule(request: web.Request) -> web.Response:
    return await delete(request, request.match_info["schedule"], team=True)


@routes.get("/v1/team/{id}/schedules/{schedule}/preview", auth=READS, path_params=TEAM_SCHEDULE, query=PREVIEW,
            answers={200: Data(Preview)})
async def preview_team_schedule(request: web.Request, days: int, start: float | None) -> web.Response:
    """The shifts of the next `days` days (14 by default), overrides and layers applied."""
    return await preview(request, request.match_info["schedule"], days, start, team=True)


@routes.get("/v1/team/{id}/on-call", auth=READS, path_params=TEAM,
            query={"at": Moment("when (default: now); ISO 8601, UTC unless it says")}, answers={200: Data(OnCall)})
async def who_is_on_call(request: web.Request, at: float | None) -> web.Response:
    """Who is on call for the team at `at`, by which schedule, layer, override or entry, from when to when."""
    return json_response({"data": await owner_answer(request, "/on-call", None, {"at": within("at", at)})})


# -- a person's own ----------------------------------------------------------------------------------------


@routes.post("/v1/account/schedules", auth=PERSON, body=ScheduleSpec, answers={201: Data(Schedule)},
             errors=(409,))
async def create_own_schedule(request: web.Request, body: ScheduleSpec) -> web.Response:
    """A schedule of your own in the team your token acts in (it names only you); it counts in the team's on-call."""
    return await create(request, body, team=False)


@routes.get("/v1/account/schedules", auth=PERSON, query=params.pagination(), answers={200: Page(Schedule)})
async def list_own_schedules(request: web.Request, page: int, per_page: int) -> web.Response:
    return await listed(request, page, per_page, team=False)


@routes.get("/v1/account/schedules/{id}", auth=PERSON, path_params=OWN_SCHEDULE, answers={200: Data(Schedule)})
async def get_own_schedule(request: web.Request) -> web.Response:
    return await one(request, request.match_info["id"], team=False)


@routes.put("/v1/account/schedules/{id}", auth=PERSON, path_params=OWN_SCHEDULE, body=ScheduleSpec,
            answers={200: Data(Schedule)})
async def replace_own_schedule(request: web.Request, body: ScheduleSpec) -> web.Response:
    return await replace(request, request.match_info["id"], body, team=False)


@routes.delete("/v1/account/schedules/{id}", auth=PERSON, path_params=OWN_SCHEDULE, answers={204: None})
async def delete_own_schedule(request: web.Request) -> web.Response:
    return await delete(request, request.match_info["id"], team=False)


@routes.get("/v1/account/schedules/{id}/preview", auth=PERSON, path_params=OWN_SCHEDULE, query=PREVIEW,
            answers={200: Data(Preview)})
async def preview_own_schedule(request: web.Request, days: int, start: float | None) -> web.Response:
    return await preview(request, request.match_info["id"], days, start, team=False)
