"""Notification channels' pure rules and the delivery fold: who is told, once, in what order, retried how."""
from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest
from pydantic import ValidationError

from agents.notification_channels.fold import NotificationFold
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key
from engine.settings import Settings
from schemas.notification_channel import ChannelPatch, ChannelSpec
from tables import notification_channels as layout
from tests.unit.memory_tables import MemoryTable, RecordingState

OWNER = "team:org_1"


def channel(channel_id: str, priority: int, enabled: bool = True, verified: bool = True, at: float = 1.0) -> dict:
    return {"id": channel_id, "type": "email", "name": channel_id, "priority": priority, "enabled": enabled,
            "verified": verified, "verified_at": None, "address": f"{channel_id}@example.com",
            "created_at": at, "updated_at": at, "pos": 0}


def test_only_enabled_verified_channels_are_told_in_priority_order() -> None:
    record = {"owner": OWNER, "channels": {c["id"]: c for c in (
        channel("c", 5), channel("a", 1, at=2.0), channel("b", 1, at=1.0), channel("off", 0, enabled=False),
        channel("new", 0, verified=False))}}
    assert [c["id"] for c in layout.deliverable(record)] == ["b", "a", "c"]
    assert layout.deliverable(None) == []


def test_a_secret_url_shows_its_scheme_and_a_masked_tail_only() -> None:
    url = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    assert layout.masked_url(url) == "slack://****i7FQ"
    assert layout.masked_url("json://a/b") == "json://****"  # too short to show any of it


def test_backoff_doubles_and_gives_up_and_an_unknown_outcome_is_never_retried() -> None:
    delivery = {"attempts": [], "status": "pending", "next_attempt_at": 0.0}
    assert layout.record_attempt(delivery, {"at": 100.0, "outcome": "failed", "error": "x"}) == "pending"
    assert delivery["next_attempt_at"] == 100.0 + layout.INITIAL_BACKOFF
    assert layout.record_attempt(delivery, {"at": 110.0, "outcome": "failed", "error": "x"}) == "pending"
    assert delivery["next_attempt_at"] == 110.0 + 2 * layout.INITIAL_BACKOFF
    assert layout.record_attempt({"attempts": [], "status": "pending"},
                                 {"at": 1.0, "outcome": "unknown", "error": "timed out"}) == "unknown"
    assert layout.record_attempt({"attempts": [], "status": "pending"},
                                 {"at": 1.0, "outcome": "failed", "error": "bad number", "final": True}) == "failed"
    many = {"attempts": [], "status": "pending"}
    statuses = [layout.record_attempt(many, {"at": float(n), "outcome": "failed", "error": "x"})
                for n in range(layout.MAX_ATTEMPTS)]
    assert statuses[-1] == "failed" and set(statuses[:-1]) == {"pending"}


def test_a_spec_takes_the_destination_of_its_type_only() -> None:
    assert ChannelSpec(type="sms", name="n", phone="+14155550100").phone == "+14155550100"
    for wrong in ({"type": "sms", "name": "n", "address": "a@b.c"}, {"type": "email", "name": "n"},
                  {"type": "webhook", "name": "n", "url": "ftp://x/y"}, {"type": "voice", "name": "n", "phone": "555"}):
        with pytest.raises(ValidationError):
            ChannelSpec.model_validate(wrong)
    with pytest.raises(ValidationError):
        ChannelPatch.model_validate({})


def fold_with(record: dict) -> NotificationFold:
    engine = SimpleNamespace(settings=Settings(partitions=4), notification_deliveries=MemoryTable(),
                             notification_channels=MemoryTable(), state=RecordingState())
    engine.notification_channels.put(0, entity_key(OWNER), record)
    return NotificationFold(engine, DeadLetters(engine.state))


def send(fold: NotificationFold, offset: int, message_id: str) -> None:
    fold.fold_message(0, offset, orjson.dumps({"kind": "send", "id": message_id, "owner": OWNER, "subject": "down",
                                               "text": "checkout is down", "at": 1000.0}))


def logged(fold: NotificationFold, channel_id: str) -> list[dict]:
    return [d for _, d in fold.data.scan(0, *layout.deliveries_range(OWNER, channel_id))]


def test_one_delivery_per_message_and_channel_however_often_it_is_sent() -> None:
    fold = fold_with({"owner": OWNER, "channels": {"a": channel("a", 2), "b": channel("b", 1),
                                                   "off": channel("off", 0, enabled=False)}})
    send(fold, 1, "page-1")
    send(fold, 1, "page-1")  # redelivered after a crash
    send(fold, 7, "page-1")  # emitted again
    assert [len(logged(fold, c)) for c in ("a", "b", "off")] == [1, 1, 0]
    assert [fold.data.get(0, key)["channel_id"] for _, key in fold.to_launch] == ["b", "a"]  # priority order
    assert fold.counts["duplicates"] == 4


def test_an_attempt_claimed_without_an_outcome_is_in_doubt_and_a_late_outcome_counts_once() -> None:
    fold = fold_with({"owner": OWNER, "channels": {"a": channel("a", 1)}})
    send(fold, 1, "page-1")
    (_, key), = fold.to_launch
    fold.claims = {"first": None, "second": None}  # tokens of attempts waiting for their claims
    for token in ("first", "second"):  # a new owner's claim of the same attempt, behind the old owner's
        fold.fold_message(0, 2, orjson.dumps({"kind": "claimed", "delivery_key": key.hex(), "attempt": 1,
                                              "token": token, "at": 1.0}))
    assert fold.settled_claims == [("first", True), ("second", False)]  # only the first may send
    assert layout.in_doubt(fold.data.get(0, key))
    attempted = orjson.dumps({"kind": "attempted", "delivery_key": key.hex(), "attempt": 1, "at": 1.0,
                              "outcome": "sent", "status_code": 200, "error": None})
    fold.fold_message(0, 3, attempted)
    fold.fold_message(0, 3, attempted)  # redelivered
    delivery = fold.data.get(0, key)
    assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 1 and not layout.in_doubt(delivery)


def test_a_deleted_channel_leaves_no_delivery_behind() -> None:
    fold = fold_with({"owner": OWNER, "channels": {"a": channel("a", 1)}})
    send(fold, 1, "page-1")
    fold.fold_message(0, 2, orjson.dumps({"kind": "purge", "owner": OWNER, "channel_id": "a"}))
    assert fold.data.all_keys(0) == []


def test_notify_is_one_send_on_the_owner_s_partition_that_the_fold_accepts() -> None:
    from agents.notification_channels.notify import notify, person
    from engine.partitioning import partition_for

    engine = SimpleNamespace(state=RecordingState(), partitions=4)
    notify(engine, person("usr_1"), "page:pg_1:usr_1:0:0", "Checkout is down", "connection refused", 1000.0,
           link="https://example.com/ack/x")
    (sent,) = engine.state.on("notification-deliveries")
    assert sent.key == entity_key("user:usr_1") and sent.partition == partition_for("user:usr_1", 4)
    assert sent.body["kind"] == "send" and sent.body["owner"] == "user:usr_1" and sent.body["link"].endswith("/x")
    with pytest.raises(ValidationError):
        notify(engine, "someone", "m", "s", "t", 1.0)  # not an owner


def test_a_burst_beyond_the_log_s_length_forgets_only_deliveries_that_ended() -> None:
    """A channel keeps its newest KEEP_DELIVERIES; a delivery still pending is never the one that goes,
    or a burst of pages would drop messages before they were ever sent."""
    fold = fold_with({"owner": OWNER, "channels": {"a": channel("a", 1)}})
    burst = layout.KEEP_DELIVERIES + 50
    for n in range(burst):  # one a second: the log's order is the order they came in
        fold.fold_message(0, n, orjson.dumps({"kind": "send", "id": f"page-{n}", "owner": OWNER, "subject": "down",
                                              "text": "checkout is down", "at": 1000.0 + n}))
    assert len(logged(fold, "a")) == burst and all(d["status"] == "pending" for d in logged(fold, "a"))
    for n, (_, key) in enumerate(fold.to_launch[:60]):  # the oldest 60 are sent
        fold.fold_message(0, burst + n, orjson.dumps({"kind": "attempted", "delivery_key": key.hex(), "attempt": 1,
                                                      "at": 1.0, "outcome": "sent", "status_code": 200,
                                                      "error": None}))
    fold.fold_message(0, 10_000, orjson.dumps({"kind": "send", "id": "page-after", "owner": OWNER, "subject": "down",
                                               "text": "checkout is down", "at": 2000.0}))
    kept = logged(fold, "a")
    assert len(kept) == layout.KEEP_DELIVERIES  # 51 of the delivered went, the 191 pending stayed
    assert sum(d["status"] == "pending" for d in kept) == burst - 60 + 1
