"""The per-monitor uptime state machine: probe results in, overall transitions out.

Region rules (each region a monitor is checked from has its own RegionState):

- A "down" result starts or extends the region's failure streak. The region
  becomes "down" once the failure has persisted for the grace period, i.e.
  ``checked_at - failing_since >= grace_period`` (grace 0: the first failure).
  A region already down stays down.
- An "up" result starts or extends the success streak. A "down" region becomes
  "up" once ``checked_at - passing_since >= recovery_period`` (0: at once); an
  "unknown" region becomes "up" at its first success (nothing to recover from).
- A result older than the region's ``last_checked_at`` is ignored entirely
  (probes retry, Kafka redelivers); an equal timestamp is applied.
- ``since`` is the ``checked_at`` of the result that changed the status;
  ``last_cause`` is the cause of the region's last "down" result.

Overall rules:

- The regions considered are ``configured_regions`` when non-empty, else every
  region heard from so far. Results from a region outside a non-empty
  configured list are tracked but do not count.
- Overall is "down" when strictly more than half of the considered regions are
  down (a region never heard from is not down); else "up" when at least one
  considered region is up; else the previous status is kept, so a monitor is
  "unknown" only until it has first been up or down.
- A change to "down" (from "up" or "unknown") returns a "monitor.down"
  Transition, "down" to "up" returns "monitor.recovered"; "unknown" to "up"
  returns None, since a first success is not a recovery.
- While paused, results are ignored. Resuming starts afresh: status "unknown",
  regions forgotten.

Stale regions (a probe that stopped reporting is noticed, never taken for an
up or down target):

- A region's ``last_seen_at`` is when its latest result arrived (``heard_at``:
  when Kafka got it; its ``checked_at`` when that is not known), so a probe
  posting results it buffered is alive, and a probe's clock does not matter.
  Results inside a maintenance window count too; ``probe`` is the probe that
  sent the latest. The region is due to go stale at ``last_seen_at + stale_after``
  (the caller passes 3 x interval + timeout).
- ``expire_stale`` at a moment ``at`` makes every region due by then "unknown",
  with ``stale_since`` its deadline, its streaks forgotten; one "monitor.stale"
  Transition per region, in deadline order, naming the region, its probe and
  when it was last seen. Its next applied result makes it fresh again: it then
  follows the region rules above from scratch.
- A stale region is left out of the considered regions: overall follows the
  remaining ones (a majority of them down is "down"), and is "unknown" when
  every considered region is stale. Going stale may thereby take the monitor
  down or up: that returns "monitor.down" / "monitor.recovered" after the
  "monitor.stale" as usual; "down" to "unknown" returns no recovery.
- ``MonitorState.since`` is the time of the last overall status change,
  ``last_checked_at`` the latest ``checked_at`` applied.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

UP = "up"
DOWN = "down"
UNKNOWN = "unknown"
PAUSED = "paused"

MONITOR_DOWN = "monitor.down"
MONITOR_RECOVERED = "monitor.recovered"
MONITOR_STALE = "monitor.stale"


@dataclass(slots=True)
class RegionState:
    status: str = UNKNOWN
    since: float | None = None
    failing_since: float | None = None
    passing_since: float | None = None
    failure_streak: int = 0
    success_streak: int = 0
    last_checked_at: float | None = None
    last_cause: str | None = None
    last_seen_at: float | None = None
    probe: str | None = None
    stale_since: float | None = None

    def seen(self, heard_at: float, probe: str | None) -> None:
        """The probe reported (inside a maintenance window too): it is alive."""
        if self.last_seen_at is None or heard_at >= self.last_seen_at:
            self.last_seen_at = heard_at
            self.probe = probe

    def go_stale(self, deadline: float) -> None:
        self.status = UNKNOWN
        self.since = deadline
        self.stale_since = deadline
        self.failing_since = self.passing_since = None
        self.failure_streak = self.success_streak = 0

    def record_failure(self, checked_at: float, cause: str | None, grace_period: float) -> None:
        if self.failing_since is None:
            self.failing_since = checked_at
        self.passing_since = None
        self.failure_streak += 1
        self.success_streak = 0
        self.last_checked_at = checked_at
        self.last_cause = cause
        if self.status != DOWN and checked_at - self.failing_since >= grace_period:
            self.status = DOWN
            self.since = checked_at

    def record_success(self, checked_at: float, recovery_period: float) -> None:
        if self.passing_since is None:
            self.passing_since = checked_at
        self.failing_since = None
        self.success_streak += 1
        self.failure_streak = 0
        self.last_checked_at = checked_at
        if self.status == UNKNOWN or (
            self.status == DOWN and checked_at - self.passing_since >= recovery_period
        ):
            self.status = UP
            self.since = checked_at

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "since": self.since,
            "failing_since": self.failing_since,
            "passing_since": self.passing_since,
            "failure_streak": self.failure_streak,
            "success_streak": self.success_streak,
            "last_checked_at": self.last_checked_at,
            "last_cause": self.last_cause,
            "last_seen_at": self.last_seen_at,
            "probe": self.probe,
            "stale_since": self.stale_since,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RegionState:
        return cls(
            status=d.get("status", UNKNOWN),
            since=d.get("since"),
            failing_since=d.get("failing_since"),
            passing_since=d.get("passing_since"),
            failure_streak=d.get("failure_streak", 0),
            success_streak=d.get("success_streak", 0),
            last_checked_at=d.get("last_checked_at"),
            last_cause=d.get("last_cause"),
            last_seen_at=d.get("last_seen_at", d.get("last_checked_at")),
            probe=d.get("probe"),
            stale_since=d.get("stale_since"),
        )


@dataclass(slots=True)
class MonitorState:
    status: str = UNKNOWN
    since: float | None = None
    regions: dict[str, RegionState] = field(default_factory=dict)
    last_checked_at: float | None = None
    #: the configured regions `status` was last settled with (not stored): while they are the same object
    #: and no region's status changed, the overall status cannot have changed either
    settled_for: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "since": self.since,
            "regions": {name: region.to_dict() for name, region in self.regions.items()},
            "last_checked_at": self.last_checked_at,
        }

    @classmethod
    def from_dict(cls, d: dict) -> MonitorState:
        return cls(
            status=d.get("status", UNKNOWN),
            since=d.get("since"),
            regions={
                name: RegionState.from_dict(region)
                for name, region in (d.get("regions") or {}).items()
            },
            last_checked_at=d.get("last_checked_at"),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    kind: str
    at: float
    previous: str
    current: str
    cause: str | None
    regions: dict[str, str]
    #: monitor.stale: the region that went quiet, the probe last seen there and when
    region: str | None = None
    probe: str | None = None
    last_seen_at: float | None = None


def apply_result(
    state: MonitorState,
    *,
    region: str,
    status: str,
    checked_at: float,
    cause: str | None,
    grace_period: float,
    recovery_period: float,
    configured_regions: Sequence[str],
    probe: str | None = None,
    heard_at: float | None = None,
) -> Transition | None:
    """Mutates state in place; returns the overall transition this result caused, if any."""
    if state.status == PAUSED:
        return None
    if status != UP and status != DOWN:
        raise ValueError(f"result status must be 'up' or 'down', not {status!r}")

    region_state = state.regions.get(region)
    if region_state is None:
        region_state = state.regions[region] = RegionState()
        status_before = None  # one more region: the overall status is counted again
    elif region_state.last_checked_at is not None and checked_at < region_state.last_checked_at:
        return None
    else:
        status_before = None if region_state.stale_since is not None else region_state.status
    region_state.seen(checked_at if heard_at is None else heard_at, probe)
    region_state.stale_since = None
    if status == DOWN:
        region_state.record_failure(checked_at, cause, grace_period)
    else:
        region_state.record_success(checked_at, recovery_period)
    if state.last_checked_at is None or checked_at > state.last_checked_at:
        state.last_checked_at = checked_at

    if region_state.status == status_before and state.settled_for is configured_regions:
        return None  # the common case, most results: nothing the overall status follows has changed
    return _settle(state, checked_at, configured_regions, (cause,) if status == DOWN else None)


def note_seen(state: MonitorState, *, region: str, heard_at: float, probe: str | None) -> None:
    """A result inside a maintenance window: the region's probe is alive; nothing else changes."""
    if state.status == PAUSED:
        return
    region_state = state.regions.get(region)
    if region_state is None:
        region_state = state.regions[region] = RegionState()
        state.settled_for = None  # one more region counts at the next result
    region_state.seen(heard_at, probe)


def stale_deadline(state: MonitorState, stale_after: float) -> float | None:
    """When the next region goes stale if nothing more arrives; None when none can."""
    if state.status == PAUSED:
        return None
    deadlines = [region.last_seen_at for region in state.regions.values()
                 if region.stale_since is None and region.last_seen_at is not None]
    return min(deadlines) + stale_after if deadlines else None


def expire_stale(state: MonitorState, *, at: float, stale_after: float,
                 configured_regions: Sequence[str]) -> list[Transition]:
    """Every region silent since before `at - stale_after` goes stale: its monitor.stale, then any overall
    transition that leaves, in deadline order."""
    if state.status == PAUSED:
        return []
    due = sorted(
        (region.last_seen_at + stale_after, name) for name, region in state.regions.items()
        if region.stale_since is None and region.last_seen_at is not None
        and region.last_seen_at + stale_after <= at
    )
    transitions = []
    for deadline, name in due:
        region = state.regions[name]
        previous = state.status
        region.go_stale(deadline)
        followed = _settle(state, deadline, configured_regions, None)
        transitions.append(Transition(
            kind=MONITOR_STALE, at=deadline, previous=previous, current=state.status,
            cause=f"no result from region {name} for {stale_after:g} s", regions=_region_statuses(state, configured_regions),
            region=name, probe=region.probe, last_seen_at=region.last_seen_at,
        ))
        if followed is not None:
            transitions.append(followed)
    return transitions


def _settle(state: MonitorState, at: float, configured_regions: Sequence[str],
            cause: tuple[str | None] | None) -> Transition | None:
    """Recompute the overall status at `at`; the transition it makes, if it is one users are told of.

    `cause`: (the cause of the "down" result that tipped it), or None to name the latest down region's.
    """
    previous = state.status
    current = _overall_status(state, configured_regions)
    state.settled_for = configured_regions
    if current == previous:
        return None
    state.status = current
    state.since = at

    if current == DOWN:
        return Transition(
            kind=MONITOR_DOWN,
            at=at,
            previous=previous,
            current=current,
            cause=cause[0] if cause is not None else _latest_cause(state, configured_regions),
            regions=_region_statuses(state, configured_regions),
        )
    if previous == DOWN and current == UP:
        return Transition(
            kind=MONITOR_RECOVERED,
            at=at,
            previous=previous,
            current=current,
            cause=None,
            regions=_region_statuses(state, configured_regions),
        )
    return None  # unknown -> up: a first success is not a recovery; down -> unknown: nobody is looking


def pause(state: MonitorState, at: float) -> None:
    # Idempotent: a redelivered pause command keeps the original pause time.
    if state.status != PAUSED:
        state.status = PAUSED
        state.since = at
        state.settled_for = None


def resume(state: MonitorState, at: float) -> None:
    # Only a paused monitor resumes, so a redelivered resume cannot wipe fresh state.
    if state.status == PAUSED:
        state.status = UNKNOWN
        state.since = at
        state.regions.clear()
        state.settled_for = None


def _overall_status(state: MonitorState, configured_regions: Sequence[str]) -> str:
    regions = state.regions
    down = up = stale = 0
    if configured_regions:
        considered = len(configured_regions)
        for name in configured_regions:
            region = regions.get(name)
            if region is None:
                continue
            if region.stale_since is not None:
                stale += 1
            elif region.status == DOWN:
                down += 1
            elif region.status == UP:
                up += 1
    else:
        considered = len(regions)
        for region in regions.values():
            if region.stale_since is not None:
                stale += 1
            elif region.status == DOWN:
                down += 1
            elif region.status == UP:
                up += 1
    considered -= stale  # a region whose probe went quiet is neither up nor down
    if considered <= 0 and stale:
        return UNKNOWN
    if 2 * down > considered:
        return DOWN
    if up:
        return UP
    return state.status


def _considered(state: MonitorState, configured_regions: Sequence[str]) -> Sequence[str]:
    return configured_regions or list(state.regions)


def _region_statuses(state: MonitorState, configured_regions: Sequence[str]) -> dict[str, str]:
    regions = state.regions
    return {
        name: regions[name].status if name in regions else UNKNOWN
        for name in _considered(state, configured_regions)
    }


def _latest_cause(state: MonitorState, configured_regions: Sequence[str]) -> str | None:
    # Reached when an "up" result tips the monitor down (the configured list changed) or a region goes stale.
    latest: RegionState | None = None
    for name in _considered(state, configured_regions):
        region = state.regions.get(name)
        if region is not None and region.status == DOWN and (
            latest is None or (region.last_checked_at or 0.0) > (latest.last_checked_at or 0.0)
        ):
            latest = region
    return latest.last_cause if latest is not None else None
