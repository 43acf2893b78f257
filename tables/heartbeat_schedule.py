"""When a heartbeat's next check-in is due: a plain interval, or a cron expression in a time zone.

A cron expression is read on the wall clock of its time zone, as cron itself
runs. Daylight-saving changes are resolved on the side of no false alarm:

* a time skipped when clocks go forward (02:30 on the night 02:00 becomes
  03:00) is due as if the clock had not jumped: one gap later (03:30);
* a time that happens twice when clocks go back (02:30 on the night 03:00
  becomes 02:00 again) is due once, at its first occurrence; a check-in in
  the repeated hour waits for the next wall-clock time after the repeat.

A heartbeat is late once a due time plus its grace has passed with no
successful check-in; a run (a `run` check-in) is late once grace has passed
without its `complete` or `fail`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


class ScheduleError(ValueError):
    """A cron expression or time zone we cannot use."""


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{name!r} is not an IANA time zone such as 'UTC' or 'Europe/Berlin'") from None


def check_cron(expression: str) -> str:
    """The expression, if it is a 5-field cron expression (or @hourly, @daily, ...) that ever fires."""
    stripped = expression.strip()
    if stripped.lower() == "@midnight":
        stripped = "@daily"
    if not (len(stripped.split()) == 5 or stripped.lower() in MACROS) or not croniter.is_valid(stripped):
        raise ScheduleError(f"{expression!r} is not a 5-field cron expression such as '*/15 * * * *' or '0 3 * * sun'")
    try:
        croniter(stripped, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterBadDateError, CroniterBadCronError):
        raise ScheduleError(f"{expression!r} never fires (no such date)") from None
    return stripped


def next_cron_time(expression: str, timezone: str, after: float) -> float:
    """The first time strictly after `after` (epoch seconds) at which the expression fires."""
    tz = zone(timezone)
    wall = datetime.fromtimestamp(after, tz).replace(tzinfo=None)
    times = croniter(check_cron(expression), wall)
    while True:
        candidate: datetime = times.get_next(datetime)
        # fold=0: a repeated time is its first occurrence, a skipped one moves forward by the gap
        at = candidate.replace(tzinfo=tz, fold=0).timestamp()
        if at > after:
            return at


@dataclass(frozen=True, slots=True)
class Schedule:
    """How often a job checks in (interval seconds, or cron in a time zone) and how late it may be."""

    interval: int | None = None
    cron: str | None = None
    timezone: str = "UTC"
    grace: int = 60

    def next_due(self, after: float) -> float:
        """When the next check-in is due, given a successful one at `after`."""
        if self.cron is not None:
            return next_cron_time(self.cron, self.timezone, after)
        if self.interval is None:
            raise ScheduleError("a schedule needs an interval or a cron expression")
        return after + self.interval

    def late_after(self, last_success: float) -> float:
        """The moment a heartbeat whose last success was at `last_success` goes down."""
        return self.next_due(last_success) + self.grace

    def run_late_after(self, started: float) -> float:
        """The moment a run started at `started` and not finished makes the heartbeat go down."""
        return started + self.grace

    def to_dict(self) -> dict:
        return {"interval": self.interval, "cron": self.cron, "timezone": self.timezone, "grace": self.grace}

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        return cls(interval=d.get("interval"), cron=d.get("cron"), timezone=d.get("timezone") or "UTC",
                   grace=int(d.get("grace", 60)))
