"""Owner reads of alert channels and their deliveries, served by the owning worker (engine/owner_reads.py)."""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, not_found, org_record, owned_partition, requested_ids
from engine.partitioning import entity_key
from engine.responses import json_response
from tables import alert_channels as layout

routes = web.RouteTableDef()


def channel_config(request: web.Request, partition: int, channel_id: str | None = None) -> dict | None:
    return org_record(request, engine_of(request).alert_channels, partition,
                      entity_key(channel_id or request.match_info["id"]))


@routes.get(BASE + "/alerts")
async def channel_views(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    configs = [channel_config(request, partition, channel_id) for channel_id in requested_ids(request)]
    return json_response({"data": [layout.channel_view(config) for config in configs if config is not None]})


@routes.get(BASE + "/alerts/{id}")
async def channel(request: web.Request) -> web.Response:
    config = channel_config(request, owned_partition(request))
    if config is None:
        return not_found("alert", request.match_info["id"])
    return json_response({"data": layout.channel_view(config)})


@routes.get(BASE + "/alerts/{id}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    config = channel_config(request, partition)
    if config is None:
        return not_found("alert", request.match_info["id"])
    data = engine_of(request).alert_channel_deliveries
    page, per_page = int(request.query["page"]), int(request.query["per_page"])
    skip = (page - 1) * per_page
    found = data.scan(partition, *layout.deliveries_range(config["id"]), reverse=True, limit=skip + per_page)
    runtime = data.get(partition, layout.runtime_key(config["id"])) or {"kept": 0}
    total = runtime["kept"]
    return json_response({"data": [layout.delivery_view(d) for _, d in found[skip:]],
                          "meta": {"page": page, "per_page": per_page, "total": total,
                                   "total_pages": (total + per_page - 1) // per_page}})
