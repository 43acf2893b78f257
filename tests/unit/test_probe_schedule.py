"""A probe's schedule: which monitors it checks, spread over their interval, never two checks of one at once."""
from __future__ import annotations

from collections import Counter

from probe.schedule import Schedule, next_slot, phase_of


def entry(monitor_id: str, interval: int = 60, regions: list[str] | None = None, paused: bool = False) -> dict:
    return {"kind": "monitor", "id": monitor_id, "org_id": "o", "paused": paused,
            "spec": {"interval_seconds": interval, "timeout_seconds": 5, "regions": regions or []}}


def test_slots_lie_on_the_grid_of_the_monitors_phase() -> None:
    phase = phase_of("mon_a", 60)
    assert 0 <= phase < 60 and phase == phase_of("mon_a", 60)  # the same on every probe, after every restart
    slot = next_slot(1000.0, 60, phase)
    assert 1000.0 < slot <= 1060.0 and (slot - phase) % 60 == 0
    assert next_slot(slot, 60, phase) == slot + 60  # strictly after


def test_ten_thousand_monitors_with_one_interval_spread_over_it() -> None:
    schedule = Schedule("default")
    for n in range(10_000):
        schedule.apply(0, f"mon_{n}", entry(f"mon_{n}", interval=10), now=0.0)
    per_second = Counter(int(s.due) for s in schedule.monitors.values())
    assert len(per_second) == 10 and max(per_second.values()) < 1_150  # ~1,000 a second, none all at once


def test_only_monitors_naming_this_region_and_not_paused_are_checked_here() -> None:
    schedule = Schedule("eu")
    schedule.apply(0, "a", entry("a", regions=["eu", "us"]), 0.0)
    schedule.apply(0, "b", entry("b", regions=["us"]), 0.0)
    schedule.apply(0, "c", entry("c"), 0.0)                     # no regions: the default region's
    schedule.apply(0, "d", entry("d", regions=["eu"], paused=True), 0.0)
    assert set(schedule.monitors) == {"a"}
    assert set(Schedule("default").monitors) == set()
    default = Schedule("default")
    default.apply(0, "c", entry("c"), 0.0)
    assert set(default.monitors) == {"c"}


def test_a_check_never_overlaps_the_previous_one_of_its_monitor() -> None:
    schedule = Schedule("default")
    schedule.apply(0, "a", entry("a", interval=10), 0.0)
    first = schedule.monitors["a"].due
    fired = schedule.take_due(first)
    assert [monitor_id for monitor_id, _, _ in fired] == ["a"]
    assert schedule.take_due(first + 10) == []  # still running: the slot is skipped
    assert schedule.skipped == 1
    schedule.finished("a")
    assert [m for m, _, _ in schedule.take_due(first + 20)] == ["a"]


def test_changes_deletes_and_moved_partitions_take_effect() -> None:
    schedule = Schedule("default")
    schedule.apply(0, "a", entry("a", interval=10), 0.0)
    schedule.apply(1, "b", entry("b", interval=10), 0.0)
    due = schedule.monitors["a"].due
    schedule.apply(0, "a", {**entry("a", interval=10), "spec": {**entry("a")["spec"], "interval_seconds": 10,
                                                                "url": "https://new"}}, 1.0)
    assert schedule.monitors["a"].due == due and schedule.monitors["a"].entry["spec"]["url"] == "https://new"
    schedule.apply(0, "a", entry("a", interval=30), 2.0)  # a new interval: a new grid
    assert (schedule.monitors["a"].due - phase_of("a", 30)) % 30 == 0
    schedule.apply(0, "a", None, 3.0)
    schedule.drop_partitions([1])
    assert schedule.monitors == {} and schedule.take_due(1e9) == [] and schedule.next_due() is None


def test_a_probe_fallen_far_behind_catches_up_once() -> None:
    schedule = Schedule("default")
    schedule.apply(0, "a", entry("a", interval=10), 0.0)
    due = schedule.monitors["a"].due
    fired = schedule.take_due(due + 100)  # ten slots late
    assert len(fired) == 1 and fired[0][2] == 100
    schedule.finished("a")
    assert len(schedule.take_due(due + 100)) <= 1
