"""Paging groups: the body of POST /v1/groups, PUT and PATCH /v1/groups/{id}, and the group the API answers."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

MEMBERS = "user ids of members of the team (GET /v1/team/{id}/members)"


def distinct(user_ids: list[str] | None) -> list[str] | None:
    if user_ids is None:
        return None
    if any(not user_id or len(user_id) > 64 for user_id in user_ids):
        raise ValueError("each member is a user id of 1-64 characters")
    return list(dict.fromkeys(user_ids))


class GroupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2000)
    members: list[str] = Field(default_factory=list, max_length=100, description=MEMBERS)

    _distinct = field_validator("members")(distinct)


class GroupPatch(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2000)
    members: list[str] | None = Field(None, max_length=100, description=MEMBERS)

    _distinct = field_validator("members")(distinct)


class Person(BaseModel):
    user_id: str
    name: str | None
    email: str | None


class Group(BaseModel):
    id: str
    name: str
    description: str | None
    members: list[str]
    people: list[Person] = Field(description="the members still in the team, whom a page to the group reaches")
    created_at: str
    updated_at: str
