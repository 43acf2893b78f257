"""Alert channels: where pingstream tells others what happened, in signed POSTs retried with backoff.

    fold.py      alert channel deliveries (deliver, attempted, tick, purge) → deliveries → HTTP attempts
    announce.py  how another fold queues an event for the channels subscribed to it
    commands.py  alert.create / rotate / delete (POST /v1/alerts ...)
    reads.py     channels and their deliveries
    rules        tables/alert_channels.py (signature, backoff, views)
"""
from __future__ import annotations

import mode

from agents.alert_channels import commands, reads
from agents.alert_channels.fold import TICK_EVERY, AlertChannelFold
from engine import topics
from engine.app import Engine
from engine.component import Component, Stream, Ticks
from engine.dead_letters import DeadLetters

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    fold = AlertChannelFold(engine, DeadLetters(engine.state))

    class DeliveryClient(mode.Service):
        async def on_stop(self) -> None:
            await fold.close()

    return Component(
        name="alert_channels",
        streams=(Stream(topics.ALERT_CHANNEL_DELIVERIES, "alert-channels", fold, ready=engine.org_config.ready,
                        after=fold.launch),),
        commands=COMMANDS,
        reads=(reads.routes,),
        ticks=(Ticks(topics.ALERT_CHANNEL_DELIVERIES, TICK_EVERY),),  # retries due are launched
        services=(DeliveryClient,),
        health={"notifications": fold.health},  # the key the health check has always shown
    )
