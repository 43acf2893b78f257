"""Status pages through the public API and the public page of a real cluster: live statuses, JSON, privacy."""
from __future__ import annotations

import gzip
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree

import orjson
import pytest
from dnslib import CNAME, QTYPE, RR
from dnslib.server import BaseResolver, DNSServer

from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client
from tests.integration.test_alert_channels import Receiver, channel
from tests.integration.test_alert_channels import verify as signed_by
from tests.integration.test_heartbeats import check_in, create_heartbeat
from tests.integration.test_incidents import new_ruleset
from tests.integration.test_monitors import create, post_results
from tests.mailbox import Mailbox

# Atlassian Statuspage's public API v2 (https://<page>.statuspage.io/api/v2/): the fields of each object
PAGE_FIELDS = {"id", "name", "url", "time_zone", "updated_at"}
STATUS_FIELDS = {"indicator", "description"}
COMPONENT_FIELDS = {"id", "name", "status", "created_at", "updated_at", "position", "description", "showcase",
                    "start_date", "group_id", "page_id", "group", "only_show_if_degraded"}
INCIDENT_FIELDS = {"id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact",
                   "shortlink", "started_at", "page_id", "incident_updates", "components"}
UPDATE_FIELDS = {"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at",
                 "affected_components", "deliver_notifications", "custom_tweet", "tweet_id"}
AFFECTED_FIELDS = {"code", "name", "old_status", "new_status"}
INDICATORS = {"none", "minor", "major", "critical", "maintenance"}
COMPONENT_STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}


class Page:
    """What a browser or a Statuspage client gets: status, headers, body."""

    def __init__(self, status: int, headers: dict, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> dict:
        return orjson.loads(self.body)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(base: str, path: str, *, headers: dict | None = None, form: dict | None = None) -> Page:
    data = None if form is None else urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(base + path, data=data, headers=headers or {})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return Page(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Page(error.code, dict(error.headers), error.read())


def new_page(api: Client, subdomain: str, **fields) -> dict:
    response = api.post("/v1/status-pages", {"name": "Acme", "subdomain": subdomain, **fields})
    assert response.status == 201, response.body
    return response.body["data"]


def unique(name: str) -> str:
    return f"{name}-{time.time_ns() % 10**12}"


def summary(api: Client, subdomain: str) -> dict | None:
    page = fetch(api.base, f"/s/{subdomain}/api/v2/summary.json")
    return page.json() if page.status == 200 else None


def test_pages_components_and_names_through_the_api(cluster: Cluster, api: Client) -> None:
    monitor = create(api, regions=[])
    subdomain = unique("acme")
    page = new_page(api, subdomain, description="Everything Acme runs", dark_theme=True, components=[
        {"name": "API", "group": "Core", "monitor_id": monitor["id"]},
        {"name": "<script>alert(1)</script>", "group": "Core", "status": "degraded_performance"},
        {"id": "cmp_docs", "name": "Docs"}])
    assert page["id"].startswith("sp_") and page["url"].endswith(f"/s/{subdomain}")
    assert [c["name"] for c in page["components"]][2] == "Docs" and page["components"][2]["id"] == "cmp_docs"
    assert all(c["id"] for c in page["components"]) and page["has_password"] is False
    # a subdomain or domain is one page's, whoever asks
    taken = api.post("/v1/status-pages", {"name": "Other", "subdomain": subdomain})
    assert taken.status == 409 and "subdomain" in taken.body["message"]
    with_domain = new_page(api, unique("dom"), domain=f"{unique('status')}.acme.test")
    assert api.post("/v1/status-pages", {"name": "Copy", "subdomain": unique("copy"),
                                         "domain": with_domain["domain"]}).status == 409
    assert api.post("/v1/status-pages", {"name": "x", "subdomain": "Not A Name"}).status == 422
    assert api.post("/v1/status-pages", {"name": "x", "subdomain": unique("p"), "type": "private"}).status == 422
    assert api.post("/v1/status-pages", {"name": "x", "subdomain": unique("m"), "components": [
        {"name": "ghost", "monitor_id": "mon_nothere"}]}).status == 422
    fetched = wait_for("the live statuses", lambda: (got := api.get(f"/v1/status-pages/{page['id']}").body["data"])
                       ["status"] and got, 10)
    assert [c["status"] for c in fetched["components"]] == ["operational", "degraded_performance", "operational"]
    assert fetched["status"]["indicator"] == "minor"
    listed = api.get("/v1/status-pages?per_page=100").body
    assert {page["id"], with_domain["id"]} <= {p["id"] for p in listed["data"]}
    components = api.get(f"/v1/status-pages/{page['id']}/components").body["data"]
    assert [c["monitor_id"] for c in components] == [monitor["id"], None, None]
    statistics = api.get(f"/v1/status-pages/{page['id']}/components/cmp_docs/statistics")
    assert statistics.status == 200 and statistics.body["data"]["status"] == "operational"
    assert api.get(f"/v1/status-pages/{page['id']}/components/cmp_none/statistics").status == 404

    # the page, server-rendered: names escaped, groups, 90 bars per component
    html = wait_for("the page to be served", lambda: (p := fetch(api.base, f"/s/{subdomain}")).status == 200 and p,
                    10).text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="dark"' in html and "Core" in html and html.count('class="bar ') == 90 * 3
    zipped = fetch(api.base, f"/s/{subdomain}", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.body).decode() == html
    # a change of subdomain frees the old one for another page
    moved = api.request("PUT", f"/v1/status-pages/{page['id']}", {"subdomain": subdomain + "-new", "name": "Acme Inc"})
    assert moved.status == 200 and moved.body["data"]["name"] == "Acme Inc", moved.body
    assert len(moved.body["data"]["components"]) == 3
    reused = new_page(api, subdomain)
    # a monitor deleted since does not stop other changes of the page
    assert api.delete(f"/v1/monitors/{monitor['id']}").status == 204
    assert api.request("PUT", f"/v1/status-pages/{page['id']}", {"description": "still here"}).status == 200
    wait_for("the new subdomain to serve the page",
             lambda: "Acme Inc" in fetch(api.base, f"/s/{subdomain}-new").text, 10)
    # unknown pages: a plain 404 page, not JSON
    missing = fetch(api.base, f"/s/{unique('nobody')}")
    assert missing.status == 404 and missing.headers["Content-Type"].startswith("text/html")
    assert "no status page" in missing.text
    for gone in (reused, with_domain):
        assert api.delete(f"/v1/status-pages/{gone['id']}").status == 204
    assert api.get(f"/v1/status-pages/{reused['id']}").status == 404
    wait_for("the deleted page to be gone", lambda: fetch(api.base, f"/s/{subdomain}").status == 404, 10)
    # another team sees none of it
    other = ready_client(cluster, cluster.new_org()[1])
    assert other.get(f"/v1/status-pages/{page['id']}").status == 404
    assert other.request("PUT", f"/v1/status-pages/{page['id']}", {"name": "mine"}).status == 404
    assert other.delete(f"/v1/status-pages/{page['id']}").status == 404
    assert other.get(f"/v1/status-pages/{page['id']}/components/cmp_docs/statistics").status == 404
    assert other.get(f"/v1/status-pages/{page['id']}/subscriptions").status == 404
    assert other.post(f"/v1/status-pages/{page['id']}/subscriptions", {"email": "x@example.com"}).status == 404
    assert other.post(f"/v1/status-pages/{page['id']}/maintenances", {
        "name": "x", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z"}).status == 404
    assert page["id"] not in {p["id"] for p in other.get("/v1/status-pages").body["data"]}
    assert other.post("/v1/status-pages", {"name": "Theirs", "subdomain": subdomain + "-new"}).status == 409


def test_a_monitor_down_shows_on_its_page_within_two_seconds_with_its_incident(api: Client) -> None:
    new_ruleset(api, {"rule_type": "state-change", "name": "Monitors down", "urgency": "high",
                      "actions": ["trigger-alerts", "trigger-statuspage-update"],
                      "conditions": [{"key": "event", "operator": "equal", "values": ["monitor.down"]}]})
    monitor = create(api, regions=[], name="Checkout")
    subdomain = unique("live")
    page = new_page(api, subdomain, components=[{"name": "Checkout", "monitor_id": monitor["id"]},
                                                {"name": "Search"}])
    checkout = page["components"][0]["id"]
    now = time.time()
    post_results(api, [{"monitor_id": monitor["id"], "status": "up", "checked_at": now - 30}])
    wait_for("the page", lambda: summary(api, subdomain), 10)
    post_results(api, [{"monitor_id": monitor["id"], "status": "down", "cause": "HTTP 503", "checked_at": now - 1}])
    went_down = time.monotonic()
    down = wait_for("the outage on the page", lambda: (s := summary(api, subdomain))
                    and s["components"][0]["status"] == "major_outage" and s, 5, interval=0.05)
    assert time.monotonic() - went_down < 2.0
    assert down["status"] == {"indicator": "critical", "description": "Major System Outage"}
    opened = wait_for("its incident on the page", lambda: (s := summary(api, subdomain))["incidents"] and s, 10)
    incident = opened["incidents"][0]
    assert incident["status"] == "investigating" and [c["id"] for c in incident["components"]] == [checkout]
    html = fetch(api.base, f"/s/{subdomain}").text
    assert 'data-indicator="critical"' in html and "Active incidents" in html and "investigating" in html

    # Statuspage's format, field by field
    for name, document in (("summary", opened), ("status", None), ("components", None), ("incidents", None),
                           ("incidents/unresolved", None), ("scheduled-maintenances", None)):
        document = document or fetch(api.base, f"/s/{subdomain}/api/v2/{name}.json").json()
        assert set(document["page"]) == PAGE_FIELDS
        for component in document.get("components", []):
            assert set(component) - {"components"} == COMPONENT_FIELDS and component["status"] in COMPONENT_STATUSES
        for shown in document.get("incidents", []):
            assert set(shown) == INCIDENT_FIELDS
            for update in shown["incident_updates"]:
                assert set(update) == UPDATE_FIELDS
                assert all(set(a) == AFFECTED_FIELDS for a in update["affected_components"])
        if "status" in document:
            assert set(document["status"]) == STATUS_FIELDS and document["status"]["indicator"] in INDICATORS
        assert document.get("scheduled_maintenances", []) == []
    assert fetch(api.base, f"/s/{subdomain}/api/v2/summary.json").headers["Access-Control-Allow-Origin"] == "*"

    post_results(api, [{"monitor_id": monitor["id"], "status": "up", "checked_at": time.time()}])
    resolved = wait_for("the recovery and the resolution on the page",
                        lambda: (s := summary(api, subdomain)) and not s["incidents"]
                        and s["status"]["indicator"] == "none" and s, 10)
    assert resolved["components"][0]["status"] == "operational"
    history = fetch(api.base, f"/s/{subdomain}/api/v2/incidents.json").json()["incidents"]
    assert history[0]["status"] == "resolved" and history[0]["resolved_at"]
    assert [u["status"] for u in history[0]["incident_updates"]] == ["resolved", "investigating"]
    feed = ElementTree.fromstring(fetch(api.base, f"/s/{subdomain}/history.atom").body)
    atom = "{http://www.w3.org/2005/Atom}"
    assert [entry.find(f"{atom}title").text for entry in feed.iter(f"{atom}entry")] == [history[0]["name"]]
    statistics = api.get(f"/v1/status-pages/{page['id']}/components/{checkout}/statistics").body["data"]
    assert statistics["uptime_percentage"] is not None and statistics["days"][-1]["uptime_percentage"] < 100


def test_a_component_follows_its_heartbeat(api: Client) -> None:
    heartbeat = create_heartbeat(api, name="nightly backup", interval=3600)["id"]
    subdomain = unique("heartbeat")
    new_page(api, subdomain, components=[{"name": "Backups", "heartbeat_id": heartbeat}])
    wait_for("the page", lambda: summary(api, subdomain), 10)
    check_in(api, heartbeat, "fail", message="disk%20full")
    wait_for("the failed job on the page",
             lambda: summary(api, subdomain)["components"][0]["status"] == "major_outage", 10)
    check_in(api, heartbeat, "complete")
    wait_for("the job that succeeded on the page",
             lambda: summary(api, subdomain)["components"][0]["status"] == "operational", 10)


def test_incidents_by_hand_post_their_updates_on_the_pages_of_their_components(api: Client) -> None:
    subdomain = unique("updates")
    page = new_page(api, subdomain, components=[{"name": "Checkout"}, {"name": "Search"}])
    checkout = page["components"][0]["id"]
    opened = api.post("/v1/incidents", {"name": "Checkout slow", "description": "p95 above 2 s", "impact": "major",
                                        "component_ids": [checkout], "actions": []}).body["data"]
    shown = wait_for("the incident on the page", lambda: (s := summary(api, subdomain)) and s["incidents"] and s, 10)
    assert [c["status"] for c in shown["components"]] == ["partial_outage", "operational"]
    assert shown["status"]["indicator"] == "major"
    for status, message in (("identified", "a bad deploy"), ("monitoring", "rolled back"), ("resolved", None)):
        changed = api.patch(f"/v1/incidents/{opened['id']}", {"status": status, **({"message": message} if message
                                                                                     else {})})
        assert changed.status == 200, changed.body
    done = wait_for("the resolution on the page", lambda: (s := summary(api, subdomain)) and not s["incidents"] and s,
                    10)
    assert [c["status"] for c in done["components"]] == ["operational", "operational"]
    [posted] = fetch(api.base, f"/s/{subdomain}/api/v2/incidents.json").json()["incidents"]
    assert [(u["status"], u["body"]) for u in posted["incident_updates"]] == [
        ("resolved", "This incident has been resolved."), ("monitoring", "rolled back"),
        ("identified", "a bad deploy"), ("investigating", "p95 above 2 s")]
    assert posted["monitoring_at"] and posted["resolved_at"] and posted["impact"] == "major"
    html = fetch(api.base, f"/s/{subdomain}").text
    assert html.index("rolled back") < html.index("a bad deploy") < html.index("p95 above 2 s")  # newest first
    assert 'id="past-incidents"' in html and "Checkout slow" in html.split('id="past-incidents"')[1]
    actions = api.get(f"/v1/incidents/{opened['id']}/actions").body["data"]
    assert actions == []


def test_maintenance_is_announced_ahead_and_puts_its_components_under_maintenance_while_it_runs(api: Client) -> None:
    subdomain = unique("maintenance")
    page = new_page(api, subdomain, components=[{"name": "Database"}, {"name": "Web"}])
    database = page["components"][0]["id"]
    hour = 3600
    def moment(offset: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))
    ahead = api.post(f"/v1/status-pages/{page['id']}/maintenances", {
        "name": "Database upgrade", "message": "Reads stay up; writes pause <5 minutes.",
        "starts_at": moment(24 * hour), "ends_at": moment(25 * hour), "component_ids": [database]})
    assert ahead.status == 201 and ahead.body["data"]["status"] == "scheduled", ahead.body
    assert api.post(f"/v1/status-pages/{page['id']}/maintenances", {
        "name": "x", "starts_at": moment(0), "ends_at": moment(60), "component_ids": ["cmp_nothere"]}).status == 422
    assert api.post(f"/v1/status-pages/{page['id']}/maintenances", {
        "name": "x", "starts_at": moment(60), "ends_at": moment(0)}).status == 422
    announced = wait_for("the announcement", lambda: (s := summary(api, subdomain)) and s["scheduled_maintenances"]
                         and s, 10)
    [shown] = announced["scheduled_maintenances"]
    assert set(shown) == INCIDENT_FIELDS | {"scheduled_for", "scheduled_until"}
    assert shown["status"] == "scheduled" and shown["impact"] == "maintenance"
    assert shown["incident_updates"][0]["body"] == "Reads stay up; writes pause <5 minutes."
    assert announced["status"]["indicator"] == "none"
    html = fetch(api.base, f"/s/{subdomain}").text
    assert 'data-status="scheduled"' in html and "writes pause &lt;5 minutes" in html

    running = api.post(f"/v1/status-pages/{page['id']}/maintenances", {
        "name": "Failover drill", "starts_at": moment(-60), "ends_at": moment(hour), "component_ids": [database]})
    assert running.status == 201 and running.body["data"]["status"] == "in_progress"
    under = wait_for("the maintenance in progress", lambda: (s := summary(api, subdomain))
                     and s["components"][0]["status"] == "under_maintenance" and s, 10)
    assert under["status"] == {"indicator": "maintenance", "description": "Service Under Maintenance"}
    assert under["components"][1]["status"] == "operational"
    assert [m["status"] for m in fetch(api.base, f"/s/{subdomain}/api/v2/scheduled-maintenances.json").json()[
        "scheduled_maintenances"]] == ["in_progress", "scheduled"]
    assert api.delete(f"/v1/status-pages/{page['id']}/maintenances/{running.body['data']['id']}").status == 204
    wait_for("the drill taken off", lambda: summary(api, subdomain)["components"][0]["status"] == "operational", 10)
    assert api.delete(f"/v1/status-pages/{page['id']}/maintenances/{running.body['data']['id']}").status == 404


def link_in(mail: str, kind: str) -> str:
    [link] = re.findall(rf"https?://\S+/{kind}\?token=\S+", mail)
    return link


def test_subscribers_confirm_by_link_are_told_once_per_update_and_leave_in_one_click(
        api: Client, smtp_server: Mailbox) -> None:
    hooks = Receiver({"/status": [200]})
    hooks.thread.start()
    try:
        told_by_mail_and_webhook(api, smtp_server, hooks)
    finally:
        hooks.server.shutdown()
        hooks.server.server_close()


def told_by_mail_and_webhook(api: Client, smtp_server: Mailbox, hooks: Receiver) -> None:
    webhook = channel(api, hooks.url("/status"), events=["status_page.updated"])
    subdomain = unique("subscribed")
    page = new_page(api, subdomain, page_name="Acme", subscription_enabled=True, components=[{"name": "Checkout"}])
    closed = new_page(api, unique("closed"), components=[{"name": "Other"}])
    reader = f"{unique('reader')}@example.com"
    wait_for("the page", lambda: fetch(api.base, f"/s/{subdomain}").status == 200, 10)
    assert 'action="/s/' in fetch(api.base, f"/s/{subdomain}").text
    asked = fetch(api.base, f"/s/{subdomain}/subscribe", form={"email": reader})
    assert asked.status == 202 and "Check your mail" in asked.text
    assert fetch(api.base, f"/s/{closed['subdomain']}/subscribe", form={"email": reader}).status == 403
    assert fetch(api.base, f"/s/{subdomain}/subscribe", form={"email": "not an address"}).status == 422
    confirm = smtp_server.wait_for_mail(reader, timeout=30)
    assert "Confirm your subscription to Acme status" in confirm
    pending = api.get(f"/v1/status-pages/{page['id']}/subscriptions").body["data"]
    assert [(s["email"], s["confirmed"]) for s in pending] == [(reader, False)]
    verify = urllib.parse.urlparse(link_in(confirm, "verify"))
    assert fetch(api.base, verify.path + "?token=wrong").status == 404
    assert fetch(api.base, f"{verify.path}?{verify.query}").status == 200
    assert api.get(f"/v1/status-pages/{page['id']}/subscriptions").body["data"][0]["confirmed"] is True

    opened = api.post("/v1/incidents", {"name": "Checkout errors", "description": "5% of payments fail",
                                        "impact": "major", "component_ids": [page["components"][0]["id"]],
                                        "actions": []}).body["data"]
    told = smtp_server.wait_for_mail(reader, timeout=30)
    assert "[Acme] Checkout errors: investigating" in told and "5% of payments fail" in told
    assert "Affects: Checkout" in told
    mails = smtp_server.mail_to(reader)
    assert mails[-1]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert api.patch(f"/v1/incidents/{opened['id']}", {"status": "resolved", "message": "fixed"}).status == 200
    resolved = smtp_server.wait_for_mail(reader, timeout=30)
    assert "Checkout errors: resolved" in resolved and "fixed" in resolved
    # one click from the mail ends it: the next update reaches nobody
    leave = urllib.parse.urlparse(link_in(resolved, "unsubscribe"))
    assert fetch(api.base, f"{leave.path}?{leave.query}", form={"List-Unsubscribe": "One-Click"}).status == 200
    assert api.get(f"/v1/status-pages/{page['id']}/subscriptions").body["data"] == []
    assert api.patch(f"/v1/incidents/{opened['id']}", {"status": "monitoring", "message": "watching"}).status == 200
    wait_for("the update on the page", lambda: summary(api, subdomain)["incidents"], 10)
    assert len(smtp_server.mail_to(reader)) == 3  # confirmation, investigating, resolved: once each
    # webhook subscribers: an alert channel subscribed to status_page.updated gets each update, signed
    delivered = wait_for("the three updates by webhook", lambda: len(hooks.seen("/status")) >= 3 and hooks.seen(
        "/status"), 20)
    bodies = [orjson.loads(body) for _, body, _ in delivered]
    assert [(b["event"], b["data"]["status"]) for b in bodies] == [
        ("status_page.updated", "investigating"), ("status_page.updated", "resolved"),
        ("status_page.updated", "monitoring")]
    assert bodies[0]["data"]["page_id"] == page["id"] and bodies[0]["data"]["components"] == ["Checkout"]
    assert all(signed_by(webhook["secret"], headers, body) for headers, body, _ in delivered)


def test_private_pages_ask_for_the_password_or_let_in_their_addresses(api: Client) -> None:
    subdomain = unique("private")
    page = new_page(api, subdomain, type="private", password="correct horse", components=[{"name": "Core"}])
    refused = wait_for("the private page", lambda: (p := fetch(api.base, f"/s/{subdomain}")).status != 404 and p, 10)
    assert refused.status == 401 and 'type="password"' in refused.text and "Core" not in refused.text
    assert fetch(api.base, f"/s/{subdomain}/api/v2/summary.json").status == 401
    wrong = fetch(api.base, f"/s/{subdomain}/login", form={"password": "wrong horse"})
    assert wrong.status == 401 and "not right" in wrong.text
    right = fetch(api.base, f"/s/{subdomain}/login", form={"password": "correct horse"})
    assert right.status == 303 and right.headers["Location"] == f"/s/{subdomain}"
    cookie = right.headers["Set-Cookie"].split(";")[0]
    renamed = api.request("PUT", f"/v1/status-pages/{page['id']}", {"name": "Acme private"})  # its password stays
    assert renamed.status == 200 and renamed.body["data"]["has_password"] is True, renamed.body
    assert "HttpOnly" in right.headers["Set-Cookie"]
    shown = fetch(api.base, f"/s/{subdomain}", headers={"Cookie": cookie})
    assert shown.status == 200 and "Core" in shown.text
    assert fetch(api.base, f"/s/{subdomain}", headers={"Cookie": cookie[:-4] + "0000"}).status == 401
    # by address: ours is let in, others are refused without a form
    ours, theirs = unique("ours"), unique("theirs")
    new_page(api, ours, type="private", ip_addresses=["127.0.0.0/8"])
    new_page(api, theirs, type="private", ip_addresses=["192.0.2.0/24"])
    assert wait_for("our address let in", lambda: fetch(api.base, f"/s/{ours}").status == 200, 10)
    other = wait_for("their page", lambda: (p := fetch(api.base, f"/s/{theirs}")).status != 404 and p, 10)
    assert other.status == 403 and "password" not in other.text.lower().replace("private", "")


class Zone(BaseResolver):
    def __init__(self, records: dict[str, str]) -> None:
        self.records = records

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        if QTYPE[request.q.qtype] == "CNAME" and name in self.records:
            reply.add_answer(RR(request.q.qname, QTYPE.CNAME, rdata=CNAME(self.records[name]), ttl=60))
        return reply


@pytest.fixture
def nameserver() -> str:
    server = DNSServer(Zone({"status.acme.test": "pages.pingstream.local.", "wrong.acme.test": "elsewhere.test."}),
                       port=0, address="127.0.0.1")
    server.start_thread()
    yield f"127.0.0.1:{server.server.server_address[1]}"
    server.stop()


def test_a_custom_domain_is_checked_in_dns_and_serves_its_page_by_host(cluster: Cluster, api: Client,
                                                                        nameserver: str) -> None:
    second = cluster.start_api("api-dns", PINGSTREAM_DNS_NAMESERVER=nameserver)
    try:
        cluster.wait_serving(second)
        page = new_page(api, unique("hosted"), domain="status.acme.test", components=[{"name": "Web"}])
        via = Client(second.url, api.key)
        # the second API process follows the views too: the page by its Host, and its JSON
        by_host = wait_for("the page by Host", lambda: (p := fetch(second.url, "/", headers={
            "Host": "status.acme.test"})).status == 200 and p, 10)
        assert "Web" in by_host.text
        checked = via.get("/v1/status-pages/domains/status.acme.test").body["data"]
        assert checked == {"domain": "status.acme.test", "expected_target": "pages.pingstream.local",
                           "cname": ["pages.pingstream.local"], "configured": True, "page_id": page["id"]}
        wrong = via.get("/v1/status-pages/domains/wrong.acme.test").body["data"]
        assert wrong["configured"] is False and wrong["cname"] == ["elsewhere.test"] and wrong["page_id"] is None
        assert via.get("/v1/status-pages/domains/none.acme.test").body["data"]["cname"] == []
        assert fetch(second.url, "/api/v2/status.json", headers={"Host": "status.acme.test"}).json()["page"][
            "id"] == page["id"]
        assert fetch(second.url, "/", headers={"Host": "unknown.acme.test"}).status == 404
        assert api.delete(f"/v1/status-pages/{page['id']}").status == 204
    finally:
        second.stop()
