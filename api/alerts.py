"""/v1/alerts: alert channels (signed outbound webhooks); the secret is shown on creation and rotation only."""
from __future__ import annotations

import re
import secrets
import uuid

from aiohttp import web

from api import openapi, params
from api.auth import authorize, principal_of
from api.errors import ApiError, json_response
from api.gateway import Gateway
from api.monitors import answer, body_of, gateway_of
from api.org_lists import indexed_page
from engine.sealing import seal
from schemas.alert_channel import AlertChannelSpec
from schemas.validation import parse

routes = web.RouteTableDef()
CHANNEL_ID = re.compile(r"^alc_[0-9a-f]{20}$")
openapi.REQUEST_BODIES[("POST", "/v1/alerts")] = [AlertChannelSpec]


def new_secret() -> str:
    # stored as it is, not hashed: every delivery is signed with it (HMAC needs the key itself)
    return "whsec_" + secrets.token_urlsafe(32)


def channel_id_of(request: web.Request) -> str:
    channel_id = request.match_info["id"]
    if not CHANNEL_ID.match(channel_id):
        raise ApiError(404, "not_found", f"alert {channel_id} not found")
    return channel_id


async def owner_read(request: web.Request, path: str, query: dict | None = None) -> web.Response:
    gateway, channel_id = gateway_of(request), channel_id_of(request)
    status, body = await gateway.read(gateway.partition_of(channel_id), f"/alerts/{channel_id}{path}",
                                      {"org": principal_of(request).org_id, **(query or {})})
    return json_response(body, status)


def sealed_secret(gateway: Gateway, secret: str) -> dict:
    """What a command carries of a new secret: sealed (engine/sealing.py), and the prefix shown later."""
    return {"secret": seal(gateway.settings.secrets_key, secret), "secret_prefix": secret[:12]}


def with_secret(status: int, view: dict, secret: str) -> dict:
    """The answer shows the new secret this once; it never travelled in the clear on a topic."""
    return {**view, "secret": secret} if status < 300 else view


@routes.post("/v1/alerts")
@authorize("alerts:write")
async def create_alert(request: web.Request) -> web.Response:
    """A webhook channel; the answer holds its signing `secret`, shown this once."""
    spec = parse(AlertChannelSpec, await body_of(request))
    gateway, secret = gateway_of(request), new_secret()
    status, body = await gateway.command(
        "alert.create", principal_of(request).org_id, "alc_" + uuid.uuid4().hex[:20],
        {"spec": spec.model_dump(mode="json"), **sealed_secret(gateway, secret)})
    return answer(status, with_secret(status, body, secret))


@routes.get("/v1/alerts")
@authorize("alerts:read")
async def list_alerts(request: web.Request) -> web.Response:
    page, per_page = params.pagination(request)
    views, total = await indexed_page(gateway_of(request), principal_of(request).org_id, "alerts",
                                      page, per_page, "/alerts")
    return json_response(params.paginated(views, page, per_page, total))


@routes.get("/v1/alerts/{id}")
@authorize("alerts:read")
async def get_alert(request: web.Request) -> web.Response:
    return await owner_read(request, "")


@routes.delete("/v1/alerts/{id}")
@authorize("alerts:write")
async def delete_alert(request: web.Request) -> web.Response:
    status, body = await gateway_of(request).command("alert.delete", principal_of(request).org_id,
                                                     channel_id_of(request))
    return answer(status, body)


@routes.post("/v1/alerts/{id}/rotate-secret")
@authorize("alerts:write")
async def rotate_alert_secret(request: web.Request) -> web.Response:
    """A new signing secret, shown this once; deliveries from now on are signed with it."""
    gateway, secret = gateway_of(request), new_secret()
    status, body = await gateway.command("alert.rotate", principal_of(request).org_id, channel_id_of(request),
                                         sealed_secret(gateway, secret))
    return answer(status, with_secret(status, body, secret))


@routes.get("/v1/alerts/{id}/deliveries")
@authorize("alerts:read")
async def alert_deliveries(request: web.Request) -> web.Response:
    """Newest first, each with every attempt (time, status code or error, duration)."""
    page, per_page = params.pagination(request)
    return await owner_read(request, "/deliveries", {"page": page, "per_page": per_page})
