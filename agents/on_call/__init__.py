"""On-call schedules: who is on call for a team, now or at any time; configuration only, in the team's partition.

    commands.py  schedule.create / update / delete (the team's, or a member's own)
    reads.py     a team's or a person's schedules, one schedule, its preview, who is on call at a time
    rules        tables/on_call.py
"""
from __future__ import annotations

from agents.on_call import commands, reads
from engine.app import Engine
from engine.component import Component

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    return Component(name="on_call", commands=COMMANDS, reads=(reads.routes,))
