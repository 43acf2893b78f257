"""A busy fold lets the other tasks run until they wait again, not for one turn of the event loop."""
from __future__ import annotations

import asyncio
import time

from engine.folding import LET_IN, let_others_in


async def hand_offs(count: int, done: list[int]) -> None:
    """A chain of tasks, each started by the one before: one turn of the loop each, as in Faust's consumer."""
    for n in range(count):
        await asyncio.create_task(asyncio.sleep(0))
        done.append(n)


def test_a_chain_of_hand_offs_completes_within_one_letting_in() -> None:
    async def scenario() -> int:
        done: list[int] = []
        chain = asyncio.create_task(hand_offs(50, done))
        await asyncio.sleep(0)  # the chain starts
        await let_others_in(asyncio.get_running_loop())
        finished = len(done)
        await chain
        return finished

    assert asyncio.run(scenario()) == 50


def test_two_folds_letting_others_in_do_not_hand_the_loop_to_each_other() -> None:
    async def fold(turns: list[float]) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            started = time.perf_counter()
            await let_others_in(loop)
            turns.append(time.perf_counter() - started)

    async def scenario() -> list[float]:
        first: list[float] = []
        second: list[float] = []
        await asyncio.gather(fold(first), fold(second))
        return first + second

    turns = sorted(asyncio.run(scenario()))
    assert turns[len(turns) // 2] < LET_IN / 5  # neither waits for the other until LET_IN


def test_a_task_that_is_always_ready_gets_at_most_let_in() -> None:
    async def spinner(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0)

    async def scenario() -> float:
        stop = asyncio.Event()
        spinning = asyncio.create_task(spinner(stop))
        await asyncio.sleep(0)
        started = time.perf_counter()
        await let_others_in(asyncio.get_running_loop())
        took = time.perf_counter() - started
        stop.set()
        await spinning
        return took

    took = asyncio.run(scenario())
    assert LET_IN <= took < 1.0
