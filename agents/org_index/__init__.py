"""Organisation indexes: the ids each organisation owns, for lists that cost a page; plan limits; usage.

    commands.py  index.add / index.remove (forwarded by a resource's partition)
    reads.py     a page of an organisation's index; a partition's share of its usage
    rules        tables/org_index.py, tables/usage.py, tables/plans.py
"""
from __future__ import annotations

from agents.org_index import commands, reads
from engine.app import Engine
from engine.component import Component

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    return Component(name="org_index", commands=COMMANDS, reads=(reads.routes,))
