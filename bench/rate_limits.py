"""`python -m bench.rate_limits`: what the rate-limit middleware costs a request, in one run.

No broker: an aiohttp application with one route behind `authorize` (as every
metered endpoint is) answering a small JSON body, with and without
rate_limit_middleware in front of error_middleware, the key resolved from an
in-memory gateway as in production. Measured twice:

1. the middleware chain called in-process (no HTTP): the server-side cost alone;
2. over HTTP on 127.0.0.1, one aiohttp client, sequential requests.

Rounds alternate between the two applications so that noise hits both alike.
"""
from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request

from api.auth import authorize
from api.errors import error_middleware
from engine.responses import json_response
from api.gateway import Gateway
from api.rate_limits import RateLimiter, rate_limit_middleware
from tables.access import key_hash
from engine.settings import Settings

SECRET = "psk_bench_" + "x" * 33
ROUNDS, IN_PROCESS, OVER_HTTP = 10, 20_000, 2_000


@authorize("monitors:read")
async def small_page(request: web.Request) -> web.Response:
    return json_response({"data": [], "meta": {"page": 1, "per_page": 20, "total": 0, "total_pages": 0}})


def application(limited: bool) -> web.Application:
    gateway = Gateway(Settings(ip_rate_limit=10**9))  # never started: keys and teams are filled in below
    gateway.teams["org_bench"] = {"kind": "team", "id": "org_bench", "name": "bench", "plan": "self-hosted",
                                  "deleted": False}
    gateway.api_keys[key_hash(SECRET)] = {"kind": "api_key", "id": "key_bench", "org_id": "org_bench",
                                          "scopes": ["monitors:read"], "expires_at": None, "revoked": False}
    middlewares = [rate_limit_middleware, error_middleware] if limited else [error_middleware]
    app = web.Application(middlewares=middlewares)
    app["gateway"], app["rate_limiter"] = gateway, RateLimiter()
    app.router.add_get("/v1/monitors", small_page)
    return app


async def in_process(app: web.Application, n: int) -> float:
    """Seconds for n requests through the middleware chain, as aiohttp's server would call it."""
    handler = app._handle  # resolves the route, then runs the middlewares and the handler
    request = make_mocked_request("GET", "/v1/monitors", headers={"Authorization": f"Bearer {SECRET}"}, app=app)
    started = time.perf_counter()
    for _ in range(n):
        request.pop("principal", None)  # a new request: its key is looked up again
        await handler(request)
    return time.perf_counter() - started


async def over_http(session: aiohttp.ClientSession, url: str, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        async with session.get(url, headers={"Authorization": f"Bearer {SECRET}"}) as response:
            await response.read()
    return time.perf_counter() - started


async def main() -> None:
    apps = {limited: application(limited) for limited in (False, True)}
    for app in apps.values():
        app.freeze()
        app.router.freeze()
    spent = {(limited, way): 0.0 for limited in apps for way in ("in-process", "http")}
    servers = {limited: TestServer(app) for limited, app in apps.items()}
    for server in servers.values():
        await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(ROUNDS):
                for limited, app in apps.items():
                    spent[limited, "in-process"] += await in_process(app, IN_PROCESS)
                    spent[limited, "http"] += await over_http(session, str(servers[limited].make_url("/v1/monitors")),
                                                              OVER_HTTP)
    finally:
        for server in servers.values():
            await server.close()
    for way, n in (("in-process", IN_PROCESS), ("http", OVER_HTTP)):
        without, with_ = (spent[False, way] / (ROUNDS * n), spent[True, way] / (ROUNDS * n))
        print(f"{way:>10}: {1 / without:>9,.0f} req/s without, {1 / with_:>9,.0f} with the middleware "
              f"({with_ / without:.2f}x the time; +{(with_ - without) * 1e6:.1f} µs a request)")
    limiter, keys = RateLimiter(), [f"key:{n}" for n in range(10_000)]
    started = time.perf_counter()
    for n in range(200_000):
        limiter.admit(keys[n % len(keys)], 100_000)
    print(f"RateLimiter.admit alone, 10,000 identities: {(time.perf_counter() - started) / 200_000 * 1e6:.2f} µs")


if __name__ == "__main__":
    asyncio.run(main())
