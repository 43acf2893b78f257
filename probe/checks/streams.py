"""TCP connections for the stream checks (tcp, smtp, pop, imap): resolve, connect, TLS, each timed.

`guarded` runs one attempt under the monitor's timeout and turns every way a
target can fail into a down Outcome. A certificate refused by a verifying
handshake is read by a second attempt that verifies nothing, so the cause can
say "expired on 2026-10-01" and the result still carries the certificate.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING

from probe.causes import timed_out, unreachable
from probe.outcome import Certificate, Outcome, down
from probe.phases import Phases
from probe.tls import certificate_of, handshake_failure, refusal

if TYPE_CHECKING:
    from probe.session import ProbeSession

MAX_REPLY = 64 * 1024   # bytes of a reply or banner kept for conditions

Attempt = Callable[[Phases, ssl.SSLContext], Awaitable[Outcome]]


async def addresses(host: str, port: int, kind: socket.SocketKind, phases: Phases) -> list[tuple]:
    """Socket addresses of host (an IP literal needs no lookup), timing the lookup as dns_ms."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        began = phases.begin("resolving")
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=kind)
        phases.add("dns_ms", began)
        return [info[4] for info in infos]
    return [(str(ip), port)] if ip.version == 4 else [(str(ip), port, 0, 0)]


async def open_stream(host: str, port: int, phases: Phases, tls: ssl.SSLContext | None
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the first address of host that accepts one; TLS from the first byte when `tls`."""
    last_error: OSError | None = None
    for address in await addresses(host, port, socket.SOCK_STREAM, phases):
        began = phases.begin("connecting")
        try:
            reader, writer = await asyncio.open_connection(address[0], port, limit=MAX_REPLY)
        except OSError as exc:
            last_error = exc
            continue
        phases.add("connect_ms", began)
        if tls is not None:
            await upgrade(writer, tls, host, phases)
        return reader, writer
    raise last_error or OSError(f"no address for {host}")


async def upgrade(writer: asyncio.StreamWriter, tls: ssl.SSLContext, host: str, phases: Phases) -> None:
    """TLS on an open connection (implicit TLS, or after STARTTLS), keeping the certificate."""
    began = phases.begin("TLS handshake")
    await writer.start_tls(tls, server_hostname=host)
    phases.add("tls_ms", began)
    phases.certificate = certificate_of(writer.get_extra_info("ssl_object"))


async def guarded(host: str, timeout: float, verify: bool, session: ProbeSession, attempt: Attempt) -> Outcome:
    """One attempt under the timeout; whatever goes wrong with the target is a down Outcome."""
    phases = Phases("connecting")
    try:
        async with asyncio.timeout(timeout):
            return await attempt(phases, session.tls if verify else session.insecure_tls)
    except TimeoutError:
        return phases.down(timed_out(timeout, phases.stage))
    except ssl.SSLCertVerificationError as exc:
        timings = phases.finish()
        certificate = await _refused_certificate(timeout - (perf_counter() - phases.started), session, attempt)
        return down(refusal(exc, certificate, host), timings=timings, certificate=certificate)
    except ssl.SSLError as exc:
        return phases.down(handshake_failure(exc))
    except OSError as exc:
        return phases.down(unreachable(exc, host))
    except asyncio.IncompleteReadError:
        return phases.down(f"connection closed by the server ({phases.stage})")
    except (asyncio.LimitOverrunError, ValueError):   # StreamReader.readline's "line over the limit"
        return phases.down(f"reply line longer than {MAX_REPLY} bytes ({phases.stage})")


async def _refused_certificate(budget: float, session: ProbeSession, attempt: Attempt) -> Certificate | None:
    """The certificate the target shows a handshake that verifies nothing (None when it cannot be had in time)."""
    if budget <= 0:
        return None
    phases = Phases()
    try:
        async with asyncio.timeout(budget):
            await attempt(phases, session.insecure_tls)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        pass  # the certificate, if the handshake got that far, is all this attempt is for
    return phases.certificate
