"""/v1/alerts: alert channels (signed outbound webhooks); the secret is shown on creation and rotation only.

The public path keeps its first name; everywhere inside they are alert channels."""
from __future__ import annotations

import secrets
import uuid

from aiohttp import web

from api import params
from api.auth import authorize, principal_of
from api.openapi import request_body
from engine.responses import json_response
from api.owner_reads import Resource, answer, body_of, gateway_of
from api.org_lists import indexed_page
from schemas.alert_channel import AlertChannelSpec
from schemas.validation import parse
from tables.alert_channels import COLLECTION

routes = web.RouteTableDef()
#: "alert": the noun the public API has always used (/v1/alerts)
ALERT_CHANNEL = Resource.matching("alert", "/alerts", r"^alc_[0-9a-f]{20}$")


def new_secret() -> str:
    # stored as it is, not hashed: every delivery is signed with it (HMAC needs the key itself)
    return "whsec_" + secrets.token_urlsafe(32)


@routes.post("/v1/alerts")
@request_body(AlertChannelSpec)
@authorize("alerts:write")
async def create_alert(request: web.Request) -> web.Response:
    """A webhook channel; the answer holds its signing `secret`, shown this once."""
    spec = parse(AlertChannelSpec, await body_of(request))
    status, body = await gateway_of(request).command(
        "alert.create", principal_of(request).org_id, "alc_" + uuid.uuid4().hex[:20],
        {"spec": spec.model_dump(mode="json"), "secret": new_secret()})
    return answer(status, body)


@routes.get("/v1/alerts")
@authorize("alerts:read")
async def list_alerts(request: web.Request) -> web.Response:
    page, per_page = params.pagination(request)
    views, total = await indexed_page(gateway_of(request), principal_of(request).org_id, COLLECTION,
                                      page, per_page, "/alerts")
    return json_response(params.paginated(views, page, per_page, total))


@routes.get("/v1/alerts/{id}")
@authorize("alerts:read")
async def get_alert(request: web.Request) -> web.Response:
    return await ALERT_CHANNEL.read(request)


@routes.delete("/v1/alerts/{id}")
@authorize("alerts:write")
async def delete_alert(request: web.Request) -> web.Response:
    status, body = await gateway_of(request).command("alert.delete", principal_of(request).org_id,
                                                     ALERT_CHANNEL.id_of(request))
    return answer(status, body)


@routes.post("/v1/alerts/{id}/rotate-secret")
@authorize("alerts:write")
async def rotate_alert_secret(request: web.Request) -> web.Response:
    """A new signing secret, shown this once; deliveries from now on are signed with it."""
    status, body = await gateway_of(request).command("alert.rotate", principal_of(request).org_id,
                                                     ALERT_CHANNEL.id_of(request), {"secret": new_secret()})
    return answer(status, body)


@routes.get("/v1/alerts/{id}/deliveries")
@authorize("alerts:read")
async def alert_deliveries(request: web.Request) -> web.Response:
    """Newest first, each with every attempt (time, status code or error, duration)."""
    page, per_page = params.pagination(request)
    return await ALERT_CHANNEL.read(request, "/deliveries", {"page": page, "per_page": per_page})
