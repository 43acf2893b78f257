"""Never commit past a message a fold left unfolded: Faust's head-gap check is off by one.

A fold loop leaves messages unfolded and unacked when a rebalance or a stop
catches them (engine/folding.py) and remembers, per partition, the first one
(`behind`), to be read again. Faust commits the acked offsets of a partition
up to its first gap, except a gap at the head: `Consumer._new_offset` returns
nothing when `min(acked) - committed > 1`, where `committed` is the next offset
to read. A single unacked message at the head (`min(acked) - committed == 1`)
is committed past, and its partition's next owner never reads it: one result
envelope lost. `test_ingest_during_rebalance` lost two envelopes in each of
three partitions that way when the first worker stopped mid-batch.

The fix: each fold loop registers its `behind` with the consumer, and no
offset is committed for a partition while every acked offset lies beyond the
first message still held there.
"""
from __future__ import annotations

import functools
from typing import Any

from faust.transport.consumer import Consumer

_PATCH_MARK = "__pingstream_commit_holds__"
_HOLDS = "_pingstream_holds"


def hold(consumer: Any, behind: dict[Any, int]) -> None:
    """Let `behind` (partition -> the first offset not folded yet) hold back `consumer`'s commits."""
    holds = getattr(consumer, _HOLDS, None)
    if holds is None:
        holds = []
        setattr(consumer, _HOLDS, holds)
    holds.append(behind)


def install() -> None:
    original = Consumer._new_offset
    if getattr(original, _PATCH_MARK, False):
        return

    @functools.wraps(original)
    def _new_offset(self: Consumer, tp: Any) -> int | None:
        acked = self._acked[tp]
        if acked:
            for behind in getattr(self, _HOLDS, ()):
                first = behind.get(tp)
                if first is not None and min(acked) > first:
                    return None  # what is acked lies beyond a message still to be folded: commit nothing yet
        return original(self, tp)

    setattr(_new_offset, _PATCH_MARK, True)
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
