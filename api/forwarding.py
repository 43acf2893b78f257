"""Who the client is behind a proxy: X-Forwarded-* believed only from the operator's trusted proxies.

Without PINGSTREAM_TRUSTED_PROXIES nobody's forwarded headers count: the
client is the peer address, so a client cannot pick its own `source_ip`, nor
a fresh address for every request to slip past the per-address limits. When
the peer is a trusted proxy, the client is the right-most address of
X-Forwarded-For that is not itself a trusted proxy (what the first proxy
saw), and X-Forwarded-Proto/-Host say how the client reached us. The
request's `remote`, `scheme` and `host` are set to those once, here, for
everything after (rate limits, check-ins, URLs shown to the client).
"""
from __future__ import annotations

import ipaddress

from aiohttp import web

from engine.outbound import Network, allowed_networks


def _trusted(address: str | None, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in network for network in proxies if network.version == ip.version)


def client_of(peer: str | None, forwarded_for: str, proxies: tuple[Network, ...]) -> str | None:
    """The client's address: the peer's, or (from a trusted proxy) the nearest untrusted hop it forwards."""
    if not _trusted(peer, proxies) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop[:64]
    return hops[0][:64] if hops else peer


def forwarding_middleware(trusted_proxies: str):
    proxies = allowed_networks(trusted_proxies)

    @web.middleware
    async def from_the_client(request: web.Request, handler):
        """Outermost: the request as the client made it, as far as a trusted proxy vouches for it."""
        if not proxies or not _trusted(request.remote, proxies):
            return await handler(request)
        headers = request.headers
        changes = {"remote": client_of(request.remote, headers.get("X-Forwarded-For", ""), proxies)}
        if headers.get("X-Forwarded-Proto"):
            changes["scheme"] = headers["X-Forwarded-Proto"].split(",")[0].strip()
        if headers.get("X-Forwarded-Host"):
            changes["host"] = headers["X-Forwarded-Host"].split(",")[0].strip()
        return await handler(request.clone(**changes))

    return from_the_client
