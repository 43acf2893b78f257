"""/v1/incidents: opened by rulesets or by hand; changes go to the incident's partition, reads come from it."""
from __future__ import annotations

import asyncio
import re
import uuid

import aiohttp
import orjson
from aiohttp import web

from api import params
from api.auth import authorize, principal_of
from api.errors import ApiError
from api.openapi import request_body
from engine.responses import json_response
from engine.settings import INTERNAL_HEADER
from api.gateway import Gateway
from api.owner_reads import answer, body_of, gateway_of, owner_read
from api.org_lists import views_in_order
from schemas.incident import IncidentCreate, IncidentPatch
from schemas.validation import parse
from tables.incidents import collection, route_of_incident

routes = web.RouteTableDef()
FILTER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HEALTH_TIMEOUT = 2.0


def route_of(request: web.Request) -> tuple[str, str]:
    """(incident id, its route): the route names the partition owning the incident."""
    incident_id = request.match_info["id"]
    route = route_of_incident(incident_id)
    if route is None:
        raise ApiError(404, "not_found", f"incident {incident_id} not found")
    return incident_id, route


def actor_of(request: web.Request) -> dict:
    return principal_of(request).actor


def filter_of(request: web.Request, name: str) -> str | None:
    value = request.query.get(name) or None
    if value is not None and not FILTER_ID.match(value):
        raise ApiError(422, "validation_error", f"Query parameter '{name}' is not an id.", {name: "not an id"})
    return value


async def incident_read(request: web.Request, path: str) -> web.Response:
    incident_id, route = route_of(request)  # the route names the partition that owns the incident
    return await owner_read(request, route, f"/incidents/{incident_id}{path}")


@routes.post("/v1/incidents")
@request_body(IncidentCreate)
@authorize("incidents:write")
async def create_incident(request: web.Request) -> web.Response:
    spec = parse(IncidentCreate, await body_of(request))
    route = "inc_" + uuid.uuid4().hex[:20]
    status, body = await gateway_of(request).command(
        "incident.create", principal_of(request).org_id, route,
        {**spec.model_dump(mode="json"), "actor": actor_of(request)})
    return answer(status, body)


@routes.patch("/v1/incidents/{id}")
@request_body(IncidentPatch)
@authorize("incidents:write")
async def update_incident(request: web.Request) -> web.Response:
    """Fields, status (investigating, identified, monitoring, resolved) and a timeline message."""
    incident_id, route = route_of(request)
    patch = parse(IncidentPatch, await body_of(request))
    status, body = await gateway_of(request).command(
        "incident.update", principal_of(request).org_id, route,
        {"incident_id": incident_id, "patch": patch.model_dump(mode="json", exclude_unset=True),
         "actor": actor_of(request)})
    return answer(status, body)


@routes.get("/v1/incidents")
@authorize("incidents:read")
async def list_incidents(request: web.Request) -> web.Response:
    """Newest first; filter by status (open, resolved), monitor_id, team_id."""
    page, per_page = params.pagination(request)
    status = request.query.get("status") or None
    if status is not None:
        status = params.choice(request, "status", "open", ("open", "resolved"))
    name = collection(status, filter_of(request, "monitor_id"), filter_of(request, "team_id"))
    gateway, org_id = gateway_of(request), principal_of(request).org_id
    _, index = await gateway.read(gateway.partition_of(org_id), f"/incident-index/{org_id}",
                                  {"collection": name, "page": page, "per_page": per_page})
    views = await views_in_order(gateway, org_id, index["ids"], "/incidents",
                                 lambda incident_id: gateway.partition_of(route_of_incident(incident_id)))
    return json_response(params.paginated(views, page, per_page, index["total"]))


@routes.get("/v1/incidents/{id}")
@authorize("incidents:read")
async def get_incident(request: web.Request) -> web.Response:
    """The incident with its timeline: every event and status change, with time and actor."""
    return await incident_read(request, "")


@routes.get("/v1/incidents/{id}/actions")
@authorize("incidents:read")
async def incident_actions(request: web.Request) -> web.Response:
    return await incident_read(request, "/actions")


async def engine_health(gateway: Gateway) -> dict:
    """Each worker's incident engine: rules replica ready, agents' counts (for GET /v1/health-check)."""
    async def ask(url: str) -> tuple[str, dict]:
        try:
            async with gateway.http.get(f"{url}/internal/incident-engine",
                                        headers={INTERNAL_HEADER: gateway.settings.internal_token},
                                        timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT)) as response:
                if response.status == 200:
                    return url, orjson.loads(await response.read())
                return url, {"error": f"answered {response.status}"}
        except (aiohttp.ClientError, asyncio.TimeoutError, orjson.JSONDecodeError) as exc:
            return url, {"error": f"did not answer: {exc!r}"}

    workers = dict(await asyncio.gather(*[ask(url) for url in sorted(set(gateway.owners.values()))]))
    ready = bool(workers) and all(w.get("org_config", {}).get("ready") for w in workers.values())
    return {"status": "ok" if ready else "degraded", "workers": workers}
