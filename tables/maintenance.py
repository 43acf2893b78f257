"""Maintenance windows: a cron expression opens a window, `duration` seconds long, at each time it fires.

Rules (pure; the checks fold and the views use them):

- A window is ``[start, start + duration)``: its start is inside, its end is
  not. A result checked at exactly the end counts again.
- Cron fires at whole minutes and is read in UTC (``tz`` may name another
  zone; nothing passes one yet, so daylight saving never moves a window).
- Windows that overlap or touch merge into one: a window every hour lasting
  two hours is one long window. Merging looks at most MERGE_LIMIT fires each
  way, so a schedule that never lets go (``* * * * *``) is cut into pieces of
  about that many fires, each still inside.
- ``span_at`` answers for a moment the whole stretch of time around it with
  the same answer, a window or the gap between two, so a caller may keep it
  and ask cron again only once time leaves it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo

from croniter import croniter

MERGE_LIMIT = 1500      # fires looked at each way when merging overlapping windows
MEASURE_LIMIT = 2500     # windows `scheduled_seconds` adds up before it gives up: hourly ones for 90 days
FAR = 2.0**62           # "no window ever": the end of a gap cron never closes


@dataclass(frozen=True, slots=True)
class Span:
    """`[start, end)`: a maintenance window (inside) or the gap between two (not inside)."""

    start: float
    end: float
    inside: bool

    def holds(self, at: float) -> bool:
        return self.start <= at < self.end


def _cron(expression: str, base: float, tz: tzinfo) -> croniter:
    return croniter(expression, datetime.fromtimestamp(base, tz=tz))


def _latest_fire(expression: str, at: float, tz: tzinfo) -> float:
    """The latest time cron fires at or before `at` (fires are whole minutes)."""
    next_minute = (math.floor(at / 60) + 1) * 60
    return _cron(expression, next_minute, tz).get_prev(float)


def span_at(expression: str, duration: float, at: float, tz: tzinfo = timezone.utc) -> Span:
    """The window containing `at`, or the gap between the windows around it."""
    latest = _latest_fire(expression, at, tz)
    if at >= latest + duration:  # the latest window is over; no earlier one lasts longer
        upcoming = _cron(expression, at, tz).get_next(float)
        return Span(latest + duration, upcoming, inside=False)
    start, back = latest, _cron(expression, latest, tz)
    for _ in range(MERGE_LIMIT):
        earlier = back.get_prev(float)
        if earlier + duration < start:
            break
        start = earlier
    end, forward = latest + duration, _cron(expression, latest, tz)
    for _ in range(MERGE_LIMIT):
        later = forward.get_next(float)
        if later > end:
            break
        end = max(end, later + duration)
    return Span(start, end, inside=True)


def in_maintenance(expression: str | None, duration: float | None, at: float, tz: tzinfo = timezone.utc) -> bool:
    """Is `at` inside one of the schedule's windows? No schedule: never."""
    if not expression or not duration:
        return False
    latest = _latest_fire(expression, at, tz)
    return at < latest + duration


def window_at(expression: str | None, duration: float | None, at: float,
              tz: tzinfo = timezone.utc) -> tuple[float, float] | None:
    """(start, end) of the window containing `at`, merged with the ones it overlaps; None outside."""
    if not expression or not duration:
        return None
    span = span_at(expression, duration, at, tz)
    return (span.start, span.end) if span.inside else None


def scheduled_seconds(expression: str | None, duration: float | None, start: float, end: float,
                      tz: tzinfo = timezone.utc) -> float | None:
    """Seconds of [start, end) inside the schedule's windows; None when it has more than MEASURE_LIMIT."""
    if not expression or not duration or end <= start:
        return 0.0
    fires = _cron(expression, start - duration, tz)
    covered, reached = 0.0, start
    for _ in range(MEASURE_LIMIT):
        fire = fires.get_next(float)
        if fire >= end:
            return round(covered, 3)
        low, high = max(fire, reached), min(fire + duration, end)
        if high > low:
            covered += high - low
            reached = high
    return None


class MaintenanceCalendar:
    """Remembers, per monitor, the span last looked up, so most results ask cron nothing.

    Only a cache: what it answers is `span_at`'s answer for the same schedule.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.spans: dict[str, tuple[str, float, Span]] = {}

    def span(self, monitor_id: str, expression: str, duration: float, at: float) -> Span:
        known = self.spans.get(monitor_id)
        if known is not None and known[0] == expression and known[1] == duration and known[2].holds(at):
            return known[2]
        span = span_at(expression, duration, at)
        if len(self.spans) >= self.capacity:
            self.spans.clear()
        self.spans[monitor_id] = (expression, duration, span)
        return span

    def inside(self, monitor_id: str, spec: dict, at: float) -> bool:
        expression, duration = spec.get("maintenance_cron_expression"), spec.get("maintenance_duration")
        if not expression or not duration:
            return False
        return self.span(monitor_id, expression, float(duration), at).inside
