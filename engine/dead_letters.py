"""Input that cannot be used goes to `dead-letters` with the reason, and is counted (invariant 5)."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

import orjson

from engine import topics
from engine.metrics import DEAD_LETTERS, reason_kind
from tables.store import StateStore

MAX_PAYLOAD = 10_000  # bytes of the original kept, so a huge poison message stays inspectable


class DeadLetters:
    def __init__(self, state: StateStore) -> None:
        self.state = state
        self.counts: Counter[str] = Counter()  # source topic -> messages dead-lettered by this worker

    def send(self, topic: str, partition: int, offset: int, index: int, payload: Any,
             reason: str, errors: dict[str, str] | None = None) -> None:
        if isinstance(payload, (bytes, bytearray)):
            original = bytes(payload[:MAX_PAYLOAD]).decode("utf-8", "replace")
        else:
            original = orjson.dumps(payload, default=str)[:MAX_PAYLOAD].decode("utf-8", "replace")
        if offset >= topics.offset_base():
            offset -= topics.offset_base()  # folds see offsets shifted by their generation (engine/topics.py)
        letter = {
            "id": f"{topic}/{partition}/{offset}/{index}",
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "index": index,
            "reason": reason,
            "errors": errors or {},
            "payload": original,
            "at": time.time(),
        }
        self.counts[topics.named(topic, 0) if topic.split(".g")[0] in topics.TOPIC_NAMES else topic] += 1
        DEAD_LETTERS.labels(topic, reason_kind(reason)).inc()
        self.state.emit(topics.DEAD_LETTERS, topic.encode(), orjson.dumps(letter), partition)
