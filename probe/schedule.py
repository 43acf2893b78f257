"""When each monitor of a probe is next checked: pure, so it is tested without a clock or a broker.

A probe holds the directory entries (engine/directory.py) of the partitions
it owns; of those it checks the monitors that name its region (a monitor
naming none is checked by the default region), unless paused.

Each monitor fires on a grid of its own: every `interval_seconds`, at a phase
derived from a hash of its id, so 10,000 monitors with one interval spread
over the interval instead of firing in the same second, and every probe
(and a probe restarted) puts a monitor on the same grid. A check never
overlaps the previous one of its monitor: a slot that comes while it runs is
skipped (and counted). A change to a monitor takes effect at its next
slot; one deleted, paused or no longer in this region is dropped at once.
"""
from __future__ import annotations

import heapq
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_REGION = "default"


def phase_of(monitor_id: str, interval: float) -> float:
    """Where in its interval a monitor fires: stable across probes and restarts, spread evenly."""
    return (zlib.crc32(monitor_id.encode()) / 2**32) * interval


def next_slot(after: float, interval: float, phase: float) -> float:
    """The first moment strictly after `after` on the grid phase + k * interval."""
    k = math.floor((after - phase) / interval) + 1
    return phase + k * interval


def checked_here(entry: dict, region: str) -> bool:
    if entry.get("paused"):
        return False
    regions = entry["spec"].get("regions") or [DEFAULT_REGION]
    return region in regions


@dataclass(slots=True)
class Scheduled:
    entry: dict
    partition: int
    due: float
    version: int            # bumped by every change: a heap item of an older version is stale
    running: bool = False


@dataclass
class Schedule:
    region: str
    monitors: dict[str, Scheduled] = field(default_factory=dict)
    #: slots skipped because the monitor's previous check was still running
    skipped: int = 0
    _heap: list[tuple[float, int, str]] = field(default_factory=list)
    _version: int = 0

    # -- what the directory says ----------------------------------------------

    def apply(self, partition: int, monitor_id: str, entry: dict | None, now: float) -> None:
        """A directory entry of an owned partition (None: deleted)."""
        if entry is None or not checked_here(entry, self.region):
            self.monitors.pop(monitor_id, None)
            return
        known = self.monitors.get(monitor_id)
        interval = float(entry["spec"]["interval_seconds"])
        if known is not None and known.entry["spec"]["interval_seconds"] == entry["spec"]["interval_seconds"]:
            known.entry, known.partition = entry, partition  # the next check uses it; its slot stays
            return
        self._version += 1
        scheduled = Scheduled(entry, partition, next_slot(now, interval, phase_of(monitor_id, interval)),
                              self._version)
        if known is not None:
            scheduled.running = known.running
        self.monitors[monitor_id] = scheduled
        heapq.heappush(self._heap, (scheduled.due, scheduled.version, monitor_id))

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        """Partitions this probe no longer owns: their monitors go to their new probe."""
        gone = set(partitions)
        self.monitors = {mid: s for mid, s in self.monitors.items() if s.partition not in gone}

    # -- firing -----------------------------------------------------------------

    def next_due(self) -> float | None:
        self._drop_stale_heads()
        return self._heap[0][0] if self._heap else None

    def take_due(self, now: float) -> list[tuple[str, Scheduled, float]]:
        """(monitor id, its schedule, how late) of every monitor due by `now`; each is marked running.

        A monitor still running when its slot comes skips that slot (counted in
        `skipped`); a probe fallen behind by more than an interval catches up
        once, not once per missed slot.
        """
        fired = []
        while True:
            self._drop_stale_heads()
            if not self._heap or self._heap[0][0] > now:
                return fired
            due, version, monitor_id = heapq.heappop(self._heap)
            scheduled = self.monitors[monitor_id]
            interval = float(scheduled.entry["spec"]["interval_seconds"])
            scheduled.due = next_slot(max(due, now - interval), interval, phase_of(monitor_id, interval))
            heapq.heappush(self._heap, (scheduled.due, version, monitor_id))
            if scheduled.running:
                self.skipped += 1
                continue  # never two checks of one monitor at once
            scheduled.running = True
            fired.append((monitor_id, scheduled, now - due))

    def finished(self, monitor_id: str) -> None:
        scheduled = self.monitors.get(monitor_id)
        if scheduled is not None:
            scheduled.running = False

    def _drop_stale_heads(self) -> None:
        heap = self._heap
        while heap:
            _, version, monitor_id = heap[0]
            scheduled = self.monitors.get(monitor_id)
            if scheduled is not None and scheduled.version == version:
                return
            heapq.heappop(heap)
