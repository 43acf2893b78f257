"""On-call schedules: who is on call when, for a team or for one person; and the answers about them.

`ScheduleSpec` is the body of POST and PUT /v1/team/{id}/schedules[/{schedule}]
and /v1/account/schedules[/{schedule}]. The rules (what each field means, DST,
precedence) are tables/on_call.py; validation runs them once, so a schedule that
is stored is one they can use.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tables.on_call import ScheduleInvalid, parse_schedule, time_zone

CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$"
USER_ID = Field(min_length=1, max_length=64, description="a member of the team (GET /v1/team/{id}/members)")


class Recurrence(BaseModel):
    """The days a window opens on (every filter must match; an empty one matches every day), and the window."""

    model_config = ConfigDict(extra="forbid")
    months_of_year: list[int] = Field(default_factory=list, max_length=12, description="1-12; empty: every month")
    weeks_of_month: list[Literal[1, 2, 3, 4, 5, "last"]] = Field(
        default_factory=list, max_length=6,
        description="the n-th such weekday of the month (days 1-7 are week 1); 'last': the month's last 7 days")
    week_days: list[int] = Field(default_factory=list, max_length=7, description="1-7, 1 is Monday; empty: every day")
    start_time: str = Field("00:00", pattern=CLOCK, description="HH:MM on the schedule's wall clock")
    end_time: str = Field("00:00", pattern=CLOCK,
                          description="HH:MM; at or before start_time: the next day (22:00-06:00 is overnight)")


class Entry(Recurrence):
    """A person on call in a window on the days that match, from start_date to end_date (inclusive)."""

    user_id: str = USER_ID
    start_date: dt.date
    end_date: dt.date | None = Field(None, description="inclusive; none: for ever")


class Layer(BaseModel):
    """Members take turns of `rotate_every` days or weeks, handing over at `handoff_time`; later layers win."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=255)
    members: list[str] = Field(min_length=1, max_length=50, description="in turn order; the first starts")
    rotate_every: int = Field(1, ge=1, le=365)
    rotation_unit: Literal["days", "weeks"] = "weeks"
    handoff_time: str = Field("09:00", pattern=CLOCK)
    start_date: dt.date = Field(description="the day of the first handoff")
    end_date: dt.date | None = Field(None, description="the layer ends at the handoff time of this day")
    restrictions: Recurrence | None = Field(None, description="only in these windows (e.g. nights, weekends)")


class Override(BaseModel):
    """Someone else on call from `start` to `end`, above every layer (a time without offset: the schedule's zone)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, max_length=64, description="given when absent")
    user_id: str = USER_ID
    start: dt.datetime
    end: dt.datetime
    reason: str | None = Field(None, max_length=1000)


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2000)
    time_zone: str = Field("UTC", max_length=64, description="IANA, e.g. Europe/Berlin: every time is read there")
    entries: list[Entry] = Field(default_factory=list, max_length=100)
    layers: list[Layer] = Field(default_factory=list, max_length=20)
    overrides: list[Override] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _usable(self) -> ScheduleSpec:
        try:
            parse_schedule(self.stored())
            zone = time_zone(self.time_zone)
        except ScheduleInvalid as exc:
            raise ValueError(str(exc)) from None
        for override in self.overrides:  # stored with the offset they had on the schedule's clock, and an id
            override.id = override.id or "ovr_" + uuid.uuid4().hex[:12]
            override.start, override.end = (
                moment if moment.tzinfo else dt.datetime.fromtimestamp(moment.replace(tzinfo=zone).timestamp(), zone)
                for moment in (override.start, override.end))
        return self

    def stored(self) -> dict:
        return self.model_dump(mode="json")


# -- what the API answers ----------------------------------------------------------------


class Schedule(ScheduleSpec):
    model_config = ConfigDict(extra="allow")
    id: str
    scope: Literal["team", "account"]
    owner_id: str | None = Field(description="the person whose own schedule it is; null: the team's")
    created_at: str
    updated_at: str


class ShiftSource(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int


class Shift(BaseModel):
    """Someone on call from `start` to `end` (the schedule's wall clock, with offset) because of `source`."""

    model_config = ConfigDict(extra="allow")
    user_id: str
    start: str
    end: str
    hours: float
    source: Literal["override", "layer", "entry"]
    layer: ShiftSource | None = None
    override: ShiftSource | None = None
    entry: ShiftSource | None = None


class Preview(BaseModel):
    schedule_id: str
    time_zone: str
    start: str
    end: str
    shifts: list[Shift]


class ScheduleRef(BaseModel):
    id: str
    name: str
    scope: Literal["team", "account"]


class OnCallShift(Shift):
    name: str | None
    email: str | None
    schedule: ScheduleRef


class OnCall(BaseModel):
    team_id: str
    at: str
    on_call: list[OnCallShift]
