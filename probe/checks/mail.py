"""smtp, pop, imap: read the greeting (220 / +OK / * OK); with `tls: starttls` upgrade the
connection (EHLO+STARTTLS / STLS / STARTTLS) and record the certificate; `tls: implicit`
(ports 465, 995, 993) shakes hands first. The session ends politely (QUIT / LOGOUT)."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probe.checks.streams import guarded, open_stream, upgrade
from probe.conditions import Observation, first_failure
from probe.outcome import Outcome
from probe.phases import Phases
from schemas.monitor import DEFAULT_PORTS, MonitorSpec

if TYPE_CHECKING:
    import ssl

    from probe.session import ProbeSession

MAX_LINES = 64   # lines of one multi-line SMTP reply


@dataclass(frozen=True, slots=True)
class MailProtocol:
    name: str
    greetings: tuple[str, ...]
    starttls: bytes
    upgraded: str       # the reply that lets the handshake start
    goodbye: bytes


PROTOCOLS = {
    "smtp": MailProtocol("SMTP", ("220",), b"STARTTLS\r\n", "220", b"QUIT\r\n"),
    "pop": MailProtocol("POP3", ("+OK",), b"STLS\r\n", "+OK", b"QUIT\r\n"),
    "imap": MailProtocol("IMAP", ("* OK", "* PREAUTH"), b"a1 STARTTLS\r\n", "a1 OK", b"a2 LOGOUT\r\n"),
}


async def read_reply(reader: asyncio.StreamReader, kind: str, tag: str | None = None) -> list[str]:
    """One reply: SMTP's `250-...` lines up to `250 ...`, IMAP's untagged lines up to `tag`, else one line."""
    lines = []
    while len(lines) < MAX_LINES:
        raw = await reader.readline()
        if not raw:
            raise asyncio.IncompleteReadError(b"", None)
        line = raw.decode(errors="replace").rstrip("\r\n")
        lines.append(line)
        if kind == "smtp" and line[3:4] == "-":
            continue
        if tag is not None and not line.startswith(tag + " "):
            continue
        break
    return lines


def _quoted(lines: list[str]) -> str:
    return '"' + " / ".join(lines)[:200] + '"'


async def check_mail(monitor: MonitorSpec, session: ProbeSession) -> Outcome:
    protocol = PROTOCOLS[monitor.type]
    port = monitor.port or DEFAULT_PORTS[monitor.type]

    async def attempt(phases: Phases, tls: ssl.SSLContext) -> Outcome:
        reader, writer = await open_stream(monitor.host, port, phases,
                                           tls if monitor.tls == "implicit" else None)
        try:
            phases.begin("no greeting")
            greeting = await read_reply(reader, monitor.type)
            answered = phases.answered()
            code = int(greeting[-1][:3]) if monitor.type == "smtp" and greeting[-1][:3].isdigit() else None
            if not greeting[-1].startswith(protocol.greetings):
                return phases.down(f"{protocol.name}: unexpected greeting {_quoted(greeting)}", status_code=code,
                                   response_time_ms=answered)
            if monitor.tls == "starttls":
                refused = await _starttls(reader, writer, monitor.type, protocol, phases)
                if refused:
                    return phases.down(refused, status_code=code, response_time_ms=answered)
                await upgrade(writer, tls, monitor.host, phases)
            writer.write(protocol.goodbye)
        finally:
            writer.close()
        seen = Observation(status_code=code, response_time_ms=answered, body="\n".join(greeting),
                           certificate=phases.certificate, now=time.time())
        failure = first_failure([c.model_dump() for c in monitor.conditions], seen)
        return Outcome("down" if failure else "up", failure.cause if failure else None, response_time_ms=answered,
                       status_code=code, timings=phases.finish(), certificate=phases.certificate,
                       failed_condition=failure.condition if failure else None)

    return await guarded(monitor.host, monitor.timeout_seconds, not monitor.skip_ssl_error, session, attempt)


async def _starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str,
                    protocol: MailProtocol, phases: Phases) -> str | None:
    """Ask for the upgrade; the cause when the server will not, None when the handshake may start."""
    phases.stage = "STARTTLS"
    if kind == "smtp":
        writer.write(b"EHLO pingstream-probe\r\n")
        hello = await read_reply(reader, kind)
        if not hello[-1].startswith("250"):
            return f"SMTP: EHLO refused: {_quoted(hello)}"
        if not any(line[4:].upper().startswith("STARTTLS") for line in hello):
            return "SMTP: the server does not offer STARTTLS"
    writer.write(protocol.starttls)
    answer = await read_reply(reader, kind, "a1" if kind == "imap" else None)
    if not answer[-1].startswith(protocol.upgraded):
        return f"{protocol.name}: STARTTLS refused: {_quoted(answer)}"
    return None
