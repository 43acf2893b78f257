"""Owner reads of status pages, served by the worker owning the page's partition."""
from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from agents.status_pages.commands import page_view
from engine.owner_reads import BASE, engine_of, health_route, owned_entity, owned_partition, requested_records
from engine.responses import error_response, json_response
from tables import status_pages as rules

routes = web.RouteTableDef()
owned_page = owned_entity("status page", lambda engine: engine.status_pages)


def live_view(request: web.Request, partition: int, page_id: str) -> dict | None:
    model = engine_of(request).status_pages.get(partition, rules.model_key(page_id))
    now = time.time()
    view = None if model is None else rules.page_view(model, now)
    return None if view is None else rules.at_time(view, now)


def with_components(request: web.Request, partition: int, config: dict) -> dict:
    """The configuration, each component with its live status."""
    view = live_view(request, partition, config["id"])
    live = {component["id"]: component["status"] for component in (view or {}).get("components", [])}
    shown = page_view(config)
    shown["components"] = [{"id": c["id"], "name": c["name"], "description": c.get("description"),
                            "group": c.get("group"), "monitor_id": c.get("monitor_id"),
                            "heartbeat_id": c.get("heartbeat_id"), "status": live.get(c["id"], c.get("status"))}
                           for c in config["spec"].get("components", [])]
    shown["status"] = (view or {}).get("status")
    return shown


@routes.get(BASE + "/status-pages")
async def pages(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    return json_response({"data": [with_components(request, partition, config) for config in
                                   requested_records(request, engine_of(request).status_pages, partition)]})


@routes.get(BASE + "/status-pages/{id}")
@owned_page
async def page(request: web.Request, partition: int, config: dict) -> web.Response:
    if request.query.get("stored"):  # what an update starts from: the spec as stored
        return json_response({"data": {"spec": config["spec"], "has_password": config.get("password_hash") is not None}})
    return json_response({"data": with_components(request, partition, config)})


@routes.get(BASE + "/status-pages/{id}/components/{component}/statistics")
@owned_page
async def component_statistics(request: web.Request, partition: int, config: dict) -> web.Response:
    view = live_view(request, partition, config["id"]) or {"components": [], "incidents": []}
    component_id = request.match_info["component"]
    component = next((c for c in view["components"] if c["id"] == component_id), None)
    if component is None:
        return error_response(404, "not_found", f"component {component_id} not found")
    open_incidents = [{"id": i["id"], "name": i["name"], "status": i["status"], "impact": i["impact"],
                       "created_at": rules.iso(i["created_at"])}
                      for i in view["incidents"] if i["status"] != "resolved" and component_id in i["component_ids"]]
    return json_response({"data": {"component_id": component_id, "status": component["status"],
                                   "uptime_percentage": component["uptime_percentage"],
                                   "days": [bar for bar in rules.uptime_bars(component["daily"], view["incidents"],
                                                                             component_id, time.time())
                                            if bar["uptime_percentage"] is not None],
                                   "open_incidents": open_incidents}})


@routes.get(BASE + "/status-pages/{id}/subscriptions")
@owned_page
async def subscriptions(request: web.Request, partition: int, config: dict) -> web.Response:
    found = engine_of(request).status_pages.scan(partition, *rules.subscribers_range(config["id"]), limit=1000)
    return json_response({"data": [rules.subscription_view(subscriber) for _, subscriber in found]})


def health_routes(health: Callable[[], dict]) -> web.RouteTableDef:
    return health_route("/internal/status-pages/health", health)
