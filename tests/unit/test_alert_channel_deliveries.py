"""Outbound deliveries: signature, backoff, and the alert channel fold of attempts and retries."""
from __future__ import annotations

import hashlib
import hmac

import orjson

from agents.alert_channels.fold import AlertChannelFold
from engine import topics
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key
from tables import alert_channels as layout
from tests.unit.memory_tables import MemoryTable, memory_engine

CHANNEL = {"id": "alc_1", "org_id": "org_1", "secret": "whsec_test",
           "spec": {"url": "http://127.0.0.1:9/hook", "events": ["incident.created"], "max_attempts": 3,
                    "initial_backoff_seconds": 10, "timeout_seconds": 5}}


def test_signature_is_hmac_sha256_of_id_dot_timestamp_dot_body() -> None:
    body = b'{"event":"incident.created"}'
    expected = hmac.new(b"whsec_test", b"d1.1800000000." + body, hashlib.sha256).hexdigest()
    assert layout.signature("whsec_test", "d1", 1800000000, body) == f"sha256={expected}"
    headers = layout.headers("whsec_test", 1800000000, body, "d1", "incident.created")
    assert headers["X-Pingstream-Timestamp"] == "1800000000" and headers["X-Pingstream-Signature"] == f"sha256={expected}"
    assert layout.signature("whsec_test", "d2", 1800000000, body) != headers["X-Pingstream-Signature"]


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [layout.backoff(n, 10) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert layout.backoff(30, 10) == layout.MAX_BACKOFF


class Worker:
    def __init__(self) -> None:
        self.engine = memory_engine()
        self.engine.alert_channel_deliveries = MemoryTable("deliveries")
        self.engine.alert_channels = MemoryTable("alert_channels")
        self.engine.alert_channels.put(0, entity_key("alc_1"), CHANNEL)
        self.channel_fold = AlertChannelFold(self.engine, DeadLetters(self.engine.state))
        self.offset = 0

    def fold(self, message: dict) -> None:
        self.offset += 1
        self.channel_fold.fold_message(0, self.offset, orjson.dumps(message))

    def deliver(self, notification_id: str = "inc-1:created:alc_1") -> bytes:
        self.fold({"kind": "deliver", "id": notification_id, "channel_id": "alc_1", "org_id": "org_1",
                   "event": "incident.created", "at": 1800000000.0, "body": '{"event":"incident.created"}'})
        return layout.delivery_key("alc_1", 1800000000.0, notification_id)

    def attempted(self, key: bytes, attempt: int, status_code: int | None, at: float) -> None:
        self.fold({"kind": "attempted", "delivery_key": key.hex(), "attempt": attempt, "at": at,
                   "status_code": status_code, "error": None if status_code else "timed out after 5 s",
                   "duration_ms": 3.0})

    def due(self, now: float) -> list[bytes]:
        return [layout.delivery_of_due(k) for k, _ in self.engine.alert_channel_deliveries.scan(0, *layout.due_until(now))]


def test_a_delivery_is_due_at_once_retried_with_backoff_and_delivered() -> None:
    worker = Worker()
    key = worker.deliver()
    assert worker.channel_fold.to_launch == [(0, key)]
    worker.deliver()                                     # re-emitted with the same id: one delivery
    assert worker.channel_fold.counts["duplicates"] == 1
    worker.attempted(key, 1, 500, at=1000.0)
    assert worker.due(1009.0) == [] and worker.due(1010.0) == [key]
    worker.attempted(key, 1, 500, at=1001.0)             # the same attempt reported twice counts once
    worker.attempted(key, 2, None, at=1010.0)            # a timeout
    assert worker.due(1029.0) == [] and worker.due(1030.0) == [key]
    worker.attempted(key, 3, 204, at=1030.0)
    delivery = worker.engine.alert_channel_deliveries.get(0, key)
    assert delivery["status"] == "delivered" and [a["status_code"] for a in delivery["attempts"]] == [500, None, 204]
    assert worker.due(10_000.0) == []


def test_after_max_attempts_a_delivery_is_given_up_and_dead_lettered() -> None:
    worker = Worker()
    key = worker.deliver()
    for attempt in (1, 2, 3):
        worker.attempted(key, attempt, 503, at=1000.0 + attempt * 100)
    delivery = worker.engine.alert_channel_deliveries.get(0, key)
    assert delivery["status"] == "failed" and delivery["reason"] == "gave up after 3 attempts"
    assert worker.due(10_000.0) == []
    [letter] = [sent.body for sent in worker.engine.state.on(topics.DEAD_LETTERS)]
    assert letter["topic"] == "notifications" and "alc_1" in letter["reason"]


def test_ticks_launch_what_is_due_and_a_purge_forgets_the_channel() -> None:
    worker = Worker()
    key = worker.deliver()
    worker.channel_fold.to_launch.clear()
    worker.fold({"kind": "tick", "at": 4_000_000_000.0})
    assert worker.channel_fold.to_launch == [(0, key)]
    worker.fold({"kind": "purge", "channel_id": "alc_1"})
    assert worker.engine.alert_channel_deliveries.all_keys(0) == []
