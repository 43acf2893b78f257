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

    def is_due(partition: int, now: float) -> bool:
        return bool(folder.data.scan(partition, *due_range(int((now - SETTLE) * 1000)), limit=1))

    deadline_timer = ownership.due_ticks(engine.app, topics.HEARTBEATS, is_due, folder.ticks_applied, RETICK_AFTER)

    return Component(
        name="heartbeats",
        streams=(Stream(topics.HEARTBEATS, "heartbeats", folder, take=TAKE, within=WITHIN),),
        commands=COMMANDS,
        reads=(reads.routes, reads.health_routes(folder.health)),
        timers=(Timer(TICK_EVERY, deadline_timer),),
    )
