"""Which partition owns an entity: the one rule producers, API and workers share.

Keys are the JSON encoding of the entity id (`"mon_..."` with the quotes), as
Faust encodes table keys, and the partition is Kafka's default murmur2 hash, so
a Java, Go or kcat producer keying by the JSON id lands where we look.
"""
from __future__ import annotations

from functools import lru_cache

import orjson
from aiokafka.partitioner import murmur2


def entity_key(entity_id: str) -> bytes:
    return orjson.dumps(entity_id)


@lru_cache(maxsize=262_144)  # murmur2 is pure Python; ids repeat on every result
def partition_for(entity_id: str, partitions: int) -> int:
    return (murmur2(entity_key(entity_id)) & 0x7FFFFFFF) % partitions
