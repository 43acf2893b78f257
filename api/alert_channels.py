"""/v1/alerts: alert channels (signed outbound webhooks); the secret is shown on creation and rotation only.

The public path keeps its first name; everywhere inside they are alert channels."""
from __future__ import annotations

import re
import secrets
import uuid

from aiohttp import web

from api import params
from api.auth import principal_of
from api.errors import ApiError
from api.gateway import Gateway
from api.org_lists import indexed_page
from api.owner_reads import Resource, answer, gateway_of
from api.params import Id
from api.routes import Auth, Data, Page, Routes
from engine.responses import json_response
from engine.sealing import seal
from schemas.alert_channel import AlertChannel, AlertChannelSpec, Delivery
from tables.alert_channels import COLLECTION

routes = Routes()
CHANNEL_ID = re.compile(r"^alc_[0-9a-f]{20}$")
#: "alert": the noun the public API has always used (/v1/alerts)
ALERT_CHANNEL = Resource.matching("alert", "/alerts", CHANNEL_ID.pattern)
CHANNEL = {"id": Id("alert", CHANNEL_ID)}
READS, WRITES = Auth("alerts:read"), Auth("alerts:write")


def new_secret() -> str:
    # sealed, not hashed: every delivery is signed with it (HMAC needs the key itself)
    return "whsec_" + secrets.token_urlsafe(32)


def sealed_secret(gateway: Gateway, secret: str) -> dict:
    """What a command carries of a new secret: sealed (engine/sealing.py), and the prefix shown later."""
    return {"secret": seal(gateway.settings.secrets_key, secret), "secret_prefix": secret[:12]}


def with_secret(status: int, view: dict, secret: str) -> dict:
    """The answer shows the new secret this once; it never travelled in the clear on a topic."""
    return {**view, "secret": secret} if status < 300 else view


async def check_members(gateway: Gateway, org_id: str, user_ids: list[str]) -> None:
    """The people a subscription names must be members of the caller's team."""
    if not user_ids:
        return
    status, team = await gateway.read(gateway.partition_of(org_id), f"/teams/{org_id}")
    members = team.get("members", {}) if status == 200 else {}
    strangers = [user_id for user_id in user_ids if user_id not in members]
    if strangers:
        why = f"not a member of this team: {', '.join(strangers)} (GET /v1/team/{{id}}/members lists them)"
        raise ApiError(422, "validation_error", f"notify: {why}", {"notify": why})


@routes.post("/v1/alerts", auth=WRITES, body=AlertChannelSpec, answers={201: Data(AlertChannel)})
async def create_alert(request: web.Request, body: AlertChannelSpec) -> web.Response:
    """A subscription to events: POSTed, signed, to `url`, and/or told to the people in `notify` on their
    notification channels. The answer holds its signing `secret`, shown this once."""
    gateway, secret = gateway_of(request), new_secret()
    await check_members(gateway, principal_of(request).org_id, body.members())
    status, reply = await gateway.command(
        "alert.create", principal_of(request).org_id, "alc_" + uuid.uuid4().hex[:20],
        {"spec": body.model_dump(mode="json"), **sealed_secret(gateway, secret)})
    return answer(status, with_secret(status, reply, secret))


@routes.get("/v1/alerts", auth=READS, query=params.pagination(), answers={200: Page(AlertChannel)})
async def list_alerts(request: web.Request, page: int, per_page: int) -> web.Response:
    views, total = await indexed_page(gateway_of(request), principal_of(request).org_id, COLLECTION,
                                      page, per_page, "/alerts")
    return json_response(params.paginated(views, page, per_page, total))


@routes.get("/v1/alerts/{id}", auth=READS, path_params=CHANNEL, answers={200: Data(AlertChannel)})
async def get_alert(request: web.Request) -> web.Response:
    return await ALERT_CHANNEL.read(request)


@routes.delete("/v1/alerts/{id}", auth=WRITES, path_params=CHANNEL, answers={204: None})
async def delete_alert(request: web.Request) -> web.Response:
    status, body = await gateway_of(request).command("alert.delete", principal_of(request).org_id,
                                                     ALERT_CHANNEL.id_of(request))
    return answer(status, body)


@routes.post("/v1/alerts/{id}/rotate-secret", auth=WRITES, path_params=CHANNEL, answers={200: Data(AlertChannel)})
async def rotate_alert_secret(request: web.Request) -> web.Response:
    """A new signing secret, shown this once; deliveries from now on are signed with it."""
    gateway, secret = gateway_of(request), new_secret()
    status, body = await gateway.command("alert.rotate", principal_of(request).org_id, ALERT_CHANNEL.id_of(request),
                                         sealed_secret(gateway, secret))
    return answer(status, with_secret(status, body, secret))


@routes.get("/v1/alerts/{id}/deliveries", auth=READS, path_params=CHANNEL, query=params.pagination(),
            answers={200: Page(Delivery)})
async def alert_deliveries(request: web.Request, page: int, per_page: int) -> web.Response:
    """Newest first, each with every attempt (time, status code or error, duration)."""
    return await ALERT_CHANNEL.read(request, "/deliveries", {"page": page, "per_page": per_page})
