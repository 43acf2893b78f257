"""How many checks a second does one probe process run, against the bare client it is built on?

A target server runs in another process (an aiohttp app for HTTP, an asyncio
listener that accepts and closes for TCP). Each measurement runs `--checks`
checks with `--concurrency` in flight:

1. HTTP through run_check (fresh connection per check, phase timings, conditions)
2. the ceiling: a bare aiohttp loop, same concurrency, fresh connections too
   (what a check must pay: a monitor measures connect every time)
3. for reference: the bare aiohttp loop reusing keep-alive connections
4. TCP connect through run_check, and a bare asyncio.open_connection loop

    python -m bench.probe_checks [--checks 5000] [--concurrency 100]
"""
from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp

from probe import ProbeSession, run_check


def serve() -> None:
    """The target process: prints its two ports, serves until stdin closes."""
    from aiohttp import web

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", lambda request: web.Response(text='{"status": "ok"}',
                                                             content_type="application/json"))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()

        async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        listener = await asyncio.start_server(close_at_once, "127.0.0.1", 0, backlog=4096)
        print(site._server.sockets[0].getsockname()[1], listener.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


async def rate(checks: int, concurrency: int, one: Callable[[], Awaitable[bool]]) -> tuple[float, int]:
    """(checks per second, failures) of `checks` calls of `one`, `concurrency` at a time."""
    left = checks
    failures = 0

    async def worker() -> None:
        nonlocal left, failures
        while left > 0:
            left -= 1
            if not await one():
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return checks / (time.perf_counter() - started), failures


async def measure(http_port: int, tcp_port: int, checks: int, concurrency: int,
                  rounds: int) -> dict[str, tuple[float, int]]:
    """Each contender `rounds` times, taking turns (other work on the machine hits all alike); the best round."""
    url = f"http://127.0.0.1:{http_port}/"
    http_spec = {"name": "bench", "url": url, "timeout_seconds": 30,
                 "conditions": [{"type": "json_path", "key": "status", "operator": "equal", "values": ["ok"]}]}
    tcp_spec = {"name": "bench", "type": "tcp", "host": "127.0.0.1", "port": tcp_port, "timeout_seconds": 30}
    async with ProbeSession(max_connections=concurrency * 2) as session, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2, force_close=True)) as fresh, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2)) as keep_alive:

        async def probe_http() -> bool:
            return (await run_check(http_spec, session)).up

        async def probe_tcp() -> bool:
            return (await run_check(tcp_spec, session)).up

        def bare(client: aiohttp.ClientSession) -> Callable[[], Awaitable[bool]]:
            async def bare_http() -> bool:
                async with client.get(url) as response:
                    await response.read()
                    return response.status == 200
            return bare_http

        async def bare_tcp() -> bool:
            _, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
            writer.close()
            return True

        contenders = {"http run_check": probe_http, "http bare aiohttp, fresh connections": bare(fresh),
                      "http bare aiohttp, keep-alive": bare(keep_alive),
                      "tcp run_check": probe_tcp, "tcp bare asyncio": bare_tcp}
        for one in contenders.values():   # warm up
            await rate(min(300, checks), concurrency, one)
        found: dict[str, tuple[float, int]] = {}
        for _ in range(rounds):
            for label, one in contenders.items():
                measured = await rate(checks, concurrency, one)
                if label not in found or measured[0] > found[label][0]:
                    found[label] = measured
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    target = subprocess.Popen([sys.executable, "-m", "bench.probe_checks", "--serve"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        http_port, tcp_port = (int(port) for port in target.stdout.readline().split())
        found = asyncio.run(measure(http_port, tcp_port, args.checks, args.concurrency, args.rounds))
    finally:
        target.stdin.close()
        target.wait(10)
    print(f"{args.checks:,} checks each, {args.concurrency} in flight, best of {args.rounds} rounds; "
          "target server in another process")
    for label, (per_second, failures) in found.items():
        print(f"  {label:40s} {per_second:8,.0f} checks/s" + (f"  ({failures} failed)" if failures else ""))
    for probe, ceiling in (("http run_check", "http bare aiohttp, fresh connections"),
                           ("http run_check", "http bare aiohttp, keep-alive"),
                           ("tcp run_check", "tcp bare asyncio")):
        print(f"  {probe} / {ceiling}: {found[probe][0] / found[ceiling][0]:.2f}")


if __name__ == "__main__":
    main()
