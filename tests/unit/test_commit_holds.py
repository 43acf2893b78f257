"""No offset is committed past a message a fold left unfolded (engine/commit_holds.py)."""
from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from faust.transport.consumer import Consumer
from intervaltree import IntervalTree

from engine import commit_holds

TP = ("check-results", 1)


def consumer(acked: list[int], committed: int) -> SimpleNamespace:
    return SimpleNamespace(_acked=defaultdict(list, {TP: list(acked)}), _gap=defaultdict(IntervalTree),
                           _committed_offset=defaultdict(lambda: None, {TP: committed}),
                           _acked_index=defaultdict(set, {TP: set(acked)}))


def test_faust_alone_commits_past_one_unacked_message_at_the_head() -> None:
    commit_holds.install()
    # 100 was left unfolded (never acked), 101 and 102 were folded: Faust would commit 103, past 100
    assert Consumer._new_offset(consumer([101, 102], committed=100), TP) == 103


def test_a_held_message_holds_the_commit_until_it_is_folded() -> None:
    commit_holds.install()
    commit_holds.install()  # twice changes nothing
    held = consumer([101, 102], committed=100)
    behind = {TP: 100}
    commit_holds.hold(held, behind)
    assert Consumer._new_offset(held, TP) is None
    # what comes before the held message is committed, up to it and no further
    before = consumer([98, 99, 101], committed=98)
    commit_holds.hold(before, {TP: 100})
    assert Consumer._new_offset(before, TP) == 100
    # read again and folded: the hold is gone (read_in_order drops it), and the commit goes on
    del behind[TP]
    held._acked[TP] = [100, 101, 102]
    assert Consumer._new_offset(held, TP) == 103
