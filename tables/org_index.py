"""Which resources an organisation owns, in creation order: lists cost about one page (invariant 7).

Keys in the organisation's partition of `org_index`:

    <org> 00 <collection> 00 <created ms, 8 bytes> <id>   -> {"id": id}
    <org> 00 <collection> 01                              -> {"count": n}
"""
from __future__ import annotations

from tables.store import TableStore

#: the command that deletes a resource, by collection (plan limits, team deletion)
DELETE_KINDS = {"monitors": "monitor.delete", "heartbeats": "heartbeat.delete"}


def _base(org_id: str, collection: str) -> bytes:
    return org_id.encode() + b"\x00" + collection.encode()


def entry_key(org_id: str, collection: str, resource_id: str, created_at: float) -> bytes:
    return _base(org_id, collection) + b"\x00" + int(created_at * 1000).to_bytes(8, "big") + resource_id.encode()


def count_key(org_id: str, collection: str) -> bytes:
    return _base(org_id, collection) + b"\x01"


def add(index: TableStore, partition: int, org_id: str, collection: str, resource_id: str, created_at: float) -> None:
    key = entry_key(org_id, collection, resource_id, created_at)
    if index.get(partition, key) is not None:
        return  # already there: a redelivered add counts once
    index.put(partition, key, {"id": resource_id})
    total = count(index, partition, org_id, collection)
    index.put(partition, count_key(org_id, collection), {"count": total + 1})


def holds(index: TableStore, partition: int, org_id: str, collection: str, resource_id: str,
          created_at: float) -> bool:
    return index.get(partition, entry_key(org_id, collection, resource_id, created_at)) is not None


def remove(index: TableStore, partition: int, org_id: str, collection: str, resource_id: str, created_at: float) -> None:
    key = entry_key(org_id, collection, resource_id, created_at)
    if index.get(partition, key) is None:
        return
    index.delete(partition, key)
    total = count(index, partition, org_id, collection)
    index.put(partition, count_key(org_id, collection), {"count": max(0, total - 1)})


def count(index: TableStore, partition: int, org_id: str, collection: str) -> int:
    value = index.get(partition, count_key(org_id, collection))
    return 0 if value is None else value["count"]


def page(index: TableStore, partition: int, org_id: str, collection: str, page: int, per_page: int) -> tuple[list[str], int]:
    """Ids on one page (oldest first) and the total; reads about one page of keys."""
    start = _base(org_id, collection) + b"\x00"
    stop = _base(org_id, collection) + b"\x01"
    skip = (page - 1) * per_page
    items = index.scan(partition, start, stop, limit=skip + per_page)
    return [value["id"] for _, value in items[skip:]], count(index, partition, org_id, collection)
