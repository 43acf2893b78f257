"""Read a partition nobody ever committed from its start, whenever Faust seeks to committed offsets.

The defect (Faust 0.15.3 with aiokafka): while a worker restores its tables, the
consumer already fetches the stream partitions it was assigned, and Faust
drops what it fetches then: after the restore it seeks every stream partition
back to its committed offset to read those records again. aiokafka's
`seek_to_committed` seeks only partitions that have a committed offset
(`if offset and offset > 0`), so a partition whose group never committed one
stays where the fetch left it, past the records that were dropped: they are
never folded, and never committed, so the partition's lag never goes down.
Measured: two workers starting on a compacted `directory` with three records in
each partition and a non-empty changelog folded none of them (a standby
restore keeps the first worker recovering long enough), one worker all of them.
It happens whenever a group meets partitions it never committed: a new
deployment's first start with data waiting, and every new generation of topics
after `pingstream rescale`, whose ingest waited in Kafka during the move.

The fix: after Faust's seek to committed offsets, seek every partition without
one to its beginning, which is what `auto_offset_reset=earliest` means.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_PATCH_MARK = "__pingstream_uncommitted_seek__"
_FROM_BEGINNING = "_pingstream_from_beginning"


def from_beginning(consumer: Any) -> frozenset:
    """The partitions Faust's last seek to committed offsets sent to their beginning (never committed)."""
    return getattr(consumer, _FROM_BEGINNING, frozenset())


def install() -> None:
    original = AIOKafkaConsumerThread.seek_to_committed
    if getattr(original, _PATCH_MARK, False):
        return

    @functools.wraps(original)
    async def seek_to_committed(self: AIOKafkaConsumerThread) -> Mapping[Any, int]:
        committed = await original(self)
        never = [tp for tp, offset in committed.items() if offset is None or offset < 0]
        if never:
            await self.call_thread(self._ensure_consumer().seek_to_beginning, *never)
        setattr(self.consumer, _FROM_BEGINNING, frozenset(never))  # the fold expects their first record
        return committed

    setattr(seek_to_committed, _PATCH_MARK, True)
    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]
