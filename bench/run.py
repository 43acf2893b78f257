"""`make bench`: ingest throughput against the embedded broker, as ratios to baselines in the same run.

1. raw aiokafka consumer over single-result messages        (the ceiling)
2. the textbook Faust agent: one event, one table write each (the naive baseline)
3. pingstream end to end: envelopes → validation, state machine, buckets,
   recent checks, history, changelogged state; results/s on one worker process
4. HTTP: POST /v1/checks (batches of 1,000, real API + worker) against a minimal
   aiohttp handler that only parses the JSON, with the same client
4b. HTTP heartbeat pings: GET /ping/<uuid> (Healthchecks style, one ping a
   request, many concurrent clients) against a minimal aiohttp handler that
   only answers OK, with the same client; how fast the worker applies them, and
   how soon after a missed deadline heartbeat.down is out
5. webhooks: Alertmanager-sized events in the API's envelopes, stored, judged by
   20 rulesets, deduplicated into incidents; events/s on the same worker
6. with --workers N (N > 1): step 3 again with 1 worker and with N workers, each
   on a fresh embedded broker, back to back: results/s and their ratio

Everything runs on this machine; the broker shares its cores.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from engine.broker import EmbeddedBroker, free_port
from engine.partitioning import entity_key, partition_for
from tests.integration.cluster import Client, Cluster, wait_for

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 4


def result(monitor_id: str, n: int, now: float) -> dict:
    """A ~225-byte result, as a probe sends it."""
    return {"id": f"r{n:010d}", "monitor_id": monitor_id, "region": ("eu-west", "us-east", "ap-south")[n % 3],
            "checked_at": now - 3000 + n * 0.001, "status": "down" if n % 97 == 0 else "up",
            "response_time_ms": float(20 + n % 400), "status_code": 200, "cause": None}


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


async def produce_singles(bootstrap: str, topic: str, monitors: list[str], count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    now = time.time()
    try:
        batch = []
        for n in range(count):
            mid = monitors[n % len(monitors)]
            batch.append(await producer.send(topic, orjson.dumps(result(mid, n, now)), key=entity_key(mid)))
            if len(batch) >= 5000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def raw_consumer_rate(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        seen, started = 0, None
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
            for records in batch.values():
                if started is None:
                    started = time.perf_counter()
                for record in records:
                    orjson.loads(record.value)
                seen += sum(len(records) for records in batch.values())
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def naive_agent_rate(broker: EmbeddedBroker, topic: str, count: int, workdir: Path) -> float:
    progress = workdir / "naive-progress"
    env = {**os.environ, "NAIVE_APP_ID": "bench-naive", "NAIVE_BROKER": broker.url, "NAIVE_TOPIC": topic,
           "NAIVE_DATADIR": str(workdir / "naive"), "NAIVE_PROGRESS": str(progress), "PYTHONPATH": str(ROOT)}
    with open(workdir / "naive.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "bench.naive_agent", "worker", "-l", "warn"],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def seen() -> int:
            return int(progress.read_text() or 0) if progress.exists() else 0
        wait_for("the naive agent to start consuming", lambda: seen() > 0, 120, interval=0.05)
        first, started = seen(), time.perf_counter()
        wait_for("the naive agent to finish", lambda: seen() >= count, 600, interval=0.05)
        return (seen() - first) / (time.perf_counter() - started)
    finally:
        process.terminate()
        process.wait(30)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def produce_envelopes(bootstrap: str, monitors: list[str], count: int, envelope: int) -> float:
    """What the API and batching probes send: one envelope per partition; returns seconds spent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                                max_request_size=8 * 1024 * 1024, max_batch_size=1024 * 1024)
    await producer.start()
    started, now = time.perf_counter(), time.time()
    try:
        pending: dict[int, list[dict]] = {p: [] for p in range(PARTITIONS)}
        homes = {mid: partition_for(mid, PARTITIONS) for mid in monitors}
        sends = []
        for n in range(count):
            mid = monitors[n % len(monitors)]
            part = pending[homes[mid]]
            part.append(result(mid, n, now))
            if len(part) >= envelope:
                sends.append(await producer.send("check-results", orjson.dumps({"results": part}), partition=homes[mid]))
                pending[homes[mid]] = []
        for partition, part in pending.items():
            if part:
                sends.append(await producer.send("check-results", orjson.dumps({"results": part}), partition=partition))
        await asyncio.gather(*sends)
        return time.perf_counter() - started
    finally:
        await producer.stop()


def create_monitors(client: Client, count: int) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    def create(n: int) -> str:
        response = client.post("/v1/monitors", {"name": f"bench {n}", "url": "https://example.com",
                                                "regions": ["eu-west", "us-east", "ap-south"]})
        assert response.status == 201, response.body
        return response.body["data"]["id"]

    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        monitors = list(pool.map(create, range(count)))
    print(f"created {count:,} monitors through the API in {time.perf_counter() - started:.1f} s", flush=True)
    return monitors


def start_cluster(broker: EmbeddedBroker, workdir: Path, app_id: str,
                  env: dict[str, str] | None = None) -> tuple[Cluster, Any, Any, str, str, Client]:
    """One worker and the API on `broker`, and a team whose key works: (cluster, worker, api, org id, key, client).
    `env`: more PINGSTREAM_* settings for its processes."""
    cluster = Cluster(broker_url=broker.url, on_tansu=True, root=workdir / "cluster", partitions=PARTITIONS,
                      app_id=app_id, extra_env=dict(env or {}))
    cluster.root.mkdir()
    try:
        worker = cluster.start_worker("worker")
        api = cluster.start_api()
        cluster.wait_serving(api)
        org_id, key = cluster.new_org()
        client = Client(api.url, key)
        wait_for("the bench key", lambda: client.get("/v1/monitors").status == 200, 30)
    except BaseException:
        cluster.stop()
        raise
    return cluster, worker, api, org_id, key, client


def partitions_served(worker) -> float:
    """What the worker's /metrics says it serves now (0 while it rebalances)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "pingstream_partitions_served")


def end_to_end_rate(workers: int, args: argparse.Namespace) -> float:
    """Step 3 on a fresh broker with `workers` worker processes sharing the partitions: results/s."""
    with tempfile.TemporaryDirectory(prefix=f"pingstream-bench-{workers}w-") as tmp, \
            EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker:
        workdir = Path(tmp)
        cluster = Cluster(broker_url=broker.url, on_tansu=True, root=workdir / "cluster", partitions=PARTITIONS,
                          app_id=f"bench-{workers}w")
        cluster.root.mkdir()
        try:
            started_workers = [cluster.start_worker(f"worker-{n}") for n in range(workers)]
            api = cluster.start_api()
            cluster.wait_serving(api)
            _, key = cluster.new_org()
            client = Client(api.url, key)
            wait_for("the bench key", lambda: client.get("/v1/monitors").status == 200, 30)
            monitors = create_monitors(client, args.monitors)
            wait_for("every worker to serve its share of the partitions",
                     lambda: all(partitions_served(w) > 0 for w in started_workers)
                     and sum(partitions_served(w) for w in started_workers) == PARTITIONS, 120, interval=0.5)

            def applied() -> int:
                return sum(worker_health(cluster, w)["results_applied"] for w in started_workers)
            pids = {"workers": [w.popen.pid for w in started_workers], "broker": [broker._process.pid],
                    "bench": [os.getpid()]}
            cpu_before = {role: sum(map(cpu_seconds, ps)) for role, ps in pids.items()}
            before = applied()
            started = time.perf_counter()
            asyncio.run(produce_envelopes(broker.bootstrap, monitors, args.results, args.envelope))
            wait_for("pingstream to apply every result", lambda: applied() - before >= args.results, 600,
                     interval=0.05)
            elapsed = time.perf_counter() - started
            rate = args.results / elapsed
            # cores each role kept busy while the results went through: what the rate is bound by
            cores = {role: (sum(map(cpu_seconds, ps)) - cpu_before[role]) / elapsed for role, ps in pids.items()}
            moved = sum(partitions_served(w) for w in started_workers) != PARTITIONS
            print(f"pingstream end to end, {workers} worker(s): {rate:,.0f} results/s ({args.results:,} results; "
                  f"cores busy: workers {cores['workers']:.2f}, broker {cores['broker']:.2f}, producer "
                  f"{cores['bench']:.2f}; load average {os.getloadavg()[0]:.1f}"
                  f"{'; partitions moved during the run' if moved else ''})", flush=True)
            return rate
        finally:
            cluster.stop()


def worker_health(cluster: Cluster, worker) -> dict:
    return Client(worker.url).get("/internal/health", headers={"X-Pingstream-Internal": cluster.token}).body


async def http_rate(url: str, key: str | None, bodies: list[bytes], seconds: float, concurrency: int = 4) -> float:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    accepted = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(headers=headers) as session:
        async def client(n: int) -> None:
            nonlocal accepted
            while time.perf_counter() < deadline:
                async with session.post(url, data=bodies[n % len(bodies)]) as response:
                    body = await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"{url} answered {response.status}: {body[:300]!r}")
                    accepted += orjson.loads(body)["data"]["accepted"]
                n += concurrency
        started = time.perf_counter()
        await asyncio.gather(*[client(n) for n in range(concurrency)])
        return accepted / (time.perf_counter() - started)


def backlog_folded(cluster: Cluster, worker) -> bool:
    """True once the worker applied nothing new for a second: what was ingested is folded."""
    first = worker_health(cluster, worker)["results_applied"]
    time.sleep(1.0)
    return worker_health(cluster, worker)["results_applied"] == first


def create_heartbeats(client: Client, count: int, interval: int = 3600, grace: int = 600) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    def create(n: int) -> str:
        response = client.post("/v1/heartbeats", {"name": f"bench job {n}", "interval": interval, "grace": grace})
        assert response.status == 201, response.body
        return response.body["data"]["id"]

    with ThreadPoolExecutor(32) as pool:
        return list(pool.map(create, range(count)))


async def ping_rate(urls: list[str], seconds: float, concurrency: int) -> tuple[float, int]:
    """Healthchecks-style GET pings, one heartbeat after another, as many cron jobs at the top of the hour."""
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client(n: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.get(urls[n % len(urls)]) as response:
                    body = await response.read()
                    if response.status != 200 or body != b"OK":
                        raise RuntimeError(f"{urls[n % len(urls)]} answered {response.status}: {body[:300]!r}")
                    done += 1
                n += concurrency
        started = time.perf_counter()
        await asyncio.gather(*[client(n) for n in range(concurrency)])
        return done / (time.perf_counter() - started), done


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def heartbeat_pings_applied(cluster: Cluster, worker) -> int:
    internal = {"X-Pingstream-Internal": cluster.token}
    return Client(worker.url).get("/internal/heartbeats/health", headers=internal).body["checkins_applied"]


def detection_delays(cluster: Cluster, client: Client, count: int) -> list[float]:
    """Seconds from each missed deadline to its heartbeat.down on monitor-events (as the worker produced it)."""
    from tests.integration.test_heartbeats import heartbeat_events

    heartbeats = create_heartbeats(client, count, interval=1, grace=1)
    for heartbeat_id in heartbeats:
        assert Client(client.base).post(f"/v1/heartbeats/{heartbeat_id}/events").status == 202
    wanted = set(heartbeats)

    def downs() -> list:
        return [e for e in heartbeat_events(cluster) if e.event["heartbeat_id"] in wanted
                and e.event["event"] == "heartbeat.down"]
    found = wait_for("every missed deadline to be reported", lambda: len(d := downs()) >= count and d, 120, 0.5)
    return sorted(e.produced_at - e.event["at"] for e in found)


MINIMAL_HANDLER = """
import sys, orjson
from aiohttp import web
async def checks(request):
    body = orjson.loads(await request.read())
    return web.json_response({"data": {"accepted": len(body["results"])}}, status=202)
async def ping(request):
    await request.read()
    return web.Response(text="OK")
app = web.Application(client_max_size=4 * 1024 * 1024)
app.router.add_post("/v1/checks", checks)
app.router.add_route("*", "/ping/{id}", ping)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def alertmanager_event(webhook_id: str, n: int, groups: int, now: float) -> dict:
    """A ~1.7 KB Alertmanager group notification, as received by POST /v1/webhooks/{id}/events."""
    from tests.unit.test_alert_payloads import ALERTMANAGER_FIRING

    group = n % groups
    payload = {**ALERTMANAGER_FIRING, "groupKey": f'{{}}:{{alertname="Probe{group}"}}',
               "commonLabels": {**ALERTMANAGER_FIRING["commonLabels"], "alertname": f"Probe{group}",
                                "severity": ("critical", "warning")[group % 2]},
               "alerts": [{**alert, "fingerprint": f"{group:08x}{i:08x}"}
                          for i, alert in enumerate(ALERTMANAGER_FIRING["alerts"])]}
    return {"id": f"wev_{n:012d}", "webhook_id": webhook_id, "received_at": now, "ip": "10.0.0.1",
            "content_type": "application/json", "json": payload}


async def produce_webhook_events(bootstrap: str, webhooks: list[tuple[str, str]], count: int, envelope: int,
                                 groups: int) -> float:
    """The API's batched path: envelopes of one partition's events; returns seconds spent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                                max_request_size=8 * 1024 * 1024, max_batch_size=1024 * 1024)
    await producer.start()
    started, now = time.perf_counter(), time.time()
    try:
        pending: dict[int, list[dict]] = {p: [] for p in range(PARTITIONS)}
        sends = []
        org_id = webhooks[0][1]
        for n in range(count):
            webhook_id = webhooks[n % len(webhooks)][0]
            home = partition_for(webhook_id, PARTITIONS)
            pending[home].append(alertmanager_event(webhook_id, n, groups, now))
            if len(pending[home]) >= envelope:
                sends.append(await producer.send("webhook-events", orjson.dumps(
                    {"org_id": org_id, "events": pending[home]}), partition=home))
                pending[home] = []
        for home, events in pending.items():
            if events:
                sends.append(await producer.send("webhook-events", orjson.dumps(
                    {"org_id": org_id, "events": events}), partition=home))
        await asyncio.gather(*sends)
        return time.perf_counter() - started
    finally:
        await producer.stop()


def incident_engine(cluster: Cluster, worker) -> dict:
    return Client(worker.url).get("/internal/incident-engine", headers={"X-Pingstream-Internal": cluster.token}).body


def webhook_rate(cluster: Cluster, worker, client: Client, org_id: str,
                 args: argparse.Namespace) -> tuple[float, float, int]:
    """Alertmanager-sized events through storage, 20 rulesets and incident dedup: (events/s, signals/s, incidents)."""
    webhooks = []
    for n in range(8):
        response = client.post("/v1/webhooks", {"name": f"alertmanager {n}"})
        assert response.status == 201, response.body
        webhooks.append(response.body["data"]["id"])
    for n in range(20):  # one in two groups is critical: those open (and then repeat) incidents
        response = client.post("/v1/rulesets", {
            "rule_type": "webhook", "name": f"rule {n}", "urgency": ("low", "high")[n % 2],
            "conditions": [{"key": "commonLabels.severity", "operator": "equal", "values": ["critical"]},
                           {"key": "alerts[*].labels.job", "operator": "matches", "values": [f"^http_check{n}?s$"]},
                           {"key": "alerts[0].fingerprint", "operator": "exists"}]})
        assert response.status == 201, response.body
    before = incident_engine(cluster, worker)
    started = time.perf_counter()
    asyncio.run(produce_webhook_events(cluster.broker_url.removeprefix("kafka://"),
                                       [(w, org_id) for w in webhooks], args.webhook_events, 100, args.groups))
    wait_for("pingstream to store and judge every webhook event",
             lambda: incident_engine(cluster, worker)["webhooks"]["applied"] - before["webhooks"]["applied"]
             >= args.webhook_events, 600, interval=0.05)
    events_rate = args.webhook_events / (time.perf_counter() - started)
    wait_for("every incident signal to be applied",
             lambda: incident_engine(cluster, worker)["incidents"]["applied"] - before["incidents"]["applied"]
             >= incident_engine(cluster, worker)["webhooks"]["matched"] - before["webhooks"]["matched"], 600,
             interval=0.05)
    after = incident_engine(cluster, worker)
    signals_rate = (after["incidents"]["applied"] - before["incidents"]["applied"]) / (time.perf_counter() - started)
    total = client.get("/v1/incidents?per_page=1").body["meta"]["total"]
    return events_rate, signals_rate, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=400_000, help="results for the end-to-end run")
    parser.add_argument("--monitors", type=int, default=2_000)
    parser.add_argument("--envelope", type=int, default=500, help="results per envelope")
    parser.add_argument("--singles", type=int, default=100_000, help="messages for the raw consumer")
    parser.add_argument("--naive", type=int, default=20_000, help="messages for the naive Faust agent")
    parser.add_argument("--http-seconds", type=float, default=8.0)
    parser.add_argument("--heartbeats", type=int, default=2_000, help="heartbeats the ping benchmark cycles through")
    parser.add_argument("--ping-concurrency", type=int, default=64, help="concurrent HTTP clients sending pings")
    parser.add_argument("--deadlines", type=int, default=200, help="heartbeats that miss a deadline, to time detection")
    parser.add_argument("--webhook-events", type=int, default=40_000, help="Alertmanager events for the webhook run")
    parser.add_argument("--groups", type=int, default=2_000, help="distinct Alertmanager groups among them")
    parser.add_argument("--workers", type=int, default=1,
                        help="also measure end to end with this many workers against 1, back to back (step 6)")
    parser.add_argument("--scaling-only", action="store_true", help="run step 6 alone")
    args = parser.parse_args()
    if args.scaling_only:
        scaling(args)
        return
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="pingstream-bench-") as tmp:
        workdir = Path(tmp)
        with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
            bootstrap = broker.bootstrap
            monitors_for_singles = [f"mon_single_{n}" for n in range(args.monitors)]
            asyncio.run(create_topic(bootstrap, "bench-single"))
            asyncio.run(produce_singles(bootstrap, "bench-single", monitors_for_singles, args.singles))
            raw = asyncio.run(raw_consumer_rate(bootstrap, "bench-single", args.singles))
            print(f"raw aiokafka consumer: {raw:,.0f} msg/s", flush=True)
            naive = naive_agent_rate(broker, "bench-single", args.naive, workdir)
            print(f"naive Faust agent (1 event + 1 table write per result): {naive:,.0f} msg/s", flush=True)

            cluster, worker, api, org_id, key, client = start_cluster(broker, workdir, "bench-pingstream")
            try:
                monitors = create_monitors(client, args.monitors)
                before = worker_health(cluster, worker)["results_applied"]
                started = time.perf_counter()
                produce_seconds = asyncio.run(produce_envelopes(bootstrap, monitors, args.results, args.envelope))
                wait_for("pingstream to apply every result",
                         lambda: worker_health(cluster, worker)["results_applied"] - before >= args.results,
                         600, interval=0.05)
                e2e = args.results / (time.perf_counter() - started)
                health = worker_health(cluster, worker)
                rss = peak_rss_mb(worker.popen.pid)
                print(f"pingstream end to end: {e2e:,.0f} results/s ({args.results:,} results, "
                      f"{args.monitors:,} monitors, produced in {produce_seconds:.1f} s, "
                      f"{health['state_records_flushed']:,} state records flushed), worker peak RSS {rss:.0f} MB",
                      flush=True)

                now = time.time()
                bodies = [orjson.dumps({"results": [result(monitors[(b * 1000 + n) % len(monitors)], n, now)
                                                    for n in range(1000)]}) for b in range(8)]
                http = asyncio.run(http_rate(f"{api.url}/v1/checks", key, bodies, args.http_seconds))
                # commands share the worker's consumer with results: let it drain the ingest backlog first
                wait_for("the worker to fold the HTTP-ingested results", lambda: backlog_folded(cluster, worker), 600, 0.5)

                heartbeats = create_heartbeats(client, args.heartbeats)
                applied_before = heartbeat_pings_applied(cluster, worker)
                cpu_before = {p.name: cpu_seconds(p.popen.pid) for p in (api, worker)}
                started = time.perf_counter()
                pings, sent = asyncio.run(ping_rate([f"{api.url}/ping/{h}" for h in heartbeats], args.http_seconds,
                                                    args.ping_concurrency))
                wait_for("pingstream to apply every ping",
                         lambda: heartbeat_pings_applied(cluster, worker) - applied_before >= sent, 300, interval=0.05)
                pings_applied = sent / (time.perf_counter() - started)
                cpu_per_ping = {p.name: (cpu_seconds(p.popen.pid) - cpu_before[p.name]) / sent * 1e6
                                for p in (api, worker)}

                port = free_port()
                minimal = subprocess.Popen([sys.executable, "-c", MINIMAL_HANDLER, str(port)])
                try:
                    wait_for("the minimal handler", lambda: _answers(port), 30)
                    floor = asyncio.run(http_rate(f"http://127.0.0.1:{port}/v1/checks", None, bodies, args.http_seconds))
                    ping_floor, _ = asyncio.run(ping_rate([f"http://127.0.0.1:{port}/ping/{h}" for h in heartbeats],
                                                          args.http_seconds, args.ping_concurrency))
                finally:
                    minimal.terminate()
                    minimal.wait(10)
                print(f"HTTP POST /v1/checks: {http:,.0f} results/s; minimal aiohttp handler {floor:,.0f} results/s",
                      flush=True)
                print(f"HTTP GET /ping/<uuid>: {pings:,.0f} pings/s answered, {pings_applied:,.0f} pings/s applied "
                      f"({sent:,} pings over {args.heartbeats:,} heartbeats; CPU per ping: API "
                      f"{cpu_per_ping[api.name]:.0f} µs, worker {cpu_per_ping[worker.name]:.0f} µs); "
                      f"minimal aiohttp handler {ping_floor:,.0f} pings/s", flush=True)
                delays = detection_delays(cluster, client, args.deadlines)
                print(f"missed deadlines reported {delays[len(delays) // 2]:.2f} s (median), "
                      f"{delays[-1]:.2f} s (slowest) after the deadline ({len(delays)} heartbeats)", flush=True)

                webhooks, signals, opened = webhook_rate(cluster, worker, client, org_id, args)
                print(f"webhook events end to end: {webhooks:,.0f} events/s ({args.webhook_events:,} Alertmanager "
                      f"events, {args.groups:,} groups, 20 rulesets; {signals:,.0f} incident signals/s, "
                      f"{opened:,} incidents)", flush=True)
            finally:
                cluster.stop()
    rows = [
        ("raw aiokafka consumer (msg/s)", f"{raw:,.0f}"),
        ("naive Faust agent, 1 write per result (msg/s)", f"{naive:,.0f}"),
        ("pingstream end to end (results/s)", f"{e2e:,.0f}"),
        ("pingstream / naive agent", f"{e2e / naive:.1f}x"),
        ("pingstream / raw consumer", f"{e2e / raw:.2f}"),
        ("worker peak RSS (MB)", f"{rss:.0f}"),
        ("HTTP POST /v1/checks, batches of 1,000 (results/s)", f"{http:,.0f}"),
        ("minimal aiohttp JSON handler, same batches (results/s)", f"{floor:,.0f}"),
        ("HTTP ingest / minimal handler", f"{http / floor:.2f}"),
        (f"HTTP heartbeat pings, GET /ping/<uuid>, {args.ping_concurrency} clients (pings/s)", f"{pings:,.0f}"),
        ("  the same pings applied by the worker, end to end (pings/s)", f"{pings_applied:,.0f}"),
        ("minimal aiohttp handler answering OK, same pings (pings/s)", f"{ping_floor:,.0f}"),
        ("heartbeat pings / minimal handler", f"{pings / ping_floor:.2f}"),
        ("CPU per heartbeat ping: API process / worker process (µs)",
         f"{cpu_per_ping[api.name]:.0f} / {cpu_per_ping[worker.name]:.0f}"),
        (f"missed deadline to heartbeat.down, median / slowest of {len(delays)} (s)",
         f"{delays[len(delays) // 2]:.2f} / {delays[-1]:.2f}"),
        ("webhook events end to end, Alertmanager payloads through 20 rulesets (events/s)", f"{webhooks:,.0f}"),
        ("incident signals applied, same run (signals/s)", f"{signals:,.0f}"),
    ]
    if args.workers > 1:
        rows += scaling(args, table=False)
    print_table(rows)


def print_table(rows: list[tuple[str, str]]) -> None:
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"broker: embedded Tansu (shares the cores)\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def scaling(args: argparse.Namespace, table: bool = True) -> list[tuple[str, str]]:
    """End to end with 1 worker, then with args.workers, each on a fresh broker: the rows of both and the ratio."""
    one = end_to_end_rate(1, args)
    many = end_to_end_rate(args.workers, args)
    rows = [("pingstream end to end, 1 worker, fresh broker (results/s)", f"{one:,.0f}"),
            (f"pingstream end to end, {args.workers} workers, fresh broker (results/s)", f"{many:,.0f}"),
            (f"{args.workers} workers / 1 worker", f"{many / one:.2f}x")]
    if table:
        print_table(rows)
    return rows


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
