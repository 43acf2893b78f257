"""Notification channels: /v1/account/notification-channels (yours) and /v1/team/{id}/notification-channels.

Create, list, get, update (PATCH; enable/disable and priority too), verify
with the code the channel received, ask for a new code, test, delete, and
each channel's deliveries. The owner is derived from the credentials: a
person's own channels, or the team of the path (404 when the caller is not in
it), so nobody names another's. Secrets never come back: a webhook's signing
secret is shown once, in the answer that made it; an apprise URL shows only
its scheme and a masked tail.
"""
from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

import apprise
from aiohttp import web

from api import params
from api.auth import principal_of
from api.errors import ApiError
from api.owner_reads import answer, gateway_of
from api.params import Id
from api.routes import Auth, Data, Page, Routes
from engine.responses import json_response
from engine.sealing import seal
from schemas.notification_channel import (
    ChannelDelivery, ChannelPatch, ChannelSpec, NotificationChannel, TestSent, VerificationCode,
)
from tables import notification_channels as layout

routes = Routes()
CHANNEL_ID = re.compile(r"^nch_[0-9a-f]{20}$")
NOUN = "notification channel"
CHANNEL = Id(NOUN, CHANNEL_ID)


def invalid(field: str, why: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {why}", {field: why})


def sealed_destination(request: web.Request, kind: str, field: str, value: str) -> dict[str, Any]:
    """What a command carries of a destination: secrets sealed (engine/sealing.py), never in the clear."""
    settings = gateway_of(request).settings
    if kind in ("sms", "voice") and not settings.sms_url:
        raise ApiError(422, "sms_not_configured", "No SMS provider is configured on this server "
                                                  "(PINGSTREAM_SMS_URL): sms and voice channels cannot be used.",
                       {"type": "no SMS provider configured"})
    if kind == "apprise":
        if apprise.Apprise.instantiate(value) is None:
            raise invalid("url", "not a URL apprise understands (see its list of services: slack://, discord://, "
                                 "msteams://, tgram://, ntfy://, pover://, gotify://, matrix://, json://, ...)")
        return {"sealed_url": seal(settings.secrets_key, value), "url_hint": layout.masked_url(value)}
    if kind == "webhook" and not value.startswith(("http://", "https://")):
        raise invalid("url", "a webhook channel's url must be an absolute http:// or https:// URL")
    return {field: value}


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def owners(scope: str) -> tuple[str, dict[str, Id], Auth, Auth]:
    """(path prefix, its path parameters, read auth, write auth) of personal or team channels."""
    if scope == "account":
        person = Auth(None, people_only=True)
        return "/v1/account/notification-channels", {}, person, person
    return ("/v1/team/{id}/notification-channels", {"id": Id("team")},
            Auth("alerts:read", team_in_path=True), Auth("alerts:write", team_in_path=True))


def owner_of(request: web.Request, scope: str) -> str:
    principal = principal_of(request)
    return layout.person(principal.user_id) if scope == "account" else layout.team(principal.org_id)


async def command(request: web.Request, scope: str, kind: str, body: dict) -> tuple[int, Any]:
    return await gateway_of(request).command(kind, principal_of(request).org_id, owner_of(request, scope), body)


async def read(request: web.Request, scope: str, path: str = "", query: dict | None = None) -> tuple[int, Any]:
    gateway, owner = gateway_of(request), owner_of(request, scope)
    return await gateway.read(gateway.partition_of(owner), f"/notification-channels/{owner}{path}", query)


def declare(scope: str) -> None:
    """The routes of one kind of owner (a person's own, a team's)."""
    base, owner_params, reads, writes = owners(scope)
    one = {**owner_params, "channel": CHANNEL}
    whose = "your" if scope == "account" else "the team's"

    async def create(request: web.Request, body: ChannelSpec) -> web.Response:
        field = layout.TARGET_FIELD[body.type]
        destination = sealed_destination(request, body.type, field, getattr(body, field))
        signing_secret = new_signing_secret() if body.type == "webhook" else None
        if signing_secret is not None:
            destination.update(secret=seal(gateway_of(request).settings.secrets_key, signing_secret),
                               secret_prefix=signing_secret[:12])
        status, reply = await command(request, scope, "notification_channel.create", {
            "id": "nch_" + uuid.uuid4().hex[:20], "spec": body.model_dump(include={"type", "name", "priority",
                                                                                  "enabled"}),
            **destination})
        if status == 201 and signing_secret is not None:  # shown this once; it never travelled in the clear
            reply = {**reply, "secret": signing_secret}
        return answer(status, reply)

    async def list_channels(request: web.Request, page: int, per_page: int) -> web.Response:
        status, body = await read(request, scope)
        if status != 200:
            return json_response(body, status)
        views = body["data"]
        return json_response(params.paginated(views[(page - 1) * per_page:page * per_page], page, per_page,
                                              len(views)))

    async def get(request: web.Request) -> web.Response:
        status, body = await read(request, scope, "/" + request.match_info["channel"])
        return json_response(body, status)

    async def update(request: web.Request, body: ChannelPatch) -> web.Response:
        channel_id = request.match_info["channel"]
        changes: dict[str, Any] = {"id": channel_id, "patch": body.model_dump(include={"name", "priority",
                                                                                       "enabled"})}
        field = next((name for name in ("address", "phone", "url") if getattr(body, name) is not None), None)
        if field is not None:
            status, current = await read(request, scope, "/" + channel_id)
            if status != 200:
                return json_response(current, status)
            kind = current["data"]["type"]
            if layout.TARGET_FIELD[kind] != field:
                raise invalid(field, f"a {kind} channel takes `{layout.TARGET_FIELD[kind]}`")
            changes.update(sealed_destination(request, kind, field, getattr(body, field)))
        return answer(*await command(request, scope, "notification_channel.update", changes))

    async def switch(request: web.Request, enabled: bool) -> web.Response:
        return answer(*await command(request, scope, "notification_channel.update", {
            "id": request.match_info["channel"], "patch": {"enabled": enabled}}))

    async def enable(request: web.Request) -> web.Response:
        return await switch(request, True)

    async def disable(request: web.Request) -> web.Response:
        return await switch(request, False)

    async def verify(request: web.Request, body: VerificationCode) -> web.Response:
        return answer(*await command(request, scope, "notification_channel.verify", {
            "id": request.match_info["channel"], "code": body.code}))

    async def resend(request: web.Request) -> web.Response:
        return answer(*await command(request, scope, "notification_channel.resend",
                                     {"id": request.match_info["channel"]}))

    async def test(request: web.Request) -> web.Response:
        return answer(*await command(request, scope, "notification_channel.test",
                                     {"id": request.match_info["channel"]}))

    async def delete(request: web.Request) -> web.Response:
        return answer(*await command(request, scope, "notification_channel.delete",
                                     {"id": request.match_info["channel"]}))

    async def deliveries(request: web.Request, page: int, per_page: int) -> web.Response:
        status, body = await read(request, scope, f"/{request.match_info['channel']}/deliveries",
                                  {"page": page, "per_page": per_page})
        return json_response(body, status)

    create.__doc__ = (f"Add a channel to {whose}: email (address), webhook (url; its signing secret is in this "
                      "answer only), sms or voice (phone, through the operator's provider), apprise (url of a chat "
                      "or push service, kept secret). A verification code goes through the channel itself; it "
                      "gets nothing else until verified.")
    list_channels.__doc__ = f"{whose.capitalize()} channels, in priority order (lower first)."
    get.__doc__ = "One channel."
    update.__doc__ = "Change name, priority, enabled, or the destination (which must be verified again)."
    enable.__doc__ = "Enable the channel: it receives messages again (once verified)."
    disable.__doc__ = "Disable the channel: it receives nothing but verification codes."
    verify.__doc__ = "Verify the channel with the code it received."
    resend.__doc__ = "Send a new verification code through the channel (the previous one stops working)."
    test.__doc__ = "Send a real test message through the channel (verified and enabled ones only)."
    delete.__doc__ = "Delete the channel and its delivery log."
    deliveries.__doc__ = "Newest first, each with every attempt (time, outcome, status code or error, duration)."
    for view in (create, list_channels, get, update, enable, disable, verify, resend, test, delete, deliveries):
        view.__name__ = view.__qualname__ = f"{view.__name__}_{scope}_notification_channel"

    routes.post(base, auth=writes, path_params=owner_params, body=ChannelSpec, answers={201: Data(NotificationChannel)},
                errors=(409, 429))(create)
    routes.get(base, auth=reads, path_params=owner_params, query=params.pagination(),
               answers={200: Page(NotificationChannel)})(list_channels)
    routes.get(base + "/{channel}", auth=reads, path_params=one, answers={200: Data(NotificationChannel)})(get)
    routes.patch(base + "/{channel}", auth=writes, path_params=one, body=ChannelPatch,
                 answers={200: Data(NotificationChannel)}, errors=(429,))(update)
    routes.post(base + "/{channel}/enable", auth=writes, path_params=one,
                answers={200: Data(NotificationChannel)})(enable)
    routes.post(base + "/{channel}/disable", auth=writes, path_params=one,
                answers={200: Data(NotificationChannel)})(disable)
    routes.post(base + "/{channel}/verify", auth=writes, path_params=one, body=VerificationCode,
                answers={200: Data(NotificationChannel)})(verify)
    routes.post(base + "/{channel}/verification-code", auth=writes, path_params=one,
                answers={202: Data(NotificationChannel)}, errors=(409, 429))(resend)
    routes.post(base + "/{channel}/test", auth=writes, path_params=one,
                answers={202: Data(TestSent)}, errors=(409,))(test)
    routes.delete(base + "/{channel}", auth=writes, path_params=one, answers={204: None})(delete)
    routes.get(base + "/{channel}/deliveries", auth=reads, path_params=one, query=params.pagination(),
               answers={200: Page(ChannelDelivery)})(deliveries)


declare("account")
declare("team")
