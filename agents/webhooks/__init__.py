"""Inbound webhooks: external alerts (any JSON; Alertmanager and Grafana understood) judged by rulesets.

    fold.py      webhook-events → webhook_data → incident-signals
    commands.py  webhook.create / delete
    reads.py     webhooks, their recent events, the owner of a webhook id (for ingest)
    rules        tables/alert_payloads.py, tables/rulesets.py, tables/conditions.py, tables/webhook_data.py
"""
from __future__ import annotations

from agents.webhooks import commands, reads
from agents.webhooks.fold import WebhookFolder
from engine import topics
from engine.app import Engine
from engine.component import Component, Stream
from engine.dead_letters import DeadLetters

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    folder = WebhookFolder(engine, DeadLetters(engine.state))
    return Component(
        name="webhooks",
        streams=(Stream(topics.WEBHOOK_EVENTS, "webhooks", folder, ready=engine.org_config.ready),),
        commands=COMMANDS,
        reads=(reads.routes,),
        health={"webhooks": folder.health},
    )
