"""The key layout every per-entity data table shares (monitor_data, heartbeat_data, webhook_data, deliveries).

All keys of one entity sit under one prefix, in the entity's partition:

    <id> 00 's'                      its runtime: the one value written for every item applied
    <id> 00 <kind> <n, 8 bytes> ...  what the runtime seals into keys of its own (buckets, chunks, ...)

so the whole entity is one key range (`prefix`), and each kind a sub-range
(`kind_range`). Every value remembers the source position (`position`) it last
applied: a redelivered item is recognised and skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEP = b"\x00"


def prefix(entity_id: str) -> tuple[bytes, bytes]:
    """[start, stop) of every key of an entity."""
    head = entity_id.encode()
    return head + SEP, head + b"\x01"


def item_key(owner_id: str, item_id: str) -> bytes:
    """One of the records an owner (an organisation) keeps by id in a table of its own kind; `prefix` spans them."""
    return owner_id.encode() + SEP + item_id.encode()


def runtime_key(entity_id: str) -> bytes:
    return entity_id.encode() + SEP + b"s"


def numbered_key(entity_id: str, kind: bytes, number: int) -> bytes:
    return entity_id.encode() + SEP + kind + number.to_bytes(8, "big")


def chunk_key(entity_id: str, number: int) -> bytes:
    """The n-th sealed chunk of an entity's recent items."""
    return numbered_key(entity_id, b"c", number)


def kind_range(entity_id: str, kind: bytes, low: int = 0, high: int = 2**64 - 1) -> tuple[bytes, bytes]:
    head = entity_id.encode() + SEP + kind
    return head + low.to_bytes(8, "big"), head + high.to_bytes(8, "big")


def position(offset: int, index: int) -> int:
    """An item's place in its partition: message offset, then index within an envelope."""
    return (offset << 20) | index


@dataclass(frozen=True, slots=True)
class DueIndex:
    """A partition's index of which entity is due when: keys `head <ms, 8 bytes> <entity id>`, in time order.

    `head` starts with 00, which no entity id does, so the index is a key range
    of its own and a tick reads only the entries that are due.
    """

    head: bytes

    def key(self, due_ms: int, entity_id: str) -> bytes:
        return self.head + due_ms.to_bytes(8, "big") + entity_id.encode()

    def until(self, until_ms: int) -> tuple[bytes, bytes]:
        """[start, stop) of every entry due at or before until_ms."""
        return self.head, self.head + (until_ms + 1).to_bytes(8, "big")

    def parse(self, key: bytes) -> tuple[int, str]:
        """(due ms, entity id) of an entry."""
        width = len(self.head)
        return int.from_bytes(key[width : width + 8], "big"), key[width + 8 :].decode()

    def due(self, table: Any, partition: int, until_ms: int, limit: int) -> list[tuple[bytes, int, str]]:
        """The entries due at or before until_ms, at most `limit`, as (key, due ms, entity id).

        The caller deletes an entry after it wrote the runtime that no longer
        refers to it (a flush sends records in the order last written): a
        crash between leaves an entry the repeated tick finds stale and skips,
        never a runtime pointing at an entry that is gone.
        """
        return [(entry, *self.parse(entry)) for entry, _ in table.scan(partition, *self.until(until_ms), limit=limit)]
