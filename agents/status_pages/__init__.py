"""Status pages: components that follow monitors, heartbeats and incidents, kept live as one view per page.

    commands.py  status_page.create / update / delete, and name claims (subdomains, domains)
    fold.py      status-pages (configurations, bindings, source states, incidents) → page models
                 → status-page-views; monitor-events and incident-events watched into status-pages
    reads.py     a page's configuration with live statuses, a component's statistics
    rules        tables/status_pages.py
"""
from __future__ import annotations

from agents.status_pages import commands, reads
from agents.status_pages.fold import REFRESH_EVERY, TAKE, WITHIN, IncidentWatch, PageFolder, StateWatch
from engine import topics
from engine.app import Engine
from engine.component import Component, Stream, Ticks
from engine.dead_letters import DeadLetters

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    folder = PageFolder(engine, DeadLetters(engine.state))
    return Component(
        name="status_pages",
        streams=(Stream(topics.STATUS_PAGES, "status-pages", folder, take=TAKE, within=WITHIN),
                 Stream(topics.MONITOR_EVENTS, "status-page-states", StateWatch(folder, DeadLetters(engine.state)),
                        take=TAKE, within=WITHIN),
                 Stream(topics.INCIDENT_EVENTS, "status-page-incidents",
                        IncidentWatch(folder, DeadLetters(engine.state)), take=TAKE, within=WITHIN)),
        commands=COMMANDS,
        ticks=(Ticks(topics.STATUS_PAGES, REFRESH_EVERY),),  # the uptime bars follow the days
        reads=(reads.routes, reads.health_routes(folder.health)),
    )
