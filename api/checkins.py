"""Check-ins from the public URLs to topic `heartbeats`: checked, rate-limited, batched.

The check-in URLs (native, Healthchecks, Uptime Kuma) need no API key: the
heartbeat id or push token is the secret. So each answers only what the caller
could know anyway: accepted, not found, or too many requests.

* existence: the directory this process follows says whether the heartbeat
  exists and is enabled (api/directory.py), no worker is asked; one not known
  yet (created a moment ago elsewhere) costs one catch-up with the directory
  (check-ins of a heartbeat deleted meanwhile end in dead-letters);
* rate limit: per heartbeat, per API process, at most RATE_LIMIT check-ins in
  any RATE_WINDOW seconds (a sliding window), then 429 with Retry-After;
* batching: check-ins arriving while the previous envelope of their
  partition is on its way are sent together as the next envelope (group
  commit), one per partition, the batched path POST /v1/checks takes; each
  request is answered once Kafka acknowledged its envelope (acks=all).
"""
from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import orjson
from aiohttp import web

from api.gateway import Gateway, Ingest
from engine import topics
from schemas.heartbeat import MAX_BODY, MAX_MESSAGE

RATE_LIMIT = 100            # check-ins per heartbeat ...
RATE_WINDOW = 10.0          # ... in any this many seconds, per API process
ENVELOPE_BYTES = 512 * 1024  # an envelope closes at about this size; the rest waits for the next


class SlidingWindow:
    """Requests per key in the last `window` seconds, estimated from this and the previous fixed window."""

    def __init__(self, limit: int, window: float, max_keys: int = 500_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self.counts: dict[str, tuple[int, int, int]] = {}  # key -> (window number, count in it, count in the one before)

    def admit(self, key: str, now: float) -> float | None:
        """None if the request may go ahead (and is counted); else seconds until it may."""
        number = int(now // self.window)
        elapsed = now - number * self.window
        seen, current, previous = self.counts.get(key, (number, 0, 0))
        if seen == number - 1:
            current, previous = 0, current
        elif seen < number - 1:
            current, previous = 0, 0
        weight = 1 - elapsed / self.window
        if previous * weight + current >= self.limit:
            if current >= self.limit or previous == 0:
                wait = self.window - elapsed
            else:  # until the previous window's share has faded enough
                wait = self.window * (1 - (self.limit - current) / previous) - elapsed
            self.counts[key] = (number, current, previous)
            return min(self.window, max(1.0, math.ceil(wait)))
        if len(self.counts) >= self.max_keys and key not in self.counts:
            self.counts = {k: v for k, v in self.counts.items() if v[0] >= number - 1}
        self.counts[key] = (number, current + 1, previous)
        return None


class GroupCommit:
    """Per partition (any key naming one), items wait while the previous batch is on its way, then go on together.

    `run(partition, items)` handles one batch and returns one result per item;
    a batch closes at `max_weight` (by `weight` of each item). Under load
    batches grow by themselves; alone, an item goes at once.
    """

    def __init__(self, run: Callable[[Any, list], Awaitable[list]], max_weight: int,
                 weight: Callable[[Any], int] = lambda item: 1) -> None:
        self.run, self.max_weight, self.weight = run, max_weight, weight
        self.waiting: dict[Hashable, list[tuple[Any, asyncio.Future]]] = {}
        self.busy: set[Hashable] = set()
        self.draining: set[asyncio.Task] = set()  # held, so a running drain is never garbage-collected

    async def submit(self, partition: Hashable, item: Any) -> Any:
        done = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(partition, []).append((item, done))
        if partition not in self.busy:
            self.busy.add(partition)
            task = asyncio.create_task(self._drain(partition))
            self.draining.add(task)
            task.add_done_callback(self.draining.discard)
        return await done

    async def _drain(self, partition: Hashable) -> None:
        try:
            while queue := self.waiting.get(partition):
                taken, weight = 0, 0
                while taken < len(queue) and (taken == 0 or weight + self.weight(queue[taken][0]) <= self.max_weight):
                    weight += self.weight(queue[taken][0])
                    taken += 1
                batch, self.waiting[partition] = queue[:taken], queue[taken:]
                try:
                    results = await self.run(partition, [item for item, _ in batch])
                except Exception as exc:  # every request of the batch learns it failed
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for (_, done), result in zip(batch, results):
                        if not done.done():
                            done.set_result(result)
        finally:
            self.busy.discard(partition)


class CheckInIngest:
    """One per API process (per gateway): rate limiter, existence from the directory, batched envelopes."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.limiter = SlidingWindow(RATE_LIMIT, RATE_WINDOW)
        self.envelopes = GroupCommit(self._produce, ENVELOPE_BYTES,
                                     lambda checkin: 200 + len(checkin.get("body") or "") + len(checkin.get("message") or ""))

    def too_many(self, heartbeat_id: str) -> float | None:
        return self.limiter.admit(heartbeat_id, time.monotonic())

    async def enabled(self, heartbeat_id: str) -> bool | None:
        """None if no such heartbeat; else whether it is enabled."""
        asked = time.monotonic()
        enabled = self.gateway.directory.heartbeat_enabled(heartbeat_id)
        if enabled is None:
            await self.gateway.sync_directory(since=asked)
            enabled = self.gateway.directory.heartbeat_enabled(heartbeat_id)
        return enabled

    async def send(self, checkin: dict) -> None:
        """Returns once Kafka has the check-in (acks=all), sent in an envelope with its partition's others."""
        with self.gateway.ingesting() as ingest:  # envelopes are per generation: a rescale may switch meanwhile
            await self.envelopes.submit((ingest, ingest.partition_of(checkin["heartbeat_id"])), checkin)

    async def _produce(self, where: tuple[Ingest, int], checkins: list[dict]) -> list[None]:
        ingest, partition = where
        await self.gateway.produce(ingest.topic(topics.HEARTBEATS), orjson.dumps({"checkins": checkins}),
                                   partition=partition, what="the check-in")
        return [None] * len(checkins)


_ingests: weakref.WeakKeyDictionary[Gateway, CheckInIngest] = weakref.WeakKeyDictionary()


def ingest_of(request: web.Request) -> CheckInIngest:
    gateway: Gateway = request.app["gateway"]
    ingest = _ingests.get(gateway)
    if ingest is None:
        ingest = _ingests[gateway] = CheckInIngest(gateway)
    return ingest


def source_ip(request: web.Request) -> str | None:
    address = request.remote  # behind a trusted proxy, the client's (api/forwarding.py)
    return address[:64] if address else None


async def read_body(request: web.Request) -> str | None:
    """The first MAX_BODY bytes of the request body as text; the rest is read and dropped by aiohttp."""
    if not request.can_read_body:
        return None
    kept = bytearray()
    while len(kept) < MAX_BODY:
        chunk = await request.content.read(MAX_BODY - len(kept))
        if not chunk:
            break
        kept += chunk
    return kept.decode("utf-8", "replace") or None


def check_in(heartbeat_id: str, result: str, request: web.Request, *, message: str | None = None,
             rid: str | None = None, exit_status: int | None = None, body: str | None = None,
             duration: float | None = None) -> dict[str, Any]:
    """A check-in as it goes on topic `heartbeats` (schemas/heartbeat.CheckIn), stamped with our clock."""
    record = {"heartbeat_id": heartbeat_id, "result": result, "received_at": time.time(),
              "message": None if message is None else message[:MAX_MESSAGE], "rid": rid,
              "source_ip": source_ip(request), "exit_status": exit_status, "body": body, "duration": duration}
    return {name: value for name, value in record.items() if value is not None}
