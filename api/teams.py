"""/v1/team(s): teams, their invitations and members; /v1/keys: the team's API keys.

A team is the unit of tenancy (an organisation): every resource, key and plan
belongs to one. A person acts in a team with a role (root, manager, user;
README "Teams and roles"); the rules live in the team's partition
(agents/teams/commands.py), which every change goes through as a command.
"""
from __future__ import annotations

import time
import uuid
from datetime import timezone
from typing import Any

from aiohttp import web

from api import params
from api.accounts import my_teams, stored_account, team_view_of
from api.auth import principal_of
from api.errors import ApiError
from api.owner_reads import answer, gateway_of
from api.params import Id
from api.routes import Auth, Data, Page, Routes
from engine.responses import json_response
from schemas.account import (
    ApiKey, Invitation, InvitationAccept, InvitationIn, KeyIn, Member, MemberPatch, Team, TeamIn,
)
from tables.access import key_fields, new_secret, new_team_id
from tables.teams import invitation_view, key_view, member_view

routes = Routes()
TEAM = {"id": Id("team")}
INVITATION = {**TEAM, "invitation": Id("invitation")}
MEMBER = {**TEAM, "member": Id("member")}


async def team_command(request: web.Request, kind: str, body: dict | None = None) -> tuple[int, Any]:
    """A command to the principal's team (see Gateway.access_command)."""
    org_id = principal_of(request).org_id
    return await gateway_of(request).access_command(kind, org_id, org_id, body or {})


async def changed(request: web.Request, kind: str, body: dict | None = None) -> web.Response:
    return answer(*await team_command(request, kind, body))


async def stored_team(request: web.Request) -> dict:
    gateway, org_id = gateway_of(request), principal_of(request).org_id
    status, body = await gateway.read(gateway.partition_of(org_id), f"/teams/{org_id}")
    if status != 200:
        raise ApiError(404, "not_found", f"team {org_id} not found")
    return body


# -- teams --------------------------------------------------------------------------


@routes.post("/v1/team", auth=Auth(None, people_only=True), body=TeamIn, answers={201: Data(Team)}, errors=(409,))
async def create_team(request: web.Request, body: TeamIn) -> web.Response:
    """A new team, with you as its root; it starts on the sign-up plan."""
    principal, gateway = principal_of(request), gateway_of(request)
    record = await stored_account(gateway, principal.email)
    name = record["name"] if record else principal.email
    org_id = new_team_id()
    return answer(*await gateway.access_command("team.create", org_id, org_id, {
        "name": body.name, "plan": gateway.settings.signup_plan,
        "root": {"user_id": principal.user_id, "email": principal.email, "name": name}}))


@routes.get("/v1/teams", auth=Auth(None), query=params.pagination(), answers={200: Page(Team)})
async def list_teams(request: web.Request, page: int, per_page: int) -> web.Response:
    """The teams you belong to, with your role in each (a key: its own team)."""
    principal, gateway = principal_of(request), gateway_of(request)
    if principal.is_person:
        teams = my_teams(gateway, principal.user_id)
    else:
        teams = [team_view_of(gateway.teams[principal.org_id], None)]
    return paged(teams, page, per_page)


@routes.put("/v1/team/{id}", auth=Auth("teams:write", team_in_path=True), path_params=TEAM, body=TeamIn,
            answers={200: Data(Team)})
async def update_team(request: web.Request, body: TeamIn) -> web.Response:
    """Rename the team."""
    return await changed(request, "team.update", {"name": body.name})


@routes.delete("/v1/team/{id}", auth=Auth("teams:write", team_in_path=True, people_only=True), path_params=TEAM,
               answers={204: None})
async def delete_team(request: web.Request) -> web.Response:
    """Delete the team: its keys, members' access and tokens stop at once; its monitors and heartbeats go."""
    return await changed(request, "team.delete")


# -- invitations ------------------------------------------------------------------------


@routes.post("/v1/team/{id}/invitation", auth=Auth("members:write", team_in_path=True), path_params=TEAM,
             body=InvitationIn, answers={201: Data(Invitation)}, errors=(409,))
async def invite(request: web.Request, body: InvitationIn) -> web.Response:
    """Invite someone by email with a role; they get a code to accept with, valid for 7 days."""
    return await changed(request, "invitation.create", {
        "email": body.email, "role": body.role, "invitation_id": "inv_" + uuid.uuid4().hex[:16],
        "actor": principal_of(request).actor})


@routes.get("/v1/team/{id}/invitations", auth=Auth("members:read", team_in_path=True), path_params=TEAM,
            query=params.pagination(), answers={200: Page(Invitation)})
async def list_invitations(request: web.Request, page: int, per_page: int) -> web.Response:
    """Invitations not accepted yet (expired ones included: send a reminder to renew them)."""
    team = await stored_team(request)
    views = sorted((invitation_view(i) for i in team["invitations"].values()), key=lambda v: v["created_at"])
    return paged(views, page, per_page)


@routes.delete("/v1/team/{id}/invitation/{invitation}", auth=Auth("members:write", team_in_path=True),
               path_params=INVITATION, answers={204: None})
async def withdraw_invitation(request: web.Request) -> web.Response:
    """Withdraw an invitation: its code stops working."""
    return await changed(request, "invitation.delete", {"invitation_id": request.match_info["invitation"]})


@routes.post("/v1/team/{id}/invitation/{invitation}/reminder", auth=Auth("members:write", team_in_path=True),
             path_params=INVITATION, answers={200: Data(Invitation)})
async def remind(request: web.Request) -> web.Response:
    """Mail the invitation again with a new code, valid for another 7 days."""
    return await changed(request, "invitation.remind", {"invitation_id": request.match_info["invitation"],
                                                         "actor": principal_of(request).actor})


@routes.post("/v1/team/{id}/invitation/{invitation}/accept", auth=Auth(None, people_only=True),
             path_params=INVITATION, body=InvitationAccept, answers={200: Data(Team)}, errors=(410,))
async def accept(request: web.Request, body: InvitationAccept) -> web.Response:
    """Join the team with the mailed code, signed in with the invited email address."""
    principal, gateway = principal_of(request), gateway_of(request)
    org_id = request.match_info["id"]
    record = await stored_account(gateway, principal.email)
    return answer(*await gateway.access_command("invitation.accept", org_id, org_id, {
        "invitation_id": request.match_info["invitation"], "code": body.code,
        "user": {"id": principal.user_id, "email": principal.email, "name": record["name"] if record else ""}}))


# -- members ---------------------------------------------------------------------------------


@routes.get("/v1/team/{id}/members", auth=Auth("members:read", team_in_path=True), path_params=TEAM,
            query=params.pagination(), answers={200: Page(Member)})
async def list_members(request: web.Request, page: int, per_page: int) -> web.Response:
    """The team's members and their roles, earliest first."""
    team = await stored_team(request)
    views = sorted((member_view(k, m) for k, m in team["members"].items()), key=lambda v: v["joined_at"])
    return paged(views, page, per_page)


@routes.patch("/v1/team/{id}/member/{member}", auth=Auth("members:write", team_in_path=True), path_params=MEMBER,
              body=MemberPatch, answers={200: Data(Member)}, errors=(409,))
async def change_member(request: web.Request, body: MemberPatch) -> web.Response:
    """Change a member's role (only a root grants or takes away root; a team keeps one root)."""
    return await changed(request, "member.update", {"member_id": request.match_info["member"], "role": body.role,
                                                     "actor": principal_of(request).actor})


@routes.delete("/v1/team/{id}/member/{member}", auth=Auth(None, team_in_path=True), path_params=MEMBER,
               answers={204: None}, errors=(409,))
async def remove_member(request: web.Request) -> web.Response:
    """Remove a member (members:write), or leave the team yourself."""
    principal = principal_of(request)
    member_id = request.match_info["member"]
    if member_id != principal.user_id and not principal.can("members:write"):
        raise ApiError(403, "insufficient_scope", "Removing someone else needs the 'members:write' scope.")
    return await changed(request, "member.remove", {"member_id": member_id, "actor": principal.actor})


remove_member.scope = "members:write"  # what removing someone else needs (leaving needs none)


# -- API keys ----------------------------------------------------------------------------------


@routes.get("/v1/keys", auth=Auth("keys:read"), query=params.pagination(), answers={200: Page(ApiKey)})
async def list_keys(request: web.Request, page: int, per_page: int) -> web.Response:
    """The team's API keys, newest first: prefix, scopes, expiry, when last used (never the secret)."""
    team = await stored_team(request)
    views = sorted((key_view(k) for k in team["keys"].values()), key=lambda v: v["created_at"], reverse=True)
    return paged(views, page, per_page)


@routes.post("/v1/keys", auth=Auth("keys:write"), body=KeyIn, answers={201: Data(ApiKey)})
async def create_key(request: web.Request, body: KeyIn) -> web.Response:
    """A new key with some of your own scopes; its secret is in this answer only."""
    principal = principal_of(request)
    missing = sorted(set(body.scopes) - principal.scopes)
    if missing:
        raise ApiError(403, "insufficient_scope", f"A key can only get scopes you hold yourself; missing: "
                                                  f"{', '.join(missing)}.")
    expires_at = None if body.expires_at is None else (  # a time without a zone is UTC
        body.expires_at.replace(tzinfo=body.expires_at.tzinfo or timezone.utc).timestamp())
    if expires_at is not None and expires_at <= time.time():
        raise ApiError(422, "validation_error", "expires_at must be in the future.",
                       {"expires_at": "must be in the future"})
    secret = new_secret()
    status, reply = await team_command(request, "key.create",
                                       key_fields(secret, body.name, body.scopes, expires_at, principal.actor))
    return answer(status, {**reply, "secret": secret} if status == 201 else reply)


@routes.delete("/v1/keys/{id}", auth=Auth("keys:write"), path_params={"id": Id("key")}, answers={204: None})
async def revoke_key(request: web.Request) -> web.Response:
    """Revoke a key: from this answer on, no API process accepts it."""
    return await changed(request, "key.revoke", {"key_id": request.match_info["id"]})


def paged(views: list[dict], page: int, per_page: int) -> web.Response:
    return json_response(params.paginated(views[(page - 1) * per_page:page * per_page], page, per_page, len(views)))
