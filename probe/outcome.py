"""What one check of one monitor found: up or down, why, where the time went, the certificate seen.

`Outcome.as_result(monitor_id, region, checked_at)` is the message for
`check-results` (schemas/check_result.py): CheckResult's fields plus
`timings`, `certificate` and `failed_condition`, each left out when it does not apply.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

MAX_CAUSE = 1000   # characters: CheckResult.cause
MAX_ACTUAL = 200   # characters of an actual value kept in failed_condition


def iso(epoch: float) -> str:
    """Epoch seconds as an ISO-8601 UTC time, e.g. 2026-10-01T00:00:00Z."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(epoch: float) -> str:
    """Epoch seconds as a UTC date, e.g. 2026-10-01."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


def milliseconds(seconds: float) -> float:
    return round(seconds * 1000, 3)


@dataclass(slots=True)
class Timings:
    """Milliseconds per phase; None where the phase did not happen (no DNS for an IP, no TLS for http)."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None   # request sent -> response headers (summed over redirects)
    total_ms: float | None = None

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__slots__ if getattr(self, name) is not None}


@dataclass(frozen=True, slots=True)
class Certificate:
    """The leaf certificate a TLS target presented."""

    subject: str                 # RFC 4514, e.g. CN=example.com
    issuer: str
    sans: tuple[str, ...]        # DNS names and IP addresses
    not_before: float            # epoch seconds
    not_after: float
    fingerprint_sha256: str
    serial: str | None = None    # hexadecimal; kept out of check results, sent with certificate observations

    def days_left(self, now: float) -> float:
        return (self.not_after - now) / 86400

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "issuer": self.issuer, "sans": list(self.sans),
                "not_before": iso(self.not_before), "not_after": iso(self.not_after),
                "fingerprint_sha256": self.fingerprint_sha256}


@dataclass(frozen=True, slots=True)
class FailedCondition:
    """The first condition that did not hold and what the check saw instead."""

    type: str
    key: str | None
    operator: str
    values: tuple[Any, ...]
    actual: Any   # a JSON scalar; lists and objects as (cut) JSON text

    def as_dict(self) -> dict[str, Any]:
        actual = self.actual
        if isinstance(actual, str) and len(actual) > MAX_ACTUAL:
            actual = actual[:MAX_ACTUAL] + "…"
        return {"type": self.type, "key": self.key, "operator": self.operator,
                "values": list(self.values), "actual": actual}


@dataclass(slots=True)
class Outcome:
    status: Literal["up", "down"]
    cause: str | None = None
    response_time_ms: float | None = None
    status_code: int | None = None
    timings: Timings = field(default_factory=Timings)
    certificate: Certificate | None = None
    failed_condition: FailedCondition | None = None

    @property
    def up(self) -> bool:
        return self.status == "up"

    def as_result(self, monitor_id: str, region: str, checked_at: float | str) -> dict[str, Any]:
        """The `check-results` message of this outcome (CheckResult, with its optional extras)."""
        result: dict[str, Any] = {"monitor_id": monitor_id, "region": region, "checked_at": checked_at,
                                  "status": self.status}
        if self.response_time_ms is not None:
            result["response_time_ms"] = self.response_time_ms
        if self.status_code is not None:
            result["status_code"] = self.status_code
        if self.cause:
            result["cause"] = self.cause if len(self.cause) <= MAX_CAUSE else self.cause[:MAX_CAUSE - 1] + "…"
        timings = self.timings.as_dict()
        if timings:
            result["timings"] = timings
        if self.certificate is not None:
            result["certificate"] = self.certificate.as_dict()
        if self.failed_condition is not None:
            result["failed_condition"] = self.failed_condition.as_dict()
        return result


def down(cause: str, **details: Any) -> Outcome:
    return Outcome("down", cause, **details)
