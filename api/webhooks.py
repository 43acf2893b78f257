"""/v1/webhooks: inbound webhooks; POST /v1/webhooks/{id}/events takes any JSON, no API key (the id is the secret)."""
from __future__ import annotations

import re
import secrets
import time
import uuid

import orjson
from aiohttp import web

from api import params
from api.auth import principal_of
from api.errors import ApiError
from api.gateway import Gateway
from api.org_lists import indexed_page
from api.owner_reads import Resource, answer, gateway_of, read_owner
from api.params import Id, Integer, Moment
from api.rate_limits import unmetered
from api.routes import Auth, Body, Data, Page, Routes
from engine import topics
from engine.partitioning import entity_key
from engine.responses import json_response
from schemas.webhook import MAX_BODY, ReceivedEvent, Webhook, WebhookEventAccepted, WebhookSpec
from tables.plans import plan_named

routes = Routes()
WEBHOOK_ID = re.compile(r"^whk_[A-Za-z0-9_-]{16,64}$")
WEBHOOK = Resource.matching("webhook", "/webhooks", WEBHOOK_ID.pattern)
WEBHOOK_PATH = {"id": Id("webhook", WEBHOOK_ID)}


def new_webhook_id() -> str:
    return "whk_" + secrets.token_urlsafe(24)  # unguessable: it is the ingest URL's only secret


def ingest_url(request: web.Request, webhook_id: str) -> str:
    return f"{request.scheme}://{request.host}/v1/webhooks/{webhook_id}/events"  # as a trusted proxy says


def with_ingest_url(request: web.Request, view: dict) -> dict:
    return {**view, "ingest_url": ingest_url(request, view["id"])}


@routes.post("/v1/webhooks", auth=Auth("webhooks:write"), body=WebhookSpec, answers={201: Data(Webhook)})
async def create_webhook(request: web.Request, body: WebhookSpec) -> web.Response:
    status, reply = await gateway_of(request).command(
        "webhook.create", principal_of(request).org_id, new_webhook_id(), body.model_dump(mode="json"))
    return answer(status, with_ingest_url(request, reply) if status == 201 else reply)


@routes.get("/v1/webhooks", auth=Auth("webhooks:read"), query=params.pagination(), answers={200: Page(Webhook)})
async def list_webhooks(request: web.Request, page: int, per_page: int) -> web.Response:
    views, total = await indexed_page(gateway_of(request), principal_of(request).org_id, "webhooks",
                                      page, per_page, "/webhooks")
    return json_response(params.paginated([with_ingest_url(request, v) for v in views], page, per_page, total))


@routes.get("/v1/webhooks/{id}", auth=Auth("webhooks:read"), path_params=WEBHOOK_PATH, answers={200: Data(Webhook)})
async def get_webhook(request: web.Request) -> web.Response:
    webhook_id = WEBHOOK.id_of(request)
    _, body, _ = await read_owner(request, webhook_id, "/webhooks", {"ids": webhook_id})
    if not body["data"]:
        raise ApiError(404, "not_found", f"webhook {webhook_id} not found")
    return json_response({"data": with_ingest_url(request, body["data"][0])})


@routes.delete("/v1/webhooks/{id}", auth=Auth("webhooks:write"), path_params=WEBHOOK_PATH, answers={204: None})
async def delete_webhook(request: web.Request) -> web.Response:
    gateway, webhook_id = gateway_of(request), WEBHOOK.id_of(request)
    status, body = await gateway.directory_command("webhook.delete", principal_of(request).org_id, webhook_id)
    return answer(status, body)


@routes.get("/v1/webhooks/{id}/events", auth=Auth("webhooks:read"), path_params=WEBHOOK_PATH,
            query={"limit": Integer(20, 1, 100), "last_received_at": Moment("page back: the oldest received_at you have")},
            answers={200: Data(list[ReceivedEvent])})
async def webhook_events(request: web.Request, limit: int, last_received_at: float | None) -> web.Response:
    """Recent events, newest first; page back with last_received_at (the oldest received_at you have)."""
    return await WEBHOOK.read(request, "/events", {"limit": limit, "before": last_received_at or None})


@routes.post("/v1/webhooks/{id}/events", auth=None, path_params=WEBHOOK_PATH, body=Body(raw=True),
             answers={202: Data(WebhookEventAccepted)}, errors=(413, 429))
@unmetered  # no API key: the id is the secret
async def receive_event(request: web.Request) -> web.Response:
    """Any body (JSON understood, anything else stored as text); 202 once Kafka has it."""
    gateway, webhook_id = gateway_of(request), WEBHOOK.id_of(request)
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "payload_too_large",
                       f"A webhook event may be at most {MAX_BODY // 1024} KiB; this one is {len(raw) // 1024} KiB.")
    org_id = await _owner(gateway, webhook_id)
    # no key to count against: the webhook and its team are, so a known id cannot flood the workers
    plan = plan_named(gateway.teams.get(org_id, {}).get("plan"))
    quota = request.app["rate_limiter"].admit(f"webhook:{webhook_id}", plan.webhook_events_per_minute,
                                              (f"ingest:{org_id}", plan.team_webhook_events_per_minute))
    if not quota.accepted:
        raise ApiError(429, "ingest_rate_exceeded",
                       f"Too many events: at most {quota.limit} a minute here. Retry after {quota.reset} seconds.",
                       headers={**quota.headers(), "Retry-After": str(quota.reset)})
    event = {"id": "wev_" + uuid.uuid4().hex, "webhook_id": webhook_id, "received_at": time.time(),
             "ip": request.remote, "content_type": request.headers.get("Content-Type")}
    try:
        event["json"] = orjson.loads(raw)
    except orjson.JSONDecodeError:
        event["text"] = raw.decode("utf-8", "replace")
    with gateway.ingesting() as ingest:
        await gateway.produce(ingest.topic(topics.WEBHOOK_EVENTS), orjson.dumps({"org_id": org_id, "events": [event]}),
                              key=entity_key(webhook_id), partition=ingest.partition_of(webhook_id),
                              what="the webhook event")
    return json_response({"data": {"id": event["id"], "ip": event["ip"], "content_type": event["content_type"],
                                   "parsed": "json" in event}}, 202)


async def _owner(gateway: Gateway, webhook_id: str) -> str:
    """The webhook's organisation, from the directory (one catch-up if not known yet); a deleted webhook's
    events reaching the worker meanwhile are dead-lettered there."""
    asked = time.monotonic()
    org_id = gateway.directory.webhook_owner(webhook_id)
    if org_id is None:
        await gateway.sync_directory(since=asked)
        org_id = gateway.directory.webhook_owner(webhook_id)
    if org_id is None:
        raise ApiError(404, "not_found", f"webhook {webhook_id} not found: create one with POST /v1/webhooks")
    return org_id
