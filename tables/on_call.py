"""Who is on call, and when: on-call schedules as pure maths over a time zone's wall clock (no I/O).

A schedule (its spec as stored, plain JSON) has a time zone and three kinds of
assignment, each read on the wall clock of that zone:

* entries: a person on call from `start_time` to `end_time` on the days that
  match every filter given — between `start_date` and `end_date` (inclusive;
  no end: for ever), `months_of_year` (1-12), `weeks_of_month` (1-5: the n-th
  such weekday of the month, days 1-7 are week 1; "last": the last 7 days of
  the month) and `week_days` (1-7, ISO: 1 is Monday). An empty filter matches
  every day. An `end_time` at or before `start_time` ends on the next day
  (22:00-06:00 is overnight; 00:00-00:00 is the whole day). The day a shift
  starts is the day that must match.
* layers: `members` take turns of `rotate_every` days or weeks, handing over
  at `handoff_time`; the first turn (members[0]) starts on `start_date` at
  the handoff time, the layer ends at the handoff on `end_date` if one is
  given. `restrictions` (the filters and times of an entry) limit a layer to
  those windows: a weekend layer, office hours.
* overrides: someone else on call from `start` to `end` (ISO date-times; one
  without an offset is read in the schedule's zone).

Precedence at an instant: an override beats every layer (of overlapping
overrides the one listed last wins); a layer beats the layers before it in
the list and every entry (the last layer covering the instant wins); all the
entries covering the instant are on call together.

Daylight saving, as heartbeat cron schedules do it: a wall time skipped when
clocks go forward (02:30 on the night 02:00 becomes 03:00) is taken one gap
later (03:30); a wall time that happens twice is its first occurrence. So a
day is 23, 24 or 25 hours long, and so is a daily turn across the change.

Every interval is half-open, [start, end), in epoch seconds.
"""
from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tables.monitor_views import iso

LAST = "last"
SOURCES = ("override", "layer", "entry")   # strongest first
CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_PREVIEW_DAYS = 92
#: the days a schedule may name: far enough either way, and room to step a day past without overflowing
FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(2199, 12, 31)
#: the instants one may ask about
EARLIEST = datetime(1970, 1, 3, tzinfo=timezone.utc).timestamp()
LATEST = datetime(2199, 12, 1, tzinfo=timezone.utc).timestamp()


class ScheduleInvalid(ValueError):
    """A schedule, or a part of it, that cannot be used; the message names the field."""


@lru_cache(maxsize=1024)
def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleInvalid(f"time_zone: {name!r} is not an IANA time zone such as 'UTC' or "
                              "'Europe/Berlin'") from None


def clock(text: str, field: str = "time") -> time:
    matched = CLOCK.match(text or "")
    if not matched:
        raise ScheduleInvalid(f"{field}: {text!r} is not a time of day as HH:MM (00:00-23:59)")
    return time(int(matched[1]), int(matched[2]))


def wall(day: date, at: time, zone: ZoneInfo) -> float:
    """The instant the wall clock of `zone` shows `at` on `day` (fold=0: a skipped time moves on by the gap,
    a repeated one is its first occurrence)."""
    return datetime.combine(day, at, tzinfo=zone).replace(fold=0).timestamp()


def local_day(at: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(at, zone).date()


# -- the parts of a schedule ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recurrence:
    """Days that match every filter (empty: any), and a window on each from start to end (next day if not after)."""

    months_of_year: frozenset[int] = frozenset()
    weeks_of_month: frozenset[int | str] = frozenset()
    week_days: frozenset[int] = frozenset()
    start_time: time = time(0, 0)
    end_time: time = time(0, 0)
    start_date: date | None = None
    end_date: date | None = None

    def matches(self, day: date) -> bool:
        if self.start_date is not None and day < self.start_date:
            return False
        if self.end_date is not None and day > self.end_date:
            return False
        if self.months_of_year and day.month not in self.months_of_year:
            return False
        if self.week_days and day.isoweekday() not in self.week_days:
            return False
        if self.weeks_of_month:
            week = (day.day - 1) // 7 + 1
            last = day.day + 7 > calendar.monthrange(day.year, day.month)[1]
            if week not in self.weeks_of_month and not (last and LAST in self.weeks_of_month):
                return False
        return True

    def windows(self, start: float, end: float, zone: ZoneInfo) -> Iterator[tuple[float, float]]:
        """Each window overlapping [start, end), whole (not cut to the range), in time order."""
        day, last_day = local_day(start, zone) - timedelta(days=1), local_day(end, zone)
        overnight = self.end_time <= self.start_time
        while day <= last_day:
            if self.matches(day):
                opens = wall(day, self.start_time, zone)
                closes = wall(day + timedelta(days=1) if overnight else day, self.end_time, zone)
                if opens < end and closes > start and closes > opens:
                    yield opens, closes
            day += timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Entry:
    user_id: str
    when: Recurrence


@dataclass(frozen=True, slots=True)
class Layer:
    members: tuple[str, ...]
    period_days: int
    handoff_time: time
    start_date: date
    end_date: date | None = None
    restrictions: Recurrence | None = None
    name: str | None = None

    def handoff(self, turn: int, zone: ZoneInfo) -> float:
        return wall(self.start_date + timedelta(days=turn * self.period_days), self.handoff_time, zone)

    def ends(self, zone: ZoneInfo) -> float:
        return float("inf") if self.end_date is None else wall(self.end_date, self.handoff_time, zone)

    def turn_at(self, at: float, zone: ZoneInfo) -> int:
        """The turn under way at `at` (-1 before the first handoff)."""
        days = (local_day(at, zone) - self.start_date).days
        turn = days // self.period_days
        return turn if self.handoff(turn, zone) <= at else turn - 1

    def turns(self, start: float, end: float, zone: ZoneInfo) -> Iterator[tuple[str, float, float]]:
        """(member, from, until) of each turn overlapping [start, end), within the layer's dates, whole."""
        finish = self.ends(zone)
        turn = max(self.turn_at(start, zone), 0)
        while True:
            opens = self.handoff(turn, zone)
            if opens >= end or opens >= finish:
                return
            closes = min(self.handoff(turn + 1, zone), finish)
            if closes > start:
                yield self.members[turn % len(self.members)], opens, closes
            turn += 1

    def covers(self, start: float, end: float, zone: ZoneInfo) -> Iterator[tuple[str, float, float]]:
        """The turns overlapping [start, end), each cut to the restriction windows if there are any."""
        for member, opens, closes in self.turns(start, end, zone):
            if self.restrictions is None:
                yield member, opens, closes
                continue
            for window_opens, window_closes in self.restrictions.windows(max(opens, start), min(closes, end), zone):
                cut_opens, cut_closes = max(opens, window_opens), min(closes, window_closes)
                if cut_opens < cut_closes:
                    yield member, cut_opens, cut_closes


@dataclass(frozen=True, slots=True)
class Override:
    user_id: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Schedule:
    zone: ZoneInfo
    entries: tuple[Entry, ...] = ()
    layers: tuple[Layer, ...] = ()
    overrides: tuple[Override, ...] = ()

    def members(self) -> set[str]:
        """Every person the schedule names."""
        return ({entry.user_id for entry in self.entries} | {m for layer in self.layers for m in layer.members}
                | {override.user_id for override in self.overrides})


@dataclass(frozen=True, slots=True)
class Shift:
    """Someone on call over [start, end) because of one part of the schedule: `source` and its index there."""

    user_id: str
    start: float
    end: float
    source: str          # "override", "layer" or "entry"
    index: int           # which override, layer or entry (its place in the schedule's list)


# -- reading a spec ------------------------------------------------------------------------------


def _day(text: str | None, field: str) -> date | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ScheduleInvalid(f"{field}: {text!r} is not a date as YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ScheduleInvalid(f"{field}: a date between {FIRST_DAY} and {LAST_DAY}")
    return day


def _instant(text: str, zone: ZoneInfo, field: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ScheduleInvalid(f"{field}: {text!r} is not an ISO 8601 date-time") from None
    if not FIRST_DAY <= moment.date() <= LAST_DAY:
        raise ScheduleInvalid(f"{field}: a time between {FIRST_DAY} and {LAST_DAY}")
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone, fold=0)).timestamp()


def _recurrence(spec: dict, field: str, dated: bool) -> Recurrence:
    weeks = frozenset(spec.get("weeks_of_month") or ())
    if not weeks <= {1, 2, 3, 4, 5, LAST}:
        raise ScheduleInvalid(f"{field}.weeks_of_month: weeks are 1-5 or 'last'")
    months, days = frozenset(spec.get("months_of_year") or ()), frozenset(spec.get("week_days") or ())
    if not months <= set(range(1, 13)):
        raise ScheduleInvalid(f"{field}.months_of_year: months are 1-12")
    if not days <= set(range(1, 8)):
        raise ScheduleInvalid(f"{field}.week_days: days are 1-7 (1 is Monday)")
    start_date = _day(spec.get("start_date"), f"{field}.start_date") if dated else None
    end_date = _day(spec.get("end_date"), f"{field}.end_date") if dated else None
    if start_date is not None and end_date is not None and end_date < start_date:
        raise ScheduleInvalid(f"{field}.end_date: the end date is before the start date")
    return Recurrence(months, weeks, days, clock(spec.get("start_time") or "00:00", f"{field}.start_time"),
                      clock(spec.get("end_time") or "00:00", f"{field}.end_time"), start_date, end_date)


def parse_schedule(spec: dict) -> Schedule:
    """The schedule a stored (or requested) spec describes; ScheduleInvalid names the first field that is wrong."""
    zone = time_zone(spec.get("time_zone") or "UTC")
    entries = []
    for n, entry in enumerate(spec.get("entries") or ()):
        if not entry.get("start_date"):
            raise ScheduleInvalid(f"entries.{n}.start_date: an entry needs a start date")
        entries.append(Entry(entry["user_id"], _recurrence(entry, f"entries.{n}", dated=True)))
    layers = []
    for n, layer in enumerate(spec.get("layers") or ()):
        field = f"layers.{n}"
        members = tuple(layer.get("members") or ())
        if not members:
            raise ScheduleInvalid(f"{field}.members: a layer needs at least one member")
        every = layer.get("rotate_every", 1)
        if not isinstance(every, int) or every < 1:
            raise ScheduleInvalid(f"{field}.rotate_every: a whole number of days or weeks, at least 1")
        start, end = _day(layer.get("start_date"), f"{field}.start_date"), _day(layer.get("end_date"),
                                                                                 f"{field}.end_date")
        if start is None:
            raise ScheduleInvalid(f"{field}.start_date: a layer needs the date of its first handoff")
        if end is not None and end <= start:
            raise ScheduleInvalid(f"{field}.end_date: a layer ends after its start date")
        restrictions = layer.get("restrictions")
        layers.append(Layer(members, every * (7 if layer.get("rotation_unit", "weeks") == "weeks" else 1),
                            clock(layer.get("handoff_time") or "09:00", f"{field}.handoff_time"), start, end,
                            None if restrictions is None else _recurrence(restrictions, f"{field}.restrictions",
                                                                          dated=False),
                            layer.get("name")))
    overrides = []
    for n, override in enumerate(spec.get("overrides") or ()):
        start = _instant(override.get("start"), zone, f"overrides.{n}.start")
        end = _instant(override.get("end"), zone, f"overrides.{n}.end")
        if end <= start:
            raise ScheduleInvalid(f"overrides.{n}.end: an override ends after it starts")
        overrides.append(Override(override["user_id"], start, end))
    return Schedule(zone, tuple(entries), tuple(layers), tuple(overrides))


# -- who, when ---------------------------------------------------------------------------------


def assignments(schedule: Schedule, start: float, end: float) -> list[Shift]:
    """Every assignment overlapping [start, end), whole, before precedence is applied."""
    zone = schedule.zone
    found = [Shift(o.user_id, o.start, o.end, "override", n) for n, o in enumerate(schedule.overrides)
             if o.start < end and o.end > start]
    for n, layer in enumerate(schedule.layers):
        found += [Shift(member, opens, closes, "layer", n) for member, opens, closes in layer.covers(start, end, zone)]
    for n, entry in enumerate(schedule.entries):
        found += [Shift(entry.user_id, opens, closes, "entry", n)
                  for opens, closes in entry.when.windows(start, end, zone)]
    return found


def winners(covering: Sequence[Shift]) -> list[Shift]:
    """Who of the assignments covering one instant is on call: the strongest source decides (module docstring)."""
    for source in SOURCES:
        of_source = [shift for shift in covering if shift.source == source]
        if not of_source:
            continue
        if source == "entry":
            chosen, seen = [], set()
            for shift in sorted(of_source, key=lambda s: s.index):
                if shift.user_id not in seen:
                    seen.add(shift.user_id)
                    chosen.append(shift)
            return chosen
        return [max(of_source, key=lambda s: s.index)]
    return []


def on_call_at(schedule: Schedule, at: float) -> list[Shift]:
    """Who is on call at `at`; each shift is the whole assignment (override, turn, entry window) that puts them there."""
    return winners([s for s in assignments(schedule, at, at + 1e-3) if s.start <= at < s.end])


def shifts_between(schedule: Schedule, start: float, end: float) -> list[Shift]:
    """The shifts that make up [start, end) once precedence is applied, cut to the range, by start then person.

    A shift lasts as long as the same person stays on call for the same reason:
    an override in the middle of a turn splits the turn in two.
    """
    if end <= start:
        return []
    found = sorted(assignments(schedule, start, end), key=lambda s: s.start)
    edges = sorted({start, end} | {t for s in found for t in (s.start, s.end) if start < t < end})
    done: list[Shift] = []
    open_shifts: dict[tuple[str, str, int], Shift] = {}
    active: list[Shift] = []
    upcoming = 0
    for opens, closes in zip(edges, edges[1:]):
        while upcoming < len(found) and found[upcoming].start <= opens:
            active.append(found[upcoming])
            upcoming += 1
        active = [s for s in active if s.end > opens]
        current = winners(active)
        keys = {(s.user_id, s.source, s.index) for s in current}
        for key in [key for key in open_shifts if key not in keys]:
            done.append(open_shifts.pop(key))
        for shift in current:
            key = (shift.user_id, shift.source, shift.index)
            running = open_shifts.get(key)
            open_shifts[key] = Shift(shift.user_id, running.start if running else opens, closes, shift.source,
                                     shift.index)
    done += open_shifts.values()
    return sorted(done, key=lambda s: (s.start, s.user_id, s.source, s.index))


# -- views ---------------------------------------------------------------------------------------


def iso_in(at: float, zone: ZoneInfo) -> str:
    """An instant as ISO 8601 on the schedule's wall clock, with its offset (a reader sees the local hour)."""
    return datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")


def shift_view(shift: Shift, schedule: Schedule, spec: dict) -> dict:
    view = {"user_id": shift.user_id, "start": iso_in(shift.start, schedule.zone),
            "end": iso_in(shift.end, schedule.zone), "hours": round((shift.end - shift.start) / 3600, 4),
            "source": shift.source}
    if shift.source == "layer":
        view["layer"] = {"index": shift.index, "name": (spec.get("layers") or [])[shift.index].get("name")}
    elif shift.source == "override":
        view["override"] = {"index": shift.index, "id": (spec.get("overrides") or [])[shift.index].get("id")}
    else:
        view["entry"] = {"index": shift.index}
    return view


# -- stored schedules --------------------------------------------------------------------------
#
# Keys of the `on_call_schedules` table, in the organisation's partition (the team's own, so members are
# checked where they are kept), written by the commands agent only:
#
#     <org> 00 <schedule id>  -> {pos, id, org_id, owner_id (None: the team's; a person's id: theirs), spec,
#                                 created_at, updated_at}

MAX_SCHEDULES_PER_ORG = 100


def schedule_view(record: dict) -> dict:
    return {"id": record["id"], "scope": "team" if record["owner_id"] is None else "account",
            "owner_id": record["owner_id"], **record["spec"], "created_at": iso(record["created_at"]),
            "updated_at": iso(record["updated_at"])}


def strangers(schedule: Schedule, members: Sequence[str], owner_id: str | None) -> list[str]:
    """The people a schedule names who may not be in it: non-members of the team; in a person's own schedule,
    anyone but them."""
    allowed = set(members) if owner_id is None else {owner_id} & set(members)
    return sorted(schedule.members() - allowed)


def team_on_call(records: Sequence[dict], members: dict[str, dict], at: float) -> list[dict]:
    """Who is on call for a team at `at`, by every schedule of the team and its members' own schedules.

    `members`: the team's members by user id ({email, name, role}); a person
    no longer a member is never on call. One row per (person, schedule), the
    team's schedules first, then by schedule creation.
    """
    rows = []
    for record in sorted(records, key=lambda r: (r["owner_id"] is not None, r["created_at"], r["id"])):
        schedule = parse_schedule(record["spec"])
        for shift in on_call_at(schedule, at):
            member = members.get(shift.user_id)
            if member is None:
                continue
            rows.append({**shift_view(shift, schedule, record["spec"]), "name": member.get("name"),
                         "email": member.get("email"),
                         "schedule": {"id": record["id"], "name": record["spec"].get("name"),
                                      "scope": "team" if record["owner_id"] is None else "account"}})
    return rows
