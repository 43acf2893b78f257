"""A write the broker refuses is asked again until the request timeout; only then does the client hear 503.

Seen when the embedded broker's storage was SIGKILLed under load: Tansu answered
one produce of a batch spanning partitions with UnknownError while the others
were stored. A 500 (or 503) at once makes the client send the whole batch again,
and the stored part is counted twice.
"""
from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError, UnknownError

from api.gateway import EngineUnavailable, Gateway
from engine.settings import Settings


class Producer:
    """Refuses the first `failures` sends of each partition, then takes them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.tries: dict[int, int] = {}
        self.taken: list[tuple[str, bytes, int]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int = 0):
        self.tries[partition] = self.tries.get(partition, 0) + 1
        sent = asyncio.get_running_loop().create_future()
        if self.tries[partition] <= self.failures:
            sent.set_exception(UnknownError() if partition % 2 else KafkaConnectionError("closed"))
        else:
            self.taken.append((topic, value, partition))
            sent.set_result(None)
        return sent


def gateway(producer: Producer, request_timeout: float) -> Gateway:
    made = Gateway(Settings(request_timeout=request_timeout))
    made.producer = producer
    return made


def test_a_refused_record_is_sent_again_until_kafka_takes_it() -> None:
    producer = Producer(failures=2)
    asyncio.run(gateway(producer, 15).produce("check-results", b"{}", partition=1, what="the check results"))
    assert producer.tries == {1: 3} and producer.taken == [("check-results", b"{}", 1)]


def test_each_partition_of_a_batch_is_stored_once_though_one_was_refused_first() -> None:
    producer = Producer(failures=1)
    ingest = type("Ingest", (), {"topic": staticmethod(lambda name: name)})()
    asyncio.run(gateway(producer, 15).produce_results(ingest, "org_1", {0: [{"id": "a"}], 1: [{"id": "b"}]}))
    assert sorted(partition for _, _, partition in producer.taken) == [0, 1]  # once each, none twice


def test_a_broker_that_keeps_refusing_is_a_503_with_what_to_do() -> None:
    producer = Producer(failures=10**6)
    with pytest.raises(EngineUnavailable, match=r"Kafka did not take the check-in within 0.5 s .*is the broker running"):
        asyncio.run(gateway(producer, 0.5).produce("heartbeats", b"{}", partition=0, what="the check-in"))
    assert producer.taken == []
