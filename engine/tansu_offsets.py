"""Correct end offsets (highwaters) reported by the Tansu broker.

The defect
----------
Tansu 0.6.0 answers ``ListOffsets(LATEST)`` with the first offset of the *last
stored batch* + 1 rather than the last offset + 1. After three producer
batches of ten records to one partition (offsets 0-29) it can report, say, 11
instead of 30. Fetch responses are not affected: their highwater is right.

Faust takes ``consumer.end_offsets()`` as the changelog highwater during
table recovery. With a persistent store (RocksDB) the offset it stored
locally is the real last offset, so after a worker restart or failover the
stored offset is above the reported highwater and recovery dies with
``ConsistencyError: The persisted offset ... is higher than the last offset in
that topic (highwater)``. With the consistency check off, recovery stops at
the wrong highwater and loses table data.

The fix
-------
For each partition whose reported end offset ``E`` is above 0, fetch from
``E - 1``. That offset is inside the last stored batch, and a Kafka fetch
returns whole batches, so the answer holds every record of that batch (and
anything after it) together with the fetch response's highwater. The true end
offset is ``max(last record offset + 1, fetch highwater, E)``: each term is a
lower bound on the real end offset, and the last record seen is the real last
record once the partition has been read up to the fetch highwater. A partition
reported as 0 is empty (Tansu reports at least 1 for any stored batch), so it
needs no fetch.

Faust gets the correction through :func:`install`, which only affects the apps
it is called for.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, server_list
from faust.types import TP

DEFAULT_TIMEOUT = 10.0

_APP_FLAG = "_pingstream_tansu_highwaters"
_PATCH_MARK = "__pingstream_tansu_patch__"

Partition = TypeVar("Partition", bound=tuple)


async def true_end_offsets(
    bootstrap: str,
    partitions: Iterable[Partition],
    reported: Mapping[Partition, int],
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[Partition, int]:
    """Return the real end offset of each partition, given what Tansu reported.

    ``partitions`` may be aiokafka ``TopicPartition`` or Faust ``TP`` tuples;
    the result is keyed by the objects passed in. Raises ``TimeoutError`` if
    the partitions cannot be read within ``timeout`` seconds.
    """
    ends = {tp: reported.get(tp) or 0 for tp in partitions}
    to_read = {TopicPartition(tp[0], tp[1]): tp for tp, end in ends.items() if end > 0}
    if not to_read:
        return ends

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="pingstream-tansu-offsets",
    )
    await consumer.start()
    try:
        consumer.assign(list(to_read))
        for aio_tp, tp in to_read.items():
            consumer.seek(aio_tp, ends[tp] - 1)
        await asyncio.wait_for(_read_to_end(consumer, to_read, ends), timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(
            f"could not read the end of {sorted(to_read)} from {bootstrap} "
            f"within {timeout} s"
        ) from None
    finally:
        await consumer.stop()
    return ends


async def _read_to_end(
    consumer: AIOKafkaConsumer,
    to_read: Mapping[TopicPartition, Partition],
    ends: dict[Partition, int],
) -> None:
    """Fetch until every partition's position has reached its fetch highwater."""
    pending = set(to_read)
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=500)
        for aio_tp, records in batches.items():
            if records:
                tp = to_read[aio_tp]
                ends[tp] = max(ends[tp], records[-1].offset + 1)
        for aio_tp in list(pending):
            highwater = consumer.highwater(aio_tp)
            if highwater is None:
                continue  # no fetch response for it yet
            tp = to_read[aio_tp]
            ends[tp] = max(ends[tp], highwater)
            if await consumer.position(aio_tp) >= highwater:
                pending.discard(aio_tp)


def install(app: Any) -> None:
    """Make ``app``'s table recovery use true changelog highwaters on Tansu.

    Faust's recovery reads changelog highwaters only through
    ``Consumer.highwaters()`` -> ``AIOKafkaConsumerThread.highwaters()`` ->
    ``AIOKafkaConsumerThread._highwaters()`` (ListOffsets), which is what gets
    corrected. The per-partition ``highwater(tp)`` comes from fetch responses,
    which Tansu reports correctly, and recovery does not use it. Other apps in
    the same process are unaffected; calling this twice is harmless.
    """
    setattr(app, _APP_FLAG, True)
    _patch_consumer_thread()


def is_installed(app: Any) -> bool:
    return bool(getattr(app, _APP_FLAG, False))


def _patch_consumer_thread() -> None:
    original = AIOKafkaConsumerThread._highwaters
    if getattr(original, _PATCH_MARK, False):
        return

    @functools.wraps(original)
    async def _highwaters(
        self: AIOKafkaConsumerThread, partitions: list[TP]
    ) -> Mapping[TP, int]:
        reported = await original(self, partitions)
        # Transactional consumers read the last stable offset from fetch responses, which is sound.
        if not is_installed(self.app) or self.consumer.in_transaction:
            return reported
        bootstrap = ",".join(server_list(self.transport.url, self.transport.default_port))
        return await true_end_offsets(bootstrap, partitions, reported)

    setattr(_highwaters, _PATCH_MARK, True)
    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]
