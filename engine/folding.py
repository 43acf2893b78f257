"""The one fold loop every agent runs, and the one fold skeleton of the ingest agents.

The loop: a batch of messages is folded into the write-behind cache, its events
and state are flushed (events first) before the offsets are acknowledged, and
a message that cannot be folded is dead-lettered while the stream goes on
(invariant 5). Positions make redelivery harmless (invariant 4).

The skeleton (`EntityFold`) is what every ingest topic does with a message:
decode it or dead-letter it; apply a control message; unwrap an envelope of
items; validate each item; send an item keyed to the wrong partition on to the
partition that owns its entity; dead-letter an item of an entity that does not
exist (or belongs to another organisation); skip an item already applied. A
subclass supplies only what is its own: its topic, its envelope and model, how
to find the entity's configuration and runtime, and how to apply one item.
"""
from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import orjson
from pydantic import BaseModel, ValidationError

from engine import commit_holds, topics, uncommitted_seek
from engine.dead_letters import DeadLetters
from engine.metrics import RECORDS
from engine.partitioning import entity_key, partition_for
from schemas.validation import field_errors
from tables.entity_keys import position
from tables.store import StateStore, writing_as

log = logging.getLogger(__name__)

SLICE = 0.01   # seconds of folding between turns of the event loop (an envelope of 500 results is ~20 ms)
LET_IN = 0.05  # seconds the other tasks may run between two slices of a fold, at most

_letting_in = 0  # folds of this worker now in let_others_in


async def let_others_in(loop: asyncio.AbstractEventLoop) -> None:
    """Give the event loop to the other tasks until none of them is ready to run (LET_IN at most).

    One turn a slice is not enough: a command crosses Faust's consumer in
    hand-offs (fetch, conductor, stream, take buffer, producer, reply), each
    needing a turn of its own, and Faust's consumer delivers every message
    fetched before it (check-result envelopes, monitor events) in about three
    turns each. At one turn a slice (~20 ms) a command waited 0.4-3 s behind a
    backlog; given turns until nothing else is ready, it waits for their work,
    not for slices. A fold in this loop does not count as work for another
    one, or two busy folds would hand the loop to each other until LET_IN.
    """
    global _letting_in
    ready = getattr(loop, "_ready", None)  # asyncio's queue of ready callbacks (absent in other loops)
    clock = time.perf_counter
    until = clock() + LET_IN
    _letting_in += 1
    try:
        while True:
            await asyncio.sleep(0)
            if ready is None or len(ready) < _letting_in or clock() > until:
                break  # none is ready but other folds letting others in, or they had their time
    finally:
        _letting_in -= 1


class Fold(Protocol):
    dead_letters: DeadLetters

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float) -> None: ...

    # optional: `fold_keyed_message(partition, offset, key, value)` is called instead, for compacted topics
    # whose tombstones (value None) only the key names


async def fold_batches(state: StateStore, stream: Any, fold: Fold, topic: str, *, writer: str, take: int,
                       within: float, ready: asyncio.Event | None = None,
                       after: Callable[[], None] | None = None) -> None:
    """Fold a batch, flush its state (effects first), then `after`; forever.

    `writer`: the name this loop writes and flushes as (tables/store.py): its
    flushes take its own writes only, so a command never waits for half a
    batch of results; `ready`: nothing is folded before it is set (e.g. every
    ruleset known). Every SLICE seconds of folding the loop lets the others
    in (commands, owner reads, timers) until they wait again: a batch of
    envelopes can take seconds.
    """
    writing_as(writer)
    app = state.app
    keyed = getattr(fold, "fold_keyed_message", None)
    consumed = RECORDS.labels(topic)
    # partition -> the first offset a rebalance left unfolded (read_in_order). Keyed folds of compacted topics
    # too: left unfolded and never read again, their records would never be folded nor committed (a directory
    # copied by a rescale, read while workers join). Should compaction remove that very record meanwhile, the
    # watcher gives up after a few seeks and the fold goes on from what is there (it keeps the last value anyway)
    behind: dict[Any, int] = {}
    watcher = sequence = None
    if hasattr(app, "consumer"):
        commit_holds.hold(app.consumer, behind)  # nothing is committed past what it holds
        if not any(spec.name == topic and spec.compacted for spec in topics.TOPICS):
            sequence = Sequence(app)  # offsets without holes: one skipped is a message Faust would lose
        watcher = asyncio.ensure_future(keep_reading_behind(app, behind, sequence))
    try:
        async for events in stream.take_events(take, within=within):
            consumed.inc(len(events))  # per batch: the fold is the hot path
            await fold_events(state, fold, topic, events, behind if watcher is not None else None, keyed, ready,
                              sequence)
            if after is not None:
                after()
    finally:
        if watcher is not None:
            watcher.cancel()


async def fold_events(state: StateStore, fold: Fold, topic: str, events: list[Any], behind: dict[Any, int] | None,
                      keyed: Any, ready: asyncio.Event | None, sequence: Sequence | None = None) -> None:
    """One batch: fold it, flush its state, and mark what must be read again as never acked."""
    app, clock, loop = state.app, time.perf_counter, asyncio.get_running_loop()
    base = topics.offset_base()  # positions keep growing across a rescale's generations
    stale, folded = [], []  # events not folded; (event, the state epoch it was folded in)
    try:
        if ready is not None:
            await ready.wait()
        sliced = clock()
        for event in events:
            if clock() - sliced > SLICE:
                await let_others_in(loop)
                sliced = clock()
            message = event.message
            if not fetched_in_this_assignment(app, message):
                stale.append(event)
                continue
            if behind and not read_in_order(behind, message):
                stale.append(event)
                continue
            if sequence is not None and behind is not None:
                skipped = sequence.skipped_to(message)
                if skipped is not None:  # read from there again before this one: keep_reading_behind seeks
                    behind[message.tp] = min(skipped, behind.get(message.tp, skipped))
                    stale.append(event)
                    continue
            folded.append((event, state.epoch))
            try:
                if keyed is not None:  # a fold of a topic whose key says what a tombstone deletes
                    keyed(message.partition, base + message.offset, message.key, message.value)
                else:
                    fold.fold_message(message.partition, base + message.offset, message.value, message.timestamp)
            except Exception as exc:  # a message we cannot fold must not stop the stream
                log.exception("folding %s %d/%d failed", topic, message.partition, message.offset)
                fold.dead_letters.send(topic, message.partition, message.offset, 0, message.value,
                                       f"failed: {exc!r}")
                state.forget_cached()
        cut_in = await state.flush()
    except BaseException:  # cancelled (a stop, a rebalance) or failed mid-batch: all of it is read again
        never_acked(events)
        if behind is not None:
            for event in events:
                left_behind(behind, event.message)
        raise
    unsettled = [event for event, epoch in folded if epoch != cut_in]
    if stale or unsettled:
        log.info("%s: %d messages left unfolded (fetched before a rebalance, or handed out ahead of an earlier "
                 "one), %d folded before a rebalance left uncommitted (generation %s now; flow %s); they are "
                 "read again", topic, len(stale),
                 len(unsettled), app.consumer_generation_id, app.flow_control.is_active())
        never_acked(stale + unsettled)
        if behind is not None:
            for event in stale + unsettled:
                left_behind(behind, event.message)


class Sequence:
    """The offset each partition's fold expects next, in this assignment, on a topic that is not compacted.

    Faust's consumer can hand out a message fetched before its seek to the
    committed offset, past records not read yet: seen after a worker took a
    partition back from a SIGKILLed one (committed 980, the first message
    handed out 1251). Faust takes 981-1250 for a gap in the log (as compaction
    leaves), commits past them, and drops them when they come after 1251:
    all lost. Offsets of a topic that is not compacted have no holes, so a
    message beyond the one expected is not folded; the fold reads again from
    the expected one (as for what a rebalance left unfolded), and commit_holds
    commits nothing past it meanwhile.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.generation: Any = None
        self.next: dict[Any, int | None] = {}  # partition -> the offset after the last one folded here (None: any)

    def skipped_to(self, message: Any) -> int | None:
        """The offset expected before `message`, if it skipped ahead of it; else None (and it is expected)."""
        tp = getattr(message, "tp", None)
        if tp is None:
            return None
        if self.app.consumer_generation_id != self.generation:  # a new assignment: Faust sought to committed
            self.generation = self.app.consumer_generation_id
            self.next.clear()
        if tp in self.next:
            expected = self.next[tp]
        else:  # the first of this assignment: the committed offset, or the log's first if it has none
            consumer = self.app.consumer
            expected = getattr(consumer, "_committed_offset", {}).get(tp)
            if expected is None and tp in uncommitted_seek.from_beginning(consumer):
                expected = 0  # a log that starts later (retention): `gone` after a few seeks
        if expected is not None and message.offset > expected:
            return expected
        self.next[tp] = message.offset + 1
        return None

    def gone(self, tp: Any) -> None:
        """What was expected is not in the log any more (retention): whatever comes next is."""
        self.next[tp] = None


def left_behind(behind: dict[Any, int], message: Any) -> None:
    """A message left unfolded at a rebalance: nothing after it in its partition is folded before it."""
    tp = getattr(message, "tp", None)
    if tp is not None:
        behind[tp] = min(message.offset, behind.get(tp, message.offset))


def read_in_order(behind: dict[Any, int], message: Any) -> bool:
    """May this message be folded, given what a rebalance left unfolded in its partition?

    Faust's seek at the assignment reads the partition again from its
    committed offset, which is at or before the first message left behind;
    until that one comes again, a later message is not folded (folded first,
    it would make the store skip the earlier ones by position) and is read
    again too. keep_reading_behind makes sure it comes again.
    """
    first = behind.get(getattr(message, "tp", None))
    if first is None:
        return True
    if message.offset > first:
        return False
    del behind[message.tp]  # read again from at or before it: in order from here
    return True


BEHIND_CHECK = 1.0  # seconds between looks at what a rebalance left behind
SEEKS_BEFORE_GIVING_UP = 5


async def keep_reading_behind(app: Any, behind: dict[Any, int], sequence: Sequence | None = None) -> None:
    """Seek a partition back to the first message a rebalance left unfolded, whenever Faust would not
    hand it out again: its consumer drops what comes again below its read offset, and the read offset can
    move past that message after the assignment's seek (a batch fetched before it still being handed out).
    A partition no longer assigned is forgotten: its next owner reads it from the committed offset."""
    tries: dict[Any, tuple[int, int]] = {}  # partition -> (the offset sought back to, how many times)
    while True:
        await asyncio.sleep(BEHIND_CHECK)
        if not behind or not app.flow_control.is_active():
            continue
        try:
            assigned = app.consumer.assignment()
            read_offsets = getattr(app.consumer, "_read_offset", {})
            for tp, first in list(behind.items()):
                if tp not in assigned:
                    behind.pop(tp, None)
                    continue
                read = read_offsets.get(tp)
                if read is None or read <= first:
                    continue  # it comes again by itself
                sought, times = tries.get(tp, (first, 0))
                times = times + 1 if sought == first else 1
                tries[tp] = (first, times)
                if times > SEEKS_BEFORE_GIVING_UP:  # gone from the log (retention): fold from what is there
                    behind.pop(tp, None)
                    if sequence is not None:
                        sequence.gone(tp)
                    log.warning("%s/%d: offset %d did not come again after %d seeks; folding on without it",
                                tp.topic, tp.partition, first, SEEKS_BEFORE_GIVING_UP)
                    continue
                await app.consumer.seek(tp, first)
                log.info("%s/%d read again from offset %d: a rebalance left it unfolded", tp.topic,
                         tp.partition, first)
        except Exception:  # a rebalance under way: its seek and the next look take over
            log.warning("reading again what a rebalance left unfolded failed; will look again", exc_info=True)


def fetched_in_this_assignment(app: Any, message: Any) -> bool:
    """May this message be folded now: no rebalance under way, none since it was fetched?

    On a rebalance the store drops the pending writes of every revoked
    partition and Faust seeks each assigned one back to its committed offset,
    so a message fetched before is read again. Folded out of order (after a
    later message of its partition), its own copy would be skipped by position.
    """
    generation = message.generation_id
    return app.flow_control.is_active() and (generation is None or generation == app.consumer_generation_id)


def never_acked(events: list[Any]) -> None:
    """Messages whose state is not durable must not be committed: they are to be read again.

    Faust's take_events acks the batch it yielded when it is closed, even by a
    cancel (a worker stopping, or leaving the group, cancels its agents
    mid-batch), and the consumer then commits those offsets: results folded
    but never flushed would be lost for good. Likewise messages folded before
    a rebalance dropped their pending writes (the flush's cut was taken in a
    later state epoch), and messages not folded at all. Marked as acked
    already, they are left out of the commit; Faust's seek to the committed
    offset at the assignment, or the partition's next owner, reads them again.
    """
    for event in events:
        event.message.acked = True


def decoded(dead_letters: DeadLetters, topic: str, partition: int, offset: int, value: bytes | None, what: str,
            *fields: str) -> dict | None:
    """The message as a JSON object holding `fields`; None once it went to dead letters as not `what`."""
    try:
        message = orjson.loads(value or b"")
        for name in fields:
            message[name]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        dead_letters.send(topic, partition, offset, 0, value, f"not {what}: {exc!r}")
        return None
    return message


@dataclass(frozen=True, slots=True)
class Ingest:
    """What an ingest topic carries, as the skeleton needs to know it."""

    topic: str
    #: the envelope {"<items>": [...], "org_id"?} one message may carry
    items: str
    model: type[BaseModel]
    #: the item's field naming its entity ("monitor_id")
    entity: str
    #: what one item is called ("check result") and the entity it belongs to ("monitor", created at "/v1/monitors")
    item: str
    noun: str
    created_at: str
    control_kinds: frozenset[str] = frozenset()
    #: does a bare JSON list of items count as an envelope
    accepts_list: bool = True
    shape_error: str = ""

    def shape_problem(self) -> str:
        return self.shape_error or f'a message must be a {self.item} object or {{"{self.items}": [...]}}'


class EntityFold:
    """Folds messages of owned partitions of one ingest topic, keyed by entity id."""

    ingest: ClassVar[Ingest]

    def __init__(self, state: StateStore, partitions: int, dead_letters: DeadLetters) -> None:
        self.state = state
        self.partitions = partitions
        self.dead_letters = dead_letters
        self.applied = 0
        self.duplicates = 0
        # looked up once: these run for every item
        self.validate = self.ingest.model.model_validate
        self.entity_of = operator.attrgetter(self.ingest.entity)

    # -- what every ingest topic does -----------------------------------------

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        try:
            message = orjson.loads(value or b"")
        except orjson.JSONDecodeError as exc:
            self.dead_letters.send(self.ingest.topic, partition, offset, 0, value, f"not JSON: {exc}")
            return
        kinds = self.ingest.control_kinds
        if isinstance(message, dict) and isinstance(message.get("kind"), str) and message["kind"] in kinds:
            self.fold_control(partition, offset, message)
            return
        envelope = self.ingest.items
        if isinstance(message, dict) and isinstance(message.get(envelope), list):
            items, org_id = message[envelope], message.get("org_id")
        elif isinstance(message, list) and self.ingest.accepts_list:
            items, org_id = message, None
        elif isinstance(message, dict):
            items, org_id = [message], None
        else:
            self.dead_letters.send(self.ingest.topic, partition, offset, 0, value, self.ingest.shape_problem())
            return
        self.begin_message()
        try:
            for index, raw in enumerate(items):
                self.fold_item(partition, offset, index, raw, org_id, timestamp)
        finally:  # what was applied is accounted for, even if a later item broke the message
            self.end_message(offset)

    def fold_item(self, partition: int, offset: int, index: int, raw: Any, org_id: str | None,
                  timestamp: float) -> None:
        try:
            item = self.validate(raw)
        except ValidationError as exc:
            self.dead_letters.send(self.ingest.topic, partition, offset, index, raw, f"invalid {self.ingest.item}",
                                   field_errors(exc))
            return
        entity_id = self.entity_of(item)
        home = partition_for(entity_id, self.partitions)
        if home != partition:  # keyed differently than the JSON id: the partition owning the entity folds it
            envelope = self.forwarded(item, raw, org_id, f"{partition}-{offset}-{index}", timestamp)
            self.state.emit(self.ingest.topic, entity_key(entity_id), orjson.dumps(envelope), home)
            return
        found = self.known(partition, entity_id, item, org_id, timestamp)
        if found.__class__ is str:  # unknown entity, or an item that cannot be applied: why
            self.dead_letters.send(self.ingest.topic, partition, offset, index, raw, found)
            return
        config, key, runtime = found
        pos = position(offset, index)
        if runtime.pos >= pos:  # applied before: a redelivery changes nothing
            self.duplicates += 1
            return
        self.apply(partition, offset, index, item, config, key, runtime, pos, timestamp)

    def unknown(self, entity_id: str) -> str:
        """Why an item of an entity that does not exist here (or is another organisation's) is dead-lettered."""
        return f"unknown {self.ingest.noun} {entity_id!r}: create it first (POST {self.ingest.created_at})"

    # -- what each topic supplies ---------------------------------------------

    def fold_control(self, partition: int, offset: int, message: dict) -> None:
        raise NotImplementedError

    def begin_message(self) -> None:
        """Before the items of one message are folded."""

    def end_message(self, offset: int) -> None:
        """After the items of one message were folded, or one broke it."""

    def forwarded(self, item: Any, raw: Any, org_id: str | None, derived_id: str, timestamp: float) -> dict:
        """The envelope an item keyed to the wrong partition is sent on in; `derived_id` names it if it has no id."""
        raise NotImplementedError

    def known(self, partition: int, entity_id: str, item: Any, org_id: str | None,
              timestamp: float) -> tuple[Any, bytes, Any] | str:
        """(configuration, runtime key, runtime) of the item's entity, the runtime remembering the position
        (`pos`) it last applied; or why the item cannot be applied: `unknown(entity_id)` for an entity that
        does not exist or belongs to another organisation (checked first), then e.g. a clock far ahead."""
        raise NotImplementedError

    def apply(self, partition: int, offset: int, index: int, item: Any, config: Any, key: bytes, runtime: Any,
              pos: int, timestamp: float) -> None:
        raise NotImplementedError
