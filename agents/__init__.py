"""The features of a worker, each declared once as a component, and the one place that lists them.

Each feature is a package: `fold.py` (the topic it folds into its tables),
`commands.py` (the command kinds it applies), `reads.py` (its owner reads),
and `__init__.py` declaring its `Component` (engine/component.py). Its pure
rules live in tables/.
"""
from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from agents import (
    accounts, alert_channels, certificates, heartbeats, incidents, mail, monitors, notification_channels,
    on_call, org_index, pages, paging_groups, rulesets, status_pages, teams, webhooks,
)
from engine.app import Engine, build_engine
from engine.component import CommandHandler
from engine.settings import Settings
from engine.worker import assemble
from engine.worker import command_handlers as command_handlers_of

#: every feature a worker runs, in the order they are wired
FEATURES = (monitors, org_index, heartbeats, webhooks, rulesets, incidents, alert_channels, teams, accounts, mail,
            certificates, on_call, paging_groups, notification_channels, status_pages, pages)


def build_worker(settings: Settings, public_app: Callable[[], web.Application] | None = None) -> Engine:
    """A worker: the engine's runtime with every feature's component wired onto it."""
    engine = build_engine(settings)
    return assemble(engine, [feature.component(engine) for feature in FEATURES], public_app)


def command_handlers() -> dict[str, CommandHandler]:
    """Every feature's command handlers by kind (what the commands agent of a worker applies)."""
    return command_handlers_of((feature.__name__, feature.COMMANDS) for feature in FEATURES)
