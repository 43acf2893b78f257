"""Monitors: configuration by command, check results folded into state and statistics, owner reads.

    fold.py      check-results → monitor_data → monitor-events
    commands.py  monitor.create / update / delete / pause / resume
    reads.py     a monitor, its uptime, performance, checks and state changes; the worker's health
    rules        tables/monitor_state.py, tables/uptime.py, tables/monitor_views.py
"""
from __future__ import annotations

from agents.monitors import commands, reads
from agents.monitors.fold import TAKE, CheckFolder
from engine import topics
from engine.app import Engine
from engine.component import Component, Stream, Ticks
from engine.dead_letters import DeadLetters

#: how often each owned partition of check-results is told to expire what is past retention (seconds);
#: cheap (a seek per monitor), and soon after start even if workers restart often
RETENTION_TICK = 600.0

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    folder = CheckFolder(engine, DeadLetters(engine.state))
    return Component(
        name="monitors",
        streams=(Stream(topics.CHECK_RESULTS, "checks", folder, take=TAKE),),
        commands=COMMANDS,
        reads=(reads.routes, reads.health_routes(folder.health)),
        ticks=(Ticks(topics.CHECK_RESULTS, RETENTION_TICK),),  # the fold expires what is past retention
    )
