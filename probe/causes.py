"""Why a target could not be reached, in the words a person reads on a status page."""
from __future__ import annotations

import errno
import socket

BY_ERRNO = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.ECONNABORTED: "connection aborted",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection closed by the server",
    errno.EADDRNOTAVAIL: "address not available",
    errno.EMFILE: "probe out of sockets (too many open files)",
}


def seconds(value: float) -> str:
    """10 -> "10", 2.5 -> "2.5"."""
    return f"{value:g}"


def timed_out(timeout: float, stage: str) -> str:
    """e.g. `timeout after 10 s (no response headers)`."""
    return f"timeout after {seconds(timeout)} s ({stage})"


def unreachable(error: BaseException, host: str) -> str:
    """An OSError (or one wrapped by aiohttp) as a short cause; a failed name lookup is a DNS cause."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return name_lookup(error, host)
    if isinstance(error, OSError) and error.errno in BY_ERRNO:
        return BY_ERRNO[error.errno]
    detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return f"connection failed: {detail}"


def name_lookup(error: socket.gaierror, host: str) -> str:
    if error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
        return f"DNS: NXDOMAIN for {host}"
    if error.errno == socket.EAI_AGAIN:
        return f"DNS: temporary failure resolving {host}"
    return f"DNS: cannot resolve {host} ({error.strerror})"
