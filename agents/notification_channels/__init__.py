"""Notification channels: how people and teams are told (email, webhook, SMS, voice, chat and push via apprise).

    commands.py    notification_channel.create / update / verify / resend / test / delete
    fold.py        notification-deliveries (send, code, test, claimed, attempted, tick, purge) → sends, logged
    transports.py  one sender per channel type
    notify.py      what another feature calls to tell a person or a team
    reads.py       an owner's channels, a channel's deliveries
    rules          tables/notification_channels.py
"""
from __future__ import annotations

import mode

from agents.notification_channels import commands, reads
from agents.notification_channels.fold import TICK_EVERY, NotificationFold
from engine import topics
from engine.app import Engine
from engine.component import Component, Stream, Ticks
from engine.dead_letters import DeadLetters

COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    fold = NotificationFold(engine, DeadLetters(engine.state))

    class Senders(mode.Service):
        async def on_stop(self) -> None:
            await fold.close()

    return Component(
        name="notification_channels",
        streams=(Stream(topics.NOTIFICATION_DELIVERIES, "notification-deliveries", fold, after=fold.launch),),
        commands=COMMANDS,
        reads=(reads.routes,),
        ticks=(Ticks(topics.NOTIFICATION_DELIVERIES, TICK_EVERY),),  # retries due are launched
        services=(Senders,),
        health={"notification_channels": fold.health},
    )
