"""Every worker's replica of rulesets and alert subscriptions, following `org-config` on a real broker."""
from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaProducer

from engine import topics
from engine.broker import EmbeddedBroker
from engine.org_config import OrgConfig, alert_channel_key, follow, ruleset_key
from engine.settings import Settings
from engine.topics import ensure_topics

RULESET = {"kind": "ruleset", "id": "rs_1", "org_id": "org_1", "created_at": 1.0, "rule_type": "webhook",
           "name": "all", "urgency": "high", "conditions": []}


async def publish(producer: AIOKafkaProducer, key: bytes, value: dict | None) -> None:
    await producer.send_and_wait(topics.ORG_CONFIG, None if value is None else orjson.dumps(value), key=key,
                                 partition=0)


async def until(what: str, check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_follower_replays_then_follows_live_with_tombstones(broker: EmbeddedBroker) -> None:
    settings = Settings(broker=broker.url, broker_kind="tansu")
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        await publish(producer, ruleset_key("rs_0"), {**RULESET, "id": "rs_0"})
        await publish(producer, ruleset_key("rs_0"), None)                  # deleted before the worker started
        await publish(producer, ruleset_key("rs_1"), RULESET)
        replica = OrgConfig()
        service = follow(settings, replica)()
        await service.start()
        try:
            await asyncio.wait_for(replica.ready.wait(), 15)
            assert [r.id for r in replica.rulesets_of("org_1", "webhook")] == ["rs_1"]  # ready means replayed
            await publish(producer, alert_channel_key("alc_1"), {"kind": "alert", "id": "alc_1", "org_id": "org_1",
                                                         "events": ["incident.created"]})
            await publish(producer, ruleset_key("rs_1"), {**RULESET, "conditions": [
                {"type": "json-check", "key": "status", "operator": "equal", "values": ["firing"]}]})
            await until("the live records", lambda: replica.channels_for("org_1", "incident.created") == ["alc_1"]
                        and replica.rulesets_of("org_1", "webhook")[0].conditions)
            await publish(producer, ruleset_key("rs_1"), None)
            await until("the tombstone", lambda: replica.rulesets_of("org_1", "webhook") == [])
            assert replica.rulesets_of("org_2", "webhook") == [] and replica.summary()["alert_channels"] == 1
        finally:
            await service.stop()
    finally:
        await producer.stop()
