"""A heartbeat (a job that checks in on a schedule) and one check-in of it.

`HeartbeatSpec` is the body of POST /v1/heartbeats; `HeartbeatPatch` of PUT
(every field optional; the merged result is validated as a whole spec).
`CheckIn` is one check-in on topic `heartbeats` (key: the JSON-encoded
heartbeat id); a message is one check-in or an envelope `{"checkins": [...]}`
of check-ins of that partition (what the API sends).

Heartbeat ids are UUIDs, so a Healthchecks ping URL (/ping/<uuid>) names one.
A heartbeat also has a push token (Uptime Kuma's /api/push/<token>); its id is
derived from the token (`id_for_token`), so a push finds its partition with no
lookup. Creating a heartbeat may import an existing Healthchecks check's UUID
(`id`) or an existing Uptime Kuma push token (`push_token`), so the clients
already calling those URLs only need the new host name.
"""
from __future__ import annotations

import re
import secrets
import string
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.check_result import CheckResult
from schemas.validation import LAST_MOMENT
from tables.heartbeat_schedule import ScheduleError, check_cron, zone

#: where heartbeat ids of push tokens are derived: uuid5(TOKEN_NAMESPACE, token)
TOKEN_NAMESPACE = uuid.UUID("5d0f4b2e-8c43-4b8e-9a57-0c5e7a3d9f21")
PUSH_TOKEN = re.compile(r"^[A-Za-z0-9_.~-]{8,128}$")
SERVICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
RID = re.compile(r"^[\x21-\x7e]{1,64}$")
CANONICAL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_BODY = 10_000       # bytes of a check-in's request body that are kept
MAX_MESSAGE = 1_000     # characters of a check-in's message that are kept
YEAR = 365 * 86400

CheckInResult = Literal["tick", "run", "complete", "fail", "log"]


def parse_heartbeat_id(raw: str) -> str | None:
    """The canonical (lowercase, dashed) form of a UUID, or None if `raw` is not one."""
    if CANONICAL_ID.match(raw):
        return raw  # the usual case, without building a UUID
    try:
        parsed = uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        return None
    canonical = str(parsed)
    return canonical if raw.lower() in (canonical, parsed.hex) else None


def id_for_token(token: str) -> str:
    return str(uuid.uuid5(TOKEN_NAMESPACE, token))


def new_push_token() -> str:
    """32 letters and digits, like the tokens Uptime Kuma generates."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


class HeartbeatSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    service_id: str | None = Field(None, max_length=64, description="groups heartbeats; GET /v1/heartbeats?service_id=")
    interval: int | None = Field(None, ge=1, le=YEAR, description="seconds between check-ins (or give cron)")
    cron: str | None = Field(None, max_length=100, description="when check-ins are due, e.g. '0 3 * * *' (or give interval)")
    timezone: str = Field("UTC", max_length=64, description="IANA time zone the cron expression is read in")
    grace: int = Field(60, ge=1, le=YEAR, description="seconds a check-in may be late, and a run may last, before it goes down")
    enabled: bool = True
    id: str | None = Field(None, description="import: the UUID of an existing Healthchecks check")
    push_token: str | None = Field(None, description="import: an existing Uptime Kuma push token")

    @field_validator("service_id")
    @classmethod
    def _service_id_is_plain(cls, value: str | None) -> str | None:
        if value is not None and not SERVICE_ID.match(value):
            raise ValueError("a service id is 1-64 letters, digits and '_', '.', ':', '-'")
        return value

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_cron(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("timezone")
    @classmethod
    def _timezone_is_known(cls, value: str) -> str:
        try:
            zone(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("id")
    @classmethod
    def _id_is_a_uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        canonical = parse_heartbeat_id(value)
        if canonical is None:
            raise ValueError(f"{value!r} is not a UUID such as 5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278")
        return canonical

    @field_validator("push_token")
    @classmethod
    def _token_is_url_safe(cls, value: str | None) -> str | None:
        if value is not None and not PUSH_TOKEN.match(value):
            raise ValueError("a push token is 8-128 letters, digits and '_', '.', '~', '-'")
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> HeartbeatSpec:
        if self.interval is None and self.cron is None:
            raise ValueError("interval: give an interval in seconds, or a cron expression in 'cron'")
        if self.interval is not None and self.cron is not None:
            raise ValueError("cron: give either an interval or a cron expression, not both")
        if self.id is not None and self.push_token is not None:
            raise ValueError("push_token: import either a Healthchecks id or an Uptime Kuma push token, not both")
        return self

    def stored(self) -> dict[str, Any]:
        """What the configuration keeps: the schedule and labels (id and token are kept beside them)."""
        return self.model_dump(mode="json", exclude={"id", "push_token"})


class HeartbeatPatch(BaseModel):
    """Any subset of HeartbeatSpec's fields but the id and token; null clears an optional field."""

    model_config = ConfigDict(extra="forbid")
    name: Any = None
    service_id: Any = None
    interval: Any = None
    cron: Any = None
    timezone: Any = None
    grace: Any = None
    enabled: Any = None

    def merged_with(self, current: dict[str, Any]) -> dict[str, Any]:
        spec = {name: value for name, value in current.items() if name in HeartbeatSpec.model_fields}
        change = self.model_dump(exclude_unset=True)
        # switching between interval and cron: the one not given goes
        if change.get("cron") is not None and "interval" not in change:
            spec.pop("interval", None)
        if change.get("interval") is not None and "cron" not in change:
            spec.pop("cron", None)
        spec.update(change)
        return {name: value for name, value in spec.items() if value is not None}


class CheckIn(BaseModel):
    """One check-in as it travels on topic `heartbeats`."""

    model_config = ConfigDict(extra="forbid")

    heartbeat_id: str = Field(min_length=36, max_length=36)
    result: CheckInResult = "tick"
    received_at: float | None = Field(None, ge=0, le=LAST_MOMENT,
                                      description="ISO-8601 or epoch seconds (1970 to 9999); default: the message's timestamp")
    message: str | None = Field(None, max_length=MAX_MESSAGE)
    rid: str | None = Field(None, description="pairs a run with its end")
    source_ip: str | None = Field(None, max_length=64)
    exit_status: int | None = Field(None, ge=0, le=255)
    body: str | None = Field(None, max_length=MAX_BODY)
    duration: float | None = Field(None, ge=0, le=YEAR, description="seconds the client reports (Uptime Kuma's ping)")

    @field_validator("heartbeat_id")
    @classmethod
    def _id_is_canonical(cls, value: str) -> str:
        if not CANONICAL_ID.match(value):
            raise ValueError(f"{value!r} is not a heartbeat id (a lowercase UUID)")
        return value

    @field_validator("rid")
    @classmethod
    def _rid_is_printable(cls, value: str | None) -> str | None:
        if value is not None and not RID.match(value):
            raise ValueError("a rid is 1-64 printable characters without spaces, e.g. a UUID")
        return value

    @field_validator("received_at", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: object) -> object:
        return CheckResult._epoch_seconds(value)  # the same time formats as check results


# -- what the API answers ----------------------------------------------------------------


class CheckInUrls(BaseModel):
    events: str = Field(description="POST (or GET with ?result=) to check in")
    healthchecks: str = Field(description="Healthchecks-style ping URL")
    uptime_kuma: str | None = Field(description="Uptime Kuma push URL (heartbeats with a push token)")


class Heartbeat(BaseModel):
    """A heartbeat as the API shows it: its spec's fields, its state, and the URLs to check in with."""

    model_config = ConfigDict(extra="allow")  # and every field of HeartbeatSpec
    id: str
    name: str
    enabled: bool
    status: str = Field(description="new, up, late, down or paused")
    status_since: str | None
    last_check_in_at: str | None
    running: int
    created_at: str
    updated_at: str
    checkin_urls: CheckInUrls | None = None


class CheckInAccepted(BaseModel):
    heartbeat_id: str
    result: CheckInResult
    received_at: str


class HeartbeatEvent(BaseModel):
    """One check-in as received."""

    model_config = ConfigDict(extra="allow")
    seq: int
    received_at: str
    result: str


class HeartbeatStatisticsPoint(BaseModel):
    model_config = ConfigDict(extra="allow")
    received_at: str
    tick_count: int
    run_count: int
    complete_count: int
    fail_count: int
    mean_run_duration: float | None
    p95_run_duration: float | None


class HeartbeatStatisticsMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    heartbeat_id: str
    interval: str
    start_date: str
    end_date: str


class HeartbeatStatistics(BaseModel):
    data: list[HeartbeatStatisticsPoint]
    meta: HeartbeatStatisticsMeta
