"""`pingstream status`: the deployment at a glance: workers, probes, partition owners, lag and rates.

Who is there comes from the broker: the `workers` topic (each worker announces
the partitions it serves) and the `probes` topic (each probe publishes what it
checks and how it keeps up). How they are doing comes from each worker's
/metrics, scraped twice `interval` seconds apart: lag per partition and
records/s per topic.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from api.probes import STALE_AFTER as PROBE_STALE_AFTER
from engine import deployment as deployments
from engine import topics
from engine.ownership import ANNOUNCE_EVERY
from engine.settings import Settings

#: a worker not heard from for this long is shown stale (it announces at least every ANNOUNCE_EVERY s)
STALE_AFTER = 3 * ANNOUNCE_EVERY


async def latest_records(settings: Settings, topic: str) -> dict[bytes, dict]:
    """The newest value of every key of a compacted, single-partition topic; tombstoned keys are left out."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        await consumer.start()
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        found: dict[bytes, dict] = {}
        while batch := await consumer.getmany(timeout_ms=500):
            for record in batch.get(tp, []):
                if record.value is None:
                    found.pop(record.key, None)
                else:
                    found[record.key] = orjson.loads(record.value)
        return found
    finally:
        await consumer.stop()


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value of every sample at url/metrics."""
    async with http.get(f"{url}/metrics") as response:
        response.raise_for_status()
        text = await response.text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def by_label(samples: dict[tuple[str, tuple], float], name: str, label: str) -> dict[str, float]:
    summed: dict[str, float] = {}
    for (sample, labels), value in samples.items():
        labels = dict(labels)
        if sample == name and label in labels:
            summed[labels[label]] = summed.get(labels[label], 0.0) + value
    return summed


@dataclass
class WorkerStatus:
    url: str
    partitions: list[int]
    announced_at: float
    stale: bool
    reachable: bool = False
    #: topic -> records folded per second over the interval
    rates: dict[str, float] = field(default_factory=dict)
    #: topic -> partition -> records behind
    lag: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str = ""


async def worker_status(http: aiohttp.ClientSession, url: str, announcement: dict, now: float,
                        interval: float) -> WorkerStatus:
    status = WorkerStatus(url, sorted(announcement["partitions"]), announcement["at"],
                          now - announcement["at"] > STALE_AFTER)
    try:
        first = await scrape(http, url)
        started = time.monotonic()
        await asyncio.sleep(interval)
        second = await scrape(http, url)
        elapsed = time.monotonic() - started
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        status.error = repr(exc)
        return status
    status.reachable = True
    before = by_label(first, "pingstream_records_total", "topic")
    after = by_label(second, "pingstream_records_total", "topic")
    status.rates = {topic: round(max(0.0, count - before.get(topic, 0.0)) / elapsed, 1)
                    for topic, count in sorted(after.items())}
    for (sample, labels), value in second.items():
        if sample == "pingstream_consumer_lag":
            labels = dict(labels)
            status.lag.setdefault(labels["topic"], {})[labels["partition"]] = value
    return status


async def gather_status(settings: Settings, interval: float = 1.0) -> dict[str, Any]:
    """What `pingstream status` shows, as data."""
    deployment = await deployments.current(settings)
    announcements = {url: a for url, a in (await latest_records(settings, topics.WORKERS)).items()
                     if a.get("generation", 0) == deployment.generation}  # older ones serve nothing now
    probes = await latest_records(settings, topics.PROBES)
    now = time.time()
    # the newest announcement naming a partition names its owner (an older one may be a dead worker's)
    owners: dict[int, tuple[float, str]] = {}
    for announcement in announcements.values():
        for partition in announcement["partitions"]:
            if partition not in owners or announcement["at"] > owners[partition][0]:
                owners[partition] = (announcement["at"], announcement["url"])
    timeout = aiohttp.ClientTimeout(total=interval + 10)
    headers = {"Authorization": f"Bearer {settings.metrics_token}"} if settings.metrics_token else {}
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
        # a worker serving nothing is shown while it keeps announcing (rebalancing, or idle beyond the
        # partition count); one stopped long ago left its last, empty announcement behind
        workers = await asyncio.gather(*(worker_status(http, a["url"], a, now, interval)
                                         for a in announcements.values()
                                         if a["partitions"] or now - a["at"] <= STALE_AFTER))
    rates: dict[str, float] = {}
    lag: dict[str, float] = {}
    for worker in workers:
        for topic, rate in worker.rates.items():
            rates[topic] = round(rates.get(topic, 0.0) + rate, 1)
        for topic, partitions in worker.lag.items():
            lag[topic] = lag.get(topic, 0.0) + sum(partitions.values())
    return {
        "partitions": deployment.partitions,
        "generation": deployment.generation,
        "moving_to": deployment.next_partitions if deployment.moving else None,
        "owners": {str(p): owners[p][1] if p in owners else None for p in range(deployment.partitions)},
        "workers": [vars(worker) for worker in sorted(workers, key=lambda w: w.url)],
        "probes": [{**probe, "stale": now - probe["last_seen"] > PROBE_STALE_AFTER}
                   for probe in sorted(probes.values(), key=lambda p: (p["region"], p["id"]))],
        "records_per_second": dict(sorted(rates.items())),
        "lag": dict(sorted(lag.items())),
    }


def render(status: dict[str, Any]) -> str:
    """The status as a terminal page."""
    lines = []
    owned = sum(1 for url in status["owners"].values() if url)
    moving = f"  (moving to {status['moving_to']}: pingstream rescale)" if status.get("moving_to") else ""
    lines.append(f"partitions  {owned}/{status['partitions']} owned{moving}")
    lines.append("")
    lines.append(f"{'WORKER':<32} {'PARTITIONS':<14} {'STATE':<12} RECORDS/S")
    for worker in status["workers"]:
        state = ("stale" if worker["stale"] else "unreachable" if not worker["reachable"]
                 else "serving" if worker["partitions"] else "idle")
        rate = sum(worker["rates"].values())
        lines.append(f"{worker['url']:<32} {','.join(map(str, worker['partitions'])) or '-':<14} {state:<12} "
                     f"{rate:,.1f}")
    if not status["workers"]:
        lines.append("(no worker announced itself)")
    lines.append("")
    lines.append(f"{'PARTITION':<10} {'OWNER':<32} LAG (records behind, by topic)")
    lags: dict[str, dict[str, float]] = {}
    for worker in status["workers"]:
        for topic, partitions in worker["lag"].items():
            for partition, behind in partitions.items():
                lags.setdefault(partition, {})[topic] = behind
    for partition, owner in status["owners"].items():
        behind = lags.get(partition)
        shown = "?" if behind is None else (  # its owner did not answer
            ", ".join(f"{topic} {int(n)}" for topic, n in sorted(behind.items()) if n) or "0")
        lines.append(f"{partition:<10} {owner or '(none)':<32} {shown}")
    lines.append("")
    lines.append(f"{'TOPIC':<24} {'RECORDS/S':>10} {'LAG':>10}")
    for topic in sorted(set(status["records_per_second"]) | set(status["lag"])):
        lines.append(f"{topic:<24} {status['records_per_second'].get(topic, 0.0):>10,.1f} "
                     f"{int(status['lag'].get(topic, 0)):>10,}")
    lines.append("")
    lines.append(f"{'PROBE':<40} {'REGION':<12} {'MONITORS':>8} {'CHECKS/S':>9} {'LAG P99 MS':>10} PARTITIONS")
    for probe in status["probes"]:
        lines.append(f"{probe['id']:<40} {probe['region']:<12} {probe['monitors']:>8} "
                     f"{probe['checks_per_second']:>9.1f} {probe['schedule_lag_p99_ms']:>10.1f} "
                     f"{','.join(map(str, probe['partitions'])) or '-'}{'  (stale)' if probe['stale'] else ''}")
    if not status["probes"]:
        lines.append("(no probe)")
    return "\n".join(lines)
