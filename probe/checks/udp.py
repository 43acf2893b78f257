"""udp: send the monitor's `body` as one datagram to host:port and expect a reply within the timeout.

The socket is connected, so the ICMP port-unreachable a closed port answers
arrives as ConnectionRefusedError: down with cause "port unreachable".
"""
from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING

from probe.causes import timed_out, unreachable
from probe.checks.streams import MAX_REPLY, addresses
from probe.conditions import Observation, first_failure
from probe.outcome import Outcome
from probe.phases import Phases
from schemas.monitor import MonitorSpec

if TYPE_CHECKING:
    from probe.session import ProbeSession


class FirstReply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.reply.done():
            self.reply.set_result(data[:MAX_REPLY])

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def check_udp(monitor: MonitorSpec, session: ProbeSession) -> Outcome:
    phases = Phases("resolving")
    transport = None
    try:
        async with asyncio.timeout(monitor.timeout_seconds):
            address = (await addresses(monitor.host, monitor.port, socket.SOCK_DGRAM, phases))[0]
            # our own socket: asyncio's sendto drops an empty datagram, which is a fine probe of its own
            sock = socket.socket(socket.AF_INET6 if len(address) == 4 else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.connect(address)
                transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(FirstReply,
                                                                                                sock=sock)
            except BaseException:
                sock.close()
                raise
            phases.begin("no reply")
            sock.send((monitor.body or "").encode())
            reply = await protocol.reply
    except TimeoutError:
        return phases.down(timed_out(monitor.timeout_seconds, phases.stage))
    except ConnectionRefusedError:
        return phases.down("port unreachable")
    except OSError as exc:
        return phases.down(unreachable(exc, monitor.host))
    finally:
        if transport is not None:
            transport.close()
    answered = phases.answered()
    seen = Observation(response_time_ms=answered, body=reply.decode(errors="replace"), now=time.time())
    failure = first_failure([c.model_dump() for c in monitor.conditions], seen)
    return Outcome("down" if failure else "up", failure.cause if failure else None, response_time_ms=answered,
                   timings=phases.finish(), failed_condition=failure.condition if failure else None)
