"""pingstream's command line: `up`, `worker`, `api`, `probe`, `bootstrap`, `plan`, `status`.

Every process is configured by the same PINGSTREAM_* environment (engine/settings.py).
This is the composition root: the worker is built from the components agents/ lists,
with the public API (api/) mounted on its server.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import orjson

from engine.settings import Settings, SettingsError
from tables.plans import PLANS

log = logging.getLogger("pingstream")


def tune_gc() -> None:
    """Collect young objects every 50,000 allocations instead of 700.

    Folding a result allocates a few short-lived objects; with CPython's default
    threshold the collector runs so often that folding is ~1.3x slower
    (`python -m bench.fold` measures both in one run). A probe's in-flight checks
    outlive young collections, so with the default it also ran a full collection
    about every second, each stopping every check for tens of ms (hundreds on a
    busy machine). Reference cycles are rare here, so memory stays flat.
    """
    gc.set_threshold(50_000, 50, 100)


def run_worker(settings: Settings) -> None:
    """A worker serving every feature's owner reads, with the public API mounted beside them."""
    from faust.worker import Worker

    from agents import build_worker
    from api.app import create_app
    from api.gateway import Gateway
    from engine import deployment, topics

    running = asyncio.run(deployment.joinable(settings, "worker"))
    topics.use_generation(running.generation)
    api_settings, settings = settings, deployment.generation_settings(settings, running)
    asyncio.run(topics.ensure_topics(settings))
    tune_gc()
    engine = build_worker(settings, public_app=lambda: create_app(Gateway(api_settings)))
    engine.app.service(deployment.watch_as_worker(engine.app, running, settings))
    Worker(engine.app, loglevel=os.environ.get("PINGSTREAM_LOG_LEVEL", "warning"),
           redirect_stdouts=False).execute_from_commandline()


def run_api(settings: Settings) -> None:
    from aiohttp import web

    from api.app import create_app
    from api.gateway import Gateway
    from engine.topics import ensure_topics

    asyncio.run(ensure_topics(settings))
    tune_gc()
    web.run_app(create_app(Gateway(settings)), host=settings.api_host, port=settings.api_port,
                access_log=None, print=lambda *_: None)


def run_probe(settings: Settings, region: str) -> None:
    from engine.topics import ensure_topics
    from probe.runner import run_probe as probe

    asyncio.run(ensure_topics(settings))
    tune_gc()
    probe(settings, region)


def run_bootstrap(settings: Settings, org_name: str, plan: str) -> None:
    from engine.access import bootstrap
    from engine.topics import ensure_topics

    async def go() -> tuple[dict, str]:
        await ensure_topics(settings)
        return await bootstrap(settings, org_name, plan)

    team, secret = asyncio.run(go())
    print(f"team {team['id']} ({team['name']}, plan {team['plan']})")
    print(f"admin API key (shown once; it works once a worker has applied it): {secret}")


def run_plan(settings: Settings, org_id: str, plan: str) -> None:
    """Move a team to another plan (an operator's action: there is no billing here)."""
    from aiokafka import AIOKafkaProducer

    from engine import deployment, topics
    from engine.access import command
    from engine.partitioning import entity_key, partition_for

    async def go() -> None:
        current = await deployment.current(settings)
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
        await producer.start()
        try:
            message = command("team.update", org_id, {"plan": plan})
            await producer.send_and_wait(topics.COMMANDS, orjson.dumps(message), key=entity_key(org_id),
                                         partition=partition_for(org_id, current.partitions))
        finally:
            await producer.stop()

    asyncio.run(go())
    print(f"team {org_id} moves to plan {plan}")


def run_rescale(settings: Settings, partitions: int, drain_timeout: float) -> None:
    """Move the deployment to `partitions` partitions (engine/rescale.py), saying what happens as it goes."""
    from engine.rescale import RescaleError, rescale

    def say(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    try:
        asyncio.run(rescale(settings, partitions, say=say, drain_timeout=drain_timeout))
    except RescaleError as exc:
        raise SystemExit(f"pingstream: {exc}") from None


def run_status(settings: Settings, interval: float, as_json: bool) -> None:
    """Workers, probes, partition owners, lag and rates, read from the broker and the workers' /metrics."""
    from aiokafka.errors import KafkaConnectionError

    from pingstream.status import gather_status, render

    try:
        status = asyncio.run(gather_status(settings, interval))
    except KafkaConnectionError:
        raise SystemExit(f"pingstream: no broker answers at {settings.broker}; is the deployment up?") from None
    print(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode() if as_json else render(status))


def wait_ok(url: str, processes: list[subprocess.Popen], deadline: float, what: str,
            headers: dict[str, str] | None = None) -> None:
    """Until `url` answers 200; stops early when one of `processes` exits."""
    request = urllib.request.Request(url, headers=headers or {})
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(f"a pingstream process exited with {process.returncode}; see its log")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"pingstream: {what} at {url} in time; see the logs")


def write_private(path, text: str) -> None:
    """Write a file only its owner can read: created with mode 0600, never readable by others for a moment."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


def stored_secret(data_dir, name: str) -> str:
    """A random secret kept in the data directory (mode 0600), so it outlives a restart of `up`."""
    path = data_dir / name
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


RESTART_WINDOW = 60.0      # seconds: `up` starts a process that died again, unless it died this often in them
RESTARTS_PER_WINDOW = 5


def worker_roles(settings: Settings, workers: int) -> list[tuple[str, list[str], dict[str, str]]]:
    """`workers` workers, each on its own port from worker_port on (its data directory is named by it)."""
    if workers == 1:
        return [("worker", ["worker"], {})]
    return [(f"worker-{n}", ["worker"], {"PINGSTREAM_WORKER_PORT": str(settings.worker_port + n)})
            for n in range(workers)]


def run_up(settings: Settings, workers: int = 1) -> None:
    """Broker (embedded unless PINGSTREAM_BROKER is set), `workers` workers and the API, in the foreground."""
    from engine.broker import BrokerError, EmbeddedBroker
    from engine.local_s3 import LocalS3Error

    data_dir = settings.data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not env.get("PINGSTREAM_INTERNAL_TOKEN"):
        env["PINGSTREAM_INTERNAL_TOKEN"] = stored_secret(data_dir, "internal-token")
    if not env.get("PINGSTREAM_JWT_SECRET"):
        env["PINGSTREAM_JWT_SECRET"] = stored_secret(data_dir, "jwt-secret")
    if not env.get("PINGSTREAM_SECRETS_KEY"):
        env["PINGSTREAM_SECRETS_KEY"] = stored_secret(data_dir, "secrets-key")
    broker = None
    resumed = False  # the embedded broker comes back with the data of the last `up`
    key_file = data_dir / "admin-key"
    if not settings.broker:
        durable = settings.embedded_storage == "durable"
        broker_dir, last_storage = data_dir / "broker", data_dir / "embedded-storage"
        resumed = durable and broker_dir.is_dir() and last_storage.exists() and last_storage.read_text() == "durable"
        if not resumed:
            for stale in data_dir.glob("worker-*"):
                shutil.rmtree(stale)  # the broker starts empty (or without them): old table state would not match
        broker = EmbeddedBroker(log_path=logs / "broker.log", storage_dir=broker_dir if durable else None)
        try:
            broker.start()
        except (BrokerError, LocalS3Error) as exc:
            raise SystemExit(f"pingstream: the embedded broker did not start: {exc}") from None
        last_storage.write_text(settings.embedded_storage)
        env["PINGSTREAM_BROKER"] = broker.url
        env["PINGSTREAM_BROKER_KIND"] = "tansu"
        (data_dir / "broker-url").write_text(broker.url + "\n")  # `pingstream status` finds it there
    settings = Settings.from_env(env)
    try:
        settings.require_secrets()
    except SettingsError as exc:
        raise SystemExit(f"pingstream: {exc}") from None
    processes: list[subprocess.Popen] = []
    try:
        from engine.access import bootstrap
        from engine.topics import ensure_topics

        async def prepare() -> str:
            await ensure_topics(settings)
            if resumed and key_file.exists():
                return key_file.read_text().strip()  # its team and key are in the broker's data already
            secret = (await bootstrap(settings))[1]
            write_private(key_file, secret + "\n")
            return secret

        secret = asyncio.run(prepare())
        regions = [region.strip() for region in settings.probe_regions.split(",") if region.strip()]
        roles = worker_roles(settings, workers) + [("api", ["api"], {})]
        roles += [(f"probe-{region}", ["probe", "--region", region],  # one metrics port each
                   {"PINGSTREAM_PROBE_PORT": str(settings.probe_port + n) if settings.probe_port else "0"})
                  for n, region in enumerate(regions)]
        def spawn(name: str, argv: list[str], own_env: dict[str, str]) -> subprocess.Popen:
            with open(logs / f"{name}.log", "ab") as out:
                return subprocess.Popen([sys.executable, "-m", "pingstream.cli", *argv],
                                        env={**env, **own_env}, stdout=out, stderr=subprocess.STDOUT)

        processes.extend(spawn(*role) for role in roles)
        api = f"http://{settings.api_host}:{settings.api_port}"
        wait_ok(f"{api}/v1/health-check", processes, time.monotonic() + 120, "the API did not become healthy")
        if not resumed:  # a resumed key was working, unless someone revoked it since: no reason to wait on it
            wait_ok(f"{api}/v1/account", processes, time.monotonic() + 60, "the admin key did not start working",
                    {"Authorization": f"Bearer {secret}"})
        if broker is None:
            kept = ""
        elif broker.durable:
            kept = f"  (embedded, data in {data_dir / 'broker'}/, kept across restarts{'; resumed' if resumed else ''})"
        else:
            kept = "  (embedded, in memory: data is gone when this stops)"
        print(f"""
pingstream is up.
  API           {api}   (OpenAPI: {api}/v1/openapi.json)
  broker        {settings.broker}{kept}
  workers       {', '.join(f"http://{settings.worker_host}:{settings.worker_port + n}" for n in range(workers))}
                (`pingstream status` shows their partitions, lag and rates)
  probes        {', '.join(regions) or 'none'}  (regions; PINGSTREAM_PROBE_REGIONS=a,b for more)
  admin API key {secret}
                ({'made on the first start, unless revoked since; ' if resumed else 'shown once; also '}saved to {key_file})
  try           curl -H "Authorization: Bearer $(cat {key_file})" {api}/v1/monitors
  mail          {f"via {settings.smtp_host}" if settings.smtp_host else f"{data_dir / 'outbox'}/  (sign-up codes, invitations: no PINGSTREAM_SMTP_HOST set)"}
  logs          {logs}/
Ctrl-C stops everything; a process that dies is started again.
""", flush=True)
        stop = False

        def on_signal(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        restarts: dict[str, list[float]] = {}
        while not stop:
            for n, process in enumerate(processes):  # a process that dies is started again, as a supervisor would
                if process.poll() is None:
                    continue
                name, now = roles[n][0], time.monotonic()
                recent = restarts[name] = [at for at in restarts.get(name, []) if at > now - RESTART_WINDOW] + [now]
                if len(recent) > RESTARTS_PER_WINDOW:
                    raise SystemExit(f"pingstream: {name} exited {len(recent)} times within {RESTART_WINDOW:g} s "
                                     f"(last with {process.returncode}); see {logs / name}.log")
                log.warning("%s exited with %s; starting it again (its log: %s)", name, process.returncode,
                            logs / f"{name}.log")
                processes[n] = spawn(*roles[n])
            if broker is not None and not broker.running:
                if not broker.durable:
                    raise SystemExit("pingstream: the embedded broker exited, and its data with it; see "
                                     f"{logs / 'broker.log'}")
                log.warning("the embedded broker exited; starting it again on %s with its data", broker.url)
                broker.restart()
            time.sleep(0.5)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if broker is not None:
            broker.stop()
            (data_dir / "broker-url").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pingstream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start broker (embedded unless PINGSTREAM_BROKER), workers and the API")
    up.add_argument("--workers", type=int, default=1,
                    help="workers to start, on ports from PINGSTREAM_WORKER_PORT on (at most PINGSTREAM_PARTITIONS "
                         "share the load); default 1")
    commands.add_parser("worker", help="run one stream-processing worker")
    commands.add_parser("api", help="run the stateless HTTP API")
    probe = commands.add_parser("probe", help="run a probe: check the monitors of a region, on schedule")
    probe.add_argument("--region", default="default",
                       help="the region this probe checks from (lowercase letters, digits, '-'); default: default")
    boot = commands.add_parser("bootstrap", help="create an organisation and print its admin API key")
    boot.add_argument("--org-name", default="Default organisation")
    boot.add_argument("--plan", default="self-hosted", choices=sorted(PLANS))
    plan = commands.add_parser("plan", help="move a team to another plan")
    plan.add_argument("org_id")
    plan.add_argument("plan", choices=sorted(PLANS))
    status = commands.add_parser("status", help="workers, probes, partition owners, lag and rates")
    status.add_argument("--interval", type=float, default=1.0,
                        help="seconds between the two scrapes records/s are measured over (default 1)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    rescale = commands.add_parser("rescale", help="move the running deployment to another partition count")
    rescale.add_argument("--partitions", type=int, required=True,
                         help="the partition count to move to (run again with the same count to finish a move "
                              "that was interrupted)")
    rescale.add_argument("--drain-timeout", type=float, default=600.0,
                         help="seconds to wait for the workers to fold what is left in the old topics (default 600)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("PINGSTREAM_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"pingstream: {exc}") from None
    embedded = settings.data_dir / "broker-url"
    if args.command in ("status", "rescale") and not settings.broker and embedded.exists():  # `up`'s broker
        settings = Settings.from_env({**os.environ, "PINGSTREAM_BROKER": embedded.read_text().strip()})
    if args.command != "up" and not settings.broker:
        raise SystemExit("pingstream: set PINGSTREAM_BROKER=kafka://host:port (or use `pingstream up`)")
    try:
        if args.command in ("worker", "api"):
            settings.require_secrets()  # `up` makes and stores its own
    except SettingsError as exc:
        raise SystemExit(f"pingstream: {exc}") from None
    if args.command == "probe":
        from schemas.monitor import REGION

        if not REGION.match(args.region):
            raise SystemExit(f"pingstream: --region {args.region!r} is not a region code (lowercase letters, "
                             "digits and '-', e.g. eu-west)")
        run_probe(settings, args.region)
    elif args.command == "bootstrap":
        run_bootstrap(settings, args.org_name, args.plan)
    elif args.command == "plan":
        run_plan(settings, args.org_id, args.plan)
    elif args.command == "status":
        run_status(settings, args.interval, args.json)
    elif args.command == "rescale":
        run_rescale(settings, args.partitions, args.drain_timeout)
    elif args.command == "up":
        if not 1 <= args.workers <= settings.partitions:
            raise SystemExit(f"pingstream: --workers must be between 1 and PINGSTREAM_PARTITIONS "
                             f"({settings.partitions}): more workers than partitions would stand idle")
        run_up(settings, args.workers)
    else:
        {"worker": run_worker, "api": run_api}[args.command](settings)


if __name__ == "__main__":
    main()
