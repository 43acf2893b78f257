"""Notification channels: where a person (or a team) is told something, by email, webhook, SMS, voice or a
chat/push service (apprise URLs).

`ChannelSpec` is the body of POST .../notification-channels; `ChannelPatch` of
PATCH; `NotificationRequest` is the message another feature puts on the
`notification-deliveries` topic to tell an owner on their channels.
"""
from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tables.notification_channels import TARGET_FIELD

ChannelType = Literal["email", "webhook", "sms", "voice", "apprise"]
CHANNEL_TYPES: tuple[str, ...] = ChannelType.__args__  # type: ignore[attr-defined]
ADDRESS = r"^[^@\s,;<>]+@[^@\s,;<>]+$"
PHONE = r"^\+[1-9][0-9]{6,14}$"  # E.164


def _http_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("a webhook channel's url must be an absolute http:// or https:// URL")
    return url


class _Destination(BaseModel):
    address: str | None = Field(None, max_length=320, pattern=ADDRESS, description="email: the address")
    phone: str | None = Field(None, pattern=PHONE, description="sms, voice: the number in E.164 (+14155550100)")
    url: str | None = Field(None, min_length=3, max_length=2048,
                            description="webhook: where messages are POSTed (signed); apprise: the service URL "
                                        "(slack://…, discord://…, tgram://…, ntfy://…), kept secret")


class ChannelSpec(_Destination):
    model_config = ConfigDict(extra="forbid")

    type: ChannelType
    name: str = Field(min_length=1, max_length=255)
    priority: int = Field(10, ge=1, le=1000, description="lower goes first")
    enabled: bool = True

    @model_validator(mode="after")
    def _one_destination(self) -> ChannelSpec:
        wanted = TARGET_FIELD[self.type]
        for name in ("address", "phone", "url"):
            given = getattr(self, name) is not None
            if name == wanted and not given:
                raise ValueError(f"a {self.type} channel needs `{name}`")
            if name != wanted and given:
                raise ValueError(f"a {self.type} channel takes `{wanted}`, not `{name}`")
        if self.type == "webhook":
            _http_url(self.url or "")
        return self


class ChannelPatch(_Destination):
    """Any of these; a new destination must be verified again (a code goes to it)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=255)
    priority: int | None = Field(None, ge=1, le=1000)
    enabled: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> ChannelPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of name, priority, enabled, address, phone, url")
        if sum(getattr(self, name) is not None for name in ("address", "phone", "url")) > 1:
            raise ValueError("give one destination at most")
        return self


class VerificationCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=20, description="the code the channel received")


class NotificationRequest(BaseModel):
    """Tell an owner on each of their enabled, verified channels, in priority order (topic
    `notification-deliveries`, key: the JSON-encoded owner). Emitted by agents, never by a request handler."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["send"] = "send"
    id: str = Field(min_length=1, max_length=200, description="the message's id: one delivery per (id, channel)")
    owner: str = Field(pattern=r"^(user|team):[A-Za-z0-9_-]{1,64}$")
    subject: str = Field(min_length=1, max_length=255)
    text: str = Field(min_length=1, max_length=4000)
    link: str | None = Field(None, max_length=2048, description="e.g. a one-click acknowledge link")
    data: dict[str, Any] = Field(default_factory=dict, description="sent as it is to webhook channels")
    at: float = Field(description="when the message was made (epoch seconds)")

    @field_validator("subject")
    @classmethod
    def _one_line(cls, subject: str) -> str:
        return " ".join(subject.split())


# -- what the API answers ----------------------------------------------------------------


class NotificationChannel(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    type: str
    name: str
    priority: int
    enabled: bool
    verified: bool
    verified_at: str | None
    address: str | None = None
    phone: str | None = None
    url: str | None = Field(None, description="webhook: the URL; apprise: only its scheme and a masked tail")
    secret: str | None = Field(None, description="webhook: the signing secret, only in the answer that made it")
    created_at: str
    updated_at: str


class TestSent(BaseModel):
    model_config = ConfigDict(extra="allow")
    delivery_id: str


class ChannelDeliveryAttempt(BaseModel):
    model_config = ConfigDict(extra="allow")
    at: str | None


class ChannelDelivery(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    kind: str
    subject: str
    status: str
    reason: str | None
    created_at: str | None
    next_attempt_at: str | None
    attempts: list[ChannelDeliveryAttempt]
