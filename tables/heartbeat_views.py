"""What the API shows of a heartbeat, computed from its configuration and heartbeat_data."""
from __future__ import annotations

from typing import Any

from tables.heartbeat_data import (
    EVENT_FIELDS, HeartbeatBucket, HeartbeatRuntime, SealedBucket, body_key, kind_range, merged, runtime_key,
)
from tables.heartbeat_state import NEW, PAUSED
from tables.monitor_views import iso
from tables.store import TableStore
from tables.uptime import HOUR, bucket_start

COLLECTION = "heartbeats"  # the organisation index (tables/org_index.py) of every heartbeat


def service_collection(service_id: str) -> str:
    """The organisation index of one service's heartbeats, so a filtered list costs about its page too."""
    return f"{COLLECTION}:{service_id}"


INTERVALS = {"1h": HOUR, "3h": 3 * HOUR, "12h": 12 * HOUR, "1d": 24 * HOUR, "3d": 72 * HOUR,
             "7d": 168 * HOUR, "30d": 720 * HOUR}


def heartbeat_view(config: dict[str, Any], runtime: HeartbeatRuntime | None) -> dict[str, Any]:
    spec = config["spec"]
    state = runtime.state if runtime is not None else None
    if not spec["enabled"]:
        status = PAUSED
    elif state is None or state.status == PAUSED:
        status = NEW  # enabled again; the heartbeats agent has not caught up yet
    else:
        status = state.status
    deadline = state.deadline_ms if state is not None and status == state.status else None
    return {
        "id": config["id"],
        **spec,
        "push_token": config.get("push_token"),
        "status": status,
        "status_since": iso(state.since) if state else None,
        "last_check_in_at": iso(state.last_check_in_at) if state else None,
        "last_success_at": iso(state.last_success_at) if state else None,
        "late_after": iso(deadline / 1000) if deadline is not None else None,
        "running": state.open_runs() if state else 0,
        "created_at": iso(config["created_at"]),
        "updated_at": iso(config["updated_at"]),
    }


def history(data: TableStore, partition: int, heartbeat_id: str, limit: int,
            before: float | None = None) -> list[dict[str, Any]]:
    """The newest `limit` check-ins received before `before` (all when None), newest first."""
    runtime = data.get(partition, runtime_key(heartbeat_id))
    if runtime is None:
        return []
    rows = [row for row in reversed(runtime.recent) if before is None or row[1] < before]
    if len(rows) < limit:
        low, high = kind_range(heartbeat_id, b"c")
        for key in reversed(data.keys(partition, low, high)):  # at most KEEP_CHUNKS keys
            rows.extend(row for row in reversed(data.get(partition, key) or []) if before is None or row[1] < before)
            if len(rows) >= limit:
                break
    return [_event(data, partition, heartbeat_id, row) for row in rows[:limit]]


def _event(data: TableStore, partition: int, heartbeat_id: str, row: list) -> dict[str, Any]:
    event = dict(zip(EVENT_FIELDS, row))
    event["received_at"] = iso(event["received_at"])
    event["body"] = data.get(partition, body_key(heartbeat_id, event["seq"])) if event["body_bytes"] else None
    return event


def hour_buckets(data: TableStore, partition: int, heartbeat_id: str, start: float, end: float) -> list[HeartbeatBucket]:
    """Hour buckets overlapping [start, end): sealed ones plus the runtime's open hour."""
    low, high = kind_range(heartbeat_id, b"b", bucket_start(start), int(end) + 1)
    found = {value.bucket.start: value.bucket for _, value in data.scan(partition, low, high)
             if isinstance(value, SealedBucket)}
    runtime = data.get(partition, runtime_key(heartbeat_id))
    if runtime is not None and runtime.bucket is not None and bucket_start(start) <= runtime.bucket.start < end:
        hour = runtime.bucket.start
        found[hour] = merged([found[hour], runtime.bucket], hour) if hour in found else runtime.bucket
    return [found[hour] for hour in sorted(found)]


def statistics(data: TableStore, partition: int, heartbeat_id: str, start: float, end: float,
               interval: str) -> dict[str, Any]:
    """One record per interval from start's hour to end, empty ones included, and the whole range's runs."""
    width = INTERVALS[interval]
    first = bucket_start(start)
    points = [HeartbeatBucket(start=at) for at in range(first, int(end), width)] or [HeartbeatBucket(start=first)]
    for bucket in hour_buckets(data, partition, heartbeat_id, first, end):
        index = (bucket.start - first) // width
        if 0 <= index < len(points):
            points[index].merge(bucket)
    total = merged(points)
    return {
        "data": [{
            "received_at": iso(point.start),
            "tick_count": point.tick,
            "run_count": point.run,
            "complete_count": point.complete,
            "fail_count": point.fail,
            "mean_run_duration": point.mean_duration(),
            "p95_run_duration": point.duration_percentile(95),
        } for point in points],
        "meta": {
            "heartbeat_id": heartbeat_id,
            "interval": interval,
            "start_date": iso(first),
            "end_date": iso(end),
            "tick_count": total.tick,
            "run_count": total.run,
            "complete_count": total.complete,
            "fail_count": total.fail,
            "measured_runs": total.duration_count,
            "mean_run_duration": total.mean_duration(),
            "p95_run_duration": total.duration_percentile(95),
        },
    }
