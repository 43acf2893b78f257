"""A partition its group never committed is read from its start after Faust's seek to committed offsets."""
from __future__ import annotations

import asyncio

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from engine import uncommitted_seek


class Consumer:
    def __init__(self, committed: dict) -> None:
        self.committed, self.to_beginning = committed, []

    async def seek_to_committed(self) -> dict:
        return self.committed

    async def seek_to_beginning(self, *partitions) -> None:
        self.to_beginning += partitions


class Thread:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer

    def _ensure_consumer(self) -> Consumer:
        return self.consumer

    async def call_thread(self, method, *args):
        return await method(*args)


def test_partitions_without_a_committed_offset_are_sought_to_their_beginning() -> None:
    uncommitted_seek.install()
    uncommitted_seek.install()  # twice changes nothing
    consumer = Consumer({"never": None, "committed": 5, "reset": -1, "zero": 0})
    answer = asyncio.run(AIOKafkaConsumerThread.seek_to_committed(Thread(consumer)))
    assert answer == consumer.committed  # Faust still learns the committed offsets
    assert consumer.to_beginning == ["never", "reset"]
    thread = Thread(consumer)
    asyncio.run(AIOKafkaConsumerThread.seek_to_committed(thread))
    assert uncommitted_seek.from_beginning(thread.consumer) == {"never", "reset"}  # folds expect their first
