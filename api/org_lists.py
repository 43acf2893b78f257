"""Listing an organisation's resources: a page of ids from its index, their views from their owners.

The organisation's partition pages through the index (tables/org_index.py);
the views are read from the partitions owning the ids, one read per partition,
concurrently, and put back in index order (invariant 7: a list costs its page).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from api.gateway import Gateway


async def views_in_order(gateway: Gateway, org_id: str, ids: list[str], path: str,
                         partition_of: Callable[[str], int]) -> list[dict]:
    by_partition: dict[int, list[str]] = {}
    for resource_id in ids:
        by_partition.setdefault(partition_of(resource_id), []).append(resource_id)
    answers = await asyncio.gather(*[
        gateway.read(partition, path, {"org": org_id, "ids": ",".join(chunk)})
        for partition, chunk in by_partition.items()
    ])
    views = {view["id"]: view for _, body in answers for view in body["data"]}
    return [views[resource_id] for resource_id in ids if resource_id in views]


async def indexed_page(gateway: Gateway, org_id: str, collection: str, page: int, per_page: int,
                       path: str) -> tuple[list[dict], int]:
    """One page of a collection, oldest first, as (views, total)."""
    _, index = await gateway.read(gateway.partition_of(org_id), f"/index/{org_id}/{collection}",
                                  {"page": page, "per_page": per_page})
    return await views_in_order(gateway, org_id, index["ids"], path, gateway.partition_of), index["total"]
