"""GET /v1/openapi.json describes every route of the app as its declaration says (api/routes.py)."""
from __future__ import annotations

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from api.app import create_app
from api.gateway import Gateway
from api.openapi import document
from api.params import Integer
from api.routes import Auth, Data, Routes
from engine.settings import Settings
from schemas.validation import InvalidInput

APP = create_app(Gateway(Settings()), manage_gateway=False)  # the route table does not depend on settings
DOCUMENT = document(APP)
PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
API_ROUTES = [route for route in APP.router.routes()
              if route.resource.canonical.startswith("/v1") and route.method != "HEAD"]


def test_every_route_is_declared_and_in_the_document_with_its_path_parameters() -> None:
    assert len(API_ROUTES) > 70
    for route in API_ROUTES:
        path, method = route.resource.canonical, route.method.lower()
        assert hasattr(route.handler, "declaration"), f"{route.method} {path} is not declared"
        operation = DOCUMENT["paths"][path][method]
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(PARAMETER.findall(path)), f"{route.method} {path}"


def test_every_operation_documents_a_success_answer_and_its_errors() -> None:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            statuses = {int(status) for status in operation["responses"]}
            assert any(200 <= status < 300 for status in statuses), f"{method} {path}"
            if "security" in operation:
                assert {401, 403} <= statuses, f"{method} {path}"
            if any(p["in"] == "path" for p in operation.get("parameters", [])):
                assert 404 in statuses, f"{method} {path}"
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                assert {400, 422} <= statuses, f"{method} {path}"


def test_lists_are_paginated_and_errors_share_one_schema() -> None:
    monitors = DOCUMENT["paths"]["/v1/monitors"]["get"]
    assert {p["name"] for p in monitors["parameters"]} == {"page", "per_page"}
    page = monitors["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["properties"]["meta"] == {"$ref": "#/components/schemas/PageMeta"}
    assert DOCUMENT["components"]["schemas"]["PageMeta"]["required"] == ["page", "per_page", "total", "total_pages"]
    error = DOCUMENT["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"error", "message", "errors"}


def test_a_body_model_is_named_once_and_reaches_the_document() -> None:
    create = DOCUMENT["paths"]["/v1/monitors"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/MonitorSpec"}
    assert create["x-scope"] == "monitors:write"
    assert "MonitorSpec" in DOCUMENT["components"]["schemas"]


def test_a_declaration_whose_path_parameters_differ_from_its_path_is_refused() -> None:
    with pytest.raises(ValueError, match="declares path parameters"):
        Routes().get("/v1/things/{id}", auth=None, answers={200: Data(dict)})


async def test_the_declaration_parses_the_query_before_the_view_runs() -> None:
    routes = Routes()
    seen = []

    @routes.get("/v1/numbers", auth=None, query={"n": Integer(5, 1, 10)}, answers={200: Data(int)}, engine=False)
    async def numbers(request: web.Request, n: int) -> web.Response:
        seen.append(n)
        return web.json_response({"data": n})

    app = web.Application()
    app.add_routes(routes)
    route = next(r for r in app.router.routes() if r.method == "GET")
    await route.handler(make_mocked_request("GET", "/v1/numbers?n=7", app=app))
    await route.handler(make_mocked_request("GET", "/v1/numbers", app=app))
    assert seen == [7, 5]
    with pytest.raises(InvalidInput):
        await route.handler(make_mocked_request("GET", "/v1/numbers?n=11", app=app))


def test_auth_is_read_from_the_declaration_by_the_access_tests() -> None:
    handler = next(r.handler for r in API_ROUTES if r.resource.canonical == "/v1/team/{id}" and r.method == "DELETE")
    assert handler.declaration.auth == Auth("teams:write", people_only=True, team_in_path=True)
    assert (handler.scope, handler.people_only) == ("teams:write", True)
