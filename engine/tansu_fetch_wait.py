"""Short fetch waits for Faust's consumer on Tansu.

Tansu 0.6.0 does not answer a long-polling fetch when new records arrive: it
holds the request for the whole fetch wait (~450 ms measured here with Faust's
hard-coded `fetch_max_wait_ms=1500`). Every topic hop of a command (API →
commands → organisation index → reply) then costs up to half a second. A 50 ms
wait bounds each hop at ~50 ms, for a few idle fetches a second per broker.
Kafka wakes long polls when data arrives, so the fix is installed for Tansu only.
"""
from __future__ import annotations

import functools
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

FETCH_MAX_WAIT_MS = 50
_APP_FLAG = "_pingstream_tansu_fetch_wait"
_PATCH_MARK = "__pingstream_tansu_fetch_wait__"


def install(app: Any) -> None:
    setattr(app, _APP_FLAG, True)
    original = AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, _PATCH_MARK, False):
        return

    @functools.wraps(original)
    def _create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = original(self, transport)
        if getattr(self.app, _APP_FLAG, False):
            consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer

    setattr(_create_worker_consumer, _PATCH_MARK, True)
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
