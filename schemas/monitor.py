"""An uptime monitor: what to check, how often, from where, and when it counts as down.

`MonitorSpec` is the body of POST /v1/monitors; `MonitorPatch` of PATCH (every
field optional, the merged result is validated as a whole `MonitorSpec`).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlparse

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tables.conditions import PathError, parse_path, regex_problem

MonitorType = Literal["http", "tcp", "udp", "icmp", "dns", "smtp", "pop", "imap"]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: `regex`: the body matches (RE2); `dns_record`: the answers of a dns monitor;
#: `response-json-check`: the monitoring API's name for json_path
ConditionType = Literal["status_code", "response_time", "keyword", "regex", "json_path", "header", "ssl_expiry",
                        "dns_record", "response-json-check"]
Operator = Literal[
    "equal", "not_equal", "greater", "less", "greater_or_equal", "less_or_equal",
    "contains", "not_contains", "exists", "not_exists", "matches",
]
DnsRecordType = Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "CAA", "PTR"]
STATUS_RANGE = re.compile(r"^([1-5])xx$|^(\d{3})-(\d{3})$")
NUMERIC_TYPES = ("response_time", "ssl_expiry")
REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}[A-Za-z0-9_])?)*\.?$|^[0-9a-fA-F:.]+$")
DEFAULT_PORTS = {"smtp": 25, "pop": 110, "imap": 143, "dns": 53}
VALUELESS = {"exists", "not_exists"}


class Condition(BaseModel):
    """One rule a check's response must satisfy, e.g. status_code equal [200, 204]."""

    model_config = ConfigDict(extra="forbid")
    type: ConditionType
    key: str | None = Field(None, max_length=512, description="JSON path, header or keyword, by type")
    operator: Operator
    values: list[str | int | float] = Field(default_factory=list, max_length=100)

    @field_validator("operator", mode="before")
    @classmethod
    def _ruleset_spelling(cls, operator: object) -> object:
        """`not-equal` (the ruleset and monitoring API spelling) is `not_equal`."""
        return operator.replace("-", "_") if isinstance(operator, str) else operator

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Condition:
        if self.operator not in VALUELESS and not self.values:
            raise ValueError(f"operator {self.operator!r} needs at least one value in 'values'")
        if self.type in ("json_path", "header", "response-json-check") and not self.key:
            named = "json path" if self.type == "response-json-check" else self.type.replace("_", " ")
            raise ValueError(f"a {self.type} condition needs a 'key' naming the {named}")
        if self.type in ("json_path", "response-json-check"):
            try:
                parse_path(json_path_of(self.key))
            except PathError as exc:
                raise ValueError(str(exc)) from None
        if self.type == "status_code":
            for value in self.values:
                if not isinstance(value, int) and not (isinstance(value, str) and (
                        value.isdigit() or STATUS_RANGE.match(value))):
                    raise ValueError(f"{value!r} is not a status code: write 200, \"2xx\" or \"200-299\"")
        if self.type in NUMERIC_TYPES and self.operator not in VALUELESS:
            for value in self.values:
                if isinstance(value, str):
                    try:
                        float(value)
                    except ValueError:
                        raise ValueError(f"{value!r} is not a number: a {self.type} condition "
                                         "compares numbers") from None
        if self.operator == "matches" or self.type == "regex":
            for value in self.values:
                problem = regex_problem(str(value))
                if problem:
                    raise ValueError(problem)
        return self


def json_path_of(key: str) -> str:
    """A json_path key in the rulesets' path syntax; a JSONPath-style leading `$` names the document itself."""
    return key[1:].lstrip(".") if key.startswith(("$.", "$[")) else key


class MonitorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    type: MonitorType = "http"
    url: str | None = Field(None, max_length=2048, description="http monitors: the URL to request")
    host: str | None = Field(None, max_length=253, description="other monitors: host name or IP")
    port: int | None = Field(None, ge=1, le=65535)
    method: HttpMethod = "GET"
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    body: str | None = Field(None, max_length=65536)
    conditions: list[Condition] = Field(default_factory=list, max_length=50)
    regions: list[str] = Field(default_factory=list, max_length=20)
    grace_period: int = Field(0, ge=0, le=86400, description="seconds a failure must persist before a region counts as down")
    recovery_period: int = Field(0, ge=0, le=86400, description="seconds success must persist before a region counts as up again")
    maintenance_cron_expression: str | None = Field(None, max_length=100)
    maintenance_duration: int | None = Field(None, ge=60, le=7 * 86400, description="seconds each maintenance window lasts")
    skip_ssl_error: bool = False
    not_follow_redirect: bool = False
    tls: Literal["implicit", "starttls"] | None = Field(
        None, description="tcp, smtp, pop, imap: TLS from the first byte, or upgraded by STARTTLS (mail only); "
                          "the certificate is verified (unless skip_ssl_error) and recorded")
    dns_record_type: DnsRecordType | None = Field(None, description="dns monitors: the record type asked (default A)")
    dns_nameserver: str | None = Field(None, max_length=45, description="dns monitors: the IP address of the "
                                       "nameserver to ask on `port` (default: the probe's resolvers)")
    service_id: str | None = Field(None, max_length=64)
    interval_seconds: int = Field(60, ge=10, le=86400)
    timeout_seconds: int = Field(30, ge=1, le=120)

    @field_validator("regions")
    @classmethod
    def _regions_are_codes(cls, regions: list[str]) -> list[str]:
        for region in regions:
            if not REGION.match(region):
                raise ValueError(f"{region!r} is not a region code (lowercase letters, digits and '-', e.g. 'eu-west')")
        if len(set(regions)) != len(regions):
            raise ValueError("regions must not repeat")
        return regions

    @field_validator("maintenance_cron_expression")
    @classmethod
    def _cron_is_valid(cls, expression: str | None) -> str | None:
        if expression is not None and (len(expression.split()) != 5 or not croniter.is_valid(expression)):
            raise ValueError(f"{expression!r} is not a 5-field cron expression such as '0 3 * * sun'")
        return expression

    @model_validator(mode="after")
    def _target_fits_type(self) -> MonitorSpec:
        if self.type == "http":
            if not self.url:
                raise ValueError("url: an http monitor needs a 'url'")
            parsed = urlparse(self.url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError(f"url: {self.url!r} must be an absolute http:// or https:// URL")
        else:
            if not self.host:
                raise ValueError(f"host: a {self.type} monitor needs a 'host'")
            if not HOSTNAME.match(self.host):
                raise ValueError(f"host: {self.host!r} is not a host name or IP address")
            if self.type in ("tcp", "udp") and self.port is None:
                raise ValueError(f"port: a {self.type} monitor needs a 'port'")
        if self.tls is not None and self.type not in ("tcp", "smtp", "pop", "imap"):
            raise ValueError(f"tls: a {self.type} monitor has no 'tls' (https:// URLs use TLS by themselves)")
        if self.tls == "starttls" and self.type == "tcp":
            raise ValueError("tls: 'starttls' needs a mail protocol (smtp, pop, imap); use 'implicit' for tcp")
        if self.type != "dns" and self.dns_record_type is not None:
            raise ValueError("dns_record_type: only dns monitors ask for DNS records")
        if self.type != "dns" and self.dns_nameserver is not None:
            raise ValueError("dns_nameserver: only dns monitors ask a nameserver")
        if self.dns_nameserver is not None:
            try:
                ipaddress.ip_address(self.dns_nameserver)
            except ValueError:
                raise ValueError(f"dns_nameserver: {self.dns_nameserver!r} is not an IP address") from None
        if self.timeout_seconds >= self.interval_seconds:
            raise ValueError("timeout_seconds: must be shorter than interval_seconds")
        if (self.maintenance_cron_expression is None) != (self.maintenance_duration is None):
            raise ValueError("maintenance_duration: maintenance_cron_expression and maintenance_duration go together: give both or neither")
        return self


class MonitorPatch(BaseModel):
    """Any subset of MonitorSpec's fields; null clears an optional field."""

    model_config = ConfigDict(extra="forbid")
    name: Any = None
    type: Any = None
    url: Any = None
    host: Any = None
    port: Any = None
    method: Any = None
    headers: Any = None
    body: Any = None
    conditions: Any = None
    regions: Any = None
    grace_period: Any = None
    recovery_period: Any = None
    maintenance_cron_expression: Any = None
    maintenance_duration: Any = None
    skip_ssl_error: Any = None
    not_follow_redirect: Any = None
    tls: Any = None
    dns_record_type: Any = None
    dns_nameserver: Any = None
    service_id: Any = None
    interval_seconds: Any = None
    timeout_seconds: Any = None

    def merged_with(self, current: dict[str, Any]) -> dict[str, Any]:
        spec = {name: current.get(name) for name in MonitorSpec.model_fields if name in current}
        spec.update(self.model_dump(exclude_unset=True))
        return {name: value for name, value in spec.items() if value is not None}


# -- what the API answers ----------------------------------------------------------------


class MaintenanceWindow(BaseModel):
    started_at: str
    ends_at: str


class StaleRegion(BaseModel):
    since: str | None = Field(description="when the region went stale")
    last_seen_at: str | None = Field(description="when the region's last result arrived")
    probe: str | None = Field(description="the probe that sent it, as it named itself")


class Monitor(BaseModel):
    """A monitor as the API shows it: its spec's fields, and its state from the latest checks."""

    model_config = ConfigDict(extra="allow")  # and every field of MonitorSpec
    id: str
    name: str
    type: MonitorType
    paused: bool
    status: str = Field(description="up, down, paused, maintenance (a maintenance window is open) or unknown "
                                    "(no result yet, or every region's probe went quiet)")
    status_since: str | None
    regions_status: dict[str, str]
    last_checked_at: str | None
    created_at: str
    updated_at: str
    maintenance: MaintenanceWindow | None = Field(None, description="the open maintenance window, if any")
    stale_regions: dict[str, StaleRegion] = Field(
        default_factory=dict, description="regions whose probe sent nothing for 3 intervals plus the timeout")


class BulkDeleted(BaseModel):
    """DELETE of several resources by ?id=: which were deleted and which were not found."""

    deleted: list[str]
    not_found: list[str]


class Uptime(BaseModel):
    model_config = ConfigDict(extra="allow")
    monitor_id: str
    period: str
    uptime_percentage: float | None
    total_checks: int
    up_checks: int
    down_checks: int
    avg_response_time_ms: float | None
    maintenance_checks: int = Field(0, description="results inside maintenance windows: not in the percentage")
    maintenance_seconds: float | None = Field(
        None, description="seconds of the period in the current schedule's maintenance windows")


class PerformancePoint(BaseModel):
    model_config = ConfigDict(extra="allow")
    start: str
    total_checks: int
    up_checks: int
    down_checks: int
    uptime_percentage: float | None
    avg_response_time_ms: float | None
    p95_response_time_ms: float | None = None
    avg_phase_ms: dict[str, float] | None = Field(
        None, description="probes' checks: mean milliseconds of each phase (dns, connect, tls, ttfb, total)")


class Check(BaseModel):
    """One check result as stored."""

    model_config = ConfigDict(extra="allow")
    id: str | None
    checked_at: str | None
    region: str | None
    status: str = Field(description="up, down, or maintenance for a result inside a maintenance window")
    response_time_ms: float | None
    status_code: int | None
    cause: str | None
    probe: str | None = None
    reported_status: str | None = Field(None, description="up or down, as the probe reported it")
    timings: dict[str, float] | None = Field(
        None, description="where the check's time went, ms: dns_ms, connect_ms, tls_ms, ttfb_ms, total_ms")


class StateChange(BaseModel):
    model_config = ConfigDict(extra="allow")
    at: str | None
