"""mail → mail sent (SMTP or the outbox), retried with backoff, dead-lettered when it cannot go.

1. the topic: `mail`, keyed by recipient: one message per mail (schemas/mail.py),
   emitted by the account and team commands with an id derived from the command;
2. the state: nothing durable; the ids of mail this worker sent lately, so a
   message redelivered after a rebalance is not mailed twice (a crash between
   sending and committing can still repeat one, with the same Message-ID);
3. the transitions: sent; or, after a failure, tried again after 1, 2, 4, 8
   and 16 s, then dead-lettered with the last error. A malformed message, or
   one the server refused for good (5xx), is dead-lettered at once;
4. the effects: the mail itself, and dead letters. Each mail is awaited in
   turn on this topic alone: a slow server holds up mail, never another agent.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import ValidationError

from engine import topics
from engine.dead_letters import DeadLetters
from engine.mail import Mailer, MailError
from schemas.validation import field_errors

log = logging.getLogger(__name__)

BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds before each retry; then the mail is dead-lettered
REMEMBERED = 10_000                    # ids of sent mail kept to skip redelivered messages


class Courier:
    """Sends each message of the `mail` topic, retrying a failure a bounded number of times."""

    def __init__(self, mailer: Mailer, dead_letters: DeadLetters, backoff: tuple[float, ...] = BACKOFF,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.mailer = mailer
        self.dead_letters = dead_letters
        self.backoff = backoff
        self.sleep = sleep
        self.sent_ids: OrderedDict[str, None] = OrderedDict()
        self.counts = {"sent": 0, "retried": 0, "failed": 0, "malformed": 0, "duplicates": 0}

    def health(self) -> dict:
        return {**self.counts, "transport": self.mailer.transport}

    async def deliver(self, partition: int, offset: int, value: bytes | None) -> bool:
        """Send one message's mail; True if it went to dead letters instead (the caller flushes them)."""
        try:
            message = orjson.loads(value or b"")
        except orjson.JSONDecodeError as exc:
            return self._reject(partition, offset, value, f"not JSON: {exc}")
        mail_id = message.get("id") if isinstance(message, dict) else None
        if isinstance(mail_id, str) and mail_id in self.sent_ids:
            self.counts["duplicates"] += 1
            return False
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.mailer.send(message)
            except ValidationError as exc:
                return self._reject(partition, offset, value, "invalid mail message", field_errors(exc))
            except MailError as exc:
                if exc.permanent or attempt > len(self.backoff):
                    self.counts["failed"] += 1
                    tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
                    reason = f"mail {mail_id} ({message['template']}) to {message['to']} not sent after {tries}: {exc}"
                    log.error("%s", reason)
                    self.dead_letters.send(topics.MAIL, partition, offset, 0, value, reason)
                    return True
                pause = self.backoff[attempt - 1]
                log.warning("mail %s to %s not sent (attempt %d): %s; trying again in %g s",
                            mail_id, message["to"], attempt, exc, pause)
                self.counts["retried"] += 1
                await self.sleep(pause)
            except Exception as exc:  # a bug must not stop the stream: keep the message, go on
                log.exception("sending mail %s failed", mail_id)
                self.counts["failed"] += 1
                self.dead_letters.send(topics.MAIL, partition, offset, 0, value, f"failed: {exc!r}")
                return True
            else:
                self.counts["sent"] += 1
                self._remember(mail_id)
                return False

    def _reject(self, partition: int, offset: int, value: bytes | None, reason: str,
                errors: dict[str, str] | None = None) -> bool:
        self.counts["malformed"] += 1
        self.dead_letters.send(topics.MAIL, partition, offset, 0, value, reason, errors)
        return True

    def _remember(self, mail_id: str) -> None:
        self.sent_ids[mail_id] = None
        if len(self.sent_ids) > REMEMBERED:
            self.sent_ids.popitem(last=False)

