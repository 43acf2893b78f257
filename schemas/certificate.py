"""Certificates a probe observed, SSL and domain reminders, and the answers about them.

On topic `certificates` (key: the JSON-encoded monitor id) a probe sends an
observation (one, or `{"observations": [...], "org_id"}`) when a check saw a
certificate other than the last one it sent for that monitor, or every few
hours anyway (probe/certificates.py).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.check_result import Certificate, _iso_moment
from schemas.validation import LAST_MOMENT
from tables.certificates import valid_thresholds


class ObservedCertificate(Certificate):
    serial: str | None = Field(None, max_length=128, description="hexadecimal")


class CertificateObservation(BaseModel):
    """A certificate a probe's check of a monitor saw, and whether it verified."""

    model_config = ConfigDict(extra="ignore")
    monitor_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    region: str = Field("default", max_length=64)
    observed_at: float = Field(ge=0, le=LAST_MOMENT)
    certificate: ObservedCertificate
    verified: bool | None = Field(None, description="the chain and host name verified; null: not checked "
                                                    "(skip_ssl_error)")
    verify_error: str | None = Field(None, max_length=1000)

    @field_validator("observed_at", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: object) -> object:
        return _iso_moment(value)


Threshold = Annotated[int, Field(ge=1, le=365)]


class ReminderSpec(BaseModel):
    """Days before the expiry at which to be told; each fires once per certificate (or expiry date)."""

    model_config = ConfigDict(extra="forbid")
    days_before: list[Threshold] = Field(min_length=1, max_length=10, examples=[[30, 14, 7, 1]],
                                         description="1-365 days each, at most 10, no repeats")

    @field_validator("days_before")
    @classmethod
    def _no_repeats(cls, value: list[int]) -> list[int]:
        problem = valid_thresholds(value)
        if problem:
            raise ValueError(problem)
        return sorted(value, reverse=True)


class Reminder(BaseModel):
    monitor_id: str
    kind: Literal["ssl", "domain"]
    days_before: list[int]
    created_at: str | None
    updated_at: str | None


class CertificateDetails(BaseModel):
    subject: str
    issuer: str
    sans: list[str]
    serial: str | None
    fingerprint_sha256: str | None
    not_before: str | None
    not_after: str | None
    days_left: int = Field(description="whole days until not_after; negative once expired")
    expired: bool
    verified: bool | None = Field(description="the chain and host name verified; null: not checked (skip_ssl_error)")
    verify_error: str | None = Field(description="why it did not verify")


class CertificateChange(BaseModel):
    at: str | None
    previous_fingerprint_sha256: str | None
    fingerprint_sha256: str
    previous_not_after: str | None
    not_after: str | None
    renewed: bool = Field(description="the new certificate ends later than the one before")


class SslInfo(BaseModel):
    """GET /v1/monitors/{id}/ssl: the certificate last seen, its last change, the reminder."""

    monitor_id: str
    certificate: CertificateDetails | None = Field(description="null until a probe saw one")
    observed_at: str | None
    region: str | None
    last_change: CertificateChange | None
    reminder: Reminder | None


class DomainInfo(BaseModel):
    """GET /v1/monitors/{id}/domain: what RDAP says of the monitor's registrable domain."""

    monitor_id: str
    domain: str | None = Field(description="registrable domain of the monitor's host (public suffix list)")
    source: Literal["rdap", "unavailable", "pending", "none"] = Field(
        description="rdap: looked up; unavailable: the registry has no RDAP (see reason); pending: not looked "
                    "up yet; none: the host has no registrable domain (an IP address)")
    reason: str | None
    registrar: str | None
    created: str | None
    expires: str | None
    days_left: int | None
    name_servers: list[str]
    status: list[str]
    looked_up_at: str | None
    reminder: Reminder | None
