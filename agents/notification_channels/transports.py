"""One small sender per channel type: email, webhook, sms, voice, apprise. Each returns an attempt's outcome.

An outcome is {"outcome": "sent" | "failed" | "unknown", "status_code", "error",
"final"}: "failed" means certainly not received (tried again after a backoff,
unless `final`: trying again cannot help); "unknown" means it may have been
received (a timeout): never tried again, so nothing is sent twice.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import apprise
import orjson

from engine.mail import Mailer, MailError
from engine.outbound import allowed_networks, guarded_session, is_public, outcome_of
from engine.sealing import unseal
from engine.settings import Settings
from tables import alert_channels as signing
from tables.monitor_views import iso

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds one attempt may take
EVENTS = {"message": "notification.message", "code": "notification.verification", "test": "notification.test"}


def sent(status_code: int | None = None, detail: str | None = None) -> dict:
    return {"outcome": "sent", "status_code": status_code, "error": None, **({"detail": detail} if detail else {})}


def failed(error: str, status_code: int | None = None, final: bool = False) -> dict:
    return {"outcome": "failed", "status_code": status_code, "error": error, "final": final}


def unknown(error: str) -> dict:
    return {"outcome": "unknown", "status_code": None, "error": error}


class Transports:
    """Sends one delivery through its channel; holds the HTTP clients and the mailer of a worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mailer = Mailer(settings)
        self.allowed = allowed_networks(settings.outbound_allow)
        self.tenant_http: aiohttp.ClientSession | None = None    # tenant-named URLs: internal addresses refused
        self.provider_http: aiohttp.ClientSession | None = None  # the operator's SMS provider

    async def send(self, channel: dict, delivery: dict, subject: str, text: str, code: str | None) -> dict:
        sender = getattr(self, f"send_{channel['type']}")
        try:
            return await sender(channel, delivery, subject, text, code)
        except Exception as exc:  # a bug must not stop deliveries: the attempt is recorded as failed
            log.exception("sending %s through %s failed", delivery["id"], channel["id"])
            return failed(f"internal error: {type(exc).__name__}")

    async def send_email(self, channel: dict, delivery: dict, subject: str, text: str, code: str | None) -> dict:
        mail = {"id": f"{channel['id']}:{delivery['id']}", "to": channel["address"], "template": "notification",
                "data": {"subject": subject, "text": text}}
        try:
            await self.mailer.send(mail)
        except MailError as exc:  # the tenant sees a class; the operator's log has the server's words
            log.warning("notification mail %s: %s", mail["id"], exc.reason)
            if isinstance(exc.__cause__, asyncio.TimeoutError):  # the server may have taken it before going quiet
                return unknown("the mail server did not answer in time")
            return failed("the mail server refused the message" if exc.permanent
                          else "the mail server could not take the message", final=exc.permanent)
        return sent()

    async def send_webhook(self, channel: dict, delivery: dict, subject: str, text: str, code: str | None) -> dict:
        secret = unseal(self.settings.secrets_key, channel["secret"])
        delivery_id = f"{channel['id']}:{delivery['id']}"
        event = EVENTS[delivery["kind"]]
        body = orjson.dumps({"event": event, "id": delivery["id"], "timestamp": iso(delivery["created_at"]),
                             "channel_id": channel["id"], "subject": subject, "text": text,
                             "link": delivery.get("link"), "data": delivery.get("data") or {},
                             **({"code": code} if code is not None else {})})
        headers = signing.headers(secret, int(time.time()), body, delivery_id, event)
        if self.tenant_http is None:
            self.tenant_http = guarded_session(self.settings.outbound_allow)
        try:
            async with self.tenant_http.post(channel["url"], data=body, headers=headers, allow_redirects=False,
                                             timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as response:
                await response.read()
        except asyncio.TimeoutError:
            return unknown(f"timed out after {TIMEOUT:g} s")
        except aiohttp.ClientError as exc:
            return failed(outcome_of(exc))
        return sent(response.status) if signing.succeeded(response.status) else failed(
            f"answered {response.status}", response.status)

    async def send_sms(self, channel: dict, delivery: dict, subject: str, text: str, code: str | None) -> dict:
        return await self.provider(channel, "Messages.json", {"Body": f"{subject}\n{text}"[:1600]})

    async def send_voice(self, channel: dict, delivery: dict, subject: str, text: str, code: str | None) -> dict:
        said = f"Your pingstream verification code is {' '.join(code)}." if code is not None else f"{subject}. {text}"
        said = said.replace("&", "and").replace("<", " ").replace(">", " ")[:1000]
        twiml = f"<Response><Say>{said}</Say><Pause length=\"1\"/><Say>{said}</Say></Response>"
        return await self.provider(channel, "Calls.json", {"Twiml": twiml})

    async def provider(self, channel: dict, resource: str, fields: dict[str, str]) -> dict:
        """POST to the operator's SMS provider in Twilio's REST shape (form-encoded, basic auth)."""
        s = self.settings
        if not s.sms_url:
            return failed("no SMS provider is configured (PINGSTREAM_SMS_URL)", final=True)
        if self.provider_http is None:
            self.provider_http = aiohttp.ClientSession()
        auth = aiohttp.BasicAuth(s.sms_username, s.sms_password) if s.sms_username else None
        try:
            async with self.provider_http.post(f"{s.sms_url.rstrip('/')}/{resource}", auth=auth,
                                               data={"To": channel["phone"], "From": s.sms_from, **fields},
                                               timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as response:
                answer = await response.read()
        except asyncio.TimeoutError:
            return unknown(f"the SMS provider did not answer within {TIMEOUT:g} s")
        except aiohttp.ClientError as exc:
            return failed(f"the SMS provider could not be reached: {type(exc).__name__}")
        try:
            said = orjson.loads(answer)
        except orjson.JSONDecodeError:
            said = {}
        said = said if isinstance(said, dict) else {}
        if 200 <= response.status < 300:
            return sent(response.status, said.get("sid"))
        reason = f"the SMS provider answered {response.status}: {str(said.get('message', ''))[:200]}".rstrip(": ")
        # 4xx: this request is refused (a bad number, bad credentials): the same one cannot succeed later
        return failed(reason, response.status, final=400 <= response.status < 500 and response.status not in (408, 429))

    async def send_apprise(self, channel: dict, delivery: dict, subject: str, text: str, code: str | None) -> dict:
        url = unseal(self.settings.secrets_key, channel["sealed_url"])
        if not await self.reaches_public(url):
            return failed("refused: not a public address", final=True)
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return failed("not a URL apprise understands", final=True)
        result = await notifier.async_notify(body=text, title=subject)
        if result:
            return sent()
        if getattr(result, "timeout_count", 0):
            return unknown("the service did not answer in time")
        return failed("the service refused the message or could not be reached")

    async def reaches_public(self, url: str) -> bool:
        """Does the URL's host, where it is a host (json://, ntfy://host, gotify://...), resolve to public
        addresses only (or the operator's allowed networks)? A host part that is a token (slack://T/B/C) is
        not looked up: apprise sends those to the service's own address."""
        host = urlsplit(url).hostname
        if not host or ("." not in host and ":" not in host and host != "localhost"):
            return True
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            return True  # unresolvable: apprise fails to connect, and says so
        return all(is_public(entry[4][0], self.allowed) for entry in found)

    async def close(self) -> None:
        for session in (self.tenant_http, self.provider_http):
            if session is not None:
                await session.close()
