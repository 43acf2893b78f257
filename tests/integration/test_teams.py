"""Teams, invitations, members, roles and API keys through the public API, with real mail."""
from __future__ import annotations

import time

from engine.partitioning import partition_for
from tests.integration.accounts import code_in, invite, log_in, person, sign_up
from tests.integration.cluster import Client, Cluster, wait_for
from tests.mailbox import Mailbox

MONITOR = {"name": "site", "url": "https://example.com", "regions": ["eu-west"]}


def test_a_person_creates_teams_and_switches_between_them(cluster: Cluster, smtp_server: Mailbox) -> None:
    ada = person(cluster, smtp_server)
    created = ada.client.post("/v1/team", {"name": "Platform"})
    assert created.status == 201 and created.body["data"]["role"] == "root"
    platform = created.body["data"]["id"]
    teams = ada.client.get("/v1/teams").body
    assert {t["id"] for t in teams["data"]} == {ada.team_id, platform} and teams["meta"]["total"] == 2
    assert ada.client.request("PUT", f"/v1/team/{platform}", {"name": "Platform team"}).body["data"]["name"] == \
        "Platform team"
    # a monitor made in the first team is not in the second
    monitor = ada.client.post("/v1/monitors", MONITOR).body["data"]["id"]
    switched = Client(ada.base, None).post("/v1/auth/refresh", {"refresh_token": ada.refresh_token,
                                                                "team_id": platform}).body["data"]
    assert switched["team_id"] == platform
    in_platform = Client(ada.base, switched["access_token"])
    assert in_platform.get("/v1/monitors").body["meta"]["total"] == 0
    assert in_platform.get(f"/v1/monitors/{monitor}").status == 404
    assert in_platform.get("/v1/auth/me").body["data"]["team"]["id"] == platform
    stranger = person(cluster, smtp_server, "mallory")
    refused = Client(ada.base, None).post("/v1/auth/refresh", {"refresh_token": stranger.refresh_token,
                                                               "team_id": platform})
    assert refused.status == 403 and refused.body["error"] == "not_a_member"
    assert stranger.client.request("PUT", f"/v1/team/{platform}", {"name": "mine"}).status == 404


def test_invitations_roles_and_what_each_role_may_do(cluster: Cluster, smtp_server: Mailbox) -> None:
    ada = person(cluster, smtp_server)
    team = ada.team_id
    bob = invite(cluster, smtp_server, ada, team, "bob", "manager")
    uma = invite(cluster, smtp_server, ada, team, "uma", "user")
    members = ada.client.get(f"/v1/team/{team}/members").body["data"]
    assert [(m["email"], m["role"]) for m in members] == [(ada.email, "root"), (bob.email, "manager"),
                                                          (uma.email, "user")]
    # a user reads and sends results, but changes no configuration, keys or members
    monitor = bob.client.post("/v1/monitors", MONITOR)
    assert monitor.status == 201, monitor.body
    assert uma.client.get(f"/v1/monitors/{monitor.body['data']['id']}").status == 200
    denied = uma.client.post("/v1/monitors", MONITOR)
    assert denied.status == 403 and denied.body["error"] == "insufficient_scope"
    assert uma.client.get("/v1/keys").status == 403
    assert uma.client.post(f"/v1/team/{team}/invitation", {"email": "x@example.com"}).status == 403
    # a manager manages users and managers, but not roots
    assert bob.client.patch(f"/v1/team/{team}/member/{uma.user_id}", {"role": "manager"}).status == 200
    assert bob.client.patch(f"/v1/team/{team}/member/{uma.user_id}", {"role": "root"}).body["error"] == \
        "insufficient_role"
    assert bob.client.delete(f"/v1/team/{ada.team_id}/member/{ada.user_id}").body["error"] == "insufficient_role"
    assert bob.client.request("PUT", f"/v1/team/{team}", {"name": "x"}).status == 403  # teams:write is root's
    # the last root cannot leave or step down
    assert ada.client.delete(f"/v1/team/{team}/member/{ada.user_id}").body["error"] == "last_root"
    assert ada.client.patch(f"/v1/team/{team}/member/{ada.user_id}", {"role": "user"}).body["error"] == "last_root"
    # removing a member ends their access to the team at once
    assert bob.client.delete(f"/v1/team/{team}/member/{uma.user_id}").status == 204
    assert uma.client.get("/v1/monitors").status == 401
    assert team not in {t["id"] for t in log_in(cluster, uma.email).client.get("/v1/teams").body["data"]}
    # and anyone may leave
    assert bob.client.delete(f"/v1/team/{team}/member/{bob.user_id}").status == 204
    assert [m["email"] for m in ada.client.get(f"/v1/team/{team}/members").body["data"]] == [ada.email]


def test_invitation_codes_emails_reminders_and_plan_limits(cluster: Cluster, smtp_server: Mailbox) -> None:
    ada = person(cluster, smtp_server)
    team = ada.team_id
    carol_email, _ = sign_up(cluster, smtp_server, "carol")
    invitation = ada.client.post(f"/v1/team/{team}/invitation", {"email": carol_email}).body["data"]
    first = code_in(smtp_server.wait_for_mail(carol_email), "invitation")
    reminded = ada.client.post(f"/v1/team/{team}/invitation/{invitation['id']}/reminder")
    assert reminded.status == 200 and reminded.body["data"]["reminded_at"] is not None
    second_mail = smtp_server.wait_for_mail(carol_email)
    assert second_mail.startswith("Subject: Reminder")
    second = code_in(second_mail, "invitation")
    listed = ada.client.get(f"/v1/team/{team}/invitations").body["data"]
    assert [i["email"] for i in listed] == [carol_email] and "hash" not in listed[0]

    accept = f"/v1/team/{team}/invitation/{invitation['id']}/accept"
    dave = person(cluster, smtp_server, "dave")
    wrong_person = dave.client.post(accept, {"code": second})
    assert wrong_person.status == 403 and wrong_person.body["error"] == "invitation_for_another_email"
    carol = log_in(cluster, carol_email)
    if first != second:
        assert carol.client.post(accept, {"code": first}).status == 404  # the reminder replaced the code
    assert carol.client.post(accept, {"code": second}).status == 200
    assert carol.client.post(accept, {"code": second}).status == 404  # used

    # the free plan allows 3 members, invitations included
    erin = ada.client.post(f"/v1/team/{team}/invitation", {"email": "erin@example.com"})
    assert erin.status == 201
    over = ada.client.post(f"/v1/team/{team}/invitation", {"email": "frank@example.com"})
    assert over.status == 403 and over.body["error"] == "plan_limit_reached"
    assert ada.client.delete(f"/v1/team/{team}/invitation/{erin.body['data']['id']}").status == 204
    assert ada.client.post(f"/v1/team/{team}/invitation", {"email": "frank@example.com"}).status == 201
    already = ada.client.post(f"/v1/team/{team}/invitation", {"email": carol_email})
    assert already.status == 409 and already.body["error"] == "already_member"


def test_api_keys_scopes_expiry_last_use_and_revocation(cluster: Cluster, smtp_server: Mailbox) -> None:
    ada = person(cluster, smtp_server)
    created = ada.client.post("/v1/keys", {"name": "ci", "scopes": ["monitors:read", "checks:write"]})
    assert created.status == 201, created.body
    key = created.body["data"]
    assert key["secret"].startswith(key["prefix"]) and key["scopes"] == ["checks:write", "monitors:read"]
    script = Client(ada.base, key["secret"])
    assert script.get("/v1/monitors").status == 200
    assert script.post("/v1/monitors", MONITOR).body["error"] == "insufficient_scope"
    assert Client(ada.base, None).get("/v1/monitors", headers={"X-API-Key": key["secret"]}).status == 200
    listed = ada.client.get("/v1/keys").body["data"]
    assert [k["id"] for k in listed] == [key["id"]] and "secret" not in listed[0] and "hash" not in listed[0]
    wait_for("the key's last use to be recorded", lambda: ada.client.get("/v1/keys").body["data"][0]["last_used_at"],
             30, interval=1)
    # a key cannot hand out more than it holds
    narrow = Client(ada.base, ada.client.post("/v1/keys", {"name": "keys", "scopes": ["keys:write"]})
                    .body["data"]["secret"])
    assert narrow.post("/v1/keys", {"name": "x", "scopes": ["monitors:write"]}).body["error"] == "insufficient_scope"
    bad = ada.client.post("/v1/keys", {"name": "x", "scopes": ["monitors:fly"]})
    assert bad.status == 422 and "scopes" in bad.body["errors"]
    # expiry and revocation
    short = ada.client.post("/v1/keys", {"name": "short", "scopes": ["monitors:read"],
                                         "expires_at": time.time() + 2}).body["data"]
    assert Client(ada.base, short["secret"]).get("/v1/monitors").status == 200
    time.sleep(2.5)
    expired = Client(ada.base, short["secret"]).get("/v1/monitors")
    assert expired.status == 401 and expired.body["error"] == "key_expired"
    assert ada.client.delete(f"/v1/keys/{key['id']}").status == 204
    assert script.get("/v1/monitors").status == 401  # at once, through the process that revoked it
    assert ada.client.delete(f"/v1/keys/{key['id']}").status == 404


def test_deleting_a_team_ends_its_keys_and_tokens_and_removes_its_monitors(
        cluster: Cluster, smtp_server: Mailbox) -> None:
    ada = person(cluster, smtp_server)
    platform = ada.client.post("/v1/team", {"name": "Short-lived"}).body["data"]["id"]
    tokens = Client(ada.base, None).post("/v1/auth/refresh", {"refresh_token": ada.refresh_token,
                                                              "team_id": platform}).body["data"]
    inside = Client(ada.base, tokens["access_token"])
    monitor = inside.post("/v1/monitors", MONITOR).body["data"]["id"]
    key = inside.post("/v1/keys", {"name": "k", "scopes": ["monitors:read"]}).body["data"]["secret"]
    assert inside.delete(f"/v1/team/{platform}").status == 204
    assert Client(ada.base, key).get("/v1/monitors").status == 401
    assert inside.get("/v1/monitors").status == 401
    assert platform not in {t["id"] for t in ada.client.get("/v1/teams").body["data"]}
    # the monitor itself is gone too: ask its owner directly, as the team it belonged to
    worker = next(p for p in cluster.processes if p.name.startswith("worker"))
    owner_read = f"/internal/partitions/{partition_for(monitor, cluster.partitions)}/monitors/{monitor}?org={platform}"
    internal = {"X-Pingstream-Internal": cluster.token}
    wait_for("the team's monitor to be deleted",
             lambda: Client(worker.url, None).get(owner_read, headers=internal).status == 404, 30)


def test_a_demoted_or_removed_member_keeps_no_power_through_their_keys(cluster: Cluster,
                                                                        smtp_server: Mailbox) -> None:
    """A manager's keys (and the keys those keys made) narrow to a user's scopes, then die with the membership."""
    ada = person(cluster, smtp_server)
    team = ada.team_id
    bob = invite(cluster, smtp_server, ada, team, "bob", "manager")
    made = bob.client.post("/v1/keys", {"name": "bob's script", "scopes": ["monitors:read", "monitors:write",
                                                                          "keys:write", "members:read"]})
    assert made.status == 201, made.body
    bobs_key = Client(bob.base, made.body["data"]["secret"])
    grandchild = bobs_key.post("/v1/keys", {"name": "made by the key", "scopes": ["monitors:write"]})
    assert grandchild.status == 201, grandchild.body
    grandchild_key = Client(bob.base, grandchild.body["data"]["secret"])
    ada_key = Client(ada.base, ada.client.post("/v1/keys", {"name": "ada's", "scopes": ["monitors:write"]})
                     .body["data"]["secret"])
    assert bobs_key.post("/v1/monitors", MONITOR).status == 201
    assert grandchild_key.post("/v1/monitors", MONITOR).status == 201

    assert ada.client.patch(f"/v1/team/{team}/member/{bob.user_id}", {"role": "user"}).status == 200
    for key in (bobs_key, grandchild_key):
        denied = key.post("/v1/monitors", MONITOR)
        assert denied.status == 403 and denied.body["error"] == "insufficient_scope", denied.body
    assert bobs_key.get("/v1/monitors").status == 200          # what a user may still do
    assert bobs_key.post("/v1/keys", {"name": "again", "scopes": ["monitors:read"]}).status == 403
    scopes = {k["name"]: k["scopes"] for k in ada.client.get("/v1/keys").body["data"]}
    assert scopes["bob's script"] == ["members:read", "monitors:read"] and scopes["made by the key"] == []

    assert ada.client.delete(f"/v1/team/{team}/member/{bob.user_id}").status == 204
    for key in (bobs_key, grandchild_key):
        assert key.get("/v1/monitors").status == 401
        assert key.get(f"/v1/team/{team}/members").status == 401
    assert ada_key.post("/v1/monitors", MONITOR).status == 201   # other members' keys are untouched
    revoked = {k["name"]: k["revoked_at"] for k in ada.client.get("/v1/keys").body["data"]}
    assert revoked["bob's script"] and revoked["made by the key"] and not revoked["ada's"]
