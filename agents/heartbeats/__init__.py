"""Heartbeats: cron jobs and workers check in; a missed interval is detected by ticks through the topic.

    fold.py      heartbeats (check-ins, configure, purge, tick) → heartbeat_data → monitor-events
    commands.py  heartbeat.create / update / delete
    reads.py     a heartbeat, its events and statistics; which heartbeats exist for the check-in URLs
    rules        tables/heartbeat_state.py, tables/heartbeat_schedule.py, tables/heartbeat_views.py
"""
from __future__ import annotations

from agents.heartbeats import commands, reads
from agents.heartbeats.fold import SETTLE, TAKE, WITHIN, HeartbeatFolder
from engine import ownership, topics
from engine.app import Engine
from engine.component import Component, Stream, Timer
from engine.dead_letters import DeadLetters
from tables.heartbeat_data import due_range

TICK_EVERY = 0.25          # how often the timer looks for due deadlines (seconds)
RETICK_AFTER = 1.0         # a tick not applied by then is sent again (seconds)

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    folder = HeartbeatFolder(engine, DeadLetters(engine.state))
    ticks = ownership.DueTicks(engine.app, topics.HEARTBEATS, folder.ticks_applied, RETICK_AFTER)

    def has_deadline_due(partition: int, now: float) -> bool:
        low, high = due_range(int((now - SETTLE) * 1000))
        return bool(folder.data.scan(partition, low, high, limit=1))

    async def deadline_timer() -> None:
        """A tick, with this worker's clock, to each owned partition that has a deadline due."""
        await ticks.send(has_deadline_due)

    return Component(
        name="heartbeats",
        streams=(Stream(topics.HEARTBEATS, "heartbeats", folder, take=TAKE, within=WITHIN),),
        commands=COMMANDS,
        reads=(reads.routes, reads.health_routes(folder.health)),
        timers=(Timer(TICK_EVERY, deadline_timer),),
    )
