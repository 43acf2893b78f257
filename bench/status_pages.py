"""`python -m bench.status_pages`: a status page of 100 components served by one API process, in one run.

A real cluster (embedded broker, one worker, one API process): a page of
COMPONENTS components (a fifth of them showing monitors that have results, two
open incidents), created through the API and kept live by the worker. Then,
from one client process with CONCURRENCY keep-alive connections, for SECONDS
each, rounds alternating:

1. a minimal aiohttp handler (its own process) answering the very bytes the page is
   served as (gzipped, as to any browser): the floor;
2. GET /s/{subdomain}: the HTML page, server-rendered;
3. GET /s/{subdomain}/api/v2/summary.json: Statuspage's summary.

Reported: requests/s and p50/p99 latency of each (best round), and the ratio
to the floor. The client shares the machine's cores with the server.
"""
from __future__ import annotations

import argparse
import gzip
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.run import ROOT, _answers, start_cluster
from engine.broker import EmbeddedBroker, free_port
from tests.integration.cluster import wait_for

MINIMAL_PAGE = """
import sys
from aiohttp import web
body = open(sys.argv[2], "rb").read()
async def page(request):
    return web.Response(body=body, headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip",
                                            "Vary": "Accept-Encoding"})
app = web.Application()
app.router.add_get("/page", page)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


async def load(url: str, seconds: float, concurrency: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of GET `url` from `concurrency` connections for `seconds`."""
    latencies: list[float] = []
    clock = time.perf_counter
    # as a browser cache or CDN would: the bytes taken as sent, not inflated by this client on every request
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), auto_decompress=False,
                                     headers={"Accept-Encoding": "gzip"}) as session:
        async def one_client(until: float) -> None:
            while clock() < until:
                started = clock()
                async with session.get(url) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(clock() - started)

        await asyncio.gather(*[one_client(clock() + 0.5) for _ in range(concurrency)])  # warm up
        latencies.clear()
        started = clock()
        await asyncio.gather(*[one_client(started + seconds) for _ in range(concurrency)])
        elapsed = clock() - started
    latencies.sort()
    return (len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000,
            latencies[int(len(latencies) * 0.99)] * 1000)


def build_page(client, components: int, monitors: int) -> str:
    now = time.time()
    monitor_ids = []
    for n in range(monitors):
        created = client.post("/v1/monitors", {"name": f"service {n}", "url": f"https://example.com/{n}",
                                               "regions": []})
        assert created.status == 201, created.body
        monitor_ids.append(created.body["data"]["id"])
        results = [{"monitor_id": monitor_ids[-1], "status": "down" if (n + day) % 17 == 0 else "up",
                    "checked_at": now - day * 86400 - 60} for day in range(90)]
        assert client.post("/v1/checks", {"results": results}).status == 202
    specs = [{"name": f"Component <{n}>", "group": f"Group {n // 10}", "description": f"what component {n} does",
              **({"monitor_id": monitor_ids[n]} if n < monitors else {})} for n in range(components)]
    page = client.post("/v1/status-pages", {"name": "Bench", "subdomain": f"bench-{int(now)}", "components": specs})
    assert page.status == 201, page.body
    for name, impact in (("Slow checkout", "minor"), ("Search down", "major")):
        component = page.body["data"]["components"][monitors + len(name) % 10]["id"]
        opened = client.post("/v1/incidents", {"name": name, "impact": impact, "component_ids": [component],
                                               "actions": []})
        assert opened.status == 201, opened.body
    return page.body["data"]["subdomain"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--monitors", type=int, default=20, help="components that show a monitor")
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pingstream-bench-pages-") as tmp, \
            EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker:
        cluster, _, api, _, _, client = start_cluster(broker, Path(tmp), "bench-status-pages")
        minimal = None
        try:
            subdomain = build_page(client, args.components, args.monitors)

            def ready() -> bool:
                got = client.request("GET", f"/s/{subdomain}/api/v2/summary.json")
                return bool(got.body and len(got.body["incidents"]) == 2
                            and sum(c["status"] != "operational" for c in got.body["components"]) >= 2)
            wait_for("the page with its incidents", ready, 30)
            import urllib.request
            request = urllib.request.Request(f"{api.url}/s/{subdomain}", headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request) as response:
                assert response.headers["Content-Encoding"] == "gzip"
                served = response.read()
            html = gzip.decompress(served)
            body_file = Path(tmp) / "page.html.gz"
            body_file.write_bytes(served)  # the minimal handler answers the very bytes the page is served as
            port = free_port()
            minimal = subprocess.Popen([sys.executable, "-c", MINIMAL_PAGE, str(port), str(body_file)], cwd=ROOT)
            wait_for("the minimal handler", lambda: _answers(port), 30)
            urls = {"minimal aiohttp handler (same bytes)": f"http://127.0.0.1:{port}/page",
                    "GET /s/{subdomain} (HTML)": f"{api.url}/s/{subdomain}",
                    "GET /s/{subdomain}/api/v2/summary.json": f"{api.url}/s/{subdomain}/api/v2/summary.json"}
            best: dict[str, tuple[float, float, float]] = {}
            for _ in range(args.rounds):
                for name, url in urls.items():
                    measured = asyncio.run(load(url, args.seconds, args.concurrency))
                    if name not in best or measured[0] > best[name][0]:
                        best[name] = measured
            print(f"a page of {args.components} components ({args.monitors} showing monitors, 2 open incidents): "
                  f"HTML {len(html):,} bytes, {len(served):,} gzipped; {args.concurrency} connections, best of {args.rounds} x "
                  f"{args.seconds:g} s\n")
            floor = best["minimal aiohttp handler (same bytes)"][0]
            print("| what | requests/s | p50 ms | p99 ms | vs minimal |\n|---|---|---|---|---|")
            for name, (rate, p50, p99) in best.items():
                print(f"| {name} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {rate / floor:.2f}x |")
        finally:
            if minimal is not None:
                minimal.terminate()
                minimal.wait(10)
            cluster.stop()


if __name__ == "__main__":
    main()
