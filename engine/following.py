"""Following topics forever: the loop every process runs over the topics it keeps in memory."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

log = logging.getLogger(__name__)


async def end_offsets(settings: Any, consumer: Any, tps: list[Any]) -> dict[Any, int]:
    """Where each of `tps` ends now, as `consumer` asks the broker; corrected on Tansu (engine/tansu_offsets.py)."""
    ends = await consumer.end_offsets(tps)
    if settings.on_tansu:
        from engine.tansu_offsets import true_end_offsets

        ends = await true_end_offsets(settings.bootstrap_servers, tps, ends)
    return ends


async def batches(consumer: Any, what: str, retry_after: float = 0.5) -> AsyncIterator[dict]:
    """Every batch `consumer` fetches, forever; a failed fetch is logged and tried again after `retry_after` s."""
    while True:
        try:
            batch = await consumer.getmany(timeout_ms=500)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading %s failed; retrying", what)
            await asyncio.sleep(retry_after)
            continue
        yield batch
