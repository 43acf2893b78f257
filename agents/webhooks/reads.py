"""Owner reads of inbound webhooks, served by the worker that owns the partition (engine/owner_reads.py)."""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, listed_views, owned_entity
from engine.responses import json_response
from tables import webhook_data as layout

routes = web.RouteTableDef()


routes.get(BASE + "/webhooks")(
    listed_views(lambda engine: engine.webhooks, lambda engine: engine.webhook_data, layout.webhook_view))


@routes.get(BASE + "/webhooks/{id}/events")
@owned_entity("webhook", lambda engine: engine.webhooks)
async def webhook_events(request: web.Request, partition: int, config: dict) -> web.Response:
    before = request.query.get("before")
    events = layout.recent_events(engine_of(request).webhook_data, partition, config["id"],
                                  int(request.query["limit"]), None if before is None else float(before))
    return json_response({"data": events})
