"""EmbeddedBroker and the Tansu highwater correction, against a real Tansu broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import IO

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from yarl import URL

from engine.broker import HOST, EmbeddedBroker, kafka_answers
from engine.tansu_offsets import install, is_installed, true_end_offsets

REPO_ROOT = Path(__file__).resolve().parents[2]
RESTART_APP = "tests.integration.faust_restart_app"
PARTITIONS = 4
TEST_BUDGET = 85.0
WAIT_TIMEOUT = 40.0
HOSTS = [f"host-{n}" for n in range(8)]


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def create_topics(bootstrap: str, *names: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


async def reported_end_offsets(
    bootstrap: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def test_broker_starts_serves_and_stops(tmp_path: Path) -> None:
    topic = unique("hello")
    partition = TopicPartition(topic, 0)
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    started_at = time.monotonic()
    with broker:
        assert time.monotonic() - started_at < 5
        assert kafka_answers(HOST, broker.port)
        assert broker.url == f"kafka://127.0.0.1:{broker.port}"
        await create_topics(broker.bootstrap, topic, partitions=1)

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"ping", key=b"host-1", partition=0)
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        try:
            consumer.assign([partition])
            consumer.seek(partition, 0)
            message = await asyncio.wait_for(consumer.getone(), 10)
        finally:
            await consumer.stop()
        assert (message.key, message.value) == (b"host-1", b"ping")

    assert not broker.running
    broker.stop()  # idempotent
    assert not kafka_answers(HOST, broker.port)
    with socket.socket() as probe:
        assert probe.connect_ex((HOST, broker.port)) != 0


async def send_three_batches_of_ten(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for batch_no in range(3):
            batch = producer.create_batch()
            for n in range(10):
                batch.append(key=None, value=f"{batch_no}-{n}".encode(), timestamp=None)
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


async def test_tansu_under_reports_end_offsets_and_true_end_offsets_corrects_it(
    broker: EmbeddedBroker,
) -> None:
    topic = unique("batches")
    await create_topics(broker.bootstrap, topic, partitions=2)
    written, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
    await send_three_batches_of_ten(broker.bootstrap, topic)

    reported = await reported_end_offsets(broker.bootstrap, [written, empty])
    # The defect: first offset of the last batch (20) + 1, not 30.
    assert reported == {written: 21, empty: 0}

    corrected = await true_end_offsets(broker.bootstrap, [written, empty], reported)
    assert corrected == {written: 30, empty: 0}

    # Faust passes its own TP tuples; the answer is keyed by what was passed in.
    faust_tp = TP(topic, 0)
    by_faust_tp = await true_end_offsets(broker.bootstrap, [faust_tp], {faust_tp: 21})
    assert by_faust_tp == {faust_tp: 30}
    assert type(next(iter(by_faust_tp))) is TP


async def test_a_durable_broker_keeps_records_and_committed_offsets_through_sigkill(tmp_path: Path) -> None:
    topic = unique("durable")
    written = TopicPartition(topic, 0)
    broker = EmbeddedBroker(log_path=tmp_path / "logs" / "tansu.log", storage_dir=tmp_path / "broker")
    with broker:
        await create_topics(broker.bootstrap, topic, partitions=1)
        await send_three_batches_of_ten(broker.bootstrap, topic)
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="durable-group",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([written])
            await consumer.commit({written: 25})
        finally:
            await consumer.stop()
        for pid in (broker.pid, broker.storage_pid):  # the broker and its storage, both at once
            os.kill(pid, signal.SIGKILL)
        await asyncio.get_running_loop().run_in_executor(None, broker.restart)

        reported = await reported_end_offsets(broker.bootstrap, [written])
        assert reported[written] <= 30  # the ListOffsets defect is there on this storage too
        assert await true_end_offsets(broker.bootstrap, [written], reported) == {written: 30}
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="durable-group",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([written])
            assert await consumer.committed(written) == 25
            consumer.seek(written, 0)
            values = []
            while len(values) < 30:
                batch = await asyncio.wait_for(consumer.getmany(written, timeout_ms=1000), 10)
                values += [record.value for record in batch.get(written, [])]
        finally:
            await consumer.stop()
        assert values == [f"{b}-{n}".encode() for b in range(3) for n in range(10)]


async def test_install_corrects_highwaters_only_for_its_app(broker: EmbeddedBroker) -> None:
    topic = unique("scoped")
    await create_topics(broker.bootstrap, topic, partitions=1)
    await send_three_batches_of_ten(broker.bootstrap, topic)
    fixed = faust.App(unique("fixed"), broker=broker.url)
    plain = faust.App(unique("plain"), broker=broker.url)
    install(fixed)
    patched = AIOKafkaConsumerThread._highwaters
    install(fixed)
    assert AIOKafkaConsumerThread._highwaters is patched
    assert is_installed(fixed) and not is_installed(plain)

    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:

        def consumer_thread_of(app: faust.App) -> SimpleNamespace:
            # Just the attributes AIOKafkaConsumerThread._highwaters touches.
            return SimpleNamespace(
                app=app,
                consumer=SimpleNamespace(in_transaction=False),
                transport=SimpleNamespace(url=[URL(broker.url)], default_port=9092),
                _ensure_consumer=lambda: consumer,
            )

        tp = TP(topic, 0)
        assert await patched(consumer_thread_of(fixed), [tp]) == {tp: 30}
        assert await patched(consumer_thread_of(plain), [tp]) == {tp: 21}
    finally:
        await consumer.stop()


class FaustWorker:
    """The restart app (faust_restart_app.py) running as a worker subprocess."""

    def __init__(
        self,
        broker: EmbeddedBroker,
        app_id: str,
        datadir: Path,
        log_path: Path,
        *,
        tansu_fix: bool,
    ) -> None:
        self.log_path = log_path
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "RESTART_APP_ID": app_id,
            "RESTART_APP_BROKER": broker.url,
            "RESTART_APP_DATADIR": str(datadir),
            "RESTART_APP_TANSU_FIX": "1" if tansu_fix else "0",
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self) -> None:
        self._log_file = open(self.log_path, "ab")
        command = [sys.executable, "-m", "faust", "-A", RESTART_APP, "worker"]
        self._process = subprocess.Popen(
            [*command, "-l", "info", "--without-web"],
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def exited(self) -> bool:
        return self._process is not None and self._process.poll() is not None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, size: int = 6000) -> str:
        return f"\n--- tail of {self.log_path} ---\n{self.log()[-size:]}"

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the worker and wait for it to exit; returns its exit code."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        code = self._process.poll()
        self.kill()
        return code

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class CountsWatcher:
    """Follows the app's output topic, keeping the latest count per host."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.counts: dict[str, int] = {}
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign(self.partitions)
        await self._consumer.seek_to_beginning(*self.partitions)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def wait_for(self, expected: Mapping[str, int], worker: FaustWorker) -> dict[str, int]:
        """Read counts until every host has reached its expected count."""
        deadline = time.monotonic() + WAIT_TIMEOUT
        while not all(self.counts.get(host, 0) >= n for host, n in expected.items()):
            assert not worker.exited, f"worker exited early{worker.log_tail()}"
            assert time.monotonic() < deadline, (
                f"counts stuck at {self.counts}, expected {dict(expected)}{worker.log_tail()}"
            )
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    self.counts[json.loads(record.key)] = json.loads(record.value)
        return dict(self.counts)


async def send_pings(bootstrap: str, topic: str, rounds: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        ping = json.dumps("ping").encode()
        sent = [
            await producer.send(topic, ping, key=json.dumps(host).encode())
            for _ in range(rounds)
            for host in HOSTS
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def wait_committed(
    bootstrap: str, group: str, topic: str, total: int, worker: FaustWorker
) -> None:
    """Wait until the worker's group has committed ``total`` source offsets."""
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    # Reads offsets only: without subscribe() this consumer never joins the group.
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await reader.start()
    try:
        deadline = time.monotonic() + WAIT_TIMEOUT
        while True:
            committed = sum([await reader.committed(tp) or 0 for tp in partitions])
            if committed == total:
                return
            assert time.monotonic() < deadline, (
                f"group {group} committed {committed} of {total}{worker.log_tail()}"
            )
            await asyncio.sleep(0.2)
    finally:
        await reader.stop()


class RestartScenario:
    """One app id, its two worker lives sharing a datadir, and a watcher on its counts."""

    def __init__(self, broker: EmbeddedBroker, tmp_path: Path, *, tansu_fix: bool) -> None:
        self.broker = broker
        self.app_id = unique("restart" if tansu_fix else "unfixed")
        self.pings = f"{self.app_id}-pings"
        datadir = tmp_path / "data"
        self.first, self.second = (
            FaustWorker(
                broker, self.app_id, datadir, tmp_path / f"worker-{life}.log", tansu_fix=tansu_fix
            )
            for life in (1, 2)
        )
        self.watcher = CountsWatcher(broker.bootstrap, f"{self.app_id}-counts")

    async def __aenter__(self) -> RestartScenario:
        counts = f"{self.app_id}-counts"
        await create_topics(self.broker.bootstrap, self.pings, counts, partitions=PARTITIONS)
        await self.watcher.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.first.kill()
        self.second.kill()
        await self.watcher.stop()

    async def count_then_stop_first_worker(self, rounds: int) -> None:
        """First life: count ``rounds`` pings per host, commit, stop on SIGTERM."""
        self.first.start()
        await send_pings(self.broker.bootstrap, self.pings, rounds)
        counts = await self.watcher.wait_for({host: rounds for host in HOSTS}, self.first)
        assert counts == {host: rounds for host in HOSTS}
        # A restart must not reprocess pings, or at-least-once would double count.
        total = rounds * len(HOSTS)
        await wait_committed(self.broker.bootstrap, self.app_id, self.pings, total, self.first)
        assert await self.first.stop() == 0, self.first.log_tail()

        changelog = [
            TopicPartition(f"{self.app_id}-counts-changelog", p) for p in range(PARTITIONS)
        ]
        reported = await reported_end_offsets(self.broker.bootstrap, changelog)
        corrected = await true_end_offsets(self.broker.bootstrap, changelog, reported)
        assert sum(corrected.values()) == total
        assert any(reported[tp] < corrected[tp] for tp in changelog), (
            f"Tansu reported true changelog ends {reported}; the restart would not test the fix"
        )


async def test_faust_rocksdb_table_survives_worker_restart(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    async with asyncio.timeout(TEST_BUDGET), RestartScenario(
        broker, tmp_path, tansu_fix=True
    ) as scenario:
        await scenario.count_then_stop_first_worker(rounds=25)

        scenario.second.start()
        await send_pings(broker.bootstrap, scenario.pings, rounds=15)
        final = await scenario.watcher.wait_for({host: 40 for host in HOSTS}, scenario.second)
        assert final == {host: 40 for host in HOSTS}, scenario.second.log_tail()
        assert await scenario.second.stop() == 0, scenario.second.log_tail()

    logs = scenario.first.log() + scenario.second.log()
    assert "ConsistencyError" not in logs
    assert "Traceback" not in logs
