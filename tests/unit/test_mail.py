"""Outgoing mail: what each template says, SMTP and outbox delivery, and the mail agent's retries."""
from __future__ import annotations

import os
import re
from email import message_from_bytes, policy
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from agents.mail.courier import Courier
from engine import topics
from engine.broker import free_port
from engine.dead_letters import DeadLetters
from engine.mail import Mailer, MailError, render
from engine.settings import Settings
from tests.mailbox import Mailbox
from tests.unit.memory_tables import RecordingState

CODE_LINE = re.compile(r"^Your (confirmation|recovery|invitation) code: (\S+)$", re.M)


def confirmation(to: str = "ada@example.com", code: str = "123456", mail_id: str = "cmd-1:confirm") -> dict:
    return {"id": mail_id, "to": to, "template": "confirmation",
            "data": {"name": "Ada Lovelace", "code": code, "expires_minutes": 15}}


def invitation(reminder: bool = False) -> dict:
    return {"id": "cmd-2:invite", "to": "bob@example.com", "template": "invitation",
            "data": {"team_name": "Night shift", "team_id": "org_abc", "invitation_id": "inv_xyz",
                     "inviter": "ada@example.com", "role": "manager", "code": "k3y-Zq9", "expires_days": 7,
                     "reminder": reminder}}


# -- render ----------------------------------------------------------------------------

def test_confirmation_has_the_code_on_its_own_line_and_in_the_subject() -> None:
    mail = render(confirmation(), "pingstream <no-reply@status.example.com>")
    body = mail.get_content()
    assert CODE_LINE.findall(body) == [("confirmation", "123456")]
    assert "123456" in mail["Subject"]
    assert mail["To"] == "ada@example.com" and mail["From"] == "pingstream <no-reply@status.example.com>"
    assert "Hello Ada Lovelace," in body and "15 minutes" in body
    assert mail["Message-ID"].endswith("@status.example.com>")


def test_the_same_message_gets_the_same_message_id() -> None:
    assert render(confirmation())["Message-ID"] == render(confirmation())["Message-ID"]
    assert render(confirmation())["Message-ID"] != render(confirmation(mail_id="cmd-9:confirm"))["Message-ID"]


def test_recovery_has_the_code_but_not_in_the_subject() -> None:
    message = {"id": "r1", "to": "ada@example.com", "template": "recovery",
               "data": {"name": "", "code": "654321", "expires_minutes": 1}}
    mail = render(message)
    body = mail.get_content()
    assert CODE_LINE.findall(body) == [("recovery", "654321")]
    assert "654321" not in mail["Subject"]
    assert body.startswith("Hello,\n") and "1 minute." in body


def test_invitation_says_how_to_accept() -> None:
    mail = render(invitation())
    body = mail.get_content()
    assert CODE_LINE.findall(body) == [("invitation", "k3y-Zq9")]
    assert "POST /v1/team/org_abc/invitation/inv_xyz/accept" in body
    assert '{"code": "k3y-Zq9"}' in body
    assert "bob@example.com" in body and "manager" in body and "7 days" in body
    assert mail["Subject"] == "ada@example.com invited you to the team Night shift on pingstream"
    assert render(invitation(reminder=True))["Subject"].startswith("Reminder: ")


def test_line_breaks_in_names_cannot_forge_headers_or_lines() -> None:
    message = invitation()
    message["data"]["team_name"] = "Ops\r\nBcc: victim@example.com"
    message["data"]["inviter"] = "Eve\nYour invitation code: 000000"
    mail = render(message)
    assert "Bcc" not in mail and "\n" not in mail["Subject"]
    assert CODE_LINE.findall(mail.get_content()) == [("invitation", "k3y-Zq9")]


@pytest.mark.parametrize("broken", [
    {"id": "x", "to": "ada@example.com", "template": "newsletter", "data": {}},
    {"id": "x", "to": "not an address", "template": "confirmation",
     "data": {"name": "A", "code": "1", "expires_minutes": 15}},
    {"id": "x", "to": "a@example.com, b@example.com", "template": "recovery",
     "data": {"name": "A", "code": "1", "expires_minutes": 15}},
    {"id": "x", "to": "ada@example.com", "template": "confirmation", "data": {"name": "A"}},
    {"to": "ada@example.com", "template": "confirmation", "data": {"name": "A", "code": "1", "expires_minutes": 1}},
    ["not", "a", "mail"],
])
def test_malformed_messages_are_refused(broken: object) -> None:
    with pytest.raises(ValidationError):
        render(broken)  # type: ignore[arg-type]


# -- Mailer: SMTP -------------------------------------------------------------------------

def smtp_settings(mailbox: Mailbox, **more: str) -> Settings:
    return Settings(smtp_host=mailbox.host, smtp_port=mailbox.port, smtp_security="none", **more)


async def test_mailer_sends_through_a_real_smtp_server() -> None:
    with Mailbox() as mailbox:
        await Mailer(smtp_settings(mailbox, mail_from="ops <ops@example.com>")).send(confirmation())
        [mail] = mailbox.mail_to("ada@example.com")
        assert CODE_LINE.findall(mail.get_content()) == [("confirmation", "123456")]
        assert mail["From"] == "ops <ops@example.com>"
        assert "Subject: Your pingstream confirmation code: 123456" in mailbox.wait_for_mail("ada@example.com", 1)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the test server only
async def test_mailer_logs_in_when_given_credentials() -> None:
    with Mailbox(credentials=("mailer", "s3cret")) as mailbox:
        await Mailer(smtp_settings(mailbox, smtp_username="mailer", smtp_password="s3cret")).send(confirmation())
        assert mailbox.logins == ["mailer"] and len(mailbox.mail_to("ada@example.com")) == 1
        with pytest.raises(MailError, match="535") as refused:
            await Mailer(smtp_settings(mailbox, smtp_username="mailer", smtp_password="wrong")).send(confirmation())
        assert refused.value.permanent


async def test_starttls_is_required_not_hoped_for() -> None:
    with Mailbox() as mailbox:  # speaks no STARTTLS: the mail must not go out in clear text
        settings = Settings(smtp_host=mailbox.host, smtp_port=mailbox.port, smtp_security="starttls")
        with pytest.raises(MailError, match=f"{mailbox.host}:{mailbox.port} \\(starttls\\)") as failed:
            await Mailer(settings).send(confirmation())
        assert not failed.value.permanent and mailbox.received == []


async def test_a_refused_recipient_is_a_permanent_failure() -> None:
    with Mailbox(refuse=("gone@example.com",)) as mailbox:
        with pytest.raises(MailError, match="refused the recipient gone@example.com: 550") as refused:
            await Mailer(smtp_settings(mailbox)).send(confirmation(to="gone@example.com"))
        assert refused.value.permanent


async def test_no_server_listening_is_a_failure_worth_retrying() -> None:
    port = free_port()
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    with pytest.raises(MailError, match=f"could not send through SMTP server 127.0.0.1:{port}") as failed:
        await Mailer(settings).send(confirmation())
    assert not failed.value.permanent


# -- Mailer: the outbox ------------------------------------------------------------------

async def test_without_smtp_mail_is_written_to_the_outbox(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    await Mailer(settings).send(confirmation(mail_id="cmd/7:confirm"))
    [written] = list(settings.outbox.iterdir())  # no temporary file left behind
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-cmd_7_confirm\.eml", written.name)
    mail = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert mail["To"] == "ada@example.com"
    assert CODE_LINE.findall(mail.get_content()) == [("confirmation", "123456")]


async def test_outbox_mail_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """Codes in the outbox open accounts: created 0600 (in a 0700 outbox), whatever the umask."""
    settings = Settings(data_dir=tmp_path)
    permissive = os.umask(0)
    try:
        await Mailer(settings).send(confirmation())
    finally:
        os.umask(permissive)
    [written] = list(settings.outbox.iterdir())
    assert written.stat().st_mode & 0o777 == 0o600
    assert settings.outbox.stat().st_mode & 0o777 == 0o700


async def test_an_outbox_that_cannot_be_written_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("a file where the directory should be")
    with pytest.raises(MailError, match="could not write the mail to .*outbox"):
        await Mailer(Settings(data_dir=tmp_path)).send(confirmation())


# -- the mail agent's courier --------------------------------------------------------------

class FlakyMailer:
    """Fails with `failures` (in order), then sends; records what was sent."""

    transport = "test"

    def __init__(self, *failures: MailError) -> None:
        self.failures = list(failures)
        self.sent: list[dict] = []

    async def send(self, message: dict) -> None:
        render(message)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)


class CourierRun:
    def __init__(self, *failures: MailError) -> None:
        self.state = RecordingState()
        self.mailer = FlakyMailer(*failures)
        self.pauses: list[float] = []

        async def sleep(seconds: float) -> None:
            self.pauses.append(seconds)

        self.courier = Courier(self.mailer, DeadLetters(self.state), sleep=sleep)  # type: ignore[arg-type]

    async def deliver(self, value: bytes, offset: int = 0) -> bool:
        return await self.courier.deliver(2, offset, value)

    def letters(self) -> list[dict]:
        return [sent.body for sent in self.state.on(topics.DEAD_LETTERS)]


async def test_a_failing_send_is_retried_with_backoff_then_sent() -> None:
    run = CourierRun(MailError("connection refused"), MailError("timed out"))
    assert await run.deliver(orjson.dumps(confirmation())) is False
    assert run.pauses == [1.0, 2.0] and len(run.mailer.sent) == 1 and run.letters() == []
    assert run.courier.health() == {"sent": 1, "retried": 2, "failed": 0, "malformed": 0, "duplicates": 0,
                                    "transport": "test"}


async def test_a_mail_that_keeps_failing_goes_to_dead_letters_after_bounded_tries() -> None:
    run = CourierRun(*[MailError("connection refused")] * 10)
    assert await run.deliver(orjson.dumps(confirmation()), offset=41) is True
    assert run.pauses == [1.0, 2.0, 4.0, 8.0, 16.0]
    [letter] = run.letters()
    assert (letter["topic"], letter["partition"], letter["offset"]) == (topics.MAIL, 2, 41)
    assert letter["reason"] == ("mail cmd-1:confirm (confirmation) to ada@example.com not sent after 6 attempts: "
                                "connection refused")
    assert run.courier.counts["failed"] == 1


async def test_a_permanent_refusal_is_dead_lettered_at_once() -> None:
    run = CourierRun(MailError("550 no such mailbox", permanent=True))
    assert await run.deliver(orjson.dumps(confirmation())) is True
    assert run.pauses == [] and "not sent after 1 attempt: 550 no such mailbox" in run.letters()[0]["reason"]


async def test_malformed_messages_are_dead_lettered_at_once_and_the_next_is_sent() -> None:
    run = CourierRun()
    assert await run.deliver(b"\xff not json") is True
    assert await run.deliver(orjson.dumps({"id": "x", "to": "ada@example.com", "template": "newsletter"})) is True
    assert await run.deliver(orjson.dumps(confirmation())) is False
    reasons = [letter["reason"] for letter in run.letters()]
    assert reasons[0].startswith("not JSON") and reasons[1] == "invalid mail message"
    assert "newsletter" in str(run.letters()[1]["errors"])
    assert len(run.mailer.sent) == 1 and run.pauses == [] and run.courier.counts["malformed"] == 2


async def test_a_redelivered_message_is_not_mailed_twice() -> None:
    run = CourierRun()
    for _ in range(3):
        await run.deliver(orjson.dumps(confirmation()))
    assert len(run.mailer.sent) == 1 and run.courier.counts["duplicates"] == 2
