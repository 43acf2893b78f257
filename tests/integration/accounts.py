"""People for integration tests: sign up through the API, read the code from real mail, sign in."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from tests.integration.cluster import Client, Cluster
from tests.mailbox import Mailbox

PASSWORD = "correct horse battery staple"


def code_in(mail: str, what: str) -> str:
    match = re.search(rf"Your {what} code: (\S+)", mail)
    assert match, f"no {what} code in the mail:\n{mail}"
    return match.group(1)


def new_email(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@example.com"


@dataclass
class Person:
    email: str
    user_id: str
    team_id: str
    access_token: str
    refresh_token: str
    base: str

    @property
    def client(self) -> Client:
        return Client(self.base, self.access_token)


def sign_up(cluster: Cluster, mailbox: Mailbox, name: str = "ada", password: str = PASSWORD) -> tuple[str, dict]:
    """(email, the confirmation answer): a confirmed account with its first team."""
    email = new_email(name)
    anonymous = cluster.client(None)
    created = anonymous.post("/v1/account", {"name": name.title(), "surname": "Tester", "email": email,
                                             "password": password})
    assert created.status == 202, created.body
    code = code_in(mailbox.wait_for_mail(email), "confirmation")
    confirmed = anonymous.patch("/v1/account", {"email": email, "confirmation_code": code})
    assert confirmed.status == 200, confirmed.body
    return email, confirmed.body["data"]


def log_in(cluster: Cluster, email: str, password: str = PASSWORD, **extra: str) -> Person:
    answer = cluster.client(None).post("/v1/auth", {"email": email, "password": password, **extra})
    assert answer.status == 200, answer.body
    tokens = answer.body["data"]
    me = Client(cluster.client(None).base, tokens["access_token"]).get("/v1/auth/me")
    assert me.status == 200, me.body
    return Person(email, me.body["data"]["user"]["id"], tokens["team_id"], tokens["access_token"],
                  tokens["refresh_token"], cluster.client(None).base)


def person(cluster: Cluster, mailbox: Mailbox, name: str = "ada") -> Person:
    email, _ = sign_up(cluster, mailbox, name)
    return log_in(cluster, email)


def invite(cluster: Cluster, mailbox: Mailbox, inviter: Person, team_id: str, name: str,
           role: str = "user") -> Person:
    """Invite a new person, who signs up, accepts with the mailed code and signs in to the team."""
    email, _ = sign_up(cluster, mailbox, name)
    invited = inviter.client.post(f"/v1/team/{team_id}/invitation", {"email": email, "role": role})
    assert invited.status == 201, invited.body
    mail = mailbox.wait_for_mail(email)
    assert f"/v1/team/{team_id}/invitation/{invited.body['data']['id']}/accept" in mail
    newcomer = log_in(cluster, email)
    accepted = newcomer.client.post(f"/v1/team/{team_id}/invitation/{invited.body['data']['id']}/accept",
                                    {"code": code_in(mail, "invitation")})
    assert accepted.status == 200, accepted.body
    assert accepted.body["data"]["role"] == role
    return log_in(cluster, email, team_id=team_id)
