"""Owner reads of alert channels and their deliveries, served by the owning worker (engine/owner_reads.py)."""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, owned_entity, owned_partition, requested_records
from engine.responses import json_response
from tables import alert_channels as layout

routes = web.RouteTableDef()
#: "alert": the noun the public API has always used in its answers (/v1/alerts)
owned_channel = owned_entity("alert", lambda engine: engine.alert_channels)


@routes.get(BASE + "/alerts")
async def channel_views(request: web.Request) -> web.Response:
    configs = requested_records(request, engine_of(request).alert_channels, owned_partition(request))
    return json_response({"data": [layout.channel_view(config) for config in configs]})


@routes.get(BASE + "/alerts/{id}")
@owned_channel
async def channel(request: web.Request, partition: int, config: dict) -> web.Response:
    return json_response({"data": layout.channel_view(config)})


@routes.get(BASE + "/alerts/{id}/deliveries")
@owned_channel
async def deliveries(request: web.Request, partition: int, config: dict) -> web.Response:
    data = engine_of(request).alert_channel_deliveries
    page, per_page = int(request.query["page"]), int(request.query["per_page"])
    skip = (page - 1) * per_page
    found = data.scan(partition, *layout.deliveries_range(config["id"]), reverse=True, limit=skip + per_page)
    runtime = data.get(partition, layout.runtime_key(config["id"])) or {"kept": 0}
    total = runtime["kept"]
    return json_response({"data": [layout.delivery_view(d) for _, d in found[skip:]],
                          "meta": {"page": page, "per_page": per_page, "total": total,
                                   "total_pages": (total + per_page - 1) // per_page}})
