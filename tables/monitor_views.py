"""What the API shows of a monitor, computed from its configuration and monitor_data."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from tables.maintenance import scheduled_seconds
from tables.monitor_data import (
    CHUNK, MAINTENANCE, MonitorRuntime, SealedBucket, kind_range, runtime_key,
)
from tables.monitor_state import PAUSED, UNKNOWN
from tables.store import TableStore
from tables.uptime import HOUR, UptimeBucket, bucket_start, series, summarise

PERIODS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}
CHECK_FIELDS = ("id", "checked_at", "region", "status", "response_time_ms", "status_code", "cause", "probe",
                "reported_status", "timings")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def monitor_view(config: dict[str, Any], runtime: MonitorRuntime | None, now: float | None = None) -> dict[str, Any]:
    """The monitor; `status` is "maintenance" while a window the checks fold announced is open (the state
    under it stays in `regions_status`), and `stale_regions` names regions whose probe went quiet."""
    state = runtime.state if runtime is not None else None
    status = PAUSED if config["paused"] else (state.status if state else UNKNOWN)
    if status == PAUSED and config["paused"] is False:
        status = UNKNOWN  # resumed; the checks agent has not caught up yet
    since = state.since if state else None
    window = runtime.maintenance if runtime is not None else None
    now = time.time() if now is None else now
    if window is not None and not window["start"] <= now < window["end"]:
        window = None  # over by the clock; the tick telling so is on its way
    if window is not None and status != PAUSED:
        status, since = MAINTENANCE, window["start"]
    return {
        "id": config["id"],
        **config["spec"],
        "paused": config["paused"],
        "status": status,
        "status_since": iso(since),
        "regions_status": {name: region.status for name, region in state.regions.items()} if state else {},
        "last_checked_at": iso(state.last_checked_at) if state else None,
        "created_at": iso(config["created_at"]),
        "updated_at": iso(config["updated_at"]),
        "maintenance": None if window is None else {"started_at": iso(window["start"]), "ends_at": iso(window["end"])},
        "stale_regions": {
            name: {"since": iso(region.stale_since), "last_seen_at": iso(region.last_seen_at), "probe": region.probe}
            for name, region in state.regions.items() if region.stale_since is not None
        } if state else {},
    }


def buckets_between(data: TableStore, partition: int, monitor_id: str, start: float, end: float) -> list[UptimeBucket]:
    """Hour buckets overlapping [start, end): sealed ones plus the runtime's open hour."""
    low, high = kind_range(monitor_id, b"b", bucket_start(start), int(end) + 1)
    found = {value.bucket.start: value.bucket for _, value in data.scan(partition, low, high)
             if isinstance(value, SealedBucket)}
    runtime = data.get(partition, runtime_key(monitor_id))
    if runtime is not None and runtime.bucket is not None:
        open_hour = runtime.bucket
        if bucket_start(start) <= open_hour.start < end:
            if open_hour.start in found:  # late results for a sealed hour are in both
                merged = UptimeBucket(start=open_hour.start)
                merged.merge(found[open_hour.start])
                merged.merge(open_hour)
                open_hour = merged
            found[open_hour.start] = open_hour
    return [found[hour] for hour in sorted(found)]


def uptime(data: TableStore, partition: int, monitor_id: str, period: str, now: float | None = None,
           spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Results inside maintenance windows are left out of the percentage and counted in `maintenance_checks`;
    `maintenance_seconds` is how much of the period the monitor's current schedule puts in windows (None for
    a schedule too dense to add up)."""
    now = time.time() if now is None else now
    buckets = buckets_between(data, partition, monitor_id, now - PERIODS[period] + HOUR, now + HOUR)
    summary = summarise(buckets).to_dict()
    spec = spec or {}
    return {
        "monitor_id": monitor_id,
        "period": period,
        "uptime_percentage": summary["uptime_percentage"],
        "total_checks": summary["total_checks"],
        "up_checks": summary["up_checks"],
        "down_checks": summary["down_checks"],
        "avg_response_time_ms": summary["avg_response_time_ms"],
        "p50_response_time_ms": summary["p50_response_time_ms"],
        "p95_response_time_ms": summary["p95_response_time_ms"],
        "p99_response_time_ms": summary["p99_response_time_ms"],
        "min_response_time_ms": summary["min_response_time_ms"],
        "max_response_time_ms": summary["max_response_time_ms"],
        "maintenance_checks": summary["maintenance_checks"],
        "maintenance_seconds": scheduled_seconds(spec.get("maintenance_cron_expression"),
                                                 spec.get("maintenance_duration"), now - PERIODS[period], now),
    }


def performance(data: TableStore, partition: int, monitor_id: str, start: float, end: float, interval: int) -> list[dict]:
    return series(buckets_between(data, partition, monitor_id, start, end), interval)


def recent_checks(data: TableStore, partition: int, monitor_id: str, page: int, per_page: int) -> tuple[list[dict], int]:
    """Newest first; reads only the chunks the page needs."""
    runtime = data.get(partition, runtime_key(monitor_id))
    if runtime is None:
        return [], 0
    low, high = kind_range(monitor_id, b"c")
    chunks = data.keys(partition, low, high)  # at most KEEP_CHUNKS; retention may have removed some
    total = len(chunks) * CHUNK + len(runtime.recent)
    skip = (page - 1) * per_page
    rows = list(reversed(runtime.recent))
    for key in reversed(chunks):
        if len(rows) >= skip + per_page:
            break
        rows.extend(reversed(data.get(partition, key) or []))
    page_rows = rows[skip : skip + per_page]
    return [_check(row) for row in page_rows], total


def _check(row: list) -> dict:
    check = dict(zip(CHECK_FIELDS, row))
    check["checked_at"] = iso(check["checked_at"])
    check.setdefault("probe", None)
    check.setdefault("reported_status", check["status"])  # stored before maintenance windows were kept
    check.setdefault("timings", None)  # posted results, and checks stored before probes measured phases
    return check


def state_changes(data: TableStore, partition: int, monitor_id: str, start: float, end: float, limit: int) -> list[dict]:
    low, high = kind_range(monitor_id, b"h", int(start * 1000), int(end * 1000) + 1)
    changes = []
    for _, change in data.scan(partition, low, high, reverse=True, limit=limit):
        shown = {**change, "at": iso(change["at"])}
        if "last_seen_at" in change:
            shown["last_seen_at"] = iso(change["last_seen_at"])
        if "window" in change:
            shown["window"] = {"start": iso(change["window"]["start"]), "end": iso(change["window"]["end"])}
        changes.append(shown)
    return changes
