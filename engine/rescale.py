"""`pingstream rescale --partitions N`: move a running deployment to another partition count.

Keyed topics cannot shrink, and growing them would send every key to another
partition while its state stays behind, so a rescale makes a new generation of
keyed topics (engine/topics.py) and moves the deployment onto it, through the
states of the `deployment` record (engine/deployment.py):

1. **moving**: the next generation's topics exist. Every process producing
   ingest sends it there from now on (it waits in Kafka, nothing is refused)
   and acknowledges; commands and owner reads answer 503 with Retry-After.
   The old generation's workers pause their timers and effects and fold what
   is left in the old topics. Once every live process has acknowledged, the
   old topics stop growing; once the old worker group has committed the end
   of every topic it folds (twice, a few seconds apart), the old generation
   is drained: its state is final.
2. **copying**: the old workers stop and wait. Every table record in the old
   changelog, and every entry of the compacted topics the API follows
   (`directory`, `status-page-views`), is written to the partition of the new
   generation that its id hashes to (tables/rescaling.py), after checking it
   is where the old count puts it. Counters kept per partition are summed.
3. **active** on the new generation: workers restore its changelog and fold
   the ingest that waited; API processes follow its registries.

Each step can be repeated: run again after a kill, the rescale picks up from
the state the record says, and copies whole final values again (a compacted
changelog keeps the last), so nothing is lost or counted twice. Values keep
the source positions they applied; the new generation's offsets count from
generation × 2**40 (engine/topics.py), so no new item looks like a redelivery.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from engine import deployment as deployments
from engine import following, topics
from engine.deployment import Deployment
from engine.partitioning import partition_for
from engine.settings import Settings
from tables import rescaling

log = logging.getLogger(__name__)

DRAIN_CHECK_EVERY = 2.0     # seconds between looks at the old worker group's lag
DRAINED_LOOKS = 2           # consecutive looks at lag 0 before the old generation counts as drained
class RescaleError(Exception):
    """Why a rescale cannot go on; the message says what to do."""


@dataclass
class Report:
    old_partitions: int = 0
    partitions: int = 0
    generation: int = 0
    records_moved: int = 0
    records_merged: int = 0
    entries_moved: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())
        return (f"moved from {self.old_partitions} to {self.partitions} partitions (generation {self.generation}): "
                f"{self.records_moved:,} table records ({self.records_merged:,} counters summed) and "
                f"{self.entries_moved:,} directory and status page entries; {steps}")


def _view_home(key: bytes) -> str:
    return rescaling.home_of("status-page-views", key)


#: compacted keyed topics the API follows whole: copied like the state; key -> the id it lives with
FOLLOWED = {topics.DIRECTORY: rescaling.directory_home, topics.STATUS_PAGE_VIEWS: _view_home}


async def rescale(settings: Settings, partitions: int, *, say: Callable[[str], None] = print,
                  drain_timeout: float = 600.0) -> Report:
    """Move the deployment to `partitions` partitions, or finish the move in progress to that count."""
    if partitions < 1:
        raise RescaleError("--partitions must be at least 1")
    await topics.ensure_registries(settings)
    current, _ = await deployments.read(settings)
    report = Report()
    if current.state == deployments.ACTIVE:
        if partitions == current.partitions:
            say(f"the deployment already has {partitions} partitions (generation {current.generation}): nothing to do")
            report.old_partitions = report.partitions = partitions
            report.generation = current.generation
            return report
        if current.generation + 1 > topics.MAX_GENERATION:
            raise RescaleError(f"this deployment has been rescaled {current.generation} times, the most positions "
                               "can count; export and import the data into a new deployment instead")
        mark = time.monotonic()
        await _copy_state(settings, current.moving_to(partitions), Report(), say, check_only=True)
        report.seconds["checking"] = time.monotonic() - mark
        await _create_generation(settings, current.generation + 1, partitions)
        current = current.moving_to(partitions)
        await deployments.write(settings, current)
        say(f"moving from {current.partitions} to {partitions} partitions (generation {current.next_generation}): "
            "ingest goes to the new topics now; commands and reads answer 503 until the move is done")
    elif current.next_partitions != partitions:
        raise RescaleError(f"a move to {current.next_partitions} partitions is in progress; finish it first with "
                           f"`pingstream rescale --partitions {current.next_partitions}`")
    else:
        say(f"resuming the move from {current.partitions} to {partitions} partitions ({current.state})")
    report.old_partitions, report.partitions, report.generation = (current.partitions, partitions,
                                                                   current.next_generation)
    started = time.monotonic()
    if current.state == deployments.MOVING:
        await _wait_for_acknowledgements(settings, current, say)
        report.seconds["switching ingest"] = time.monotonic() - started
        mark = time.monotonic()
        await _wait_until_drained(settings, current, say, drain_timeout)
        report.seconds["draining"] = time.monotonic() - mark
        current = current.copying()
        await deployments.write(settings, current)
    mark = time.monotonic()
    await _copy_state(settings, current, report, say)
    await _copy_followed(settings, current, report)
    report.seconds["copying"] = time.monotonic() - mark
    await deployments.write(settings, current.moved())
    say(f"done: {report.line()}")
    return report


async def _create_generation(settings: Settings, generation: int, partitions: int) -> None:
    """Every keyed topic of `generation`, and its worker group's changelog, with `partitions` partitions."""
    await topics.ensure_topics(settings, generation=generation, partitions=partitions)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        name = topics.changelog(deployments.app_id_of(settings, generation))
        if name not in set(await admin.list_topics()):
            try:  # as Faust makes it: compacted, so a restore reads each key's last value
                await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                                    topic_configs={"cleanup.policy": "compact"})])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def _wait_for_acknowledgements(settings: Settings, moving: Deployment, say: Callable[[str], None]) -> None:
    """Until every live ingesting process says its ingest goes to the new generation only."""
    deadline, told = time.monotonic() + 120, 0.0
    while True:
        _, acks = await deployments.read(settings, acks=True)
        now = time.time()
        live = {process: ack for process, ack in acks.items() if ack["at"] > now - deployments.ACK_LIVE_FOR}
        behind = sorted(process for process, ack in live.items()
                        if ack["generation"] != moving.next_generation or ack["at"] < moving.since)
        if not behind:
            say(f"ingest goes to the new topics in every process ({len(live)} acknowledged)")
            return
        if time.monotonic() > deadline:
            raise RescaleError(f"these processes still send ingest to the old topics after 120 s: "
                               f"{', '.join(behind)}; stop them, or run the rescale again")
        if time.monotonic() - told > 10:
            say(f"waiting for {len(behind)} processes to send ingest to the new topics")
            told = time.monotonic()
        await asyncio.sleep(0.5)


async def _lag(settings: Settings, moving: Deployment) -> dict[str, int]:
    """Per topic partition the old worker group folds: records it has not committed yet."""
    group = deployments.app_id_of(settings, moving.generation)
    tps = [TopicPartition(topics.named(spec.name, moving.generation), p)
           for spec in topics.TOPICS if spec.folded for p in range(moving.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await following.end_offsets(settings, consumer, tps)
        lag: dict[str, int] = {}
        for tp in tps:
            committed = await consumer.committed(tp) or 0
            behind = max(0, ends[tp] - committed)
            if behind:
                lag[f"{tp.topic}/{tp.partition}"] = behind
        return lag
    finally:
        await consumer.stop()


async def _wait_until_drained(settings: Settings, moving: Deployment, say: Callable[[str], None],
                             timeout: float) -> None:
    """Until the old worker group has committed the end of every topic it folds, DRAINED_LOOKS times running."""
    deadline, told, clean = time.monotonic() + timeout, 0.0, 0
    while clean < DRAINED_LOOKS:
        lag = await _lag(settings, moving)
        clean = 0 if lag else clean + 1
        if lag and time.monotonic() > deadline:
            raise RescaleError(f"the workers of the old generation still have {sum(lag.values()):,} records to "
                               f"fold after {timeout:g} s ({lag}); are they running? Run the rescale again to wait "
                               "more")
        if lag and time.monotonic() - told > 5:
            say(f"waiting for the workers to fold what is left in the old topics: {sum(lag.values()):,} records "
                f"({', '.join(f'{topic} {n:,}' for topic, n in sorted(lag.items()))})")
            told = time.monotonic()
        await asyncio.sleep(DRAIN_CHECK_EVERY)
    say("the old generation is drained: its state is final")


async def _read_partition(settings: Settings, consumer: AIOKafkaConsumer, tp: TopicPartition,
                          end: int) -> dict[bytes, bytes]:
    """The last value of every key of one partition (a compacted topic's state), deleted keys left out."""
    last: dict[bytes, bytes | None] = {}
    if end == 0:
        return {}
    consumer.assign([tp])
    consumer.seek(tp, 0)
    while await consumer.position(tp) < end:
        for records in (await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)).values():
            for record in records:
                if record.offset < end:
                    last[record.key] = record.value
    return {key: value for key, value in last.items() if value is not None}


def _misplaced(what: str, key: bytes, home: str, partition: int, old: Deployment) -> str:
    return (f"{what} key {key!r} lives with {home!r}, which {old.partitions} partitions put in "
            f"{partition_for(home, old.partitions)}, but it is in {partition}")


async def _copy_state(settings: Settings, copying: Deployment, report: Report, say: Callable[[str], None],
                      *, check_only: bool = False) -> None:
    """Every table record of the old changelog, to the new changelog's partition its id hashes to.

    One old partition at a time (memory: one partition's state); counters kept
    per partition are summed across all of them and written last. `check_only`:
    only that every record can be placed (before anything is switched)."""
    old_topic = topics.changelog(deployments.app_id_of(settings, copying.generation))
    new_topic = topics.changelog(deployments.app_id_of(settings, copying.next_generation))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=20,
                                max_batch_size=1 << 20, max_request_size=8 << 20)
    await consumer.start()
    await producer.start()
    try:
        tps = [TopicPartition(old_topic, p) for p in range(copying.partitions)]
        ends = await following.end_offsets(settings, consumer, tps)
        merged: dict[tuple[int, bytes], bytes] = {}
        for tp in tps:
            state = await _read_partition(settings, consumer, tp, ends[tp])
            problems, sends = [], []
            for full_key, value in state.items():
                table, _, key = full_key.partition(b"\x00")
                try:
                    home = rescaling.home_of(table.decode(), key)
                except rescaling.Unroutable as exc:
                    problems.append(f"table {table.decode()!r} key {key!r}: {exc}")
                    continue
                partition = partition_for(home, copying.next_partitions)
                if rescaling.merger_of(table.decode(), key) is not None:
                    earlier = merged.get((partition, full_key))
                    merged[(partition, full_key)] = value if earlier is None else rescaling.merge(
                        table.decode(), key, earlier, value)
                    report.records_merged += 1
                    continue
                if partition_for(home, copying.partitions) != tp.partition:
                    problems.append(_misplaced(f"table {table.decode()!r}", key, home, tp.partition, copying))
                    continue
                if check_only:
                    continue
                sends.append(await producer.send(new_topic, value, key=full_key, partition=partition))
            if problems:
                raise RescaleError(f"{len(problems)} records of partition {tp.partition} cannot be placed by the "
                                   f"rules of tables/rescaling.py; the deployment was left as it is. First: "
                                   f"{problems[:3]}")
            if check_only:
                continue
            await asyncio.gather(*sends)
            report.records_moved += len(sends)
            say(f"copied partition {tp.partition} of {copying.partitions}: {len(sends):,} records")
        if check_only:
            return
        await asyncio.gather(*[await producer.send(new_topic, value, key=key, partition=partition)
                               for (partition, key), value in merged.items()])
        report.records_moved += len(merged)
    finally:
        await consumer.stop()
        await producer.stop()


async def _copy_followed(settings: Settings, copying: Deployment, report: Report) -> None:
    """`directory` and `status-page-views`: each key's last value, to its entity's partition of the new count."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=20)
    await consumer.start()
    await producer.start()
    try:
        for base, home_of in FOLLOWED.items():
            old, new = topics.named(base, copying.generation), topics.named(base, copying.next_generation)
            tps = [TopicPartition(old, p) for p in range(copying.partitions)]
            ends = await following.end_offsets(settings, consumer, tps)
            for tp in tps:
                sends = []
                for key, value in (await _read_partition(settings, consumer, tp, ends[tp])).items():
                    home = home_of(key)
                    if partition_for(home, copying.partitions) != tp.partition:
                        raise RescaleError(_misplaced(f"{base}", key, home, tp.partition, copying))
                    sends.append(await producer.send(new, value, key=key,
                                                     partition=partition_for(home, copying.next_partitions)))
                await asyncio.gather(*sends)
                report.entries_moved += len(sends)
    finally:
        await consumer.stop()
        await producer.stop()
