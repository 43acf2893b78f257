"""What every pingstream process counts, served at GET /metrics in Prometheus text format.

One registry per process (prometheus_client's default), so a worker serving
the API beside its owner reads exposes both on one port. Labels are bounded:
topics, partitions, table and writer names, a route's template (never its
URL: ids would make a series each), command kinds, a dead letter's reason
without the details that name an entity. The fold counts per batch, not per
record: it handles tens of thousands of results a second.

    pingstream_records_total{topic}                 records folded, by topic (rate: records/s)
    pingstream_consumer_lag{topic,partition}        records behind the partition's end, per assigned partition
    pingstream_partitions_served                    partitions this worker serves (0 while rebalancing)
    pingstream_flush_seconds{writer}                flush latency: changelog and RocksDB (histogram)
    pingstream_flush_records{writer}                table records per flush (histogram)
    pingstream_state_keys{partition}                RocksDB's estimate of the keys a partition's state holds
    pingstream_state_bytes{partition}               RocksDB's estimate of the live bytes of a partition's state
    pingstream_table_cached_values{table}           decoded values a table keeps in memory
    pingstream_dead_letters_total{topic,reason}     messages dead-lettered
    pingstream_http_requests_total{route,method,status}, pingstream_http_request_seconds{route,method}
    pingstream_command_reply_seconds{kind,outcome}  from sending a command to its owner's reply (API)
    pingstream_probe_checks_total{region}           checks a probe made (rate: checks/s)
    pingstream_probe_schedule_lag_seconds{region}   how late a check started after its slot (histogram)
    pingstream_probe_monitors{region}, pingstream_probe_in_flight{region}, pingstream_probe_results_pending{region}
    pingstream_timer_ticks_due_total{timer}         ticks a timer sent because a partition had work due
    pingstream_timer_ticks_fired_total{timer}       of those, the ticks the partition's fold applied
"""
from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.responses import error_response

LATENCY = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)
SIZES = (1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000)

RECORDS = Counter("pingstream_records", "Records folded, by topic", ["topic"])
FLUSH_SECONDS = Histogram("pingstream_flush_seconds", "How long a flush took: events, changelog, RocksDB, replies",
                          ["writer"], buckets=LATENCY)
FLUSH_RECORDS = Histogram("pingstream_flush_records", "Table records made durable by one flush", ["writer"],
                          buckets=(0, *SIZES))
DEAD_LETTERS = Counter("pingstream_dead_letters", "Messages sent to dead letters, by source topic and reason",
                       ["topic", "reason"])
HTTP_REQUESTS = Counter("pingstream_http_requests", "HTTP requests answered, by route template, method and status",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("pingstream_http_request_seconds", "HTTP request latency, by route template and method",
                         ["route", "method"], buckets=LATENCY)
COMMAND_REPLY_SECONDS = Histogram("pingstream_command_reply_seconds",
                                  "From sending a command to the owning worker's reply, by kind and outcome",
                                  ["kind", "outcome"], buckets=LATENCY)
PROBE_CHECKS = Counter("pingstream_probe_checks", "Checks a probe made, by region", ["region"])
PROBE_SCHEDULE_LAG = Histogram("pingstream_probe_schedule_lag_seconds", "How late a check started after its slot",
                               ["region"], buckets=LATENCY)
PROBE_MONITORS = Gauge("pingstream_probe_monitors", "Monitors a probe schedules", ["region"])
PROBE_IN_FLIGHT = Gauge("pingstream_probe_in_flight", "Checks a probe is running now", ["region"])
PROBE_RESULTS_PENDING = Gauge("pingstream_probe_results_pending", "Results a probe holds that Kafka has not taken",
                              ["region"])
TIMER_DUE = Counter("pingstream_timer_ticks_due", "Ticks a timer sent because a partition had work due", ["timer"])
TIMER_FIRED = Counter("pingstream_timer_ticks_fired", "Ticks a timer sent that the partition's fold applied",
                      ["timer"])

#: what ends a dead letter's reason kind: the details after it name an entity, a value or an exception
_REASON_DETAILS = re.compile(r"""[:'"({\[0-9]""")


def reason_kind(reason: str) -> str:
    """A dead letter's reason without its details: "unknown monitor 'mon_1': create it first" -> "unknown monitor"."""
    kind = _REASON_DETAILS.split(reason, 1)[0].strip(" ,.-")
    return kind[:60] or "other"


def route_of(request: web.Request) -> str:
    """The template of the route that answered (`/v1/monitors/{id}`), never the URL; "unmatched" for none."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def http_metrics_middleware(request: web.Request, handler):
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route, method = route_of(request), request.method
        HTTP_REQUESTS.labels(route, method, str(status)).inc()
        HTTP_SECONDS.labels(route, method).observe(time.perf_counter() - started)


def serve_metrics(app: web.Application, token: str = "") -> None:
    """GET /metrics and the request counting, on `app`; once, however often it is called.

    `token` (PINGSTREAM_METRICS_TOKEN): when set, a scrape must present it as a Bearer token.
    """
    if any(getattr(r, "resource", None) is not None and r.resource.canonical == "/metrics"
           for r in app.router.routes()):
        return
    app.middlewares.insert(0, http_metrics_middleware)
    exposition = make_aiohttp_handler(REGISTRY)
    expected = f"Bearer {token}".encode()

    async def scrape(request: web.Request) -> web.Response:
        presented = request.headers.get("Authorization", "").encode()
        if token and not hmac.compare_digest(presented, expected):
            return error_response(401, "unauthorized", "GET /metrics needs the metrics token "
                                  "(Authorization: Bearer <PINGSTREAM_METRICS_TOKEN>)")
        return await exposition(request)

    scrape.unmetered = lambda request: True  # a scraper is no client: per-IP request limits do not apply
    app.router.add_get("/metrics", scrape)


_flush_series: dict[str, tuple[Any, Any]] = {}  # writer -> its two histograms' series, looked up once


def flushed(writer: str, seconds: float, records: int) -> None:
    """One flush of `writer`'s state (tables/store.py calls it with the lock still held: keep it cheap)."""
    series = _flush_series.get(writer)
    if series is None:
        series = _flush_series[writer] = (FLUSH_SECONDS.labels(writer), FLUSH_RECORDS.labels(writer))
    series[0].observe(seconds)
    series[1].observe(records)


class WorkerCollector(Collector):
    """Read at scrape time, never on the hot path: consumer lag, what is served, state sizes."""

    def __init__(self, app: Any, state: Any, serving: Callable[[Any], list[int]]) -> None:
        self.app, self.state, self.serving = app, state, serving

    def describe(self) -> list[GaugeMetricFamily]:
        """The families a scrape holds, without their samples."""
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        lag = GaugeMetricFamily("pingstream_consumer_lag", "Records behind the end of an assigned partition",
                                labels=["topic", "partition"])
        served = GaugeMetricFamily("pingstream_partitions_served", "Partitions this worker serves now")
        keys = GaugeMetricFamily("pingstream_state_keys", "RocksDB's estimate of the keys of a partition's state",
                                 labels=["partition"])
        size = GaugeMetricFamily("pingstream_state_bytes", "RocksDB's estimate of a partition's live state bytes",
                                 labels=["partition"])
        cached = GaugeMetricFamily("pingstream_table_cached_values", "Decoded values a table keeps in memory",
                                   labels=["table"])
        return lag, served, keys, size, cached

    def collect(self) -> Iterable[GaugeMetricFamily]:
        lag, served, keys, size, cached = self._families()
        consumer = getattr(self.app, "_consumer", None)  # none before the worker started
        if consumer is not None:
            try:
                for tp, behind in sorted(consumer_lag(consumer).items()):
                    lag.add_metric([tp.topic, str(tp.partition)], behind)
                serving = self.serving(self.app)
            except Exception:  # a scrape during start-up or a rebalance: what is known
                serving = []
            served.add_metric([], len(serving))
            for partition in serving:
                estimate = partition_estimates(self.state, partition)
                if estimate is not None:
                    keys.add_metric([str(partition)], estimate[0])
                    size.add_metric([str(partition)], estimate[1])
        for table in self.state.tables:
            cached.add_metric([table.name], len(table._cache))
        return [lag, served, keys, size, cached]


def consumer_lag(consumer: Any) -> dict[Any, int]:
    """Per assigned partition: its end (the highwater of the last fetch) less the position read up to."""
    lags = {}
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        read = consumer._read_offset.get(tp)
        position = read + 1 if read is not None else consumer._committed_offset.get(tp)
        if position is None:
            position = 0  # nothing read nor committed yet: the consumer starts at the earliest record
        if end is not None:
            lags[tp] = max(0, end - position)
    return lags


def partition_estimates(state: Any, partition: int) -> tuple[int, int] | None:
    try:
        db = state.physical.data._db_for_partition(partition)
        return (db.property_int_value("rocksdb.estimate-num-keys") or 0,
                db.property_int_value("rocksdb.estimate-live-data-size") or 0)
    except Exception:  # revoked meanwhile, or not opened yet
        return None


def watch_worker(app: Any, state: Any, serving: Callable[[Any], list[int]]) -> None:
    REGISTRY.register(WorkerCollector(app, state, serving))
