"""Rulesets: which events become incidents, with what urgency, for which team, doing what.

`RulesetSpec` is the body of POST /v1/rulesets and PUT /v1/rulesets/{id};
`RulesetActions` of PUT /v1/rulesets/{id}/actions. Conditions are the language
of tables/conditions.py.
"""
from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.page import EscalationStep
from tables.conditions import OPERATORS, problem_with

Urgency = Literal["low", "medium", "high", "critical"]
Action = Literal["trigger-alerts", "trigger-statuspage-update"]
Operator = Literal[OPERATORS]  # type: ignore[valid-type]
TEAM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Every worker holds every organisation's rulesets and runs them on each event:
# what one team may store is bounded so it cannot crowd out the others.
MAX_RULESETS_PER_ORG = 100
MAX_PATTERNS_PER_RULESET = 20          # 'matches' values over all the ruleset's conditions
MAX_CONDITIONS_BYTES = 16 * 1024       # one ruleset's conditions, as JSON
MAX_CONDITIONS_BYTES_PER_ORG = 256 * 1024  # all of an organisation's rulesets' conditions, as JSON


def conditions_size(spec: dict) -> int:
    """Bytes of a stored spec's conditions as JSON: what the per-organisation cap counts."""
    return len(orjson.dumps(spec.get("conditions") or []))


class RuleCondition(BaseModel):
    """e.g. {"type": "json-check", "key": "alerts[0].labels.severity", "operator": "equal", "values": ["critical"]}"""

    model_config = ConfigDict(extra="forbid")
    type: Literal["json-check"] = "json-check"
    key: str = Field(min_length=1, max_length=512, description="path into the event, e.g. alerts[0].labels.severity")
    operator: Operator
    values: list[str | int | float | bool | None] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _usable(self) -> RuleCondition:
        problem = problem_with(self.key, self.operator, self.values)
        if problem:
            raise ValueError(problem)
        return self


class PagingPolicy(BaseModel):
    """How the people an incident pages (trigger-alerts) are paged until one acknowledges."""

    model_config = ConfigDict(extra="forbid")
    repeat_interval_s: int | None = Field(None, ge=1, le=3600, description="30-3600 (PINGSTREAM_PAGE_MIN_REPEAT)")
    escalation: list[EscalationStep] = Field(default_factory=list, max_length=10)


class RulesetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_type: Literal["state-change", "webhook"]
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2000)
    level: Literal["team", "organisation"] = "organisation"
    team_id: str | None = Field(None, description="required for level 'team'")
    urgency: Urgency = "high"
    assignees: list[str] = Field(default_factory=list, max_length=50)
    actions: list[Action] = Field(default_factory=lambda: ["trigger-alerts"], max_length=10)
    paging: PagingPolicy | None = Field(None, description="trigger-alerts pages the assignees (or whoever is on "
                                                           "call) with these repeats and escalation steps")
    conditions: list[RuleCondition] = Field(default_factory=list, max_length=50,
                                            description="all must hold; none matches every event")
    webhook_id: str | None = Field(None, max_length=64,
                                   description="webhook rulesets: only this webhook's events (default: every webhook)")

    @model_validator(mode="after")
    def _scope_fits_level(self) -> RulesetSpec:
        if self.level == "team":
            if not self.team_id:
                raise ValueError("team_id: a team-level ruleset needs a 'team_id'")
            if not TEAM_ID.match(self.team_id):
                raise ValueError("team_id: letters, digits, '_' and '-' only, at most 64")
        elif self.team_id is not None:
            raise ValueError("team_id: an organisation-level ruleset has no team_id; use level 'team'")
        if self.webhook_id is not None and self.rule_type != "webhook":
            raise ValueError("webhook_id: only webhook rulesets can be limited to one webhook")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError("actions: must not repeat")
        patterns = sum(len(c.values) for c in self.conditions if c.operator == "matches")
        if patterns > MAX_PATTERNS_PER_RULESET:
            raise ValueError(f"conditions: at most {MAX_PATTERNS_PER_RULESET} regular expressions per ruleset "
                             f"(this one has {patterns})")
        size = len(orjson.dumps([c.model_dump(mode="json") for c in self.conditions]))
        if size > MAX_CONDITIONS_BYTES:
            raise ValueError(f"conditions: at most {MAX_CONDITIONS_BYTES} bytes of conditions per ruleset "
                             f"(these are {size})")
        for assignee in self.assignees:
            if not assignee or len(assignee) > 255:
                raise ValueError("assignees: each assignee is a non-empty name or id of at most 255 characters")
        return self


class RulesetActions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: list[Action] = Field(max_length=10)

    @classmethod
    def from_body(cls, body: Any) -> Any:
        """PUT .../actions takes {"actions": [...]} or the bare list."""
        return {"actions": body} if isinstance(body, list) else body


# -- what the API answers ----------------------------------------------------------------


class Ruleset(BaseModel):
    model_config = ConfigDict(extra="allow")  # and every field of RulesetSpec
    id: str
    rule_type: str
    name: str
    level: str
    actions: list[str]
    created_at: str
    updated_at: str


class TeamRulesets(BaseModel):
    team_id: str
    rulesets: list[Ruleset]


class Rulesets(BaseModel):
    """Organisation-level rulesets, then each team's, oldest first."""

    organisation: list[Ruleset]
    teams: list[TeamRulesets]


class RulesetActionsView(BaseModel):
    id: str
    actions: list[str]
