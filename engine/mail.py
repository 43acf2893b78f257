"""Outgoing mail: a `mail` message rendered to plain text, sent by SMTP or written to the outbox.

`render` turns one message (schemas/mail.py) into the mail people get; every
code stands on a line of its own ("Your confirmation code: 123456"), so a
person or a script finds it. `Mailer.send` sends it through the configured
SMTP server, or, with no server configured, writes it as an .eml file to
DATA_DIR/outbox, which is how a development setup reads its mail.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

import aiosmtplib

from engine.settings import Settings
from schemas.mail import MAIL, AccountExistsMail, ConfirmationMail, InvitationMail, NotificationMail, RecoveryMail

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 15.0  # seconds per SMTP step (connect, each command); a hung server fails, then is retried
DEFAULT_FROM = Settings().mail_from
UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class MailError(Exception):
    """A mail was not sent. `permanent`: the server refused it for good, so trying again cannot help."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


# -- the templates -----------------------------------------------------------------

def _one_line(text: str) -> str:
    """User-given text in a subject or a line of its own: no line breaks that could forge another."""
    return " ".join(text.split())


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _greeting(name: str) -> str:
    name = _one_line(name)
    return f"Hello {name}," if name else "Hello,"


def confirmation(mail: ConfirmationMail) -> tuple[str, str]:
    data = mail.data
    return f"Your pingstream confirmation code: {data.code}", (
        f"{_greeting(data.name)}\n\n"
        f"Your confirmation code: {data.code}\n\n"
        f"Enter it to confirm this email address ({mail.to}) for pingstream.\n"
        f"It expires in {_count(data.expires_minutes, 'minute')}.\n\n"
        "If you did not sign up for pingstream, ignore this mail.\n")


def recovery(mail: RecoveryMail) -> tuple[str, str]:
    data = mail.data
    return "Reset your pingstream password", (
        f"{_greeting(data.name)}\n\n"
        f"Your recovery code: {data.code}\n\n"
        f"Enter it with a new password to recover the pingstream account {mail.to}.\n"
        f"It expires in {_count(data.expires_minutes, 'minute')}.\n\n"
        "If you did not ask to recover your account, ignore this mail: your password stays as it is.\n")


def account_exists(mail: AccountExistsMail) -> tuple[str, str]:
    return "Someone tried to sign up for pingstream with your address", (
        f"{_greeting(mail.data.name)}\n\n"
        f"Someone asked to sign up for pingstream with this email address ({mail.to}),\n"
        "which already has an account: nothing was changed.\n\n"
        "To sign in, use POST /v1/auth; if you forgot the password, POST /v1/account/recovery.\n"
        "If it was not you, ignore this mail.\n")


def invitation(mail: InvitationMail) -> tuple[str, str]:
    data = mail.data
    inviter, team = _one_line(data.inviter) or "Someone", _one_line(data.team_name)
    subject = f"{inviter} invited you to the team {team} on pingstream"
    return ("Reminder: " + subject if data.reminder else subject), (
        "Hello,\n\n"
        f"{inviter} invited you to join the team \"{team}\" on pingstream with the role {data.role}.\n\n"
        f"Your invitation code: {data.code}\n\n"
        f"To accept, sign in, or sign up, with this email address ({mail.to}), then send\n\n"
        f"  POST /v1/team/{data.team_id}/invitation/{data.invitation_id}/accept\n"
        f"  {{\"code\": \"{data.code}\"}}\n\n"
        f"The invitation expires in {_count(data.expires_days, 'day')}.\n\n"
        "If you do not know why you got this, ignore this mail.\n")


def notification(mail: NotificationMail) -> tuple[str, str]:
    """A notification channel's message: its subject and text as they are (the text ends with why it came)."""
    return _one_line(mail.data.subject), (
        f"{mail.data.text}\n\n-- \nYou get this because {mail.to} is a notification channel on pingstream.\n")


TEMPLATES: dict[str, Callable] = {"confirmation": confirmation, "recovery": recovery, "invitation": invitation,
                                   "account_exists": account_exists, "notification": notification}


def render(message: dict, mail_from: str = DEFAULT_FROM) -> EmailMessage:
    """The mail a `mail` message asks for; raises pydantic's ValidationError if the message is malformed."""
    mail = MAIL.validate_python(message)
    subject, body = TEMPLATES[mail.template](mail)
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "pingstream.local"
    rendered = EmailMessage()
    rendered["From"] = mail_from
    rendered["To"] = mail.to
    rendered["Subject"] = subject
    rendered["Date"] = format_datetime(datetime.now(timezone.utc))
    # the same message id for a repeat of the same mail, so a mail client can tell
    rendered["Message-ID"] = f"<{hashlib.sha256(mail.id.encode()).hexdigest()[:32]}@{domain}>"
    rendered["Auto-Submitted"] = "auto-generated"
    rendered.set_content(body)
    return rendered


# -- the transports ----------------------------------------------------------------

class Mailer:
    """Sends rendered mail through settings.smtp_host, or writes it to settings.outbox when none is set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def transport(self) -> str:
        s = self.settings
        return f"smtp://{s.smtp_host}:{s.smtp_port} ({s.smtp_security})" if s.smtp_host else f"outbox {s.outbox}"

    async def send(self, message: dict) -> None:
        """Raises ValidationError for a malformed message, MailError when the mail did not go out."""
        mail = render(message, self.settings.mail_from)
        if self.settings.smtp_host:
            await self._send_smtp(mail)
        else:
            path = await asyncio.to_thread(self._write_to_outbox, mail, message["id"])
            log.info("mail %s to %s written to %s (no SMTP server configured)", message["id"], mail["To"], path)

    async def _send_smtp(self, mail: EmailMessage) -> None:
        s = self.settings
        server = f"SMTP server {s.smtp_host}:{s.smtp_port}"
        try:
            await aiosmtplib.send(
                mail, sender=parseaddr(s.mail_from)[1], recipients=[mail["To"]],  # not re-read from headers
                hostname=s.smtp_host, port=s.smtp_port,
                username=s.smtp_username or None, password=s.smtp_password or None,
                use_tls=s.smtp_security == "tls", start_tls=s.smtp_security == "starttls",
                timeout=SMTP_TIMEOUT)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise MailError(f"{server} refused the recipient {mail['To']}: {refusals}",
                            permanent=all(r.code >= 500 for r in exc.recipients)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(f"{server} answered {exc.code} {exc.message}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            raise MailError(f"could not send through {server} ({s.smtp_security}): "
                            f"{type(exc).__name__}: {exc}") from exc
        log.info("mail to %s sent through %s", mail["To"], server)

    def _write_to_outbox(self, mail: EmailMessage, mail_id: str) -> Path:
        """<outbox>/<UTC time>-<id>.eml, written under a temporary name and renamed: never seen half-written.

        Mails hold codes that open accounts: the outbox is 0700 and each file is
        created 0600, readable by no one but the worker's user at any moment.
        """
        outbox = self.settings.outbox
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        path = outbox / f"{stamp}-{UNSAFE_IN_FILE_NAME.sub('_', mail_id)[:150]}.eml"
        partial = outbox / f".{path.name}.tmp"
        try:
            outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                out.write(mail.as_bytes())
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        except OSError as exc:
            raise MailError(f"could not write the mail to {path}: {exc}") from exc
        return path
