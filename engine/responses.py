"""JSON responses, for the public API and owner reads alike: errors as {"error", "message"[, "errors"]}."""
from __future__ import annotations

import orjson
from aiohttp import web


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def error_response(status: int, code: str, message: str, errors: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, object] = {"error": code, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(body, status, headers)
