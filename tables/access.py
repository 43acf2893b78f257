"""Who may do what: scopes, roles, and the shape of an API key (pure rules, no I/O).

The access records API processes follow (`access` topic) are described in
engine/access.py; teams, keys and members live in tables/teams.py.
"""
from __future__ import annotations

import hashlib
import secrets
import uuid

RESOURCE_SCOPES = (
    "monitors:read", "monitors:write", "checks:read", "checks:write",
    "heartbeats:read", "heartbeats:write", "incidents:read", "incidents:write",
    "alerts:read", "alerts:write", "webhooks:read", "webhooks:write",
    "rulesets:read", "rulesets:write", "status-pages:read", "status-pages:write",
    "account:read", "schedules:read", "schedules:write", "groups:read", "groups:write",
    "pages:read", "pages:write",
)
ADMIN_SCOPES = ("keys:read", "keys:write", "members:read", "members:write", "teams:write")
ALL_SCOPES = RESOURCE_SCOPES + ADMIN_SCOPES

#: what a person may do in a team, by role (README: "Roles")
ROLES = ("user", "manager", "root")
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "user": frozenset([s for s in RESOURCE_SCOPES if s.endswith(":read")]
                      + ["checks:write", "incidents:write", "members:read", "pages:write"]),
    "manager": frozenset(RESOURCE_SCOPES + ("keys:read", "keys:write", "members:read", "members:write")),
    "root": frozenset(ALL_SCOPES),
}


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return "psk_" + secrets.token_urlsafe(32)


def new_team_id() -> str:
    return "org_" + uuid.uuid4().hex[:16]


def new_key_id() -> str:
    return "key_" + uuid.uuid4().hex[:16]


def key_fields(secret: str, name: str, scopes: list[str] | tuple[str, ...], expires_at: float | None,
               created_by: dict | None = None) -> dict:
    """The body of a key.create command: the secret itself is never stored, only its SHA-256 and a prefix."""
    return {"id": new_key_id(), "name": name, "hash": key_hash(secret), "prefix": secret[:10],
            "scopes": sorted(set(scopes)), "expires_at": expires_at, "created_by": created_by}
