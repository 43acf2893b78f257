"""Mail on topic `mail` reaches a real SMTP server; bad messages go to dead letters and mail goes on."""
from __future__ import annotations

import asyncio
import re
import uuid

import orjson

from engine.partitioning import partition_for
from tests.integration.cluster import Cluster
from tests.integration.test_dead_letters import produce, wait_for_letters
from tests.mailbox import Mailbox


def address() -> str:
    return f"mail-{uuid.uuid4().hex[:12]}@example.com"


def mail_message(cluster: Cluster, to: str, code: str) -> tuple[str, bytes, bytes, int]:
    """A confirmation mail as the account commands emit it: keyed by recipient, in its partition."""
    value = {"id": f"test:{uuid.uuid4().hex}", "to": to, "template": "confirmation",
             "data": {"name": "Ada", "code": code, "expires_minutes": 15}}
    return "mail", to.encode(), orjson.dumps(value), partition_for(to, cluster.partitions)


def code_in(text: str) -> str:
    found = re.search(r"^Your confirmation code: (\S+)$", text, re.M)
    assert found, text
    return found[1]


def test_a_mail_message_is_sent_through_smtp(cluster: Cluster, smtp_server: Mailbox) -> None:
    to = address()
    asyncio.run(produce(cluster, [mail_message(cluster, to, "314159")]))
    text = smtp_server.wait_for_mail(to, timeout=60)
    assert code_in(text) == "314159" and "314159" in text.splitlines()[0]  # the subject says it too
    workers = cluster.client(None).get("/v1/health-check", headers={"X-Pingstream-Internal": cluster.token}
                                       ).body["data"]["incident_engine"]["workers"]
    assert any(worker["mail"]["sent"] >= 1 and worker["mail"]["transport"].startswith("smtp://127.0.0.1:")
               for worker in workers.values())


def test_malformed_mail_is_dead_lettered_and_the_next_mail_still_goes(cluster: Cluster, smtp_server: Mailbox) -> None:
    to = address()
    _, key, good, partition = mail_message(cluster, to, "271828")
    invalid = orjson.dumps({"id": "test:bad", "to": to, "template": "newsletter", "data": {}})
    sent = asyncio.run(produce(cluster, [
        ("mail", key, b"\xff not json {", partition),
        ("mail", key, invalid, partition),
        ("mail", key, good, partition),
    ]))
    assert code_in(smtp_server.wait_for_mail(to, timeout=60)) == "271828"
    reasons = sorted(letter["reason"] for letter in wait_for_letters(cluster, sent, 2))
    assert reasons[0] == "invalid mail message" and reasons[1].startswith("not JSON")
    assert len(smtp_server.mail_to(to)) == 1  # the bad ones were not mailed
