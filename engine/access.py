"""Organisations and API keys, as records on the compacted `access` topic the API follows."""
from __future__ import annotations

import secrets
import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from api.gateway import key_hash
from engine import topics
from engine.settings import Settings

ALL_SCOPES = ("monitors:read", "monitors:write", "checks:write", "checks:read")
ALL_SCOPES += ("incidents:read", "incidents:write", "alerts:read", "alerts:write",
               "webhooks:read", "webhooks:write", "rulesets:read", "rulesets:write")
ALL_SCOPES += ("heartbeats:read", "heartbeats:write")


def new_secret() -> str:
    return "psk_" + secrets.token_urlsafe(32)


def organisation_record(name: str) -> dict:
    return {"kind": "organisation", "id": "org_" + uuid.uuid4().hex[:16], "name": name,
            "plan": "free", "created_at": time.time()}


def api_key_record(org_id: str, secret: str, name: str, scopes: tuple[str, ...]) -> dict:
    """The secret itself is never stored: only its SHA-256 and a prefix to recognise it by."""
    return {"kind": "api_key", "id": "key_" + uuid.uuid4().hex[:16], "hash": key_hash(secret),
            "prefix": secret[:10], "org_id": org_id, "name": name, "scopes": list(scopes),
            "created_at": time.time(), "expires_at": None, "revoked": False}


async def publish(settings: Settings, *records: dict) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for record in records:
            key = f"{record['kind']}:{record.get('hash') or record['id']}".encode()
            await producer.send_and_wait(topics.ACCESS, orjson.dumps(record), key=key, partition=0)
    finally:
        await producer.stop()


async def bootstrap(settings: Settings, org_name: str = "Default organisation",
                    scopes: tuple[str, ...] = ALL_SCOPES) -> tuple[dict, str]:
    """Create an organisation and an admin key for it; returns the organisation and the secret."""
    organisation = organisation_record(org_name)
    secret = new_secret()
    await publish(settings, organisation, api_key_record(organisation["id"], secret, "admin", scopes))
    return organisation, secret
