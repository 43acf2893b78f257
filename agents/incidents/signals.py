"""How anything that judged an event reaches an incident: a signal to its route's partition."""
from __future__ import annotations

from typing import Any

import orjson

from engine import topics
from engine.partitioning import entity_key, partition_for


def send_signal(engine: Any, signal: dict) -> None:
    """Queue a signal for the partition of its route (sent before the state of what caused it)."""
    route = signal["route"]
    engine.state.emit(topics.INCIDENT_SIGNALS, entity_key(route), orjson.dumps(signal),
                      partition_for(route, engine.partitions))
