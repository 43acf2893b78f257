from __future__ import annotations

import json

import pytest

from tables.monitor_state import (
    MonitorState,
    RegionState,
    Transition,
    apply_result,
    expire_stale,
    note_seen,
    pause,
    resume,
    stale_deadline,
)

REGIONS = ("eu", "us", "ap")


def result(state: MonitorState, region: str, status: str, at: float, *, cause: str | None = None,
           grace: float = 0, recovery: float = 0, regions=REGIONS) -> Transition | None:
    return apply_result(
        state, region=region, status=status, checked_at=at,
        cause=cause,
        grace_period=grace, recovery_period=recovery, configured_regions=regions,
    )


def test_first_success_is_up_without_a_transition():
    state = MonitorState()
    assert result(state, "eu", "up", 100) is None
    assert state.status == "up"
    assert state.since == 100
    assert state.regions["eu"].status == "up"


def test_first_failure_goes_down_with_its_cause():
    state = MonitorState()
    transition = result(state, "eu", "down", 100, cause="connection refused", regions=["eu"])
    assert transition == Transition(
        kind="monitor.down", at=100, previous="unknown", current="down",
        cause="connection refused", regions={"eu": "down"},
    )
    assert state.status == "down"
    assert state.regions["eu"].last_cause == "connection refused"


def test_down_only_after_the_failure_persisted_for_the_grace_period():
    state = MonitorState()
    result(state, "eu", "up", 0, regions=["eu"])
    assert result(state, "eu", "down", 60, grace=120, regions=["eu"]) is None
    assert result(state, "eu", "down", 120, grace=120, regions=["eu"]) is None
    assert state.regions["eu"].status == "up"
    assert state.regions["eu"].failure_streak == 2
    assert state.regions["eu"].failing_since == 60

    transition = result(state, "eu", "down", 180, grace=120, regions=["eu"])
    assert transition is not None and transition.kind == "monitor.down"
    assert transition.previous == "up"
    assert transition.at == 180
    assert state.since == 180
    assert state.regions["eu"].since == 180


def test_a_success_inside_the_grace_period_restarts_the_failure_clock():
    state = MonitorState()
    result(state, "eu", "down", 0, grace=100, regions=["eu"])
    result(state, "eu", "up", 50, grace=100, regions=["eu"])
    result(state, "eu", "down", 60, grace=100, regions=["eu"])
    assert result(state, "eu", "down", 150, grace=100, regions=["eu"]) is None
    assert result(state, "eu", "down", 160, grace=100, regions=["eu"]).kind == "monitor.down"


def test_recovery_only_after_success_persisted_for_the_recovery_period():
    state = MonitorState()
    result(state, "eu", "down", 0, regions=["eu"])
    assert result(state, "eu", "up", 60, recovery=120, regions=["eu"]) is None
    assert state.status == "down"
    assert state.regions["eu"].passing_since == 60
    assert state.regions["eu"].failing_since is None
    assert state.regions["eu"].success_streak == 1

    transition = result(state, "eu", "up", 180, recovery=120, regions=["eu"])
    assert transition == Transition(
        kind="monitor.recovered", at=180, previous="down", current="up",
        cause=None, regions={"eu": "up"},
    )


def test_a_failure_during_recovery_restarts_the_recovery_clock():
    state = MonitorState()
    result(state, "eu", "down", 0, regions=["eu"])
    result(state, "eu", "up", 10, recovery=100, regions=["eu"])
    result(state, "eu", "down", 20, recovery=100, regions=["eu"])
    assert result(state, "eu", "up", 30, recovery=100, regions=["eu"]) is None
    assert result(state, "eu", "up", 120, recovery=100, regions=["eu"]) is None
    assert result(state, "eu", "up", 130, recovery=100, regions=["eu"]).kind == "monitor.recovered"


def test_zero_recovery_period_recovers_at_the_first_success():
    state = MonitorState()
    result(state, "eu", "down", 0, regions=["eu"])
    assert result(state, "eu", "up", 1, regions=["eu"]).kind == "monitor.recovered"


def test_majority_of_three_regions_decides_and_the_transition_is_emitted_once():
    state = MonitorState()
    for region in REGIONS:
        result(state, region, "up", 0)

    assert result(state, "eu", "down", 10) is None
    assert state.status == "up"

    transition = result(state, "us", "down", 11, cause="HTTP 503")
    assert transition.kind == "monitor.down"
    assert transition.cause == "HTTP 503"
    assert transition.regions == {"eu": "down", "us": "down", "ap": "up"}

    assert result(state, "ap", "down", 12) is None
    assert result(state, "eu", "down", 20) is None
    assert state.status == "down"

    assert result(state, "eu", "up", 30) is None  # 2 of 3 still down
    assert result(state, "us", "up", 31).kind == "monitor.recovered"
    assert result(state, "ap", "up", 32) is None


def test_two_regions_need_both_down():
    state = MonitorState()
    result(state, "eu", "up", 0, regions=["eu", "us"])
    result(state, "us", "up", 0, regions=["eu", "us"])
    assert result(state, "eu", "down", 1, regions=["eu", "us"]) is None
    assert result(state, "us", "down", 2, regions=["eu", "us"]).kind == "monitor.down"


def test_configured_regions_never_heard_from_count_as_not_down():
    state = MonitorState()
    assert result(state, "eu", "down", 0) is None  # 1 of 3 configured
    assert state.status == "unknown"
    transition = result(state, "us", "down", 1)
    assert transition.kind == "monitor.down"
    assert transition.previous == "unknown"
    assert transition.regions == {"eu": "down", "us": "down", "ap": "unknown"}


def test_unconfigured_region_is_tracked_but_does_not_count():
    state = MonitorState()
    result(state, "eu", "up", 0, regions=["eu"])
    assert result(state, "sa", "down", 1, regions=["eu"]) is None
    assert state.status == "up"
    assert state.regions["sa"].status == "down"


def test_without_configured_regions_all_regions_seen_count():
    state = MonitorState()
    result(state, "eu", "up", 0, regions=[])
    result(state, "us", "up", 0, regions=[])
    result(state, "ap", "up", 0, regions=[])
    assert result(state, "eu", "down", 1, regions=[]) is None
    assert result(state, "us", "down", 2, regions=[]).kind == "monitor.down"


def test_no_region_up_and_no_majority_down_keeps_the_previous_status():
    state = MonitorState()
    result(state, "eu", "down", 0, regions=[])
    assert state.status == "down"
    # A second region still inside its grace period: 1 of 2 down, none up.
    assert result(state, "us", "down", 1, grace=60, regions=[]) is None
    assert state.status == "down"


def test_out_of_order_results_are_ignored():
    state = MonitorState()
    result(state, "eu", "up", 100, regions=["eu"])
    before = state.to_dict()
    assert result(state, "eu", "down", 99, regions=["eu"]) is None
    assert state.to_dict() == before


def test_equal_timestamps_are_applied():
    state = MonitorState()
    result(state, "eu", "up", 100, regions=["eu"])
    assert result(state, "eu", "down", 100, regions=["eu"]).kind == "monitor.down"


def test_out_of_order_is_judged_per_region():
    state = MonitorState()
    result(state, "eu", "up", 100)
    result(state, "us", "down", 50)
    assert state.regions["us"].status == "down"
    assert state.last_checked_at == 100


def test_paused_monitor_ignores_results():
    state = MonitorState()
    result(state, "eu", "up", 0)
    pause(state, 10)
    assert state.status == "paused"
    assert state.since == 10
    assert result(state, "eu", "down", 20) is None
    assert result(state, "us", "down", 21) is None
    assert state.status == "paused"
    assert state.regions["eu"].status == "up"
    assert "us" not in state.regions


def test_pause_twice_keeps_the_first_pause_time():
    state = MonitorState()
    pause(state, 10)
    pause(state, 20)
    assert state.since == 10


def test_resume_starts_afresh():
    state = MonitorState()
    for region in REGIONS:
        result(state, region, "down", 0)
    pause(state, 10)
    resume(state, 20)
    assert state.status == "unknown"
    assert state.since == 20
    assert state.regions == {}
    # A first success after resuming is not a recovery.
    assert result(state, "eu", "up", 30) is None
    assert state.status == "up"


def test_resume_of_a_running_monitor_changes_nothing():
    state = MonitorState()
    result(state, "eu", "up", 0)
    resume(state, 5)
    assert state.status == "up"
    assert "eu" in state.regions


def test_unknown_status_is_rejected():
    with pytest.raises(ValueError):
        result(MonitorState(), "eu", "degraded", 0)


def test_to_dict_from_dict_round_trip_through_json():
    state = MonitorState()
    result(state, "eu", "up", 0)
    result(state, "us", "down", 1, cause="DNS failure", grace=30)
    result(state, "ap", "down", 2, cause="TLS expired")
    pause(state, 3)

    restored = MonitorState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    assert isinstance(restored.regions["us"], RegionState)
    assert restored.regions["us"].last_cause == "DNS failure"

    resume(restored, 4)
    assert result(restored, "eu", "up", 5) is None
    assert restored.status == "up"


def test_restored_state_keeps_counting_the_grace_period():
    state = MonitorState()
    result(state, "eu", "down", 0, grace=60, regions=["eu"])
    restored = MonitorState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert result(restored, "eu", "down", 60, grace=60, regions=["eu"]).kind == "monitor.down"


# -- stale regions ----------------------------------------------------------------------------

STALE_AFTER = 100.0


def seen(state: MonitorState, region: str, status: str, at: float, probe: str, **kw) -> Transition | None:
    return apply_result(state, region=region, status=status, checked_at=at, cause=kw.pop("cause", None),
                        grace_period=0, recovery_period=0, configured_regions=kw.pop("regions", REGIONS), probe=probe)


def stale(state: MonitorState, at: float, regions=REGIONS) -> list[Transition]:
    return expire_stale(state, at=at, stale_after=STALE_AFTER, configured_regions=regions)


def test_a_silent_region_goes_stale_once_naming_its_probe():
    state = MonitorState()
    seen(state, "eu", "up", 0, "eu-probe:1")
    seen(state, "us", "up", 50, "us-probe:2")
    assert stale_deadline(state, STALE_AFTER) == 100
    assert stale(state, 99.9) == []
    [transition] = stale(state, 120)
    assert transition.kind == "monitor.stale" and transition.at == 100
    assert (transition.region, transition.probe, transition.last_seen_at) == ("eu", "eu-probe:1", 0)
    assert (transition.previous, transition.current) == ("up", "up")   # us still up
    assert transition.regions == {"eu": "unknown", "us": "up", "ap": "unknown"}
    assert state.regions["eu"].status == "unknown" and state.regions["eu"].stale_since == 100
    assert stale(state, 130) == []                                      # once
    assert stale_deadline(state, STALE_AFTER) == 150                    # us is next


def test_overall_follows_the_remaining_regions():
    state = MonitorState()
    seen(state, "eu", "up", 0, "p-eu")
    seen(state, "us", "down", 50, "p-us", cause="timeout")
    seen(state, "ap", "up", 20, "p-ap")
    assert state.status == "up"                                         # 1 of 3 down
    assert [(t.kind, t.region, t.current) for t in stale(state, 100)] == [("monitor.stale", "eu", "up")]
    assert state.status == "up"                                         # us down, ap up: no majority
    transitions = stale(state, 120)
    assert [(t.kind, t.region, t.current) for t in transitions] == [
        ("monitor.stale", "ap", "down"), ("monitor.down", None, "down")]  # us alone is left, and down
    assert transitions[1].cause == "timeout" and transitions[1].at == 120


def test_a_stale_region_is_neither_up_nor_down_and_all_stale_is_unknown():
    state = MonitorState()
    seen(state, "eu", "down", 0, "p-eu", cause="refused", regions=["eu", "us"])
    seen(state, "us", "down", 10, "p-us", cause="refused", regions=["eu", "us"])
    assert state.status == "down"
    [first] = stale(state, 105, regions=["eu", "us"])
    assert (first.region, first.previous, first.current) == ("eu", "down", "down")   # us alone: still down
    [second] = stale(state, 200, regions=["eu", "us"])
    assert (second.region, second.previous, second.current) == ("us", "down", "unknown")
    assert state.status == "unknown"                                    # nobody looking: no recovery either


def test_going_stale_can_tip_the_monitor_and_says_so_after_the_stale_event():
    regions = ["eu", "us", "ap", "sa"]
    state = MonitorState()
    seen(state, "eu", "up", 0, "p-eu", regions=regions)
    seen(state, "us", "up", 50, "p-us", regions=regions)
    seen(state, "ap", "down", 50, "p-ap", cause="refused", regions=regions)
    seen(state, "sa", "down", 50, "p-sa", cause="timeout", regions=regions)
    assert state.status == "up"                                         # 2 of 4 down is no majority
    kinds = [(t.kind, t.region, t.current) for t in stale(state, 120, regions=regions)]
    assert kinds == [("monitor.stale", "eu", "down"), ("monitor.down", None, "down")]  # 2 of 3 left down
    assert state.since == 100


def test_a_stale_region_is_fresh_again_at_its_next_result_from_scratch():
    state = MonitorState()
    seen(state, "eu", "down", 0, "p-eu", cause="refused", regions=["eu"])
    stale(state, 150, regions=["eu"])
    assert state.status == "unknown"
    assert apply_result(state, region="eu", status="down", checked_at=200, cause="refused", grace_period=30,
                        recovery_period=0, configured_regions=["eu"], probe="p-eu2") is None
    region = state.regions["eu"]
    assert (region.stale_since, region.failing_since, region.probe) == (None, 200, "p-eu2")   # grace starts again
    transition = apply_result(state, region="eu", status="down", checked_at=230, cause="refused", grace_period=30,
                              recovery_period=0, configured_regions=["eu"])
    assert transition is not None and (transition.kind, transition.previous) == ("monitor.down", "unknown")


def test_a_result_in_maintenance_keeps_the_probe_alive_and_changes_nothing_else():
    state = MonitorState()
    seen(state, "eu", "up", 0, "p-eu")
    before = RegionState.from_dict(state.regions["eu"].to_dict())
    note_seen(state, region="eu", heard_at=90, probe="p-eu:2")
    region = state.regions["eu"]
    assert (region.last_seen_at, region.probe) == (90, "p-eu:2")
    assert (region.status, region.last_checked_at, region.success_streak) == (
        before.status, before.last_checked_at, before.success_streak)
    assert stale_deadline(state, STALE_AFTER) == 190


def test_paused_monitors_go_stale_never_and_old_state_reads_back():
    state = MonitorState()
    seen(state, "eu", "up", 0, "p-eu")
    pause(state, 10)
    assert stale(state, 1000) == [] and stale_deadline(state, STALE_AFTER) is None
    old = {"status": "up", "since": 0, "regions": {"eu": {"status": "up", "last_checked_at": 5}}}
    restored = MonitorState.from_dict(old)
    assert (restored.regions["eu"].last_seen_at, restored.regions["eu"].stale_since) == (5, None)
    assert MonitorState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_skipping_the_overall_count_never_changes_an_answer():
    """Most results change no region's status, so the overall status is not counted again for them. Against
    a state that counts it at every result, over random histories: configured regions replaced, regions
    seen in maintenance, pauses and resumes, stale regions."""
    import random

    rng = random.Random(7)
    for history in range(300):
        fast, full = MonitorState(), MonitorState()
        configured: tuple[str, ...] | list[str] = list(REGIONS)
        at = 0.0
        for step in range(60):
            at += rng.choice((1, 5, 30))
            roll = rng.random()
            if roll < 0.05:
                configured = rng.choice((list(REGIONS), ["eu"], ["eu", "us"], (), ["us", "ap", "sa"]))
            elif roll < 0.08:
                region = rng.choice(("eu", "sa", "af"))
                note_seen(fast, region=region, heard_at=at, probe=None)
                note_seen(full, region=region, heard_at=at, probe=None)
            elif roll < 0.10:
                pause(fast, at), pause(full, at)
            elif roll < 0.13:
                resume(fast, at), resume(full, at)
            elif roll < 0.16:
                assert (expire_stale(fast, at=at, stale_after=40, configured_regions=configured)
                        == expire_stale(full, at=at, stale_after=40, configured_regions=configured))
            else:
                region, status = rng.choice(("eu", "us", "ap", "sa")), rng.choice(("up", "up", "down"))
                grace, recovery = rng.choice((0, 10)), rng.choice((0, 10))
                full.settled_for = None
                assert (result(fast, region, status, at, grace=grace, recovery=recovery, regions=configured)
                        == result(full, region, status, at, grace=grace, recovery=recovery, regions=configured)), \
                    (history, step)
            assert (fast.status, fast.since) == (full.status, full.since), (history, step)
