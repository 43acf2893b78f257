"""Teams: one record per team (organisation) in its partition of `teams` (agents/teams/commands.py).

    {"id": "org_…", "name", "plan", "created_at", "deleted_at",
     "members": {user_id: {"role", "email", "name", "joined_at"}},
     "invitations": {inv_id: {"id", "email", "role", "hash", "expires_at", "created_at",
                              "reminded_at", "invited_by"}},
     "keys": {key_id: {"id", "name", "prefix", "hash", "scopes", "created_at", "expires_at",
                       "revoked_at", "last_used_at", "created_by"}},
     "pos"}
"""
from __future__ import annotations

from tables.access import ROLE_SCOPES, ROLES
from tables.monitor_views import iso

INVITATION_TTL = 7 * 24 * 3600
RANK = {role: n for n, role in enumerate(ROLES)}  # user < manager < root


def roots(team: dict) -> list[str]:
    return [user_id for user_id, member in team["members"].items() if member["role"] == "root"]


def member_change_refusal(team: dict, actor_id: str, actor_role: str, target_id: str,
                          new_role: str | None) -> tuple[int, str, str] | None:
    """Why `actor` may not give `target` the role `new_role` (None: remove them), or None when they may.

    Anyone may leave; managers manage users and managers; only a root touches
    roots or makes one; a team always keeps at least one root.
    """
    target = team["members"].get(target_id)
    if target is None:
        return 404, "not_found", f"member {target_id} not found"
    if actor_id != target_id or new_role is not None:
        if RANK.get(actor_role, -1) < RANK["manager"]:
            return 403, "insufficient_role", "Only a manager or root of the team may change its members."
        if "root" in (target["role"], new_role) and actor_role != "root":
            return 403, "insufficient_role", "Only a root may grant, change or remove the root role."
    if target["role"] == "root" and new_role != "root" and roots(team) == [target_id]:
        return 409, "last_root", "A team needs a root: make another member root first."
    return None


def team_view(team: dict, role: str | None = None) -> dict:
    view = {"id": team["id"], "name": team["name"], "plan": team["plan"], "created_at": iso(team["created_at"]),
            "members_count": len(team["members"])}
    if role is not None:
        view["role"] = role
    return view


def member_view(user_id: str, member: dict) -> dict:
    return {"id": user_id, "email": member["email"], "name": member["name"], "role": member["role"],
            "joined_at": iso(member["joined_at"])}


TIMES = ("created_at", "expires_at", "reminded_at", "revoked_at", "last_used_at")


def _view(record: dict, fields: tuple[str, ...]) -> dict:
    return {name: iso(record.get(name)) if name in TIMES else record.get(name) for name in fields}


def invitation_view(invitation: dict) -> dict:
    return _view(invitation, ("id", "email", "role", "created_at", "expires_at", "reminded_at", "invited_by"))


def key_view(key: dict) -> dict:
    return _view(key, ("id", "name", "prefix", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at",
                       "created_by"))


def keys_made_by(team: dict, user_id: str) -> set[str]:
    """Ids of the team's keys a member created: directly, or through a key they created (and so on)."""
    made: set[str] = set()
    grew = True
    while grew:
        grew = False
        for key in team["keys"].values():
            creator = key.get("created_by") or {}
            if key["id"] not in made and (creator == {"type": "user", "id": user_id}
                                          or (creator.get("type") == "api_key" and creator.get("id") in made)):
                made.add(key["id"])
                grew = True
    return made


def keys_fitted_to_role(team: dict, user_id: str, role: str | None, at: float) -> list[dict]:
    """The member's keys that must change now that their role is `role` (None: removed), changed.

    A key never outlives its creator's power: removal revokes it, a demotion
    narrows its scopes to what the new role holds.
    """
    changed = []
    for key_id in sorted(keys_made_by(team, user_id)):
        key = team["keys"][key_id]
        if key.get("revoked_at") is not None:
            continue
        if role is None:
            changed.append({**key, "revoked_at": at})
        elif not set(key["scopes"]) <= ROLE_SCOPES[role]:
            changed.append({**key, "scopes": sorted(set(key["scopes"]) & ROLE_SCOPES[role])})
    return changed


def access_team(team: dict) -> dict:
    return {"kind": "team", "id": team["id"], "name": team["name"], "plan": team["plan"],
            "deleted": team.get("deleted_at") is not None}


def access_key(team: dict, key: dict) -> dict:
    return {"kind": "api_key", "id": key["id"], "hash": key["hash"], "org_id": team["id"], "scopes": key["scopes"],
            "expires_at": key["expires_at"], "revoked": key.get("revoked_at") is not None}


def access_member(org_id: str, user_id: str, role: str | None) -> dict:
    return {"kind": "member", "org_id": org_id, "user_id": user_id, "role": role, "removed": role is None}
