"""How a fold tells the alert channels subscribed to an event: a delivery to each channel's partition."""
from __future__ import annotations

from typing import Any

import orjson

from engine import topics
from engine.partitioning import entity_key, partition_for
from schemas.alert_channel import ALERT_EVENTS
from tables.monitor_views import iso


def announce(engine: Any, org_id: str, event: str, at: float, data: dict, source_id: str) -> int:
    """Queue `event` for every channel of the organisation subscribed to it; returns how many."""
    if event not in ALERT_EVENTS:
        return 0
    channels = engine.org_config.channels_for(org_id, event)
    if not channels:
        return 0
    body = orjson.dumps({"event": event, "timestamp": iso(at), "data": data}).decode()
    for channel_id in channels:
        delivery = {"kind": "deliver", "id": f"{source_id}:{channel_id}", "channel_id": channel_id,
                    "org_id": org_id, "event": event, "at": at, "body": body}
        engine.state.emit(topics.ALERT_CHANNEL_DELIVERIES, entity_key(channel_id), orjson.dumps(delivery),
                          partition_for(channel_id, engine.partitions))
    return len(channels)
