"""Owner reads of an owner's notification channels and a channel's deliveries (engine/owner_reads.py).

The owner (user:<id> / team:<id>) is in the path; the API derives it from the
caller's credentials, so a caller only ever asks for its own.
"""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, not_found, owned_partition
from engine.partitioning import entity_key
from engine.responses import json_response
from tables import notification_channels as layout

routes = web.RouteTableDef()
NOUN = "notification channel"


def record_of(request: web.Request) -> tuple[int, dict | None]:
    partition = owned_partition(request)
    return partition, engine_of(request).notification_channels.get(partition,
                                                                   entity_key(request.match_info["owner"]))


@routes.get(BASE + "/notification-channels/{owner}")
async def channel_views(request: web.Request) -> web.Response:
    _, record = record_of(request)
    return json_response({"data": [layout.channel_view(c) for c in layout.ordered(record)]})


@routes.get(BASE + "/notification-channels/{owner}/{id}")
async def channel(request: web.Request) -> web.Response:
    _, record = record_of(request)
    found = None if record is None else record["channels"].get(request.match_info["id"])
    if found is None:
        return not_found(NOUN, request.match_info["id"])
    return json_response({"data": layout.channel_view(found)})


@routes.get(BASE + "/notification-channels/{owner}/{id}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    partition, record = record_of(request)
    owner, channel_id = request.match_info["owner"], request.match_info["id"]
    if record is None or channel_id not in record["channels"]:
        return not_found(NOUN, channel_id)
    data = engine_of(request).notification_deliveries
    page, per_page = int(request.query["page"]), int(request.query["per_page"])
    skip = (page - 1) * per_page
    found = data.scan(partition, *layout.deliveries_range(owner, channel_id), reverse=True, limit=skip + per_page)
    total = (data.get(partition, layout.kept_key(owner, channel_id)) or {"kept": 0})["kept"]
    return json_response({"data": [layout.delivery_view(d) for _, d in found[skip:]],
                          "meta": {"page": page, "per_page": per_page, "total": total,
                                   "total_pages": (total + per_page - 1) // per_page}})
