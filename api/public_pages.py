"""Public status pages: HTML rendered on the server, Statuspage-compatible JSON, an Atom feed of incidents.

Served at /s/{subdomain}/... and, for a page with a `domain`, at /... of a
request whose Host is that domain. Everything comes from the page's live view
that this process follows (api/status_page_views.py): one lookup in memory,
rendered once per version of the page. Private pages let in the addresses of
their `ip_addresses` and visitors holding the page's cookie, which the right
password gets them (HMAC of the page and its password hash: a new password
ends every visitor's cookie).
"""
from __future__ import annotations

import gzip
import hashlib
import hmac
import ipaddress
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
from aiohttp import web
from feedgen.feed import FeedGenerator
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.passwords import verify_password
from api.rate_limits import client_address, unmetered
from api.status_page_views import StatusPageViews
from api.status_pages import subscribe
from schemas.status_page import EMAIL
from tables import status_pages as rules

routes = web.RouteTableDef()
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
TEMPLATES.globals["iso"] = rules.iso
WORDS = {"operational": "Operational", "degraded_performance": "Degraded performance",
         "partial_outage": "Partial outage", "major_outage": "Major outage", "under_maintenance": "Under maintenance"}
DOCUMENTS = {"summary.json": "summary", "status.json": "status", "components.json": "components",
             "incidents.json": "incidents", "incidents/unresolved.json": "unresolved",
             "scheduled-maintenances.json": "scheduled-maintenances"}
PAST_DAYS = 7
SUBSCRIBER_ID = re.compile(r"^sub_[a-f0-9]{16}$")
HTML, JSON, ATOM = "text/html", "application/json", "application/atom+xml"
HTML_UTF8 = HTML + "; charset=utf-8"
NOT_FOUND = (b"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Not found</title></head>"
             b"<body><h1>Not found</h1><p>There is no status page here.</p></body></html>")


def views_of(request: web.Request) -> StatusPageViews:
    return request.app["gateway"].status_pages


def not_found() -> web.Response:
    return web.Response(status=404, body=NOT_FOUND, content_type=HTML, charset="utf-8")


def page_of(request: web.Request) -> tuple[dict | None, str]:
    """The page the request names (by subdomain, else by Host) and the base URL its links use."""
    subdomain = request.match_info.get("subdomain")
    if subdomain is not None:
        return views_of(request).by_name(subdomain), f"/s/{subdomain}"
    return views_of(request).by_host(request.host), ""


def cookie_name(page: dict) -> str:
    return f"ps_{page['id']}"


def cookie_value(request: web.Request, page: dict) -> str:
    secret = request.app["gateway"].settings.jwt_secret or request.app["gateway"].settings.internal_token
    key = hashlib.sha256(b"status-page-cookie:" + secret.encode()).digest()
    return hmac.new(key, f"{page['id']}:{page['password_hash']}".encode(), hashlib.sha256).hexdigest()


def let_in(request: web.Request, page: dict) -> bool:
    if page["type"] != "private":
        return True
    if page.get("ip_addresses"):
        try:
            address = ipaddress.ip_address(client_address(request))
            if any(address in ipaddress.ip_network(net, strict=False) for net in page["ip_addresses"]):
                return True
        except ValueError:
            pass
    presented = request.cookies.get(cookie_name(page))
    return bool(page.get("password_hash") and presented
                and hmac.compare_digest(presented, cookie_value(request, page)))


def refused(page: dict, base: str, wrong: bool = False) -> web.Response:
    body = TEMPLATES.get_template("status_password.html").render(
        name=page["page_name"], password=bool(page.get("password_hash")), base=base, wrong=wrong)
    return web.Response(status=401 if page.get("password_hash") else 403, text=body, content_type=HTML)


def guarded(what: str):
    """The view gets (request, page, base) for a page that exists and lets the caller in."""
    def wrap(view):
        async def handler(request: web.Request) -> web.StreamResponse:
            page, base = page_of(request)
            if page is None:
                return not_found()
            if base == "" and page.get("redirect_to_https") and request.scheme == "http":
                raise web.HTTPMovedPermanently(f"https://{request.host}{request.path_qs}")
            if what not in ("login", "verify", "unsubscribe") and not let_in(request, page):
                return refused(page, base)
            return await view(request, page, base)
        handler.__name__ = view.__name__
        # served from memory to anyone: a page is public by nature; but a subscription sends mail, so it is
        # counted against the caller's address like any request without a key
        return handler if what == "subscribe" else unmetered(handler)
    return wrap


# -- the page ----------------------------------------------------------------------------------


def served(request: web.Request, page: dict, what: tuple, make, content_type: str, **headers: str) -> web.Response:
    """The rendering of `page` for `what`, made once per version; gzipped once too, for clients that take it.

    A page of 100 components is half a megabyte of bars whose markup repeats: gzipped, about 30 times less.
    """
    views = views_of(request)
    headers = {"Vary": "Accept-Encoding", **headers}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = views.render(page, (*what, "gzip"), lambda: gzip.compress(views.render(page, what, make), 6, mtime=0))
        headers["Content-Encoding"] = "gzip"
    else:
        body = views.render(page, what, make)
    return web.Response(body=body, headers={"Content-Type": content_type, **headers})


def render_page(page: dict, base: str, now: float) -> bytes:
    names = {component["id"]: component["name"] for component in page["components"]}
    maintenances = [{**m, "status": rules.maintenance_status(m, now)} for m in page.get("maintenances", ())]
    bars = {component["id"]: rules.uptime_bars(component["daily"], page["incidents"], component["id"], now)
            for component in page["components"]}
    active = [incident for incident in page["incidents"] if incident["status"] != "resolved"]
    days = list(reversed(rules.days_ending(now, PAST_DAYS)))
    resolved: dict[str, list[dict]] = {day: [] for day in days}
    for incident in page["incidents"]:
        day = rules.day_of(incident["created_at"])
        if incident["status"] == "resolved" and day in resolved:
            resolved[day].append(incident)
    return TEMPLATES.get_template("status_page.html").render(
        page=page, base=base, active=active, past=list(resolved.items()), words=WORDS, names=names,
        bars=bars, maintenances=[m for m in maintenances if m["status"] != "completed"]).encode()


@routes.get("/s/{subdomain}")
@routes.get("/s/{subdomain}/")
@routes.get("/")
@guarded("page")
async def status_page(request: web.Request, page: dict, base: str) -> web.Response:
    now = time.time()  # the bars end today; a maintenance may have started or ended since the page changed
    return served(request, page, ("html", base, rules.day_of(now), rules.maintenance_phase(page, now)),
                  lambda: render_page(rules.at_time(page, now), base, now), HTML_UTF8,
                  **{"Cache-Control": "no-cache" if page["type"] == "public" else "private, no-cache"})


@routes.post("/s/{subdomain}/login")
@routes.post("/login")
@guarded("login")
async def status_page_login(request: web.Request, page: dict, base: str) -> web.Response:
    """A private page's password form: the right password gets the cookie and goes back to the page."""
    form = await request.post()
    password = form.get("password")
    if not page.get("password_hash") or not isinstance(password, str) or \
            not await verify_password(page["password_hash"], password):
        return refused(page, base, wrong=True)
    response = web.HTTPSeeOther(base or "/")
    response.set_cookie(cookie_name(page), cookie_value(request, page), httponly=True, samesite="Lax",
                        path=base or "/", secure=request.scheme == "https", max_age=30 * 86400)
    raise response


# -- Statuspage-compatible JSON and the feed ----------------------------------------------------


def document_route(path: str):
    return routes.get(path + "/api/v2/{document:summary\\.json|status\\.json|components\\.json|incidents\\.json|"
                             "incidents/unresolved\\.json|scheduled-maintenances\\.json}")


@document_route("/s/{subdomain}")
@document_route("")
@guarded("json")
async def statuspage_json(request: web.Request, page: dict, base: str) -> web.Response:
    kind = DOCUMENTS[request.match_info["document"]]
    url = f"{request.scheme}://{request.host}{base or '/'}"
    now = time.time()
    return served(request, page, (kind, url, rules.maintenance_phase(page, now)),
                  lambda: orjson.dumps(rules.statuspage_document(page, url, kind, now)),
                  JSON, **{"Access-Control-Allow-Origin": "*"})


def render_feed(page: dict, url: str) -> bytes:
    feed = FeedGenerator()
    feed.id(url)
    feed.title(f"{page['page_name']} status: incidents")
    feed.link(href=url, rel="alternate")
    feed.updated(datetime.fromtimestamp(page["updated_at"], tz=timezone.utc))
    for incident in sorted(page["incidents"], key=lambda i: i["created_at"]):
        entry = feed.add_entry()
        entry.id(f"{url}#incident-{incident['id']}")
        entry.title(incident["name"])
        entry.link(href=f"{url}#incident-{incident['id']}")
        entry.published(datetime.fromtimestamp(incident["created_at"], tz=timezone.utc))
        entry.updated(datetime.fromtimestamp(incident["updated_at"], tz=timezone.utc))
        entry.content("\n".join(f"{rules.iso(u['at'])} {u['status']}: {u['body']}"
                                for u in reversed(incident["updates"])), type="text")
    return feed.atom_str(pretty=True)


@routes.get("/s/{subdomain}/history.atom")
@routes.get("/history.atom")
@guarded("feed")
async def status_page_feed(request: web.Request, page: dict, base: str) -> web.Response:
    url = f"{request.scheme}://{request.host}{base or '/'}"
    return served(request, page, ("atom", url), lambda: render_feed(page, url), ATOM + "; charset=utf-8")


# -- subscribers --------------------------------------------------------------------------------


def said(page: dict, base: str, status: int, title: str, text: str) -> web.Response:
    body = TEMPLATES.get_template("status_message.html").render(name=page["page_name"], base=base, title=title,
                                                                text=text)
    return web.Response(status=status, text=body, content_type=HTML)


@routes.post("/s/{subdomain}/subscribe")
@routes.post("/subscribe")
@guarded("subscribe")
async def status_page_subscribe(request: web.Request, page: dict, base: str) -> web.Response:
    """The page's subscribe form: the address gets a link to confirm; nothing is sent before."""
    form = await request.post()
    email = form.get("email")
    if not page.get("subscription_enabled"):
        return said(page, base, 403, "No subscriptions", "This status page takes no subscriptions.")
    if not isinstance(email, str) or len(email) > 320 or not EMAIL.match(email.strip()):
        return said(page, base, 422, "Not an address", "Give one email address to subscribe with.")
    status, _ = await subscribe(request, page, email, f"{request.scheme}://{request.host}{base}")
    if status >= 400:
        return said(page, base, status, "Not subscribed", "The subscription could not be made; try again later.")
    return said(page, base, 202, "Check your mail",
                f"We sent a link to {email.strip()}: open it to confirm your subscription.")


def subscription_route(action: str):
    def wrap(view):
        for path in (f"/s/{{subdomain}}/subscriptions/{{subscription}}/{action}", f"/subscriptions/{{subscription}}/{action}"):
            routes.get(path)(view)
            if action == "unsubscribe":
                routes.post(path)(view)  # one click from the mail client (RFC 8058)
        return view
    return wrap


async def subscription_command(request: web.Request, page: dict, kind: str) -> int:
    token = request.query.get("token", "")
    subscriber_id = request.match_info["subscription"]
    if not token or not SUBSCRIBER_ID.match(subscriber_id):
        return 404
    status, _ = await request.app["gateway"].command(kind, page["org_id"], page["id"],
                                                     {"subscriber_id": subscriber_id, "token": token})
    return status


@subscription_route("verify")
@guarded("verify")
async def status_page_verify(request: web.Request, page: dict, base: str) -> web.Response:
    """The link in the confirmation mail: the subscription starts."""
    if await subscription_command(request, page, "status_page.subscription.confirm") >= 400:
        return said(page, base, 404, "Link not valid", "This link is not (or no longer) valid.")
    return said(page, base, 200, "Subscribed", "You will get a mail for each incident update and maintenance.")


@subscription_route("unsubscribe")
@guarded("unsubscribe")
async def status_page_unsubscribe(request: web.Request, page: dict, base: str) -> web.Response:
    """The link in every update mail: the subscription ends at once."""
    status = await subscription_command(request, page, "status_page.subscription.delete")
    if status >= 400 and status != 404:
        return said(page, base, status, "Not unsubscribed", "Try the link again in a moment.")
    return said(page, base, 200, "Unsubscribed", "You will get no more mail from this status page.")
