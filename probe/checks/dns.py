"""dns: ask for the monitor's `host` name's records of `dns_record_type` (default A).

The nameserver is `dns_nameserver` on `port` (default 53) when given, else the
probe host's resolvers. Up when the answer has records and the conditions hold
(`dns_record` conditions read the records as text, e.g. "127.0.0.1" or
"10 mail.example.com."). NXDOMAIN, an empty answer, SERVFAIL and silence are
down with causes such as `DNS: NXDOMAIN for example.invalid`.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import dns.exception
import dns.rdatatype
import dns.resolver

from probe.causes import timed_out
from probe.conditions import Observation, first_failure
from probe.outcome import Outcome, down
from probe.phases import Phases
from schemas.monitor import MonitorSpec

if TYPE_CHECKING:
    from probe.session import ProbeSession


def record_text(rdata: object) -> str:
    if getattr(rdata, "rdtype", None) == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode(errors="replace")
    return rdata.to_text()


async def check_dns(monitor: MonitorSpec, session: ProbeSession) -> Outcome:
    name = monitor.host
    record_type = monitor.dns_record_type or "A"
    resolver = session.resolver(monitor.dns_nameserver, monitor.port)
    server = ", ".join(f"{ns}:{resolver.port}" for ns in resolver.nameservers[:3])
    phases = Phases(f"no answer from {server}")
    began = phases.mark
    try:
        async with asyncio.timeout(monitor.timeout_seconds):
            answer = await resolver.resolve(name, record_type, search=False, lifetime=monitor.timeout_seconds)
    except (TimeoutError, dns.resolver.LifetimeTimeout):
        return phases.down(timed_out(monitor.timeout_seconds, phases.stage))
    except dns.resolver.NXDOMAIN:
        return down(f"DNS: NXDOMAIN for {name}", timings=_timed(phases, began))
    except dns.resolver.NoAnswer:
        return down(f"DNS: no {record_type} record for {name}", timings=_timed(phases, began))
    except dns.resolver.NoNameservers as exc:
        return down(f"DNS: no nameserver answered for {name}: {_why(exc)}", timings=_timed(phases, began))
    except dns.exception.DNSException as exc:
        return down(f"DNS: {exc}", timings=_timed(phases, began))
    timings = _timed(phases, began)
    records = tuple(record_text(rdata) for rdata in answer)
    seen = Observation(response_time_ms=timings.dns_ms, body="\n".join(records), records=records, now=time.time())
    failure = first_failure([c.model_dump() for c in monitor.conditions], seen)
    return Outcome("down" if failure else "up", failure.cause if failure else None, response_time_ms=timings.dns_ms,
                   timings=timings, failed_condition=failure.condition if failure else None)


def _timed(phases: Phases, began: float):
    phases.add("dns_ms", began)
    return phases.finish()


def _why(exc: dns.resolver.NoNameservers) -> str:
    """`127.0.0.1:53 answered SERVFAIL` from dnspython's list of (server, tcp, port, error, answer)."""
    reasons = []
    for error in (exc.kwargs.get("errors") or [])[:3]:
        server, _, port, problem = error[:4]
        reasons.append(f"{server}:{port} {problem}")
    return "; ".join(reasons) or str(exc)
