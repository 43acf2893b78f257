"""Teams (organisations): plan, members, invitations, API keys; the access records every API process follows.

    commands.py  team.* / key.* / invitation.* / member.*
    reads.py     a team
    rules        tables/teams.py, tables/access.py, tables/plans.py
"""
from __future__ import annotations

from agents.teams import commands, reads
from engine.app import Engine
from engine.component import Component

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    return Component(name="teams", commands=COMMANDS, reads=(reads.routes,))
