"""Paging groups through the public API: members of the team only, changes, and another team kept out."""
from __future__ import annotations

from tests.integration.accounts import invite, person
from tests.integration.cluster import Cluster
from tests.mailbox import Mailbox


def test_a_group_holds_members_of_the_team_and_another_team_cannot_touch_it(cluster: Cluster,
                                                                              smtp_server: Mailbox) -> None:
    ada = person(cluster, smtp_server, "ada")
    bo = invite(cluster, smtp_server, ada, ada.team_id, "bo", "user")
    client = ada.client
    created = client.post("/v1/groups", {"name": "Database", "members": [bo.user_id, ada.user_id, bo.user_id]})
    assert created.status == 201, created.body
    group = created.body["data"]
    assert group["members"] == [bo.user_id, ada.user_id]                  # each once, in the order given
    assert [p["email"] for p in group["people"]] == [bo.email, ada.email]
    path = f"/v1/groups/{group['id']}"
    assert bo.client.get(path).body["data"]["name"] == "Database"          # a user reads the team's groups
    assert bo.client.request("PATCH", path, {"name": "mine"}).status == 403  # and changes none

    renamed = client.request("PATCH", path, {"name": "DB on call"})
    assert renamed.status == 200 and renamed.body["data"]["members"] == [bo.user_id, ada.user_id]
    narrowed = client.request("PUT", path, {"name": "DB", "members": [ada.user_id]})
    assert narrowed.status == 200 and narrowed.body["data"]["members"] == [ada.user_id]
    assert narrowed.body["data"]["description"] is None
    outsider = client.request("PATCH", path, {"members": [ada.user_id, "usr_somebody_else"]})
    assert outsider.status == 422 and "usr_somebody_else" in outsider.body["errors"]["members"]
    assert client.post("/v1/groups", {"name": "x", "members": ["usr_nobody"]}).status == 422
    assert client.post("/v1/groups", {"members": [ada.user_id]}).body["errors"]["name"]
    listed = client.get("/v1/groups?per_page=1").body
    assert [g["id"] for g in listed["data"]] == [group["id"]] and listed["meta"]["total"] == 1

    # another team: 404 for this group whatever it tries, its own list empty, its members refused here
    _, other_key = cluster.new_org(name="other team")
    other = cluster.client(other_key)
    assert other.get(path).status == 404
    assert other.request("PUT", path, {"name": "taken", "members": []}).status == 404
    assert other.request("PATCH", path, {"name": "taken"}).status == 404
    assert other.delete(path).status == 404
    assert other.get("/v1/groups").body["data"] == []
    assert other.post("/v1/groups", {"name": "theirs", "members": [ada.user_id]}).status == 422
    assert client.get(path).body["data"]["name"] == "DB"

    # someone who leaves the team stays listed, and is no longer reached
    back = client.request("PUT", path, {"name": "DB", "members": [ada.user_id, bo.user_id]})
    assert back.status == 200
    assert client.delete(f"/v1/team/{ada.team_id}/member/{bo.user_id}").status == 204
    after = client.get(path).body["data"]
    assert after["members"] == [ada.user_id, bo.user_id] and [p["user_id"] for p in after["people"]] == [ada.user_id]

    assert client.delete(path).status == 204
    assert client.get(path).status == 404
    assert client.delete(path).status == 404
    assert client.get("/v1/groups/grp_nothing").status == 404
