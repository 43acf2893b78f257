"""tcp: connect (TLS too when `tls: implicit`); with a `body`, send it and read the reply;
keyword/regex conditions read the reply, or the banner the server sends first."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from probe.checks.http import BODY_CONDITIONS
from probe.checks.streams import MAX_REPLY, guarded, open_stream
from probe.conditions import Observation, first_failure
from probe.outcome import Outcome
from probe.phases import Phases
from schemas.monitor import MonitorSpec

if TYPE_CHECKING:
    import ssl

    from probe.session import ProbeSession


async def check_tcp(monitor: MonitorSpec, session: ProbeSession) -> Outcome:
    async def attempt(phases: Phases, tls: ssl.SSLContext) -> Outcome:
        reader, writer = await open_stream(monitor.host, monitor.port, phases,
                                           tls if monitor.tls == "implicit" else None)
        reply = None
        try:
            if monitor.body is not None or any(c.type in BODY_CONDITIONS for c in monitor.conditions):
                if monitor.body:
                    writer.write(monitor.body.encode())
                    await writer.drain()
                phases.begin("no reply")
                reply = await reader.read(MAX_REPLY)
                if not reply:
                    return phases.down("connection closed by the server without a reply")
        finally:
            writer.close()
        answered = phases.answered()
        seen = Observation(response_time_ms=answered, certificate=phases.certificate, now=time.time(),
                           body=reply.decode(errors="replace") if reply is not None else None)
        failure = first_failure([c.model_dump() for c in monitor.conditions], seen)
        return Outcome("down" if failure else "up", failure.cause if failure else None, response_time_ms=answered,
                       timings=phases.finish(), certificate=phases.certificate,
                       failed_condition=failure.condition if failure else None)

    return await guarded(monitor.host, monitor.timeout_seconds, not monitor.skip_ssl_error, session, attempt)
