"""The loop the webhook, incident and notification agents share: fold a batch, flush it, then act.

Like agents/checks.py: a batch of messages is folded into the write-behind
cache, its events and state are flushed (events first) before the offsets are
acknowledged, and a message that cannot be folded is dead-lettered while the
stream goes on. Nothing is judged before this worker knows every ruleset.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from engine.app import Engine

log = logging.getLogger(__name__)

TAKE = 200   # messages folded per flush at most


async def fold_batches(engine: Engine, stream: Any, folder: Any, topic: str,
                       after: Callable[[], None] | None = None) -> None:
    """The loop of every agent here: fold a batch, flush its state (effects first), then `after`."""
    async for events in stream.take_events(TAKE, within=engine.settings.flush_interval):
        await engine.org_config.ready.wait()  # judge nothing before every ruleset is known
        for event in events:
            message = event.message
            try:
                folder.fold_message(message.partition, message.offset, message.value)
            except Exception as exc:  # a message we cannot fold must not stop the stream
                log.exception("folding %s %d/%d failed", topic, message.partition, message.offset)
                folder.dead_letters.send(topic, message.partition, message.offset, 0, message.value,
                                         f"failed: {exc!r}")
                engine.state.forget_cached()
        await engine.state.flush()
        if after is not None:
            after()
