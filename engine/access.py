"""The access records every API process follows, and bootstrapping the first team.

Scopes, roles and key fields are domain rules: tables/access.py.

Teams (the unit of tenancy: an organisation), their API keys and members live
in the team's partition of the `teams` table; accounts and their sessions in
the account's partition of `accounts` (agents/teams/commands.py,
agents/accounts/commands.py). What an API process needs to authorise a request
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

import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from engine import topics
from engine.deployment import current
from engine.partitioning import entity_key, partition_for
from engine.settings import Settings
from tables.access import ALL_SCOPES, key_fields, new_secret, new_team_id


def command(kind: str, org_id: str, body: dict) -> dict:
    return {"id": uuid.uuid4().hex, "kind": kind, "org_id": org_id, "entity_id": org_id, "body": body,
            "at": time.time()}


async def bootstrap(settings: Settings, name: str = "Default organisation", plan: str = "self-hosted",
                    scopes: tuple[str, ...] = ALL_SCOPES) -> tuple[dict, str]:
    """Create a team and an admin key for it; returns the team and the key's secret (shown once).

    Both are commands to the team's partition, applied by whichever worker owns
    it (now, or when one starts): the key works once a worker has applied them.
    """
    partitions = (await current(settings)).partitions  # a rescale may have changed the count
    org_id = new_team_id()
    secret = new_secret()
    team = {"name": name, "plan": plan}
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for message in (command("team.create", org_id, team),
                        command("key.create", org_id, key_fields(secret, "admin", scopes, None))):
            await producer.send_and_wait(topics.COMMANDS, orjson.dumps(message), key=entity_key(org_id),
                                         partition=partition_for(org_id, partitions))
    finally:
        await producer.stop()
    return {"id": org_id, **team}, secret
