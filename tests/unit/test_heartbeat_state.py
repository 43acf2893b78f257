"""The heartbeat state machine: check-ins, deadlines (late, run timeouts), compare-and-set expiry."""
from __future__ import annotations

import pytest

from tables.heartbeat_schedule import Schedule
from tables.heartbeat_state import (
    COMPLETE, DOWN, FAIL, FAILED, HEARTBEAT_DOWN, HEARTBEAT_RECOVERED, LOG, MAX_OPEN_RUNS, MISSED, NEW, PAUSED,
    RUN, RUN_TIMEOUT, TICK, UP, HeartbeatState,
)

EVERY_MINUTE = Schedule(interval=60, grace=10)
T = 1_000_000.0


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def test_a_new_heartbeat_has_no_deadline_until_its_first_success() -> None:
    state = HeartbeatState()
    state.plan(EVERY_MINUTE)
    assert state.status == NEW and state.deadline_ms is None
    outcome = state.check_in(EVERY_MINUTE, TICK, T)
    assert outcome.transition is None  # a first success is not a recovery
    assert state.status == UP and state.since == T
    assert (state.deadline_ms, state.deadline_cause) == (ms(T + 70), MISSED)


def test_each_success_moves_the_deadline() -> None:
    state = HeartbeatState()
    state.check_in(EVERY_MINUTE, TICK, T)
    state.check_in(EVERY_MINUTE, COMPLETE, T + 55)
    assert state.deadline_ms == ms(T + 125) and state.last_success_at == T + 55


def test_a_missed_deadline_goes_down_once_and_the_next_success_recovers() -> None:
    state = HeartbeatState()
    state.check_in(EVERY_MINUTE, TICK, T)
    deadline = state.deadline_ms
    transition = state.expire(EVERY_MINUTE, deadline)
    assert transition is not None and transition.kind == HEARTBEAT_DOWN
    assert (transition.at, transition.previous, transition.current, transition.cause) == (T + 70, UP, DOWN, MISSED)
    assert state.deadline_ms is None  # down has no deadline
    assert state.expire(EVERY_MINUTE, deadline) is None  # a second tick for the same deadline does nothing
    recovered = state.check_in(EVERY_MINUTE, TICK, T + 100).transition
    assert recovered is not None and recovered.kind == HEARTBEAT_RECOVERED
    assert (recovered.previous, recovered.current) == (DOWN, UP)


def test_expiring_a_deadline_that_moved_is_a_no_op() -> None:
    state = HeartbeatState()
    state.check_in(EVERY_MINUTE, TICK, T)
    stale = state.deadline_ms
    state.check_in(EVERY_MINUTE, TICK, T + 30)  # the check-in came first
    assert state.expire(EVERY_MINUTE, stale) is None
    assert state.status == UP


def test_fail_goes_down_at_once_even_from_new() -> None:
    state = HeartbeatState()
    outcome = state.check_in(EVERY_MINUTE, FAIL, T)
    assert outcome.transition is not None
    assert (outcome.transition.kind, outcome.transition.previous, outcome.transition.cause) == (HEARTBEAT_DOWN, NEW, FAILED)
    assert state.check_in(EVERY_MINUTE, FAIL, T + 1).transition is None  # already down
    assert state.check_in(EVERY_MINUTE, COMPLETE, T + 2).transition.kind == HEARTBEAT_RECOVERED


def test_run_is_not_a_success_and_log_changes_nothing() -> None:
    state = HeartbeatState()
    state.check_in(EVERY_MINUTE, TICK, T)
    deadline = state.deadline_ms
    assert state.check_in(EVERY_MINUTE, LOG, T + 20).result == LOG
    assert state.last_check_in_at == T and state.deadline_ms == deadline
    state.check_in(EVERY_MINUTE, RUN, T + 30)
    assert state.last_success_at == T and state.status == UP
    assert state.last_check_in_at == T + 30
    assert (state.deadline_ms, state.deadline_cause) == (ms(T + 40), RUN_TIMEOUT)  # before T+70: the run decides


def test_a_run_that_does_not_finish_within_grace_goes_down() -> None:
    schedule = Schedule(interval=3600, grace=10)
    state = HeartbeatState()
    state.check_in(schedule, TICK, T)
    state.check_in(schedule, RUN, T + 100, rid="a")
    assert (state.deadline_ms, state.deadline_cause) == (ms(T + 110), RUN_TIMEOUT)
    transition = state.expire(schedule, state.deadline_ms)
    assert transition.cause == RUN_TIMEOUT and transition.at == T + 110
    assert state.runs["a"][1] is True  # overdue: it no longer sets a deadline
    # the run ends late: measured, and a success
    outcome = state.check_in(schedule, COMPLETE, T + 130, rid="a")
    assert outcome.duration == 30.0 and outcome.transition.kind == HEARTBEAT_RECOVERED
    assert (state.deadline_ms, state.deadline_cause) == (ms(T + 130 + 3610), MISSED)


def test_a_run_on_a_new_heartbeat_times_out_too() -> None:
    state = HeartbeatState()
    state.check_in(EVERY_MINUTE, RUN, T)
    assert state.status == NEW and state.deadline_ms == ms(T + 10)
    transition = state.expire(EVERY_MINUTE, state.deadline_ms)
    assert (transition.previous, transition.cause) == (NEW, RUN_TIMEOUT)


def test_overlapping_runs_pair_by_rid() -> None:
    schedule = Schedule(interval=3600, grace=600)
    state = HeartbeatState()
    state.check_in(schedule, RUN, T, rid="a")
    state.check_in(schedule, RUN, T + 1, rid="b")
    assert state.open_runs() == 2 and state.deadline_ms == ms(T + 600)  # the oldest run decides
    assert state.check_in(schedule, COMPLETE, T + 3, rid="b").duration == 2.0
    assert state.deadline_ms == ms(T + 600)
    outcome = state.check_in(schedule, FAIL, T + 7.25, rid="a")
    assert outcome.duration == 7.25 and outcome.result == FAIL and outcome.transition.cause == FAILED
    assert state.runs == {}


def test_a_tick_ends_the_run_it_pairs_with_and_counts_as_complete() -> None:
    state = HeartbeatState()
    state.check_in(EVERY_MINUTE, RUN, T)                         # /start without rid
    outcome = state.check_in(EVERY_MINUTE, TICK, T + 4.5)        # then the plain ping
    assert (outcome.result, outcome.duration) == (COMPLETE, 4.5)
    assert state.check_in(EVERY_MINUTE, TICK, T + 5).result == TICK  # nothing open: a tick
    # an end with a rid nobody started is measured as nothing
    assert state.check_in(EVERY_MINUTE, COMPLETE, T + 6, rid="zzz").duration is None


def test_open_runs_are_bounded_oldest_first() -> None:
    schedule = Schedule(interval=60, grace=3600)
    state = HeartbeatState()
    for n in range(MAX_OPEN_RUNS + 5):
        state.check_in(schedule, RUN, T + n, rid=f"r{n}")
    assert len(state.runs) == MAX_OPEN_RUNS and "r0" not in state.runs and "r104" in state.runs


def test_a_cron_heartbeat_is_late_after_the_next_fire_time_plus_grace() -> None:
    schedule = Schedule(cron="0 * * * *", grace=300)
    state = HeartbeatState()
    hour = 1_767_225_600.0  # 2026-01-01 00:00 UTC
    state.check_in(schedule, TICK, hour + 20)
    assert state.deadline_ms == ms(hour + 3600 + 300)


def test_disabling_pauses_and_enabling_starts_afresh() -> None:
    state = HeartbeatState()
    state.check_in(EVERY_MINUTE, TICK, T)
    state.check_in(EVERY_MINUTE, RUN, T + 1)
    state.configure(EVERY_MINUTE, False, T + 2)
    assert state.status == PAUSED and state.deadline_ms is None
    # check-ins while paused are recorded but change no status
    assert state.check_in(EVERY_MINUTE, FAIL, T + 3).transition is None and state.status == PAUSED
    state.configure(EVERY_MINUTE, True, T + 4)
    assert state.status == NEW and state.deadline_ms is None and state.runs == {}


def test_a_shorter_interval_brings_the_deadline_forward() -> None:
    state = HeartbeatState()
    state.check_in(Schedule(interval=3600, grace=60), TICK, T)
    state.configure(Schedule(interval=60, grace=5), True, T + 10)
    assert state.deadline_ms == ms(T + 65)


def test_state_round_trips_through_storage() -> None:
    state = HeartbeatState()
    state.check_in(EVERY_MINUTE, TICK, T)
    state.check_in(EVERY_MINUTE, RUN, T + 1, rid="x")
    assert HeartbeatState.from_dict(state.to_dict()) == state


def test_unknown_results_are_refused() -> None:
    with pytest.raises(ValueError, match="tick, run, complete, fail, log"):
        HeartbeatState().check_in(EVERY_MINUTE, "sideways", T)
