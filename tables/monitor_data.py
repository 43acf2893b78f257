"""Everything the checks agent keeps for one monitor, under one key prefix.

Keys of the `monitor_data` table (all in the monitor's partition):

    <id> 00 's'                    runtime: state, current hour bucket, newest checks
    <id> 00 'b' <hour, 8 bytes>    a sealed hourly statistics bucket
    <id> 00 'c' <n, 8 bytes>       the n-th sealed chunk of CHUNK recent check results
    <id> 00 'h' <ms, 8 bytes> <pos, 8 bytes>   one state change
    00 'd' <ms, 8 bytes> <id>      the partition's due index: which monitor wakes when (a region due to
                                   go stale, a maintenance window starting or ending)

Monitor ids never start with 00, so the due index is a key range of its own
and a tick reads only what is due. A monitor's entry (the runtime's
`indexed_ms`) is at or before the earliest moment it is due; an entry that
turns out early is filed again when it comes due, so a monitor reporting every
10 s moves its entry about once per staleness period, not once per result.
The entry is written before the runtime that refers to it, so a crash never
leaves a runtime pointing at no entry.

The runtime is the one value written for every result; hour buckets and chunks
are sealed into keys of their own when full, so a flush writes about one record
per monitor however many results it applied. Every value remembers the source
position (`pos`) it last applied: a redelivered result is recognised and skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tables.entity_keys import (  # noqa: F401
    SEP, DueIndex, chunk_key, kind_range, numbered_key, position, prefix, runtime_key,
)
from tables.monitor_state import MonitorState, Transition, apply_result, note_seen, pause, resume
from tables.uptime import UptimeBucket, bucket_start

CHUNK = 25           # results per sealed chunk of recent checks
KEEP_CHUNKS = 21     # sealed chunks kept: with the open one, at least 500 results
DUE_INDEX = DueIndex(b"\x00d")   # see above; 00 'u' holds the usage counters (tables/usage.py)
MAINTENANCE = "maintenance"   # a recent check's status inside a maintenance window


def bucket_key(monitor_id: str, start: int) -> bytes:
    return numbered_key(monitor_id, b"b", start)


def change_key(monitor_id: str, at: float, pos: int) -> bytes:
    return monitor_id.encode() + SEP + b"h" + int(at * 1000).to_bytes(8, "big") + pos.to_bytes(8, "big")


@dataclass(slots=True)
class CheckRow:
    """A recent check as the checks endpoint shows it (stored as a compact list)."""

    id: str
    checked_at: float
    region: str
    status: str
    response_time_ms: float | None
    status_code: int | None
    cause: str | None
    probe: str | None = None
    #: what the probe reported; `status` says "maintenance" instead inside a window
    reported_status: str | None = None
    #: where a probe's check spent its time: {"dns_ms": .., "connect_ms": .., "tls_ms": .., "ttfb_ms": .., "total_ms": ..}
    timings: dict[str, float] | None = None

    def to_list(self) -> list:
        row = [self.id, self.checked_at, self.region, self.status, self.response_time_ms, self.status_code, self.cause,
               self.probe, self.reported_status or self.status]
        if self.timings:
            row.append(self.timings)  # only probes' results have them: the others' rows stay short
        return row


@dataclass(slots=True)
class Applied:
    """What one result changed beyond the runtime itself."""

    transition: Transition | None = None
    sealed_bucket: UptimeBucket | None = None
    sealed_chunk: tuple[int, list] | None = None   # (number, rows)
    expired_chunk: int | None = None


@dataclass(slots=True)
class MonitorRuntime:
    pos: int = -1
    state: MonitorState = field(default_factory=MonitorState)
    bucket: UptimeBucket | None = None
    recent: list = field(default_factory=list)
    sealed_chunks: int = 0
    #: the maintenance window announced as started and not yet as ended: {"start": s, "end": e}
    maintenance: dict | None = None
    #: this monitor's due index entry (ms): at or before the earliest moment it is due
    indexed_ms: int | None = None

    def apply(self, row: CheckRow, pos: int, config: dict[str, Any], in_maintenance: bool = False,
              heard_at: float | None = None) -> Applied:
        """Fold one result in: state machine, this hour's statistics, recent checks.

        `heard_at`: when the result arrived (its region's probe is alive); default its checked_at.

        A result inside a maintenance window is kept (recent checks, as "maintenance", and counted apart
        in its hour) and proves its probe alive, but changes no state.
        """
        applied = Applied()
        self.pos = pos
        spec = config["spec"]
        if in_maintenance:
            row.reported_status, row.status = row.status, MAINTENANCE
            note_seen(self.state, region=row.region, heard_at=row.checked_at if heard_at is None else heard_at,
                      probe=row.probe)
        else:
            applied.transition = apply_result(
                self.state,
                region=row.region,
                status=row.status,
                checked_at=row.checked_at,
                cause=row.cause,
                grace_period=spec.get("grace_period", 0),
                recovery_period=spec.get("recovery_period", 0),
                configured_regions=spec.get("regions") or (),
                probe=row.probe,
                heard_at=heard_at,
            )
        hour = bucket_start(row.checked_at)
        if self.bucket is None or hour == self.bucket.start:
            self.bucket = self.bucket or UptimeBucket(start=hour)
            self.bucket.add(row.status, row.response_time_ms, row.timings)
        elif hour > self.bucket.start:
            applied.sealed_bucket = self.bucket
            self.bucket = UptimeBucket(start=hour)
            self.bucket.add(row.status, row.response_time_ms, row.timings)
        # an older hour's result is added to its sealed bucket by the agent
        self.recent.append(row.to_list())
        if len(self.recent) >= CHUNK:
            applied.sealed_chunk = (self.sealed_chunks, self.recent)
            self.recent = []
            self.sealed_chunks += 1
            if self.sealed_chunks > KEEP_CHUNKS:
                applied.expired_chunk = self.sealed_chunks - KEEP_CHUNKS - 1
        return applied

    def pause(self, pos: int, at: float) -> None:
        self.pos = pos
        pause(self.state, at)

    def resume(self, pos: int, at: float) -> None:
        self.pos = pos
        resume(self.state, at)

    def to_dict(self) -> dict:
        return {
            "pos": self.pos,
            "state": self.state.to_dict(),
            "bucket": None if self.bucket is None else self.bucket.to_dict(),
            "recent": self.recent,
            "sealed_chunks": self.sealed_chunks,
            "maintenance": self.maintenance,
            "indexed_ms": self.indexed_ms,
        }

    @classmethod
    def from_dict(cls, d: dict) -> MonitorRuntime:
        return cls(
            pos=d["pos"],
            state=MonitorState.from_dict(d["state"]),
            bucket=None if d["bucket"] is None else UptimeBucket.from_dict(d["bucket"]),
            recent=d["recent"],
            sealed_chunks=d["sealed_chunks"],
            maintenance=d.get("maintenance"),
            indexed_ms=d.get("indexed_ms"),
        )


@dataclass(slots=True)
class SealedBucket:
    """An hour bucket in its own key, with the position it last applied (late results)."""

    pos: int
    bucket: UptimeBucket

    def to_dict(self) -> dict:
        return {"pos": self.pos, "bucket": self.bucket.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> SealedBucket:
        return cls(pos=d["pos"], bucket=UptimeBucket.from_dict(d["bucket"]))


def decode_value(key: bytes, raw: bytes) -> Any:
    """monitor_data holds several kinds of value; the key says which."""
    data = orjson.loads(raw)
    kind = key[key.index(SEP) + 1 : key.index(SEP) + 2]
    if kind == b"s":
        return MonitorRuntime.from_dict(data)
    if kind == b"b":
        return SealedBucket.from_dict(data)
    return data


def encode_value(value: Any) -> bytes:
    return orjson.dumps(value.to_dict() if hasattr(value, "to_dict") else value)
