"""Real pingstream processes for integration tests: broker, workers and API on 127.0.0.1."""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.access import bootstrap
from engine.broker import free_port
from engine.settings import Settings
from tables.access import ALL_SCOPES

ROOT = Path(__file__).resolve().parents[2]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the thing we wait for may not answer yet
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last error: {last_error!r})")


def _burn(until: float) -> None:
    while time.time() < until:
        pass


@contextmanager
def cpu_burners(processes: int, seconds: float = 1800) -> Iterator[None]:
    """Processes that keep cores busy beside a test, as other tenants of a machine do; stopped on exit."""
    until = time.time() + seconds  # they stop by themselves even if nobody ends them
    burners = [multiprocessing.Process(target=_burn, args=(until,), daemon=True) for _ in range(processes)]
    for burner in burners:
        burner.start()
    try:
        yield
    finally:
        for burner in burners:
            burner.terminate()
            burner.join(5)


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


class Client:
    """A tiny HTTP client speaking to the API the way curl or a script would."""

    def __init__(self, base: str, key: str | None = None) -> None:
        self.base, self.key = base, key

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.key:
            request.add_header("Authorization", f"Bearer {self.key}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload, status, got = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            payload, status, got = error.read(), error.code, dict(error.headers)
        return Response(status, json.loads(payload) if payload else None, got)

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path
    port: int
    #: what its /internal/ routes require: the cluster's internal token
    internal: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@dataclass
class Cluster:
    """Workers and an API against one broker; everything listens on 127.0.0.1."""

    broker_url: str
    on_tansu: bool
    root: Path
    partitions: int = 4
    app_id: str = "pingstream-test"
    processes: list[Process] = field(default_factory=list)
    #: strong, separate secrets, as processes refuse to start without them
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    secrets_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    #: more PINGSTREAM_* settings for every process started from now on (e.g. SMTP)
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGSTREAM_")}
        env.update({
            "PINGSTREAM_BROKER": self.broker_url,
            "PINGSTREAM_BROKER_KIND": "tansu" if self.on_tansu else "kafka",
            "PINGSTREAM_APP_ID": self.app_id,
            "PINGSTREAM_PARTITIONS": str(self.partitions),
            "PINGSTREAM_DATA_DIR": str(self.root),
            "PINGSTREAM_SESSION_TIMEOUT": "6",
            "PINGSTREAM_HEARTBEAT_INTERVAL": "0.5",
            "PINGSTREAM_INTERNAL_TOKEN": self.token,
            "PINGSTREAM_JWT_SECRET": self.jwt_secret,
            "PINGSTREAM_SECRETS_KEY": self.secrets_key,
            "PINGSTREAM_IP_RATE_LIMIT": "100000",
            "PINGSTREAM_REQUEST_TIMEOUT": "30",
            # the tests' receivers listen on 127.0.0.1, which outbound requests may not reach by default
            "PINGSTREAM_OUTBOUND_ALLOW": "127.0.0.0/8,::1",
            "PINGSTREAM_LOG_LEVEL": "info",
            # pages may escalate and repeat every 2 s here, so tests need not wait a minute
            "PINGSTREAM_PAGE_MIN_DELAY": "2",
            "PINGSTREAM_PAGE_MIN_REPEAT": "2",
            "PYTHONPATH": str(ROOT),
        })
        env.update(self.extra_env)
        env.update(extra)
        return env

    async def records(self, topic: str) -> list[dict]:
        """Every record of a keyed topic, as JSON, read from its start until it has no more."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=self.broker_url.removeprefix("kafka://"), group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(self.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            found = []
            while batch := await consumer.getmany(timeout_ms=500):
                found += [json.loads(r.value) for records in batch.values() for r in records]
            return found
        finally:
            await consumer.stop()

    def settings(self) -> Settings:
        return Settings.from_env(self.env())

    def _spawn(self, role: str, name: str, port: int, *args: str, **extra: str) -> Process:
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen([sys.executable, "-m", "pingstream.cli", role, *args], cwd=ROOT,
                                     env=self.env(**extra), stdout=out, stderr=subprocess.STDOUT)
        process = Process(name, popen, log, port, {"X-Pingstream-Internal": self.token})
        self.processes.append(process)
        return process

    def start_worker(self, name: str = "worker", port: int | None = None) -> Process:
        port = port or free_port()
        return self._spawn("worker", name, port, PINGSTREAM_WORKER_PORT=str(port))

    def start_api(self, name: str = "api", port: int | None = None, **env: str) -> Process:
        """An API process (on `port`, e.g. a dead one's); `env`: PINGSTREAM_* settings of its own."""
        port = port or free_port()
        return self._spawn("api", name, port, PINGSTREAM_API_PORT=str(port), **env)

    def start_probe(self, region: str = "default", name: str | None = None) -> Process:
        """A probe checking the monitors of `region`; its port serves its /metrics."""
        port = free_port()
        return self._spawn("probe", name or f"probe-{region}", port, "--region", region,
                           PINGSTREAM_PROBE_PORT=str(port))

    def wait_serving(self, process: Process, timeout: float = 90) -> None:
        """Until every partition has an owner, as seen through `process`'s health check."""
        def healthy() -> bool:
            if not process.alive():
                raise AssertionError(f"{process.name} exited:\n{process.log_tail()}")
            return Client(process.url).get("/v1/health-check").status == 200
        try:
            wait_for(f"{process.name} to serve every partition", healthy, timeout, interval=0.25)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {process.name} log ---\n{process.log_tail()}") from None

    def new_org(self, scopes: tuple[str, ...] = ALL_SCOPES, name: str = "test org",
                plan: str = "self-hosted") -> tuple[str, str]:
        """A fresh team (organisation) and a key for it, as `pingstream bootstrap` makes them.

        Returns (org_id, secret) once the key works. The plan defaults to the
        operator's (limits out of the way); tests of plan limits pass one.
        """
        team, secret = asyncio.run(bootstrap(self.settings(), name, plan, scopes))
        client = self.client(secret)
        wait_for("the new team's key to work", lambda: client.get("/v1/account").status in (200, 403), 60)
        return team["id"], secret

    def client(self, key: str | None, via: Process | None = None) -> Client:
        apis = [p for p in self.processes if p.name.startswith("api")]
        via = via or (apis or self.processes)[0]  # workers serve the API too
        return Client(via.url, key)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
