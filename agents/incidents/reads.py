"""Owner reads of incidents, served by the worker that owns the route's partition (engine/owner_reads.py)."""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, owned_entity, owned_partition, requested_records
from engine.responses import json_response
from tables import incidents as book
from tables import org_index

routes = web.RouteTableDef()
TIMELINE_SHOWN = 500


owned_incident = owned_entity("incident", lambda engine: engine.incidents, book.incident_key)


@routes.get(BASE + "/incidents")
async def incident_views(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    incidents = requested_records(request, engine_of(request).incidents, partition, book.incident_key)
    return json_response({"data": [book.incident_view(incident) for incident in incidents]})


@routes.get(BASE + "/incidents/{id}")
@owned_incident
async def incident_with_timeline(request: web.Request, partition: int, incident: dict) -> web.Response:
    entries = engine_of(request).incidents.scan(partition, *book.timeline_range(incident["id"]), limit=TIMELINE_SHOWN)
    return json_response({"data": {**book.incident_view(incident),
                                   "timeline": [book.timeline_view(entry) for _, entry in entries],
                                   "timeline_total": incident["timeline_count"],
                                   "timeline_dropped": incident["timeline_dropped"]}})


@routes.get(BASE + "/incidents/{id}/actions")
@owned_incident
async def incident_actions(request: web.Request, partition: int, incident: dict) -> web.Response:
    return json_response({"data": book.actions_view(incident)})


@routes.get(BASE + "/incident-index/{org}")
async def incident_index_page(request: web.Request) -> web.Response:
    """Newest first: the org index keeps creation order, so page from its end."""
    partition = owned_partition(request)
    index = engine_of(request).org_index
    org, name = request.match_info["org"], request.query["collection"]
    page, per_page = int(request.query["page"]), int(request.query["per_page"])
    skip = (page - 1) * per_page
    start = org_index.entry_key(org, name, "", 0)
    stop = org_index.count_key(org, name)  # <org> 00 <collection> 01 follows every entry
    items = index.scan(partition, start, stop, reverse=True, limit=skip + per_page)
    return json_response({"ids": [value["id"] for _, value in items[skip:]],
                          "total": org_index.count(index, partition, org, name)})
