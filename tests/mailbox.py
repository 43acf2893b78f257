"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every mail it receives, for tests to read."""
from __future__ import annotations

import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from engine.broker import free_port


class Mailbox:
    """Start it, point PINGSTREAM_SMTP_* at `host`/`port` (security "none"), read what arrives.

    `refuse`: recipients answered 550 (a permanent refusal). `credentials`: a
    (username, password) the server then requires (AUTH over plain text).
    """

    host = "127.0.0.1"

    def __init__(self, refuse: tuple[str, ...] = (), credentials: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.refuse = {address.lower() for address in refuse}
        self.credentials = credentials
        self.logins: list[str] = []
        self.received: list[tuple[list[str], EmailMessage]] = []  # (envelope recipients, the mail)
        self._read: set[int] = set()  # indexes of mail wait_for_mail returned already
        self._lock = threading.Lock()
        auth: dict[str, Any] = {}
        if credentials:
            auth = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        self.controller = Controller(self, hostname=self.host, port=self.port, **auth)

    @property
    def env(self) -> dict[str, str]:
        """The settings that send a pingstream process's mail here."""
        return {"PINGSTREAM_SMTP_HOST": self.host, "PINGSTREAM_SMTP_PORT": str(self.port),
                "PINGSTREAM_SMTP_SECURITY": "none"}

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    # -- aiosmtpd's handler hooks (called on the server's own thread) ---------------

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = (envelope.original_content or envelope.content).replace(b"\r\n", b"\n")  # as a mail client shows it
        mail = message_from_bytes(raw, policy=policy.default)
        with self._lock:
            self.received.append(([a.lower() for a in envelope.rcpt_tos], mail))
        return "250 Message accepted for delivery"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if (login, password) != self.credentials:
            return AuthResult(success=False, handled=False)
        self.logins.append(login)
        return AuthResult(success=True)

    # -- what tests read ---------------------------------------------------------------

    def mail_to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [mail for recipients, mail in self.received if address.lower() in recipients]

    def wait_for_mail(self, to: str, timeout: float = 30.0) -> str:
        """The next mail to `to` not returned before, as "Subject: …\\n\\n<plain-text body>".

        Polls until one arrives; fails with what did arrive at the deadline.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for index, (recipients, mail) in enumerate(self.received):
                    if index not in self._read and to.lower() in recipients:
                        self._read.add(index)
                        return f"Subject: {mail['Subject']}\n\n{mail.get_content()}"
                arrived = [(recipients, mail["Subject"]) for recipients, mail in self.received]
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {to} within {timeout:g} s; the server got: {arrived[-10:]}")
            time.sleep(0.1)
