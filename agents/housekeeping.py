"""Timers that look only at this worker's partitions and speak through topics (invariant 3).

* ownership: every second, if what this worker serves changed (or every 10 s
  anyway), announce it on `workers`, so any API process can route owner reads;
* retention: every ten minutes, a `tick` to each owned partition of `check-results`;
  the checks agent expires what is older than retention_days when it reads it.
"""
from __future__ import annotations

import time

import orjson

from engine import topics
from engine.app import Engine

ANNOUNCE_EVERY = 10.0
RETENTION_TICK = 600.0  # cheap (a seek per monitor), and soon after start even if workers restart often


def owned(engine: Engine) -> list[int]:
    if engine.app.rebalancing:
        return []  # restoring: not ready to answer reads yet
    return sorted(tp.partition for tp in engine.app.consumer.assignment() if tp.topic == topics.CHECK_RESULTS)


def register(engine: Engine) -> None:
    app = engine.app
    url = engine.settings.advertised_worker_url
    last = {"partitions": None, "at": 0.0}

    async def announce(partitions: list[int]) -> None:
        announcement = {"url": url, "partitions": partitions, "at": time.time()}
        await app.producer.send_and_wait(topics.WORKERS, url.encode(), orjson.dumps(announcement), 0, None, None)
        last.update(partitions=partitions, at=time.monotonic())

    @app.timer(1.0)
    async def announce_ownership() -> None:
        partitions = owned(engine)
        if partitions != last["partitions"] or time.monotonic() - last["at"] > ANNOUNCE_EVERY:
            await announce(partitions)

    @app.on_partitions_revoked.connect
    async def withdraw(app, revoked, **kwargs) -> None:
        revoked_here = {tp.partition for tp in revoked if tp.topic == topics.CHECK_RESULTS}
        engine.state.forget(revoked_here)
        if revoked_here:
            await announce([])  # stop owner reads coming here until the new assignment is restored

    @app.timer(RETENTION_TICK)
    async def retention_tick() -> None:
        now = time.time()
        for partition in owned(engine):
            await app.producer.send_and_wait(
                topics.CHECK_RESULTS, None, orjson.dumps({"kind": "tick", "at": now}), partition, None, None)
