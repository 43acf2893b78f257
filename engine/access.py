"""Who may do what: scopes, roles, and the access records every API process follows.

Teams (the unit of tenancy: an organisation), their API keys and members live
in the team's partition of the `teams` table; accounts and their sessions in
the account's partition of `accounts` (agents/team_commands.py,
agents/account_commands.py). What an API process needs to authorise a request
without asking anyone is published by those agents on the compacted `access`
topic, one record per key:

    team:<org>            {"kind": "team", "id", "name", "plan", "deleted"}
    api_key:<sha256>      {"kind": "api_key", "id", "org_id", "scopes", "expires_at", "revoked"}
    member:<org>:<user>   {"kind": "member", "org_id", "user_id", "role", "removed"}
    session:<sid>         {"kind": "session", "id", "user_id", "live": true, "until"}  (opened)
                          {"kind": "session", "id", "until"}   (ended: revoked until its tokens expire)
    user:<user>           {"kind": "user", "id", "deleted"}
"""
from __future__ import annotations

import hashlib
import secrets
import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from engine import topics
from engine.partitioning import entity_key, partition_for
from engine.settings import Settings

RESOURCE_SCOPES = (
    "monitors:read", "monitors:write", "checks:read", "checks:write",
    "heartbeats:read", "heartbeats:write", "incidents:read", "incidents:write",
    "alerts:read", "alerts:write", "webhooks:read", "webhooks:write",
    "rulesets:read", "rulesets:write", "status-pages:read", "status-pages:write",
    "account:read",
)
ADMIN_SCOPES = ("keys:read", "keys:write", "members:read", "members:write", "teams:write")
ALL_SCOPES = RESOURCE_SCOPES + ADMIN_SCOPES

#: what a person may do in a team, by role (README: "Roles")
ROLES = ("user", "manager", "root")
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "user": frozenset([s for s in RESOURCE_SCOPES if s.endswith(":read")]
                      + ["checks:write", "incidents:write", "members:read"]),
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


def command(kind: str, org_id: str, body: dict) -> dict:
    return {"id": uuid.uuid4().hex, "kind": kind, "org_id": org_id, "entity_id": org_id, "body": body,
            "at": time.time()}


async def bootstrap(settings: Settings, name: str = "Default organisation", plan: str = "self-hosted",
                    scopes: tuple[str, ...] = ALL_SCOPES) -> tuple[dict, str]:
    """Create a team and an admin key for it; returns the team and the key's secret (shown once).

    Both are commands to the team's partition, applied by whichever worker owns
    it (now, or when one starts): the key works once a worker has applied them.
    """
    org_id = new_team_id()
    secret = new_secret()
    team = {"name": name, "plan": plan}
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for message in (command("team.create", org_id, team),
                        command("key.create", org_id, key_fields(secret, "admin", scopes, None))):
            await producer.send_and_wait(topics.COMMANDS, orjson.dumps(message), key=entity_key(org_id),
                                         partition=partition_for(org_id, settings.partitions))
    finally:
        await producer.stop()
    return {"id": org_id, **team}, secret
