"""Incidents: opened by rulesets or by hand, deduplicated, worked through to resolved.

`IncidentCreate` is the body of POST /v1/incidents, `IncidentPatch` of PATCH
/v1/incidents/{id}. `IncidentSignal` is a message on topic `incident-signals`
(key: the incident route, see tables/incidents.py): what a rule evaluation or a
person asks of one deduplicated incident.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.ruleset import Action, Urgency

Impact = Literal["none", "minor", "major", "critical"]
Status = Literal["investigating", "acknowledged", "identified", "monitoring", "resolved"]


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=5000)
    urgency: Urgency = "medium"
    impact: Impact = "none"
    component_ids: list[str] = Field(default_factory=list, max_length=100)
    assignees: list[str] = Field(default_factory=list, max_length=50)
    actions: list[Action] = Field(default_factory=lambda: ["trigger-alerts"], max_length=10)
    team_id: str | None = Field(None, max_length=64)


class IncidentPatch(BaseModel):
    """Any of these; `message` alone adds a note to the timeline."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=5000)
    urgency: Urgency | None = None
    impact: Impact | None = None
    status: Status | None = None
    assignees: list[str] | None = Field(None, max_length=50)
    message: str | None = Field(None, min_length=1, max_length=5000, description="goes on the timeline")

    @model_validator(mode="after")
    def _something(self) -> IncidentPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of name, description, urgency, impact, status, assignees, message")
        for name in self.model_fields_set - {"description"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: cannot be null")
        return self


class IncidentSignal(BaseModel):
    """One request to an incident route: trigger, resolve (from rules), create, update (by hand)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["trigger", "resolve", "create", "update", "acknowledge"]
    id: str = Field(min_length=1, max_length=200, description="deterministic: the source event's id")
    route: str = Field(min_length=1, max_length=64)
    org_id: str = Field(min_length=1, max_length=64)
    dedup_key: str = Field(min_length=1, max_length=700)
    origin: str = Field(description="topic/partition the signal was derived from")
    origin_pos: int = Field(ge=0)
    at: float
    source: Literal["monitor", "heartbeat", "webhook", "manual"]
    actor: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None
    description: str | None = None
    cause: str | None = None
    urgency: Urgency | None = None
    impact: Impact | None = None
    team_id: str | None = None
    assignees: list[str] | None = None
    actions: list[Action] | None = None
    component_ids: list[str] | None = None
    ruleset_ids: list[str] = Field(default_factory=list)
    entity_id: str | None = Field(None, description="the monitor, heartbeat or webhook the signal is about")
    event: dict[str, Any] = Field(default_factory=dict, description="what the timeline shows of the source event")
    patch: dict[str, Any] | None = None
    request_id: str | None = Field(None, description="create/update: the API request waiting for the reply")
    incident_id: str | None = None
    paging: dict[str, Any] | None = Field(None, description="trigger: the ruleset's paging policy")
    acknowledged_by: str | None = Field(None, description="acknowledge: the person who acknowledged its page")
    note: str | None = None
    method: str | None = None


# -- what the API answers ----------------------------------------------------------------


class Incident(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str | None
    status: str
    urgency: str | None
    impact: str | None
    source: str
    created_at: str | None
    updated_at: str | None
    resolved_at: str | None


class IncidentWithTimeline(Incident):
    timeline: list[dict[str, Any]] = Field(description="every event and status change, with time and actor")
    timeline_total: int
    timeline_dropped: int


class IncidentAction(BaseModel):
    model_config = ConfigDict(extra="allow")
    action: str
    status: str
    runs: int
    last_run_at: str | None
