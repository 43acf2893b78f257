"""icmp: three echo requests; up when any is answered, the response time is the average round trip.

Unprivileged ICMP sockets are used where net.ipv4.ping_group_range allows them,
raw sockets where the probe may open them; otherwise the cause tells the
operator what to change (probe/session.py `icmp_access`).
"""
from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING

import icmplib

from probe.causes import seconds, timed_out, unreachable
from probe.checks.streams import addresses
from probe.conditions import Observation, first_failure
from probe.outcome import Outcome, down
from probe.phases import Phases
from schemas.monitor import MonitorSpec

if TYPE_CHECKING:
    from probe.session import ProbeSession

PINGS = 3
INTERVAL = 0.2   # seconds between echo requests


async def check_icmp(monitor: MonitorSpec, session: ProbeSession) -> Outcome:
    access = session.icmp
    if access.refused:
        return down(access.refused)
    phases = Phases("resolving")
    # each echo waits its share of the timeout, so the three fit in it
    wait = max(0.2, (monitor.timeout_seconds - INTERVAL * (PINGS - 1)) / PINGS)
    try:
        async with asyncio.timeout(monitor.timeout_seconds):
            address = (await addresses(monitor.host, 0, socket.SOCK_RAW, phases))[0][0]
            phases.begin("no echo reply")
            host = await icmplib.async_ping(address, count=PINGS, interval=INTERVAL, timeout=wait,
                                            privileged=access.privileged)
    except TimeoutError:
        return phases.down(timed_out(monitor.timeout_seconds, phases.stage))
    except icmplib.SocketPermissionError:
        return phases.down("ICMP: the kernel refused this probe an ICMP socket (see net.ipv4.ping_group_range "
                           "or give the probe CAP_NET_RAW)")
    except icmplib.ICMPLibError as exc:
        return phases.down(f"ICMP: {exc}")
    except OSError as exc:
        return phases.down(unreachable(exc, monitor.host))
    timings = phases.finish()
    if not host.is_alive:
        return down(f"ICMP: no echo reply from {address} within {seconds(wait)} s "
                    f"({host.packets_sent} sent, 0 received)", timings=timings)
    seen = Observation(response_time_ms=host.avg_rtt, now=time.time())
    failure = first_failure([c.model_dump() for c in monitor.conditions], seen)
    return Outcome("down" if failure else "up", failure.cause if failure else None,
                   response_time_ms=round(host.avg_rtt, 3), timings=timings,
                   failed_condition=failure.condition if failure else None)
