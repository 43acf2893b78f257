"""http/https: one request (following redirects unless told not to), timed phase by phase.

The shared client (`http_client`) opens a fresh connection per check; its
connector splits each new connection into TCP connect and TLS handshake and
keeps the certificate the target presented. At most 1 MiB of the body is read,
and only when a condition reads the body; the connection is then closed, so a
2 GB body costs 1 MiB. The monitor's timeout covers the whole check, and a
timeout names the stage it cut short.
"""
from __future__ import annotations

import asyncio
import ssl
import time
from contextvars import ContextVar
from time import perf_counter
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from probe.causes import timed_out, unreachable
from probe.conditions import DEFAULT_HTTP_STATUS, Observation, first_failure
from probe.outcome import Outcome, down
from probe.phases import Phases
from probe.tls import certificate_of, handshake_failure, presented_certificate, refusal
from schemas.monitor import MonitorSpec

if TYPE_CHECKING:
    from probe.session import ProbeSession

MAX_BODY = 1 << 20       # bytes of a body kept for conditions
MAX_REDIRECTS = 10
BODY_CONDITIONS = frozenset({"keyword", "regex", "json_path", "response-json-check"})
#: the check running in this task: the connector, deep inside aiohttp, reports to it
PHASES: ContextVar[Phases | None] = ContextVar("probe_phases", default=None)


class TimedConnector(aiohttp.TCPConnector):
    """Times TCP connect and TLS handshake apart, and keeps the certificate of each new connection.

    aiohttp's tracing sees a new connection as one span; the protocol factory is
    called once the socket is connected and before the handshake starts, which
    is the moment that divides the two.
    """

    async def _wrap_create_connection(self, factory: Any, *args: Any, **kwargs: Any) -> Any:
        phases = PHASES.get()
        if phases is None:
            return await super()._wrap_create_connection(factory, *args, **kwargs)
        tls = bool(kwargs.get("ssl"))
        began = phases.begin("connecting")
        connected = began

        def timed_factory() -> Any:
            nonlocal connected
            connected = phases.add("connect_ms", began)
            if tls:
                phases.stage = "TLS handshake"
            return factory()

        transport, protocol = await super()._wrap_create_connection(timed_factory, *args, **kwargs)
        if tls:
            phases.add("tls_ms", connected)
            if phases.certificate is None:
                phases.certificate = certificate_of(transport.get_extra_info("ssl_object"))
        phases.stage = "sending request"
        return transport, protocol


async def _dns_start(_: Any, context: SimpleNamespace, __: Any) -> None:
    phases = context.trace_request_ctx
    if phases is not None:
        context.dns_began = phases.begin("resolving")


async def _dns_end(_: Any, context: SimpleNamespace, __: Any) -> None:
    if context.trace_request_ctx is not None:
        context.trace_request_ctx.add("dns_ms", context.dns_began)


async def _queued(_: Any, context: SimpleNamespace, __: Any) -> None:
    if context.trace_request_ctx is not None:
        context.trace_request_ctx.stage = "waiting for a free connection in the probe"


async def _headers_sent(_: Any, context: SimpleNamespace, __: Any) -> None:
    if context.trace_request_ctx is not None:
        context.sent = context.trace_request_ctx.begin("no response headers")


async def _answered(_: Any, context: SimpleNamespace, __: Any) -> None:
    phases = context.trace_request_ctx
    if phases is not None and hasattr(context, "sent"):
        phases.add("ttfb_ms", context.sent)
        phases.answered()
        phases.stage = "reading body"


def http_client(max_connections: int, user_agent: str, dns_cache_seconds: int) -> aiohttp.ClientSession:
    """The one client of a probe: fresh connections, no cookies, no timeout of its own (the check has one)."""
    tracing = aiohttp.TraceConfig()
    tracing.on_dns_resolvehost_start.append(_dns_start)
    tracing.on_dns_resolvehost_end.append(_dns_end)
    tracing.on_connection_queued_start.append(_queued)
    tracing.on_request_headers_sent.append(_headers_sent)
    tracing.on_request_redirect.append(_answered)
    tracing.on_request_end.append(_answered)
    connector = TimedConnector(limit=max_connections, limit_per_host=0, force_close=True,
                               ttl_dns_cache=dns_cache_seconds)
    return aiohttp.ClientSession(connector=connector, trace_configs=[tracing],
                                 timeout=aiohttp.ClientTimeout(total=None), cookie_jar=aiohttp.DummyCookieJar(),
                                 headers={"User-Agent": user_agent}, raise_for_status=False)


async def bounded_body(response: aiohttp.ClientResponse, limit: int = MAX_BODY) -> bytes:
    """At most `limit` bytes of the body; the rest is never read (the connection is closed instead)."""
    kept = bytearray()
    while len(kept) < limit:
        chunk = await response.content.read(limit - len(kept))
        if not chunk:
            break
        kept += chunk
    return bytes(kept)


def text_of(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


async def check_http(monitor: MonitorSpec, session: ProbeSession) -> Outcome:
    phases = Phases("connecting")
    token = PHASES.set(phases)
    try:
        return await _request(monitor, session, phases)
    except TimeoutError:
        return phases.down(timed_out(monitor.timeout_seconds, phases.stage), response_time_ms=phases.answered_ms)
    except aiohttp.ClientConnectorCertificateError as exc:
        error = exc.certificate_error
        budget = monitor.timeout_seconds - (perf_counter() - phases.started)
        certificate = await presented_certificate(exc.host, exc.port, exc.host, budget)
        cause = refusal(error, certificate, exc.host) if isinstance(error, ssl.SSLCertVerificationError) \
            else f"TLS: certificate refused: {error}"
        return down(cause, timings=phases.finish(), certificate=certificate)
    except aiohttp.ClientSSLError as exc:
        os_error = exc.os_error
        return phases.down(handshake_failure(os_error) if isinstance(os_error, ssl.SSLError) else f"TLS: {exc}")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            phases.add("dns_ms", phases.mark)
        return phases.down(unreachable(exc.os_error, exc.host))
    except aiohttp.TooManyRedirects:
        return phases.down(f"too many redirects (more than {MAX_REDIRECTS})")
    except aiohttp.ServerDisconnectedError:
        return phases.down(f"connection closed by the server ({phases.stage})")
    except aiohttp.ClientPayloadError as exc:
        return phases.down(f"response body broken off: {exc}")
    except aiohttp.ClientResponseError as exc:
        return phases.down(f"invalid HTTP response: {exc.message}")
    except aiohttp.InvalidURL as exc:
        return phases.down(f"invalid URL: {exc}")
    except (aiohttp.ClientError, OSError) as exc:
        host = urlsplit(monitor.url or "").hostname or ""
        cause = unreachable(exc, host) if isinstance(exc, OSError) else f"request failed: {exc}"
        return phases.down(cause)
    finally:
        PHASES.reset(token)


async def _request(monitor: MonitorSpec, session: ProbeSession, phases: Phases) -> Outcome:
    reads_body = monitor.method != "HEAD" and any(c.type in BODY_CONDITIONS for c in monitor.conditions)
    async with asyncio.timeout(monitor.timeout_seconds):
        async with session.http.request(
                monitor.method, monitor.url, headers=monitor.headers or None,
                data=monitor.body.encode() if monitor.body is not None else None,
                allow_redirects=not monitor.not_follow_redirect, max_redirects=MAX_REDIRECTS,
                ssl=session.insecure_tls if monitor.skip_ssl_error else session.tls,
                trace_request_ctx=phases) as response:
            body = None
            if reads_body:
                body = text_of(await bounded_body(response), response.charset)
    timings = phases.finish()
    answered = phases.answered_ms if phases.answered_ms is not None else timings.total_ms
    seen = Observation(status_code=response.status, response_time_ms=answered, body=body,
                       headers=response.headers, certificate=phases.certificate, now=time.time())
    failure = first_failure([c.model_dump() for c in monitor.conditions], seen, DEFAULT_HTTP_STATUS)
    return Outcome("down" if failure else "up", failure.cause if failure else None, response_time_ms=answered,
                   status_code=response.status, timings=timings, certificate=phases.certificate,
                   failed_condition=failure.condition if failure else None)
