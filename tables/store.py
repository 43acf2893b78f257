"""Changelogged RocksDB tables written in batches: the state layer every agent uses.

Faust's own table path costs ~220 µs a write (a FutureMessage, sensors and a
serialiser per `table[key] = value`). Here a Faust `Table` still owns what it
is good at: the changelog topic, RocksDB partitions that follow the
assignment, standby replicas and recovery. Writes go through a write-behind
cache instead, as in Kafka Streams' record cache:

* an agent `put`s values into the dirty map of the partition it is processing;
  a key written many times in a batch is sent once;
* `StateStore.flush()` sends every dirty record straight to the changelog with
  the raw producer, waits until Kafka has them all, and only then writes the
  same records to RocksDB in one atomic batch together with the changelog
  offset Faust restores from. So local state is never ahead of the changelog,
  and a crash anywhere leaves a changelog prefix that recovery replays;
* agents flush before their events are acked, so no source offset is
  committed before the state it produced is in Kafka (at least once), and
  values carry the source position they last applied, so redelivery changes
  nothing (invariant 4).

Within a partition records are sent in the order they were last written, and a
Kafka partition keeps that order: write derived keys before the value that
records their inclusion and any prefix of a flush is consistent.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import faust
import orjson
from rocksdict import WriteBatch

DELETED = object()  # a tombstone waiting in the dirty map
EXIT_STATE_NOT_DURABLE = 75  # EX_TEMPFAIL: restart me

log = logging.getLogger(__name__)


class TableStore:
    """One named table: point reads and writes, ordered range scans, per partition."""

    def __init__(
        self,
        app: faust.App,
        name: str,
        *,
        partitions: int,
        encode: Callable[[Any], bytes] = orjson.dumps,
        decode: Callable[[bytes, bytes], Any] = lambda key, raw: orjson.loads(raw),
        cache_size: int = 100_000,
        help: str = "",
    ) -> None:
        self.name = name
        self.encode = encode
        self.decode = decode
        self.table = app.Table(
            name,
            partitions=partitions,
            key_type=bytes,  # bytes types make Faust use the raw codec, for the changelog too
            value_type=bytes,
            help=help,
        )
        self._dirty: dict[int, dict[bytes, Any]] = {}
        self._in_flight: list[dict[int, dict[bytes, Any]]] = []
        # decoded values equal to what RocksDB holds: hot keys skip the read and the decode
        self._cache: dict[tuple[int, bytes], Any] = {}
        self.cache_size = cache_size

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def _db(self, partition: int) -> Any:
        # Faust opens one RocksDB per assigned partition; we read and batch-write it directly.
        return self.table.data._db_for_partition(partition)

    def _pending(self, partition: int, key: bytes) -> Any:
        dirty = self._dirty.get(partition)
        if dirty is not None and key in dirty:
            return dirty[key]
        for batch in reversed(self._in_flight):
            pending = batch.get(partition)
            if pending is not None and key in pending:
                return pending[key]
        return None

    def get(self, partition: int, key: bytes) -> Any | None:
        value = self._pending(partition, key)
        if value is DELETED:
            return None
        if value is not None:
            return value
        cached = self._cache.get((partition, key))
        if cached is not None:
            return cached
        raw = self._db(partition).get(key)
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

    def put(self, partition: int, key: bytes, value: Any) -> None:
        dirty = self._dirty.setdefault(partition, {})
        dirty.pop(key, None)  # re-inserting moves the key to the end: last-written order
        dirty[key] = value

    def place(self, partition: int, key: bytes, value: Any) -> None:
        """Put, but a key already pending in this batch keeps its place in the send order.

        For a record that must reach the changelog before the records it accounts
        for (a counter before the states it counted): written first in a batch, it
        stays ahead of them however often it is updated after.
        """
        self._dirty.setdefault(partition, {})[key] = value

    def delete(self, partition: int, key: bytes) -> None:
        self.put(partition, key, DELETED)

    def scan(
        self, partition: int, start: bytes, stop: bytes, *, reverse: bool = False, limit: int | None = None
    ) -> list[tuple[bytes, Any]]:
        """Items with start <= key < stop, in key order (or reversed), pending writes included."""
        overlay: dict[bytes, Any] = {}
        for batch in (*self._in_flight, self._dirty):
            for key, value in batch.get(partition, {}).items():
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
        db = self._db(partition)
        if reverse:
            iterator = db.iter()
            iterator.seek_for_prev(stop)
            while iterator.valid():
                key = iterator.key()
                if key < start:
                    break
                if key < stop:
                    yield key, iterator.value()
                iterator.prev()
        else:
            for key, raw in db.items(from_key=start):
                if key >= stop:
                    break
                yield key, raw

    def keys(self, partition: int, start: bytes, stop: bytes) -> list[bytes]:
        return [key for key, _ in self.scan(partition, start, stop)]

    def take_dirty(self) -> dict[int, dict[bytes, Any]]:
        dirty, self._dirty = self._dirty, {}
        if dirty:
            self._in_flight.append(dirty)
        return dirty

    def settle(self, batch: dict[int, dict[bytes, Any]], encoded: dict[int, list[tuple[bytes, bytes | None]]],
               changelog_offsets: dict[int, int], owned: set[int]) -> None:
        """Write a batch Kafka has acknowledged to RocksDB, with its changelog offset."""
        store = self.table.data
        for partition, records in encoded.items():
            if partition not in owned:
                continue  # revoked meanwhile: the new owner restores it from the changelog
            write = WriteBatch(raw_mode=True)
            values = batch[partition]
            for key, raw in records:
                if raw is None:
                    write.delete(key)
                    self._cache.pop((partition, key), None)
                else:
                    write.put(key, raw)
                    self._remember(partition, key, values[key])
            write.put(store.offset_key, str(changelog_offsets[partition]).encode())
            self._db(partition).write(write)
        self._in_flight = [pending for pending in self._in_flight if pending is not batch]

    def forget(self, partitions: set[int]) -> None:
        """Drop pending writes and cached values of partitions this worker no longer owns."""
        for partition in partitions:
            self._dirty.pop(partition, None)
        self._cache = {key: value for key, value in self._cache.items() if key[0] not in partitions}

    def forget_cached(self) -> None:
        """After a failure half way through a message, cached objects may hold half its changes."""
        self._cache.clear()


class StateStore:
    """All tables of a worker, flushed together so one await covers every agent's writes."""

    def __init__(self, app: faust.App, partitions: int, cache_entries: int = 100_000) -> None:
        self.app = app
        self.partitions = partitions
        self.cache_entries = cache_entries
        self.tables: list[TableStore] = []
        self._lock = asyncio.Lock()
        self._effects: list[tuple[str, bytes | None, bytes, int | None]] = []
        self._replies: list[tuple[str, bytes | None, bytes, int | None]] = []
        self.records_flushed = 0

    def emit(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        """Queue an event the pending state implies; it reaches Kafka before that state does.

        Sent first, so a crash can repeat an event (its id lets readers drop the
        repeat) but never lose one whose cause is already recorded.
        """
        self._effects.append((topic, key, value, partition))

    def reply(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        """Queue an answer that may only go out once the pending state is durable."""
        self._replies.append((topic, key, value, partition))

    def table(self, name: str, **kwargs: Any) -> TableStore:
        kwargs.setdefault("cache_size", self.cache_entries)
        store = TableStore(self.app, name, partitions=self.partitions, **kwargs)
        self.tables.append(store)
        return store

    def owned_partitions(self) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment()}

    async def flush(self) -> None:
        """Make every write so far durable in Kafka, then in RocksDB.

        If Kafka refuses, the worker stops at once: the pending state is neither
        durable nor safe to retry in place, and the offsets behind it are not
        committed, so a restarted worker restores the changelog and replays them.
        """
        async with self._lock:
            try:
                effects, self._effects = self._effects, []
                if effects:
                    await self._send_all(effects)
                await self._flush_tables()
            except Exception:
                log.critical("could not make state durable in Kafka; stopping this worker", exc_info=True)
                os._exit(EXIT_STATE_NOT_DURABLE)
            replies, self._replies = self._replies, []
            if replies:
                await self._send_all(replies)

    async def _send_all(self, messages: list[tuple[str, bytes | None, bytes, int | None]]) -> None:
        send = self.app.producer.send
        await asyncio.gather(*[await send(topic, key, value, partition, None, None)
                               for topic, key, value, partition in messages])

    async def _flush_tables(self) -> None:
        pending = []
        for store in self.tables:
            batch = store.take_dirty()
            if not batch:
                continue
            encoded: dict[int, list[tuple[bytes, bytes | None]]] = {}
            futures: dict[int, list[Any]] = {}
            topic = store.changelog_topic
            send = self.app.producer.send
            for partition, records in batch.items():
                rows = encoded[partition] = []
                sent = futures[partition] = []
                for key, value in records.items():
                    raw = None if value is DELETED else store.encode(value)
                    rows.append((key, raw))
                    sent.append(await send(topic, key, raw, partition, None, None))
            pending.append((store, batch, encoded, futures))
        if not pending:
            return
        owned = self.owned_partitions()
        for store, batch, encoded, futures in pending:
            offsets = {}
            for partition, sent in futures.items():
                acked = await asyncio.gather(*sent)  # raises if Kafka refused any: nothing is acked then
                offsets[partition] = acked[-1].offset
            store.settle(batch, encoded, offsets, owned)
            self.records_flushed += sum(len(rows) for rows in encoded.values())

    def forget(self, partitions: set[int]) -> None:
        for store in self.tables:
            store.forget(partitions)

    def forget_cached(self) -> None:
        for store in self.tables:
            store.forget_cached()

