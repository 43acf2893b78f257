"""GET /v1/account/usage: what the organisation uses against what its plan allows.

Every partition counts for the organisations whose monitors it owns
(tables/usage.py); this view asks each partition's owner for its share, all at
once, and adds them up. Resource counts come from the organisation's index,
the plan from the team record every API process follows.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from api.auth import principal_of
from api.gateway import Gateway
from api.routes import Auth, Data, Routes
from engine.responses import json_response
from schemas.account import Usage
from tables.plans import plan_named

routes = Routes()
SHARES = ("monitors", "heartbeats", "monitors_active", "checks_last_24h")


@routes.get("/v1/account/usage", auth=Auth("account:read"), answers={200: Data(Usage)})
async def account_usage(request: web.Request) -> web.Response:
    """The organisation's usage and its plan's limits."""
    gateway: Gateway = request.app["gateway"]
    org_id = principal_of(request).org_id
    answers = await asyncio.gather(*[gateway.read(partition, f"/usage/{org_id}")
                                     for partition in range(gateway.partitions)])
    total = {name: sum(body["data"][name] for _, body in answers) for name in SHARES}
    plan = plan_named((gateway.teams.get(org_id) or {}).get("plan"))
    return json_response({"data": {
        "plan": plan.name,
        "monitors_used": total["monitors"],
        "monitors_active": total["monitors_active"],
        "monitors_limit": plan.limit_of("monitors"),
        "heartbeats_used": total["heartbeats"],
        "heartbeats_limit": plan.limit_of("heartbeats"),
        "checks_last_24h": total["checks_last_24h"],
        "requests_per_minute": plan.requests_per_minute,
    }})
