"""Where a running check is, and how long each phase took.

A check moves through stages ("resolving", "connecting", "TLS handshake", "no
response headers", ...); when the monitor's timeout cuts it short, the stage it
was in is the cause: `timeout after 10 s (no response headers)`.
"""
from __future__ import annotations

from time import perf_counter

from typing import Any

from probe.outcome import Certificate, Outcome, Timings, milliseconds


class Phases:
    __slots__ = ("started", "stage", "timings", "certificate", "mark", "answered_ms")

    def __init__(self, stage: str = "connecting") -> None:
        self.started = self.mark = perf_counter()
        self.stage = stage
        self.timings = Timings()
        self.certificate: Certificate | None = None
        self.answered_ms: float | None = None   # start to the (final) answer: the check's response time

    def answered(self) -> float:
        self.answered_ms = milliseconds(perf_counter() - self.started)
        return self.answered_ms

    def begin(self, stage: str) -> float:
        """Enter a stage; returns (and keeps) the moment it began."""
        self.stage = stage
        self.mark = perf_counter()
        return self.mark

    def add(self, phase: str, since: float) -> float:
        """Add the time since `since` to a phase (redirects and retries add up); returns now."""
        now = perf_counter()
        setattr(self.timings, phase, round((getattr(self.timings, phase) or 0.0) + milliseconds(now - since), 3))
        return now

    def finish(self) -> Timings:
        self.timings.total_ms = milliseconds(perf_counter() - self.started)
        return self.timings

    def down(self, cause: str, **details: Any) -> Outcome:
        """The check ends down here: its cause, the timings so far and any certificate already seen."""
        return Outcome("down", cause, timings=self.finish(), certificate=self.certificate, **details)
