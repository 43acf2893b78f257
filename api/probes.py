"""GET /v1/probes: the probes this deployment runs, as they report themselves on topic `probes`."""
from __future__ import annotations

import time

from aiohttp import web

from api.gateway import Gateway
from api.routes import Auth, Data, Routes
from engine.responses import json_response
from schemas.probe import Probe

routes = Routes()
STALE_AFTER = 15.0   # seconds without a report (probes report every 5 s)


@routes.get("/v1/probes", auth=Auth("monitors:read"), answers={200: Data(list[Probe])})
async def list_probes(request: web.Request) -> web.Response:
    """Every probe seen, by region: monitors assigned, checks/s, schedule lag p99, last seen."""
    gateway: Gateway = request.app["gateway"]
    now = time.time()
    probes = [{**probe, "stale": now - probe["last_seen"] > STALE_AFTER} for probe in gateway.probes.values()]
    probes.sort(key=lambda probe: (probe["region"], probe["id"]))
    return json_response({"data": probes})
