"""/v1/pages: pages to people that repeat and escalate until acknowledged; /v1/external/pages for programs.

Pages live in the team's partition (agents/pages), where its members,
schedules and groups are: every change is a command there, every read that
worker's answer. Admins (managers, roots, API keys) see and cancel every page
of the team; others see the pages they received. Every message carries a
one-click link, GET /v1/pages/ack/{token}, that acknowledges without signing in.
"""
from __future__ import annotations

import re
import time
import uuid

from aiohttp import web

from api import params
from api.auth import principal_of
from api.errors import ApiError
from api.gateway import Principal
from api.owner_reads import answer, gateway_of, owner_data
from api.params import Choice, Id
from api.routes import Auth, Bare, Data, Page, Routes
from engine.responses import json_response
from schemas.page import Acknowledgement, PageCreated, PageSpec
from schemas.page import Page as PageModel
from tables.pages import PRIORITIES, STATUSES, read_ack_token

routes = Routes()
PAGE_ID = re.compile(r"^pg_[0-9a-f]{20}$")
PAGE = {"id": Id("page", PAGE_ID)}
TOKEN = {"token": Id("acknowledge link", re.compile(r"^[A-Za-z0-9_-]{10,400}\.[A-Za-z0-9_-]{43}$"))}
READS, WRITES = Auth("pages:read"), Auth("pages:write")
LIST_QUERY = {**params.pagination(), "status": Choice(None, STATUSES, "only pages in this status"),
              "priority": Choice(None, PRIORITIES, "only pages of this priority")}


def is_admin(principal: Principal) -> bool:
    return not principal.is_person or principal.role in ("manager", "root")


def seen_by(principal: Principal) -> dict:
    """What an owner read of pages is limited to: everything for admins, else the pages the person received."""
    return {} if is_admin(principal) else {"user": principal.user_id}


def refuse_faster_than_allowed(request: web.Request, body: PageSpec) -> None:
    settings = gateway_of(request).settings
    errors = {}
    if body.repeat_interval_s is not None and body.repeat_interval_s < settings.page_min_repeat:
        errors["repeat_interval_s"] = f"must be at least {settings.page_min_repeat} seconds"
    for n, step in enumerate(body.escalation):
        if step.delay_seconds < settings.page_min_delay:
            errors[f"escalation.{n}.delay_seconds"] = f"must be at least {settings.page_min_delay} seconds"
    if errors:
        raise ApiError(422, "validation_error", "; ".join(f"{k}: {v}" for k, v in errors.items()), errors)


async def send_page(request: web.Request, body: PageSpec) -> web.Response:
    refuse_faster_than_allowed(request, body)
    principal = principal_of(request)
    created_by = principal.user_id or f"key:{principal.key_id}"
    status, reply = await gateway_of(request).command(
        "page.create", principal.org_id, principal.org_id,
        {"id": "pg_" + uuid.uuid4().hex[:20], "spec": body.model_dump(), "created_by": created_by})
    if status >= 400:
        return answer(status, reply)
    return json_response(reply, status)


@routes.post("/v1/pages", auth=Auth("pages:write", people_only=True), body=PageSpec,
             answers={201: Bare(PageCreated)}, errors=(422,))
async def create_page(request: web.Request, body: PageSpec) -> web.Response:
    """Page one person (single; no target: whoever is on call now), a group, or everyone (broadcast)."""
    return await send_page(request, body)


@routes.post("/v1/external/pages", auth=WRITES, body=PageSpec, answers={201: Bare(PageCreated)}, errors=(422,))
async def create_external_page(request: web.Request, body: PageSpec) -> web.Response:
    """The same, for programs: an API key in X-API-Key or as a Bearer token."""
    return await send_page(request, body)


@routes.get("/v1/pages", auth=READS, query=LIST_QUERY, answers={200: Page(PageModel)})
async def list_pages(request: web.Request, page: int, per_page: int, status: str | None,
                     priority: str | None) -> web.Response:
    """The team's pages, newest first (admins: all; others: the pages they received)."""
    principal = principal_of(request)
    query = {**seen_by(principal), **({"status": status} if status else {}),
             **({"priority": priority} if priority else {})}
    pages = await owner_data(request, principal.org_id, "/pages", query)
    return json_response(params.paginated(pages[(page - 1) * per_page:page * per_page], page, per_page, len(pages)))


@routes.get("/v1/pages/{id}", auth=READS, path_params=PAGE, answers={200: Data(PageModel)})
async def get_page(request: web.Request) -> web.Response:
    """A page with its recipients, first_sent_at and acknowledged_at."""
    principal = principal_of(request)
    found = await owner_data(request, principal.org_id, f"/pages/{request.match_info['id']}", seen_by(principal))
    return json_response({"data": found})


async def acknowledge(request: web.Request, org_id: str, page_id: str, user_id: str | None, admin: bool,
                      note: str | None, method: str | None) -> web.Response:
    return answer(*await gateway_of(request).command("page.acknowledge", org_id, org_id, {
        "id": page_id, "user_id": user_id, "admin": admin, "response_note": note, "method": method}))


@routes.post("/v1/pages/{id}/acknowledge", auth=WRITES, path_params=PAGE, body=Acknowledgement,
             answers={200: Data(PageModel)}, errors=(409,))
async def acknowledge_page(request: web.Request, body: Acknowledgement) -> web.Response:
    """Stop the page's repeats and escalation: by one of its recipients, or an admin."""
    principal = principal_of(request)
    return await acknowledge(request, principal.org_id, request.match_info["id"], principal.user_id,
                             is_admin(principal), body.response_note, body.method)


@routes.get("/v1/pages/ack/{token}", auth=None, path_params=TOKEN, answers={200: Data(PageModel)}, errors=(409,))
async def acknowledge_by_link(request: web.Request) -> web.Response:
    """The one-click link every message of a page carries: acknowledges as its recipient, without signing in."""
    claims = read_ack_token(gateway_of(request).settings.jwt_secret, request.match_info["token"], time.time())
    if claims == "expired":
        raise ApiError(404, "link_expired", "This acknowledge link has expired.")
    if isinstance(claims, str):
        raise ApiError(404, "not_found", "This acknowledge link is not valid.")
    org_id, page_id, user_id = claims
    return await acknowledge(request, org_id, page_id, user_id, False, None, "link")


@routes.delete("/v1/pages/{id}", auth=WRITES, path_params=PAGE, answers={200: Data(PageModel)}, errors=(403,))
async def cancel_page(request: web.Request) -> web.Response:
    """Cancel the page (admins): no more repeats or escalation."""
    principal = principal_of(request)
    if not is_admin(principal):
        raise ApiError(403, "insufficient_role", "Only a manager or root of the team can cancel a page.")
    return answer(*await gateway_of(request).command("page.cancel", principal.org_id, principal.org_id,
                                                     {"id": request.match_info["id"], "status": "cancelled"}))
