"""GET /v1/openapi.json: every operation as its route declares it (api/routes.py), schemas from schemas/ (invariant 8)."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from api.params import Ids
from api.rate_limits import unmetered
from api.routes import Bare, Body, Data, Declaration, Page, Routes
from engine.responses import json_response
from schemas.pagination import PageMeta
from schemas.validation import ErrorBody

routes = Routes()
REF = "#/components/schemas/{model}"
ERROR_MEANING = {
    400: "the body is not JSON", 401: "missing, unknown, revoked or expired credentials",
    403: "the credentials may not do this", 404: "no such resource (in your organisation)",
    409: "conflicts with the current state", 410: "gone: expired", 413: "the body is too large",
    422: "invalid input: `errors` says which fields and why", 429: "rate limited: retry after Retry-After seconds",
    503: "no worker or Kafka answered in time (starting, rebalancing or down): retry after Retry-After",
}
#: aiohttp refuses a request line or header longer than 8190 bytes before any route sees it, in plain text
BAD_HTTP = "the request is not valid HTTP (e.g. a URL or a header longer than 8190 bytes)"
RATE_LIMIT_HEADERS = {  # on every answer of a metered operation (api/rate_limits.py)
    "X-RateLimit-Limit": {"description": "requests a minute", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "how many more would be accepted now", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "seconds until Remaining goes up", "schema": {"type": "integer"}},
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


class Components:
    """The document's named schemas, each model once, whatever refers to it."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict] = {}

    def of(self, shape: Any, mode: str) -> dict:
        """A schema for a model or type; models land in components and are referred to."""
        if shape is Any:
            return {}
        schema = TypeAdapter(shape).json_schema(ref_template=REF, mode=mode)
        self.schemas.update(schema.pop("$defs", {}))
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            self.schemas.setdefault(shape.__name__, schema)
            return {"$ref": REF.format(model=shape.__name__)}
        return schema

    def answer(self, answer: Any) -> dict | None:
        if answer is None:
            return None
        if isinstance(answer, Data):
            return {"type": "object", "required": ["data"], "properties": {"data": self.of(answer.shape, "serialization")}}
        if isinstance(answer, Page):
            return {"type": "object", "required": ["data", "meta"], "properties": {
                "data": {"type": "array", "items": self.of(answer.model, "serialization")},
                "meta": self.of(PageMeta, "serialization")}}
        if isinstance(answer, Bare):
            return self.of(answer.shape, "serialization")
        raise TypeError(f"not an answer: {answer!r}")


def error_statuses(declaration: Declaration, metered: bool) -> set[int]:
    """The errors an operation can answer: those its declaration implies, and those it names."""
    statuses = set(declaration.errors)
    if declaration.auth is not None:
        statuses |= {401, 403}
        if declaration.auth.team_in_path:
            statuses.add(404)
    if declaration.path_params:
        statuses.add(404)
    if declaration.query:
        statuses.add(422)
    if declaration.body is not None:
        statuses.add(413)
        if not declaration.body.raw:
            statuses |= {400, 422}
    if metered:
        statuses.add(429)
    if declaration.engine:
        statuses.add(503)
    return statuses - set(declaration.answers)


def parameters(declaration: Declaration) -> list[dict]:
    found = [{"name": name, "in": "path", "required": True, "description": param.what + " id",
              "schema": param.schema()} for name, param in declaration.path_params.items()]
    for name, param in declaration.query.items():
        entry: dict[str, Any] = {"name": name, "in": "query", "required": isinstance(param, Ids),
                                 "schema": param.schema()}
        if param.description:
            entry["description"] = param.description
        if isinstance(param, Ids):
            entry["style"], entry["explode"] = "form", True
        found.append(entry)
    return found


def request_body(components: Components, body: Body) -> dict:
    if body.raw:
        return {"required": False, "content": {"*/*": {"schema": {}}}}
    schemas = [components.of(model, "validation") for model in body.models]
    return {"required": body.required, "content": {"application/json": {
        "schema": schemas[0] if len(schemas) == 1 else {"oneOf": schemas}}}}


def operation(components: Components, handler: Any, declaration: Declaration) -> dict:
    doc = (handler.__doc__ or handler.__name__.replace("_", " ")).strip().splitlines()[0]
    entry: dict[str, Any] = {"summary": doc, "operationId": handler.__name__,
                             "tags": [declaration.path.split("/")[2]]}
    if declaration.auth is not None:
        entry["security"] = [{"bearer": []}, {"apiKey": []}]
        entry["x-scope"] = getattr(handler, "scope", declaration.auth.scope)
        if declaration.auth.people_only:
            entry["x-people-only"] = True
    found = parameters(declaration)
    if found:
        entry["parameters"] = found
    if declaration.body is not None:
        entry["requestBody"] = request_body(components, declaration.body)
    responses: dict[str, dict] = {}
    for status, answer in sorted(declaration.answers.items()):
        schema = components.answer(answer)
        responses[str(status)] = {"description": "success" if status < 400 else ERROR_MEANING.get(status, "error")}
        if schema is not None:
            responses[str(status)]["content"] = {"application/json": {"schema": schema}}
    metered = getattr(handler, "unmetered", None) is None
    error = {"application/json": {"schema": components.of(ErrorBody, "serialization")}}
    for status in sorted(error_statuses(declaration, metered)):
        responses[str(status)] = {"description": ERROR_MEANING[status], "content": error}
    plain = {"text/plain": {"schema": {"type": "string"}}}
    if "400" in responses:
        responses["400"] = {"description": f"{ERROR_MEANING[400]}; or, in plain text, {BAD_HTTP}",
                            "content": {**error, **plain}}
    else:
        responses["400"] = {"description": f"in plain text: {BAD_HTTP}", "content": plain}
    if metered:
        for status, response in responses.items():
            response["headers"] = {**RATE_LIMIT_HEADERS, **(RETRY_AFTER if status == "429" else {})}
    entry["responses"] = dict(sorted(responses.items()))
    return entry


def links(created: Declaration, declared: list[tuple[Any, Declaration]]) -> dict[str, dict]:
    """From a 201 that made a resource to the operations on it: its id fills their new path parameter.

    POST /v1/monitors → /v1/monitors/{id}...; POST /v1/team/{id}/invitation →
    /v1/team/{id}/invitation/{invitation}... (the {id} it was made under stays).
    """
    found = {}
    for handler, declaration in declared:
        rest = declaration.path.removeprefix(created.path + "/")
        if rest == declaration.path or not rest.startswith("{"):
            continue
        new = rest[1:rest.index("}")]
        parameters = {name: f"$request.path.{name}" for name in created.path_params}
        parameters[new] = "$response.body#/data/id"
        found[handler.__name__] = {"operationId": handler.__name__, "parameters": parameters}
    return found


def document(app: web.Application) -> dict:
    components = Components()
    paths: dict[str, dict] = {}
    declared = [(route.handler, route.handler.declaration) for route in app.router.routes()
                if hasattr(route.handler, "declaration") and route.method != "HEAD"]
    for handler, declaration in declared:
        entry = paths.setdefault(declaration.path, {})[declaration.method.lower()] = operation(
            components, handler, declaration)
        if declaration.method == "POST" and isinstance(declaration.answers.get(201), Data):
            follow = links(declaration, declared)
            if follow:
                entry["responses"]["201"]["links"] = follow
    return {
        "openapi": "3.1.0",
        "info": {"title": "pingstream", "version": "1",
                 "description": "Errors are {\"error\", \"message\", \"errors\"}; lists are "
                                "{\"data\": [...], \"meta\": {\"page\", \"per_page\", \"total\", \"total_pages\"}}."},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }


@routes.get("/v1/openapi.json", auth=None, answers={200: Bare(dict)}, engine=False)
@unmetered
async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return json_response(document(request.app))
