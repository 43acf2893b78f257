"""smtp (aiosmtpd, with STARTTLS), pop and imap (small asyncio greeters) on 127.0.0.1."""
from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from aiosmtpd.controller import Controller

from engine.broker import free_port
from probe import run_check
from tests.probes.conftest import TIMEOUT, server_context


def mail(kind: str, port: int, **fields) -> dict:
    return {"name": kind, "type": kind, "host": "127.0.0.1", "port": port, "timeout_seconds": TIMEOUT, **fields}


@pytest.fixture
async def smtp_server(ca):
    controller = Controller(object(), hostname="127.0.0.1", port=free_port(), ident="pingstream-test ESMTP",
                            tls_context=server_context(ca.issue_cert("127.0.0.1")), require_starttls=False)
    await asyncio.to_thread(controller.start)
    yield controller.port
    await asyncio.to_thread(controller.stop)


async def test_smtp_greeting_and_starttls_certificate(session, smtp_server):
    greeted = await run_check(mail("smtp", smtp_server, conditions=[
        {"type": "keyword", "operator": "contains", "values": ["pingstream-test ESMTP"]}]), session)
    assert (greeted.status, greeted.status_code, greeted.cause) == ("up", 220, None)
    assert 0 < greeted.response_time_ms <= greeted.timings.total_ms and greeted.certificate is None
    upgraded = await run_check(mail("smtp", smtp_server, tls="starttls"), session)
    assert (upgraded.status, upgraded.cause) == ("up", None)
    assert upgraded.timings.tls_ms > 0 and upgraded.certificate.sans == ("127.0.0.1",)
    assert "O=pingstream test CA" in upgraded.certificate.issuer


async def test_smtp_refused_port(session):
    with socket.socket() as placeholder:   # bound, then released: nothing listens
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    outcome = await run_check(mail("smtp", port), session)
    assert (outcome.status, outcome.cause) == ("down", "connection refused")


class Greeter:
    """A POP3 or IMAP server that greets, upgrades on STLS / STARTTLS, and says goodbye."""

    def __init__(self, greeting: bytes, tls: ssl.SSLContext, starttls: dict[bytes, bytes]) -> None:
        self.greeting, self.tls, self.starttls = greeting, tls, starttls

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.greeting)
        try:
            while line := await asyncio.wait_for(reader.readline(), TIMEOUT):
                answer = self.starttls.get(line.strip().upper())
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                await writer.start_tls(self.tls)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass
        writer.close()


@pytest.fixture
async def greeters(ca):
    tls = server_context(ca.issue_cert("127.0.0.1"))
    servers = {}
    for kind, greeting, starttls in (
            ("pop", b"+OK POP3 pingstream-test ready\r\n", {b"STLS": b"+OK Begin TLS negotiation\r\n"}),
            ("imap", b"* OK [CAPABILITY IMAP4rev1 STARTTLS] pingstream-test ready\r\n",
             {b"A1 STARTTLS": b"a1 OK Begin TLS negotiation now\r\n"}),
            ("broken", b"-ERR go away\r\n", {})):
        servers[kind] = await asyncio.start_server(Greeter(greeting, tls, starttls).serve, "127.0.0.1", 0)
    yield {kind: server.sockets[0].getsockname()[1] for kind, server in servers.items()}
    for server in servers.values():
        server.close()


async def test_pop_and_imap_greetings_and_starttls(session, greeters):
    for kind in ("pop", "imap"):
        greeted = await run_check(mail(kind, greeters[kind]), session)
        assert (greeted.status, greeted.cause) == ("up", None), kind
        upgraded = await run_check(mail(kind, greeters[kind], tls="starttls"), session)
        assert (upgraded.status, upgraded.cause) == ("up", None), kind
        assert upgraded.timings.tls_ms > 0 and upgraded.certificate.sans == ("127.0.0.1",)


async def test_starttls_to_a_certificate_for_another_host_is_down_naming_it(session, ca):
    wrong_host = server_context(ca.issue_cert("mail.other.example"))
    greeter = Greeter(b"+OK POP3 ready\r\n", wrong_host, {b"STLS": b"+OK Begin TLS negotiation\r\n"})
    server = await asyncio.start_server(greeter.serve, "127.0.0.1", 0)
    try:
        outcome = await run_check(mail("pop", server.sockets[0].getsockname()[1], tls="starttls"), session)
    finally:
        server.close()
    assert (outcome.status, outcome.cause) == (
        "down", "TLS: certificate is not valid for 127.0.0.1 (it names mail.other.example)")
    assert outcome.certificate.sans == ("mail.other.example",)


async def test_a_wrong_greeting_is_down_quoting_it(session, greeters):
    outcome = await run_check(mail("pop", greeters["broken"]), session)
    assert (outcome.status, outcome.cause) == ("down", 'POP3: unexpected greeting "-ERR go away"')
    imap = await run_check(mail("imap", greeters["pop"]), session)
    assert imap.cause == 'IMAP: unexpected greeting "+OK POP3 pingstream-test ready"'
