"""On-call schedule maths: entries, rotation layers, overrides, precedence, DST and month ends (tables/on_call.py)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tables.on_call import ScheduleInvalid, on_call_at, parse_schedule, shifts_between, strangers, team_on_call

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")


def at(zone: ZoneInfo, *parts: int, fold: int = 0) -> float:
    return datetime(*parts, tzinfo=zone, fold=fold).timestamp()


def wall(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M %Z")


def who(spec: dict, moment: float) -> list[str]:
    return [shift.user_id for shift in on_call_at(parse_schedule(spec), moment)]


def entry(user: str, **fields) -> dict:
    return {"user_id": user, "start_date": "2024-01-01", **fields}


def layer(members: list[str], **fields) -> dict:
    return {"members": members, "start_date": "2026-01-05", **fields}


# -- entries ----------------------------------------------------------------------------------------------


def test_an_entry_is_on_call_between_its_times_on_matching_days_only() -> None:
    spec = {"time_zone": "Europe/Berlin",
            "entries": [entry("ana", week_days=[1, 2, 3, 4, 5], start_time="09:00", end_time="17:00")]}
    assert who(spec, at(BERLIN, 2026, 3, 10, 9, 0)) == ["ana"]        # a Tuesday, at the start
    assert who(spec, at(BERLIN, 2026, 3, 10, 16, 59)) == ["ana"]
    assert who(spec, at(BERLIN, 2026, 3, 10, 17, 0)) == []            # the end is not inside
    assert who(spec, at(BERLIN, 2026, 3, 14, 12, 0)) == []            # a Saturday


def test_an_entry_keeps_to_its_dates_months_and_time_zone() -> None:
    spec = {"time_zone": "America/New_York",
            "entries": [entry("bo", start_date="2026-06-01", end_date="2026-08-31", months_of_year=[7],
                              start_time="08:00", end_time="12:00")]}
    assert who(spec, at(NEW_YORK, 2026, 7, 15, 8, 30)) == ["bo"]
    assert who(spec, at(UTC, 2026, 7, 15, 8, 30)) == []              # 04:30 in New York
    assert who(spec, at(NEW_YORK, 2026, 6, 15, 8, 30)) == []         # June is not a chosen month
    assert who(spec, at(NEW_YORK, 2027, 7, 15, 8, 30)) == []         # after the end date
    assert who(spec, at(NEW_YORK, 2026, 8, 31, 11, 59)) == []        # August: not chosen either


def test_an_overnight_entry_starts_on_the_matching_day_and_ends_the_next_morning() -> None:
    spec = {"time_zone": "Europe/Berlin",
            "entries": [entry("cy", week_days=[5], start_time="22:00", end_time="06:00")]}   # Friday nights
    assert who(spec, at(BERLIN, 2026, 3, 13, 23, 0)) == ["cy"]       # Friday 23:00
    assert who(spec, at(BERLIN, 2026, 3, 14, 5, 59)) == ["cy"]       # Saturday morning: still Friday's shift
    assert who(spec, at(BERLIN, 2026, 3, 14, 6, 0)) == []
    assert who(spec, at(BERLIN, 2026, 3, 13, 5, 0)) == []            # Friday morning belongs to Thursday night
    [shift] = shifts_between(parse_schedule(spec), at(BERLIN, 2026, 3, 13), at(BERLIN, 2026, 3, 15))
    assert (wall(shift.start, BERLIN), wall(shift.end, BERLIN)) == ("2026-03-13 22:00 CET", "2026-03-14 06:00 CET")


def test_weeks_of_month_count_weekdays_and_last_means_the_final_seven_days() -> None:
    first_monday = {"entries": [entry("di", week_days=[1], weeks_of_month=[1])]}
    assert who(first_monday, at(UTC, 2026, 6, 1, 12)) == ["di"]      # Monday 1 June
    assert who(first_monday, at(UTC, 2026, 6, 8, 12)) == []
    last_friday = {"entries": [entry("di", week_days=[5], weeks_of_month=["last"])]}
    assert who(last_friday, at(UTC, 2026, 7, 31, 12)) == ["di"]       # the 31st: a fifth Friday, the last
    assert who(last_friday, at(UTC, 2026, 7, 24, 12)) == []
    assert who(last_friday, at(UTC, 2026, 2, 27, 12)) == ["di"]       # February 2026 has 28 days
    fifth = {"entries": [entry("di", weeks_of_month=[5])]}
    assert who(fifth, at(UTC, 2026, 3, 29, 12)) == ["di"]
    assert who(fifth, at(UTC, 2026, 3, 28, 12)) == []


def test_month_ends_the_31st_and_february_29_in_a_leap_year() -> None:
    leap_day = {"entries": [entry("ed", start_date="2028-02-29", end_date="2028-02-29")]}
    assert who(leap_day, at(UTC, 2028, 2, 29, 23, 59)) == ["ed"]
    assert who(leap_day, at(UTC, 2028, 3, 1, 0, 0)) == []
    last_week = {"entries": [entry("ed", weeks_of_month=["last"])]}
    assert who(last_week, at(UTC, 2028, 2, 23, 12)) == ["ed"]         # 29-day February: the 23rd is in its last 7
    assert who(last_week, at(UTC, 2028, 2, 22, 12)) == []
    assert who(last_week, at(UTC, 2026, 2, 22, 12)) == ["ed"]         # 28 days: the 22nd is
    assert who(last_week, at(UTC, 2026, 1, 25, 12)) == ["ed"]         # 31 days: from the 25th
    assert who(last_week, at(UTC, 2026, 1, 24, 12)) == []
    overnight_at_month_end = {"entries": [entry("ed", months_of_year=[1], start_time="22:00", end_time="06:00")]}
    assert who(overnight_at_month_end, at(UTC, 2026, 2, 1, 5)) == ["ed"]    # January 31st's night
    assert who(overnight_at_month_end, at(UTC, 2026, 2, 1, 23)) == []


def test_overlapping_entries_are_on_call_together() -> None:
    spec = {"entries": [entry("fa", start_time="08:00", end_time="18:00"),
                        entry("gu", start_time="12:00", end_time="20:00")]}
    assert who(spec, at(UTC, 2026, 5, 5, 13)) == ["fa", "gu"]
    assert who(spec, at(UTC, 2026, 5, 5, 19)) == ["gu"]


# -- daylight saving ------------------------------------------------------------------------------------


def test_a_whole_day_entry_lasts_25_hours_when_clocks_go_back_and_23_when_they_go_forward() -> None:
    spec = {"time_zone": "Europe/Berlin", "entries": [entry("ha")]}
    schedule = parse_schedule(spec)
    [fall] = [s for s in shifts_between(schedule, at(BERLIN, 2026, 10, 25, 1), at(BERLIN, 2026, 10, 25, 23))]
    [day] = [s for s in on_call_at(schedule, at(BERLIN, 2026, 10, 25, 12))]
    assert (day.end - day.start) / 3600 == 25
    assert (wall(day.start, BERLIN), wall(day.end, BERLIN)) == ("2026-10-25 00:00 CEST", "2026-10-26 00:00 CET")
    assert fall.source == "entry"
    [spring] = on_call_at(schedule, at(BERLIN, 2026, 3, 29, 12))
    assert (spring.end - spring.start) / 3600 == 23


def test_an_overnight_shift_across_the_repeated_hour_is_one_hour_longer() -> None:
    spec = {"time_zone": "America/New_York", "entries": [entry("io", start_time="22:00", end_time="06:00")]}
    [shift] = on_call_at(parse_schedule(spec), at(NEW_YORK, 2026, 11, 1, 1, 30, fold=1))  # the second 01:30
    assert (shift.end - shift.start) / 3600 == 9
    assert wall(shift.start, NEW_YORK) == "2026-10-31 22:00 EDT"
    assert wall(shift.end, NEW_YORK) == "2026-11-01 06:00 EST"


def test_a_handoff_at_a_time_that_does_not_exist_happens_one_gap_later() -> None:
    # Berlin: 2026-03-29 02:00 becomes 03:00; a daily 02:30 handoff that night is at 03:30 CEST
    spec = {"time_zone": "Europe/Berlin",
            "layers": [layer(["jo", "ki"], rotation_unit="days", handoff_time="02:30", start_date="2026-03-27")]}
    schedule = parse_schedule(spec)
    shifts = shifts_between(schedule, at(BERLIN, 2026, 3, 28, 12), at(BERLIN, 2026, 3, 30, 12))
    assert [(s.user_id, wall(s.start, BERLIN), wall(s.end, BERLIN)) for s in shifts] == [
        ("ki", "2026-03-28 12:00 CET", "2026-03-29 03:30 CEST"),
        ("jo", "2026-03-29 03:30 CEST", "2026-03-30 02:30 CEST"),
        ("ki", "2026-03-30 02:30 CEST", "2026-03-30 12:00 CEST"),
    ]
    assert who(spec, at(BERLIN, 2026, 3, 29, 3, 15)) == ["ki"]        # 03:15 CEST: before the moved handoff
    [turn] = on_call_at(schedule, at(BERLIN, 2026, 3, 29, 12))
    assert (turn.end - turn.start) / 3600 == 23
    [before] = on_call_at(schedule, at(BERLIN, 2026, 3, 28, 12))
    assert (before.end - before.start) / 3600 == 24                  # 02:30 CET to 03:30 CEST


def test_a_handoff_in_the_repeated_hour_happens_at_its_first_occurrence() -> None:
    # New York: 2026-11-01 02:00 EDT becomes 01:00 EST; a weekly 01:30 Sunday handoff is at the first 01:30
    spec = {"time_zone": "America/New_York",
            "layers": [layer(["lu", "mo"], handoff_time="01:30", start_date="2026-10-25")]}
    assert who(spec, at(NEW_YORK, 2026, 11, 1, 1, 29)) == ["lu"]
    assert who(spec, at(NEW_YORK, 2026, 11, 1, 1, 30)) == ["mo"]
    assert who(spec, at(NEW_YORK, 2026, 11, 1, 1, 10, fold=1)) == ["mo"]  # the second 01:10 is after it
    [turn] = on_call_at(parse_schedule(spec), at(NEW_YORK, 2026, 11, 3))
    assert (turn.end - turn.start) / 3600 == 7 * 24 + 1                # from 01:30 EDT to 01:30 EST


def test_a_weekly_handoff_keeps_its_wall_clock_time_across_the_change() -> None:
    spec = {"time_zone": "Europe/Berlin", "layers": [layer(["na", "ol", "pi"], handoff_time="09:00",
                                                           start_date="2026-10-19")]}
    [turn] = on_call_at(parse_schedule(spec), at(BERLIN, 2026, 10, 27))
    assert turn.user_id == "ol"
    assert (wall(turn.start, BERLIN), wall(turn.end, BERLIN)) == ("2026-10-26 09:00 CET", "2026-11-02 09:00 CET")
    [across] = on_call_at(parse_schedule(spec), at(BERLIN, 2026, 10, 22))
    assert (across.end - across.start) / 3600 == 7 * 24 + 1


# -- rotation layers ---------------------------------------------------------------------------------------


def test_members_take_turns_every_n_days_from_the_first_handoff() -> None:
    spec = {"layers": [layer(["a", "b", "c"], rotate_every=2, rotation_unit="days", handoff_time="09:00")]}
    assert who(spec, at(UTC, 2026, 1, 5, 8, 59)) == []                 # before the first handoff
    assert who(spec, at(UTC, 2026, 1, 5, 9)) == ["a"]
    assert who(spec, at(UTC, 2026, 1, 7, 8, 59)) == ["a"]
    assert who(spec, at(UTC, 2026, 1, 7, 9)) == ["b"]
    assert who(spec, at(UTC, 2026, 1, 11, 9)) == ["a"]                 # round again after three turns
    assert who(spec, at(UTC, 2027, 1, 5, 9)) == ["c"]                  # 365 days on: turn 182, and 182 % 3 == 2


def test_weekly_turns_and_a_layer_that_ends() -> None:
    spec = {"layers": [layer(["a", "b"], rotate_every=1, rotation_unit="weeks", handoff_time="10:00",
                             end_date="2026-01-26")]}
    assert who(spec, at(UTC, 2026, 1, 12, 9, 59)) == ["a"]
    assert who(spec, at(UTC, 2026, 1, 12, 10)) == ["b"]
    assert who(spec, at(UTC, 2026, 1, 26, 9, 59)) == ["a"]
    assert who(spec, at(UTC, 2026, 1, 26, 10)) == []                   # the layer ended at that handoff


def test_a_restricted_layer_covers_only_its_windows_and_beats_the_layer_below() -> None:
    spec = {"time_zone": "Europe/Berlin",
            "layers": [layer(["day1", "day2"], rotation_unit="weeks", handoff_time="09:00"),
                       layer(["night"], name="nights", handoff_time="00:00",
                             restrictions={"start_time": "20:00", "end_time": "08:00", "week_days": [1, 2, 3, 4, 5]})]}
    assert who(spec, at(BERLIN, 2026, 1, 6, 12)) == ["day1"]           # Tuesday noon: the lower layer
    assert who(spec, at(BERLIN, 2026, 1, 6, 21)) == ["night"]          # Tuesday night: the upper one
    assert who(spec, at(BERLIN, 2026, 1, 7, 7, 59)) == ["night"]
    assert who(spec, at(BERLIN, 2026, 1, 10, 21)) == ["day1"]          # Saturday night: not restricted in
    shifts = shifts_between(parse_schedule(spec), at(BERLIN, 2026, 1, 6, 12), at(BERLIN, 2026, 1, 7, 12))
    assert [(s.user_id, s.source, s.index, wall(s.start, BERLIN)[11:16], wall(s.end, BERLIN)[11:16])
            for s in shifts] == [("day1", "layer", 0, "12:00", "20:00"), ("night", "layer", 1, "20:00", "08:00"),
                                 ("day1", "layer", 0, "08:00", "12:00")]


def test_a_layer_beats_entries_and_the_last_layer_wins_where_layers_overlap() -> None:
    spec = {"entries": [entry("e")],
            "layers": [layer(["low"], handoff_time="00:00", start_date="2026-02-01", end_date="2026-03-01"),
                       layer(["high"], handoff_time="00:00", start_date="2026-02-10", end_date="2026-02-12")]}
    assert who(spec, at(UTC, 2026, 1, 20)) == ["e"]
    assert who(spec, at(UTC, 2026, 2, 5)) == ["low"]
    assert who(spec, at(UTC, 2026, 2, 11)) == ["high"]
    assert who(spec, at(UTC, 2026, 2, 20)) == ["low"]
    assert who(spec, at(UTC, 2026, 3, 2)) == ["e"]


# -- overrides --------------------------------------------------------------------------------------------


def test_an_override_beats_every_layer_and_splits_the_turn_it_interrupts() -> None:
    spec = {"time_zone": "Europe/Berlin",
            "layers": [layer(["a", "b"], handoff_time="09:00")],
            "overrides": [{"id": "ovr_1", "user_id": "sub", "start": "2026-01-07T12:00", "end": "2026-01-07T18:00"}]}
    assert who(spec, at(BERLIN, 2026, 1, 7, 11, 59)) == ["a"]
    assert who(spec, at(BERLIN, 2026, 1, 7, 12)) == ["sub"]            # a time without offset: Berlin's clock
    assert who(spec, at(BERLIN, 2026, 1, 7, 18)) == ["a"]
    shifts = shifts_between(parse_schedule(spec), at(BERLIN, 2026, 1, 7), at(BERLIN, 2026, 1, 8))
    assert [(s.user_id, s.source, wall(s.start, BERLIN)[11:16], wall(s.end, BERLIN)[11:16]) for s in shifts] == [
        ("a", "layer", "00:00", "12:00"), ("sub", "override", "12:00", "18:00"), ("a", "layer", "18:00", "00:00")]


def test_of_overlapping_overrides_the_last_listed_wins_and_offsets_are_honoured() -> None:
    spec = {"entries": [entry("e")],
            "overrides": [{"user_id": "first", "start": "2026-05-01T00:00:00Z", "end": "2026-05-03T00:00:00Z"},
                          {"user_id": "second", "start": "2026-05-02T02:00:00+02:00",
                           "end": "2026-05-02T12:00:00+02:00"}]}
    assert who(spec, at(UTC, 2026, 5, 1, 12)) == ["first"]
    assert who(spec, at(UTC, 2026, 5, 2, 0, 0)) == ["second"]          # 02:00+02:00 is midnight UTC
    assert who(spec, at(UTC, 2026, 5, 2, 10)) == ["first"]
    assert who(spec, at(UTC, 2026, 5, 3)) == ["e"]


# -- previews --------------------------------------------------------------------------------------------


def test_a_fourteen_day_preview_lists_each_turn_cut_to_the_range() -> None:
    spec = {"time_zone": "America/New_York", "layers": [layer(["a", "b", "c"], rotation_unit="days",
                                                              handoff_time="09:00", start_date="2026-03-01")]}
    start = at(NEW_YORK, 2026, 3, 1, 12)
    shifts = shifts_between(parse_schedule(spec), start, start + 14 * 86400)
    assert len(shifts) == 15 and shifts[0].start == start and shifts[-1].end == start + 14 * 86400
    assert [s.user_id for s in shifts[:4]] == ["a", "b", "c", "a"]
    assert all(a.end == b.start for a, b in zip(shifts, shifts[1:]))   # no gaps, no overlaps
    lengths = {wall(s.start, NEW_YORK)[:10]: (s.end - s.start) / 3600 for s in shifts[1:-1]}
    assert lengths["2026-03-07"] == 23                                  # Saturday 09:00 EST to Sunday 09:00 EDT
    assert lengths["2026-03-08"] == 24


def test_no_one_on_call_is_an_empty_answer_and_an_empty_range_has_no_shifts() -> None:
    schedule = parse_schedule({"time_zone": "UTC"})
    assert on_call_at(schedule, at(UTC, 2026, 1, 1)) == []
    assert shifts_between(schedule, 10.0, 10.0) == []


# -- what cannot be used -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, field", [
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
    ({"entries": [entry("a", start_date="2026-02-10", end_date="2026-02-01")]}, "entries.0.end_date"),
    ({"entries": [entry("a", start_time="25:00")]}, "entries.0.start_time"),
    ({"entries": [entry("a", start_date="2026-02-30")]}, "entries.0.start_date"),
    ({"entries": [entry("a", weeks_of_month=[6])]}, "entries.0.weeks_of_month"),
    ({"entries": [entry("a", week_days=[0])]}, "entries.0.week_days"),
    ({"layers": [layer([])]}, "layers.0.members"),
    ({"layers": [layer(["a"], rotate_every=0)]}, "layers.0.rotate_every"),
    ({"layers": [layer(["a"], end_date="2026-01-05")]}, "layers.0.end_date"),
    ({"overrides": [{"user_id": "a", "start": "2026-01-02T00:00", "end": "2026-01-01T00:00"}]}, "overrides.0.end"),
    ({"overrides": [{"user_id": "a", "start": "soon", "end": "2026-01-01T00:00"}]}, "overrides.0.start"),
])
def test_a_schedule_that_cannot_be_used_names_the_field(spec: dict, field: str) -> None:
    with pytest.raises(ScheduleInvalid, match=f"^{field}: "):
        parse_schedule(spec)


# -- a team's schedules together ----------------------------------------------------------------------------


def record(schedule_id: str, spec: dict, owner_id: str | None = None, created_at: float = 0.0) -> dict:
    return {"id": schedule_id, "owner_id": owner_id, "spec": {"name": schedule_id, **spec}, "created_at": created_at}


def test_the_team_answer_lists_every_schedule_team_ones_first_and_members_only() -> None:
    members = {"ana": {"name": "Ana", "email": "ana@example.com"}, "bo": {"name": "Bo", "email": "bo@example.com"}}
    records = [record("own", {"entries": [entry("bo")]}, owner_id="bo", created_at=1.0),
               record("secondary", {"entries": [entry("gone")]}, created_at=3.0),
               record("primary", {"layers": [layer(["ana"], handoff_time="00:00")]}, created_at=2.0)]
    rows = team_on_call(records, members, at(UTC, 2026, 2, 1))
    assert [(r["user_id"], r["schedule"]["id"], r["schedule"]["scope"], r["email"]) for r in rows] == [
        ("ana", "primary", "team", "ana@example.com"), ("bo", "own", "account", "bo@example.com")]
    assert rows[0]["layer"] == {"index": 0, "name": None} and rows[0]["hours"] == 24 * 7


def test_a_schedule_may_name_members_only_and_a_persons_own_only_them() -> None:
    schedule = parse_schedule({"entries": [entry("ana")], "layers": [layer(["bo", "cy"])],
                               "overrides": [{"user_id": "dee", "start": "2026-01-01T00:00",
                                              "end": "2026-01-02T00:00"}]})
    assert strangers(schedule, ["ana", "bo", "cy", "dee"], None) == []
    assert strangers(schedule, ["ana", "bo"], None) == ["cy", "dee"]
    assert strangers(schedule, ["ana", "bo", "cy", "dee"], "ana") == ["bo", "cy", "dee"]
    assert strangers(parse_schedule({"entries": [entry("ana")]}), ["bo"], "ana") == ["ana"]  # no longer a member
