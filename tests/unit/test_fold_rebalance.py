"""The fold loop across a rebalance: nothing folded before it is committed, nothing fetched before it is folded.

A rebalance drops the pending writes of revoked partitions (a new state
epoch) and Faust seeks every assigned partition back to its committed
offset. So messages folded before it must not be acked (their writes may be
gone), and messages fetched before it must not be folded (they come again,
and folding a later one first would make the store skip the earlier one by
position).
"""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from engine.folding import fold_batches


def event(offset: int, generation: int) -> SimpleNamespace:
    message = SimpleNamespace(partition=0, offset=offset, value=b"{}", timestamp=0.0, generation_id=generation,
                              acked=False)
    return SimpleNamespace(message=message)


class Stream:
    def __init__(self, batches: list[list[SimpleNamespace]]) -> None:
        self.batches = batches

    async def take_events(self, take: int, within: float):
        for batch in self.batches:
            yield batch


class State:
    """What the fold loop uses of the StateStore: the app, the epoch, flush."""

    def __init__(self) -> None:
        self.app = SimpleNamespace(consumer_generation_id=1, flow_control=SimpleNamespace(is_active=lambda: True))
        self.epoch = 0

    async def flush(self) -> int:
        return self.epoch

    def forget_cached(self) -> None:
        pass

    def rebalance(self) -> None:
        self.epoch += 1                      # the store dropped the revoked partitions' pending writes
        self.app.consumer_generation_id += 1  # and the new assignment is in place


class Fold:
    def __init__(self, state: State, rebalance_after: int) -> None:
        self.state, self.rebalance_after = state, rebalance_after
        self.folded: list[tuple[int, int]] = []
        self.dead_letters = None

    def fold_message(self, partition: int, offset: int, value: bytes, timestamp: float) -> None:
        self.folded.append((offset, self.state.app.consumer_generation_id))
        if offset == self.rebalance_after:
            self.rebalance_after = -1  # once
            self.state.rebalance()


def run(batches: list[list[SimpleNamespace]], rebalance_after: int) -> Fold:
    state = State()
    fold = Fold(state, rebalance_after)
    asyncio.run(fold_batches(state, Stream(batches), fold, "check-results", writer="checks", take=100, within=0.1))
    return fold


def test_messages_folded_before_a_rebalance_are_never_committed_and_those_fetched_before_are_not_folded() -> None:
    before = [event(offset, generation=1) for offset in range(5)]
    again = [event(offset, generation=2) for offset in range(5)]  # Faust's seek reads them again
    fold = run([before, again], rebalance_after=2)
    assert fold.folded == [(0, 1), (1, 1), (2, 1)] + [(offset, 2) for offset in range(5)]
    assert all(e.message.acked for e in before)          # marked: take_events' ack leaves them out of the commit
    assert not any(e.message.acked for e in again)       # these are committed as usual


def test_a_quiet_batch_is_committed_as_usual() -> None:
    batch = [event(offset, generation=1) for offset in range(5)]
    fold = run([batch], rebalance_after=-1)
    assert [offset for offset, _ in fold.folded] == list(range(5))
    assert not any(e.message.acked for e in batch)


def test_nothing_is_folded_while_a_rebalance_is_under_way() -> None:
    state = State()
    state.app.flow_control = SimpleNamespace(is_active=lambda: False)
    fold = Fold(state, rebalance_after=-1)
    batch = [event(offset, generation=1) for offset in range(3)]
    asyncio.run(fold_batches(state, Stream([batch]), fold, "check-results", writer="checks", take=100, within=0.1))
    assert fold.folded == [] and all(e.message.acked for e in batch)


TP = ("check-results", 0)


class Consumer:
    """What the fold loop asks of Faust's consumer: the assignment, its read offsets, seeks."""

    def __init__(self, read_offset: int | None) -> None:
        self._read_offset = {TP: read_offset}
        self.seeks: list[tuple[tuple, int]] = []

    def assignment(self) -> set:
        return {TP}

    async def seek(self, tp: tuple, offset: int) -> None:
        self.seeks.append((tp, offset))
        self._read_offset[tp] = offset


def with_tp(offset: int, generation: int) -> SimpleNamespace:
    made = event(offset, generation)
    made.message.tp = TP
    return made


def test_after_a_rebalance_nothing_later_is_folded_before_what_it_left_unfolded() -> None:
    """0-2 were folded before the rebalance dropped their writes, 3 and 4 fetched before it; 5 and 6 come next
    (the consumer's read offset had moved past the others, so the seek's copies were dropped). 5 and 6 wait,
    unacked, until 0 comes again."""
    state = State()
    state.app.consumer = Consumer(read_offset=None)
    fold = Fold(state, rebalance_after=2)
    first = [with_tp(offset, generation=1) for offset in range(5)]
    ahead = [with_tp(offset, generation=2) for offset in (5, 6)]
    again = [with_tp(offset, generation=2) for offset in range(8)]
    asyncio.run(fold_batches(state, Stream([first, ahead, again]), fold, "check-results", writer="checks",
                             take=100, within=0.1))
    assert fold.folded == [(0, 1), (1, 1), (2, 1)] + [(offset, 2) for offset in range(8)]
    assert all(e.message.acked for e in ahead)   # left out of the commit: read again
    assert not any(e.message.acked for e in again)


def test_the_first_message_left_unfolded_is_sought_when_it_would_not_come_again(monkeypatch) -> None:
    from engine import folding

    monkeypatch.setattr(folding, "BEHIND_CHECK", 0.01)
    app = SimpleNamespace(flow_control=SimpleNamespace(is_active=lambda: True), consumer=Consumer(read_offset=9))

    async def watch(behind: dict) -> None:
        watcher = asyncio.ensure_future(folding.keep_reading_behind(app, behind))
        await asyncio.sleep(0.2)
        watcher.cancel()

    asyncio.run(watch({TP: 3}))
    assert app.consumer.seeks[0] == (TP, 3)  # the consumer would have dropped offset 3: read again from it
    app.consumer = Consumer(read_offset=3)
    asyncio.run(watch({TP: 3}))
    assert app.consumer.seeks == []          # it comes again by itself
    app.consumer = Consumer(read_offset=9)
    app.consumer.seek = lambda tp, offset: asyncio.sleep(0)  # never moves: the record is gone from the log
    behind = {TP: 3}
    asyncio.run(watch(behind))
    assert behind == {}                      # given up after a few seeks: folding goes on


def test_a_message_handed_out_past_the_committed_offset_waits_until_the_ones_it_skipped_come() -> None:
    """Seen after a worker took a partition back from a SIGKILLed one: Faust sought to the committed offset
    (980) and then handed out 1251, fetched before; it took 981-1250 for a hole in the log, and dropped them
    when they came. Here: committed 3, then 7 and 8 handed out first. They wait, unacked, until 3 comes."""
    state = State()
    state.app.consumer = Consumer(read_offset=None)
    state.app.consumer._committed_offset = {TP: 3}
    fold = Fold(state, rebalance_after=-1)
    ahead = [with_tp(offset, generation=1) for offset in (7, 8)]
    again = [with_tp(offset, generation=1) for offset in range(3, 10)]
    asyncio.run(fold_batches(state, Stream([ahead, again]), fold, "check-results", writer="checks",
                             take=100, within=0.1))
    assert [offset for offset, _ in fold.folded] == list(range(3, 10))
    assert all(e.message.acked for e in ahead)      # left out of the commit: read again
    assert not any(e.message.acked for e in again)


def test_offsets_are_expected_in_sequence_only_where_the_log_has_no_holes() -> None:
    from engine.folding import Sequence

    consumer = Consumer(read_offset=None)
    consumer._committed_offset = {}
    app = SimpleNamespace(consumer_generation_id=1, consumer=consumer)
    sequence = Sequence(app)
    assert sequence.skipped_to(with_tp(5, 1).message) is None      # never committed: the first one sets it
    assert sequence.skipped_to(with_tp(6, 1).message) is None
    assert sequence.skipped_to(with_tp(9, 1).message) == 7         # 7 and 8 are not folded yet
    assert sequence.skipped_to(with_tp(2, 1).message) is None      # read again from before: in order from here
    sequence.gone(TP)                                              # retention took what was expected
    assert sequence.skipped_to(with_tp(40, 1).message) is None
    app.consumer_generation_id = 2                                 # a new assignment: from the committed offset
    consumer._committed_offset = {TP: 50}
    assert sequence.skipped_to(with_tp(52, 2).message) == 50
    app.consumer_generation_id = 3                                 # never committed: sought to its beginning
    consumer._committed_offset = {}
    consumer._pingstream_from_beginning = frozenset({TP})
    assert sequence.skipped_to(with_tp(4, 3).message) == 0         # fetched before that seek
    assert sequence.skipped_to(with_tp(0, 3).message) is None
