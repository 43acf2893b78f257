"""Which generation of topics a deployment runs and how many partitions it has: the `deployment` topic.

One record (key `deployment`) says it; `pingstream rescale` (engine/rescale.py)
is its only writer after the first start. A move from generation g (P
partitions) to g+1 (N partitions) goes through three states:

    active    {generation: g, partitions: P}
    moving    + next {generation: g+1, partitions: N}. Ingest (check results,
              check-ins, webhook events) goes to generation g+1's topics, where
              it waits in Kafka; commands and owner reads answer 503 with
              Retry-After; workers of g pause their timers and fold what is
              left in g's topics.
    copying   g is drained: its workers stop, and the rescale re-keys g's state
              into g+1's changelog.
    active    {generation: g+1, partitions: N}: workers start on g+1, restore
              that state and fold the ingest that waited.

While a move is in progress, every process that produces ingest (API
processes, workers' mounted API, probes) publishes, every ACK_EVERY seconds,
which generation its ingest goes to (key `ack:<process>`), once nothing it
sent elsewhere is still in flight. The rescale waits for every live process to say g+1 before it counts
on g's topics having stopped growing.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engine import topics
from engine.partitioning import partition_for
from engine.settings import Settings

log = logging.getLogger(__name__)

KEY = b"deployment"
ACK_PREFIX = b"ack:"
ACK_EVERY = 2.0          # seconds between a process's acknowledgements
ACK_LIVE_FOR = 8.0       # a process that acknowledged nothing for this long is taken as gone
ACTIVE, MOVING, COPYING = "active", "moving", "copying"
RETRY_AFTER = 5          # seconds: what a 503 during a move tells clients


@dataclass(frozen=True, slots=True)
class Deployment:
    generation: int
    partitions: int
    state: str = ACTIVE
    next_generation: int | None = None
    next_partitions: int | None = None
    #: when the current state began (wall clock)
    since: float = 0.0

    @property
    def moving(self) -> bool:
        return self.state != ACTIVE

    @property
    def ingest(self) -> tuple[int, int]:
        """(generation, partitions) ingest is produced to now."""
        if self.moving:
            return self.next_generation, self.next_partitions
        return self.generation, self.partitions

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> Deployment:
        return cls(**orjson.loads(raw))

    def moving_to(self, partitions: int) -> Deployment:
        return replace(self, state=MOVING, next_generation=self.generation + 1, next_partitions=partitions,
                       since=time.time())

    def copying(self) -> Deployment:
        return replace(self, state=COPYING, since=time.time())

    def moved(self) -> Deployment:
        return Deployment(self.next_generation, self.next_partitions, ACTIVE, since=time.time())


@dataclass(frozen=True, slots=True)
class Ingest:
    """Where ingest goes now: a generation of topics (engine/topics.py) and its partition count."""
    generation: int
    partitions: int

    def topic(self, name: str) -> str:
        return topics.named(name, self.generation)

    def partition_of(self, entity_id: str) -> int:
        return partition_for(entity_id, self.partitions)


def initial(settings: Settings) -> Deployment:
    """A deployment no rescale ever touched: generation 0 with the configured partitions."""
    return Deployment(0, settings.partitions)


def generation_settings(settings: Settings, deployment: Deployment) -> Settings:
    """The settings of a worker of `deployment`'s current generation: its partitions and consumer group."""
    return replace(settings, partitions=deployment.partitions, app_id=app_id_of(settings, deployment.generation))


def app_id_of(settings: Settings, generation: int) -> str:
    """The worker group (and changelog prefix) of a generation; `settings.app_id` names generation 0's."""
    return settings.app_id if generation == 0 else f"{settings.app_id}.g{generation}"


async def read(settings: Settings, *, acks: bool = False) -> tuple[Deployment, dict[str, dict]]:
    """The deployment record (or the initial one) and, if `acks`, every process's last acknowledgement."""
    deployment, seen, _ = await read_to_end(settings, acks=acks)
    return deployment, seen


async def read_to_end(settings: Settings, *, acks: bool = False) -> tuple[Deployment, dict[str, dict], int]:
    """Like `read`, also saying the offset it read up to (where following it goes on).

    The end is the highwater of the fetch responses (right on Tansu too, unlike its
    ListOffsets), and fetches wait 20 ms at most: every process reads this at start,
    and `pingstream bootstrap` before each team it makes, so it must cost milliseconds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=20)
    await consumer.start()
    try:
        tp = TopicPartition(topics.DEPLOYMENT, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        deployment, seen = None, {}
        deadline = time.monotonic() + 30
        while True:
            for records in (await consumer.getmany(tp, timeout_ms=50)).values():
                for record in records:
                    if record.key == KEY and record.value is not None:
                        deployment = Deployment.from_json(record.value)
                    elif acks and record.key and record.key.startswith(ACK_PREFIX) and record.value is not None:
                        seen[record.key[len(ACK_PREFIX):].decode()] = orjson.loads(record.value)
            position, end = await consumer.position(tp), consumer.highwater(tp)
            if end is not None and position >= end:
                return deployment or initial(settings), seen, position
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read the {topics.DEPLOYMENT} topic within 30 s")
    finally:
        await consumer.stop()


async def write(settings: Settings, deployment: Deployment) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topics.DEPLOYMENT, deployment.to_json(), key=KEY, partition=0)
    finally:
        await producer.stop()


def ack_record(process: str, generation: int) -> tuple[bytes, bytes]:
    """The acknowledgement `process` publishes: its ingest goes to `generation` only, from now on."""
    return ACK_PREFIX + process.encode(), orjson.dumps({"generation": generation, "at": time.time()})


class Watch:
    """Follows the `deployment` topic in a process that must act when it changes.

    `on_change(deployment)` is called with every new deployment record (and the
    first one read); acknowledgements are published for `process` with the
    generation `acknowledge()` returns, every ACK_EVERY s.
    """

    def __init__(self, settings: Settings, process: str, on_change: Callable[[Deployment], object],
                 acknowledge: Callable[[], int | None]) -> None:
        self.settings, self.process = settings, process
        self.on_change, self.acknowledge = on_change, acknowledge
        self.current: Deployment | None = None
        self._read_to = 0  # the offset following goes on from: what `start` read is acted on already
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Read the deployment (acting on it as on a change), then follow it and acknowledge."""
        self.current, _, self._read_to = await read_to_end(self.settings)
        outcome = self.on_change(self.current)
        if asyncio.iscoroutine(outcome):
            await outcome
        self._tasks = [asyncio.create_task(self._follow())]
        if self.process:
            self._tasks.append(asyncio.create_task(self._ack()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _follow(self) -> None:
        from engine import following

        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=200)
        await consumer.start()
        try:
            tp = TopicPartition(topics.DEPLOYMENT, 0)
            consumer.assign([tp])
            consumer.seek(tp, self._read_to)
            async for batch in following.batches(consumer, topics.DEPLOYMENT):
                for records in batch.values():
                    for record in records:
                        if record.key != KEY or record.value is None:
                            continue
                        deployment = Deployment.from_json(record.value)
                        if deployment != self.current:
                            self.current = deployment
                            try:
                                outcome = self.on_change(deployment)
                                if asyncio.iscoroutine(outcome):
                                    await outcome
                            except Exception:
                                log.exception("acting on deployment %s failed", deployment)
        finally:
            await consumer.stop()

    async def _ack(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, acks="all")
        await producer.start()
        try:
            while True:
                # only a move needs them: a deployment at rest writes nothing here
                generation = self.acknowledge() if self.current is not None and self.current.moving else None
                if generation is not None:
                    try:
                        key, value = ack_record(self.process, generation)
                        await producer.send_and_wait(topics.DEPLOYMENT, value, key=key, partition=0)
                    except Exception:
                        log.warning("could not acknowledge generation %d; will retry", generation)
                await asyncio.sleep(ACK_EVERY)
        finally:
            await producer.stop()


async def current(settings: Settings) -> Deployment:
    """The deployment a one-off command acts on (bootstrap, plan): its topics named as its generation's."""
    await topics.ensure_registries(settings)
    deployment, _ = await read(settings)
    topics.use_generation(deployment.generation)
    return deployment


def restart_process(why: str) -> None:
    """Run this process's command line again, in place (same pid): a worker or probe joining another generation.

    Its sockets close (Python's are not inherited); its RocksDB directory is the
    old generation's, which the new one does not open (engine/app.py)."""
    log.warning("restarting: %s", why)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


async def joinable(settings: Settings, what: str) -> Deployment:
    """The deployment a worker or probe starting now joins: waits while a rescale copies state."""
    from engine.topics import ensure_registries

    await ensure_registries(settings)
    while True:
        deployment, _ = await read(settings)
        if deployment.state != COPYING:
            return deployment
        log.warning("a rescale to %d partitions is copying state; this %s starts once it is done",
                    deployment.next_partitions, what)
        await asyncio.sleep(1.0)


def watch_as_worker(app: object, running: Deployment, settings: Settings) -> type:
    """A service of a worker of `running`'s generation: pauses when a move begins, restarts when it must."""
    import mode

    from engine import ownership

    def on_change(deployment: Deployment) -> None:
        if deployment.generation == running.generation and deployment.state == MOVING:
            if not ownership.paused(app):
                log.warning("moving to %d partitions: timers paused, folding what is left",
                            deployment.next_partitions)
                ownership.pause(app)
        elif deployment.generation != running.generation or deployment.state == COPYING:
            restart_process(f"the deployment is now {deployment}")

    class DeploymentWatch(mode.Service):
        async def on_start(self) -> None:
            self.watch = Watch(settings, "", on_change, lambda: None)
            await self.watch.start()

        async def on_stop(self) -> None:
            await self.watch.stop()

    return DeploymentWatch
