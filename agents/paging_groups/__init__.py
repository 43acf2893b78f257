"""Paging groups: named sets of a team's members a page can go to; configuration only, in the team's partition.

    commands.py  group.create / update / delete
    reads.py     the organisation's groups, one group, and who a group reaches
    rules        tables/paging_groups.py
"""
from __future__ import annotations

from agents.paging_groups import commands, reads
from engine.app import Engine
from engine.component import Component

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    return Component(name="paging_groups", commands=COMMANDS, reads=(reads.routes,))
