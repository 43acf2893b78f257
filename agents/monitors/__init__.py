"""Monitors: configuration by command, check results folded into state and statistics, owner reads.

    fold.py      check-results (results; configure, pause, resume, purge; retention and due ticks)
                 → monitor_data → monitor-events
    commands.py  monitor.create / update / delete / pause / resume
    reads.py     a monitor, its uptime, performance, checks and state changes; the worker's health
    rules        tables/monitor_state.py, tables/maintenance.py, tables/uptime.py, tables/monitor_views.py
    timers       the due timer: a `due` tick to owned partitions with a region going stale or a
                 maintenance window opening or closing (tables/monitor_data.py, due index)
"""
from __future__ import annotations

from agents.monitors import commands, reads
from agents.monitors.fold import TAKE, CheckFolder
from engine import ownership, topics
from engine.app import Engine
from engine.component import Component, Stream, Ticks, Timer
from engine.dead_letters import DeadLetters
from tables.monitor_data import DUE_INDEX

#: how often each owned partition of check-results is told to expire what is past retention (seconds);
#: cheap (a seek per monitor), and soon after start even if workers restart often
RETENTION_TICK = 600.0
RETICK_AFTER = 2.0   # a due tick not applied by then is sent again (seconds)

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    folder = CheckFolder(engine, DeadLetters(engine.state))

    def is_due(partition: int, now: float) -> bool:  # one seek per partition, however many monitors it holds
        return bool(folder.data.scan(partition, *DUE_INDEX.until(int(now * 1000)), limit=1))

    due_timer = ownership.due_ticks(engine.app, topics.CHECK_RESULTS, is_due, folder.ticks_applied, RETICK_AFTER, "due")

    return Component(
        name="monitors",
        streams=(Stream(topics.CHECK_RESULTS, "checks", folder, take=TAKE),),
        commands=COMMANDS,
        reads=(reads.routes, reads.health_routes(folder.health)),
        ticks=(Ticks(topics.CHECK_RESULTS, RETENTION_TICK),),  # the fold expires what is past retention
        timers=(Timer(engine.settings.monitor_tick, due_timer),),  # stale regions, maintenance windows
    )
