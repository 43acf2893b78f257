"""Rate limits: requests a minute per API key (or person), per team and per client IP, across every API process.

Who is counted. A request with valid credentials counts against its
principal's `rate_key` (the API key; or the person, in the team the token acts
in), limited by the team's plan (tables/plans.py: free 60 … business 600 a
minute), and against its team, limited to TEAM_SHARE times that, so that
making more keys does not multiply what a team may ask; it is accepted only
if both have room, and then counts in both. A request without credentials, or
with credentials that are not valid, counts against the client address
(`request.remote`), limited to PINGSTREAM_IP_RATE_LIMIT a minute; its handler
then answers 401 as usual. Not
limited here: handlers marked `@unmetered` (health check, OpenAPI document,
and the ingest URLs that need no credentials: check-ins, which are limited per
heartbeat, and webhook events) and the workers' /internal/ routes.

The window. Accepted requests are counted per second of the wall clock: one
accepted during second s counts until second s + 61 begins, i.e. for 60 to 61
seconds, so no 60-second interval holds more accepted requests than the limit
(as far as this process knows, see below). A request is accepted while fewer
than `limit` count, and then counts; a refused one (429) does not. Every
limited response, whatever its status, carries

    X-RateLimit-Limit      the limit a minute
    X-RateLimit-Remaining  how many more would be accepted now (this request counted)
    X-RateLimit-Reset      whole seconds (rounded up, at least 1) until the oldest
                           request still counted stops counting, so that Remaining
                           goes up; on a 429, until a request would be accepted
                           again (then also sent as Retry-After)

Across processes. Every process serving the API (API processes, and workers,
which mount it too) counts what it accepts and, every PUBLISH_INTERVAL
(0.5 s), publishes what it added since its last publication as a `rate-usage`
record {"process": id, "counts": [[identity, second, count], …]}. Each process
follows the topic from where its end was at start and adds the others' counts
into the same windows. A process's view of an identity is thus everything it
accepted itself plus everything the others accepted up to their last
publication it has read: it lags behind the true total by at most one publish
interval plus the delivery time (tens of ms on a healthy broker). So once the
requests accepted by all processes together reach the limit, each process
goes on accepting for at most that long, until it has read the others' counts:
over any 60 seconds all processes together accept at most the limit plus what
they accept within PUBLISH_INTERVAL + delivery after reaching it; at r
requests a second in total, about r × 0.6 (measured with two processes and
alternate requests: 2 over at 10 a second, 9 at 50, 39 flat out at ~130). A
single process never goes over. Nor can N processes accept more than N × limit,
the worst case, for a burst faster than the lag landing on all of them, or while
the broker is unreachable (each then limits on its own counts and publishes
later). A process does not know what the others accepted in the minute before
it started. Windows are per wall-clock second, so the processes' clocks should
agree (NTP); a count stamped with a second still to come here counts in the
current second.

Memory: a window per identity that made a request within the last 61 s (at most
61 counts each); windows idle longer are dropped every SWEEP_INTERVAL. What is not
published yet is one interval's counts (a minute's while the broker is
unreachable: older ones no longer count and are dropped).
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from api.auth import principal_for
from engine.responses import error_response
from api.gateway import Gateway
from engine import following, topics
from tables.plans import plan_named

log = logging.getLogger(__name__)

WINDOW = 60                  # the limits are per minute: a count of second s still counts at second s + WINDOW
PUBLISH_INTERVAL = 0.5       # seconds between two publications of this process's counts
SWEEP_INTERVAL = 5.0         # seconds between two drops of idle windows
COUNTS_PER_RECORD = 5_000    # [identity, second, count] entries in one rate-usage record (~300 KB at most)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Decision(NamedTuple):  # a tuple: made for every request, and cheaper to make than a dataclass
    accepted: bool
    limit: int
    remaining: int
    reset: int   # seconds: see the module docstring

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset)}


def whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class Window:
    """One identity's accepted requests per second, of every process, that still count."""

    __slots__ = ("counts", "total", "oldest", "newest")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}   # second -> requests accepted in it
        self.total = 0
        self.oldest = self.newest = 0      # the first and last second in counts (when there are any)

    def expire(self, second: int) -> None:
        """Forget the seconds that no longer count during `second`."""
        horizon = second - WINDOW
        if self.counts and self.oldest < horizon:
            self.counts = {s: n for s, n in self.counts.items() if s >= horizon}
            self.total = sum(self.counts.values())
            self.oldest = min(self.counts, default=second)

    def add(self, second: int, count: int) -> None:
        counts = self.counts
        if not counts:
            self.oldest = self.newest = second
        elif second > self.newest:
            self.newest = second
        elif second < self.oldest:
            self.oldest = second
        counts[second] = counts.get(second, 0) + count
        self.total += count

    def free_at(self, limit: int) -> float:
        """When (epoch seconds) fewer than `limit` requests will count, so that one more is accepted."""
        total = self.total
        for second in sorted(self.counts):
            total -= self.counts[second]
            if total < limit:
                return second + WINDOW + 1
        return self.newest + WINDOW + 1  # a limit of 0 or less: never; say a minute


class RateLimiter:
    """The windows of every identity, and what this process accepted but has not published yet."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.windows: dict[str, Window] = {}
        self.unpublished: dict[tuple[str, int], int] = {}   # (identity, second) -> accepted here

    def admit(self, identity: str, limit: int, *also: tuple[str, int]) -> Decision:
        """Accept (and count) the request if fewer than `limit` count for `identity`; refuse it otherwise.

        `also`: more (identity, limit) pairs that must all have room too (e.g.
        the key's team); the request then counts in each. The decision is the
        tightest: the first refusal, or the least remaining.
        """
        now = self.clock()
        second = int(now)
        windows = []
        for name, most in ((identity, limit), *also):
            window = self.windows.get(name)
            if window is None:
                window = self.windows[name] = Window()
            else:
                window.expire(second)
            if window.total >= most:
                return Decision(False, most, 0, whole_seconds(window.free_at(most) - now))
            windows.append((name, most, window))
        decision = None
        for name, most, window in windows:
            window.add(second, 1)
            key = (name, second)
            self.unpublished[key] = self.unpublished.get(key, 0) + 1
            mine = Decision(True, most, most - window.total, whole_seconds(window.oldest + WINDOW + 1 - now))
            if decision is None or mine.remaining < decision.remaining:
                decision = mine
        return decision

    def add_others(self, identity: str, second: int, count: int) -> None:
        """Count what another process accepted for `identity` during `second`."""
        current = int(self.clock())
        if second < current - WINDOW:
            return  # no longer counts
        window = self.windows.get(identity)
        if window is None:
            window = self.windows[identity] = Window()
        else:
            window.expire(current)
        window.add(min(second, current), count)

    def take_unpublished(self) -> list[list]:
        """[identity, second, count] of every count added here since the last call."""
        taken, self.unpublished = self.unpublished, {}
        return [[identity, second, count] for (identity, second), count in taken.items()]

    def put_back(self, counts: list[list]) -> None:
        """Counts that could not be published: publish them next time, unless they no longer count."""
        horizon = int(self.clock()) - WINDOW
        for identity, second, count in counts:
            if second >= horizon:
                key = (identity, second)
                self.unpublished[key] = self.unpublished.get(key, 0) + count

    def sweep(self) -> None:
        """Drop the windows of identities with nothing counted any more."""
        horizon = int(self.clock()) - WINDOW
        for identity in [i for i, window in self.windows.items() if window.newest < horizon]:
            del self.windows[identity]


class RateUsage:
    """Shares this process's counts with the others through `rate-usage`, and adds theirs."""

    def __init__(self, limiter: RateLimiter, gateway: Gateway) -> None:
        self.limiter, self.gateway = limiter, gateway
        self.process = uuid.uuid4().hex[:16]
        self.consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.gateway.settings.bootstrap_servers, group_id=None,
            enable_auto_commit=False, fetch_max_wait_ms=50,  # Tansu holds a long poll for its whole wait
        )
        await self.consumer.start()
        tp = TopicPartition(topics.RATE_USAGE, 0)
        self.consumer.assign([tp])
        await self.consumer.seek_to_end(tp)
        await self.consumer.position(tp)
        self._tasks = [asyncio.create_task(self._publish_every_interval()),
                       asyncio.create_task(self._follow())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self.publish(), 2)  # the last counts, for the processes that go on
        except Exception:
            log.info("could not publish the last rate-limit counts")
        if self.consumer is not None:
            await self.consumer.stop()

    async def publish(self) -> None:
        counts = self.limiter.take_unpublished()
        sent = 0
        try:
            while sent < len(counts):
                chunk = counts[sent:sent + COUNTS_PER_RECORD]
                await self.gateway.producer.send_and_wait(
                    topics.RATE_USAGE, orjson.dumps({"process": self.process, "counts": chunk}),
                    key=self.process.encode(), partition=0)
                sent += len(chunk)
        except BaseException:  # failed or cancelled: what was not sent goes next time
            self.limiter.put_back(counts[sent:])
            raise

    async def _publish_every_interval(self) -> None:
        next_sweep = time.monotonic() + SWEEP_INTERVAL
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL)
            try:
                await self.publish()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not publish rate-limit counts (%r); trying again", exc)
            if time.monotonic() >= next_sweep:
                self.limiter.sweep()
                next_sweep = time.monotonic() + SWEEP_INTERVAL

    async def _follow(self) -> None:
        async for batch in following.batches(self.consumer, "rate-usage"):
            for records in batch.values():
                for record in records:
                    try:
                        self.apply(record.value)
                    except Exception:
                        log.warning("ignoring an unreadable rate-usage record at offset %d", record.offset)

    def apply(self, value: bytes) -> None:
        record = orjson.loads(value)
        if record["process"] == self.process:
            return
        for identity, second, count in record["counts"]:
            self.limiter.add_others(identity, int(second), int(count))


def unmetered_if(exempt: Callable[[web.Request], bool]) -> Callable[[Handler], Handler]:
    """The handler's requests for which `exempt` is true are not counted by these limits."""

    def mark(handler: Handler) -> Handler:
        handler.unmetered = exempt
        return handler

    return mark


#: not counted by these limits: the endpoint must always answer, or has limits of its own
unmetered = unmetered_if(lambda request: True)


def metered(request: web.Request) -> bool:
    if request.path.startswith("/internal/"):
        return False
    exempt = getattr(request.match_info.handler, "unmetered", None)
    return exempt is None or not exempt(request)


async def identities_of(request: web.Request) -> list[tuple[str, int]]:
    """What the request counts against, each with its limit a minute: the key (or person) and its team, or the IP."""
    gateway: Gateway = request.app["gateway"]
    try:
        principal = await principal_for(request)
    except Exception:  # not valid (ApiError): counted against the address; the handler answers 401 (or 500) as usual
        principal = None
    if principal is None:
        return [(f"ip:{client_address(request)}", gateway.settings.ip_rate_limit)]
    plan = plan_named(gateway.teams.get(principal.org_id, {}).get("plan"))
    if not principal.org_id:  # a person in no team yet
        return [(principal.rate_key, plan.requests_per_minute)]
    return [(principal.rate_key, plan.requests_per_minute), (f"team:{principal.org_id}", plan.team_requests_per_minute)]


def client_address(request: web.Request) -> str:
    return request.remote or "?"


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: counts every metered request, answers 429 over the limit, adds the headers to every answer."""
    if not metered(request):
        return await handler(request)
    identities = await identities_of(request)
    decision = request.app["rate_limiter"].admit(*identities[0], *identities[1:])
    headers = decision.headers()
    if not decision.accepted:
        return error_response(429, "rate_limit_exceeded", f"Rate limit exceeded. Retry after {decision.reset} seconds.",
                              headers={**headers, "Retry-After": str(decision.reset)})
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # what error_middleware lets through (redirects)
        exc.headers.update(headers)
        raise
    if not response.prepared:
        response.headers.update(headers)
    return response


def install(app: web.Application, gateway: Gateway) -> None:
    """A limiter for `app`'s middleware, sharing its counts while the app runs."""
    limiter = app["rate_limiter"] = RateLimiter()
    sharing = RateUsage(limiter, gateway)

    async def start(app: web.Application) -> None:
        await sharing.start()

    async def stop(app: web.Application) -> None:
        await sharing.stop()

    app.on_startup.append(start)        # after the gateway's start, hooked before: it uses the producer
    app.on_cleanup.insert(0, stop)      # before the gateway's stop
