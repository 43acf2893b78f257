"""Inbound webhooks: where external alerting systems (Alertmanager, Grafana, CI, ...) send JSON.

`WebhookSpec` is the body of POST /v1/webhooks. `WebhookEvent` is one received
request on topic `webhook-events` (key: the JSON-encoded webhook id); a message
is one event or an envelope `{"events": [event, ...]}` of events of that
partition, which is what the API sends.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_BODY = 512 * 1024   # bytes of one request body: an event must fit one Kafka record with room to spare


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2000)


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=64, description="unique per event; derived when absent")
    webhook_id: str = Field(min_length=1, max_length=64)
    org_id: str | None = Field(None, max_length=64)
    received_at: float
    ip: str | None = Field(None, max_length=64)
    content_type: str | None = Field(None, max_length=255)
    json_body: Any = Field(None, alias="json", description="the body, when it parsed as JSON")
    text: str | None = Field(None, description="the body as text, when it did not parse as JSON")

    @model_validator(mode="after")
    def _one_body(self) -> WebhookEvent:
        if "json" in self.model_fields_set and self.text is not None:
            raise ValueError("text: an event carries its body as 'json' or as 'text', not both")
        return self


# -- what the API answers ----------------------------------------------------------------


class Webhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    description: str | None
    events_received: int
    last_received_at: str | None
    created_at: str
    ingest_url: str = Field(description="where to send events: POST any body, no API key")


class WebhookEventAccepted(BaseModel):
    id: str
    ip: str | None
    content_type: str | None
    parsed: bool = Field(description="the body was JSON")


class ReceivedEvent(BaseModel):
    """One event as stored, newest first."""

    model_config = ConfigDict(extra="allow")
    id: str
    received_at: str
