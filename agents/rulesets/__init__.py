"""Rulesets: how an organisation's events are judged; configuration only, followed by every worker.

    commands.py  ruleset.create / update / actions / delete, published to org-config
    reads.py     an organisation's rulesets, grouped by scope
    rules        tables/rulesets.py, tables/conditions.py
"""
from __future__ import annotations

from agents.rulesets import commands, reads
from engine.app import Engine
from engine.component import Component

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    return Component(name="rulesets", commands=COMMANDS, reads=(reads.routes,))
