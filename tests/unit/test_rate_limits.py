"""The sliding 60-second window: what is accepted, what the headers say, and counts of other processes."""
from __future__ import annotations

import pytest

from api.rate_limits import WINDOW, RateLimiter

T0 = 1_700_000_000.0  # a whole second


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> RateLimiter:
    return RateLimiter(clock)


def test_exactly_the_limit_is_accepted_then_refused(limiter):
    decisions = [limiter.admit("key:k1", 60) for _ in range(61)]
    assert [d.accepted for d in decisions] == [True] * 60 + [False]
    assert [d.remaining for d in decisions] == list(range(59, -1, -1)) + [0]
    assert {d.limit for d in decisions} == {60}


def test_identities_are_counted_apart(limiter):
    for _ in range(3):
        limiter.admit("key:k1", 3)
    assert not limiter.admit("key:k1", 3).accepted
    assert limiter.admit("key:k2", 3).accepted
    assert limiter.admit("ip:10.0.0.1", 3).accepted


def test_a_refused_request_does_not_count(limiter, clock):
    for _ in range(2):
        limiter.admit("key:k1", 2)
    clock.now += 30
    refusals = [limiter.admit("key:k1", 2) for _ in range(100)]
    assert not any(d.accepted for d in refusals)
    assert limiter.windows["key:k1"].total == 2
    clock.now = T0 + WINDOW + 1  # both accepted ones stop counting; the 100 refused never did
    assert limiter.admit("key:k1", 2).remaining == 1


def test_a_request_counts_for_sixty_to_sixty_one_seconds(limiter, clock):
    clock.now = T0 + 0.75
    limiter.admit("key:k1", 1)
    for later in (0.5, 30, WINDOW - 0.01, WINDOW, WINDOW + 0.24):
        clock.now = T0 + 0.75 + later
        assert not limiter.admit("key:k1", 1).accepted, later
    clock.now = T0 + WINDOW + 1  # its second, T0, has left the window
    assert limiter.admit("key:k1", 1).accepted


def test_no_sixty_second_interval_holds_more_than_the_limit(limiter, clock):
    accepted = []
    for tenth in range(0, 3000):  # 300 s, ten tries a second, starting mid-second
        clock.now = T0 + 0.37 + tenth / 10
        if limiter.admit("key:k1", 60).accepted:
            accepted.append(clock.now)
    assert len(accepted) > 4 * 60
    for n, start in enumerate(accepted):
        in_window = [t for t in accepted[n:] if t < start + 60]
        assert len(in_window) <= 60


def test_slots_free_as_the_window_slides(limiter, clock):
    for n in range(10):  # one a second
        clock.now = T0 + n
        limiter.admit("key:k1", 10)
    clock.now = T0 + 60.5
    assert not limiter.admit("key:k1", 10).accepted
    clock.now = T0 + 61  # the first one stops counting, only it
    assert limiter.admit("key:k1", 10).remaining == 0
    assert not limiter.admit("key:k1", 10).accepted
    clock.now = T0 + 62
    assert limiter.admit("key:k1", 10).accepted


def test_reset_is_when_the_oldest_counted_request_stops_counting(limiter, clock):
    clock.now = T0 + 0.25
    assert limiter.admit("key:k1", 5).reset == 61  # T0 + 61 - now = 60.75, rounded up
    clock.now = T0 + 20.5
    assert limiter.admit("key:k1", 5).reset == 41  # still the first one's: 40.5 s
    clock.now = T0 + 60.9
    assert limiter.admit("key:k1", 5).reset == 1   # 0.1 s, rounded up


def test_refused_reset_is_when_a_request_would_be_accepted(limiter, clock):
    for n in range(3):
        clock.now = T0 + 10 * n
        limiter.admit("key:k1", 3)
    clock.now = T0 + 30.5
    refused = limiter.admit("key:k1", 3)
    assert (refused.accepted, refused.remaining, refused.reset) == (False, 0, 31)  # at T0 + 61
    clock.now = T0 + 61
    assert limiter.admit("key:k1", 3).accepted


def test_headers_carry_limit_remaining_and_reset(limiter):
    assert limiter.admit("key:k1", 60).headers() == {
        "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "X-RateLimit-Reset": "61"}


def test_a_lower_limit_applies_at_once(limiter):
    for _ in range(10):
        limiter.admit("key:k1", 300)
    assert not limiter.admit("key:k1", 10).accepted  # the team moved to a smaller plan


# -- other processes' counts ----------------------------------------------------


def test_counts_of_other_processes_fill_the_same_window(limiter, clock):
    limiter.add_others("key:k1", int(T0) - 5, 40)
    decisions = [limiter.admit("key:k1", 60) for _ in range(21)]
    assert [d.accepted for d in decisions] == [True] * 20 + [False]
    assert decisions[0].remaining == 19
    assert decisions[0].reset == 56  # the other process's second, T0 - 5, stops counting first


def test_what_others_sent_past_the_limit_delays_the_retry(limiter, clock):
    """Over the limit because processes decided at once: Retry-After waits until the total is below it."""
    limiter.add_others("key:k1", int(T0) - 50, 5)
    limiter.add_others("key:k1", int(T0) - 20, 10)
    refused = limiter.admit("key:k1", 10)
    assert not refused.accepted
    assert refused.reset == 41  # at T0 - 50 + 61 only 10 still count; at T0 - 20 + 61 none
    clock.now = T0 + 11
    assert not limiter.admit("key:k1", 10).accepted
    clock.now = T0 + 41
    assert limiter.admit("key:k1", 10).accepted


def test_counts_that_no_longer_count_are_ignored_and_future_ones_count_now(limiter, clock):
    limiter.add_others("key:k1", int(T0) - WINDOW - 1, 50)
    limiter.add_others("key:k1", int(T0) + 30, 1)  # a clock running ahead
    assert limiter.windows["key:k1"].counts == {int(T0): 1}


def test_only_what_this_process_accepted_is_published_once(limiter, clock):
    limiter.add_others("key:k1", int(T0), 7)
    for _ in range(3):
        limiter.admit("key:k1", 60)
    limiter.admit("ip:10.0.0.1", 1)
    limiter.admit("ip:10.0.0.1", 1)  # refused: not counted, not published
    clock.now += 1
    limiter.admit("key:k1", 60)
    assert sorted(limiter.take_unpublished()) == [
        ["ip:10.0.0.1", int(T0), 1], ["key:k1", int(T0), 3], ["key:k1", int(T0) + 1, 1]]
    assert limiter.take_unpublished() == []


def test_counts_not_published_go_next_time_unless_expired(limiter, clock):
    limiter.admit("key:k1", 60)
    clock.now += 5
    limiter.admit("key:k1", 60)
    failed = limiter.take_unpublished()
    clock.now = T0 + WINDOW + 1  # the first second no longer counts anywhere
    limiter.admit("key:k1", 60)
    limiter.put_back(failed)
    assert sorted(limiter.take_unpublished()) == [["key:k1", int(T0) + 5, 1], ["key:k1", int(T0) + WINDOW + 1, 1]]


# -- memory ---------------------------------------------------------------------


def test_idle_identities_are_dropped(limiter, clock):
    for n in range(1000):
        limiter.admit(f"ip:10.0.{n // 256}.{n % 256}", 60)
    clock.now = T0 + 30
    limiter.admit("key:busy", 60)
    limiter.add_others("key:remote", int(T0) + 30, 1)
    limiter.sweep()
    assert len(limiter.windows) == 1002  # everything still counts
    clock.now = T0 + WINDOW + 1
    limiter.sweep()
    assert set(limiter.windows) == {"key:busy", "key:remote"}
    clock.now = T0 + 30 + WINDOW + 1
    limiter.sweep()
    assert limiter.windows == {}


def test_a_window_keeps_at_most_sixty_one_seconds(limiter, clock):
    for n in range(600):
        clock.now = T0 + n / 2
        limiter.admit("key:k1", 100_000)
    window = limiter.windows["key:k1"]
    assert len(window.counts) <= WINDOW + 1
    assert window.total == sum(window.counts.values()) == 2 * 61  # seconds 239..299


def test_a_team_limit_caps_its_keys_together(limiter):
    """New keys do not multiply a team's share: each request must fit both its key's and its team's window."""
    accepted = 0
    for n in range(40):
        decision = limiter.admit(f"key:k{n % 8}", 10, ("team:t", 25))
        accepted += decision.accepted
        if not decision.accepted:
            assert decision.limit == 25 and decision.remaining == 0
    assert accepted == 25
    assert limiter.admit("key:other-team", 10, ("team:u", 25)).accepted


def test_a_refusal_by_one_window_counts_in_none(limiter):
    for _ in range(3):
        limiter.admit("key:k1", 3, ("team:t", 100))
    assert not limiter.admit("key:k1", 3, ("team:t", 100)).accepted
    assert limiter.admit("key:k2", 3, ("team:t", 100)).remaining == 2   # the team counted 4, not 5
    assert limiter.windows["team:t"].total == 4
