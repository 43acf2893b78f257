"""Schedule maths: when a check-in is due and when a heartbeat is late (interval, cron, time zones, DST, grace)."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from tables.heartbeat_schedule import Schedule, ScheduleError, check_cron, next_cron_time, zone

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone_info: ZoneInfo, *parts: int, fold: int = 0) -> float:
    return datetime(*parts, tzinfo=zone_info, fold=fold).timestamp()


def wall(ts: float, zone_info: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone_info).strftime("%Y-%m-%d %H:%M %Z")


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()


def test_an_interval_is_due_that_long_after_the_last_success_and_late_after_grace() -> None:
    schedule = Schedule(interval=300, grace=60)
    assert schedule.next_due(1000.0) == 1300.0
    assert schedule.late_after(1000.0) == 1360.0


def test_a_run_is_late_once_grace_has_passed_since_it_started() -> None:
    assert Schedule(interval=86400, grace=900).run_late_after(5000.0) == 5900.0
    assert Schedule(cron="0 3 * * *", grace=120).run_late_after(5000.0) == 5120.0


def test_cron_in_utc_fires_at_the_next_matching_minute_strictly_after() -> None:
    assert next_cron_time("0 * * * *", "UTC", utc(2026, 3, 10, 9, 59, 59)) == utc(2026, 3, 10, 10, 0)
    assert next_cron_time("0 * * * *", "UTC", utc(2026, 3, 10, 10, 0)) == utc(2026, 3, 10, 11, 0)
    assert next_cron_time("0 * * * *", "UTC", utc(2026, 3, 10, 10, 0) + 0.5) == utc(2026, 3, 10, 11, 0)
    assert next_cron_time("*/15 * * * *", "UTC", utc(2026, 3, 10, 10, 7)) == utc(2026, 3, 10, 10, 15)
    assert next_cron_time("0 3 * * sun", "UTC", utc(2026, 3, 10, 10, 7)) == utc(2026, 3, 15, 3, 0)


def test_cron_is_read_on_the_wall_clock_of_its_time_zone() -> None:
    after = at(NEW_YORK, 2026, 1, 15, 4, 0)
    due = next_cron_time("30 3 * * *", "America/New_York", after)
    assert wall(due, NEW_YORK) == "2026-01-16 03:30 EST"
    assert due == utc(2026, 1, 16, 8, 30)
    schedule = Schedule(cron="30 3 * * *", timezone="America/New_York", grace=600)
    assert schedule.late_after(after) == due + 600


def test_a_daily_job_keeps_its_wall_clock_time_across_dst() -> None:
    # Europe/Berlin goes to summer time on 2026-03-29: 24 hours later is not 03:00 any more
    before = next_cron_time("0 3 * * *", "Europe/Berlin", at(BERLIN, 2026, 3, 28, 3, 5))
    assert wall(before, BERLIN) == "2026-03-29 03:00 CEST"
    assert before - at(BERLIN, 2026, 3, 28, 3, 0) == 23 * 3600


def test_a_time_skipped_by_spring_forward_is_due_one_gap_later() -> None:
    # 2026-03-29 02:00 CET becomes 03:00 CEST: 02:30 never happens on the wall clock
    due = next_cron_time("30 2 * * *", "Europe/Berlin", at(BERLIN, 2026, 3, 29, 1, 50))
    assert wall(due, BERLIN) == "2026-03-29 03:30 CEST"
    every_quarter = next_cron_time("*/15 * * * *", "Europe/Berlin", at(BERLIN, 2026, 3, 29, 1, 50))
    assert wall(every_quarter, BERLIN) == "2026-03-29 03:00 CEST"
    assert every_quarter - at(BERLIN, 2026, 3, 29, 1, 50) == 10 * 60


def test_a_time_repeated_by_fall_back_is_due_once_at_its_first_occurrence() -> None:
    # 2026-10-25 03:00 CEST becomes 02:00 CET: 02:00-03:00 happens twice
    first = next_cron_time("30 2 * * *", "Europe/Berlin", at(BERLIN, 2026, 10, 25, 1, 0))
    assert wall(first, BERLIN) == "2026-10-25 02:30 CEST"
    # the job checked in at 02:40 (first pass): not due again at 02:30 CET, but tomorrow
    again = next_cron_time("30 2 * * *", "Europe/Berlin", at(BERLIN, 2026, 10, 25, 2, 40))
    assert wall(again, BERLIN) == "2026-10-26 02:30 CET"
    # and one that finished in the repeated hour (02:20 CET, second pass) is not due at 02:30 CET either
    late_finish = next_cron_time("30 2 * * *", "Europe/Berlin", at(BERLIN, 2026, 10, 25, 2, 20, fold=1))
    assert wall(late_finish, BERLIN) == "2026-10-26 02:30 CET"


def test_a_frequent_job_in_the_repeated_hour_is_never_due_early() -> None:
    first_pass = at(BERLIN, 2026, 10, 25, 2, 10)
    assert wall(next_cron_time("*/15 * * * *", "Europe/Berlin", first_pass), BERLIN) == "2026-10-25 02:15 CEST"
    second_pass = at(BERLIN, 2026, 10, 25, 2, 20, fold=1)
    due = next_cron_time("*/15 * * * *", "Europe/Berlin", second_pass)
    assert due > second_pass  # never a time that already passed, whatever the wall clock says
    assert wall(due, BERLIN) == "2026-10-25 03:00 CET"


def test_us_dst_changes_too() -> None:
    # America/New_York: 2026-03-08 02:00 EST becomes 03:00 EDT; 2026-11-01 02:00 EDT becomes 01:00 EST
    assert wall(next_cron_time("30 2 * * *", "America/New_York", at(NEW_YORK, 2026, 3, 8, 1, 0)), NEW_YORK) \
        == "2026-03-08 03:30 EDT"
    assert wall(next_cron_time("30 1 * * *", "America/New_York", at(NEW_YORK, 2026, 11, 1, 0, 0)), NEW_YORK) \
        == "2026-11-01 01:30 EDT"


@pytest.mark.parametrize("expression", ["@hourly", "@daily", "@midnight", "0 0 * * mon-fri", "*/5 8-18 * * *"])
def test_usual_expressions_are_accepted(expression: str) -> None:
    assert check_cron(expression)
    assert next_cron_time(expression, "UTC", utc(2026, 3, 10, 9, 0)) > utc(2026, 3, 10, 9, 0)


@pytest.mark.parametrize("expression, reason", [
    ("every day", "5-field"),
    ("* * * * * *", "5-field"),
    ("61 * * * *", "5-field"),
    ("0 0 30 2 *", "never fires"),
])
def test_bad_expressions_say_what_is_wrong(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        check_cron(expression)


def test_unknown_time_zones_are_refused() -> None:
    with pytest.raises(ScheduleError, match="IANA time zone"):
        zone("Mars/Olympus_Mons")
    assert zone("Europe/Berlin") == BERLIN


def test_a_schedule_round_trips_through_storage() -> None:
    schedule = Schedule(cron="0 3 * * *", timezone="Europe/Berlin", grace=300)
    assert Schedule.from_dict(schedule.to_dict()) == schedule
