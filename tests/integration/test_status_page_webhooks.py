"""Status page webhook subscribers, through the API: signed deliveries of every update, once each, until removed."""
from __future__ import annotations

import time

import orjson

from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client
from tests.integration.test_alert_channels import verify as signed_by
from tests.integration.test_status_pages import fetch, new_page, unique
from tests.receivers import HttpReceiver


def subscribe(api: Client, page_id: str, url: str) -> dict:
    response = api.post(f"/v1/status-pages/{page_id}/subscriptions", {"webhook": url})
    assert response.status == 201, response.body
    return response.body["data"]


def told(receiver: HttpReceiver, path: str) -> list[dict]:
    return [orjson.loads(seen.body) for seen in receiver.seen(path)]


def test_webhook_subscribers_get_each_update_signed_once_until_they_leave(
        cluster: Cluster, api: Client, http_receiver: HttpReceiver) -> None:
    subdomain, leaving, staying = unique("hooked"), f"/{unique('leaving')}", f"/{unique('staying')}"
    page = new_page(api, subdomain, page_name="Acme", subscription_enabled=True, components=[{"name": "Checkout"}])
    subscriptions = f"/v1/status-pages/{page['id']}/subscriptions"
    wait_for("the page", lambda: fetch(api.base, f"/s/{subdomain}").status == 200, 10)
    first = subscribe(api, page["id"], http_receiver.url(leaving + "?token=abc"))
    second = subscribe(api, page["id"], http_receiver.url(staying))
    assert first["type"] == "webhook" and first["confirmed"] is True and first["secret"].startswith("whsec_")
    assert first["webhook"] == f"http://127.0.0.1:{http_receiver.port}/…"  # the path and query stay hidden
    # bad input: not an http(s) URL, both kinds, neither, the same URL twice, a page that takes no subscribers
    for body in ({"webhook": "ftp://example.com/x"}, {"webhook": "/relative"},
                 {"webhook": http_receiver.url("/x"), "email": "a@example.com"}, {}):
        assert api.post(subscriptions, body).status == 422, body
    assert api.post(subscriptions, {"webhook": http_receiver.url(staying)}).status == 409
    closed = new_page(api, closed_subdomain := unique("closed"), components=[{"name": "Other"}])
    wait_for("the closed page", lambda: fetch(api.base, f"/s/{closed_subdomain}").status == 200, 10)
    assert api.post(f"/v1/status-pages/{closed['id']}/subscriptions",
                    {"webhook": http_receiver.url(staying)}).status == 403
    listed = api.get(subscriptions).body["data"]
    assert sorted((s["id"], s["type"], s["webhook"], s["email"]) for s in listed) == sorted(
        (s["id"], "webhook", s["webhook"], None) for s in (first, second))
    assert all("secret" not in s and "token" not in str(s) for s in listed)
    # another team can neither see, add nor remove them
    other = ready_client(cluster, cluster.new_org()[1])
    assert other.get(subscriptions).status == 404
    assert other.post(subscriptions, {"webhook": http_receiver.url("/theirs")}).status == 404
    assert other.delete(f"{subscriptions}/{first['id']}").status == 404

    opened = api.post("/v1/incidents", {"name": "Checkout errors", "description": "5% of payments fail",
                                        "impact": "major", "component_ids": [page["components"][0]["id"]],
                                        "actions": []}).body["data"]
    wait_for("the incident by webhook", lambda: told(http_receiver, leaving) and told(http_receiver, staying), 20)
    assert api.patch(f"/v1/incidents/{opened['id']}", {"status": "identified", "message": "a bad deploy"}).status == 200
    wait_for("the update by webhook", lambda: len(told(http_receiver, leaving)) >= 2, 20)
    for path, subscriber in ((leaving, first), (staying, second)):
        assert all(signed_by(subscriber["secret"], s.headers, s.body) for s in http_receiver.seen(path))
    assert not signed_by(first["secret"], http_receiver.seen(staying)[0].headers, http_receiver.seen(staying)[0].body)
    bodies = told(http_receiver, leaving)
    assert [(b["event"], b["data"]["status"]) for b in bodies] == [
        ("status_page.updated", "investigating"), ("status_page.updated", "identified")]
    assert bodies[0]["data"]["page_id"] == page["id"] and bodies[0]["data"]["components"] == ["Checkout"]
    assert bodies[1]["data"]["body"] == "a bad deploy"
    assert len({s.headers["X-Pingstream-Delivery"] for s in http_receiver.seen(leaving)}) == 2

    # unsubscribed: nothing more to it, while the other subscriber hears the resolution
    assert api.delete(f"{subscriptions}/{first['id']}").status == 204
    assert api.delete(f"{subscriptions}/{first['id']}").status == 404
    assert [s["id"] for s in api.get(subscriptions).body["data"]] == [second["id"]]
    assert api.patch(f"/v1/incidents/{opened['id']}", {"status": "resolved", "message": "rolled back"}).status == 200
    # and maintenance announced ahead is told too
    ahead = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 90000))
    assert api.post(f"/v1/status-pages/{page['id']}/maintenances", {
        "name": "Database upgrade", "message": "writes pause", "starts_at": ahead, "ends_at": later,
        "component_ids": [page["components"][0]["id"]]}).status == 201
    wait_for("the resolution and the maintenance by webhook", lambda: len(told(http_receiver, staying)) >= 4, 20)
    time.sleep(0.5)  # a delivery to the removed subscriber would have been made beside the other's
    heard = {(b["data"]["title"], b["data"]["status"]): b["data"] for b in told(http_receiver, staying)}
    assert len(told(http_receiver, staying)) == 4 and set(heard) == {  # the last two in either order
        ("Checkout errors", "investigating"), ("Checkout errors", "identified"), ("Checkout errors", "resolved"),
        ("Database upgrade", "scheduled maintenance")}
    assert "writes pause" in heard["Database upgrade", "scheduled maintenance"]["body"]
    assert len(told(http_receiver, leaving)) == 2
