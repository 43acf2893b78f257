"""People who can be paged, for integration tests: a verified personal webhook channel on a real receiver."""
from __future__ import annotations

import json
import re
import uuid

from tests.integration.accounts import Person
from tests.integration.cluster import wait_for
from tests.mailbox import Mailbox
from tests.receivers import HttpReceiver

ACK_PATH = re.compile(r"/v1/pages/ack/[A-Za-z0-9_.-]+")
PERSONAL = "/v1/account/notification-channels"


def webhook_channel(someone: Person, receiver: HttpReceiver) -> str:
    """A verified webhook channel of `someone`'s own; returns the receiver's path it posts to."""
    path = f"/pager-{uuid.uuid4().hex[:10]}"
    made = someone.client.post(PERSONAL, {"name": "pager", "type": "webhook", "url": receiver.url(path), "priority": 2})
    assert made.status == 201, made.body
    wait_for("the webhook channel's code", lambda: receiver.seen(path), 30)
    code = json.loads(receiver.seen(path)[0].body)["code"]
    verified = someone.client.post(f"{PERSONAL}/{made.body['data']['id']}/verify", {"code": code})
    assert verified.status == 200, verified.body
    return path


def email_channel(someone: Person, mailbox: Mailbox) -> None:
    """A verified email channel of `someone`'s own, to their address."""
    made = someone.client.post(PERSONAL, {"name": "mail", "type": "email", "address": someone.email, "priority": 1})
    assert made.status == 201, made.body
    code = re.search(r"Your verification code: (\d{6})", mailbox.wait_for_mail(someone.email)).group(1)
    verified = someone.client.post(f"{PERSONAL}/{made.body['data']['id']}/verify", {"code": code})
    assert verified.status == 200, verified.body


def pages_seen(receiver: HttpReceiver, path: str) -> list[dict]:
    """The page messages a webhook channel received (its verification code left out), in arrival order."""
    bodies = [json.loads(seen.body) for seen in receiver.seen(path)]
    return [body for body in bodies if "code" not in body]
