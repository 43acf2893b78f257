"""Pages: the body of POST /v1/pages and /v1/external/pages, of POST /v1/pages/{id}/acknowledge, and the page
the API answers."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Priority = Literal["low", "normal", "high", "critical"]


class EscalationStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay_seconds: int = Field(ge=1, le=86400, description="seconds after the step before (the page itself for "
                                                            "the first); at least 60 (PINGSTREAM_PAGE_MIN_DELAY)")
    target_user_id: str | None = Field(None, min_length=1, max_length=64)
    target_group_id: str | None = Field(None, min_length=1, max_length=64)
    repeat_page: bool = Field(False, description="send the page again to everyone already paged, too")

    @model_validator(mode="after")
    def one_target(self) -> EscalationStep:
        if (self.target_user_id is None) == (self.target_group_id is None):
            raise ValueError("a step names one target: target_user_id or target_group_id")
        return self


class PageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=255)
    message: str = Field("", max_length=4000)
    delivery_mode: Literal["single", "group", "broadcast"] = Field(
        "single", description="single: target_user_id (absent: whoever is on call now); group: target_group_id; "
                              "broadcast: every member of the team")
    priority: Priority = "normal"
    target_user_id: str | None = Field(None, min_length=1, max_length=64)
    target_group_id: str | None = Field(None, min_length=1, max_length=64)
    repeat_interval_s: int | None = Field(None, ge=1, le=3600, description="repeat to everyone paged until "
                                          "acknowledged; 30-3600 (PINGSTREAM_PAGE_MIN_REPEAT)")
    expires_minutes: int | None = Field(None, ge=1, le=10080)
    escalation: list[EscalationStep] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def target_of_mode(self) -> PageSpec:
        if self.delivery_mode == "group" and not self.target_group_id:
            raise ValueError("delivery_mode group needs target_group_id")
        if self.delivery_mode != "group" and self.target_group_id:
            raise ValueError("target_group_id goes with delivery_mode group")
        if self.delivery_mode != "single" and self.target_user_id:
            raise ValueError("target_user_id goes with delivery_mode single")
        return self


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    response_note: str | None = Field(None, max_length=2000)
    method: str | None = Field(None, min_length=1, max_length=32, description="how it was acknowledged, e.g. "
                                                                             "web, sms, phone; default api")


class PageCreated(BaseModel):
    message: str
    page_id: str
    recipients: list[dict]


class PageRecipient(BaseModel):
    user_id: str
    name: str | None
    email: str | None
    step: int
    first_sent_at: str | None
    last_sent_at: str | None
    messages: int


class Page(BaseModel):
    id: str
    subject: str
    message: str
    priority: str
    delivery_mode: str
    status: str
    target_user_id: str | None
    target_group_id: str | None
    repeat_interval_s: int | None
    escalation: list[dict]
    escalation_step: int
    repeats_sent: int
    incident_id: str | None
    created_by: str | None
    recipients: list[PageRecipient]
    created_at: str
    first_sent_at: str | None
    expires_at: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    response_note: str | None
    method: str | None
    ended_at: str | None
