"""Wire declared components onto a worker's Faust app: their streams, commands, owner reads, timers, services.

Every keyed topic a component consumes gets one Faust agent running the one
fold loop (engine/folding.py); every command kind goes to the one commands
agent (engine/commands.py); every owner read to the one server
(engine/owner_reads.py). The engine adds what every worker runs whatever its
components: the org-config follower and the ownership announcements.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from engine import commands, metrics, org_config, ownership, owner_reads, topics
from engine.app import Engine, raw_topic
from engine.component import CommandHandler, Component, Stream, Ticks
from engine.dead_letters import DeadLetters
from engine.folding import fold_batches
from tables.store import writing_as


def command_handlers(declared: Iterable[tuple[str, Mapping[str, CommandHandler]]]) -> dict[str, CommandHandler]:
    """(declarer, {kind: handler}) pairs merged by kind; a kind declared twice is a wiring mistake."""
    handlers: dict[str, CommandHandler] = {}
    for declarer, commands_of in declared:
        for kind, handler in commands_of.items():
            if kind in handlers:
                raise ValueError(f"command kind {kind!r} is declared twice (again by {declarer})")
            handlers[kind] = handler
    return handlers


def run_stream(engine: Engine, spec: Stream) -> None:
    app = engine.app

    async def agent(stream: Any) -> None:
        if spec.consume is not None:
            writing_as(spec.name)  # its flushes (dead letters) take its own writes only
            await spec.consume(stream)
            return
        await fold_batches(engine.state, stream, spec.fold, spec.topic, writer=spec.name, take=spec.take,
                           within=engine.settings.flush_interval if spec.within is None else spec.within,
                           ready=spec.ready, after=spec.after)

    agent.__name__ = agent.__qualname__ = spec.name.replace("-", "_")
    app.agent(raw_topic(app, spec.topic, engine.partitions), name=spec.name)(agent)


def send_ticks(engine: Engine, ticks: Ticks) -> None:
    app = engine.app

    async def tick() -> None:
        await ownership.send_ticks(app, ticks.topic, ownership.serving(app), time.time())

    tick.__name__ = tick.__qualname__ = f"tick_{ticks.topic.replace('-', '_')}"
    app.timer(ticks.every)(tick)


def assemble(engine: Engine, components: Iterable[Component],
             public_app: Callable[[], web.Application] | None = None) -> Engine:
    """Run `components` on `engine`'s app; `public_app`, if given, is served beside the owner reads."""
    components = list(components)
    app = engine.app
    handlers = command_handlers((component.name, component.commands) for component in components)
    applier = commands.CommandApplier(engine, DeadLetters(engine.state), handlers)
    run_stream(engine, Stream(topics.COMMANDS, "commands", applier, take=commands.TAKE, within=commands.WITHIN))
    for component in components:
        for spec in component.streams:
            run_stream(engine, spec)
        for ticks in component.ticks:
            send_ticks(engine, ticks)
        for timer in component.timers:
            app.timer(timer.every)(timer.tick)
        for service in component.services:
            app.service(service)
    app.service(org_config.follow(engine.settings, engine.org_config))
    ownership.announce_ownership(app, engine.state, engine.settings.advertised_worker_url)
    metrics.watch_worker(app, engine.state, ownership.serving)
    healths = {name: health for component in components for name, health in component.health.items()}
    routes = [owner_reads.health_routes(engine.org_config, healths)]
    routes += [table for component in components for table in component.reads]
    app.service(owner_reads.serve(engine, routes, public_app))
    return engine
