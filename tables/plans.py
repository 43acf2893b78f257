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
    requests_per_minute: int    # per API key, or per person
    monitors: int | None        # None: no limit
    heartbeats: int | None
    members: int | None
    #: webhook events a minute, to one webhook and to all of the team's webhooks (their ingest needs no key)
    webhook_events_per_minute: int = 300
    team_webhook_events_per_minute: int = 600

    @property
    def team_requests_per_minute(self) -> int:
        """Every key and person of the team together: new keys do not multiply the team's share."""
        return self.requests_per_minute * TEAM_SHARE

    def limit_of(self, collection: str) -> int | None:
        """The most resources of `collection` ("monitors", "heartbeats") a team on this plan may hold."""
        return getattr(self, collection, None) if collection in ("monitors", "heartbeats") else None

    def to_dict(self) -> dict:
        return {**asdict(self), "team_requests_per_minute": self.team_requests_per_minute}


TEAM_SHARE = 5   # a team's keys and people together may make 5 times one key's requests

PLANS: dict[str, Plan] = {plan.name: plan for plan in (
    Plan("free", 60, monitors=10, heartbeats=10, members=3),
    Plan("starter", 120, monitors=50, heartbeats=50, members=10, team_webhook_events_per_minute=1200),
    Plan("growth", 180, monitors=100, heartbeats=100, members=25, webhook_events_per_minute=600,
         team_webhook_events_per_minute=3000),
    Plan("pro", 300, monitors=250, heartbeats=250, members=50, webhook_events_per_minute=1200,
         team_webhook_events_per_minute=6000),
    Plan("business", 600, monitors=1000, heartbeats=1000, members=None, webhook_events_per_minute=3000,
         team_webhook_events_per_minute=30_000),
    Plan("self-hosted", 100_000, monitors=None, heartbeats=None, members=None, webhook_events_per_minute=1_000_000,
         team_webhook_events_per_minute=1_000_000),
)}


def plan_named(name: str | None) -> Plan:
    """The plan called `name`; an unknown or missing name is treated as free (the safe side)."""
    return PLANS.get(name or "free", PLANS["free"])
