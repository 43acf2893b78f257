"""How a fold tells the alert channels subscribed to an event: a delivery to each channel's partition, and, for a
subscription naming people, an `alert.notify` to the team's partition, which tells them (commands.py); and how it
tells one other target the delivery fold knows (a status page's webhook subscriber)."""
from __future__ import annotations

from typing import Any

import orjson

from engine import topics
from engine.partitioning import entity_key, partition_for
from schemas.alert_channel import ALERT_EVENTS
from tables.alert_channels import told
from tables.monitor_views import iso


def announce(engine: Any, org_id: str, event: str, at: float, data: dict, source_id: str,
             name: str | None = None) -> int:
    """Queue `event` for every channel of the organisation subscribed to it; returns how many.
    `name`: what people are told the event is about, when `data` does not say."""
    if event not in ALERT_EVENTS:
        return 0
    channels = engine.org_config.channels_for(org_id, event)
    people = engine.org_config.people_for(org_id, event)
    if channels:
        body = event_body(event, at, data)
    for channel_id in channels:
        deliver(engine, channel_id, org_id, event, at, body, f"{source_id}:{channel_id}",
                entity_key(channel_id), partition_for(channel_id, engine.partitions))
    if people:
        subject, text = told(event, at, data, name)
    for channel_id, notify in people:
        command = {"id": f"{source_id}:{channel_id}:notify", "kind": "alert.notify", "org_id": org_id,
                   "entity_id": org_id, "at": at,
                   "body": {"subscription_id": channel_id, "event_id": source_id, "event": event, "at": at,
                            "notify": list(notify), "subject": subject, "text": text}}
        engine.state.emit(topics.COMMANDS, entity_key(org_id), orjson.dumps(command),
                          partition_for(org_id, engine.partitions))
    return len(channels) + len(people)


def event_body(event: str, at: float, data: dict) -> str:
    """The JSON a delivery sends (and signs): {"event", "timestamp", "data"}."""
    return orjson.dumps({"event": event, "timestamp": iso(at), "data": data}).decode()


def deliver(engine: Any, target: str, org_id: str, event: str, at: float, body: str, delivery_id: str,
            key: bytes, partition: int) -> None:
    """One delivery of `body` to `target`, in the partition where the delivery fold finds the target."""
    delivery = {"kind": "deliver", "id": delivery_id, "channel_id": target, "org_id": org_id, "event": event,
                "at": at, "body": body}
    engine.state.emit(topics.ALERT_CHANNEL_DELIVERIES, key, orjson.dumps(delivery), partition)
