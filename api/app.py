"""The public HTTP API: thin views over commands and owner reads (see api/gateway.py)."""
from __future__ import annotations

from aiohttp import web

from api import (
    accounts, alert_channels, certificates, checks, heartbeats, incidents, monitors, notification_channels,
    on_call, openapi, pages, paging_groups, ping_urls, probes, public_pages, rate_limits, rulesets, status_pages,
    teams, usage, webhooks,
)
from api.errors import error_middleware
from api.forwarding import forwarding_middleware
from api.gateway import Gateway
from api.rate_limits import rate_limit_middleware, unmetered
from api.routes import Data, Routes
from engine.metrics import serve_metrics
from engine.responses import json_response
from engine.settings import INTERNAL_HEADER
from schemas.health import Health

MAX_BODY = 4 * 1024 * 1024  # a full batch of 1,000 results fits several times over

health_routes = Routes()


@health_routes.get("/v1/health-check", auth=None, answers={200: Data(Health), 503: Data(Health)})
@unmetered
async def health_check(request: web.Request) -> web.Response:
    """Is the engine serving (every partition owned, rules loaded everywhere): up (200) or down (503).

    Without credentials it says only that; with the internal token (an
    operator) it details partitions, worker URLs and the agents' counts.
    """
    gateway: Gateway = request.app["gateway"]
    owned = len(gateway.owners)
    incident_engine = await incidents.engine_health(gateway)  # rules known on every worker, agents' counts
    status = "ok" if owned == gateway.partitions and incident_engine["status"] == "ok" else "degraded"
    code = 200 if status == "ok" else 503
    if not gateway.is_internal(request.headers.get(INTERNAL_HEADER, "")):
        return json_response({"data": {"status": status}}, code)
    return json_response({"data": {
        "status": status,
        "partitions": gateway.partitions,
        "generation": gateway.deployment.generation,
        "moving_to": gateway.deployment.next_partitions if gateway.deployment.moving else None,
        "partitions_served": owned,
        "workers": sorted({url for url in gateway.owners.values()}),
        "incident_engine": incident_engine,
    }}, code)


def create_app(gateway: Gateway, *, manage_gateway: bool = True) -> web.Application:
    # the client's address first (trusted proxies only); then rate limits: error responses carry their headers too
    app = web.Application(middlewares=[forwarding_middleware(gateway.settings.trusted_proxies), rate_limit_middleware,
                                       error_middleware], client_max_size=MAX_BODY)
    app["gateway"] = gateway
    for table in (monitors.routes, checks.routes, openapi.routes, health_routes, heartbeats.routes,
                  ping_urls.routes, webhooks.routes, rulesets.routes, incidents.routes, alert_channels.routes,
                  teams.routes, usage.routes, probes.routes, certificates.routes, on_call.routes,
                  paging_groups.routes, notification_channels.routes, status_pages.routes, public_pages.routes,
                  pages.routes):
        app.add_routes(table)
    accounts.install(app)
    serve_metrics(app, gateway.settings.metrics_token)  # GET /metrics, and every request counted by its route
    if manage_gateway:
        async def start(app: web.Application) -> None:
            await gateway.start()

        async def stop(app: web.Application) -> None:
            await gateway.stop()

        app.on_startup.append(start)
        app.on_cleanup.append(stop)
    rate_limits.install(app, gateway)  # in workers too: they serve this API beside their owner reads
    return app
