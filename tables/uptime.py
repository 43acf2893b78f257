"""Uptime statistics: hourly buckets per monitor with a sparse latency histogram.

Response times go into log-scale histogram bins, each 4% wider than the one
before, starting at 0.1 ms; a bin's representative value is its geometric
midpoint, so any value is reported within 2% (bins go on past 10 minutes with
the same precision). Non-positive times fall in bin 0, times below 0.1 ms in
bin 1. Percentiles are nearest-rank over bins, clamped into the observed
[min, max], which makes p0/p100 and single-sample buckets exact.

A result inside a maintenance window (status "maintenance") is counted apart:
not in the totals, the uptime percentage or the response times.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

HOUR = 3600
DAY = 86400

SMALLEST_BINNED_MS = 0.1
BIN_GROWTH = 1.04
_LOG_SMALLEST = math.log(SMALLEST_BINNED_MS)
_BINS_PER_LOG_UNIT = 1 / math.log(BIN_GROWTH)


def bucket_start(ts: float, width: int = HOUR) -> int:
    return int(ts // width) * width


def histogram_bin(ms: float) -> int:
    if ms <= 0:
        return 0
    if ms < SMALLEST_BINNED_MS:
        return 1
    return int((math.log(ms) - _LOG_SMALLEST) * _BINS_PER_LOG_UNIT) + 1


def bin_value(index: int) -> float:
    if index <= 0:
        return 0.0
    return SMALLEST_BINNED_MS * BIN_GROWTH ** (index - 0.5)


def percentile(
    histogram: Mapping[int, int],
    q: float,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
) -> float | None:
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within [0, 100], not {q}")
    total = sum(histogram.values())
    if total == 0:
        return None
    # q * total first: q / 100 * total can overshoot an integer rank (0.07 * 100 = 7.000000000000001).
    rank = max(1, math.ceil(q * total / 100))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            value = bin_value(index)
            break
    if min_value is not None and value < min_value:
        value = min_value
    if max_value is not None and value > max_value:
        value = max_value
    return value


@dataclass(slots=True)
class UptimeBucket:
    start: int
    total: int = 0
    up: int = 0
    down: int = 0
    rt_count: int = 0
    rt_sum: float = 0.0
    rt_min: float | None = None
    rt_max: float | None = None
    histogram: dict[int, int] = field(default_factory=dict)
    maintenance: int = 0
    #: probes' phases: name ("dns_ms", "connect_ms", ...) -> [checks that had it, sum of ms]
    phases: dict[str, list] = field(default_factory=dict)

    def add(self, status: str, response_time_ms: float | None, timings: Mapping[str, float] | None = None) -> None:
        if status == "up":
            self.up += 1
        elif status == "down":
            self.down += 1
        elif status == "maintenance":
            self.maintenance += 1
            return
        else:
            raise ValueError(f"result status must be 'up' or 'down', not {status!r}")
        self.total += 1
        # NaN/inf is a broken measurement: count the check, skip the time.
        if response_time_ms is None or not math.isfinite(response_time_ms):
            return
        if response_time_ms < 0:
            response_time_ms = 0.0  # clock skew on the probe
        self.rt_count += 1
        self.rt_sum += response_time_ms
        if self.rt_min is None or response_time_ms < self.rt_min:
            self.rt_min = response_time_ms
        if self.rt_max is None or response_time_ms > self.rt_max:
            self.rt_max = response_time_ms
        index = histogram_bin(response_time_ms)
        histogram = self.histogram
        histogram[index] = histogram.get(index, 0) + 1
        if timings:
            phases = self.phases
            for name, ms in timings.items():
                if ms is not None and math.isfinite(ms) and ms >= 0:
                    phase = phases.get(name)
                    if phase is None:
                        phases[name] = [1, ms]
                    else:
                        phase[0] += 1
                        phase[1] += ms

    def merge(self, other: UptimeBucket) -> None:
        """Adds other's counts into this bucket; this bucket keeps its start."""
        self.total += other.total
        self.up += other.up
        self.down += other.down
        self.maintenance += other.maintenance
        self.rt_count += other.rt_count
        self.rt_sum += other.rt_sum
        if other.rt_min is not None and (self.rt_min is None or other.rt_min < self.rt_min):
            self.rt_min = other.rt_min
        if other.rt_max is not None and (self.rt_max is None or other.rt_max > self.rt_max):
            self.rt_max = other.rt_max
        histogram = self.histogram
        for index, count in other.histogram.items():
            histogram[index] = histogram.get(index, 0) + count
        for name, (count, total) in other.phases.items():
            phase = self.phases.setdefault(name, [0, 0.0])
            phase[0] += count
            phase[1] += total

    def to_dict(self) -> dict:
        return {
            "start": self.start,
            "total": self.total,
            "up": self.up,
            "down": self.down,
            "rt_count": self.rt_count,
            "rt_sum": self.rt_sum,
            "rt_min": self.rt_min,
            "rt_max": self.rt_max,
            "histogram": {str(index): count for index, count in self.histogram.items()},
            "maintenance": self.maintenance,
            **({"phases": self.phases} if self.phases else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> UptimeBucket:
        return cls(
            start=int(d["start"]),
            total=d.get("total", 0),
            up=d.get("up", 0),
            down=d.get("down", 0),
            rt_count=d.get("rt_count", 0),
            rt_sum=d.get("rt_sum", 0.0),
            rt_min=d.get("rt_min"),
            rt_max=d.get("rt_max"),
            histogram={int(index): int(count) for index, count in (d.get("histogram") or {}).items()},
            maintenance=d.get("maintenance", 0),
            phases={name: [int(count), float(total)] for name, (count, total) in (d.get("phases") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class UptimeSummary:
    total_checks: int
    up_checks: int
    down_checks: int
    uptime_percentage: float | None
    avg_response_time_ms: float | None
    p50_response_time_ms: float | None
    p95_response_time_ms: float | None
    p99_response_time_ms: float | None
    min_response_time_ms: float | None
    max_response_time_ms: float | None
    maintenance_checks: int = 0

    def to_dict(self) -> dict:
        return {
            "total_checks": self.total_checks,
            "up_checks": self.up_checks,
            "down_checks": self.down_checks,
            "uptime_percentage": self.uptime_percentage,
            "avg_response_time_ms": self.avg_response_time_ms,
            "p50_response_time_ms": self.p50_response_time_ms,
            "p95_response_time_ms": self.p95_response_time_ms,
            "p99_response_time_ms": self.p99_response_time_ms,
            "min_response_time_ms": self.min_response_time_ms,
            "max_response_time_ms": self.max_response_time_ms,
            "maintenance_checks": self.maintenance_checks,
        }


def summarise(buckets: Iterable[UptimeBucket]) -> UptimeSummary:
    merged = UptimeBucket(start=0)
    for bucket in buckets:
        merged.merge(bucket)
    return _summary_of(merged)


def series(buckets: Iterable[UptimeBucket], interval: int) -> list[dict]:
    """One point per interval (aligned to UTC) that has data; empty intervals are left out."""
    if interval <= 0 or interval % HOUR:
        raise ValueError(f"interval must be a positive multiple of {HOUR} seconds, not {interval}")
    points: dict[int, UptimeBucket] = {}
    for bucket in buckets:
        start = bucket_start(bucket.start, interval)
        point = points.get(start)
        if point is None:
            point = points[start] = UptimeBucket(start=start)
        point.merge(bucket)
    result = []
    for start in sorted(points):
        summary = _summary_of(points[start])
        result.append({
            "start": datetime.fromtimestamp(start, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "total_checks": summary.total_checks,
            "up_checks": summary.up_checks,
            "down_checks": summary.down_checks,
            "uptime_percentage": summary.uptime_percentage,
            "avg_response_time_ms": summary.avg_response_time_ms,
            "p95_response_time_ms": summary.p95_response_time_ms,
        })
        phases = phase_means(points[start])
        if phases:
            result[-1]["avg_phase_ms"] = phases  # probes' checks only
    return result


def phase_means(bucket: UptimeBucket) -> dict[str, float] | None:
    """Mean milliseconds of each phase probes measured ({"dns": .., "connect": .., ...}); None without any."""
    if not bucket.phases:
        return None
    return {name.removesuffix("_ms"): round(total / count, 3) for name, (count, total) in sorted(bucket.phases.items())
            if count}


def _summary_of(bucket: UptimeBucket) -> UptimeSummary:
    # Response times are rounded to the microsecond; rounding is monotonic, so min <= p50 <= max still holds.
    def response_time(q: float) -> float | None:
        value = percentile(bucket.histogram, q, min_value=bucket.rt_min, max_value=bucket.rt_max)
        return None if value is None else round(value, 3)

    return UptimeSummary(
        total_checks=bucket.total,
        up_checks=bucket.up,
        down_checks=bucket.down,
        uptime_percentage=round(100 * bucket.up / bucket.total, 4) if bucket.total else None,
        avg_response_time_ms=round(bucket.rt_sum / bucket.rt_count, 3) if bucket.rt_count else None,
        p50_response_time_ms=response_time(50),
        p95_response_time_ms=response_time(95),
        p99_response_time_ms=response_time(99),
        min_response_time_ms=None if bucket.rt_min is None else round(bucket.rt_min, 3),
        max_response_time_ms=None if bucket.rt_max is None else round(bucket.rt_max, 3),
        maintenance_checks=bucket.maintenance,
    )
