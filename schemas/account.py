"""Request bodies of accounts, sessions, teams, invitations, members and API keys."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tables.access import ALL_SCOPES

#: no characters that could split a mail header or a URL path (they route the account's reads)
EMAIL = re.compile(r"^[^@\s,;<>\"/?#%]{1,64}@[^@\s,;<>\"/?#%]+\.[^@\s,;<>\"/?#%]+$")
Role = Literal["user", "manager", "root"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def valid_email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not EMAIL.match(value):
        raise ValueError("not an email address")
    return value


Password = Field(min_length=10, max_length=256, description="at least 10 characters")
Name = Field(min_length=1, max_length=100)
Code = Field(min_length=4, max_length=64)


class EmailBody(Body):
    email: str = Field(json_schema_extra={"pattern": EMAIL.pattern, "maxLength": 254})  # checked by valid_email

    _email = field_validator("email")(valid_email)


class SignUp(EmailBody):
    name: str = Name
    surname: str = Name
    password: str = Password


class Confirm(EmailBody):
    confirmation_code: str = Code


class Login(EmailBody):
    password: str = Field(min_length=1, max_length=256)
    team_id: str | None = None


class Refresh(Body):
    refresh_token: str = Field(min_length=10, max_length=4096)
    team_id: str | None = Field(None, description="act in another of your teams from now on")


class RecoveryConfirm(EmailBody):
    code: str = Code
    new_password: str = Password


class PasswordChange(Body):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Password


class CustomerPatch(Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    surname: str | None = Field(None, min_length=1, max_length=100)


class CustomerDelete(Body):
    reason: str = Field(min_length=1, max_length=1000)


class TeamIn(Body):
    name: str = Name


class InvitationIn(EmailBody):
    role: Role = "user"


class InvitationAccept(Body):
    code: str = Code


class MemberPatch(Body):
    role: Role


class KeyIn(Body):
    name: str = Name
    scopes: list[str] = Field(min_length=1, description="what the key may do; see GET /v1/openapi.json x-scope")
    expires_at: datetime | None = Field(None, description="when the key stops working: ISO 8601 or Unix time")

    @field_validator("scopes")
    @classmethod
    def known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = sorted(set(scopes) - set(ALL_SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; known: {', '.join(ALL_SCOPES)}")
        return sorted(set(scopes))


# -- what the API answers ----------------------------------------------------------------


class Account(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    email: str
    name: str
    surname: str
    status: str = Field(description="pending (not confirmed yet) or active")
    created_at: str | None
    confirmed_at: str | None


class Confirmed(BaseModel):
    model_config = ConfigDict(extra="allow")
    account: Account


class Notice(BaseModel):
    """An answer that says only what happens next (the same whether or not the account exists)."""

    message: str


class SignUpAccepted(BaseModel):
    """The answer to a sign-up, alike for every address: the mail says what happened."""

    email: str
    message: str


class Organisation(BaseModel):
    id: str
    name: str


class AccountPlan(BaseModel):
    organisation: Organisation
    plan: str
    limits: dict[str, int | str | None]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds the access token lives")
    refresh_expires_in: int
    team_id: str | None = Field(description="the team the access token acts in")


class Team(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    plan: str
    role: Role | None = Field(None, description="yours in this team (people only)")


class Me(BaseModel):
    model_config = ConfigDict(extra="allow")
    team: Team | None
    role: Role | None
    scopes: list[str]
    user: dict | None = None
    teams: list[Team] | None = None
    api_key: dict | None = None


class Member(BaseModel):
    id: str
    email: str
    name: str
    role: Role
    joined_at: str | None


class Invitation(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    email: str
    role: Role
    created_at: str | None
    expires_at: str | None


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    prefix: str | None
    scopes: list[str]
    created_at: str | None
    expires_at: str | None
    secret: str | None = Field(None, description="only when the key is created")


class Usage(BaseModel):
    plan: str
    monitors_used: int
    monitors_active: int
    monitors_limit: int | None
    heartbeats_used: int
    heartbeats_limit: int | None
    checks_last_24h: int
    requests_per_minute: int
