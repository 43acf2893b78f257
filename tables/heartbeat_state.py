"""The heartbeat state machine: check-ins and expired deadlines in, transitions out.

Rules (Healthchecks' model, with overlapping runs):

- A heartbeat is "new" until its first check-in; "paused" while disabled.
- A successful check-in (`tick` or `complete`) makes it "up"; from "down" that
  is a `heartbeat.recovered` transition, from "new" no transition (a first
  success is not a recovery). A `fail` makes it "down" (`heartbeat.down`,
  cause "failed"). A `run` marks a job start and changes no status; a `log`
  changes nothing but the history.
- Runs are paired with their end by `rid`; a run without a rid pairs with
  the next end without one. A `tick` that pairs with an open run ends it and
  is recorded as `complete`, so `curl .../start; job; curl ...` measures the
  job. Pairing gives the run's duration; at most MAX_OPEN_RUNS stay open.
- While "up", the heartbeat goes down (cause "missed") once the schedule's
  next due time after the last success, plus grace, passes. While "new" or
  "up", it goes down (cause "run_timeout") once a run has been open for
  longer than grace; such a run is then marked overdue and no longer counts,
  though its late end is still measured. "down" has no deadline.
- The next deadline is kept as integer milliseconds. Expiring is a
  compare-and-set: it transitions only if the deadline is still the one the
  timer saw, so a repeated or stale tick changes nothing.
- Times are the check-ins' received_at and the deadlines themselves, never
  the clock of whoever applies them, so a replay gives the same result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from tables.heartbeat_schedule import Schedule

NEW = "new"
UP = "up"
DOWN = "down"
PAUSED = "paused"

TICK, RUN, COMPLETE, FAIL, LOG = "tick", "run", "complete", "fail", "log"
RESULTS = (TICK, RUN, COMPLETE, FAIL, LOG)

HEARTBEAT_DOWN = "heartbeat.down"
HEARTBEAT_RECOVERED = "heartbeat.recovered"
MISSED, RUN_TIMEOUT, FAILED = "missed", "run_timeout", "failed"

MAX_OPEN_RUNS = 100
ANONYMOUS = ""  # the run key of a run started without a rid


def to_ms(moment: float) -> int:
    """Deadlines in whole milliseconds, never before the moment itself."""
    return math.ceil(round(moment * 1000, 3))


@dataclass(frozen=True, slots=True)
class Transition:
    kind: str
    at: float
    previous: str
    current: str
    cause: str | None


@dataclass(frozen=True, slots=True)
class CheckInOutcome:
    result: str                  # as recorded: a tick that ends a run is a complete
    duration: float | None       # seconds, when the check-in ended a run
    transition: Transition | None


@dataclass(slots=True)
class HeartbeatState:
    status: str = NEW
    since: float | None = None
    last_check_in_at: float | None = None
    last_success_at: float | None = None
    #: run key (rid, or "" without one) -> [started_at, overdue]
    runs: dict[str, list] = field(default_factory=dict)
    deadline_ms: int | None = None
    deadline_cause: str | None = None

    # -- input ----------------------------------------------------------------

    def check_in(self, schedule: Schedule, result: str, at: float, rid: str | None = None) -> CheckInOutcome:
        """Apply one check-in received at `at`; the deadline is planned again."""
        if result not in RESULTS:
            raise ValueError(f"a check-in result is one of {', '.join(RESULTS)}, not {result!r}")
        if result == LOG:
            return CheckInOutcome(LOG, None, None)
        if self.last_check_in_at is None or at > self.last_check_in_at:
            self.last_check_in_at = at
        key = rid or ANONYMOUS
        if result == RUN:
            self.runs.pop(key, None)  # a restarted rid moves to the end: the newest run
            self.runs[key] = [at, False]
            while len(self.runs) > MAX_OPEN_RUNS:
                del self.runs[next(iter(self.runs))]
            self.plan(schedule)
            return CheckInOutcome(RUN, None, None)
        run = self.runs.pop(key, None)
        duration = None if run is None else max(0.0, round(at - run[0], 3))
        recorded = COMPLETE if result == TICK and run is not None else result
        transition = None
        if result == FAIL:
            if self.status not in (DOWN, PAUSED):
                transition = self._become(DOWN, at, HEARTBEAT_DOWN, FAILED)
        else:
            if self.last_success_at is None or at > self.last_success_at:
                self.last_success_at = at
            if self.status == DOWN:
                transition = self._become(UP, at, HEARTBEAT_RECOVERED, None)
            elif self.status == NEW:
                self._become(UP, at, None, None)
        self.plan(schedule)
        return CheckInOutcome(recorded, duration, transition)

    def expire(self, schedule: Schedule, deadline_ms: int) -> Transition | None:
        """The timer saw `deadline_ms` pass: go down if that is still the deadline (compare-and-set)."""
        if self.deadline_ms is None or self.deadline_ms != deadline_ms:
            return None
        at = deadline_ms / 1000
        for run in self.runs.values():
            if not run[1] and to_ms(schedule.run_late_after(run[0])) <= deadline_ms:
                run[1] = True  # counted as late once; its end is still measured
        transition = self._become(DOWN, at, HEARTBEAT_DOWN, self.deadline_cause)
        self.plan(schedule)
        return transition

    def configure(self, schedule: Schedule, enabled: bool, at: float) -> None:
        """A new configuration: disabling pauses; enabling starts afresh as new; the deadline follows."""
        if not enabled:
            if self.status != PAUSED:
                self.status, self.since = PAUSED, at
        elif self.status == PAUSED:
            self.status, self.since = NEW, at
            self.runs.clear()
        self.plan(schedule)

    # -- deadline -------------------------------------------------------------

    def plan(self, schedule: Schedule) -> None:
        """The next moment this heartbeat goes down unless a check-in comes first."""
        candidates: list[tuple[int, str]] = []
        if self.status == UP and self.last_success_at is not None:
            candidates.append((to_ms(schedule.late_after(self.last_success_at)), MISSED))
        if self.status in (NEW, UP):
            candidates.extend((to_ms(schedule.run_late_after(started)), RUN_TIMEOUT)
                              for started, overdue in self.runs.values() if not overdue)
        if candidates:
            self.deadline_ms, self.deadline_cause = min(candidates)
        else:
            self.deadline_ms, self.deadline_cause = None, None

    def open_runs(self) -> int:
        return sum(1 for _, overdue in self.runs.values() if not overdue)

    def _become(self, status: str, at: float, kind: str | None, cause: str | None) -> Transition | None:
        previous = self.status
        self.status, self.since = status, at
        return None if kind is None else Transition(kind, at, previous, status, cause)

    # -- storage --------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "since": self.since,
            "last_check_in_at": self.last_check_in_at,
            "last_success_at": self.last_success_at,
            "runs": self.runs,
            "deadline_ms": self.deadline_ms,
            "deadline_cause": self.deadline_cause,
        }

    @classmethod
    def from_dict(cls, d: dict) -> HeartbeatState:
        return cls(
            status=d.get("status", NEW),
            since=d.get("since"),
            last_check_in_at=d.get("last_check_in_at"),
            last_success_at=d.get("last_success_at"),
            runs={key: list(run) for key, run in (d.get("runs") or {}).items()},
            deadline_ms=d.get("deadline_ms"),
            deadline_cause=d.get("deadline_cause"),
        )
