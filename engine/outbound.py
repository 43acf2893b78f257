"""Outbound HTTP to addresses a tenant names (alert channels): never into the operator's own networks.

The check is made where the connection is made: every address a host name
resolves to (or the literal address of the URL) is checked right before the
connector connects to it, so a redirect to another host, or a DNS answer that
changes between saving the URL and using it (rebinding), meets the same
check. Loopback, private, link-local (cloud metadata), shared, multicast,
reserved and unspecified addresses are refused unless the operator allows
their range (PINGSTREAM_OUTBOUND_ALLOW, e.g. "127.0.0.0/8,::1").

What a tenant learns of a failure is a generic class (`outcome_of`), never
the text of an internal error: the delivery log must not be a port scanner.
"""
from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Sequence

import aiohttp

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddress(OSError):
    """A host resolved to an address outbound requests may not reach."""


def allowed_networks(setting: str) -> tuple[Network, ...]:
    """"127.0.0.0/8, ::1" -> the networks; raises ValueError naming a bad entry."""
    networks = []
    for entry in filter(None, (part.strip() for part in setting.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or network (write e.g. 10.0.0.0/8 or ::1)") from None
    return tuple(networks)


def is_public(address: str, allowed: Iterable[Network] = ()) -> bool:
    """May an outbound request connect to `address`? Public unicast, or inside an allowed network."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0: the scope is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip in network for network in allowed if network.version == ip.version):
        return True
    return ip.is_global and not ip.is_multicast


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector that refuses to connect to non-public addresses (see the module docstring)."""

    def __init__(self, allowed: Sequence[Network] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.allowed = tuple(allowed)

    async def _resolve_host(self, host: str, port: int, traces=None) -> list:
        hosts = await super()._resolve_host(host, port, traces=traces)
        if not hosts or not all(is_public(entry["host"], self.allowed) for entry in hosts):
            raise BlockedAddress(f"{host} is not a public address")
        return hosts


def guarded_session(allow: str) -> aiohttp.ClientSession:
    """An HTTP client for tenant-named URLs; `allow`: the operator's allowed networks."""
    return aiohttp.ClientSession(connector=GuardedConnector(allowed_networks(allow)))


def outcome_of(exc: BaseException) -> str:
    """What a tenant may see of a failed request: its class, in a few fixed words."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, BlockedAddress):
        return "refused: not a public address"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "host name not resolved"
    if isinstance(exc, (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch)):
        return "TLS error"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection failed"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    return "request failed"
