"""`pingstream probe --region <code>`: a process that checks the monitors of its region, on schedule.

    directory (compacted; one consumer group per region) → Schedule → checks → check-results

* **Which monitors**: the probes of one region form one Kafka consumer group
  over topic `directory` (engine/directory.py). Each reads the partitions it
  is assigned from their start and schedules the monitors there that name
  its region (probe/schedule.py). A probe added takes a share of the
  partitions; one that dies loses them to the others after the session
  timeout. Nothing is committed: the directory is re-read on assignment.
* **Results** go to `check-results` in envelopes per partition (acks=all),
  the path posted results take, so the worker folds them the same way. A
  result Kafka did not take is kept and sent again; the buffer is bounded.
* **Health**: every REPORT_EVERY seconds the probe publishes what it does on
  topic `probes` (compacted, key: the probe's id): region, host, monitors,
  checks per second, schedule lag p99, slots skipped, last seen. The API
  serves them at `GET /v1/probes`; a probe stopping removes its record.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from engine import deployment as deployments
from engine import following, topics
from engine.deployment import Ingest
from engine.directory import MONITOR
from engine.metrics import (PROBE_CHECKS, PROBE_IN_FLIGHT, PROBE_MONITORS, PROBE_RESULTS_PENDING, PROBE_SCHEDULE_LAG,
                            serve_metrics)
from engine.settings import Settings
from probe.certificates import CertificateReports
from probe.outcome import Outcome, down
from probe.schedule import Schedule, Scheduled

log = logging.getLogger(__name__)

#: one check of a monitor: its spec in, its Outcome out (probe/__init__.py run_check, bound to a session)
Checker = Callable[[dict], Awaitable[Outcome]]

REPORT_EVERY = 5.0          # seconds between health records on `probes`
ENVELOPE_RESULTS = 500      # results per envelope at most
PENDING_MAX = 200_000       # results kept while Kafka does not take them; the oldest go first beyond it


def probe_version() -> str:
    try:
        return version("pingstream")
    except PackageNotFoundError:
        return "dev"


class _Assignment(ConsumerRebalanceListener):
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.probe.schedule.drop_partitions(tp.partition for tp in revoked)
        self.probe.partitions -= {tp.partition for tp in revoked}

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            await self.probe.consumer.seek_to_beginning(*assigned)
        self.probe.partitions |= {tp.partition for tp in assigned}
        self.probe.report_now.set()
        log.info("probe %s (region %s) now checks partitions %s", self.probe.id, self.probe.region,
                 sorted(self.probe.partitions))


class Probe:
    def __init__(self, settings: Settings, region: str, checker: Checker, *, concurrency: int = 2000) -> None:
        self.settings, self.region, self.checker = settings, region, checker
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.schedule = Schedule(region)
        self.partitions: set[int] = set()
        self.slots = asyncio.Semaphore(concurrency)
        self.pending: dict[int, list[dict]] = {}
        self.has_pending = asyncio.Event()
        self.wake = asyncio.Event()            # the schedule changed: look at the next due time again
        self.report_now = asyncio.Event()      # started, or partitions assigned: be listed at once
        self.report_now.set()
        self.in_flight: set[asyncio.Task] = set()
        self.lags: list[float] = []            # seconds late, of checks fired since the last report
        self.checked = 0
        self.dropped = 0
        self.certificates = CertificateReports()
        self.started_at = time.time()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        #: where results go: this generation's topics, or the next one's while a rescale moves the deployment
        self.ingest = Ingest(topics.GENERATION, settings.partitions)
        self.sending: Counter[int] = Counter()  # generation -> result envelopes on their way
        self.restart = False                    # a rescale finished: run again on the new generation
        self.checks_made, self.lateness = PROBE_CHECKS.labels(region), PROBE_SCHEDULE_LAG.labels(region)
        # read at scrape time only
        PROBE_MONITORS.labels(region).set_function(lambda: len(self.schedule.monitors))
        PROBE_IN_FLIGHT.labels(region).set_function(lambda: len(self.in_flight))
        PROBE_RESULTS_PENDING.labels(region).set_function(lambda: sum(map(len, self.pending.values())))

    # -- lifecycle ------------------------------------------------------------

    # -- a rescale (engine/deployment.py) ---------------------------------------

    def route(self, topic: str, monitor_id: str, partition: int) -> tuple[str, int]:
        """Where something about `monitor_id` (found in `partition` of this generation's directory) goes now."""
        if self.ingest.generation == topics.GENERATION:
            return topic, partition
        return self.ingest.topic(topic), self.ingest.partition_of(monitor_id)

    def _acknowledge(self) -> int | None:
        generation = self.ingest.generation
        if any(n for sent_to, n in self.sending.items() if sent_to != generation) or any(
                n for topic, n in self.certificates.sending.items() if topic != topics.named(topic, generation)):
            return None
        return generation

    def _on_deployment(self, deployment: deployments.Deployment, stop: asyncio.Event) -> None:
        self.ingest = Ingest(*deployment.ingest)
        if deployment.state == deployments.ACTIVE and deployment.generation != topics.GENERATION:
            log.warning("the deployment moved to %d partitions: this probe starts again on it", deployment.partitions)
            self.restart = True
            stop.set()

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        current = await deployments.joinable(s, "probe")
        topics.use_generation(current.generation)
        self.ingest = Ingest(*current.ingest)
        watch = deployments.Watch(s, f"probe:{self.id}", lambda d: self._on_deployment(d, stop), self._acknowledge)
        await watch.start()
        self.producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all", linger_ms=5,
                                         max_request_size=4 * 1024 * 1024)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers, group_id=f"{s.app_id}-probes-{self.region}",
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout * 1000), heartbeat_interval_ms=int(s.heartbeat_interval * 1000),
            fetch_max_wait_ms=100,
        )
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe([topics.DIRECTORY], listener=_Assignment(self))
        tasks = [asyncio.create_task(loop()) for loop in (self._follow, self._fire, self._ship, self._report)]
        log.info("probe %s started for region %s", self.id, self.region)
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in list(self.in_flight):
                task.cancel()
            await asyncio.gather(*self.in_flight, return_exceptions=True)
            await self._send_pending()
            await self._publish(None)  # gone: no longer listed
            await watch.stop()
            await self.consumer.stop()
            await self.producer.stop()

    # -- the directory --------------------------------------------------------

    async def _follow(self) -> None:
        async for batch in following.batches(self.consumer, "the directory", retry_after=1.0):
            now = time.time()
            for tp, records in batch.items():
                for record in records:
                    kind, _, entity_id = record.key.decode().partition(":")
                    if kind != MONITOR:
                        continue
                    try:
                        entry = None if record.value is None else orjson.loads(record.value)
                    except orjson.JSONDecodeError:
                        log.warning("ignoring an unreadable directory entry for %s", entity_id)
                        continue
                    self.schedule.apply(tp.partition, entity_id, entry, now)
            if batch:
                self.wake.set()

    # -- firing ---------------------------------------------------------------

    async def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = time.time()
            for monitor_id, scheduled, late in self.schedule.take_due(now):
                self.lags.append(late)
                self.lateness.observe(late)
                task = asyncio.create_task(self._check(monitor_id, scheduled, now))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            due = self.schedule.next_due()
            self.wake.clear()
            # a timer, not wait_for: at 1,000 slots a second a task per wait is a cost of its own
            alarm = None if due is None else loop.call_later(max(0.0, due - time.time()), self.wake.set)
            try:
                await self.wake.wait()
            finally:
                if alarm is not None:
                    alarm.cancel()

    async def _check(self, monitor_id: str, scheduled: Scheduled, fired_at: float) -> None:
        spec = scheduled.entry["spec"]
        try:
            async with self.slots:
                checked_at = time.time()
                try:
                    # run_check enforces the timeout itself; this only guards against a check that does not
                    async with asyncio.timeout(spec["timeout_seconds"] + 5):
                        outcome = await self.checker(spec)
                except TimeoutError:
                    outcome = down(f"timeout after {spec['timeout_seconds']} s")
            result = outcome.as_result(monitor_id, self.region, checked_at)
            result["id"], result["probe"] = uuid.uuid4().hex, self.id
            self.certificates.saw(self.producer, monitor_id, self.route(topics.CERTIFICATES, monitor_id,
                                                                       scheduled.partition),
                                  scheduled.entry, self.region, outcome, checked_at)
            self.pending.setdefault(scheduled.partition, []).append(result)
            self.has_pending.set()
            self.checked += 1
            self.checks_made.inc()
        finally:
            self.schedule.finished(monitor_id)

    # -- results out ----------------------------------------------------------

    async def _ship(self) -> None:
        while True:
            await self.has_pending.wait()
            await asyncio.sleep(0.05)  # let the results of one second's slots share envelopes
            self.has_pending.clear()
            if not await self._send_pending():
                await asyncio.sleep(1.0)
                self.has_pending.set()

    async def _send_pending(self) -> bool:
        """Send every pending result, an envelope per partition (acks=all); False if Kafka refused some."""
        taken, self.pending = self.pending, {}
        ingest = self.ingest
        if ingest.generation != topics.GENERATION:  # a rescale is moving the deployment: the new partitions
            moved: dict[int, list[dict]] = {}
            for results in taken.values():
                for result in results:
                    moved.setdefault(ingest.partition_of(result["monitor_id"]), []).append(result)
            taken = moved
        topic = ingest.topic(topics.CHECK_RESULTS)
        sends = []
        for partition, results in taken.items():
            for start in range(0, len(results), ENVELOPE_RESULTS):
                chunk = results[start:start + ENVELOPE_RESULTS]
                sends.append((partition, chunk, self._send(topic, partition, chunk)))
        ok = True
        self.sending[ingest.generation] += 1
        try:
            outcomes = await asyncio.gather(*(s for _, _, s in sends), return_exceptions=True)
        finally:
            self.sending[ingest.generation] -= 1
        for (partition, chunk, send), outcome in zip(sends, outcomes):
            if isinstance(outcome, BaseException):
                ok = False
                log.warning("Kafka did not take %d results of partition %d (%r); sending them again",
                            len(chunk), partition, outcome)
                self.pending.setdefault(partition, [])[:0] = chunk
        self._bound_pending()
        return ok

    async def _send(self, topic: str, partition: int, results: list[dict]) -> None:
        await self.producer.send_and_wait(topic, orjson.dumps({"results": results}), partition=partition)

    def _bound_pending(self) -> None:
        total = sum(len(results) for results in self.pending.values())
        while total > PENDING_MAX:
            partition = max(self.pending, key=lambda p: len(self.pending[p]))
            excess = min(total - PENDING_MAX, len(self.pending[partition]))
            del self.pending[partition][:excess]
            self.dropped += excess
            total -= excess
            log.error("Kafka has not taken results for too long: dropped the %d oldest of partition %d",
                      excess, partition)

    # -- health ---------------------------------------------------------------

    def status(self, elapsed: float) -> dict[str, Any]:
        lags = sorted(self.lags)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
        return {
            "id": self.id, "region": self.region, "host": socket.gethostname(), "version": probe_version(),
            "partitions": sorted(self.partitions), "monitors": len(self.schedule.monitors),
            "checks_per_second": round(self.checked / elapsed, 2) if elapsed > 0 else 0.0,
            "schedule_lag_p99_ms": round(p99 * 1000, 1), "skipped_slots": self.schedule.skipped,
            "in_flight": len(self.in_flight), "results_pending": sum(map(len, self.pending.values())),
            "results_dropped": self.dropped, "started_at": self.started_at, "last_seen": time.time(),
        }

    async def _report(self) -> None:
        last = time.monotonic()
        while True:
            try:  # every REPORT_EVERY, and at once when the probe starts or its partitions change
                await asyncio.wait_for(self.report_now.wait(), REPORT_EVERY)
            except asyncio.TimeoutError:
                pass
            self.report_now.clear()
            now = time.monotonic()
            status = self.status(now - last)
            self.checked, self.lags, last = 0, [], now
            if status["schedule_lag_p99_ms"] > 1000:
                log.warning("probe %s cannot keep up: schedule lag p99 %.0f ms over %d monitors", self.id,
                            status["schedule_lag_p99_ms"], status["monitors"])
            try:
                await self._publish(status)
            except Exception:
                log.exception("publishing the probe's health failed; will retry")

    async def _publish(self, status: dict | None) -> None:
        value = None if status is None else orjson.dumps(status)
        await self.producer.send_and_wait(topics.PROBES, value, key=self.id.encode(), partition=0)


async def serve_probe_metrics(settings: Settings) -> web.AppRunner | None:
    """GET /metrics on probe_host:probe_port (none when the port is 0).

    A port in use costs the metrics, not the checks: the probe runs on without them.
    """
    if not settings.probe_port:
        return None
    application = web.Application()
    serve_metrics(application, settings.metrics_token)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.probe_host, settings.probe_port).start()
    except OSError as exc:
        log.error("probe metrics cannot listen on %s:%d (%s): set PINGSTREAM_PROBE_PORT to a free port; "
                  "checking on without /metrics", settings.probe_host, settings.probe_port, exc)
        await runner.cleanup()
        return None
    log.info("probe metrics on http://%s:%d/metrics", settings.probe_host, settings.probe_port)
    return runner


def run_probe(settings: Settings, region: str) -> None:
    """Run one probe for `region` until SIGTERM or SIGINT."""
    import signal

    from probe import ProbeSession, run_check
    from probe.tls import verifying_context

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        metrics = await serve_probe_metrics(settings)
        try:
            async with ProbeSession(tls_context=verifying_context(settings.probe_ca_file)) as session:
                probe = Probe(settings, region, lambda spec: run_check(spec, session))
                await probe.run(stop)
                return probe.restart
        finally:
            if metrics is not None:
                await metrics.cleanup()

    if asyncio.run(main()):
        deployments.restart_process("the deployment moved to a new generation of topics")
