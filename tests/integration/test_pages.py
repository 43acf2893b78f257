"""Pages through the public API: sent to people's channels, repeated, escalated on time, acknowledged by a
one-click link, cancelled by admins; people see the pages they received; another team sees nothing."""
from __future__ import annotations

import time

from tests.integration.accounts import invite, person
from tests.integration.cluster import Cluster, wait_for
from tests.integration.paging import ACK_PATH, pages_seen, webhook_channel
from tests.mailbox import Mailbox
from tests.receivers import HttpReceiver


def test_a_page_repeats_escalates_on_time_and_an_acknowledge_link_stops_it(
        cluster: Cluster, smtp_server: Mailbox, http_receiver: HttpReceiver) -> None:
    ada = person(cluster, smtp_server, "ada")                       # root of the team
    bo = invite(cluster, smtp_server, ada, ada.team_id, "bo", "user")
    ada_hook, bo_hook = webhook_channel(ada, http_receiver), webhook_channel(bo, http_receiver)

    sent = ada.client.post("/v1/pages", {
        "subject": "Checkout is down", "message": "connection refused", "priority": "high",
        "delivery_mode": "single", "target_user_id": bo.user_id, "repeat_interval_s": 2,
        "escalation": [{"delay_seconds": 3, "target_user_id": ada.user_id}]})
    assert sent.status == 201, sent.body
    page_id = sent.body["page_id"]
    assert sent.body["message"] and [r["user_id"] for r in sent.body["recipients"]] == [bo.user_id]

    wait_for("the page, a repeat, and the escalation to Ada",
             lambda: len(pages_seen(http_receiver, bo_hook)) >= 2 and pages_seen(http_receiver, ada_hook), 30)
    first, repeat = pages_seen(http_receiver, bo_hook)[:2]
    assert first["subject"] == "[high] Checkout is down" and "connection refused" in first["text"]
    assert [first["data"]["label"], repeat["data"]["label"]] == ["s0", "r1"]
    escalated = pages_seen(http_receiver, ada_hook)[0]
    assert escalated["data"]["label"] == "s1" and escalated["data"]["page_id"] == page_id
    for message, due in ((repeat, 2), (escalated, 3)):  # each timer fired within a second of its due time
        arrived = next(s.at for s in http_receiver.requests if s.body and message["id"].encode() in s.body)
        assert message["data"]["due_at"] == first["data"]["due_at"] + due
        assert 0 <= arrived - message["data"]["due_at"] < 1.0, (message["data"], arrived)

    # Bo sees the page he received; its detail has its recipients and when it was first sent
    shown = bo.client.get(f"/v1/pages/{page_id}").body["data"]
    assert shown["status"] == "active" and shown["first_sent_at"] and shown["acknowledged_at"] is None
    assert {r["user_id"] for r in shown["recipients"]} == {bo.user_id, ada.user_id}
    assert [p["id"] for p in bo.client.get("/v1/pages?status=active").body["data"]] == [page_id]

    # the link acknowledges without signing in; then nothing more comes
    link = ACK_PATH.search(first["link"]).group(0)
    acked = cluster.client(None).get(link)
    assert acked.status == 200, acked.body
    assert acked.body["data"]["status"] == "acknowledged" and acked.body["data"]["method"] == "link"
    assert acked.body["data"]["acknowledged_by"] == bo.user_id and acked.body["data"]["acknowledged_at"]
    assert cluster.client(None).get(link[:-3] + "abc").status == 404        # a forged link
    counts = len(pages_seen(http_receiver, bo_hook)), len(pages_seen(http_receiver, ada_hook))
    time.sleep(3.0)  # longer than a repeat interval: a repeat would have come by now
    assert (len(pages_seen(http_receiver, bo_hook)), len(pages_seen(http_receiver, ada_hook))) == counts
    labels = [m["id"] for m in pages_seen(http_receiver, bo_hook) + pages_seen(http_receiver, ada_hook)]
    assert len(labels) == len(set(labels))                                  # nothing sent twice
    assert ada.client.get("/v1/pages?status=acknowledged").body["data"][0]["id"] == page_id


def test_who_sees_acknowledges_and_cancels_pages_and_another_team_sees_none(
        cluster: Cluster, smtp_server: Mailbox, http_receiver: HttpReceiver) -> None:
    ada = person(cluster, smtp_server, "ada")
    bo = invite(cluster, smtp_server, ada, ada.team_id, "bo", "user")
    cy = invite(cluster, smtp_server, ada, ada.team_id, "cy", "user")
    webhook_channel(cy, http_receiver)
    group = ada.client.post("/v1/groups", {"name": "Ops", "members": [cy.user_id, ada.user_id]}).body["data"]

    to_group = ada.client.post("/v1/pages", {"subject": "Disk full", "delivery_mode": "group",
                                             "target_group_id": group["id"], "priority": "low"})
    assert to_group.status == 201, to_group.body
    assert [r["user_id"] for r in to_group.body["recipients"]] == [cy.user_id, ada.user_id]
    everyone = ada.client.post("/v1/pages", {"subject": "Maintenance at 6", "delivery_mode": "broadcast"})
    assert {r["user_id"] for r in everyone.body["recipients"]} == {ada.user_id, bo.user_id, cy.user_id}
    # a program pages with an API key, in X-API-Key
    made = ada.client.post("/v1/keys", {"name": "script", "scopes": ["pages:read", "pages:write"]})
    assert made.status == 201, made.body
    script = cluster.client(None)
    by_key = wait_for("the key to work", lambda: (answer := script.request(
        "POST", "/v1/external/pages", {"subject": "from a script", "target_user_id": bo.user_id},
        headers={"X-API-Key": made.body["data"]["secret"]})).status == 201 and answer, 30)
    assert [r["user_id"] for r in by_key.body["recipients"]] == [bo.user_id]
    assert bo.client.post("/v1/external/pages", {"subject": "x", "target_user_id": ada.user_id}).status == 201

    _, program_key = cluster.new_org(name="elsewhere")
    other = cluster.client(program_key)
    external = other.request("POST", "/v1/external/pages", {"subject": "from a script"},
                             headers={"X-API-Key": program_key})
    assert external.status == 422  # a team of no one on call and no target: nobody to page
    assert other.get(f"/v1/pages/{to_group.body['page_id']}").status == 404   # another team's page
    assert other.get("/v1/pages").body["data"] == []
    assert other.post(f"/v1/pages/{to_group.body['page_id']}/acknowledge", {}).status == 404
    assert other.delete(f"/v1/pages/{to_group.body['page_id']}").status == 404

    # Bo received only the broadcast and the script's page: he sees those alone, and cannot acknowledge the group's page
    assert {p["id"] for p in bo.client.get("/v1/pages").body["data"]} == {everyone.body["page_id"],
                                                                          by_key.body["page_id"]}
    assert bo.client.get(f"/v1/pages/{to_group.body['page_id']}").status == 404
    assert bo.client.post(f"/v1/pages/{to_group.body['page_id']}/acknowledge", {}).status == 404
    assert bo.client.delete(f"/v1/pages/{everyone.body['page_id']}").status == 403
    assert {p["id"] for p in ada.client.get("/v1/pages?priority=low").body["data"]} == {to_group.body["page_id"]}

    noted = cy.client.post(f"/v1/pages/{to_group.body['page_id']}/acknowledge",
                           {"response_note": "cleaning up", "method": "web"})
    assert noted.status == 200, noted.body
    assert (noted.body["data"]["response_note"], noted.body["data"]["method"]) == ("cleaning up", "web")
    cancelled = ada.client.delete(f"/v1/pages/{everyone.body['page_id']}")
    assert cancelled.status == 200 and cancelled.body["data"]["status"] == "cancelled"
    assert bo.client.post(f"/v1/pages/{everyone.body['page_id']}/acknowledge", {}).status == 409

    # bad input: clear 422s
    for bad in ({"subject": "x", "repeat_interval_s": 3601}, {"subject": "x", "delivery_mode": "group"},
                {"subject": "x", "target_user_id": "usr_nobody"},
                {"subject": "x", "target_user_id": bo.user_id, "escalation": [{"delay_seconds": 1,
                                                                                "target_user_id": ada.user_id}]},
                {"subject": "x", "target_user_id": bo.user_id, "escalation": [{"delay_seconds": 60}]}):
        refused = ada.client.post("/v1/pages", bad)
        assert refused.status == 422 and refused.body["errors"], (bad, refused.body)
