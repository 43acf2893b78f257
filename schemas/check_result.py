"""One probe's result for one monitor from one region at one moment.

On topic `check-results` (key: the JSON-encoded monitor id) a message is either
one result object, or an envelope `{"results": [result, ...]}` whose results all
belong to that partition (the API and batching probes send envelopes).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.validation import LAST_MOMENT

MAX_BATCH = 1000
Milliseconds = Annotated[float | None, Field(None, ge=0, le=3_600_000)]
Scalar = Annotated[str, Field(max_length=1000)] | int | float | bool | None


def _iso_moment(value: object) -> object:
    """ISO-8601 time or epoch seconds -> epoch seconds (naive times are UTC)."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO-8601 time or epoch seconds, not true/false")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time such as 2026-11-23T10:15:00Z") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return value


class Timings(BaseModel):
    """Where a check's time went, in milliseconds; a phase that did not happen is absent."""

    model_config = ConfigDict(extra="forbid")
    dns_ms: Milliseconds
    connect_ms: Milliseconds
    tls_ms: Milliseconds
    ttfb_ms: Milliseconds = Field(None, ge=0, le=3_600_000, description="request sent to response headers")
    total_ms: Milliseconds


class Certificate(BaseModel):
    """The certificate a TLS target showed (also when it failed verification)."""

    model_config = ConfigDict(extra="forbid")
    subject: str = Field(max_length=1000, description="RFC 4514, e.g. CN=example.com,O=Example")
    issuer: str = Field(max_length=1000)
    sans: list[Annotated[str, Field(max_length=253)]] = Field(default_factory=list, max_length=100)
    not_before: float = Field(ge=0, le=LAST_MOMENT, description="ISO-8601 time or epoch seconds")
    not_after: float = Field(ge=0, le=LAST_MOMENT, description="ISO-8601 time or epoch seconds")
    fingerprint_sha256: str | None = Field(None, max_length=64, pattern="^[0-9a-f]{64}$")

    @field_validator("not_before", "not_after", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: object) -> object:
        return _iso_moment(value)


class FailedCondition(BaseModel):
    """The first condition that did not hold, and the value the check actually saw."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(max_length=32)
    key: str | None = Field(None, max_length=512)
    operator: str = Field(max_length=32)
    values: list[Scalar] = Field(default_factory=list, max_length=100)
    actual: Scalar = Field(None, description="what the check saw (text cut to 1,000 characters)")


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=64, description="unique per result; derived when absent")
    monitor_id: str = Field(min_length=1, max_length=64)
    region: str = Field("default", min_length=1, max_length=32)
    checked_at: float = Field(ge=0, le=LAST_MOMENT, description="ISO-8601 time or epoch seconds (1970 to 9999)")
    status: Literal["up", "down"]
    response_time_ms: float | None = Field(None, ge=0, le=3_600_000)
    status_code: int | None = Field(None, ge=0, le=999)
    cause: str | None = Field(None, max_length=1000)
    timings: Timings | None = None
    certificate: Certificate | None = None
    failed_condition: FailedCondition | None = None
    probe: str | None = Field(None, max_length=128, description="the probe that checked, e.g. '<host>:<pid>'; "
                                                                "named when its region goes stale")

    @field_validator("checked_at", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: object) -> object:
        return _iso_moment(value)


class CheckResultIn(CheckResult):
    """The API body: checked_at may be left out (the API stamps its own clock)."""

    checked_at: float | None = Field(None, ge=0, le=LAST_MOMENT,
                                     description="ISO-8601 time or epoch seconds (1970 to 9999); default: now")


#: the API body as a bare array, or the `results` of a CheckBatchIn
CheckResultsIn = Annotated[list[CheckResultIn], Field(min_length=1, max_length=MAX_BATCH)]


class CheckBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    results: CheckResultsIn


class ChecksAccepted(BaseModel):
    """POST /v1/checks: Kafka has the results (acks=all)."""

    accepted: int
    ids: list[str]
