"""check-results → per-monitor runtime, statistics, recent checks → monitor-events.

Reads top to bottom as the stream goes:

1. the topic: `check-results`, one result or an envelope of results per message,
   plus control messages (`configure`, `pause`, `resume`, `purge`, `tick`,
   `due`) other actors send to the partition instead of writing its state
   (invariant 1);
2. the state: `monitor_data` (tables/monitor_data.py), read-only `monitors`;
   per organisation, the checks this partition folded each hour (tables/usage.py),
   counted once per message; the partition's due index;
3. the transitions: tables/monitor_state.py, tables/maintenance.py and
   tables/uptime.py, pure;
4. the events: `monitor.down` / `monitor.recovered` / `monitor.stale` /
   `monitor.maintenance_started` / `monitor.maintenance_ended` on
   `monitor-events`, kept in the state-change history too; unusable input on
   `dead-letters`.

Batches of messages are folded into the write-behind cache and flushed before
their offsets are acked; positions make redelivery harmless.

Time goes through the topic (invariant 3): a result inside a maintenance
window is known by its own `checked_at`, so a result posted late obeys the
window it was checked in. Regions going stale and windows starting or ending
are moments nobody posts: the due timer (agents/monitors/__init__.py) looks at
the due index of the partitions its worker owns and sends a `due` tick with
its clock; this fold then acts on what the tick says is due, in order with the
results. Maintenance events come from ticks, not from the first result inside
a window, so they are told on time even while no probe reports. Each change
compares and sets the runtime (a window announced once, a region marked stale
once), and its id derives from the tick's position, so a tick read again after
a crash or rebalance repeats an event with the same id or none.
"""
from __future__ import annotations

import itertools
import math
import time
from typing import Any

import orjson

from engine import topics
from engine.dead_letters import DeadLetters
from engine.folding import EntityFold, Ingest
from engine.partitioning import entity_key
from schemas.check_result import CheckResult
from tables.maintenance import MaintenanceCalendar, span_at
from tables.monitor_data import (
    DUE_INDEX, CheckRow, MonitorRuntime, SealedBucket, bucket_key, change_key, chunk_key, kind_range, position,
    prefix, runtime_key,
)
from tables.monitor_state import PAUSED, Transition, expire_stale, stale_deadline
from tables.uptime import UptimeBucket, bucket_start
from tables.usage import add_checks, checks_counter, expired_checks_counters

TAKE = 200                 # messages folded per flush at most
FUTURE_TOLERANCE = 300.0   # seconds a probe's clock may run ahead of ours
STALE_INTERVALS = 3        # a region silent for this many intervals (plus the timeout) is stale
DUE_PER_TICK = 5000        # monitors one due tick wakes at most; the next tick takes the rest
MAINTENANCE_STARTED = "monitor.maintenance_started"
MAINTENANCE_ENDED = "monitor.maintenance_ended"


def stale_after(spec: dict) -> float:
    """Seconds without a result after which a region of this monitor is stale."""
    return STALE_INTERVALS * spec.get("interval_seconds", 60) + spec.get("timeout_seconds", 30)


class CheckFolder(EntityFold):
    """Folds check-result messages of owned partitions into monitor_data."""

    ingest = Ingest(topics.CHECK_RESULTS, "results", CheckResult, "monitor_id", "check result",
                    "monitor", "/v1/monitors",
                    control_kinds=frozenset({"configure", "pause", "resume", "purge", "tick", "due"}))

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        super().__init__(engine.state, engine.settings.partitions, dead_letters)
        self.data = engine.monitor_data
        self.monitors = engine.monitors
        self.retention = engine.settings.retention_days * 86400
        self.now = time.time()  # refreshed per message, not per result
        self.future_limit = self.now + FUTURE_TOLERANCE
        #: org -> [its checks counter, or None when this message was counted before; results applied]
        self.counting: dict[str, list] = {}
        self.calendar = MaintenanceCalendar()
        self.ticks_applied: dict[int, float] = {}  # partition -> `at` of the last due tick applied
        self.regions_gone_stale = 0

    def health(self) -> dict:
        return {"results_applied": self.applied, "results_redelivered_and_skipped": self.duplicates,
                "regions_gone_stale": self.regions_gone_stale, "dead_letters": dict(self.dead_letters.counts)}

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
            probe=result.probe,
            timings=None if result.timings is None else result.timings.model_dump(exclude_none=True) or None,
        )
        current_hour = None if runtime.bucket is None else runtime.bucket.start
        spec = config["spec"]
        # a region is alive when its results arrive (Kafka's timestamp), whatever moment they report on
        in_window = spec.get("maintenance_cron_expression") is not None and self.calendar.inside(
            monitor_id, spec, row.checked_at)
        applied = runtime.apply(row, pos, config, in_window, heard_at=timestamp or row.checked_at)
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
        region = runtime.state.regions.get(row.region)
        if region is not None and region.stale_since is None and region.last_seen_at is not None:
            self.reindex(partition, monitor_id, runtime, region.last_seen_at + stale_after(spec))
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
        sealed.bucket.add(row.status, row.response_time_ms, row.timings)
        self.data.put(partition, key, sealed)

    def record_change(self, partition: int, monitor_id: str, config: dict, transition: Transition, pos: int,
                      **more: Any) -> None:
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
            **more,
        }
        if transition.region is not None:  # monitor.stale: which region went quiet, and whose probe
            change.update(region=transition.region, probe=transition.probe, last_seen_at=transition.last_seen_at)
        self.data.put(partition, change_key(monitor_id, transition.at, pos), change)
        self.state.emit(topics.MONITOR_EVENTS, entity_key(monitor_id), orjson.dumps(change), partition)

    def fold_control(self, partition: int, offset: int, message: dict) -> None:
        kind = message["kind"]
        pos = position(offset, 0)
        at = float(message.get("at") or time.time())
        if kind == "tick":
            self.expire(partition, at)
            return
        if kind == "due":
            self.wake_due(partition, offset, at)
            self.ticks_applied[partition] = at
            return
        monitor_id = str(message.get("monitor_id"))
        key = runtime_key(monitor_id)
        if kind == "purge":
            runtime = self.data.get(partition, key)
            if runtime is not None and runtime.indexed_ms is not None:
                self.data.delete(partition, DUE_INDEX.key(runtime.indexed_ms, monitor_id))
            start, stop = prefix(monitor_id)
            for data_key in self.data.keys(partition, start, stop):
                self.data.delete(partition, data_key)
            return
        runtime = self.data.get(partition, key) or MonitorRuntime()
        if runtime.pos >= pos:
            return
        if kind == "pause":
            runtime.pause(pos, at)
        elif kind == "configure":
            runtime.pos = pos
        elif runtime.state.status == PAUSED or kind == "resume":
            runtime.resume(pos, at)
        config = self.monitors.get(partition, entity_key(monitor_id))
        if config is not None and kind != "pause":  # a new schedule, or resumed: when is it due next
            self.wake(partition, monitor_id, config, runtime, offset, at, stale=False)
        self.data.put(partition, key, runtime)

    # -- time: stale regions and maintenance windows, by the due index --------------

    def wake_due(self, partition: int, offset: int, at: float) -> None:
        """A due tick: every monitor due by the tick's clock acts on it, once."""
        for entry, indexed_ms, monitor_id in DUE_INDEX.due(self.data, partition, int(at * 1000), DUE_PER_TICK):
            key = runtime_key(monitor_id)
            runtime = self.data.get(partition, key)
            if runtime is not None and runtime.indexed_ms == indexed_ms:  # else purged, or filed again elsewhere
                runtime.indexed_ms = None
                runtime.pos = max(runtime.pos, position(offset, 0))
                config = self.monitors.get(partition, entity_key(monitor_id))
                if config is not None:
                    self.wake(partition, monitor_id, config, runtime, offset, at, stale=True)
                self.data.put(partition, key, runtime)
            if runtime is None or runtime.indexed_ms != indexed_ms:  # unless filed again at the same moment
                self.data.delete(partition, entry)  # after the runtime: see DueIndex.due

    def wake(self, partition: int, monitor_id: str, config: dict, runtime: MonitorRuntime, offset: int, at: float,
             *, stale: bool) -> None:
        """At `at`: announce a maintenance window starting or ending, mark silent regions stale (when `stale`
        and outside a window: nothing changes state inside one), and file the next moment this monitor is due."""
        if runtime.state.status == PAUSED:
            return  # nothing is due while paused; resuming files it again
        spec = config["spec"]
        changes = itertools.count()  # the n-th change this message makes to this monitor: its position
        boundary = self.follow_maintenance(partition, monitor_id, config, runtime, offset, at, changes)
        silent_after = stale_after(spec)
        if runtime.maintenance is None:
            if stale:
                for transition in expire_stale(runtime.state, at=at, stale_after=silent_after,
                                               configured_regions=spec.get("regions") or ()):
                    self.record_change(partition, monitor_id, config, transition, position(offset, next(changes)))
                    self.regions_gone_stale += transition.region is not None
            deadline = stale_deadline(runtime.state, silent_after)
            if deadline is not None and (boundary is None or deadline < boundary):
                boundary = deadline
        self.reindex(partition, monitor_id, runtime, boundary)

    def follow_maintenance(self, partition: int, monitor_id: str, config: dict, runtime: MonitorRuntime, offset: int,
                           at: float, changes: Any) -> float | None:
        """Announce the end of the window told as started, and the start of the window `at` is in; each once.

        Returns the next moment the schedule changes (this window's end, or the next one's start). A window
        that began and ended while no tick came (no worker running) is not told.
        """
        spec = config["spec"]
        expression, duration = spec.get("maintenance_cron_expression"), spec.get("maintenance_duration")
        span = span_at(expression, float(duration), at) if expression and duration else None
        current = span if span is not None and span.inside else None
        announced = runtime.maintenance
        regions = {name: region.status for name, region in runtime.state.regions.items()}
        if announced is not None and (current is None or current.start != announced["start"]):
            ended_at = announced["end"] if at >= announced["end"] else at  # else: the schedule changed
            runtime.maintenance = None
            self.record_change(
                partition, monitor_id, config,
                Transition(MAINTENANCE_ENDED, ended_at, "maintenance", runtime.state.status, None, regions),
                position(offset, next(changes)), window={"start": announced["start"], "end": ended_at})
        elif announced is not None and current is not None:
            runtime.maintenance = {"start": current.start, "end": current.end}  # the same window, maybe longer
        if current is not None and runtime.maintenance is None:
            runtime.maintenance = {"start": current.start, "end": current.end}
            self.record_change(
                partition, monitor_id, config,
                Transition(MAINTENANCE_STARTED, current.start, runtime.state.status, "maintenance", None, regions),
                position(offset, next(changes)), window={"start": current.start, "end": current.end})
        return None if span is None else span.end

    def reindex(self, partition: int, monitor_id: str, runtime: MonitorRuntime, due_at: float | None) -> None:
        """Keep a due index entry at or before the monitor's next due moment.

        An earlier entry is left as it is: a monitor reporting every 10 s would
        otherwise move its entry at every result. When it comes due, the tick
        finds nothing due yet and files the entry again at the new moment.
        """
        if due_at is None:
            return
        due_ms, indexed = math.ceil(due_at * 1000), runtime.indexed_ms
        if indexed is not None and indexed <= due_ms:
            return
        if indexed is not None:
            self.data.delete(partition, DUE_INDEX.key(indexed, monitor_id))
        self.data.put(partition, DUE_INDEX.key(due_ms, monitor_id), 1)
        runtime.indexed_ms = due_ms

    def expire(self, partition: int, now: float) -> None:
        """Retention: buckets, chunks and changes older than retention_days go, restored keys too.

        Seeks each monitor's expired range instead of reading the partition: the
        cost is about one seek per monitor plus what actually expires.
        """
        cutoff = now - self.retention
        for config_key, config in self.monitors.scan(partition, b"", b"\xff"):
            monitor_id = orjson.loads(config_key)
            if config["spec"].get("maintenance_cron_expression"):
                self.file_schedule(partition, monitor_id, config, now)
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

    def file_schedule(self, partition: int, monitor_id: str, config: dict, now: float) -> None:
        """A monitor with maintenance windows but no due entry (configured before windows were kept) gets one."""
        key = runtime_key(monitor_id)
        runtime = self.data.get(partition, key) or MonitorRuntime()
        if runtime.indexed_ms is None and runtime.state.status != PAUSED:
            span = span_at(config["spec"]["maintenance_cron_expression"],
                           float(config["spec"]["maintenance_duration"]), now)
            self.reindex(partition, monitor_id, runtime, span.start if span.inside else span.end)
            self.data.put(partition, key, runtime)

