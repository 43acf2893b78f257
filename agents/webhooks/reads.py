"""Owner reads of inbound webhooks, served by the worker that owns the partition (engine/owner_reads.py)."""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, not_found, org_record, owned_partition, requested_ids
from engine.partitioning import entity_key
from engine.responses import json_response
from tables import webhook_data as layout

routes = web.RouteTableDef()


def webhook_config(request: web.Request, partition: int, webhook_id: str) -> dict | None:
    return org_record(request, engine_of(request).webhooks, partition, entity_key(webhook_id))


@routes.get(BASE + "/webhooks")
async def webhook_views(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    data = engine_of(request).webhook_data
    views = []
    for webhook_id in requested_ids(request):
        config = webhook_config(request, partition, webhook_id)
        if config is not None:
            views.append(layout.webhook_view(config, data.get(partition, layout.runtime_key(webhook_id))))
    return json_response({"data": views})


@routes.get(BASE + "/webhooks/{id}/owner")
async def webhook_owner(request: web.Request) -> web.Response:
    """For unauthenticated ingest: which organisation a webhook id belongs to (the id is the secret)."""
    partition = owned_partition(request)
    config = engine_of(request).webhooks.get(partition, entity_key(request.match_info["id"]))
    if config is None:
        return not_found("webhook", request.match_info["id"])
    return json_response({"data": {"org_id": config["org_id"]}})


@routes.get(BASE + "/webhooks/{id}/events")
async def webhook_events(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    webhook_id = request.match_info["id"]
    if webhook_config(request, partition, webhook_id) is None:
        return not_found("webhook", webhook_id)
    before = request.query.get("before")
    events = layout.recent_events(engine_of(request).webhook_data, partition, webhook_id, int(request.query["limit"]),
                                  None if before is None else float(before))
    return json_response({"data": events})
