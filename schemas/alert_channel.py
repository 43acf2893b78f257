"""Alert channels: where pingstream tells others what happened, signed so they can tell it was us.

`AlertChannelSpec` is the body of POST /v1/alerts. `AlertChannelDelivery` is a
message on the alert channels' delivery topic (key: the JSON-encoded channel id): one event to
deliver to one channel, with the exact body that will be signed and sent.
"""
from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

AlertEvent = Literal["monitor.down", "monitor.recovered", "heartbeat.down", "heartbeat.recovered",
                     "incident.created", "incident.updated", "incident.resolved",
                     "monitor.certificate_expiring", "monitor.certificate_changed", "monitor.domain_expiring",
                     "monitor.domain_renewed", "status_page.updated"]
ALERT_EVENTS: tuple[str, ...] = AlertEvent.__args__  # type: ignore[attr-defined]
#: what a channel gets when it names no events: every event but the heartbeats' (added later; a channel
#: made before them keeps receiving what it did)
DEFAULT_EVENTS: tuple[str, ...] = tuple(e for e in ALERT_EVENTS if not e.startswith("heartbeat."))
#: whom a subscription may name: the team's own channels, one member's, whoever is on call at the event's time
RECIPIENT = re.compile(r"^(team|on-call|user:[A-Za-z0-9_-]{1,64})$")


def absolute_http(url: str) -> str:
    """A webhook's URL: absolute http(s); whether its address may be reached is checked at connect time
    (engine/outbound.py), where a name resolves to the address actually used."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{url!r} must be an absolute http:// or https:// URL")
    return url


class AlertChannelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"] = "webhook"
    name: str = Field(min_length=1, max_length=255)
    url: str | None = Field(None, max_length=2048, description="where events are POSTed, signed (optional when "
                                                               "`notify` names people)")
    notify: list[str] = Field(default_factory=list, max_length=20,
                              description='people told on their notification channels: "team" (the team\'s '
                                          'channels), "user:<member id>", "on-call" (whoever is on call then)')
    events: list[AlertEvent] = Field(default_factory=lambda: list(DEFAULT_EVENTS), min_length=1,
                                     description="the events this channel receives")
    max_attempts: int = Field(8, ge=1, le=20, description="attempts before a delivery is given up and dead-lettered")
    initial_backoff_seconds: int = Field(10, ge=1, le=3600,
                                         description="wait before the first retry; doubles each time, at most 1 h")
    timeout_seconds: int = Field(10, ge=1, le=30, description="how long one attempt may take")

    @field_validator("url")
    @classmethod
    def _absolute_http(cls, url: str | None) -> str | None:
        return None if url is None else absolute_http(url)

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[str]) -> list[str]:
        if len(set(events)) != len(events):
            raise ValueError("must not repeat")
        return events

    @field_validator("notify")
    @classmethod
    def _recipients(cls, notify: list[str]) -> list[str]:
        for recipient in notify:
            if not RECIPIENT.match(recipient):
                raise ValueError(f'{recipient!r} is not "team", "on-call" or "user:<member id>"')
        if len(set(notify)) != len(notify):
            raise ValueError("must not repeat")
        return notify

    @model_validator(mode="after")
    def _someone_told(self) -> "AlertChannelSpec":
        if self.url is None and not self.notify:
            raise ValueError("give a `url`, or people to `notify`, or both")
        return self

    def members(self) -> list[str]:
        """The user ids `notify` names."""
        return [recipient.partition(":")[2] for recipient in self.notify if recipient.startswith("user:")]


class AlertChannelDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["deliver"] = "deliver"
    id: str = Field(min_length=1, max_length=300, description="deterministic: source event id and channel id")
    channel_id: str = Field(min_length=1, max_length=64)
    org_id: str = Field(min_length=1, max_length=64)
    event: AlertEvent
    at: float = Field(description="when the event happened (epoch seconds)")
    body: str = Field(description='the JSON sent: {"event", "timestamp", "data"}')


# -- what the API answers ----------------------------------------------------------------


class AlertChannel(BaseModel):
    model_config = ConfigDict(extra="allow")  # and every field of AlertChannelSpec
    id: str
    type: str
    name: str
    url: str | None
    notify: list[str] = []
    events: list[str]
    secret_prefix: str
    secret_rotated_at: str | None
    created_at: str
    updated_at: str
    secret: str | None = Field(None, description="the signing secret: only on creation and rotation")


class DeliveryAttempt(BaseModel):
    model_config = ConfigDict(extra="allow")
    at: str | None


class Delivery(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    event: str
    status: str
    reason: str | None
    created_at: str | None
    next_attempt_at: str | None
    attempts: list[DeliveryAttempt]
