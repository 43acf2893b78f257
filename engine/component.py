"""How a feature declares itself to the worker: once, as a `Component`.

A component names the topics it consumes and the fold that applies each
(engine/folding.py), the command kinds it handles (engine/commands.py), its
owner reads (engine/owner_reads.py), its ticks, timers and services, and the counts
it reports. The composition root (agents/__init__.py) lists the components;
engine/worker.py wires them onto the Faust app. Nothing registers itself by
being imported.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import mode
from aiohttp import web

from engine.folding import Fold

#: handler(applier, partition, offset, command): applies one command kind in the entity's partition
CommandHandler = Callable[[Any, int, int, dict], None]


@dataclass(frozen=True, slots=True)
class Stream:
    """A topic this component consumes with the one fold loop (or, for effects, a loop of its own)."""

    topic: str
    name: str                       # the Faust agent's name
    fold: Fold | None = None
    take: int = 200                 # messages folded per flush at most
    within: float | None = None     # the longest a batch waits to fill; None: settings.flush_interval
    ready: asyncio.Event | None = None
    after: Callable[[], None] | None = None
    #: instead of a fold: consume the Faust stream yourself (an effect such as sending mail)
    consume: Callable[[Any], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class Timer:
    every: float                    # seconds
    tick: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Ticks:
    """Time goes through the topic (invariant 3): every `every` seconds, a tick with this worker's clock
    to each partition of `topic` it serves; the fold owning the partition acts on it, in order."""

    topic: str
    every: float


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    streams: tuple[Stream, ...] = ()
    commands: Mapping[str, CommandHandler] = field(default_factory=dict)
    reads: tuple[web.RouteTableDef, ...] = ()
    ticks: tuple[Ticks, ...] = ()
    timers: tuple[Timer, ...] = ()
    services: tuple[type[mode.Service], ...] = ()
    #: name -> counts, shown in the worker's incident-engine health
    health: Mapping[str, Callable[[], dict]] = field(default_factory=dict)
