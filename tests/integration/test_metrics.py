"""GET /metrics on the API, worker and probe processes: Prometheus text that moves when results are posted."""
from __future__ import annotations

import asyncio
import json
import urllib.request

from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from engine import topics
from tests.integration.cluster import Client, Cluster, Process, wait_for
from tests.integration.test_monitors import create, post_results
from tests.integration.test_status import pingstream_status
from tests.unit.test_grafana_dashboard import dashboard, queried_metrics

Samples = dict[tuple[str, frozenset], float]


def scrape(process: Process) -> Samples:
    """Every sample of the process's /metrics, as Prometheus would parse it: (name, labels) -> value."""
    with urllib.request.urlopen(f"{process.url}/metrics", timeout=10) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def families(process: Process) -> set[str]:
    """The metric families the process's /metrics declares."""
    with urllib.request.urlopen(f"{process.url}/metrics", timeout=10) as response:
        return {family.name for family in text_string_to_metric_families(response.read().decode())}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the samples carrying `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def labels_of(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(have)[label] for (n, have), _ in samples.items() if n == name and label in dict(have)}


def process(cluster: Cluster, prefix: str) -> Process:
    return next(p for p in cluster.processes if p.name.startswith(prefix) and p.alive())


def send_raw(cluster: Cluster, topic: str, value: bytes, partition: int = 0) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=cluster.broker_url.removeprefix("kafka://"), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, partition=partition)
        finally:
            await producer.stop()
    asyncio.run(go())


def test_results_posted_move_the_worker_and_api_metrics_and_ids_never_become_labels(
        cluster: Cluster, api: Client) -> None:
    worker, api_process = process(cluster, "worker"), process(cluster, "api")
    monitor = create(api, regions=[])
    mid = monitor["id"]
    before_worker, before_api = scrape(worker), scrape(api_process)

    post_results(api, [{"monitor_id": mid, "status": "up", "response_time_ms": 10.0 + n} for n in range(25)])
    send_raw(cluster, topics.CHECK_RESULTS, b"this is not JSON")  # a bad message: dead-lettered, counted
    api.get(f"/v1/monitors/{mid}")

    def moved() -> Samples | None:
        now = scrape(worker)
        grew = (value(now, "pingstream_records_total", topic=topics.CHECK_RESULTS)
                >= value(before_worker, "pingstream_records_total", topic=topics.CHECK_RESULTS) + 2
                and value(now, "pingstream_dead_letters_total", topic=topics.CHECK_RESULTS, reason="not JSON")
                == value(before_worker, "pingstream_dead_letters_total", topic=topics.CHECK_RESULTS,
                         reason="not JSON") + 1)
        return now if grew else None
    after_worker = wait_for("the worker's metrics to count the results and the dead letter", moved, 30)

    # flushes: latency and records per flush, by writer
    assert (value(after_worker, "pingstream_flush_seconds_count", writer="checks")
            > value(before_worker, "pingstream_flush_seconds_count", writer="checks"))
    assert value(after_worker, "pingstream_flush_records_sum") > value(before_worker, "pingstream_flush_records_sum")
    # lag per assigned partition of each consumed topic; the partitions served; state sizes
    lagging = {dict(labels)["partition"] for (name, labels) in after_worker
               if name == "pingstream_consumer_lag" and dict(labels)["topic"] == topics.CHECK_RESULTS}
    assert lagging == {str(p) for p in range(cluster.partitions)}
    assert value(after_worker, "pingstream_partitions_served") == cluster.partitions
    assert value(after_worker, "pingstream_state_keys") > 0
    assert value(after_worker, "pingstream_table_cached_values", table="monitors") >= 1
    # timers: a series per timer from the start, never more fired than due
    timers = labels_of(after_worker, "pingstream_timer_ticks_due_total", "timer")
    assert {f"{topics.HEARTBEATS}/tick", f"{topics.CHECK_RESULTS}/due"} <= timers
    for timer in timers:
        assert (value(after_worker, "pingstream_timer_ticks_fired_total", timer=timer)
                <= value(after_worker, "pingstream_timer_ticks_due_total", timer=timer))
    # a heartbeat missing its deadline: its partition's deadline timer has work due, and its fold applies the tick
    deadlines = f"{topics.HEARTBEATS}/tick"
    heartbeat = api.post("/v1/heartbeats", {"name": "metrics", "interval": 1, "grace": 1})
    assert heartbeat.status == 201, heartbeat.body
    assert api.post(f"/v1/heartbeats/{heartbeat.body['data']['id']}/events").status == 202

    def ticked() -> bool:
        now = scrape(worker)
        return all(value(now, name, timer=deadlines) > value(after_worker, name, timer=deadlines)
                   for name in ("pingstream_timer_ticks_due_total", "pingstream_timer_ticks_fired_total"))
    wait_for("the deadline timer to count a tick due and fired", ticked, 30, interval=0.5)

    after_api = scrape(api_process)
    posted = dict(route="/v1/checks", method="POST", status="202")
    assert value(after_api, "pingstream_http_requests_total", **posted) == \
        value(before_api, "pingstream_http_requests_total", **posted) + 1
    assert value(after_api, "pingstream_http_request_seconds_count", route="/v1/checks", method="POST") >= 1
    routes = labels_of(after_api, "pingstream_http_requests_total", "route")
    assert "/v1/monitors/{id}" in routes and not any(mid in route for route in routes), routes
    assert value(after_api, "pingstream_command_reply_seconds_count", kind="monitor.create", outcome="replied") >= 1
    # a worker serves the API too: its requests are counted by route template, ids never a label
    assert not any(mid in route for route in labels_of(after_worker, "pingstream_http_requests_total", "route"))


def test_a_probe_serves_its_checks_and_schedule_lag(cluster: Cluster, api: Client) -> None:
    region = "metrics-probe"
    api_process = process(cluster, "api")
    probe = cluster.start_probe(region)
    try:
        created = api.post("/v1/monitors", {"name": "the API's port", "type": "tcp", "host": "127.0.0.1",
                                            "port": api_process.port, "regions": [region], "interval_seconds": 10,
                                            "timeout_seconds": 2})
        assert created.status == 201, created.body

        def checked() -> Samples | None:
            if not probe.alive():
                raise AssertionError(probe.log_tail())
            now = scrape(probe)
            return now if value(now, "pingstream_probe_checks_total", region=region) >= 1 else None
        samples = wait_for("the probe to count a check", checked, 45, interval=0.5)
        assert value(samples, "pingstream_probe_schedule_lag_seconds_count", region=region) >= 1
        assert value(samples, "pingstream_probe_monitors", region=region) >= 1
        assert ("pingstream_probe_results_pending", frozenset({("region", region)})) in samples

        # every metric the Grafana dashboard queries is in a real scrape of the worker, the API or the probe
        exported = set().union(*(families(p) for p in (process(cluster, "worker"), api_process, probe)))
        assert queried_metrics(dashboard()) <= exported, queried_metrics(dashboard()) - exported

        def listed() -> list[dict]:  # the probe reports on `probes` (at start, on assignment, then every 5 s),
            # which `pingstream status` reads: until a report after it read the directory, it lists no monitors
            shown = json.loads(pingstream_status(cluster, "--json", "--interval", "0.1"))["probes"]
            return [p for p in shown if p["region"] == region and p["id"].split(":")[1] == str(probe.popen.pid)
                    and p["monitors"] >= 1]
        [shown] = wait_for("pingstream status to list the probe", listed, 20, interval=1)
        assert shown["monitors"] >= 1 and not shown["stale"] and shown["partitions"]
    finally:
        probe.stop()
