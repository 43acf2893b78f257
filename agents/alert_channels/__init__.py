"""Alert channels: where pingstream tells others what happened, in signed POSTs retried with backoff.

    fold.py      alert channel deliveries (deliver, attempted, tick, purge) → deliveries → HTTP attempts
    announce.py  how another fold queues an event for the channels subscribed to it
    commands.py  alert.create / rotate / delete (POST /v1/alerts ...)
    reads.py     channels and their deliveries
    rules        tables/alert_channels.py (signature, backoff, views)
"""
from __future__ import annotations

import time

import mode

from agents.alert_channels import commands, reads
from agents.alert_channels.fold import TICK_EVERY, AlertChannelFold
from engine import ownership, topics
from engine.app import Engine
from engine.component import Component, Stream, Timer
from engine.dead_letters import DeadLetters


#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS

def component(engine: Engine) -> Component:
    fold = AlertChannelFold(engine, DeadLetters(engine.state))
    app = engine.app

    async def delivery_tick() -> None:
        await ownership.send_ticks(app, topics.ALERT_CHANNEL_DELIVERIES, ownership.serving(app), time.time())

    class DeliveryClient(mode.Service):
        async def on_stop(self) -> None:
            await fold.close()

    return Component(
        name="alert_channels",
        streams=(Stream(topics.ALERT_CHANNEL_DELIVERIES, "notifications", fold, ready=engine.org_config.ready,
                        after=fold.launch),),
        commands=COMMANDS,
        reads=(reads.routes,),
        timers=(Timer(TICK_EVERY, delivery_tick),),
        services=(DeliveryClient,),
        health={"notifications": fold.health},  # the key the health check has always shown
    )
