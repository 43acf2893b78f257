"""check-results → per-monitor runtime, statistics, recent checks → monitor-events.

Reads top to bottom as the stream goes:

1. the topic: `check-results`, one result or an envelope of results per message,
   plus control messages (`pause`, `resume`, `purge`, `tick`) other actors send
   to the partition instead of writing its state (invariant 1);
2. the state: `monitor_data` (tables/monitor_data.py), read-only `monitors`;
   per organisation, the checks this partition folded each hour (tables/usage.py),
   counted once per message;
3. the transitions: tables/monitor_state.py and tables/uptime.py, pure;
4. the events: `monitor.down` / `monitor.recovered` on `monitor-events`, kept in
   the state-change history too; unusable input on `dead-letters`.

Batches of messages are folded into the write-behind cache and flushed before
their offsets are acked; positions make redelivery harmless.
"""
from __future__ import annotations

import time
from typing import Any

import orjson

from engine import topics
from engine.dead_letters import DeadLetters
from engine.folding import EntityFold, Ingest
from engine.partitioning import entity_key
from schemas.check_result import CheckResult
from tables.monitor_data import (
    CheckRow, MonitorRuntime, SealedBucket, bucket_key, change_key, chunk_key, kind_range, position, prefix,
    runtime_key,
)
from tables.monitor_state import PAUSED
from tables.uptime import UptimeBucket, bucket_start
from tables.usage import add_checks, checks_counter, expired_checks_counters

TAKE = 200                 # messages folded per flush at most
FUTURE_TOLERANCE = 300.0   # seconds a probe's clock may run ahead of ours


class CheckFolder(EntityFold):
    """Folds check-result messages of owned partitions into monitor_data."""

    ingest = Ingest(topics.CHECK_RESULTS, "results", CheckResult, "monitor_id", "check result",
                    "monitor", "/v1/monitors", control_kinds=frozenset({"pause", "resume", "purge", "tick"}))

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        super().__init__(engine.state, engine.settings.partitions, dead_letters)
        self.data = engine.monitor_data
        self.monitors = engine.monitors
        self.retention = engine.settings.retention_days * 86400
        self.now = time.time()  # refreshed per message, not per result
        self.future_limit = self.now + FUTURE_TOLERANCE
        #: org -> [its checks counter, or None when this message was counted before; results applied]
        self.counting: dict[str, list] = {}

    def health(self) -> dict:
        return {"results_applied": self.applied, "results_redelivered_and_skipped": self.duplicates,
                "dead_letters": dict(self.dead_letters.counts)}

    def begin_message(self) -> None:
        self.now = time.time()
        self.future_limit = self.now + FUTURE_TOLERANCE

    def end_message(self, offset: int) -> None:
        self.count_checks(offset)

    def count_checks(self, offset: int) -> None:
        for counter, applied in self.counting.values():
            if counter is not None:
                add_checks(counter, offset, self.now, applied)
        self.counting.clear()

    def forwarded(self, result: CheckResult, raw: Any, org_id: str | None, derived_id: str, timestamp: float) -> dict:
        body = result.model_dump()
        body["id"] = result.id or derived_id
        return {"results": [body]} if org_id is None else {"org_id": org_id, "results": [body]}

    def known(self, partition: int, monitor_id: str, result: CheckResult, org_id: str | None,
              timestamp: float) -> tuple[dict, bytes, MonitorRuntime] | str:
        config = self.monitors.get(partition, entity_key(monitor_id))
        if config is None or (org_id is not None and config["org_id"] != org_id):
            return self.unknown(monitor_id)
        if result.checked_at > self.future_limit:
            return "checked_at is in the future: check the probe's clock"
        key = runtime_key(monitor_id)
        return config, key, self.data.get(partition, key) or MonitorRuntime()

    def apply(self, partition: int, offset: int, index: int, result: CheckResult, config: dict, key: bytes,
              runtime: MonitorRuntime, pos: int, timestamp: float) -> None:
        monitor_id = result.monitor_id
        if runtime.state.status == PAUSED:
            # paused by the control message, which sits in this partition in order with the results
            runtime.pos = pos
            self.data.put(partition, key, runtime)
            return
        # one more applied result; the organisation's counter is placed before the first runtime it counts
        org_id = config["org_id"]
        counting = self.counting.get(org_id)
        if counting is None:
            counting = self.counting[org_id] = [checks_counter(self.data, partition, org_id, offset), 0]
        counting[1] += 1
        row = CheckRow(
            id=result.id or f"{partition}-{offset}-{index}",
            checked_at=result.checked_at,
            region=result.region,
            status=result.status,
            response_time_ms=result.response_time_ms,
            status_code=result.status_code,
            cause=result.cause,
        )
        current_hour = None if runtime.bucket is None else runtime.bucket.start
        applied = runtime.apply(row, pos, config)
        if current_hour is not None and bucket_start(row.checked_at) < current_hour:
            self.fold_late(partition, monitor_id, row, pos)
        # derived keys first: a flush that stops half way never holds a runtime without them
        if applied.sealed_bucket is not None:
            self.data.put(partition, bucket_key(monitor_id, applied.sealed_bucket.start),
                          SealedBucket(pos, applied.sealed_bucket))
        if applied.sealed_chunk is not None:
            number, rows = applied.sealed_chunk
            self.data.put(partition, chunk_key(monitor_id, number), rows)
        if applied.expired_chunk is not None:
            self.data.delete(partition, chunk_key(monitor_id, applied.expired_chunk))
        if applied.transition is not None:
            self.record_change(partition, monitor_id, config, applied.transition, pos)
        self.data.put(partition, key, runtime)
        self.applied += 1

    def fold_late(self, partition: int, monitor_id: str, row: CheckRow, pos: int) -> None:
        """A result for an hour already sealed (probes buffer and retry) still counts."""
        hour = bucket_start(row.checked_at)
        if hour < time.time() - self.retention:
            return
        key = bucket_key(monitor_id, hour)
        sealed = self.data.get(partition, key) or SealedBucket(-1, UptimeBucket(start=hour))
        if sealed.pos >= pos:
            return
        sealed.pos = pos
        sealed.bucket.add(row.status, row.response_time_ms)
        self.data.put(partition, key, sealed)

    def record_change(self, partition: int, monitor_id: str, config: dict, transition: Any, pos: int) -> None:
        change = {
            "id": f"{monitor_id}:{pos}",
            "event": transition.kind,
            "monitor_id": monitor_id,
            "org_id": config["org_id"],
            "at": transition.at,
            "previous_status": transition.previous,
            "status": transition.current,
            "cause": transition.cause,
            "regions": transition.regions,
        }
        self.data.put(partition, change_key(monitor_id, transition.at, pos), change)
        self.state.emit(topics.MONITOR_EVENTS, entity_key(monitor_id), orjson.dumps(change), partition)

    def fold_control(self, partition: int, offset: int, message: dict) -> None:
        kind = message["kind"]
        pos = position(offset, 0)
        if kind == "tick":
            self.expire(partition, float(message.get("at") or time.time()))
            return
        monitor_id = str(message.get("monitor_id"))
        if kind == "purge":
            start, stop = prefix(monitor_id)
            for key in self.data.keys(partition, start, stop):
                self.data.delete(partition, key)
            return
        key = runtime_key(monitor_id)
        runtime = self.data.get(partition, key) or MonitorRuntime()
        if runtime.pos >= pos:
            return
        at = float(message.get("at") or time.time())
        if kind == "pause":
            runtime.pause(pos, at)
        elif runtime.state.status == PAUSED or kind == "resume":
            runtime.resume(pos, at)
        self.data.put(partition, key, runtime)

    def expire(self, partition: int, now: float) -> None:
        """Retention: buckets, chunks and changes older than retention_days go, restored keys too.

        Seeks each monitor's expired range instead of reading the partition: the
        cost is about one seek per monitor plus what actually expires.
        """
        cutoff = now - self.retention
        for config_key in self.monitors.keys(partition, b"", b"\xff"):
            monitor_id = orjson.loads(config_key)
            low, high = kind_range(monitor_id, b"b", 0, int(cutoff) - 3600 + 1)  # hours ending by the cutoff
            expired = self.data.keys(partition, low, high)
            low, high = kind_range(monitor_id, b"h", 0, int(cutoff * 1000))
            expired += self.data.keys(partition, low, high)
            low, high = kind_range(monitor_id, b"c")
            for key, rows in self.data.scan(partition, low, high):
                if not rows or rows[-1][1] >= cutoff:
                    break  # chunks are in time order: the rest are newer
                expired.append(key)
            for key in expired:
                self.data.delete(partition, key)
        for key in expired_checks_counters(self.data, partition, now):
            self.data.delete(partition, key)

