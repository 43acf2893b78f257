"""Pages through the public API: to a person, a group, everyone, or from a program's key; people see the pages
they received and acknowledge them, admins see and cancel all; another team sees nothing. (Repeats, escalation
on time and the acknowledge link: test_pages_incidents.py; across a SIGKILL: test_pages_crash.py.)"""
from __future__ import annotations

from tests.integration.accounts import invite, person
from tests.integration.cluster import Cluster, wait_for
from tests.integration.paging import webhook_channel
from tests.mailbox import Mailbox
from tests.receivers import HttpReceiver


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
