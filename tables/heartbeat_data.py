"""Everything the heartbeats agent keeps, in the `heartbeat_data` table.

Keys (all in the heartbeat's partition):

    <id> 00 's'                    runtime: configuration copy, state, this hour's counts, newest events
    <id> 00 'b' <hour, 8 bytes>    a sealed hourly statistics bucket
    <id> 00 'c' <n, 8 bytes>       the n-th sealed chunk of CHUNK events (history)
    <id> 00 'p' <seq, 8 bytes>     the request body of event number seq, when it had one
    00 <deadline ms, 8 bytes> <id> the partition's deadline index: who goes down when

Heartbeat ids are UUIDs, so no id starts with 00 and the deadline index is a
key range of its own: a tick reads only the entries that are due. A
heartbeat's entry (the runtime's `indexed_ms`) is at or before its deadline,
and written before the runtime that refers to it; a flush sends a partition's
records in that order, so a crash never leaves a deadline without its entry.

The runtime keeps its own copy of the schedule (from the last `configure`
message), so applying a message depends on nothing but the messages before
it: a replay gives the same result. Every value remembers the source position
(`pos`) it last applied, so a redelivered check-in changes nothing.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tables.entity_keys import SEP, DueIndex, chunk_key, kind_range, numbered_key, prefix, runtime_key  # noqa: F401
from tables.heartbeat_schedule import Schedule
from tables.heartbeat_state import COMPLETE, FAIL, RUN, TICK, CheckInOutcome, HeartbeatState
from tables.uptime import bucket_start, histogram_bin, percentile

CHUNK = 25            # events per sealed chunk of history
KEEP_CHUNKS = 40      # sealed chunks kept: with the open one, at least the last 1,000 events
DEADLINES = b"\x00"   # first byte of every deadline index key
COUNTED = (TICK, RUN, COMPLETE, FAIL)
#: the stored event row, in order (a compact list per event)
EVENT_FIELDS = ("seq", "received_at", "result", "message", "source_ip", "duration", "rid", "exit_status",
                "body_bytes")


def bucket_key(heartbeat_id: str, hour: int) -> bytes:
    return numbered_key(heartbeat_id, b"b", hour)


def body_key(heartbeat_id: str, seq: int) -> bytes:
    return numbered_key(heartbeat_id, b"p", seq)


DEADLINE_INDEX = DueIndex(DEADLINES)
deadline_key = DEADLINE_INDEX.key
due_range = DEADLINE_INDEX.until
parse_deadline_key = DEADLINE_INDEX.parse


@dataclass(slots=True)
class HeartbeatBucket:
    """One hour of check-ins: counts by result and the durations of the runs that ended in it."""

    start: int
    tick: int = 0
    run: int = 0
    complete: int = 0
    fail: int = 0
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_min: float | None = None
    duration_max: float | None = None
    histogram: dict[int, int] = field(default_factory=dict)  # log-scale bins of milliseconds (tables/uptime.py)

    def add(self, result: str, duration: float | None) -> None:
        if result not in COUNTED:
            return
        setattr(self, result, getattr(self, result) + 1)
        if duration is None or not math.isfinite(duration):
            return
        self.duration_count += 1
        self.duration_sum += duration
        if self.duration_min is None or duration < self.duration_min:
            self.duration_min = duration
        if self.duration_max is None or duration > self.duration_max:
            self.duration_max = duration
        index = histogram_bin(duration * 1000)
        self.histogram[index] = self.histogram.get(index, 0) + 1

    def merge(self, other: HeartbeatBucket) -> None:
        for name in COUNTED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.duration_count += other.duration_count
        self.duration_sum += other.duration_sum
        if other.duration_min is not None and (self.duration_min is None or other.duration_min < self.duration_min):
            self.duration_min = other.duration_min
        if other.duration_max is not None and (self.duration_max is None or other.duration_max > self.duration_max):
            self.duration_max = other.duration_max
        for index, count in other.histogram.items():
            self.histogram[index] = self.histogram.get(index, 0) + count

    def mean_duration(self) -> float | None:
        return round(self.duration_sum / self.duration_count, 3) if self.duration_count else None

    def duration_percentile(self, q: float) -> float | None:
        low = None if self.duration_min is None else self.duration_min * 1000
        high = None if self.duration_max is None else self.duration_max * 1000
        value = percentile(self.histogram, q, min_value=low, max_value=high)
        return None if value is None else round(value / 1000, 3)

    def to_dict(self) -> dict:
        return {"start": self.start, "tick": self.tick, "run": self.run, "complete": self.complete,
                "fail": self.fail, "duration_count": self.duration_count, "duration_sum": self.duration_sum,
                "duration_min": self.duration_min, "duration_max": self.duration_max,
                "histogram": {str(index): count for index, count in self.histogram.items()}}

    @classmethod
    def from_dict(cls, d: Mapping) -> HeartbeatBucket:
        return cls(start=int(d["start"]), tick=d.get("tick", 0), run=d.get("run", 0),
                   complete=d.get("complete", 0), fail=d.get("fail", 0),
                   duration_count=d.get("duration_count", 0), duration_sum=d.get("duration_sum", 0.0),
                   duration_min=d.get("duration_min"), duration_max=d.get("duration_max"),
                   histogram={int(index): int(count) for index, count in (d.get("histogram") or {}).items()})


def merged(buckets: Iterable[HeartbeatBucket], start: int = 0) -> HeartbeatBucket:
    total = HeartbeatBucket(start=start)
    for bucket in buckets:
        total.merge(bucket)
    return total


@dataclass(slots=True)
class SealedBucket:
    """An hour bucket in its own key, with the position it last applied (late check-ins)."""

    pos: int
    bucket: HeartbeatBucket

    def to_dict(self) -> dict:
        return {"pos": self.pos, "bucket": self.bucket.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> SealedBucket:
        return cls(pos=d["pos"], bucket=HeartbeatBucket.from_dict(d["bucket"]))


@dataclass(slots=True)
class Recorded:
    """What one check-in changed beyond the runtime itself."""

    outcome: CheckInOutcome
    row: list
    sealed_bucket: HeartbeatBucket | None = None
    sealed_chunk: tuple[int, list] | None = None   # (number, rows)
    expired_chunk: int | None = None
    late_hour: int | None = None                    # an hour already sealed, for the agent to add to


@dataclass(slots=True)
class HeartbeatRuntime:
    pos: int = -1
    org_id: str = ""
    service_id: str | None = None
    name: str = ""
    enabled: bool = True
    schedule: Schedule = field(default_factory=Schedule)
    state: HeartbeatState = field(default_factory=HeartbeatState)
    bucket: HeartbeatBucket | None = None   # the newest hour's counts
    recent: list = field(default_factory=list)  # events not yet sealed into a chunk, oldest first
    seq: int = 0                             # events recorded so far
    sealed_chunks: int = 0
    indexed_ms: int | None = None            # this heartbeat's deadline index entry: at or before its deadline

    def configure(self, message: dict, pos: int) -> None:
        """Apply a `configure` control message from the commands agent."""
        self.pos = pos
        self.org_id = message["org_id"]
        self.service_id = message.get("service_id")
        self.name = message.get("name") or ""
        self.enabled = bool(message.get("enabled", True))
        self.schedule = Schedule.from_dict(message["schedule"])
        self.state.configure(self.schedule, self.enabled, float(message["at"]))

    def record(self, pos: int, *, result: str, received_at: float, message: str | None = None,
               rid: str | None = None, source_ip: str | None = None, exit_status: int | None = None,
               body_bytes: int = 0, reported_duration: float | None = None) -> Recorded:
        """Fold one check-in in: state machine, this hour's counts, history."""
        self.pos = pos
        outcome = self.state.check_in(self.schedule, result, received_at, rid)
        seq = self.seq
        self.seq += 1
        duration = outcome.duration if outcome.duration is not None else reported_duration
        row = [seq, received_at, outcome.result, message, source_ip, duration, rid, exit_status, body_bytes]
        recorded = Recorded(outcome=outcome, row=row)
        hour = bucket_start(received_at)
        if self.bucket is None or hour == self.bucket.start:
            self.bucket = self.bucket or HeartbeatBucket(start=hour)
            self.bucket.add(outcome.result, outcome.duration)
        elif hour > self.bucket.start:
            recorded.sealed_bucket = self.bucket
            self.bucket = HeartbeatBucket(start=hour)
            self.bucket.add(outcome.result, outcome.duration)
        else:
            recorded.late_hour = hour
        self.recent.append(row)
        if len(self.recent) >= CHUNK:
            recorded.sealed_chunk = (self.sealed_chunks, self.recent)
            self.recent = []
            self.sealed_chunks += 1
            if self.sealed_chunks > KEEP_CHUNKS:
                recorded.expired_chunk = self.sealed_chunks - KEEP_CHUNKS - 1
        return recorded

    def to_dict(self) -> dict:
        return {
            "pos": self.pos,
            "org_id": self.org_id,
            "service_id": self.service_id,
            "name": self.name,
            "enabled": self.enabled,
            "schedule": self.schedule.to_dict(),
            "state": self.state.to_dict(),
            "bucket": None if self.bucket is None else self.bucket.to_dict(),
            "recent": self.recent,
            "seq": self.seq,
            "sealed_chunks": self.sealed_chunks,
            "indexed_ms": self.indexed_ms,
        }

    @classmethod
    def from_dict(cls, d: dict) -> HeartbeatRuntime:
        return cls(
            pos=d["pos"],
            org_id=d["org_id"],
            service_id=d.get("service_id"),
            name=d.get("name", ""),
            enabled=d.get("enabled", True),
            schedule=Schedule.from_dict(d["schedule"]),
            state=HeartbeatState.from_dict(d["state"]),
            bucket=None if d.get("bucket") is None else HeartbeatBucket.from_dict(d["bucket"]),
            recent=d.get("recent", []),
            seq=d.get("seq", 0),
            sealed_chunks=d.get("sealed_chunks", 0),
            indexed_ms=d.get("indexed_ms"),
        )


def decode_value(key: bytes, raw: bytes) -> Any:
    """heartbeat_data holds several kinds of value; the key says which."""
    data = orjson.loads(raw)
    if key[:1] == DEADLINES:
        return data
    kind = key[key.index(SEP) + 1: key.index(SEP) + 2]
    if kind == b"s":
        return HeartbeatRuntime.from_dict(data)
    if kind == b"b":
        return SealedBucket.from_dict(data)
    return data


def encode_value(value: Any) -> bytes:
    return orjson.dumps(value.to_dict() if hasattr(value, "to_dict") else value)
