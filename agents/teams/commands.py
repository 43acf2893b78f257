"""commands about teams → the `teams` table → access records, mail, replies.

1. the topic: `commands` (engine/commands.py applies them), kinds team.*, key.*,
   invitation.*, member.*, keyed by the team (organisation) id, so a team, its
   organisation index and its plan limits live in one partition;
2. the state: `teams`, one record per team with its members, invitations and
   API keys (tables/teams.py), remembering the command offset it last applied;
3. the transitions: create, rename, delete, change plan; create and revoke
   keys; invite, remind, withdraw, accept; change a member's role, remove a
   member (the rules are tables.teams.member_change_refusal);
4. the events: what API processes need to authorise requests goes on the
   compacted `access` topic (engine/access.py) before the state is stored;
   invitation mail on `mail`; replies on `command-replies`.
"""
from __future__ import annotations

import secrets

import orjson

from engine import mail, topics
from engine.commands import CommandApplier
from engine.partitioning import entity_key
from tables import org_index
from tables.accounts import code_hash
from tables.plans import plan_named
from tables.teams import (INVITATION_TTL, access_key, access_member, access_team, invitation_view, key_view,
                          keys_fitted_to_role, member_change_refusal, member_view, roots, team_view)


def publish(applier: CommandApplier, key: str, record: dict) -> None:
    applier.state.emit(topics.ACCESS, key.encode(), orjson.dumps(record), 0)


def publish_team(applier: CommandApplier, team: dict) -> None:
    publish(applier, f"team:{team['id']}", access_team(team))


def publish_member(applier: CommandApplier, org_id: str, user_id: str, role: str | None) -> None:
    publish(applier, f"member:{org_id}:{user_id}", access_member(org_id, user_id, role))


def fit_keys_to_role(applier: CommandApplier, team: dict, user_id: str, role: str | None, at: float) -> dict:
    """The team with the member's keys revoked (removed) or narrowed (demoted), and every API process told."""
    changed = keys_fitted_to_role(team, user_id, role, at)
    for key in changed:
        publish(applier, f"api_key:{key['hash']}", access_key(team, key))
    return {**team, "keys": {**team["keys"], **{key["id"]: key for key in changed}}} if changed else team


def send_mail(applier: CommandApplier, mail_id: str, to: str, template: str, data: dict) -> None:
    mail.queue(applier.state, applier.partitions, mail_id, to, template, data)


def store(applier: CommandApplier, partition: int, offset: int, team: dict) -> None:
    applier.engine.teams.put(partition, entity_key(team["id"]), {**team, "pos": offset})


def live_team(applier: CommandApplier, partition: int, command: dict) -> dict | None:
    """The command's team, or None after replying 404 (absent and deleted teams are alike)."""
    team = applier.engine.teams.get(partition, entity_key(command["org_id"]))
    if team is None or team.get("deleted_at") is not None:
        applier.error(command, 404, "not_found", f"team {command['org_id']} not found")
        return None
    return team


def actor_role(team: dict, actor: dict) -> tuple[str, str]:
    """(actor id, role in this team): a key with members:write acts as a manager."""
    if actor["type"] == "user":
        member = team["members"].get(actor["id"])
        return actor["id"], member["role"] if member else "none"
    return actor["id"], "manager"


def applied(team: dict, offset: int) -> bool:
    """Has this team already applied the command at `offset` (it is redelivered)?"""
    return team["pos"] >= offset


# -- teams ----------------------------------------------------------------------


def team_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: name, plan, root ({user_id, email, name}, absent for an operator's team); may carry the reply."""
    body = command["body"]
    existing = applier.engine.teams.get(partition, entity_key(command["org_id"]))
    if existing is not None and existing["pos"] != offset:
        return applier.error(command, 409, "conflict", f"team {command['org_id']} exists")
    team = existing or {"id": command["org_id"], "name": body["name"], "plan": body["plan"],
                        "created_at": command["at"], "deleted_at": None, "members": {}, "invitations": {},
                        "keys": {}}
    if existing is None:
        root = body.get("root")
        if root:
            team["members"][root["user_id"]] = {"role": "root", "email": root["email"], "name": root["name"],
                                                "joined_at": command["at"]}
            publish_member(applier, team["id"], root["user_id"], "root")
        publish_team(applier, team)
        store(applier, partition, offset, team)
    view = team_view(team, "root" if body.get("root") else None)
    reply = command.get("reply")
    if reply is not None:  # forwarded by account.confirm: answer for both
        return applier.reply(command["id"], reply["status"], {**reply["body"], "team": view})
    applier.reply(command["id"], 201, view)


def team_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    team = live_team(applier, partition, command)
    if team is None:
        return
    if not applied(team, offset):
        team = {**team, **{k: v for k, v in command["body"].items() if k in ("name", "plan")}}
        publish_team(applier, team)
        store(applier, partition, offset, team)
    applier.reply(command["id"], 200, team_view(team))


def team_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """The team stops existing for every key, member and token at once; its monitors and heartbeats go."""
    team = live_team(applier, partition, command)
    if team is None:
        return
    team = {**team, "deleted_at": command["at"]}
    publish_team(applier, team)
    cascade(applier, partition, command, team["id"])
    store(applier, partition, offset, team)
    applier.reply(command["id"], 204, None)


def cascade(applier: CommandApplier, partition: int, command: dict, org_id: str) -> None:
    """A team's monitors and heartbeats go with it: a delete command to each one's partition."""
    for collection, kind in org_index.DELETE_KINDS.items():
        total = org_index.count(applier.engine.org_index, partition, org_id, collection)
        ids, _ = org_index.page(applier.engine.org_index, partition, org_id, collection, 1, max(total, 1))
        for resource_id in ids:
            applier.send(f"{command['id']}:cascade:{resource_id}", kind, org_id, resource_id, None, command["at"])


# -- API keys ---------------------------------------------------------------------


def key_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    team = live_team(applier, partition, command)
    if team is None:
        return
    body = command["body"]
    key = team["keys"].get(body["id"])
    if key is None:
        key = {**body, "created_at": command["at"], "revoked_at": None, "last_used_at": None}
        team = {**team, "keys": {**team["keys"], key["id"]: key}}
        publish(applier, f"api_key:{key['hash']}", access_key(team, key))
        store(applier, partition, offset, team)
    applier.reply(command["id"], 201, key_view(key))


def key_revoke(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    team = live_team(applier, partition, command)
    if team is None:
        return
    key = team["keys"].get(command["body"]["key_id"])
    if key is None or (key["revoked_at"] is not None and not applied(team, offset)):
        return applier.error(command, 404, "not_found", f"API key {command['body']['key_id']} not found")
    if key["revoked_at"] is None:
        key = {**key, "revoked_at": command["at"]}
        team = {**team, "keys": {**team["keys"], key["id"]: key}}
        publish(applier, f"api_key:{key['hash']}", access_key(team, key))
        store(applier, partition, offset, team)
    applier.reply(command["id"], 204, None)


def key_touch(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """When keys were last used, as an API process saw it (sent every few seconds); nobody waits."""
    team = applier.engine.teams.get(partition, entity_key(command["org_id"]))
    if team is None:
        return
    keys = dict(team["keys"])
    for key_id, used_at in command["body"]["keys"].items():
        key = keys.get(key_id)
        if key is not None and (key["last_used_at"] or 0) < used_at:
            keys[key_id] = {**key, "last_used_at": used_at}
    store(applier, partition, offset, {**team, "keys": keys})


# -- invitations --------------------------------------------------------------------


def invite_mail(applier: CommandApplier, team: dict, invitation: dict, code: str, inviter: str,
                reminder: bool, mail_id: str) -> None:
    send_mail(applier, mail_id, invitation["email"], "invitation", {
        "team_name": team["name"], "team_id": team["id"], "invitation_id": invitation["id"], "inviter": inviter,
        "role": invitation["role"], "code": code, "expires_days": INVITATION_TTL // 86400, "reminder": reminder,
    })


def inviter_name(team: dict, actor: dict) -> str:
    member = team["members"].get(actor["id"]) if actor["type"] == "user" else None
    return member["name"] if member else "An administrator"


def invitation_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: email, role, invitation_id, actor."""
    team = live_team(applier, partition, command)
    if team is None:
        return
    body = command["body"]
    invitation = team["invitations"].get(body["invitation_id"])
    if invitation is None or not applied(team, offset):
        _, role = actor_role(team, body["actor"])
        if body["role"] == "root" and role != "root":
            return applier.error(command, 403, "insufficient_role", "Only a root may invite a root.")
        if any(member["email"] == body["email"] for member in team["members"].values()):
            return applier.error(command, 409, "already_member", f"{body['email']} is already a member")
        others = {k: v for k, v in team["invitations"].items() if v["email"] != body["email"]}
        limit = plan_named(team["plan"]).members
        if limit is not None and len(team["members"]) + len(others) >= limit:
            return applier.error(command, 403, "plan_limit_reached",
                         f"Your {team['plan']} plan allows {limit} members (invitations included); "
                         "remove a member or withdraw an invitation, or upgrade the plan.")
        code = secrets.token_urlsafe(12)
        invitation = {"id": body["invitation_id"], "email": body["email"], "role": body["role"],
                      "hash": code_hash(code, body["invitation_id"]), "created_at": command["at"],
                      "expires_at": command["at"] + INVITATION_TTL, "reminded_at": None,
                      "invited_by": body["actor"]}
        team = {**team, "invitations": {**others, invitation["id"]: invitation}}
        invite_mail(applier, team, invitation, code, inviter_name(team, body["actor"]), False, command["id"])
        store(applier, partition, offset, team)
    applier.reply(command["id"], 201, invitation_view(invitation))


def invitation_remind(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """A new code by mail (the old one stops working) and another week to accept."""
    team = live_team(applier, partition, command)
    if team is None:
        return
    body = command["body"]
    invitation = team["invitations"].get(body["invitation_id"])
    if invitation is None:
        return applier.error(command, 404, "not_found", f"invitation {body['invitation_id']} not found")
    if not applied(team, offset):
        code = secrets.token_urlsafe(12)
        invitation = {**invitation, "hash": code_hash(code, invitation["id"]), "reminded_at": command["at"],
                      "expires_at": command["at"] + INVITATION_TTL}
        team = {**team, "invitations": {**team["invitations"], invitation["id"]: invitation}}
        invite_mail(applier, team, invitation, code, inviter_name(team, body["actor"]), True, command["id"])
        store(applier, partition, offset, team)
    applier.reply(command["id"], 200, invitation_view(invitation))


def invitation_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    team = live_team(applier, partition, command)
    if team is None:
        return
    invitation_id = command["body"]["invitation_id"]
    if invitation_id not in team["invitations"]:
        if applied(team, offset):
            return applier.reply(command["id"], 204, None)
        return applier.error(command, 404, "not_found", f"invitation {invitation_id} not found")
    team = {**team, "invitations": {k: v for k, v in team["invitations"].items() if k != invitation_id}}
    store(applier, partition, offset, team)
    applier.reply(command["id"], 204, None)


def invitation_accept(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: invitation_id, code, user ({id, email, name}) — the person signed in to accept."""
    team = live_team(applier, partition, command)
    if team is None:
        return
    body, user = command["body"], command["body"]["user"]
    member = team["members"].get(user["id"])
    if member is not None and applied(team, offset):
        return applier.reply(command["id"], 200, team_view(team, member["role"]))
    invitation = team["invitations"].get(body["invitation_id"])
    if invitation is None or not _code_matches(invitation, body["code"]):
        return applier.error(command, 404, "not_found", "No such invitation, or the code is wrong: "
                                                         "use the newest invitation mail.")
    if invitation["email"] != user["email"]:
        return applier.error(command, 403, "invitation_for_another_email",
                     "This invitation was sent to another email address: sign in with that one.")
    if invitation["expires_at"] < command["at"]:
        return applier.error(command, 410, "invitation_expired", "The invitation has expired: ask for a reminder.")
    role = invitation["role"] if member is None or member["role"] == "user" else member["role"]
    members = {**team["members"], user["id"]: {"role": role, "email": user["email"], "name": user["name"],
                                               "joined_at": command["at"]}}
    invitations = {k: v for k, v in team["invitations"].items() if k != invitation["id"]}
    team = {**team, "members": members, "invitations": invitations}
    publish_member(applier, team["id"], user["id"], role)
    store(applier, partition, offset, team)
    applier.reply(command["id"], 200, team_view(team, role))


def _code_matches(invitation: dict, code: str) -> bool:
    return secrets.compare_digest(invitation["hash"], code_hash(code, invitation["id"]))


# -- members --------------------------------------------------------------------------


def member_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: member_id, role, actor."""
    team = live_team(applier, partition, command)
    if team is None:
        return
    body = command["body"]
    if not applied(team, offset):
        actor_id, role = actor_role(team, body["actor"])
        refusal = member_change_refusal(team, actor_id, role, body["member_id"], body["role"])
        if refusal is not None:
            return applier.error(command, *refusal)
        member = {**team["members"][body["member_id"]], "role": body["role"]}
        team = {**team, "members": {**team["members"], body["member_id"]: member}}
        team = fit_keys_to_role(applier, team, body["member_id"], body["role"], command["at"])
        publish_member(applier, team["id"], body["member_id"], body["role"])
        store(applier, partition, offset, team)
    member = team["members"].get(body["member_id"])
    if member is None:
        return applier.error(command, 404, "not_found", f"member {body['member_id']} not found")
    applier.reply(command["id"], 200, member_view(body["member_id"], member))


def member_remove(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: member_id, actor; actor {"type": "system"} when the member's account was deleted."""
    team = applier.engine.teams.get(partition, entity_key(command["org_id"]))
    body = command["body"]
    if team is None or team.get("deleted_at") is not None or body["member_id"] not in team["members"]:
        if team is not None and applied(team, offset):
            return applier.reply(command["id"], 204, None)
        return applier.error(command, 404, "not_found", f"member {body['member_id']} not found")
    members = {k: v for k, v in team["members"].items() if k != body["member_id"]}
    if body["actor"]["type"] == "system":
        team = leave_without_people(applier, command, {**team, "members": members}, partition)
    else:
        actor_id, role = actor_role(team, body["actor"])
        refusal = member_change_refusal(team, actor_id, role, body["member_id"], None)
        if refusal is not None:
            return applier.error(command, *refusal)
        team = {**team, "members": members}
    team = fit_keys_to_role(applier, team, body["member_id"], None, command["at"])
    publish_member(applier, team["id"], body["member_id"], None)
    store(applier, partition, offset, team)
    applier.reply(command["id"], 204, None)


def leave_without_people(applier: CommandApplier, command: dict, team: dict, partition: int) -> dict:
    """After a deleted account left: the earliest member becomes root if no root is left; no members, no team."""
    if not team["members"]:
        team = {**team, "deleted_at": command["at"]}
        publish_team(applier, team)
        cascade(applier, partition, command, team["id"])
    elif not roots(team):
        heir = min(team["members"], key=lambda user_id: team["members"][user_id]["joined_at"])
        team = {**team, "members": {**team["members"], heir: {**team["members"][heir], "role": "root"}}}
        publish_member(applier, team["id"], heir, "root")
    return team


COMMANDS = {
    "team.create": team_create,
    "team.update": team_update,
    "team.delete": team_delete,
    "key.create": key_create,
    "key.revoke": key_revoke,
    "key.touch": key_touch,
    "invitation.create": invitation_create,
    "invitation.remind": invitation_remind,
    "invitation.delete": invitation_delete,
    "invitation.accept": invitation_accept,
    "member.update": member_update,
    "member.remove": member_remove,
}
