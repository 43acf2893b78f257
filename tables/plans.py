"""Plans: how many requests a minute a key may make and how many resources a team may hold.

The hosted plans are free … business; `self-hosted` is what an operator's own
organisation gets (`make up`, `pingstream bootstrap`): limits high enough never
to get in the way of their own scripts, still counted and reported.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    requests_per_minute: int
    monitors: int | None        # None: no limit
    heartbeats: int | None
    members: int | None

    def limit_of(self, collection: str) -> int | None:
        """The most resources of `collection` ("monitors", "heartbeats") a team on this plan may hold."""
        return getattr(self, collection, None) if collection in ("monitors", "heartbeats") else None

    def to_dict(self) -> dict:
        return asdict(self)


PLANS: dict[str, Plan] = {plan.name: plan for plan in (
    Plan("free", 60, monitors=10, heartbeats=10, members=3),
    Plan("starter", 120, monitors=50, heartbeats=50, members=10),
    Plan("growth", 180, monitors=100, heartbeats=100, members=25),
    Plan("pro", 300, monitors=250, heartbeats=250, members=50),
    Plan("business", 600, monitors=1000, heartbeats=1000, members=None),
    Plan("self-hosted", 100_000, monitors=None, heartbeats=None, members=None),
)}


def plan_named(name: str | None) -> Plan:
    """The plan called `name`; an unknown or missing name is treated as free (the safe side)."""
    return PLANS.get(name or "free", PLANS["free"])
