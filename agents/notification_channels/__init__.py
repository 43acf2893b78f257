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
from agents.notification_channels.fold import WITHIN, NotificationFold
from engine import ownership, topics
from engine.app import Engine
from engine.component import Component, Stream, Timer
from engine.dead_letters import DeadLetters

COMMANDS = commands.COMMANDS
LOOK_EVERY = 0.5     # how often the timer looks for retries due (seconds)
RETICK_AFTER = 1.0   # a tick not applied by then is sent again (seconds)


def component(engine: Engine) -> Component:
    fold = NotificationFold(engine, DeadLetters(engine.state))

    # a partition gets a tick only when a retry is due there: an idle topic stays quiet
    retry_timer = ownership.due_ticks(engine.app, topics.NOTIFICATION_DELIVERIES, fold.has_due, fold.ticks_applied,
                                      RETICK_AFTER)

    class Senders(mode.Service):
        async def on_stop(self) -> None:
            await fold.close()

    return Component(
        name="notification_channels",
        streams=(Stream(topics.NOTIFICATION_DELIVERIES, "notification-deliveries", fold, within=WITHIN,
                        after=fold.launch),),
        commands=COMMANDS,
        reads=(reads.routes,),
        timers=(Timer(LOOK_EVERY, retry_timer),),
        services=(Senders,),
        health={"notification_channels": fold.health},
    )
