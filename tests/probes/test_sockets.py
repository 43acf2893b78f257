"""tcp, udp and icmp monitors against listeners on 127.0.0.1, and ports where nothing listens."""
from __future__ import annotations

import asyncio
import socket
from time import perf_counter

import pytest

from probe import run_check
from probe.outcome import day
from probe.session import icmp_access
from tests.probes.conftest import TIMEOUT, Target, days_from_now, server_context


def closed_port(kind: socket.SocketKind) -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, kind) as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


@pytest.fixture
async def tcp_listener():
    """Greets with a banner, then answers PING with PONG."""
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"pingstream-test ready\n")
        try:
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            if line.strip() == b"PING":
                writer.write(b"PONG\n")
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


def tcp(port: int, **fields) -> dict:
    return {"name": "tcp", "type": "tcp", "host": "127.0.0.1", "port": port, "timeout_seconds": TIMEOUT, **fields}


async def test_tcp_connects_and_checks_the_reply(session, tcp_listener):
    connected = await run_check(tcp(tcp_listener), session)
    assert (connected.status, connected.cause) == ("up", None)
    assert 0 < connected.timings.connect_ms < TIMEOUT * 1000 and connected.timings.dns_ms is None
    assert 0 < connected.response_time_ms <= connected.timings.total_ms
    banner = await run_check(tcp(tcp_listener, host="localhost", conditions=[
        {"type": "keyword", "operator": "contains", "values": ["ready"]}]), session)
    assert banner.status == "up", banner.cause
    assert banner.timings.dns_ms is not None
    exchange = await run_check(tcp(tcp_listener, body="PING\n", conditions=[
        {"type": "regex", "operator": "matches", "values": ["PONG|ready"]}]), session)
    assert exchange.status == "up", exchange.cause
    wrong = await run_check(tcp(tcp_listener, conditions=[
        {"type": "keyword", "operator": "contains", "values": ["SSH-2.0"]}]), session)
    assert (wrong.status, wrong.cause) == ("down", 'keyword "SSH-2.0" not found')
    assert wrong.failed_condition.actual == "pingstream-test ready\n"


async def test_tcp_to_a_closed_port_is_connection_refused(session):
    outcome = await run_check(tcp(closed_port(socket.SOCK_STREAM)), session)
    assert (outcome.status, outcome.cause) == ("down", "connection refused")
    assert outcome.as_result("mon_1", "eu", 0)["cause"] == "connection refused"


async def test_tcp_with_implicit_tls_records_the_certificate(session, ca):
    from aiohttp import web
    app = web.Application()
    async with Target(app, server_context(ca.issue_cert("127.0.0.1"))) as target:
        outcome = await run_check(tcp(target.port, tls="implicit", conditions=[
            {"type": "ssl_expiry", "operator": "greater", "values": [7]}]), session)
    assert outcome.status == "up", outcome.cause
    assert outcome.timings.tls_ms > 0 and outcome.certificate.sans == ("127.0.0.1",)


async def test_tcp_with_an_expired_certificate_says_when_and_keeps_it(session, ca):
    from aiohttp import web
    expired = ca.issue_cert("127.0.0.1", not_before=days_from_now(-30), not_after=days_from_now(-1))
    async with Target(web.Application(), server_context(expired)) as target:
        outcome = await run_check(tcp(target.port, tls="implicit"), session)
    expired_on = day(days_from_now(-1).timestamp())
    assert (outcome.status, outcome.cause) == ("down", f"TLS: certificate expired on {expired_on}")
    assert outcome.certificate is not None and outcome.certificate.sans == ("127.0.0.1",)
    assert outcome.timings.connect_ms > 0


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.transport.sendto(b"echo: " + data, addr)


async def test_udp_gets_its_reply_and_a_closed_port_is_unreachable(session):
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        echoed = await run_check({"name": "udp", "type": "udp", "host": "127.0.0.1", "port": port,
                                  "body": "hello", "timeout_seconds": TIMEOUT, "conditions": [
                                      {"type": "keyword", "operator": "contains", "values": ["echo: hello"]}]},
                                 session)
    finally:
        transport.close()
    assert (echoed.status, echoed.cause) == ("up", None)
    assert 0 < echoed.response_time_ms < TIMEOUT * 1000
    closed = await run_check({"name": "udp", "type": "udp", "host": "127.0.0.1",
                              "port": closed_port(socket.SOCK_DGRAM), "timeout_seconds": TIMEOUT}, session)
    assert (closed.status, closed.cause) == ("down", "port unreachable")


async def test_udp_without_a_reply_times_out(session):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # bound: receives, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        started = perf_counter()
        outcome = await run_check({"name": "udp", "type": "udp", "host": "127.0.0.1",
                                   "port": silent.getsockname()[1], "timeout_seconds": 1}, session)
    finally:
        silent.close()
    assert (outcome.status, outcome.cause) == ("down", "timeout after 1 s (no reply)")
    assert 1.0 <= perf_counter() - started < 1 + TIMEOUT


async def test_icmp_echo_to_localhost(session):
    if session.icmp.refused:
        pytest.skip(f"the kernel forbids this process ICMP sockets: {session.icmp.refused}")
    outcome = await run_check({"name": "ping", "type": "icmp", "host": "127.0.0.1", "timeout_seconds": TIMEOUT,
                               "conditions": [{"type": "response_time", "operator": "less", "values": [1000]}]},
                              session)
    assert (outcome.status, outcome.cause) == ("up", None)
    assert 0 < outcome.response_time_ms < 1000 and outcome.timings.total_ms > 0


def test_icmp_access_follows_ping_group_range_then_raw_sockets():
    assert icmp_access("0 2147483647", {1000}, raw_sockets=False).privileged is False
    assert icmp_access("1 0", {0}, raw_sockets=True).privileged is True
    refused = icmp_access("1 0", {1000}, raw_sockets=False)
    assert refused.refused is not None
    assert 'net.ipv4.ping_group_range is "1 0", which admits none of its groups (1000)' in refused.refused
    assert 'sysctl -w net.ipv4.ping_group_range="0 2147483647"' in refused.refused
    assert "CAP_NET_RAW" in refused.refused


async def test_icmp_without_access_is_down_saying_what_to_change(session):
    session._icmp = icmp_access("1 0", {1000}, raw_sockets=False)   # as on a host that forbids both
    outcome = await run_check({"name": "ping", "type": "icmp", "host": "127.0.0.1"}, session)
    assert outcome.status == "down" and outcome.cause.startswith("ICMP: this probe may not send pings")
