"""Outbound requests to tenant-named URLs: internal addresses refused where the connection is made."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import pytest

from engine.outbound import allowed_networks, guarded_session, is_public, outcome_of


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "::1", "::", "fe80::1%eth0", "fc00::1", "::ffff:127.0.0.1", "ff02::1",
])
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are(address: str) -> None:
    assert is_public(address)


def test_the_operator_allows_named_ranges() -> None:
    allowed = allowed_networks("127.0.0.0/8, ::1")
    assert is_public("127.0.0.1", allowed) and is_public("::1", allowed)
    assert not is_public("10.0.0.1", allowed) and not is_public("169.254.169.254", allowed)
    with pytest.raises(ValueError, match="not an address or network"):
        allowed_networks("localhost")


@pytest.fixture
def local_receiver() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records what reached it."""
    reached: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            reached.append(self.path)
            if self.path == "/redirect":  # to another loopback address than the one allowed
                self.send_response(307)
                self.send_header("Location", f"http://127.0.0.2:{self.server.server_address[1]}/inside")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", reached
    server.shutdown()
    server.server_close()


async def post(allow: str, url: str) -> int | str:
    async with guarded_session(allow) as http:
        try:
            async with http.post(url, data=b"{}", allow_redirects=True) as response:
                return response.status
        except aiohttp.ClientError as exc:
            return outcome_of(exc)


async def test_a_local_receiver_is_refused_by_address_and_by_name_unless_allowed(local_receiver) -> None:
    where, reached = local_receiver
    port = where.split(":")[1]
    for url in (f"http://{where}/literal", f"http://localhost:{port}/by-name", f"http://[::ffff:127.0.0.1]:{port}/"):
        assert await post("", url) == "refused: not a public address", url
    assert reached == []
    assert await post("127.0.0.0/8,::1", f"http://{where}/allowed") == 200
    assert reached == ["/allowed"]


async def test_a_redirect_meets_the_same_check(local_receiver) -> None:
    where, reached = local_receiver
    assert await post("127.0.0.1/32", f"http://{where}/redirect") == "refused: not a public address"
    assert reached == ["/redirect"]
