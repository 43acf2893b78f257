"""Incidents: state changes and alerts judged by rulesets become deduplicated incidents with timelines.

    fold.py      monitor-events → incident-signals (StateChangeJudge); incident-signals → incidents (IncidentBook)
    commands.py  incident.create / update (forwarded as signals) and incident.index
    reads.py     incidents, their timelines and actions; a page of an organisation's incident lists
    signals.py   how a fold elsewhere sends a signal to an incident's route
    rules        tables/incidents.py, tables/rulesets.py
"""
from __future__ import annotations

from agents.incidents import commands, reads
from agents.incidents.fold import IncidentBook, StateChangeJudge
from engine import topics
from engine.app import Engine
from engine.component import Component, Stream
from engine.dead_letters import DeadLetters

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    judge = StateChangeJudge(engine, DeadLetters(engine.state))
    book = IncidentBook(engine, DeadLetters(engine.state))
    ready = engine.org_config.ready
    return Component(
        name="incidents",
        streams=(Stream(topics.MONITOR_EVENTS, "state-changes", judge, ready=ready),
                 Stream(topics.INCIDENT_SIGNALS, "incidents", book, ready=ready)),
        commands=COMMANDS,
        reads=(reads.routes,),
        health={"state_changes": judge.health, "incidents": book.health},
    )
