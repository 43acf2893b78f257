"""Owner reads of an organisation's pages, served by the worker owning the team's partition.

?user=<id> limits what is shown to the pages that person received (the API
sets it for everyone but admins).
"""
from __future__ import annotations

from aiohttp import web

from engine.owner_reads import BASE, engine_of, not_found, owned_partition
from engine.responses import json_response
from tables.entity_keys import prefix
from tables.pages import is_recipient, page_key, page_view

routes = web.RouteTableDef()


@routes.get(BASE + "/pages")
async def list_pages(request: web.Request) -> web.Response:
    engine, partition, org_id = engine_of(request), owned_partition(request), request.query["org"]
    status, priority, user = (request.query.get(k) or None for k in ("status", "priority", "user"))
    records = [record for _, record in engine.pages.scan(partition, *prefix(org_id))
               if (status is None or record["status"] == status)
               and (priority is None or record["priority"] == priority)
               and (user is None or is_recipient(record, user))]
    records.sort(key=lambda r: (-r["created_at"], r["id"]))  # newest first
    return json_response({"data": [page_view(record) for record in records]})


@routes.get(BASE + "/pages/{id}")
async def get_page(request: web.Request) -> web.Response:
    engine, partition, org_id = engine_of(request), owned_partition(request), request.query["org"]
    record = engine_of(request).pages.get(partition, page_key(org_id, request.match_info["id"]))
    user = request.query.get("user") or None
    if record is None or (user is not None and not is_recipient(record, user)):
        return not_found("page", request.match_info["id"])
    return json_response({"data": page_view(record)})
