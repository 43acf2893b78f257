"""/v1/webhooks: inbound webhooks; POST /v1/webhooks/{id}/events takes any JSON, no API key (the id is the secret)."""
from __future__ import annotations

import re
import secrets
import time
import uuid
from weakref import WeakKeyDictionary

import orjson
from aiohttp import web

from api import openapi, params
from api.auth import authorize, principal_of
from api.errors import ApiError, json_response
from api.gateway import Gateway
from api.monitors import answer, body_of, gateway_of
from api.org_lists import indexed_page
from api.rate_limits import unmetered
from engine import topics
from engine.partitioning import entity_key
from engine.plans import plan_named
from schemas.validation import parse
from schemas.webhook import MAX_BODY, WebhookSpec

routes = web.RouteTableDef()
WEBHOOK_ID = re.compile(r"^whk_[A-Za-z0-9_-]{16,64}$")
KNOWN_TTL = 30.0   # seconds an existing webhook is trusted for ingest without asking its owner
KNOWN_MAX = 100_000
openapi.REQUEST_BODIES[("POST", "/v1/webhooks")] = [WebhookSpec]

#: gateway -> webhook id -> (organisation, monotonic expiry): a steady sender costs no owner reads
_known: WeakKeyDictionary[Gateway, dict[str, tuple[str, float]]] = WeakKeyDictionary()


def new_webhook_id() -> str:
    return "whk_" + secrets.token_urlsafe(24)  # unguessable: it is the ingest URL's only secret


def webhook_id_of(request: web.Request) -> str:
    webhook_id = request.match_info["id"]
    if not WEBHOOK_ID.match(webhook_id):
        raise ApiError(404, "not_found", f"webhook {webhook_id} not found")
    return webhook_id


def ingest_url(request: web.Request, webhook_id: str) -> str:
    return f"{request.scheme}://{request.host}/v1/webhooks/{webhook_id}/events"  # as a trusted proxy says


def with_ingest_url(request: web.Request, view: dict) -> dict:
    return {**view, "ingest_url": ingest_url(request, view["id"])}


@routes.post("/v1/webhooks")
@authorize("webhooks:write")
async def create_webhook(request: web.Request) -> web.Response:
    spec = parse(WebhookSpec, await body_of(request))
    status, body = await gateway_of(request).command(
        "webhook.create", principal_of(request).org_id, new_webhook_id(), spec.model_dump(mode="json"))
    return answer(status, with_ingest_url(request, body) if status == 201 else body)


@routes.get("/v1/webhooks")
@authorize("webhooks:read")
async def list_webhooks(request: web.Request) -> web.Response:
    page, per_page = params.pagination(request)
    views, total = await indexed_page(gateway_of(request), principal_of(request).org_id, "webhooks",
                                      page, per_page, "/webhooks")
    return json_response(params.paginated([with_ingest_url(request, v) for v in views], page, per_page, total))


@routes.get("/v1/webhooks/{id}")
@authorize("webhooks:read")
async def get_webhook(request: web.Request) -> web.Response:
    gateway, webhook_id = gateway_of(request), webhook_id_of(request)
    _, body = await gateway.read(gateway.partition_of(webhook_id), "/webhooks",
                                 {"org": principal_of(request).org_id, "ids": webhook_id})
    if not body["data"]:
        raise ApiError(404, "not_found", f"webhook {webhook_id} not found")
    return json_response({"data": with_ingest_url(request, body["data"][0])})


@routes.delete("/v1/webhooks/{id}")
@authorize("webhooks:write")
async def delete_webhook(request: web.Request) -> web.Response:
    gateway, webhook_id = gateway_of(request), webhook_id_of(request)
    status, body = await gateway.command("webhook.delete", principal_of(request).org_id, webhook_id)
    _known.get(gateway, {}).pop(webhook_id, None)
    return answer(status, body)


@routes.get("/v1/webhooks/{id}/events")
@authorize("webhooks:read")
async def webhook_events(request: web.Request) -> web.Response:
    """Recent events, newest first; page back with last_received_at (the oldest received_at you have)."""
    gateway, webhook_id = gateway_of(request), webhook_id_of(request)
    limit = params.integer(request, "limit", 20, 1, 100)
    before = params.moment(request, "last_received_at", 0) or None
    status, body = await gateway.read(gateway.partition_of(webhook_id), f"/webhooks/{webhook_id}/events",
                                      {"org": principal_of(request).org_id, "limit": limit, "before": before})
    return json_response(body, status)


@routes.post("/v1/webhooks/{id}/events")
@unmetered  # no API key: the id is the secret
async def receive_event(request: web.Request) -> web.Response:
    """Any body (JSON understood, anything else stored as text); 202 once Kafka has it."""
    gateway, webhook_id = gateway_of(request), webhook_id_of(request)
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
    await gateway.producer.send_and_wait(topics.WEBHOOK_EVENTS, orjson.dumps({"org_id": org_id, "events": [event]}),
                                         key=entity_key(webhook_id), partition=gateway.partition_of(webhook_id))
    return json_response({"data": {"id": event["id"], "ip": event["ip"], "content_type": event["content_type"],
                                   "parsed": "json" in event}}, 202)


async def _owner(gateway: Gateway, webhook_id: str) -> str:
    """The webhook's organisation, asked of its owner at most every KNOWN_TTL s (a deleted webhook's
    events reaching the worker meanwhile are dead-lettered there)."""
    known = _known.setdefault(gateway, {})
    entry = known.get(webhook_id)
    if entry is not None and entry[1] > time.monotonic():
        return entry[0]
    status, body = await gateway.read(gateway.partition_of(webhook_id), f"/webhooks/{webhook_id}/owner")
    if status != 200:
        raise ApiError(404, "not_found", f"webhook {webhook_id} not found: create one with POST /v1/webhooks")
    if len(known) > KNOWN_MAX:
        known.clear()
    known[webhook_id] = (body["data"]["org_id"], time.monotonic() + KNOWN_TTL)
    return body["data"]["org_id"]
