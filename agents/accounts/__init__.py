"""Accounts: people's sign-up, codes, passwords and sessions.

    commands.py  account.* / session.*
    reads.py     an account (with its password hash, for the API's log-in)
    rules        tables/accounts.py
"""
from __future__ import annotations

from agents.accounts import commands, reads
from engine.app import Engine
from engine.component import Component

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    return Component(name="accounts", commands=COMMANDS, reads=(reads.routes,))
