"""The API's side of owner reads, and what every view takes from a request: the gateway, the path's id, the body.

A view reads an entity's state from the worker that owns the entity's
partition (api/gateway.py finds it, follows it through rebalances); the
owner's answer is the response, with the worker that gave it in
X-Pingstream-Owner. A worker's reply to a command becomes the response the
same way (`answer`).
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.auth import principal_of
from api.errors import ApiError
from api.gateway import Gateway
from engine.responses import json_response

OWNER_HEADER = "X-Pingstream-Owner"


def gateway_of(request: web.Request) -> Gateway:
    return request.app["gateway"]


@dataclass(frozen=True, slots=True)
class Resource:
    """A kind of entity the API reads from its owner: what it is called, its ids, where its owner serves it."""

    noun: str                             # "monitor": in "monitor mon_… not found"
    path: str                             # "/monitors": its owner reads, below /internal/partitions/{p}
    parse_id: Callable[[str], str | None]  # the id a path segment names, or None if it cannot be one of ours

    @classmethod
    def matching(cls, noun: str, path: str, pattern: str) -> Resource:
        compiled = re.compile(pattern)
        return cls(noun, path, lambda text: text if compiled.match(text) else None)

    def id_of(self, request: web.Request) -> str:
        """The {id} of the request's path; one that cannot be an id of ours is simply not found."""
        entity_id = self.parse_id(request.match_info["id"])
        if entity_id is None:
            raise ApiError(404, "not_found", f"{self.noun} {request.match_info['id']} not found")
        return entity_id

    async def read(self, request: web.Request, view: str = "", query: dict[str, Any] | None = None) -> web.Response:
        """The owner's answer about the entity of the path, as the response."""
        entity_id = self.id_of(request)
        return await owner_read(request, entity_id, f"{self.path}/{entity_id}{view}", query)


def answer(status: int, body: object) -> web.Response:
    """A worker's reply as the HTTP response: resources wrapped in data, errors as they are."""
    if status == 204:
        return web.Response(status=204)
    return json_response(body if status >= 400 else {"data": body}, status)


async def read_owner(request: web.Request, owner_key: str, path: str,
                     query: dict[str, Any] | None = None) -> tuple[int, Any, str]:
    """GET `path` from the worker owning `owner_key`'s partition, for the caller's organisation.

    Returns (status, body, the worker that answered).
    """
    gateway = gateway_of(request)
    return await gateway.read_from_owner(gateway.partition_of(owner_key), path,
                                         {"org": principal_of(request).org_id, **(query or {})})


async def owner_data(request: web.Request, owner_key: str, path: str, query: dict[str, Any] | None = None) -> Any:
    """The `data` of the owner's answer; the owner's error (404 ...) raised as the request's answer."""
    status, body, _ = await read_owner(request, owner_key, path, query)
    if status != 200:
        raise ApiError(status, body.get("error", "not_found"), body.get("message", f"{path} not found"))
    return body["data"]


async def owner_read(request: web.Request, owner_key: str, path: str,
                     query: dict[str, Any] | None = None) -> web.Response:
    """The owner's answer as the response."""
    status, body, owner = await read_owner(request, owner_key, path, query)
    return json_response(body, status, headers={OWNER_HEADER: owner})


async def delete_each(request: web.Request, kind: str, ids: list[str],
                      entity_id: Callable[[str], str | None]) -> web.Response:
    """DELETE ?id=..&id=..: a `kind` command for each; answers which were deleted and which were not found.

    `entity_id`: the id a raw one names, None for one that cannot name any.
    """
    gateway, org_id = gateway_of(request), principal_of(request).org_id

    async def delete(raw: str) -> int:
        named = entity_id(raw)
        if named is None:
            return 404
        status, _ = await gateway.directory_command(kind, org_id, named)
        return status

    statuses = await asyncio.gather(*[delete(raw) for raw in ids])
    return json_response({"data": {"deleted": [raw for raw, status in zip(ids, statuses) if status == 204],
                                   "not_found": [raw for raw, status in zip(ids, statuses) if status == 404]}})
