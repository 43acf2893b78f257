"""The API's check-in plumbing: the per-heartbeat rate limit and group-committed batches."""
from __future__ import annotations

import asyncio

import pytest

from api.checkins import GroupCommit, SlidingWindow


def test_the_window_admits_the_limit_then_says_how_long_to_wait() -> None:
    window = SlidingWindow(limit=5, window=10.0)
    assert [window.admit("a", 100.0 + n * 0.1) for n in range(5)] == [None] * 5
    wait = window.admit("a", 100.6)
    assert wait is not None and 1 <= wait <= 10
    assert window.admit("b", 100.6) is None  # another heartbeat has its own window


def test_the_previous_window_fades_out() -> None:
    window = SlidingWindow(limit=10, window=10.0)
    for n in range(10):
        assert window.admit("a", 109.0 + n * 0.05) is None   # all at the end of window [100, 110)
    assert window.admit("a", 111.0) is None                 # 9/10 of the previous window counts: room for one
    assert window.admit("a", 111.0) is not None             # 9 + 1: full
    assert window.admit("a", 119.5) is None                 # 1/20 of it is left: room again
    assert window.admit("a", 140.0) is None                 # long after: a fresh start


def test_refused_requests_do_not_count() -> None:
    window = SlidingWindow(limit=2, window=10.0)
    window.admit("a", 0.0)
    window.admit("a", 0.1)
    for _ in range(50):
        assert window.admit("a", 0.2) is not None
    assert window.admit("a", 20.0) is None


async def test_items_arriving_meanwhile_go_together() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def run(partition: int, items: list[int]) -> list[int]:
        batches.append(items)
        if len(batches) == 1:
            await release.wait()  # the first batch is on its way while the others arrive
        return [item * 10 for item in items]

    commit = GroupCommit(run, max_weight=100)
    first = asyncio.create_task(commit.submit(0, 1))
    await asyncio.sleep(0)
    others = [asyncio.create_task(commit.submit(0, n)) for n in range(2, 6)]
    await asyncio.sleep(0.01)
    release.set()
    assert await first == 10 and await asyncio.gather(*others) == [20, 30, 40, 50]
    assert batches == [[1], [2, 3, 4, 5]]


async def test_a_batch_closes_at_its_weight_and_partitions_do_not_wait_for_each_other() -> None:
    batches: list[tuple[int, list[int]]] = []

    async def run(partition: int, items: list[int]) -> list[None]:
        batches.append((partition, items))
        await asyncio.sleep(0.01)
        return [None] * len(items)

    commit = GroupCommit(run, max_weight=5, weight=lambda item: item)
    await asyncio.gather(*[commit.submit(0, 2) for _ in range(5)], commit.submit(1, 9))
    assert (1, [9]) in batches  # heavier than the limit alone: it still goes, alone
    assert [items for partition, items in batches if partition == 0] == [[2, 2], [2, 2], [2]]


async def test_a_failed_batch_fails_each_of_its_requests() -> None:
    async def run(partition: int, items: list[int]) -> list[int]:
        raise RuntimeError("broker gone")

    commit = GroupCommit(run, max_weight=10)
    results = await asyncio.gather(commit.submit(0, 1), commit.submit(0, 2), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    with pytest.raises(RuntimeError, match="broker gone"):
        await commit.submit(0, 3)  # and the next one is tried afresh
