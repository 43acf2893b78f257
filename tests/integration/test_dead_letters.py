"""Bad input never stops a stream: poison messages go to dead-letters with a reason (invariant 5)."""
from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaProducer

from engine.partitioning import entity_key, partition_for
from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.test_monitors import create


async def produce(cluster: Cluster, messages: list[tuple[str, bytes | None, bytes, int | None]]) -> set:
    """Sends one at a time (their order is the point); returns their (topic, partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=cluster.broker_url.removeprefix("kafka://"), acks="all")
    await producer.start()
    try:
        sent = set()
        for topic, key, value, partition in messages:
            metadata = await producer.send_and_wait(topic, value, key=key, partition=partition)
            sent.add((metadata.topic, metadata.partition, metadata.offset))
        return sent
    finally:
        await producer.stop()


async def dead_letters(cluster: Cluster) -> list[dict]:
    return await cluster.records("dead-letters")


def wait_for_letters(cluster: Cluster, sent: set, count: int, timeout: float = 30) -> list[dict]:
    """The dead letters of the messages `sent` (as `produce` returns it), once there are `count` of them."""
    mine: list[dict] = []

    def lettered() -> bool:
        nonlocal mine
        mine = [letter for letter in asyncio.run(dead_letters(cluster))
                if (letter["topic"], letter["partition"], letter["offset"]) in sent]
        return len(mine) >= count
    wait_for(f"{count} dead letters", lettered, timeout, interval=0.5)
    return mine


def test_poison_between_good_results_is_dead_lettered_and_the_rest_counts(cluster: Cluster, api: Client) -> None:
    mid = create(api, regions=[])["id"]
    partition = partition_for(mid, cluster.partitions)
    key = entity_key(mid)
    good = orjson.dumps({"monitor_id": mid, "status": "up", "checked_at": time.time()})
    sent = asyncio.run(produce(cluster, [
        ("check-results", key, good, None),
        ("check-results", key, b"\xff\xfe not json {", None),
        ("check-results", key, orjson.dumps({"monitor_id": mid, "status": "sideways"}), None),
        ("check-results", key, orjson.dumps({"results": [orjson.loads(good), 42]}), None),
        ("check-results", key, orjson.dumps(["a", "list", "of", "strings"]), None),
        ("check-results", key, good, None),
        ("commands", key, b"garbage", partition),
        ("commands", key, orjson.dumps({"id": "r1", "kind": "monitor.explode", "entity_id": mid}), partition),
    ]))
    wait_for("the good results around the poison to count",
             lambda: api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] == 3, 30)
    mine = wait_for_letters(cluster, sent, 9)
    reasons = sorted(letter["reason"] for letter in mine)
    assert sum("not JSON" in r for r in reasons) == 1
    assert sum(r == "invalid check result" for r in reasons) == 6  # 'sideways', result 42, four strings
    assert any("not a command" in r for r in reasons)
    assert any("unknown command kind 'monitor.explode'" in r for r in reasons)
    invalid_status = next(l for l in mine if "sideways" in l["payload"])
    assert "status" in invalid_status["errors"] and invalid_status["topic"] == "check-results"
    # the commands agent kept going too
    assert api.patch(f"/v1/monitors/{mid}", {"name": "still alive"}).status == 200
