"""/v1/incidents: opened by rulesets or by hand; changes go to the incident's partition, reads come from it."""
from __future__ import annotations

import asyncio
import re
import uuid

import aiohttp
import orjson
from aiohttp import web

from api import params
from api.auth import principal_of
from api.errors import ApiError
from api.gateway import Gateway
from api.org_lists import views_in_order
from api.owner_reads import answer, gateway_of, owner_read
from api.params import Choice, Id, Text
from api.routes import Auth, Data, Page, Routes
from schemas.incident import Incident, IncidentAction, IncidentCreate, IncidentPatch, IncidentWithTimeline
from engine.responses import json_response
from engine.settings import INTERNAL_HEADER
from tables.incidents import collection, route_of_incident

routes = Routes()
FILTER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HEALTH_TIMEOUT = 2.0
INCIDENT = {"id": Id("incident", valid=route_of_incident)}
READS, WRITES = Auth("incidents:read"), Auth("incidents:write")


def route_of(request: web.Request) -> tuple[str, str]:
    """(incident id, its route): the route names the partition owning the incident."""
    incident_id = request.match_info["id"]
    route = route_of_incident(incident_id)
    if route is None:
        raise ApiError(404, "not_found", f"incident {incident_id} not found")
    return incident_id, route


def actor_of(request: web.Request) -> dict:
    return principal_of(request).actor


async def incident_read(request: web.Request, path: str) -> web.Response:
    incident_id, route = route_of(request)  # the route names the partition that owns the incident
    return await owner_read(request, route, f"/incidents/{incident_id}{path}")


@routes.post("/v1/incidents", auth=WRITES, body=IncidentCreate, answers={201: Data(Incident)})
async def create_incident(request: web.Request, body: IncidentCreate) -> web.Response:
    route = "inc_" + uuid.uuid4().hex[:20]
    status, reply = await gateway_of(request).command(
        "incident.create", principal_of(request).org_id, route,
        {**body.model_dump(mode="json"), "actor": actor_of(request)})
    return answer(status, reply)


@routes.patch("/v1/incidents/{id}", auth=WRITES, path_params=INCIDENT, body=IncidentPatch,
              answers={200: Data(Incident)})
async def update_incident(request: web.Request, body: IncidentPatch) -> web.Response:
    """Fields, status (investigating, identified, monitoring, resolved) and a timeline message."""
    incident_id, route = route_of(request)
    status, reply = await gateway_of(request).command(
        "incident.update", principal_of(request).org_id, route,
        {"incident_id": incident_id, "patch": body.model_dump(mode="json", exclude_unset=True),
         "actor": actor_of(request)})
    return answer(status, reply)


@routes.get("/v1/incidents", auth=READS, answers={200: Page(Incident)}, query={
    **params.pagination(), "status": Choice(None, ("open", "resolved")),
    "monitor_id": Text(FILTER_ID), "team_id": Text(FILTER_ID)})
async def list_incidents(request: web.Request, page: int, per_page: int, status: str | None, monitor_id: str | None,
                         team_id: str | None) -> web.Response:
    """Newest first; filter by status (open, resolved), monitor_id, team_id."""
    name = collection(status, monitor_id, team_id)
    gateway, org_id = gateway_of(request), principal_of(request).org_id
    _, index = await gateway.read(gateway.partition_of(org_id), f"/incident-index/{org_id}",
                                  {"collection": name, "page": page, "per_page": per_page})
    views = await views_in_order(gateway, org_id, index["ids"], "/incidents",
                                 lambda incident_id: gateway.partition_of(route_of_incident(incident_id)))
    return json_response(params.paginated(views, page, per_page, index["total"]))


@routes.get("/v1/incidents/{id}", auth=READS, path_params=INCIDENT, answers={200: Data(IncidentWithTimeline)})
async def get_incident(request: web.Request) -> web.Response:
    """The incident with its timeline: every event and status change, with time and actor."""
    return await incident_read(request, "")


@routes.get("/v1/incidents/{id}/actions", auth=READS, path_params=INCIDENT, answers={200: Data(list[IncidentAction])})
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
