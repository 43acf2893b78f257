"""/v1/status-pages: pages and their components through commands; live statuses and statistics from the owner.

A subdomain (and a domain) belongs to one page: the API claims it first with a
`status_page.claim` command to the name's partition (409 when another page
holds it), then creates or changes the page, and releases a name the page no
longer uses. Passwords of private pages are hashed here (argon2id) and stored
only as their hash.
"""
from __future__ import annotations

import re
import secrets
import uuid

import dns.asyncresolver
import dns.exception
import dns.resolver
from aiohttp import web
from pydantic import ValidationError

from api import params
from api.alert_channels import new_secret, sealed_secret, with_secret
from api.auth import principal_of
from api.errors import ApiError
from api.org_lists import indexed_page
from api.owner_reads import OWNER_HEADER, Resource, answer, gateway_of, read_owner
from api.passwords import hash_password
from api.routes import Auth, Data, Page, Routes
from api.params import Id
from engine.responses import json_response
from schemas.status_page import (
    COMPONENT_ID, DOMAIN, PAGE_ID, Component, ComponentStatistics, DomainCheck, Maintenance, MaintenanceSpec,
    StatusPage, StatusPagePatch, StatusPageSpec, Subscription, SubscriptionCreate,
)
from schemas.validation import InvalidInput, field_errors
from tables import status_pages as rules

routes = Routes()
PAGE = Resource.matching("status page", "/status-pages", PAGE_ID.pattern)
PAGE_PATH = {"id": Id("status page", PAGE_ID)}
READS, WRITES = Auth("status-pages:read"), Auth("status-pages:write")
COLLECTION = "status_pages"


def new_page_id() -> str:
    return "sp_" + uuid.uuid4().hex[:20]


def page_url(request: web.Request, subdomain: str) -> str:
    return f"{request.scheme}://{request.host}/s/{subdomain}"


def shown(request: web.Request, page: dict) -> dict:
    return {**page, "url": page_url(request, page["subdomain"])}


def answer_page(request: web.Request, status: int, reply: object) -> web.Response:
    if status in (200, 201) and isinstance(reply, dict):
        reply = shown(request, reply)
    return answer(status, reply)


def checked_sources(request: web.Request, spec: StatusPageSpec, before: dict | None = None) -> None:
    """Components may show the caller's own monitors and heartbeats only (another's are as good as absent).

    `before`: the stored spec; a source it already showed is not asked about again (a monitor deleted since
    leaves its component as it is, and does not stop other changes of the page).
    """
    directory, org_id = gateway_of(request).directory, principal_of(request).org_id
    shown = set(rules.sources_of(before)) if before else set()
    errors = {}
    for n, component in enumerate(spec.components):
        if f"monitor:{component.monitor_id}" in shown or f"heartbeat:{component.heartbeat_id}" in shown:
            continue
        if component.monitor_id and directory.monitors.get(component.monitor_id) != org_id:
            errors[f"components.{n}.monitor_id"] = f"no monitor {component.monitor_id}"
        known = directory.heartbeats.get(component.heartbeat_id or "")
        if component.heartbeat_id and (known is None or known[0] != org_id):
            errors[f"components.{n}.heartbeat_id"] = f"no heartbeat {component.heartbeat_id}"
    if errors:
        raise InvalidInput("A component names a monitor or heartbeat that does not exist", errors)


def stored_spec(spec: StatusPageSpec) -> dict:
    """The spec as stored: every component with an id, the password left out (its hash is kept apart)."""
    stored = spec.model_dump(exclude={"password"})
    for component in stored["components"]:
        component["id"] = component["id"] or "cmp_" + uuid.uuid4().hex[:16]
    return stored


def names_of(spec: dict) -> set[str]:
    names = {rules.subdomain_claim(spec["subdomain"])}
    if spec.get("domain"):
        names.add(rules.domain_claim(spec["domain"]))
    return names


async def claim(request: web.Request, page_id: str, names: set[str]) -> None:
    """Claim each name for the page; on a 409, release what this call claimed and answer it."""
    gateway, org_id = gateway_of(request), principal_of(request).org_id
    claimed = []
    for name in sorted(names):
        status, reply = await gateway.command("status_page.claim", org_id, name, {"page_id": page_id})
        if status >= 400:
            await release(request, page_id, set(claimed))
            raise ApiError(status, reply["error"], reply["message"])
        claimed.append(name)


async def release(request: web.Request, page_id: str, names: set[str]) -> None:
    gateway, org_id = gateway_of(request), principal_of(request).org_id
    for name in sorted(names):
        await gateway.command("status_page.claim", org_id, name, {"page_id": page_id, "release": True})


@routes.post("/v1/status-pages", auth=WRITES, body=StatusPageSpec, answers={201: Data(StatusPage)}, errors=(409,))
async def create_status_page(request: web.Request, body: StatusPageSpec) -> web.Response:
    """Create a page; 409 when its subdomain or domain is another page's."""
    if body.type == "private" and not body.password and not body.ip_addresses:
        raise InvalidInput("A private page needs a password or ip_addresses",
                           {"password": "a private page needs a password or ip_addresses"})
    checked_sources(request, body)
    page_id, spec = new_page_id(), stored_spec(body)
    password_hash = await hash_password(body.password) if body.password else None
    await claim(request, page_id, names_of(spec))
    status, reply = await gateway_of(request).command("status_page.create", principal_of(request).org_id, page_id,
                                                      {"spec": spec, "password_hash": password_hash})
    if status >= 400:
        await release(request, page_id, names_of(spec))
    return answer_page(request, status, reply)


@routes.get("/v1/status-pages", auth=READS, answers={200: Page(StatusPage)}, query=params.pagination())
async def list_status_pages(request: web.Request, page: int, per_page: int) -> web.Response:
    """Pages in creation order, a page at a time."""
    views, total = await indexed_page(gateway_of(request), principal_of(request).org_id, COLLECTION, page, per_page,
                                      "/status-pages")
    return json_response(params.paginated([shown(request, view) for view in views], page, per_page, total))


@routes.get("/v1/status-pages/{id}", auth=READS, path_params=PAGE_PATH, answers={200: Data(StatusPage)})
async def get_status_page(request: web.Request) -> web.Response:
    """A page with its components' live statuses and the page's overall status."""
    page_id = PAGE.id_of(request)
    status, body, owner = await read_owner(request, page_id, f"/status-pages/{page_id}")
    if status == 200:
        body = {"data": shown(request, body["data"])}
    return json_response(body, status, headers={OWNER_HEADER: owner})


@routes.put("/v1/status-pages/{id}", auth=WRITES, path_params=PAGE_PATH, body=StatusPagePatch,
            answers={200: Data(StatusPage)}, errors=(409,))
async def update_status_page(request: web.Request, body: StatusPagePatch) -> web.Response:
    """Change the fields given; `components`, when given, replaces them (ids given are kept)."""
    page_id = PAGE.id_of(request)
    status, current, _ = await read_owner(request, page_id, f"/status-pages/{page_id}", {"stored": 1})
    if status != 200:
        return json_response(current, status)
    before, has_password = current["data"]["spec"], current["data"]["has_password"]
    try:
        spec = StatusPageSpec.model_validate(body.merged_with(before))
    except ValidationError as exc:
        errors = field_errors(exc)
        raise InvalidInput("The change would leave the status page invalid: "
                           + "; ".join(f"{k}: {v}" for k, v in errors.items()), errors) from None
    if spec.type == "private" and not (spec.password or has_password or spec.ip_addresses):
        raise InvalidInput("A private page needs a password or ip_addresses",
                           {"password": "a private page needs a password or ip_addresses"})
    checked_sources(request, spec, before)
    after = stored_spec(spec)
    change: dict = {"spec": after}
    if spec.password:
        change["password_hash"] = await hash_password(spec.password)
    added, dropped = names_of(after) - names_of(before), names_of(before) - names_of(after)
    await claim(request, page_id, added)
    status, reply = await gateway_of(request).command("status_page.update", principal_of(request).org_id, page_id,
                                                      change)
    await release(request, page_id, dropped if status < 400 else added)
    return answer_page(request, status, reply)


@routes.delete("/v1/status-pages/{id}", auth=WRITES, path_params=PAGE_PATH, answers={204: None})
async def delete_status_page(request: web.Request) -> web.Response:
    """Delete a page; its subdomain and domain are free again."""
    page_id = PAGE.id_of(request)
    status, current, _ = await read_owner(request, page_id, f"/status-pages/{page_id}", {"stored": 1})
    if status != 200:
        return json_response(current, status)
    status, reply = await gateway_of(request).command("status_page.delete", principal_of(request).org_id, page_id)
    if status < 400:
        await release(request, page_id, names_of(current["data"]["spec"]))
    return answer(status, reply)


@routes.get("/v1/status-pages/{id}/components", auth=READS, path_params=PAGE_PATH,
            answers={200: Data(list[Component])})
async def status_page_components(request: web.Request) -> web.Response:
    """The page's components with their live statuses."""
    page_id = PAGE.id_of(request)
    status, body, owner = await read_owner(request, page_id, f"/status-pages/{page_id}")
    if status == 200:
        body = {"data": body["data"]["components"]}
    return json_response(body, status, headers={OWNER_HEADER: owner})


@routes.get("/v1/status-pages/{id}/components/{component_id}/statistics", auth=READS,
            path_params={**PAGE_PATH, "component_id": Id("component", COMPONENT_ID)},
            answers={200: Data(ComponentStatistics)})
async def component_statistics(request: web.Request) -> web.Response:
    """A component's status, uptime over 90 days (and per day), and the open incidents naming it."""
    return await PAGE.read(request, f"/components/{request.match_info['component_id']}/statistics")


MAINTENANCE_ID = re.compile(r"^mnt_[a-f0-9]{16}$")
SUBSCRIPTION_ID = re.compile(r"^sub_[a-f0-9]{16}$")


async def subscribe(request: web.Request, page: dict, email: str, page_url: str) -> tuple[int, dict]:
    """A pending subscriber of `page`, mailed a link to confirm (as its organisation, whoever asks)."""
    return await gateway_of(request).command("status_page.subscribe", page["org_id"], page["id"], {
        "subscriber_id": "sub_" + uuid.uuid4().hex[:16], "email": email.strip(), "token": secrets.token_urlsafe(24),
        "page_url": page_url})


async def subscribe_webhook(request: web.Request, page: dict, url: str) -> tuple[int, dict]:
    """A webhook subscriber of `page`, told of every update from now on, signed with a new secret that the
    answer shows this once (sealed on the topic and in the table, as an alert channel's)."""
    gateway, secret = gateway_of(request), new_secret()
    status, reply = await gateway.command("status_page.subscribe", page["org_id"], page["id"], {
        "subscriber_id": "sub_" + uuid.uuid4().hex[:16], "webhook": url, **sealed_secret(gateway, secret)})
    return status, with_secret(status, reply, secret)


@routes.post("/v1/status-pages/{id}/subscriptions", auth=WRITES, path_params=PAGE_PATH, body=SubscriptionCreate,
             answers={201: Data(Subscription), 202: Data(Subscription)}, errors=(403, 409))
async def create_subscription(request: web.Request, body: SubscriptionCreate) -> web.Response:
    """Subscribe an address (202: it gets a link to confirm first) or a webhook (201: told at once, each update
    POSTed signed as alert channel deliveries are; the answer holds its `secret`, shown this once) to the page's
    incidents and maintenance."""
    page_id = PAGE.id_of(request)
    page = gateway_of(request).status_pages.pages.get(page_id)
    if page is None or page["org_id"] != principal_of(request).org_id:
        raise ApiError(404, "not_found", f"status page {page_id} not found")
    if body.webhook is not None:
        status, reply = await subscribe_webhook(request, page, body.webhook)
    else:
        status, reply = await subscribe(request, page, body.email, page_url(request, page["subdomain"]))
    return answer(status, reply)


@routes.get("/v1/status-pages/{id}/subscriptions", auth=READS, path_params=PAGE_PATH,
            answers={200: Data(list[Subscription])})
async def list_subscriptions(request: web.Request) -> web.Response:
    """The page's subscribers, confirmed or not (the first 1,000)."""
    return await PAGE.read(request, "/subscriptions")


@routes.delete("/v1/status-pages/{id}/subscriptions/{subscription_id}", auth=WRITES,
               path_params={**PAGE_PATH, "subscription_id": Id("subscription", SUBSCRIPTION_ID)},
               answers={204: None})
async def delete_subscription(request: web.Request) -> web.Response:
    """Remove a subscriber: no more mail or webhook deliveries to it (pending ones are dropped)."""
    page_id = PAGE.id_of(request)
    status, reply = await gateway_of(request).command(
        "status_page.subscription.delete", principal_of(request).org_id, page_id,
        {"subscriber_id": request.match_info["subscription_id"]})
    return answer(status, reply)


@routes.post("/v1/status-pages/{id}/maintenances", auth=WRITES, path_params=PAGE_PATH, body=MaintenanceSpec,
             answers={201: Data(Maintenance)})
async def announce_maintenance(request: web.Request, body: MaintenanceSpec) -> web.Response:
    """Announce scheduled maintenance ahead: shown on the page, its components under maintenance while it runs."""
    page_id = PAGE.id_of(request)
    maintenance = body.stored("mnt_" + uuid.uuid4().hex[:16])
    status, reply = await gateway_of(request).command("status_page.maintenance.set", principal_of(request).org_id,
                                                      page_id, {"maintenance": maintenance})
    return answer(status, reply)


@routes.delete("/v1/status-pages/{id}/maintenances/{maintenance_id}", auth=WRITES,
               path_params={**PAGE_PATH, "maintenance_id": Id("maintenance", MAINTENANCE_ID)}, answers={204: None})
async def cancel_maintenance(request: web.Request) -> web.Response:
    """Take a scheduled maintenance off the page."""
    page_id = PAGE.id_of(request)
    status, reply = await gateway_of(request).command(
        "status_page.maintenance.delete", principal_of(request).org_id, page_id,
        {"id": request.match_info["maintenance_id"]})
    return answer(status, reply)


@routes.get("/v1/status-pages/domains/{domain}", auth=READS,
            path_params={"domain": Id("domain", DOMAIN)}, answers={200: Data(DomainCheck)})
async def status_page_domain(request: web.Request) -> web.Response:
    """Does the domain's CNAME point at this deployment (PINGSTREAM_STATUS_PAGE_CNAME)? A DNS lookup now."""
    domain = request.match_info["domain"]
    settings = gateway_of(request).settings
    target = settings.status_page_cname.rstrip(".").lower()
    resolver = dns.asyncresolver.Resolver(configure=not settings.dns_nameserver)
    if settings.dns_nameserver:
        host, _, port = settings.dns_nameserver.partition(":")
        resolver.nameservers, resolver.port = [host], int(port or 53)
    try:
        found = await resolver.resolve(domain, "CNAME", lifetime=3.0)
        cnames = [record.target.to_text().rstrip(".").lower() for record in found]
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers, dns.exception.Timeout):
        cnames = []
    views = gateway_of(request).status_pages
    page = views.by_host(domain)
    mine = page is not None and page["org_id"] == principal_of(request).org_id
    return json_response({"data": {"domain": domain, "expected_target": target, "cname": cnames,
                                   "configured": target in cnames, "page_id": page["id"] if mine else None}})
