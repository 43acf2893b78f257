"""The heartbeats agent's folding: messages in, history, statistics, deadlines and events out.

Raw message bytes go through HeartbeatFolder.fold_message against in-memory
tables; what users would see is read back through tables/heartbeat_views.py and
the messages the folder emitted.
"""
from __future__ import annotations

import time
import uuid
from itertools import count

import orjson

from agents.heartbeats.fold import SETTLE, HeartbeatFolder
from engine import topics
from engine.dead_letters import DeadLetters
from engine.partitioning import partition_for
from tables.heartbeat_data import (
    CHUNK, KEEP_CHUNKS, due_range, kind_range, parse_deadline_key, prefix, runtime_key,
)
from tables.heartbeat_views import history, statistics
from tables.uptime import HOUR, bucket_start
from tests.unit.memory_tables import MemoryTable, memory_engine

PARTITIONS = 4
P = 2
H0 = bucket_start(time.time()) - 5 * HOUR


def heartbeat_ids(partition: int, how_many: int) -> list[str]:
    found = []
    for n in count():
        candidate = str(uuid.UUID(int=n + 1))
        if partition_for(candidate, PARTITIONS) == partition:
            found.append(candidate)
            if len(found) == how_many:
                return found


HB, HB_B = heartbeat_ids(P, 2)
ELSEWHERE = heartbeat_ids((P + 1) % PARTITIONS, 1)[0]


class Worker:
    """A heartbeats agent on one partition: folds messages at increasing offsets."""

    def __init__(self) -> None:
        self.engine = memory_engine(partitions=PARTITIONS)
        self.engine.heartbeat_data = MemoryTable("heartbeat_data")
        self.engine.heartbeats = MemoryTable("heartbeats")
        self.folder = HeartbeatFolder(self.engine, DeadLetters(self.engine.state))
        self.data = self.engine.heartbeat_data
        self.offsets = {partition: 0 for partition in range(PARTITIONS)}

    def fold(self, message, partition: int = P, timestamp: float | None = None) -> int:
        raw = message if isinstance(message, bytes) else orjson.dumps(message)
        offset = self.offsets[partition]
        self.offsets[partition] += 1
        self.folder.fold_message(partition, offset, raw, time.time() if timestamp is None else timestamp)
        return offset

    def redeliver(self, offset: int, message, partition: int = P) -> None:
        self.folder.fold_message(partition, offset, orjson.dumps(message), time.time())

    def configure(self, heartbeat_id: str = HB, at: float = H0, enabled: bool = True, **schedule) -> None:
        self.fold({"kind": "configure", "heartbeat_id": heartbeat_id, "at": at, "org_id": "org_1",
                   "service_id": "svc", "name": "backup", "enabled": enabled,
                   "schedule": {"interval": 60, "cron": None, "timezone": "UTC", "grace": 10, **schedule}})

    def check_in(self, received_at: float, result: str = "tick", heartbeat_id: str = HB, **fields) -> int:
        return self.fold({"checkins": [{"heartbeat_id": heartbeat_id, "result": result,
                                        "received_at": received_at, **fields}]})

    def tick(self, at: float) -> int:
        return self.fold({"kind": "tick", "at": at})

    def events(self) -> list[dict]:
        return [sent.body for sent in self.engine.state.on(topics.MONITOR_EVENTS)]

    def dead_letters(self) -> list[dict]:
        return [sent.body for sent in self.engine.state.on(topics.DEAD_LETTERS)]

    def runtime(self, heartbeat_id: str = HB):
        return self.data.get(P, runtime_key(heartbeat_id))

    def index(self) -> list[bytes]:
        low, high = due_range(2**62)
        return self.data.keys(P, low, high)


def test_check_ins_are_recorded_newest_first_with_what_clients_sent() -> None:
    worker = Worker()
    worker.configure()
    worker.check_in(H0 + 1, "run", rid="r1", source_ip="10.0.0.1")
    worker.check_in(H0 + 4.5, "complete", rid="r1", message="backup done", body="12 files")
    worker.check_in(H0 + 5, "log", body="just saying")
    rows = history(worker.data, P, HB, 10)
    assert [row["result"] for row in rows] == ["log", "complete", "run"]
    assert rows[1]["duration"] == 3.5 and rows[1]["message"] == "backup done" and rows[1]["body"] == "12 files"
    assert rows[2]["source_ip"] == "10.0.0.1" and rows[2]["rid"] == "r1" and rows[2]["body"] is None
    assert [row["seq"] for row in history(worker.data, P, HB, 10, before=H0 + 4.5)] == [0]


def test_a_redelivered_check_in_changes_nothing() -> None:
    worker = Worker()
    worker.configure()
    message = {"checkins": [{"heartbeat_id": HB, "received_at": H0 + 1}, {"heartbeat_id": HB, "received_at": H0 + 2}]}
    offset = worker.fold(message)
    worker.redeliver(offset, message)
    assert len(history(worker.data, P, HB, 10)) == 2
    assert worker.folder.duplicates == 2
    assert statistics(worker.data, P, HB, H0, H0 + HOUR, "1h")["meta"]["tick_count"] == 2


def test_a_due_deadline_goes_down_once_whatever_the_ticks() -> None:
    worker = Worker()
    worker.configure()
    worker.check_in(H0 + 10)                     # due at +70, late after grace: +80
    worker.tick(H0 + 80)                         # not yet: a check-in may still be on its way
    assert worker.events() == []
    offset = worker.tick(H0 + 80 + SETTLE + 0.01)
    worker.tick(H0 + 81)                         # a second tick (a rebalance, a slow first one)
    worker.redeliver(offset, {"kind": "tick", "at": H0 + 80 + SETTLE + 0.01})  # a replay after a crash
    events = worker.events()
    assert len(events) == 1
    down = events[0]
    assert down["event"] == "heartbeat.down" and down["cause"] == "missed" and down["at"] == H0 + 80
    assert down["id"] == f"{HB}:down:{int((H0 + 80) * 1000)}"
    assert (down["org_id"], down["service_id"], down["name"]) == ("org_1", "svc", "backup")
    assert worker.runtime().state.status == "down" and worker.index() == []
    worker.check_in(H0 + 90, message="back")
    assert [e["event"] for e in worker.events()] == ["heartbeat.down", "heartbeat.recovered"]
    assert worker.events()[1]["message"] == "back"


def test_a_check_in_before_the_tick_keeps_it_up() -> None:
    worker = Worker()
    worker.configure()
    worker.check_in(H0 + 10)
    worker.check_in(H0 + 75)                    # the deadline moves on; its index entry stays, earlier
    assert len(worker.index()) == 1
    worker.tick(H0 + 100)                        # the entry comes due: filed again at the new deadline
    assert worker.events() == [] and worker.runtime().state.status == "up"
    assert [parse_deadline_key(key)[0] for key in worker.index()] == [worker.runtime().state.deadline_ms]
    worker.tick(H0 + 156)
    assert [e["at"] for e in worker.events()] == [H0 + 145]


def test_frequent_check_ins_leave_the_index_alone() -> None:
    worker = Worker()
    worker.configure(interval=3600)
    worker.check_in(H0)
    entries = worker.index()
    for n in range(1, 50):
        worker.check_in(H0 + n)
    assert worker.index() == entries


def test_a_run_brings_the_deadline_forward_and_the_index_with_it() -> None:
    worker = Worker()
    worker.configure(interval=3600, grace=5)
    worker.check_in(H0)
    worker.check_in(H0 + 10, "run")
    assert [parse_deadline_key(key)[0] for key in worker.index()] == [int((H0 + 15) * 1000)]
    worker.tick(H0 + 16)
    assert [(e["cause"], e["at"]) for e in worker.events()] == [("run_timeout", H0 + 15)]


def test_fail_and_run_timeouts_make_events_with_deterministic_ids() -> None:
    worker = Worker()
    worker.configure(grace=5)
    fail_offset = worker.check_in(H0 + 1, "fail", message="exit 3")
    worker.check_in(H0 + 2, "complete")
    worker.check_in(H0 + 3, "run", rid="long")
    worker.tick(H0 + 9)
    events = worker.events()
    assert [(e["event"], e["cause"]) for e in events] == [
        ("heartbeat.down", "failed"), ("heartbeat.recovered", None), ("heartbeat.down", "run_timeout")]
    assert events[0]["id"] == f"{HB}:{fail_offset << 20}" and events[0]["message"] == "exit 3"


def test_ticks_expire_only_what_is_due_on_their_partition() -> None:
    worker = Worker()
    worker.configure(HB)
    worker.configure(HB_B, interval=3600)
    worker.check_in(H0, heartbeat_id=HB)
    worker.check_in(H0, heartbeat_id=HB_B)
    worker.tick(H0 + 200)
    assert [e["heartbeat_id"] for e in worker.events()] == [HB]
    assert worker.runtime(HB_B).state.status == "up"


def test_unknown_invalid_and_future_check_ins_are_dead_lettered() -> None:
    worker = Worker()
    worker.configure()
    worker.check_in(H0, heartbeat_id=HB_B)
    worker.fold({"checkins": [{"heartbeat_id": HB, "result": "sideways"}, {"heartbeat_id": "not-a-uuid"}]})
    worker.fold(b"{not json")
    worker.fold({"heartbeat_id": HB, "received_at": time.time() + 3600}, timestamp=time.time())
    reasons = [letter["reason"] for letter in worker.dead_letters()]
    assert reasons[0].startswith(f"unknown heartbeat {HB_B!r}")
    assert reasons[1:3] == ["invalid check-in", "invalid check-in"]
    assert "result" in worker.dead_letters()[1]["errors"] and "heartbeat_id" in worker.dead_letters()[2]["errors"]
    assert reasons[3].startswith("not JSON") and "future" in reasons[4]
    assert history(worker.data, P, HB, 10) == []


def test_a_check_in_without_received_at_takes_the_message_timestamp() -> None:
    worker = Worker()
    worker.configure()
    worker.fold({"heartbeat_id": HB}, timestamp=H0 + 42)
    assert worker.runtime().state.last_success_at == H0 + 42


def test_a_check_in_keyed_elsewhere_is_forwarded_home_with_its_time() -> None:
    worker = Worker()
    worker.fold({"heartbeat_id": ELSEWHERE, "result": "run"}, timestamp=H0 + 7)
    forwarded = worker.engine.state.on(topics.HEARTBEATS)
    assert len(forwarded) == 1 and forwarded[0].partition == (P + 1) % PARTITIONS
    assert forwarded[0].body == {"checkins": [{"heartbeat_id": ELSEWHERE, "result": "run", "received_at": H0 + 7}]}


def test_purge_removes_every_key_and_the_deadline_entry() -> None:
    worker = Worker()
    worker.configure()
    worker.check_in(H0, body="x")
    worker.configure(HB_B)
    worker.fold({"kind": "purge", "heartbeat_id": HB, "at": H0 + 1})
    start, stop = prefix(HB)
    assert worker.data.keys(P, start, stop) == [] and worker.index() == []
    assert worker.runtime(HB_B) is not None
    worker.check_in(H0 + 2)
    assert worker.dead_letters()[-1]["reason"].startswith("unknown heartbeat")


def test_history_keeps_the_last_thousand_and_their_bodies_only() -> None:
    worker = Worker()
    worker.configure(interval=10**6)
    total = CHUNK * (KEEP_CHUNKS + 4) + 3
    for n in range(total):
        worker.check_in(H0 + n, body=f"output {n}")
    rows = history(worker.data, P, HB, 2000)
    assert len(rows) == CHUNK * KEEP_CHUNKS + 3 >= 1000
    assert rows[0]["seq"] == total - 1 and rows[0]["body"] == f"output {total - 1}"
    assert rows[-1]["body"] == f"output {rows[-1]['seq']}"
    bodies = worker.data.keys(P, *kind_range(HB, b"p"))
    assert len(bodies) == len(rows)


def test_statistics_count_results_per_interval_and_measure_runs() -> None:
    worker = Worker()
    worker.configure(interval=3600, grace=3600)
    for n, (start, end) in enumerate([(0, 10), (5, 35), (40, 60)]):
        worker.check_in(H0 + start, "run", rid=f"r{n}")
        worker.check_in(H0 + end, "complete", rid=f"r{n}")
    worker.check_in(H0 + HOUR + 1, "tick")
    worker.check_in(H0 + HOUR + 2, "fail")
    worker.check_in(H0 + 2 * HOUR + 3, "log")
    stats = statistics(worker.data, P, HB, H0 - HOUR, H0 + 3 * HOUR, "1h")
    records = stats["data"]
    assert len(records) == 4 and records[0]["tick_count"] == 0
    first = records[1]
    assert (first["run_count"], first["complete_count"], first["tick_count"], first["fail_count"]) == (3, 3, 0, 0)
    assert first["mean_run_duration"] == 20.0  # exact: durations 10, 30 and 20 s
    assert abs(first["p95_run_duration"] - 30.0) <= 0.02 * 30.0  # histogram bins: within 2%
    assert (records[2]["tick_count"], records[2]["fail_count"], records[2]["mean_run_duration"]) == (1, 1, None)
    assert records[3]["tick_count"] == 0  # a log is history, not statistics
    assert stats["meta"]["measured_runs"] == 3 and stats["meta"]["complete_count"] == 3
    wide = statistics(worker.data, P, HB, H0, H0 + 3 * HOUR, "3h")
    assert len(wide["data"]) == 1 and wide["data"][0]["complete_count"] == 3 and wide["data"][0]["fail_count"] == 1


def test_a_late_check_in_for_a_sealed_hour_still_counts_once() -> None:
    worker = Worker()
    worker.configure(interval=3600)
    worker.check_in(H0 + 10)
    worker.check_in(H0 + HOUR + 10)              # seals the first hour
    message = {"checkins": [{"heartbeat_id": HB, "received_at": H0 + 20}]}  # a skewed API clock
    offset = worker.fold(message)
    worker.redeliver(offset, message)
    records = statistics(worker.data, P, HB, H0, H0 + 2 * HOUR, "1h")["data"]
    assert [r["tick_count"] for r in records] == [2, 1]


def test_configure_is_applied_once_and_disabling_pauses() -> None:
    worker = Worker()
    worker.configure()
    worker.check_in(H0)
    offset = worker.fold({"kind": "configure", "heartbeat_id": HB, "at": H0 + 1, "org_id": "org_1", "name": "b",
                          "enabled": False, "schedule": {"interval": 60, "grace": 10}})
    assert worker.runtime().state.status == "paused" and worker.runtime().state.deadline_ms is None
    worker.tick(H0 + 100)  # the old deadline's index entry comes due: nothing happens, and it goes
    assert worker.events() == [] and worker.index() == []
    worker.configure(at=H0 + 2)
    assert worker.runtime().state.status == "new"
    worker.redeliver(offset, {"kind": "configure", "heartbeat_id": HB, "at": H0 + 1, "org_id": "org_1",
                              "name": "b", "enabled": False, "schedule": {"interval": 60, "grace": 10}})
    assert worker.runtime().state.status == "new"
    worker.check_in(H0 + 3, "fail")
    assert worker.runtime().state.status == "down"
