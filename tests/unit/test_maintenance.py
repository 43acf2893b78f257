"""Maintenance windows from a cron expression and a duration: which moments are inside (tables/maintenance.py).

Windows are [start, end): the start is inside, the end is not. Cron is read in UTC.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tables.maintenance import MaintenanceCalendar, Span, in_maintenance, scheduled_seconds, span_at, window_at


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


NIGHTLY = "0 3 * * *"          # 03:00 UTC every day
HOUR = 3600


@pytest.mark.parametrize("moment, inside", [
    ("2026-11-26T02:59:59", False),
    ("2026-11-26T03:00:00", True),          # the start is inside
    ("2026-11-26T03:30:00", True),
    ("2026-11-26T03:59:59.999", True),
    ("2026-11-26T04:00:00", False),         # the end is not
    ("2026-11-26T12:00:00", False),
])
def test_a_window_includes_its_start_and_excludes_its_end(moment, inside):
    assert in_maintenance(NIGHTLY, HOUR, at(moment)) is inside
    assert (window_at(NIGHTLY, HOUR, at(moment)) is not None) is inside


def test_a_window_across_midnight_holds_on_both_days():
    late = "30 23 * * *"                   # 23:30 for an hour: until 00:30 the next day
    assert window_at(late, HOUR, at("2026-11-26T23:45:00")) == (at("2026-11-26T23:30:00"), at("2026-11-27T00:30:00"))
    assert window_at(late, HOUR, at("2026-11-27T00:15:00")) == (at("2026-11-26T23:30:00"), at("2026-11-27T00:30:00"))
    assert not in_maintenance(late, HOUR, at("2026-11-27T00:30:00"))


def test_a_weekly_window_across_a_month_end_and_only_on_its_day():
    sunday = "0 22 * * sun"                # Sunday 22:00 for 4 hours
    assert in_maintenance(sunday, 4 * HOUR, at("2026-11-29T23:00:00"))   # Sunday
    assert in_maintenance(sunday, 4 * HOUR, at("2026-11-30T01:59:00"))   # Monday, still the same window
    assert not in_maintenance(sunday, 4 * HOUR, at("2026-11-30T02:00:00"))
    assert not in_maintenance(sunday, 4 * HOUR, at("2026-11-28T23:00:00"))  # Saturday


def test_utc_ignores_daylight_saving_changes():
    # Europe moved its clocks on 2026-03-29 and 2026-10-25: in UTC the window stays at 03:00
    for day in ("2026-03-28", "2026-03-29", "2026-03-30", "2026-10-25", "2026-10-26"):
        assert window_at(NIGHTLY, HOUR, at(f"{day}T03:10:00")) == (at(f"{day}T03:00:00"), at(f"{day}T04:00:00"))


def test_overlapping_and_touching_windows_merge_into_one():
    hourly = "0 * * * *"
    # two hours every hour: one window that never ends within the merge limit, holding every moment
    assert in_maintenance(hourly, 2 * HOUR, at("2026-11-26T10:30:00"))
    # exactly an hour every hour: windows touch, so they merge
    start, end = window_at("0 0-3 * * *", HOUR, at("2026-11-26T01:30:00"))
    assert (start, end) == (at("2026-11-26T00:00:00"), at("2026-11-26T04:00:00"))


def test_span_says_how_long_the_answer_holds():
    inside = span_at(NIGHTLY, HOUR, at("2026-11-26T03:10:00"))
    assert inside == Span(at("2026-11-26T03:00:00"), at("2026-11-26T04:00:00"), True)
    gap = span_at(NIGHTLY, HOUR, at("2026-11-26T12:00:00"))
    assert gap == Span(at("2026-11-26T04:00:00"), at("2026-11-27T03:00:00"), False)
    assert span_at(NIGHTLY, HOUR, at("2026-11-26T04:00:00")) == gap


def test_no_schedule_means_never():
    assert not in_maintenance(None, None, at("2026-11-26T03:10:00"))
    assert window_at(None, None, at("2026-11-26T03:10:00")) is None
    assert scheduled_seconds(None, None, 0, 10**9) == 0.0


def test_scheduled_seconds_adds_up_the_windows_in_a_period():
    day = at("2026-11-26T00:00:00")
    assert scheduled_seconds(NIGHTLY, HOUR, day, day + 7 * 86400) == 7 * HOUR
    assert scheduled_seconds(NIGHTLY, HOUR, day + 3.5 * HOUR, day + 86400) == HOUR / 2   # cut at the start
    assert scheduled_seconds("0 0-3 * * *", 2 * HOUR, day, day + 86400) == 5 * HOUR      # overlaps once
    assert scheduled_seconds("* * * * *", 60, day, day + 30 * 86400) is None             # too many to add up


def test_the_calendar_answers_as_cron_does():
    calendar = MaintenanceCalendar()
    spec = {"maintenance_cron_expression": NIGHTLY, "maintenance_duration": HOUR}
    day = at("2026-11-26T00:00:00")
    for second in range(0, 2 * 86400, 137):
        assert calendar.inside("mon_1", spec, day + second) == in_maintenance(NIGHTLY, HOUR, day + second)
    assert not calendar.inside("mon_2", {}, day + 3 * HOUR)
