"""Mail: confirmation and recovery codes, invitations; sent over SMTP (or to an outbox), retried, dead-lettered.

    courier.py   mail → sent, each message awaited in turn on this topic alone
    rendering    engine/mail.py (templates and transports), schemas/mail.py (the messages)
"""
from __future__ import annotations

import logging
from typing import Any

from agents.mail.courier import Courier
from engine import topics
from engine.app import Engine
from engine.component import Component, Stream
from engine.dead_letters import DeadLetters
from engine.mail import Mailer

log = logging.getLogger(__name__)


COMMANDS: dict = {}  # mail is sent, never commanded


def component(engine: Engine) -> Component:
    courier = Courier(Mailer(engine.settings), DeadLetters(engine.state))

    async def send_each(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            if await courier.deliver(message.partition, message.offset, message.value):
                await engine.state.flush()  # the dead letter is in Kafka before the offset is committed

    log.info("mail goes to %s", courier.mailer.transport)
    return Component(name="mail", streams=(Stream(topics.MAIL, "mail", consume=send_each),),
                     health={"mail": courier.health})
