"""A probe as `GET /v1/probes` shows it: what it checks, from where, and whether it keeps up."""
from __future__ import annotations

from pydantic import BaseModel


class Probe(BaseModel):
    id: str
    region: str
    host: str
    version: str
    #: partitions of the directory this probe was assigned, and the monitors there it checks
    partitions: list[int]
    monitors: int
    checks_per_second: float
    #: how late checks fired, p99 over the last report (a probe that cannot keep up says so here)
    schedule_lag_p99_ms: float
    #: slots skipped because a monitor's previous check was still running
    skipped_slots: int
    in_flight: int
    results_pending: int
    results_dropped: int
    started_at: float
    last_seen: float
    #: no report for 3 report intervals: stopped without saying so, or cut off
    stale: bool
