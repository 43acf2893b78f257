"""Which partitions this worker owns, and whether it serves them yet: answered here only.

Keyed topics are co-partitioned (engine/topics.py), so the partitions of
`check-results` assigned to this worker are its partitions of every keyed
topic and table. While a rebalance is in progress (tables restoring) it serves
none of them: owner reads answer 421, and timers send nothing.

Every second, if what it serves changed (or every ANNOUNCE_EVERY s anyway), a
worker announces it on `workers`, so any API process can route owner reads;
when partitions are revoked it forgets their cached state and withdraws at once.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

import faust
import orjson

from engine import topics
from engine.metrics import TIMER_DUE, TIMER_FIRED
from tables.store import StateStore

ANNOUNCE_EVERY = 10.0


def reference_topic() -> str:
    """The topic whose assignment names this worker's partitions (every keyed topic has the same)."""
    return topics.CHECK_RESULTS


#: apps pausing for a rescale (engine/deployment.py): they fold what is left, and serve nothing
_PAUSED: set[int] = set()


def pause(app: faust.App) -> None:
    """Serve no partition from now on: timers send no ticks, effects start nothing, owner reads answer 421.

    The folds go on, so the topics are read to their end; a rescale waits for that."""
    _PAUSED.add(id(app))


def paused(app: faust.App) -> bool:
    return id(app) in _PAUSED


def assigned(app: faust.App) -> set[int]:
    """The partitions assigned to this worker, restored or not."""
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == reference_topic()}


def serving(app: faust.App) -> list[int]:
    """The partitions this worker serves now: none while a rebalance is in progress."""
    if app.rebalancing or id(app) in _PAUSED:
        return []  # restoring: the state may not be complete yet; or pausing for a rescale
    return sorted(assigned(app))


def serves(app: faust.App, partition: int) -> bool:
    return not app.rebalancing and id(app) not in _PAUSED and partition in assigned(app)


async def send_ticks(app: faust.App, topic: str, partitions: Iterable[int], at: float, kind: str = "tick") -> None:
    """A `tick` (or another `kind` of tick) carrying this worker's clock to each of `partitions` of `topic`;
    returns once Kafka has them all.

    Time goes through the topic (invariant 3): the fold owning a partition acts on the tick, in order.
    """
    tick = orjson.dumps({"kind": kind, "at": at, "id": f"{kind}:{at}"})  # an id: a tick may go on `commands`
    sends = [await app.producer.send(topic, None, tick, partition, None, None) for partition in partitions]
    if sends:
        await asyncio.gather(*sends)


def due_ticks(app: faust.App, topic: str, is_due: Callable[[int, float], bool], applied: Mapping[int, float],
              retick_after: float, kind: str = "tick") -> Callable[[], Awaitable[None]]:
    """A timer body: a tick with this worker's clock to each partition it serves that `is_due(partition, now)`.

    `applied`: partition -> `at` of the last tick its fold applied; while a tick
    sent is not applied yet, the partition gets no other for `retick_after` s.
    Counted as ticks due (sent) and fired (seen applied by the fold).
    """
    sent: dict[int, float] = {}  # partition -> `at` of the last tick this worker sent it
    unfired: set[int] = set()  # partitions whose last tick sent was not seen applied yet
    due_ticks_sent, ticks_fired = TIMER_DUE.labels(f"{topic}/{kind}"), TIMER_FIRED.labels(f"{topic}/{kind}")

    async def tick() -> None:
        now = time.time()
        due = []
        for partition in [p for p in unfired if applied.get(p, 0.0) >= sent[p]]:
            unfired.discard(partition)
            ticks_fired.inc()
        for partition in serving(app):
            waiting = sent.get(partition, 0.0) > applied.get(partition, 0.0)
            if waiting and now - sent[partition] < retick_after:
                continue  # the last tick is still on its way
            if not is_due(partition, now):
                continue
            sent[partition] = now
            due.append(partition)
        unfired.update(due)
        due_ticks_sent.inc(len(due))
        await send_ticks(app, topic, due, now, kind)

    tick.__name__ = tick.__qualname__ = f"{kind}_ticks_{topic.replace('-', '_')}"  # Faust names timers by it
    return tick


def announce_ownership(app: faust.App, state: StateStore, url: str) -> None:
    """Announce what this worker serves on `workers`, and withdraw when partitions are revoked."""
    last = {"partitions": None, "at": 0.0}

    async def announce(partitions: list[int]) -> None:
        announcement = {"url": url, "partitions": partitions, "at": time.time(), "generation": topics.GENERATION}
        await app.producer.send_and_wait(topics.WORKERS, url.encode(), orjson.dumps(announcement), 0, None, None)
        last.update(partitions=partitions, at=time.monotonic())

    @app.timer(1.0)
    async def announce_ownership() -> None:
        partitions = serving(app)
        if partitions != last["partitions"] or time.monotonic() - last["at"] > ANNOUNCE_EVERY:
            await announce(partitions)

    @app.on_partitions_revoked.connect
    async def withdraw(app, revoked, **kwargs) -> None:
        revoked_here = {tp.partition for tp in revoked if tp.topic == reference_topic()}
        state.forget(revoked_here)
        if revoked_here:
            await announce([])  # stop owner reads coming here until the new assignment is restored
