"""Owner reads of incidents, served by the worker that owns the route's partition (engine/owner_reads.py)."""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, not_found, org_record, owned_partition, requested_ids
from engine.responses import json_response
from tables import incidents as book
from tables import org_index

routes = web.RouteTableDef()
TIMELINE_SHOWN = 500


def incident_of(request: web.Request, partition: int, incident_id: str) -> dict | None:
    return org_record(request, engine_of(request).incidents, partition, book.incident_key(incident_id))


@routes.get(BASE + "/incidents")
async def incident_views(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    views = []
    for incident_id in requested_ids(request):
        incident = incident_of(request, partition, incident_id)
        if incident is not None:
            views.append(book.incident_view(incident))
    return json_response({"data": views})


@routes.get(BASE + "/incidents/{id}")
async def incident_with_timeline(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    incident = incident_of(request, partition, request.match_info["id"])
    if incident is None:
        return not_found("incident", request.match_info["id"])
    entries = engine_of(request).incidents.scan(partition, *book.timeline_range(incident["id"]), limit=TIMELINE_SHOWN)
    return json_response({"data": {**book.incident_view(incident),
                                   "timeline": [book.timeline_view(entry) for _, entry in entries],
                                   "timeline_total": incident["timeline_count"],
                                   "timeline_dropped": incident["timeline_dropped"]}})


@routes.get(BASE + "/incidents/{id}/actions")
async def incident_actions(request: web.Request) -> web.Response:
    incident = incident_of(request, owned_partition(request), request.match_info["id"])
    if incident is None:
        return not_found("incident", request.match_info["id"])
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
