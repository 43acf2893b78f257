"""Rulesets: stored per organisation, judged against events. Pure logic.

Keys of the `rulesets` table (the organisation's partition, written by the
commands agent only):

    <org> 00 <ruleset id>    -> {pos, id, org_id, spec, created_at, updated_at}

Every worker also holds them in memory (engine/org_config.py) to judge events
in the event's own partition. When several rulesets match one event, one
incident still opens: it takes the most urgent match (the oldest among equals)
for urgency, team, assignees and actions, and lists every match.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tables.conditions import all_hold
from tables.incidents import URGENCY_RANK
from tables.monitor_views import iso

SEP = b"\x00"


def ruleset_key(org_id: str, ruleset_id: str) -> bytes:
    return org_id.encode() + SEP + ruleset_id.encode()


def org_range(org_id: str) -> tuple[bytes, bytes]:
    head = org_id.encode()
    return head + SEP, head + b"\x01"


def record(config: dict) -> dict:
    """What every worker holds of a ruleset (the org-config record)."""
    return {"kind": "ruleset", "id": config["id"], "org_id": config["org_id"], "created_at": config["created_at"],
            **config["spec"]}


def matching(rulesets: Iterable[Any], document: Any) -> list[Any]:
    """The rulesets (engine.org_config.Ruleset) whose conditions all hold for the document."""
    return [ruleset for ruleset in rulesets if all_hold(ruleset.conditions, document)]


def verdict(matches: list[Any]) -> dict | None:
    """What the incident takes from the matching rulesets; None when nothing matched."""
    if not matches:
        return None
    chosen = max(matches, key=lambda ruleset: (URGENCY_RANK[ruleset.record["urgency"]],
                                               -matches.index(ruleset)))
    spec = chosen.record
    return {
        "urgency": spec["urgency"],
        "team_id": spec.get("team_id"),
        "assignees": spec.get("assignees") or [],
        "actions": spec.get("actions") or [],
        "paging": spec.get("paging"),
        "ruleset_ids": [ruleset.id for ruleset in matches],
        "ruleset_name": spec["name"],
        "ruleset_description": spec.get("description"),
    }


def ruleset_view(config: dict) -> dict:
    return {"id": config["id"], **config["spec"], "created_at": iso(config["created_at"]),
            "updated_at": iso(config["updated_at"])}


def grouped(configs: Iterable[dict]) -> dict:
    """GET /v1/rulesets: organisation-level rulesets, then each team's, oldest first."""
    organisation: list[dict] = []
    teams: dict[str, list[dict]] = {}
    for config in sorted(configs, key=lambda c: (c["created_at"], c["id"])):
        view = ruleset_view(config)
        if config["spec"]["level"] == "team":
            teams.setdefault(config["spec"]["team_id"], []).append(view)
        else:
            organisation.append(view)
    return {"organisation": organisation,
            "teams": [{"team_id": team, "rulesets": rulesets} for team, rulesets in sorted(teams.items())]}
