"""Probes check monitors themselves: from two regions, on schedule, through the broker, shared and failed over.

Real processes throughout: a broker, a worker, the API, probe processes, and
targets on 127.0.0.1 that the test starts and stops.
"""
from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from tests.integration.cluster import Client, Cluster, Process, free_port, wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.probes.test_dns import Nameserver
from tests.probes.test_mail import Greeter
from tests.probes.test_sockets import Echo

INTERVAL = 10   # the shortest a monitor may have


class Target:
    """A target of every monitor type on 127.0.0.1, served from a thread, that the test can stop.

    http, tcp, udp (echo), dns (a nameserver answering up.pingstream.test), smtp
    (aiosmtpd), pop and imap (greeters); icmp needs only 127.0.0.1 itself.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.ports: dict[str, int] = {}
        self.closers: list = []

    def start(self) -> Target:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        smtp = Controller(object(), hostname="127.0.0.1", port=free_port(), ident="pingstream-test ESMTP")
        smtp.start()
        self.ports["smtp"], self.smtp = smtp.port, smtp
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", lambda _: web.json_response({"status": "ok", "service": "pinghome"}))
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        self.ports["http"] = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.ports["http"]).start()
        loop = asyncio.get_running_loop()
        for kind, protocol in (("udp", Echo), ("dns", Nameserver)):
            transport, _ = await loop.create_datagram_endpoint(protocol, local_addr=("127.0.0.1", 0))
            self.ports[kind] = transport.get_extra_info("sockname")[1]
            self.closers.append(transport.close)
        for kind, greeting in (("tcp", b"pingstream-test ready\r\n"), ("pop", b"+OK POP3 pingstream-test ready\r\n"),
                               ("imap", b"* OK [CAPABILITY IMAP4rev1] pingstream-test ready\r\n")):
            server = await asyncio.start_server(Greeter(greeting, None, {}).serve, "127.0.0.1", 0)
            self.ports[kind] = server.sockets[0].getsockname()[1]
            self.closers.append(server.close)

    def stop(self) -> None:
        async def stop_all() -> None:
            for close in self.closers:
                close()
            await self.runner.cleanup()
        asyncio.run_coroutine_threadsafe(stop_all(), self.loop).result(10)
        self.smtp.stop()
        self.closers = []

    def close(self) -> None:
        if self.closers:
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def monitors(self) -> dict[str, dict]:
        """A monitor of every type, pointed at this target."""
        local = {"host": "127.0.0.1"}
        return {
            "http": {"url": f"http://127.0.0.1:{self.ports['http']}/health",
                     "conditions": [{"type": "keyword", "operator": "contains", "values": ["pinghome"]}]},
            "tcp": {**local, "port": self.ports["tcp"]},
            "udp": {**local, "port": self.ports["udp"], "body": "ping"},
            "dns": {"host": "up.pingstream.test", "dns_nameserver": "127.0.0.1", "port": self.ports["dns"],
                    "conditions": [{"type": "dns_record", "operator": "contains", "values": ["127.0.0.1"]}]},
            "smtp": {**local, "port": self.ports["smtp"]},
            "pop": {**local, "port": self.ports["pop"]},
            "imap": {**local, "port": self.ports["imap"]},
            "icmp": local,
        }


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[str, Process]]]:
    with running_cluster(tmp_path_factory.mktemp("probes")) as cluster:
        probes = {region: cluster.start_probe(region) for region in ("eu", "us")}
        yield cluster, probes


@pytest.fixture
def target() -> Iterator[Target]:
    served = Target().start()
    yield served
    served.close()


def status_of(api: Client, monitor_id: str) -> dict:
    return api.get(f"/v1/monitors/{monitor_id}").body["data"]


def probes_of(api: Client) -> list[dict]:
    return api.get("/v1/probes").body["data"]


def test_a_monitor_of_every_type_goes_up_then_down_with_a_precise_cause_from_two_regions(
        probed: tuple[Cluster, dict[str, Process]], target: Target) -> None:
    cluster, _ = probed
    _, key = cluster.new_org()
    api = ready_client(cluster, key)
    regions = ["eu", "us"]
    monitors = {}
    for kind, fields in target.monitors().items():
        created = api.post("/v1/monitors", {"name": kind, "type": "http" if kind == "http" else kind, **fields,
                                            "regions": regions, "interval_seconds": INTERVAL, "timeout_seconds": 2})
        assert created.status == 201, (kind, created.body)
        monitors[kind] = created.body["data"]["id"]

    def all_up() -> bool:
        return all(status_of(api, mid)["status"] == "up" for mid in monitors.values())
    try:
        wait_for("a monitor of every type to go up", all_up, 4 * INTERVAL, interval=0.5)
    except AssertionError:
        raise AssertionError({kind: api.get(f"/v1/monitors/{mid}/checks").body["data"][:1]
                              for kind, mid in monitors.items()}) from None

    def checked_from_both() -> bool:
        checks = api.get(f"/v1/monitors/{monitors['http']}/checks").body["data"]
        return {check["region"] for check in checks} == set(regions)
    wait_for("checks from both regions", checked_from_both, 3 * INTERVAL, interval=0.5)
    check = api.get(f"/v1/monitors/{monitors['http']}/checks").body["data"][0]
    assert check["probe"] and 0 < check["timings"]["connect_ms"] <= check["timings"]["total_ms"], check
    points = api.get(f"/v1/monitors/{monitors['http']}/performance?interval=1h").body["data"]
    assert {"connect", "ttfb", "total"} <= set(points[-1]["avg_phase_ms"]), points  # an IP: no DNS phase

    target.stop()
    stoppable = {kind: mid for kind, mid in monitors.items() if kind != "icmp"}  # 127.0.0.1 always answers pings

    def all_down() -> bool:
        return all(status_of(api, mid)["status"] == "down" for mid in stoppable.values())
    wait_for("every stopped target's monitor to go down", all_down, 4 * INTERVAL, interval=0.5)

    def cause(kind: str) -> str:
        checks = api.get(f"/v1/monitors/{monitors[kind]}/checks").body["data"]
        return next(check["cause"] for check in checks if check["status"] == "down")
    for kind in ("http", "tcp", "smtp", "pop", "imap"):
        assert "connection refused" in cause(kind), (kind, cause(kind))
    assert cause("udp") == "port unreachable"
    assert cause("dns") == f"timeout after 2 s (no answer from 127.0.0.1:{target.ports['dns']})"
    assert status_of(api, monitors["icmp"])["status"] == "up"

    listed = probes_of(api)
    assert {probe["region"] for probe in listed} >= set(regions)
    for probe in listed:
        assert probe["monitors"] >= len(monitors) and probe["stale"] is False, probe
        assert probe["schedule_lag_p99_ms"] < 1000, probe


def test_probes_of_a_region_share_its_monitors_and_one_killed_hands_them_over_on_their_grid(
        probed: tuple[Cluster, dict[str, Process]], target: Target) -> None:
    cluster, probes = probed
    _, key = cluster.new_org()
    api = ready_client(cluster, key)
    monitors = [api.post("/v1/monitors", {
        "name": f"shared {n}", "url": f"http://127.0.0.1:{target.ports['http']}/health", "regions": ["eu"],
        "interval_seconds": INTERVAL, "timeout_seconds": 2}).body["data"]["id"] for n in range(12)]
    second = cluster.start_probe("eu", name="probe-eu-2")
    try:
        def eu_probes() -> list[dict]:
            return [p for p in probes_of(api) if p["region"] == "eu" and not p["stale"]]

        def shared() -> bool:
            found = eu_probes()
            owned = [set(p["partitions"]) for p in found]
            return len(found) == 2 and all(owned) and set().union(*owned) == set(range(cluster.partitions))
        wait_for("the two eu probes to share the partitions", shared, 60, interval=0.5)

        probes["eu"].stop(signal.SIGKILL)  # no goodbye: its partitions move after the session timeout

        def taken_over() -> bool:
            alive = [p for p in eu_probes() if p["id"].split(":")[1] == str(second.popen.pid)]
            return bool(alive) and set(alive[0]["partitions"]) == set(range(cluster.partitions))
        wait_for("the surviving probe to take every partition", taken_over, 60, interval=0.5)

        before = {mid: api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] for mid in monitors}

        def all_checked_again() -> bool:
            return all(api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] > before[mid] + 1
                       for mid in monitors)
        wait_for("every monitor to be checked twice by the surviving probe", all_checked_again, 4 * INTERVAL,
                 interval=0.5)
        for mid in monitors:
            times = sorted(datetime.fromisoformat(check["checked_at"].replace("Z", "+00:00")).timestamp()
                           for check in api.get(f"/v1/monitors/{mid}/checks").body["data"])
            gaps = [b - a for a, b in zip(times, times[1:])]
            # on the monitor's grid before and after the kill: one check a slot, never two (1.5 s of jitter)
            assert all(gap > INTERVAL - 1.5 for gap in gaps), (mid, gaps)
    finally:
        second.stop()

