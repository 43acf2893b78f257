"""Owner reads of an organisation's partition: a page of its index, and this partition's share of its usage."""
from __future__ import annotations

import time

from aiohttp import web

from engine.owner_reads import BASE, engine_of, owned_partition
from engine.responses import json_response
from tables import org_index, usage

routes = web.RouteTableDef()


@routes.get(BASE + "/index/{org}/{collection}")
async def index_page(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    ids, total = org_index.page(engine_of(request).org_index, partition, request.match_info["org"],
                                request.match_info["collection"], int(request.query["page"]),
                                int(request.query["per_page"]))
    return json_response({"ids": ids, "total": total})


@routes.get(BASE + "/usage/{org}")
async def usage_share(request: web.Request) -> web.Response:
    """This partition's share of an organisation's usage; the API adds up every partition's."""
    partition = owned_partition(request)
    engine = engine_of(request)
    return json_response({"data": usage.partition_usage(engine.monitors, engine.monitor_data, engine.org_index,
                                                        partition, request.match_info["org"], time.time())})
