"""GET /v1/openapi.json, derived from the routes and the schemas (invariant 8)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel

from api.rate_limits import unmetered
from engine.responses import json_response

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_body(*models: type[BaseModel]) -> Callable[[Handler], Handler]:
    """Declare the body a view accepts (one of `models`), for the document; put it right under the route."""

    def declare(handler: Handler) -> Handler:
        handler.request_models = models
        return handler

    return declare


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "machine-readable code"},
        "message": {"type": "string", "description": "what was wrong and what to do"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}, "description": "field -> reason"},
    },
}


def document(app: web.Application) -> dict:
    components: dict[str, dict] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith("/v1") or route.method == "HEAD":
            continue
        handler = route.handler
        operation: dict = {
            "summary": (handler.__doc__ or handler.__name__.replace("_", " ")).strip().splitlines()[0],
            "operationId": handler.__name__,
            "responses": {"default": {"description": "error",
                                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        }
        if hasattr(handler, "scope"):  # protected (scope None: any valid credentials)
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
            operation["x-scope"] = handler.scope
            if handler.people_only:
                operation["x-people-only"] = True
        models = getattr(handler, "request_models", None)
        if models:
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            refs = [{"$ref": f"#/components/schemas/{model.__name__}"} for model in models]
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}}}
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "pingstream", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }


@routes.get("/v1/openapi.json")
@unmetered
async def openapi(request: web.Request) -> web.Response:
    return json_response(document(request.app))
