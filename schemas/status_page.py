"""Status pages: their settings and components, as POST/PUT /v1/status-pages take them and the API shows them.

A component is bound to a monitor (`monitor_id`), a heartbeat (`heartbeat_id`)
or to neither (manual: its `status` is set by hand). Components are grouped by
`group`, a name; groups appear in the order of their first component.
"""
from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.alert_channel import absolute_http

ComponentStatus = Literal["operational", "degraded_performance", "partial_outage", "major_outage",
                          "under_maintenance"]
SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DOMAIN = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
COMPONENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PAGE_ID = re.compile(r"^sp_[a-f0-9]{20}$")
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")   # one address, nothing to add a header
URL = Field(None, max_length=2048, pattern=r"^https?://\S+$")


class ComponentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=COMPONENT_ID.pattern, description="kept across updates; made if absent")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=500)
    group: str | None = Field(None, min_length=1, max_length=255, description="the group it is shown in")
    monitor_id: str | None = Field(None, max_length=64)
    heartbeat_id: str | None = Field(None, max_length=64)
    status: ComponentStatus = Field("operational", description="manual components: set by hand")

    @model_validator(mode="after")
    def _one_source(self) -> ComponentSpec:
        if self.monitor_id and self.heartbeat_id:
            raise ValueError("monitor_id: give a monitor or a heartbeat, not both")
        return self


class StatusPageFields(BaseModel):
    """Every setting but the components; shared by the spec and the patch."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=5000)
    subdomain: str = Field(min_length=1, max_length=63, pattern=SUBDOMAIN.pattern,
                           description="the page is at /s/<subdomain>")
    type: Literal["public", "private"] = "public"
    password: str | None = Field(None, min_length=8, max_length=200,
                                 description="private pages: visitors give it once (write only)")
    ip_addresses: list[str] = Field(default_factory=list, max_length=100,
                                    description="private pages: addresses or networks (CIDR) let in without a password")
    domain: str | None = Field(None, max_length=253, pattern=DOMAIN.pattern,
                               description="a host name whose CNAME points at this deployment")
    page_name: str | None = Field(None, max_length=255, description="the page's heading (default: name)")
    dark_theme: bool = False
    favicon: str | None = URL
    logo: str | None = URL
    redirect_to_https: bool = False
    remove_branding: bool = False
    robots_meta_contents: str | None = Field(None, max_length=100, pattern=r"^[a-z, -]*$")
    website_url: str | None = URL
    privacy_url: str | None = URL
    support_url: str | None = URL
    subscription_enabled: bool = False

    @field_validator("ip_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address or network") from None
        return value


class StatusPageSpec(StatusPageFields):
    components: list[ComponentSpec] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> StatusPageSpec:
        # a private page needs a password or ip_addresses: checked by the API, which knows of a stored password
        ids = [component.id for component in self.components if component.id]
        if len(ids) != len(set(ids)):
            raise ValueError("components: component ids must differ")
        return self


class StatusPagePatch(BaseModel):
    """Any field of the spec; `components`, when given, replaces them all (ids given are kept)."""

    model_config = ConfigDict(extra="forbid")

    name: Any = None
    description: Any = None
    subdomain: Any = None
    type: Any = None
    password: Any = None
    ip_addresses: Any = None
    domain: Any = None
    page_name: Any = None
    dark_theme: Any = None
    favicon: Any = None
    logo: Any = None
    redirect_to_https: Any = None
    remove_branding: Any = None
    robots_meta_contents: Any = None
    website_url: Any = None
    privacy_url: Any = None
    support_url: Any = None
    subscription_enabled: Any = None
    components: Any = None

    def merged_with(self, current: dict[str, Any]) -> dict[str, Any]:
        spec = {name: value for name, value in current.items() if name in StatusPageSpec.model_fields}
        spec.update(self.model_dump(exclude_unset=True))
        return {name: value for name, value in spec.items() if value is not None}


class Component(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    group: str | None
    monitor_id: str | None
    heartbeat_id: str | None
    status: ComponentStatus


class StatusPage(BaseModel):
    """A page as the API shows it (the password never)."""

    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    subdomain: str
    type: str
    domain: str | None
    components: list[Component]
    url: str
    created_at: str | None
    updated_at: str | None


class ComponentStatistics(BaseModel):
    model_config = ConfigDict(extra="allow")
    component_id: str
    status: ComponentStatus
    uptime_percentage: float | None
    days: list[dict[str, Any]]
    open_incidents: list[dict[str, Any]]


class DomainCheck(BaseModel):
    model_config = ConfigDict(extra="allow")
    domain: str
    expected_target: str
    cname: list[str]
    configured: bool
    page_id: str | None


class MaintenanceSpec(BaseModel):
    """Scheduled maintenance announced on a page ahead: its components show under_maintenance while it runs."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    message: str | None = Field(None, max_length=2000)
    starts_at: datetime = Field(description="ISO 8601; UTC unless it says")
    ends_at: datetime
    component_ids: list[str] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceSpec:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at: must be after starts_at")
        return self

    def stored(self, maintenance_id: str) -> dict:
        def seconds(moment: datetime) -> float:
            return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
        return {"id": maintenance_id, "name": self.name, "message": self.message,
                "starts_at": seconds(self.starts_at), "ends_at": seconds(self.ends_at),
                "component_ids": self.component_ids}


class Maintenance(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    status: Literal["scheduled", "in_progress", "completed"]
    starts_at: str
    ends_at: str
    component_ids: list[str]


class SubscriptionCreate(BaseModel):
    """An email address (confirmed by a link first) or a webhook URL (told at once, signed); one of them."""
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(None, max_length=320, pattern=EMAIL.pattern)
    webhook: str | None = Field(None, max_length=2048, description="where each update is POSTed, signed like "
                                "alert channel deliveries; the answer holds the signing `secret`, shown once")

    @field_validator("webhook")
    @classmethod
    def _absolute_http(cls, url: str | None) -> str | None:
        return None if url is None else absolute_http(url)

    @model_validator(mode="after")
    def _one_of(self) -> "SubscriptionCreate":
        if (self.email is None) == (self.webhook is None):
            raise ValueError("give either an email or a webhook")
        return self


class Subscription(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    type: Literal["email", "webhook"]
    email: str | None
    webhook: str | None = Field(None, description="the URL, masked: its scheme and host, the rest hidden")
    confirmed: bool
    created_at: str | None
    secret: str | None = Field(None, description="a webhook's signing secret: only in the answer that made it")
