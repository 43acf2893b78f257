"""In-memory stand-ins for the state layer, so agents' folding logic runs without Kafka or RocksDB.

`MemoryTable` has exactly TableStore's read/write interface (get, put, delete,
scan, keys per partition) and keeps values as objects, as TableStore's dirty
cache does before a flush. `RecordingState` records what StateStore would send.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, NamedTuple

import orjson

from engine.settings import Settings


class MemoryTable:
    """One table: a dict of keys to values per partition, scanned in key-byte order."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.partitions: dict[int, dict[bytes, Any]] = {}

    def get(self, partition: int, key: bytes) -> Any | None:
        return self.partitions.get(partition, {}).get(key)

    def put(self, partition: int, key: bytes, value: Any) -> None:
        assert isinstance(key, bytes), f"table keys are bytes, not {type(key).__name__}"
        assert value is not None, "TableStore cannot store None; use delete"
        self.partitions.setdefault(partition, {})[key] = value

    def place(self, partition: int, key: bytes, value: Any) -> None:
        """TableStore.place: here there is no send order to keep, so a put."""
        self.put(partition, key, value)

    def delete(self, partition: int, key: bytes) -> None:
        self.partitions.get(partition, {}).pop(key, None)

    def scan(
        self, partition: int, start: bytes, stop: bytes, *, reverse: bool = False, limit: int | None = None
    ) -> list[tuple[bytes, Any]]:
        """Items with start <= key < stop, in key order (or reversed)."""
        items = sorted(
            ((key, value) for key, value in self.partitions.get(partition, {}).items() if start <= key < stop),
            key=lambda item: item[0],
            reverse=reverse,
        )
        return items if limit is None else items[:limit]

    def keys(self, partition: int, start: bytes, stop: bytes) -> list[bytes]:
        return [key for key, _ in self.scan(partition, start, stop)]

    def all_keys(self, partition: int) -> list[bytes]:
        """Every key of a partition, in order: for assertions only."""
        return sorted(self.partitions.get(partition, {}))


class Sent(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None

    @property
    def body(self) -> Any:
        return orjson.loads(self.value)


class RecordingState:
    """StateStore's emit/reply, recorded in order instead of produced."""

    def __init__(self) -> None:
        self.emitted: list[Sent] = []
        self.replies: list[Sent] = []

    def emit(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        self.emitted.append(Sent(topic, key, value, partition))

    def reply(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        self.replies.append(Sent(topic, key, value, partition))

    def on(self, topic: str) -> list[Sent]:
        """Messages emitted to one topic, in order."""
        return [sent for sent in self.emitted if sent.topic == topic]


def memory_engine(**settings: Any) -> SimpleNamespace:
    """What agents read from engine.app.Engine, backed by MemoryTables (4 partitions unless told)."""
    settings.setdefault("partitions", 4)
    return SimpleNamespace(
        settings=Settings(**settings),
        monitor_data=MemoryTable("monitor_data"),
        monitors=MemoryTable("monitors"),
        org_index=MemoryTable("org_index"),
        teams=MemoryTable("teams"),
        state=RecordingState(),
    )
