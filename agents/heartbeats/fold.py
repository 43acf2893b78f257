"""heartbeats → per-heartbeat state, history, statistics → monitor-events.

Reads top to bottom as the stream goes:

1. the topic: `heartbeats`, check-ins (one, a list, or `{"checkins": [...]}`,
   keyed by heartbeat id) plus control messages other actors send instead of
   writing this agent's state (invariant 1): `configure` and `purge` from the
   commands agent, `tick` from the deadline timer (agents/heartbeats/__init__.py);
2. the state: `heartbeat_data` (tables/heartbeat_data.py): each heartbeat's
   runtime, hourly buckets, history chunks and request bodies, and each
   partition's deadline index;
3. the transitions: tables/heartbeat_state.py and tables/heartbeat_schedule.py, pure;
4. the events: `heartbeat.down` / `heartbeat.recovered` on `monitor-events`;
   unusable input on `dead-letters`.

Time goes through the topic (invariant 3): the timer looks at the deadline
index of the partitions this worker owns and, when an entry is due, sends a
`tick` carrying its clock to that partition; the agent then expires what the
tick says is due. Expiring compares and sets the deadline, and the event id
derives from the deadline, so a repeated tick, a rebalance or a replay after a
crash never makes a transition twice.
"""
from __future__ import annotations

from typing import Any

import orjson

from engine import topics
from engine.dead_letters import DeadLetters
from engine.folding import EntityFold, Ingest
from engine.partitioning import entity_key
from schemas.heartbeat import CheckIn
from tables.heartbeat_data import (
    DEADLINE_INDEX, HeartbeatBucket, HeartbeatRuntime, Recorded, SealedBucket, body_key, bucket_key, chunk_key,
    deadline_key, kind_range, prefix, runtime_key,
)
from tables.heartbeat_state import Transition
from tables.entity_keys import position

TAKE = 200                 # messages folded per flush at most
WITHIN = 0.05              # the longest a tick waits in a batch before it is applied (seconds)
SETTLE = 0.1               # a check-in stamped just before a deadline may still be on its way (seconds)
FUTURE_TOLERANCE = 300.0   # seconds a producer's received_at may be ahead of the message's timestamp
DUE_PER_TICK = 5000        # deadlines one tick expires at most; the next tick takes the rest


class HeartbeatFolder(EntityFold):
    """Folds messages of owned partitions of `heartbeats` into heartbeat_data."""

    ingest = Ingest(topics.HEARTBEATS, "checkins", CheckIn, "heartbeat_id", "check-in",
                    "heartbeat", "/v1/heartbeats", control_kinds=frozenset({"configure", "purge", "tick"}))

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        super().__init__(engine.state, engine.settings.partitions, dead_letters)
        self.data = engine.heartbeat_data
        self.retention = engine.settings.retention_days * 86400
        self.expired = 0
        self.ticks_applied: dict[int, float] = {}  # partition -> `at` of the last tick applied

    def health(self) -> dict:
        return {"checkins_applied": self.applied, "checkins_redelivered_and_skipped": self.duplicates,
                "deadlines_expired": self.expired, "dead_letters": self.dead_letters.counts.get("heartbeats", 0)}

    # -- 1. the topic ---------------------------------------------------------

    def fold_control(self, partition: int, offset: int, message: dict) -> None:
        kind = message["kind"]
        if kind == "tick":
            self.expire_due(partition, offset, float(message["at"]))
            self.ticks_applied[partition] = float(message["at"])
        elif kind == "configure":
            self.configure(partition, offset, message)
        else:
            self.purge(partition, str(message["heartbeat_id"]))

    # -- 2. the state ---------------------------------------------------------

    def configure(self, partition: int, offset: int, message: dict) -> None:
        heartbeat_id = str(message["heartbeat_id"])
        key = runtime_key(heartbeat_id)
        runtime = self.data.get(partition, key) or HeartbeatRuntime()
        pos = position(offset, 0)
        if runtime.pos >= pos:
            return
        runtime.configure(message, pos)
        self.reindex(partition, heartbeat_id, runtime)
        self.data.put(partition, key, runtime)

    def purge(self, partition: int, heartbeat_id: str) -> None:
        runtime = self.data.get(partition, runtime_key(heartbeat_id))
        if runtime is not None and runtime.indexed_ms is not None:
            self.data.delete(partition, deadline_key(runtime.indexed_ms, heartbeat_id))
        start, stop = prefix(heartbeat_id)
        for key in self.data.keys(partition, start, stop):
            self.data.delete(partition, key)

    def reindex(self, partition: int, heartbeat_id: str, runtime: HeartbeatRuntime) -> None:
        """Keep an index entry at or before the heartbeat's deadline, so a tick wakes it in time.

        An earlier entry is left as it is: a job checking in every minute would
        otherwise move its entry every minute. When it comes due, the tick finds
        the deadline moved on and files the entry again at the new deadline.
        """
        deadline, indexed = runtime.state.deadline_ms, runtime.indexed_ms
        if deadline is None or (indexed is not None and indexed <= deadline):
            return
        if indexed is not None:
            self.data.delete(partition, deadline_key(indexed, heartbeat_id))
        self.data.put(partition, deadline_key(deadline, heartbeat_id), 1)
        runtime.indexed_ms = deadline

    # -- 3. the transitions ---------------------------------------------------

    def forwarded(self, checkin: CheckIn, raw: Any, org_id: str | None, derived_id: str, timestamp: float) -> dict:
        body = checkin.model_dump(exclude_none=True)
        body.setdefault("received_at", timestamp)
        return {"checkins": [body]}

    def known(self, partition: int, heartbeat_id: str, checkin: CheckIn, org_id: str | None,
              timestamp: float) -> tuple[HeartbeatRuntime, bytes, HeartbeatRuntime] | str:
        key = runtime_key(heartbeat_id)
        runtime = self.data.get(partition, key)  # it keeps a copy of the heartbeat's configuration
        if runtime is None:
            return self.unknown(heartbeat_id)
        if received_at(checkin, timestamp) > timestamp + FUTURE_TOLERANCE:
            return "received_at is in the future: check the producer's clock"
        return runtime, key, runtime

    def apply(self, partition: int, offset: int, index: int, checkin: CheckIn, config: HeartbeatRuntime, key: bytes,
              runtime: HeartbeatRuntime, pos: int, timestamp: float) -> None:
        heartbeat_id = checkin.heartbeat_id
        body = checkin.body or ""
        recorded = runtime.record(
            pos, result=checkin.result, received_at=received_at(checkin, timestamp), message=checkin.message,
            rid=checkin.rid, source_ip=checkin.source_ip, exit_status=checkin.exit_status,
            body_bytes=len(body.encode()), reported_duration=checkin.duration)
        # derived keys first: a flush that stops half way never holds a runtime without them
        if body:
            self.data.put(partition, body_key(heartbeat_id, recorded.row[0]), body)
        if recorded.sealed_bucket is not None:
            self.data.put(partition, bucket_key(heartbeat_id, recorded.sealed_bucket.start),
                          SealedBucket(pos, recorded.sealed_bucket))
            self.expire_buckets(partition, heartbeat_id, recorded.sealed_bucket.start)
        if recorded.late_hour is not None:
            self.fold_late(partition, heartbeat_id, recorded, pos)
        if recorded.sealed_chunk is not None:
            number, rows = recorded.sealed_chunk
            self.data.put(partition, chunk_key(heartbeat_id, number), rows)
        if recorded.expired_chunk is not None:
            self.drop_chunk(partition, heartbeat_id, recorded.expired_chunk)
        self.reindex(partition, heartbeat_id, runtime)
        if recorded.outcome.transition is not None:
            self.announce(partition, heartbeat_id, runtime, recorded.outcome.transition, f"{heartbeat_id}:{pos}",
                          checkin.message)
        self.data.put(partition, key, runtime)
        self.applied += 1

    def expire_due(self, partition: int, offset: int, at: float) -> None:
        """A tick: every heartbeat whose deadline is due by the tick's clock goes down, once."""
        pos = position(offset, 0)
        due_ms = int((at - SETTLE) * 1000)
        for entry, indexed_ms, heartbeat_id in DEADLINE_INDEX.due(self.data, partition, due_ms, DUE_PER_TICK):
            key = runtime_key(heartbeat_id)
            runtime = self.data.get(partition, key)
            if runtime is None or runtime.indexed_ms != indexed_ms:
                self.data.delete(partition, entry)
                continue  # purged, or filed again elsewhere, meanwhile
            runtime.indexed_ms = None
            runtime.pos = max(runtime.pos, pos)
            deadline_ms = runtime.state.deadline_ms
            if deadline_ms is not None and deadline_ms <= due_ms:
                transition = runtime.state.expire(runtime.schedule, deadline_ms)  # compare-and-set
                if transition is not None:
                    self.announce(partition, heartbeat_id, runtime, transition, f"{heartbeat_id}:down:{deadline_ms}")
                    self.expired += 1
            self.reindex(partition, heartbeat_id, runtime)  # the deadline moved on, or a new one follows
            self.data.put(partition, key, runtime)
            if runtime.indexed_ms != indexed_ms:  # unless filed again at the same moment
                self.data.delete(partition, entry)  # after the runtime: see DueIndex.due

    def fold_late(self, partition: int, heartbeat_id: str, recorded: Recorded, pos: int) -> None:
        """A check-in stamped in an hour already sealed (clocks of API processes differ) still counts."""
        hour = recorded.late_hour
        key = bucket_key(heartbeat_id, hour)
        sealed = self.data.get(partition, key) or SealedBucket(-1, HeartbeatBucket(start=hour))
        if sealed.pos >= pos:
            return
        sealed.pos = pos
        sealed.bucket.add(recorded.outcome.result, recorded.outcome.duration)
        self.data.put(partition, key, sealed)

    def expire_buckets(self, partition: int, heartbeat_id: str, newest_hour: int) -> None:
        """Retention, paid as each hour is sealed: buckets older than retention_days go."""
        low, high = kind_range(heartbeat_id, b"b", 0, max(0, newest_hour - self.retention))
        for key in self.data.keys(partition, low, high):
            self.data.delete(partition, key)

    def drop_chunk(self, partition: int, heartbeat_id: str, number: int) -> None:
        """History keeps the newest chunks; the oldest goes with the bodies of its events."""
        key = chunk_key(heartbeat_id, number)
        for row in self.data.get(partition, key) or []:
            if row[-1]:
                self.data.delete(partition, body_key(heartbeat_id, row[0]))
        self.data.delete(partition, key)

    # -- 4. the events --------------------------------------------------------

    def announce(self, partition: int, heartbeat_id: str, runtime: HeartbeatRuntime, transition: Transition,
                 event_id: str, message: str | None = None) -> None:
        event = {
            "id": event_id,
            "event": transition.kind,
            "heartbeat_id": heartbeat_id,
            "org_id": runtime.org_id,
            "service_id": runtime.service_id,
            "name": runtime.name,
            "at": transition.at,
            "previous_status": transition.previous,
            "status": transition.current,
            "cause": transition.cause,
            "message": message,
        }
        self.state.emit(topics.MONITOR_EVENTS, entity_key(heartbeat_id), orjson.dumps(event), partition)



def received_at(checkin: CheckIn, timestamp: float) -> float:
    """When the check-in was received: as the API stamped it, else when Kafka got it."""
    return checkin.received_at if checkin.received_at is not None else timestamp
