"""Results posted through the API while the worker is SIGKILLed again and again: are they all counted once?

An operator's test of invariant 4, run as separate processes: a broker, one
worker and the API. Check results go through `POST /v1/checks` in batches of
1,000, several batches at a time, about 1 % of them late (for an hour already
sealed), `checked_at` over the last 6 hours, for monitors in three regions.
Meanwhile the worker is SIGKILLed whenever it is busy folding and restarted at
once on the same data directory. Afterwards every monitor's uptime counts and
the organisation's `checks_last_24h` must equal what the API accepted: nothing
lost, nothing counted twice. After each restart it also measures how long the
worker took to fold again (a worker that says it is ready and folds nothing is
a stall).

`tests/integration/test_crash_exactness.py` runs a smaller one in `make test`
(with a small producer batch, a process burning CPU and heartbeat pings
beside it); `python -m bench.crash_soak` runs the full one (300,000 results,
5 kills) as often as asked.
"""
from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from tests.integration.cluster import Client, Cluster, Process, wait_for
from tests.integration.conftest import ready_client, running_cluster

REGIONS = ("eu-west", "us-east", "ap-south")
HOUR = 3600.0


@dataclass
class Outcome:
    accepted: int = 0
    counted: int = 0
    lost: int = 0
    counted_twice: int = 0
    monitors_wrong: list[str] = field(default_factory=list)
    checks_last_24h: int = 0
    kills: int = 0
    #: seconds from each restart until the new worker folded its first result
    refold_seconds: list[float] = field(default_factory=list)
    redelivered_and_skipped: int = 0
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.counted_twice == 0 and self.checks_last_24h == self.accepted

    def line(self) -> str:
        slowest = max(self.refold_seconds, default=0.0)
        return (f"accepted {self.accepted:,}, counted {self.counted:,}, lost {self.lost:,}, "
                f"counted twice {self.counted_twice:,}, checks_last_24h {self.checks_last_24h:,}, "
                f"{self.kills} kills, folding again after restart in at most {slowest:.1f} s "
                f"({', '.join(f'{s:.1f}' for s in self.refold_seconds)}), "
                f"{self.redelivered_and_skipped:,} redelivered and skipped, {self.seconds:.0f} s")


def health(worker: Process) -> dict:
    return Client(worker.url).get("/internal/health", headers=worker.internal).body


def make_batches(monitors: list[str], results: int, batch: int, rng: random.Random) -> list[list[dict]]:
    """`results` results in batches, in time order, ~1 % late by one to three hours."""
    now = time.time()
    start, span = now - 6 * HOUR, 6 * HOUR - 60
    rows = []
    for n in range(results):
        at = start + span * n / results
        if rng.random() < 0.01 and at - start > 3 * HOUR:
            at -= HOUR * rng.uniform(1, 3)
        status = "down" if rng.random() < 0.1 else "up"
        rows.append({"id": f"r{n}", "monitor_id": rng.choice(monitors), "region": rng.choice(REGIONS),
                     "status": status, "checked_at": at, "response_time_ms": float(20 + n % 300),
                     **({"cause": "timeout"} if status == "down" else {})})
    return [rows[i:i + batch] for i in range(0, len(rows), batch)]


async def post_all(url: str, key: str, batches: list[list[dict]], concurrency: int,
                   rate: float | None = None, heartbeats: list[str] = ()) -> tuple[Counter, Counter]:
    """Post every batch, at most `rate` results/s (retrying a refusal that stored nothing); accepted per monitor.

    Meanwhile `heartbeats` are pinged all the time, so another agent folds and flushes beside the checks agent.
    """
    accepted, up = Counter(), Counter()
    posting = True
    queue = list(reversed(batches))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    start, sent = time.monotonic(), 0

    async def poster(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        while queue:
            batch = queue.pop()
            if rate:
                await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
            sent += len(batch)
            body = orjson.dumps({"results": batch})
            for _ in range(600):
                async with session.post(url + "/v1/checks", data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 202:
                        for row in batch:
                            accepted[row["monitor_id"]] += 1
                            up[row["monitor_id"]] += row["status"] == "up"
                        break
                    if response.status not in (503, 429):  # 503: the owner of a partition is moving
                        raise AssertionError(f"POST /v1/checks answered {response.status}")
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("POST /v1/checks kept answering 503 for two minutes")

    async def pinger(session: aiohttp.ClientSession) -> None:
        n = 0
        while posting:
            n += 1
            async with session.get(f"{url}/ping/{heartbeats[n % len(heartbeats)]}") as response:
                await response.read()
            await asyncio.sleep(0.005)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        pinging = asyncio.ensure_future(pinger(session)) if heartbeats else None
        try:
            await asyncio.gather(*[poster(session) for _ in range(concurrency)])
        finally:
            posting = False
            if pinging is not None:
                await pinging
    return accepted, up


def kill_and_restart(cluster: Cluster, worker: Process, kills: int, busy_after: int, outcome: Outcome,
                     posting: threading.Event, rng: random.Random) -> Process:
    """SIGKILL the worker whenever it has folded `busy_after` results since it started; restart it at once."""
    for n in range(kills):
        wait_for("the worker to be busy folding",
                 lambda: health(worker)["results_applied"] >= busy_after or not posting.is_set(), 300, 0.05)
        time.sleep(rng.uniform(0, 0.5))
        worker.stop(signal.SIGKILL)
        outcome.kills += 1
        restarted_at = time.monotonic()
        worker = cluster.start_worker(f"worker-0-life-{n + 2}", port=worker.port)  # same port: same data dir
        wait_for("the restarted worker to fold again (a stall if not)",
                 lambda: health(worker)["results_applied"] + health(worker)["results_redelivered_and_skipped"] > 0,
                 120, 0.1)
        outcome.refold_seconds.append(time.monotonic() - restarted_at)
    return worker


def scenario(root: Path, *, results: int = 300_000, monitors: int = 200, kills: int = 5, batch: int = 1000,
             concurrency: int = 4, seed: int = 0, env: dict[str, str] | None = None,
             seconds_per_kill: float = 15.0, heartbeats: int = 10, count_within: float = 180) -> Outcome:
    """One run; `env`: more PINGSTREAM_* settings for the processes (e.g. a small producer batch).

    Posting is paced to last about `seconds_per_kill` per kill, so every restart meets a backlog; what is
    not counted `count_within` seconds after the last post is reported as lost.
    """
    rng = random.Random(seed)
    outcome = Outcome()
    started = time.monotonic()
    settings = {"PINGSTREAM_COMMIT_INTERVAL": "3", **(env or {})}
    with running_cluster(root, workers=1, env=settings) as cluster:
        _, key = cluster.new_org()
        api = ready_client(cluster, key)
        ids = []
        for n in range(monitors):
            # checked once a day: the last 6 hours' results, posted at once, leave no region stale, so the
            # state changes are exactly what the results imply
            created = api.post("/v1/monitors", {"name": f"soak {n}", "url": "https://example.com",
                                                "regions": list(REGIONS), "interval_seconds": 86400})
            assert created.status == 201, created.body
            ids.append(created.body["data"]["id"])
        pinged = []
        for n in range(heartbeats):
            created = api.post("/v1/heartbeats", {"name": f"soak {n}", "interval": 60, "grace": 60})
            assert created.status == 201, created.body
            pinged.append(created.body["data"]["id"])
        batches = make_batches(ids, results, batch, rng)
        api_url = next(p for p in cluster.processes if p.name.startswith("api")).url
        worker = next(p for p in cluster.processes if p.name == "worker-0")
        posting = threading.Event()
        posting.set()
        killer_result: list[Process | BaseException] = []

        def killer() -> None:
            try:
                busy_after = max(1, results // (kills + 1) // 3)
                killer_result.append(kill_and_restart(cluster, worker, kills, busy_after, outcome, posting, rng))
            except BaseException as exc:  # reported by the main thread
                killer_result.append(exc)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            accepted, up = asyncio.run(post_all(api_url, key, batches, concurrency,
                                                rate=results / (max(1, kills) * seconds_per_kill),
                                                heartbeats=pinged))
        finally:
            posting.clear()
        thread.join(600)
        last = killer_result[0] if killer_result else None
        if isinstance(last, BaseException):
            raise last
        worker = last or worker
        outcome.accepted = sum(accepted.values())

        def uptime(mid: str) -> dict:
            return api.get(f"/v1/monitors/{mid}/uptime?period=24h").body["data"]

        try:
            wait_for("every accepted result to be counted",
                     lambda: sum(uptime(mid)["total_checks"] for mid in ids) >= outcome.accepted, count_within, 1.0)
        except AssertionError:
            pass  # what is missing by then is lost: counted below
        for mid in ids:
            stats = uptime(mid)
            got, want = stats["total_checks"], accepted[mid]
            outcome.counted += got
            outcome.lost += max(0, want - got)
            outcome.counted_twice += max(0, got - want)
            if (got, stats["up_checks"]) != (want, up[mid]):
                outcome.monitors_wrong.append(mid)
        outcome.checks_last_24h = api.get("/v1/account/usage").body["data"]["checks_last_24h"]
        outcome.redelivered_and_skipped = health(worker)["results_redelivered_and_skipped"]
    outcome.seconds = time.monotonic() - started
    return outcome


