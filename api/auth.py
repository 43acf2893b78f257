"""Who is asking: API keys (Bearer or X-API-Key) resolved to an organisation and scopes."""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.errors import ApiError
from api.gateway import Gateway, Principal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def presented_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-API-Key") or None


def authorize(scope: str) -> Callable[[Handler], Handler]:
    """The request needs a valid key carrying `scope`; the principal lands in request["principal"]."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            secret = presented_key(request)
            if secret is None:
                raise ApiError(401, "unauthorized",
                               "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.")
            gateway: Gateway = request.app["gateway"]
            principal = gateway.authenticate(secret)
            if principal is None:
                raise ApiError(401, "unauthorized", "The API key is not valid (unknown, revoked or expired).")
            if not principal.can(scope):
                raise ApiError(403, "insufficient_scope", f"This API key lacks the '{scope}' scope.")
            request["principal"] = principal
            return await handler(request)

        wrapper.scope = scope  # read by the OpenAPI document
        return wrapper

    return decorate


def principal_of(request: web.Request) -> Principal:
    return request["principal"]
