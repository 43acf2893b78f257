"""Real targets on 127.0.0.1 for the probe's checks, and a session that trusts the tests' own CA."""
from __future__ import annotations

import asyncio
import datetime
import ssl
import tempfile
from collections.abc import AsyncIterator

import pytest
import trustme
from aiohttp import web

from probe import ProbeSession

TIMEOUT = 5   # seconds a check may take where the test does not time it out on purpose


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """The CA the probe session trusts."""
    return trustme.CA(organization_name="pingstream test CA")


@pytest.fixture(scope="session")
def stranger_ca() -> trustme.CA:
    """A CA nobody trusts."""
    return trustme.CA(organization_name="stranger CA")


@pytest.fixture
async def session(ca: trustme.CA) -> AsyncIterator[ProbeSession]:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with ProbeSession(tls_context=trusting) as opened:
        yield opened


def server_context(cert: trustme.LeafCert | trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if isinstance(cert, trustme.CA):  # a self-signed root presented as a server's own certificate
        context.load_cert_chain(*_pem_files(cert))
    else:
        cert.configure_cert(context)
    return context


def _pem_files(ca: trustme.CA) -> tuple[str, str]:
    directory = tempfile.mkdtemp(prefix="probe-ca-")
    ca.cert_pem.write_to_path(f"{directory}/cert.pem")
    ca.private_key_pem.write_to_path(f"{directory}/key.pem")
    return f"{directory}/cert.pem", f"{directory}/key.pem"


def days_from_now(days: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)


class Target:
    """An aiohttp application served on 127.0.0.1 (over TLS when given a context)."""

    def __init__(self, app: web.Application, tls: ssl.SSLContext | None = None) -> None:
        self.app, self.tls = app, tls
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1)
        self.port = 0

    async def __aenter__(self) -> Target:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.runner.cleanup()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"


async def eventually(predicate, deadline: float = 10.0) -> None:
    """Poll until predicate() is true, or fail after `deadline` seconds."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline
    while not predicate():
        assert loop.time() < until, "condition not reached in time"
        await asyncio.sleep(0.02)
