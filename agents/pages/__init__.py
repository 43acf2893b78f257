"""Pages: messages to people that repeat and escalate until acknowledged, in the team's partition.

    commands.py  page.create / acknowledge / cancel, and page.tick (the timers' clock, through `commands`)
    reads.py     the organisation's pages, one page
    rules        tables/pages.py
"""
from __future__ import annotations

from agents.pages import commands, reads
from engine import ownership, topics
from engine.app import Engine
from engine.component import Component, Timer

TICK_EVERY = 0.2       # how often the timer looks for pages due (seconds): a timer fires within ~0.3 s
RETICK_AFTER = 1.0     # a tick not applied by then is sent again (seconds)

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    clock = commands.CLOCK
    due_timer = ownership.due_ticks(engine.app, topics.COMMANDS, lambda p, now: clock.is_due(engine, p, now),
                                    clock.ticks_applied, RETICK_AFTER, kind="page.tick")
    return Component(name="pages", commands=COMMANDS, reads=(reads.routes,),
                     timers=(Timer(TICK_EVERY, due_timer),),
                     health={"pages": lambda: {"messages_fired_by_timers": clock.fired}})
