"""A route declares itself once: who may call it, its path and query parameters, its body, its answers.

    routes = Routes()

    @routes.get("/v1/monitors/{id}/uptime", auth=Auth("monitors:read"), path_params={"id": Id("monitor", MONITOR_ID)},
                query={"period": Choice("24h", ("24h", "7d", "30d", "90d"))}, answers={200: Data(Uptime)})
    async def monitor_uptime(request: web.Request, period: str) -> web.Response: ...

    @routes.post("/v1/monitors", auth=Auth("monitors:write"), body=MonitorSpec, answers={201: Data(Monitor)})
    async def create_monitor(request: web.Request, body: MonitorSpec) -> web.Response: ...

From the declaration, before the view runs: the credentials are checked (401,
403), each path parameter (404 when it cannot name a resource), each query
parameter (422) and the body (400 not JSON, 422 invalid); the view gets the
query parameters by name and the parsed body as `body`. Errors the view itself
may answer beyond those (409, 410, ...) are named in `errors`. The same declaration,
which the route carries into the app's router, is what api/openapi.py reads
to describe the operation: nothing is registered anywhere else.
"""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from api.auth import authenticate
from api.params import Id, Query
from schemas.validation import parse, parse_json

View = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Auth:
    """Valid credentials carrying `scope` (None: any); see api.auth.authenticate."""
    scope: str | None
    people_only: bool = False
    team_in_path: bool = False


class Body:
    """A JSON body that is one of `models` (pydantic models or types), read with `read` (default: the first model).

    required=False: no body reads as {}. raw=True: any content at all, left to the view (ingest URLs).
    """

    def __init__(self, *models: Any, read: Callable[[Any], Any] | None = None, required: bool = True,
                 raw: bool = False) -> None:
        self.models, self.read, self.required, self.raw = models, read, required, raw

    async def parse(self, request: web.Request) -> Any:
        raw = await request.read()
        data = parse_json(raw if raw or self.required else b"{}")
        if self.read is not None:
            return self.read(data)
        return parse(self.models[0], data)


@dataclass(frozen=True)
class Data:
    """The answer {"data": <shape>}; `shape` a model or a type such as list[Model]."""
    shape: Any


@dataclass(frozen=True)
class Page:
    """The answer {"data": [<model>...], "meta": {"page", "per_page", "total", "total_pages"}}."""
    model: Any


@dataclass(frozen=True)
class Bare:
    """The answer is <shape> itself, with no envelope."""
    shape: Any


Answer = Data | Page | Bare | None   # None: no body (204)


@dataclass(frozen=True)
class Declaration:
    method: str
    path: str
    auth: Auth | None
    path_params: dict[str, Id]
    query: dict[str, Query]
    body: Body | None
    answers: dict[int, Answer]
    errors: tuple[int, ...]          # besides those the declaration implies (api/openapi.py)
    engine: bool                     # reaches a worker or Kafka: may answer 503


class Routes(web.RouteTableDef):
    """aiohttp's route table, whose entries are declared views (see the module docstring)."""

    def declare(self, method: str, path: str, *, auth: Auth | None, answers: dict[int, Answer],
                path_params: dict[str, Id] | None = None, query: dict[str, Query] | None = None,
                body: Body | type[BaseModel] | None = None, errors: tuple[int, ...] = (), engine: bool = True
                ) -> Callable[[View], View]:
        if body is not None and not isinstance(body, Body):
            body = Body(body)
        declaration = Declaration(method, path, auth, dict(path_params or {}), dict(query or {}), body,
                                  answers, errors, engine)
        named = {part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")}
        if named != set(declaration.path_params):
            raise ValueError(f"{method} {path} declares path parameters {sorted(declaration.path_params)}, "
                             f"its path has {sorted(named)}")

        def decorate(view: View) -> View:
            @functools.wraps(view)
            async def handler(request: web.Request) -> web.StreamResponse:
                if auth is not None:
                    await authenticate(request, auth.scope, people_only=auth.people_only,
                                       team_in_path=auth.team_in_path)
                for name, param in declaration.path_params.items():
                    param.check(request.match_info[name])
                arguments = {name: param.parse(request, name) for name, param in declaration.query.items()}
                if declaration.body is not None and not declaration.body.raw:
                    arguments["body"] = await declaration.body.parse(request)
                return await view(request, **arguments)

            handler.declaration = declaration
            if auth is not None:  # read by the access tests
                handler.scope, handler.people_only = auth.scope, auth.people_only
            self.route(method, path)(handler)
            return handler

        return decorate

    def get(self, path: str, **declared: Any) -> Callable[[View], View]:
        return self.declare("GET", path, **declared)

    def post(self, path: str, **declared: Any) -> Callable[[View], View]:
        return self.declare("POST", path, **declared)

    def put(self, path: str, **declared: Any) -> Callable[[View], View]:
        return self.declare("PUT", path, **declared)

    def patch(self, path: str, **declared: Any) -> Callable[[View], View]:
        return self.declare("PATCH", path, **declared)

    def delete(self, path: str, **declared: Any) -> Callable[[View], View]:
        return self.declare("DELETE", path, **declared)
