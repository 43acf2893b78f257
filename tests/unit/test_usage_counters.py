"""Usage counters: checks per organisation and hour, active monitors; exact under redelivery and crashes.

The checks and commands agents fold raw messages against in-memory tables. For
crashes, `BatchedTable` stands in for TableStore's write-behind batch: records
reach the durable side in TableStore's send order, and a crash keeps any prefix
of them; the messages of the batch are then redelivered, as Kafka would.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from agents.monitors.fold import CheckFolder
from agents import command_handlers
from engine.commands import CommandApplier
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key, partition_for
from tables import monitor_data, usage
from tables.monitor_views import uptime
from tables.uptime import HOUR, bucket_start
from tests.unit.memory_tables import MemoryTable, memory_engine
from tests.unit.test_check_folding import PARTITIONS, monitor_ids

P = 1
NOW = time.time()
HOUR_NOW = bucket_start(NOW)
DELETED = object()


A, B, C, D = monitor_ids(P, 4)
ELSEWHERE = monitor_ids((P + 1) % PARTITIONS, 1)[0]


class BatchedTable(MemoryTable):
    """Durable state (the MemoryTable) behind TableStore's pending batch: put moves a key to the end
    of the send order, place keeps its place, reads of durable values decode a fresh copy."""

    def __init__(self, name: str, encode: Callable[[Any], bytes] = orjson.dumps,
                 decode: Callable[[bytes, bytes], Any] = lambda key, raw: orjson.loads(raw)) -> None:
        super().__init__(name)
        self.encode, self.decode = encode, decode
        self.dirty: dict[int, dict[bytes, Any]] = {}

    def get(self, partition: int, key: bytes) -> Any | None:
        pending = self.dirty.get(partition, {})
        if key in pending:
            return None if pending[key] is DELETED else pending[key]
        raw = super().get(partition, key)
        return None if raw is None else self.decode(key, raw)

    def put(self, partition: int, key: bytes, value: Any) -> None:
        pending = self.dirty.setdefault(partition, {})
        pending.pop(key, None)
        pending[key] = value

    def place(self, partition: int, key: bytes, value: Any) -> None:
        self.dirty.setdefault(partition, {})[key] = value

    def delete(self, partition: int, key: bytes) -> None:
        self.put(partition, key, DELETED)

    def scan(self, partition: int, start: bytes, stop: bytes, *, reverse: bool = False,
             limit: int | None = None) -> list[tuple[bytes, Any]]:
        keys = {key for key, _ in super().scan(partition, start, stop)}
        keys |= {key for key in self.dirty.get(partition, {}) if start <= key < stop}
        items = [(key, value) for key in sorted(keys, reverse=reverse)
                 if (value := self.get(partition, key)) is not None]
        return items if limit is None else items[:limit]

    def pending(self, partition: int) -> int:
        return len(self.dirty.get(partition, {}))

    def flush(self, keep: int | None = None) -> None:
        """Make the batch durable in send order; a crash (`keep`) loses every record after the first `keep`."""
        for partition, records in self.dirty.items():
            for key, value in list(records.items())[:keep]:
                if value is DELETED:
                    MemoryTable.delete(self, partition, key)
                else:
                    MemoryTable.put(self, partition, key, self.encode(value))
        self.dirty = {}


# -- checks per organisation and hour ------------------------------------------------------------


class ChecksWorker:
    """The checks agent on partition P, its monitor_data batched as TableStore batches it."""

    def __init__(self, batched: bool = False) -> None:
        self.engine = memory_engine(partitions=PARTITIONS)
        if batched:
            self.engine.monitor_data = BatchedTable("monitor_data", monitor_data.encode_value,
                                                    monitor_data.decode_value)
        self.data = self.engine.monitor_data
        self.folder = CheckFolder(self.engine, DeadLetters(self.engine.state))
        self.offset = 0
        for monitor_id, org_id in ((A, "org_1"), (B, "org_1"), (C, "org_2"), (D, "org_2"), (ELSEWHERE, "org_1")):
            self.engine.monitors.put(partition_for(monitor_id, PARTITIONS), entity_key(monitor_id), {
                "id": monitor_id, "org_id": org_id, "spec": {"grace_period": 0, "recovery_period": 0, "regions": []},
                "paused": False, "created_at": NOW, "updated_at": NOW, "pos": 0})

    def fold(self, message: Any) -> int:
        offset, self.offset = self.offset, self.offset + 1
        self.folder.fold_message(P, offset, orjson.dumps(message))
        return offset

    def checks(self, org_id: str, now: float = NOW) -> int:
        return usage.checks_in_last_day(self.data, P, org_id, now)


def result(monitor_id: str, status: str = "up", at: float | None = None) -> dict:
    return {"monitor_id": monitor_id, "status": status, "checked_at": at or NOW - 60, "response_time_ms": 50.0}


def test_checks_are_counted_per_organisation_whatever_the_message_shape():
    worker = ChecksWorker()
    worker.fold({"org_id": "org_1", "results": [result(A), result(B), result(A, "down")]})   # from the API
    worker.fold(result(C))                                                                 # one, from kcat
    worker.fold([result(A), result(D), result(C)])                                         # a list, mixed
    assert worker.checks("org_1") == 4
    assert worker.checks("org_2") == 3
    assert worker.checks("org_3") == 0


def test_what_is_not_folded_is_not_counted():
    worker = ChecksWorker()
    worker.fold({"org_id": "org_1", "results": [
        result(A),
        {"monitor_id": A, "status": "sideways"},         # invalid: dead-lettered
        result("mon_unknown"),                           # no such monitor
        result(C),                                       # another organisation's monitor
        result(A, at=NOW + 3600),                        # in the future
    ]})
    worker.fold({"kind": "pause", "monitor_id": B, "at": NOW})
    worker.fold({"org_id": "org_1", "results": [result(B)]})   # paused: dropped
    assert worker.checks("org_1") == 1
    assert worker.checks("org_2") == 0


def test_a_result_for_another_partition_is_counted_where_it_is_folded_not_where_it_passed():
    worker = ChecksWorker()
    worker.fold({"org_id": "org_1", "results": [result(ELSEWHERE), result(A)]})
    assert worker.checks("org_1") == 1   # ELSEWHERE was forwarded to its own partition, which counts it


def test_a_redelivered_message_counts_nothing_again():
    worker = ChecksWorker()
    message = {"org_id": "org_1", "results": [result(A), result(B)]}
    offset = worker.fold(message)
    worker.fold({"org_id": "org_1", "results": [result(A)]})
    worker.folder.fold_message(P, offset, orjson.dumps(message))
    worker.folder.fold_message(P, offset + 1, orjson.dumps({"org_id": "org_1", "results": [result(A)]}))
    assert worker.checks("org_1") == 3


def test_hours_older_than_a_day_stop_counting_and_are_dropped():
    counter = {"pos": -1, "hours": []}
    for hours_ago, how_many in ((30, 1000), (25, 100), (24, 10), (1, 2), (0, 1)):
        usage.add_checks(counter, 100 - hours_ago, NOW - hours_ago * HOUR, how_many)
    assert [hour for hour, _ in counter["hours"]] == [HOUR_NOW - h * HOUR for h in (24, 1, 0)]
    data = MemoryTable()
    data.put(P, usage.checks_key("org_1"), counter)
    assert usage.checks_in_last_day(data, P, "org_1", NOW) == 13
    assert usage.checks_in_last_day(data, P, "org_1", NOW + HOUR) == 3   # an hour on, the oldest is out


def test_checks_of_the_same_hour_add_up_in_one_bucket():
    counter = {"pos": -1, "hours": []}
    usage.add_checks(counter, 1, HOUR_NOW + 1, 5)
    usage.add_checks(counter, 2, HOUR_NOW + 3599, 7)
    assert counter == {"pos": 2, "hours": [[HOUR_NOW, 12]]}


def test_the_retention_tick_drops_counters_idle_for_a_day():
    worker = ChecksWorker()
    worker.fold({"org_id": "org_1", "results": [result(A)]})
    worker.fold({"org_id": "org_2", "results": [result(C)]})
    stale = {"pos": 0, "hours": [[HOUR_NOW - 25 * HOUR, 9]]}
    worker.data.put(P, usage.checks_key("org_2"), stale)
    worker.fold({"kind": "tick", "at": NOW})
    assert worker.data.get(P, usage.checks_key("org_2")) is None
    assert worker.checks("org_1") == 1


BATCH = [
    {"org_id": "org_1", "results": [result(A), result(B), result(A, "down")]},
    result(C),
    {"org_id": "org_2", "results": [result(D), result(C, "down")]},
    [result(B), result(C), result(A)],
    {"org_id": "org_1", "results": [result(B, "down")]},
]


def test_a_crash_anywhere_in_a_flush_then_redelivery_counts_every_check_once():
    expected = {"org_1": 2 + (3 + 2 + 1), "org_2": 4 + (1 + 2 + 1)}  # before the batch + in it
    worker = ChecksWorker(batched=True)
    for _ in range(2):
        worker.fold({"org_id": "org_1", "results": [result(A)]})
        worker.fold({"org_id": "org_2", "results": [result(C), result(D)]})
    worker.data.flush()
    start = worker.offset
    for message in BATCH:
        worker.fold(message)
    records = worker.data.pending(P)
    assert records > len(BATCH)

    for keep in range(records + 1):
        crashed = ChecksWorker(batched=True)
        crashed.data.partitions = {P: dict(worker.data.partitions[P])}   # the durable state before the batch
        crashed.offset = start
        for message in BATCH:
            crashed.fold(message)
        crashed.data.flush(keep)           # the worker dies with `keep` records in the changelog
        crashed.offset = start             # and the batch is delivered again
        for message in BATCH:
            crashed.fold(message)
        crashed.data.flush()
        counted = {org_id: crashed.checks(org_id) for org_id in expected}
        assert counted == expected, f"crash after {keep} of {records} records"
        total = sum(uptime(crashed.data, P, monitor_id, "24h", now=NOW)["total_checks"] for monitor_id in (A, B, C, D))
        assert total == sum(expected.values())


# -- active monitors -----------------------------------------------------------------------------


class CommandsWorker:
    """The commands agent on partition P, its monitors table batched as TableStore batches it."""

    def __init__(self) -> None:
        self.engine = memory_engine(partitions=PARTITIONS)
        self.engine.monitors = BatchedTable("monitors")
        self.applier = CommandApplier(self.engine, DeadLetters(self.engine.state), command_handlers())
        self.offset = 0

    def apply(self, command: bytes) -> None:
        offset, self.offset = self.offset, self.offset + 1
        self.applier.apply_message(P, offset, command)

    def active(self, org_id: str) -> int:
        return usage.active_monitors(self.engine.monitors, P, org_id)

    def really_active(self, org_id: str) -> int:
        configs = [config for _, config in self.engine.monitors.scan(P, b"", b"\xff")]
        return sum(1 for config in configs if config["org_id"] == org_id and not config["paused"])


def command(kind: str, monitor_id: str, org_id: str = "org_1") -> bytes:
    body = {"name": "m", "type": "http"} if kind == "monitor.create" else None
    return orjson.dumps({"id": uuid.uuid4().hex, "kind": kind, "org_id": org_id, "entity_id": monitor_id,
                         "body": body, "at": NOW})


def test_a_crash_anywhere_in_a_flush_then_redelivery_leaves_active_monitors_exact():
    before = [command("monitor.create", A), command("monitor.create", B), command("monitor.create", C, "org_2")]
    batch = [command("monitor.create", D), command("monitor.pause", A), command("monitor.delete", B),
             command("monitor.resume", A), command("monitor.pause", D), command("monitor.delete", C, "org_2"),
             command("monitor.pause", A), command("monitor.resume", A), command("monitor.create", B, "org_2")]
    worker = CommandsWorker()
    for raw in before:
        worker.apply(raw)
    worker.engine.monitors.flush()
    durable, start = dict(worker.engine.monitors.partitions[P]), worker.offset
    for raw in batch:
        worker.apply(raw)
    records = worker.engine.monitors.pending(P)
    worker.engine.monitors.flush()
    expected = {"org_1": 1, "org_2": 1}   # A; B, now org_2's (D is paused, C deleted)
    assert {org_id: worker.active(org_id) for org_id in expected} == expected

    for keep in range(records + 1):
        crashed = CommandsWorker()
        crashed.engine.monitors.partitions = {P: dict(durable)}
        crashed.offset = start
        for raw in batch:
            crashed.apply(raw)
        crashed.engine.monitors.flush(keep)
        crashed.offset = start
        for raw in batch:
            crashed.apply(raw)
        crashed.engine.monitors.flush()
        for org_id, active in expected.items():
            assert crashed.active(org_id) == crashed.really_active(org_id) == active, f"crash after {keep} of {records}"


# -- plan limits, the pure decision --------------------------------------------------------------


@pytest.mark.parametrize("team, collection, held, refused", [
    (None, "monitors", 10_000, False),                      # no team record: not limited
    ({"plan": "free"}, "monitors", 9, False),
    ({"plan": "free"}, "monitors", 10, True),
    ({"plan": "free"}, "heartbeats", 10, True),
    ({"plan": "free"}, "heartbeats:db", 10_000, False),     # per-service lists are not limited on their own
    ({"plan": "starter"}, "monitors", 49, False),
    ({"plan": "starter"}, "monitors", 50, True),
    ({"plan": "self-hosted"}, "monitors", 10_000, False),
    ({"plan": "no-such-plan"}, "monitors", 10, True),       # unknown plans are treated as free
])
def test_a_plan_refuses_one_more_only_at_its_limit(team, collection, held, refused):
    assert (usage.limit_refusal(team, collection, held) is not None) == refused
