"""What every check of one probe process shares: one HTTP client, TLS contexts, DNS resolvers, ICMP access.

One `ProbeSession` per probe, opened once (`async with ProbeSession() as session`)
and passed to every `run_check`. Its HTTP client opens a fresh connection per
check (a monitor measures what a new visitor gets: DNS, connect, TLS handshake
and the certificate, every time) and allows as many connections at once as the
process may open files, so thousands of checks run concurrently.
"""
from __future__ import annotations

import os
import resource
import socket
import ssl
from dataclasses import dataclass

import aiohttp
import dns.asyncresolver

from probe.checks.http import http_client
from probe.tls import insecure_context, verifying_context

USER_AGENT = "pingstream-probe/0.1"
SPARE_FILES = 256   # file descriptors kept for everything that is not a check's socket


def connection_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(100, min(20_000, (soft if soft != resource.RLIM_INFINITY else 65536) - SPARE_FILES))


@dataclass(frozen=True, slots=True)
class IcmpAccess:
    """How this process may send echo requests: `privileged` is icmplib's flag; `refused` says why it may not."""

    privileged: bool = False
    refused: str | None = None


def icmp_access(ping_group_range: str | None, groups: set[int], raw_sockets: bool) -> IcmpAccess:
    """Unprivileged ICMP sockets when net.ipv4.ping_group_range admits one of our groups, else raw
    sockets when we may open them (root or CAP_NET_RAW), else a cause telling the operator what to change."""
    if ping_group_range:
        low, high = (int(part) for part in ping_group_range.split()[:2])
        if any(low <= group <= high for group in groups):
            return IcmpAccess(privileged=False)
    if raw_sockets:
        return IcmpAccess(privileged=True)
    shown = " ".join(ping_group_range.split()) if ping_group_range else "unknown"
    return IcmpAccess(refused=(
        f"ICMP: this probe may not send pings: net.ipv4.ping_group_range is \"{shown}\", which admits none of "
        f"its groups ({', '.join(str(g) for g in sorted(groups))}); run `sysctl -w "
        f"net.ipv4.ping_group_range=\"0 2147483647\"` on the probe's host, or give the probe CAP_NET_RAW"))


def detect_icmp_access() -> IcmpAccess:
    try:
        with open("/proc/sys/net/ipv4/ping_group_range") as ranges:
            ping_group_range: str | None = ranges.read().strip()
    except OSError:
        ping_group_range = None
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        raw_sockets = True
    except OSError:
        raw_sockets = False
    return icmp_access(ping_group_range, {os.getgid(), *os.getgroups()}, raw_sockets)


class ProbeSession:
    """The shared client context of a probe's checks.

    `tls_context` is the context that verifies targets (default: the system's CAs);
    tests pass one that trusts their own CA.
    """

    def __init__(self, *, tls_context: ssl.SSLContext | None = None, max_connections: int | None = None,
                 user_agent: str = USER_AGENT, dns_cache_seconds: int = 10) -> None:
        self.tls = tls_context or verifying_context()
        self.insecure_tls = insecure_context()
        self.max_connections = max_connections or connection_limit()
        self.user_agent = user_agent
        self.dns_cache_seconds = dns_cache_seconds
        self._http: aiohttp.ClientSession | None = None
        self._resolvers: dict[tuple[str | None, int | None], dns.asyncresolver.Resolver] = {}
        self._icmp: IcmpAccess | None = None

    async def __aenter__(self) -> ProbeSession:
        self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def open(self) -> None:
        """Create the HTTP client; inside the running event loop, as aiohttp wants."""
        if self._http is None:
            self._http = http_client(self.max_connections, self.user_agent, self.dns_cache_seconds)

    @property
    def http(self) -> aiohttp.ClientSession:
        self.open()
        return self._http

    def resolver(self, nameserver: str | None, port: int | None) -> dns.asyncresolver.Resolver:
        """A DNS resolver asking `nameserver` (default: the host's resolv.conf) on `port` (default 53)."""
        key = (nameserver, port)
        resolver = self._resolvers.get(key)
        if resolver is None:
            if nameserver is None:
                try:
                    resolver = dns.asyncresolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    resolver = dns.asyncresolver.Resolver(configure=False)
                    resolver.nameservers = ["127.0.0.1"]
            else:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [nameserver]
            if port is not None:
                resolver.port = port
            resolver.cache = None   # every check asks: a monitor measures the nameserver, not our memory
            self._resolvers[key] = resolver
        return resolver

    @property
    def icmp(self) -> IcmpAccess:
        if self._icmp is None:
            self._icmp = detect_icmp_access()
        return self._icmp

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
