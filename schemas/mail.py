"""A message on topic `mail`: one mail to send, by template (validated before it is rendered)."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

#: one address, nothing that could end a header line or add a second recipient
ADDRESS = r"^[^@\s,;<>]+@[^@\s,;<>]+$"


class CodeData(BaseModel):
    """What a confirmation or recovery mail says: whom it greets, the code, how long it lasts."""

    name: str = Field(max_length=200)
    code: str = Field(min_length=1, max_length=100, pattern=r"^\S+$")
    expires_minutes: int = Field(gt=0)


class AccountExistsData(BaseModel):
    """What a sign-up for an address that already has an account tells its owner."""

    name: str = Field(max_length=200)


class InvitationData(BaseModel):
    team_name: str = Field(max_length=200)
    team_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    invitation_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    inviter: str = Field(max_length=320)
    role: Literal["user", "manager", "root"]
    code: str = Field(min_length=1, max_length=200, pattern=r"^\S+$")
    expires_days: int = Field(gt=0)
    reminder: bool = False


class NotificationData(BaseModel):
    """A message for a notification channel of type email (agents/notification_channels)."""

    subject: str = Field(min_length=1, max_length=255)
    text: str = Field(min_length=1, max_length=8000)


class _Mail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=300, description="derived from the command, so a repeat is recognised")
    to: str = Field(max_length=320, pattern=ADDRESS)


class ConfirmationMail(_Mail):
    template: Literal["confirmation"]
    data: CodeData


class RecoveryMail(_Mail):
    template: Literal["recovery"]
    data: CodeData


class InvitationMail(_Mail):
    template: Literal["invitation"]
    data: InvitationData


class AccountExistsMail(_Mail):
    template: Literal["account_exists"]
    data: AccountExistsData


class NotificationMail(_Mail):
    template: Literal["notification"]
    data: NotificationData


Mail = Annotated[Union[ConfirmationMail, RecoveryMail, InvitationMail, AccountExistsMail, NotificationMail],
                 Field(discriminator="template")]
MAIL: TypeAdapter[ConfirmationMail | RecoveryMail | InvitationMail | AccountExistsMail | NotificationMail] = (
    TypeAdapter(Mail))
