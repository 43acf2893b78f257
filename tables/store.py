"""Changelogged RocksDB tables written in batches: the state layer every agent uses.

Faust's own table path costs ~220 µs a write (a FutureMessage, sensors and a
serialiser per `table[key] = value`). Here one Faust `Table` (`state`) still
owns what it is good at: the changelog topic, RocksDB partitions that follow
the assignment, standby replicas and recovery. Every named table of a worker
is a key prefix in it (`monitors\0...`, `monitor_data\0...`), so a worker
opens one RocksDB and restores one changelog per partition, not one per table
and partition (13 tables made a restart open 52 databases, most of its time
on a busy machine), and a flush is one ordered stream per partition. Writes
go through a write-behind cache instead, as in Kafka Streams' record cache:

* an agent `put`s values into its own dirty map (agents name themselves with
  `writing_as`), per partition; a key written many times in a batch is sent
  once. A flush takes only the flushing agent's writes, so a configuration
  command never waits for half a batch of check results to reach Kafka, and
  no agent's flush carries another's half batch (one writer per key makes the
  writes of two agents disjoint; a key taken over from another agent ties the
  two, and the taker's next flush takes both);
* `StateStore.flush()` first takes a *cut*: in one step, with no await in
  between, it takes the events queued so far, every table's dirty records
  (encoded to bytes there and then) and the replies. Agents fold a message
  without awaiting, so a cut holds whole messages, and nothing folded after
  it (an agent may go on folding while the flush awaits Kafka) can leak into
  the bytes being sent: values live on as objects the next batch mutates, but
  what is in flight is frozen;
* the flush sends the cut's events and waits until Kafka has them; then its
  records straight to the changelog with the raw producer, waits until Kafka
  has them all, and only then writes the same bytes to RocksDB in one atomic
  batch together with the changelog offset Faust restores from; then its
  replies. So local state is never ahead of the changelog, an event is never
  behind the state that caused it, a reply never ahead of the state it
  reports, and a crash anywhere leaves a changelog prefix that recovery
  replays;
* agents flush before their events are acked, so no source offset is
  committed before the state it produced is in Kafka (at least once), and
  values carry the source position they last applied, so redelivery changes
  nothing (invariant 4).

Within a partition records are sent in the order they were last written, and a
Kafka partition keeps that order (the producer has one request in flight per
broker): write derived keys before the value that records their inclusion and
any prefix of a flush is consistent. Flushes run one at a time, so the cuts
reach Kafka in the order they were taken.

Reads see the newest value: this batch's writes, then the decoded-value cache
(which holds the newest object of a key, written back at the cut), then the
frozen bytes of cuts still in flight, then RocksDB.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import faust
import orjson
from rocksdict import WriteBatch

DELETED = object()  # a tombstone waiting in the dirty map
EXIT_STATE_NOT_DURABLE = 75  # EX_TEMPFAIL: restart me

#: the agent whose writes and flushes the current task makes; agents that do not name themselves share one
WRITER: ContextVar[str] = ContextVar("pingstream_writer", default="worker")


def writing_as(name: str) -> None:
    """Name the writer of the current task (an agent's loop): its flushes take its own writes only."""
    WRITER.set(name)


log = logging.getLogger(__name__)


class TableStore:
    """One named table: point reads and writes, ordered range scans, per partition.

    Its keys live under `name` + NUL in the worker's one physical table; callers
    never see the prefix, and ranges keep their order under it.
    """

    def __init__(
        self,
        physical: Any,
        name: str,
        tied: dict[str, set[str]],
        *,
        encode: Callable[[Any], bytes] = orjson.dumps,
        decode: Callable[[bytes, bytes], Any] = lambda key, raw: orjson.loads(raw),
        cache_size: int = 100_000,
        help: str = "",
    ) -> None:
        assert b"\x00" not in name.encode(), "a table name ends at the first NUL"
        self.name = name
        self.prefix = name.encode() + b"\x00"
        self.encode = encode
        self.decode = decode
        self.help = help
        self.physical = physical
        #: writer -> partition -> key -> value written since that writer's last cut
        self._dirty: dict[str, dict[int, dict[bytes, Any]]] = {}
        #: writer -> writers that took a key over from its pending writes (shared by every table; see `_writes`)
        self.tied = tied
        #: cuts sent but not yet in RocksDB, oldest first: partition -> key -> frozen bytes (None: deleted)
        self._in_flight: list[dict[int, dict[bytes, bytes | None]]] = []
        # the newest decoded value of a key (in RocksDB or in flight): hot keys skip the read and the decode
        self._cache: dict[tuple[int, bytes], Any] = {}
        self.cache_size = cache_size

    def _db(self, partition: int) -> Any:
        # Faust opens one RocksDB per assigned partition; we read and batch-write it directly.
        return self.physical.data._db_for_partition(partition)

    def get(self, partition: int, key: bytes) -> Any | None:
        for writes in self._dirty.values():
            dirty = writes.get(partition)
            if dirty is not None and key in dirty:
                value = dirty[key]
                return None if value is DELETED else value
        cached = self._cache.get((partition, key))
        if cached is not None:
            return cached
        for cut in reversed(self._in_flight):
            frozen = cut.get(partition)
            if frozen is not None and key in frozen:
                raw = frozen[key]
                break
        else:
            raw = self._db(partition).get(self.prefix + key)
        if raw is None:
            return None
        value = self.decode(key, raw)
        self._remember(partition, key, value)
        return value

    def _remember(self, partition: int, key: bytes, value: Any) -> None:
        cache = self._cache
        cache[(partition, key)] = value
        if len(cache) > self.cache_size:
            del cache[next(iter(cache))]  # the oldest entry: cheap, and hot keys come back

    def _writes(self, partition: int, key: bytes) -> dict[bytes, Any]:
        """The current writer's dirty map of `partition`, holding `key` if any writer's did."""
        writer = WRITER.get()
        writes = self._dirty.get(writer)
        if writes is None:
            writes = self._dirty[writer] = {}
        dirty = writes.get(partition)
        if dirty is None:
            dirty = writes[partition] = {}
        if len(self._dirty) > 1 and key not in dirty:
            for other, their in self._dirty.items():
                pending = their.get(partition)
                if other != writer and pending is not None and key in pending:
                    # another agent wrote this key since its last flush: its flush must now wait for ours too
                    dirty[key] = pending.pop(key)
                    self.tied.setdefault(other, set()).add(writer)
                    log.debug("%s took key %r of table %s over from %s", writer, key, self.name, other)
        return dirty

    def put(self, partition: int, key: bytes, value: Any) -> None:
        dirty = self._writes(partition, key)
        dirty.pop(key, None)  # re-inserting moves the key to the end: last-written order
        dirty[key] = value

    def place(self, partition: int, key: bytes, value: Any) -> None:
        """Put, but a key already pending in this batch keeps its place in the send order.

        For a record that must reach the changelog before the records it accounts
        for (a counter before the states it counted): written first in a batch, it
        stays ahead of them however often it is updated after.
        """
        self._writes(partition, key)[key] = value

    def delete(self, partition: int, key: bytes) -> None:
        self.put(partition, key, DELETED)

    def scan(
        self, partition: int, start: bytes, stop: bytes, *, reverse: bool = False, limit: int | None = None
    ) -> list[tuple[bytes, Any]]:
        """Items with start <= key < stop, in key order (or reversed), pending writes included."""
        overlay: dict[bytes, Any] = {}
        for cut in self._in_flight:
            for key, raw in cut.get(partition, {}).items():
                if start <= key < stop:
                    overlay[key] = raw
        for key, raw in overlay.items():
            overlay[key] = DELETED if raw is None else self.decode(key, raw)
        for writes in self._dirty.values():
            for key, value in writes.get(partition, {}).items():
                if start <= key < stop:
                    overlay[key] = value
        found: list[tuple[bytes, Any]] = []
        wanted = None if limit is None else limit + len(overlay)
        for key, raw in self._stored(partition, start, stop, reverse):
            if key not in overlay:
                found.append((key, raw))
            if wanted is not None and len(found) >= wanted:
                break
        items = [(key, self.decode(key, raw)) for key, raw in found]
        items.extend((key, value) for key, value in overlay.items() if value is not DELETED)
        items.sort(key=lambda item: item[0], reverse=reverse)
        return items if limit is None else items[:limit]

    def _stored(self, partition: int, start: bytes, stop: bytes, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        db, prefix = self._db(partition), self.prefix
        cut = len(prefix)
        start, stop = prefix + start, prefix + stop
        if reverse:
            iterator = db.iter()
            iterator.seek_for_prev(stop)
            while iterator.valid():
                key = iterator.key()
                if key < start:
                    break
                if key < stop:
                    yield key[cut:], iterator.value()
                iterator.prev()
        else:
            for key, raw in db.items(from_key=start):
                if key >= stop:
                    break
                yield key[cut:], raw

    def keys(self, partition: int, start: bytes, stop: bytes) -> list[bytes]:
        return [key for key, _ in self.scan(partition, start, stop)]

    def cut(self, writers: set[str]) -> dict[int, dict[bytes, bytes | None]]:
        """Freeze these writers' writes as bytes (in send order) and start new batches; no await.

        The objects stay the newest values (in the cache), free to be mutated by
        the next batch: what was frozen here is what reaches the changelog.
        """
        frozen: dict[int, dict[bytes, bytes | None]] = {}
        encode, cache = self.encode, self._cache
        for writer in writers:
            writes = self._dirty.pop(writer, None)
            if not writes:
                continue
            for partition, records in writes.items():
                rows = frozen.setdefault(partition, {})
                for key, value in records.items():
                    if value is DELETED:
                        rows[key] = None
                        cache.pop((partition, key), None)
                    else:
                        rows[key] = encode(value)
                        self._remember(partition, key, value)
        if frozen:
            self._in_flight.append(frozen)
        return frozen

    def add_to(self, writes: dict[int, Any], frozen: dict[int, dict[bytes, bytes | None]]) -> None:
        """Add a cut Kafka has acknowledged to the RocksDB write batches of its partitions."""
        prefix = self.prefix
        for partition, rows in frozen.items():
            write = writes.get(partition)
            if write is None:
                continue  # revoked meanwhile: the new owner restores it from the changelog
            for key, raw in rows.items():
                if raw is None:
                    write.delete(prefix + key)
                else:
                    write.put(prefix + key, raw)

    def landed(self, frozen: dict[int, dict[bytes, bytes | None]]) -> None:
        """The cut is in RocksDB: reads need not look into it any more."""
        self._in_flight = [cut for cut in self._in_flight if cut is not frozen]

    def forget(self, partitions: set[int]) -> None:
        """Drop pending writes and cached values of partitions this worker no longer owns."""
        for writes in self._dirty.values():
            for partition in partitions:
                writes.pop(partition, None)
        self._cache = {key: value for key, value in self._cache.items() if key[0] not in partitions}

    def forget_cached(self) -> None:
        """After a failure half way through a message, cached objects may hold half its changes.

        Keys in flight are then read from their frozen bytes, which hold none of it.
        """
        self._cache.clear()


class StateStore:
    """All tables of a worker, flushed together so one await covers every agent's writes."""

    def __init__(self, app: faust.App, partitions: int, cache_entries: int = 100_000,
                 on_flush: Callable[[str, float, int], None] | None = None) -> None:
        self.app = app
        #: told (writer, seconds, table records) after each flush that made records durable, the lock still held
        self.on_flush = on_flush
        self.partitions = partitions
        self.cache_entries = cache_entries
        self.physical = app.Table(
            "state",
            partitions=partitions,
            key_type=bytes,  # bytes types make Faust use the raw codec, for the changelog too
            value_type=bytes,
            help="every table of this worker, each under its name as a key prefix",
        )
        self.tables: list[TableStore] = []
        #: writer -> writers that took a key over from its pending writes: its next cut takes theirs too
        self.tied: dict[str, set[str]] = {}
        self._lock = asyncio.Lock()
        #: writer -> events and replies queued since its last cut
        self._effects: dict[str, list[tuple[str, bytes | None, bytes, int | None]]] = {}
        self._replies: dict[str, list[tuple[str, bytes | None, bytes, int | None]]] = {}
        self.records_flushed = 0
        #: bumped whenever partitions are revoked (their pending writes dropped): a flush says in which
        #: epoch it cut, so messages folded in an earlier one are known not to be in it
        self.epoch = 0

    def emit(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        """Queue an event the pending state implies; it reaches Kafka before that state does.

        Sent first, so a crash can repeat an event (its id lets readers drop the
        repeat) but never lose one whose cause is already recorded.
        """
        self._effects.setdefault(WRITER.get(), []).append((topic, key, value, partition))

    def reply(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        """Queue an answer that may only go out once the pending state is durable."""
        self._replies.setdefault(WRITER.get(), []).append((topic, key, value, partition))

    def table(self, name: str, **kwargs: Any) -> TableStore:
        kwargs.setdefault("cache_size", self.cache_entries)
        assert all(store.name != name for store in self.tables), f"table {name!r} declared twice"
        store = TableStore(self.physical, name, self.tied, **kwargs)
        self.tables.append(store)
        return store

    @property
    def changelog_topic(self) -> str:
        return self.physical.changelog_topic.get_topic_name()

    def owned_partitions(self) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment()}

    async def flush(self) -> int:
        """Make the current writer's writes so far durable in Kafka, then in RocksDB; then send its replies.

        Returns the epoch its cut was taken in (see `forget`).

        If Kafka refuses, the worker stops at once: the pending state is neither
        durable nor safe to retry in place, and the offsets behind it are not
        committed, so a restarted worker restores the changelog and replays them.
        """
        async with self._lock:
            started = time.perf_counter()
            epoch = self.epoch
            effects, cuts, replies = self._cut()
            try:
                if effects:
                    await self._send_all(effects)
                if cuts:
                    await self._write_tables(cuts)
            except Exception:
                log.critical("could not make state durable in Kafka; stopping this worker", exc_info=True)
                os._exit(EXIT_STATE_NOT_DURABLE)
            if replies:
                await self._send_all(replies)
            if self.on_flush is not None and (effects or cuts or replies):
                self.on_flush(WRITER.get(), time.perf_counter() - started,
                              sum(len(rows) for _, frozen in cuts for rows in frozen.values()))
            return epoch

    def _cut(self) -> tuple[list, list[tuple[TableStore, dict[int, dict[bytes, bytes | None]]]], list]:
        """The writer's writes so far, frozen in one step: events, every table's records, replies.

        With them the writes of every agent that took a key over from this one
        (and of those that took from them): their records hold this writer's changes.
        """
        writers, new = set(), {WRITER.get()}
        while new:
            writers |= new
            new = {taker for writer in new for taker in self.tied.pop(writer, ())} - writers
        effects = [effect for writer in writers for effect in self._effects.pop(writer, ())]
        replies = [reply for writer in writers for reply in self._replies.pop(writer, ())]
        cuts = [(store, frozen) for store in self.tables if (frozen := store.cut(writers))]
        return effects, cuts, replies

    async def _send_all(self, messages: list[tuple[str, bytes | None, bytes, int | None]]) -> None:
        send = self.app.producer.send
        await asyncio.gather(*[await send(topic, key, value, partition, None, None)
                               for topic, key, value, partition in messages])

    async def _write_tables(self, cuts: list[tuple[TableStore, dict[int, dict[bytes, bytes | None]]]]) -> None:
        send, topic = self.app.producer.send, self.changelog_topic
        sent: dict[int, list[Any]] = {}
        for store, frozen in cuts:
            prefix = store.prefix
            for partition, rows in frozen.items():
                futures = sent.setdefault(partition, [])
                for key, raw in rows.items():
                    futures.append(await send(topic, prefix + key, raw, partition, None, None))
        last_offsets = {}
        for partition, futures in sent.items():
            acked = await asyncio.gather(*futures)  # raises if Kafka refused any: nothing is acked then
            last_offsets[partition] = acked[-1].offset
        owned = self.owned_partitions()
        writes = {partition: WriteBatch(raw_mode=True) for partition in sent if partition in owned}
        for store, frozen in cuts:
            store.add_to(writes, frozen)
            self.records_flushed += sum(len(rows) for rows in frozen.values())
        offset_key = self.physical.data.offset_key
        for partition, write in writes.items():
            write.put(offset_key, str(last_offsets[partition]).encode())
            self.physical.data._db_for_partition(partition).write(write)
        for store, frozen in cuts:
            store.landed(frozen)

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: their pending writes and cached values go, and a new epoch begins."""
        self.epoch += 1
        for store in self.tables:
            store.forget(partitions)

    def forget_cached(self) -> None:
        for store in self.tables:
            store.forget_cached()

