"""Notification channels through the API, with real receivers: aiosmtpd for email, an aiohttp server for webhooks,
apprise's json:// and ntfy:// targets, and the SMS provider (Twilio's REST shape) for sms and voice."""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from engine.partitioning import entity_key, partition_for
from tests.integration.accounts import person
from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.test_alert_channels import every_record
from tests.integration.test_alert_channels import verify as signed_by
from tests.integration.test_crash_exactness import bootstrap_of
from tests.mailbox import Mailbox
from tests.receivers import HttpReceiver

CODE = re.compile(r"Your verification code: (\d{6})")


def code_of(text: str) -> str:
    found = CODE.search(text)
    assert found, f"no verification code in {text!r}"
    return found.group(1)


def new_phone() -> str:
    return "+1415" + str(uuid.uuid4().int)[:7]


def create(api: Client, base: str, **spec: object) -> dict:
    made = api.post(base, {"name": f"{spec['type']} channel", **spec})
    assert made.status == 201, made.body
    assert made.body["data"]["verified"] is False
    return made.body["data"]


def verified(api: Client, base: str, channel: dict, code: str) -> dict:
    answer = api.post(f"{base}/{channel['id']}/verify", {"code": code})
    assert answer.status == 200, answer.body
    assert answer.body["data"]["verified"] is True
    return answer.body["data"]


def one_request(receiver: HttpReceiver, path: str, what: str, count: int = 1) -> list:
    wait_for(what, lambda: len(receiver.seen(path)) >= count, 30)
    return receiver.seen(path)


async def send_to(cluster: Cluster, owner: str, *messages: dict) -> None:
    """What a future page does (agents/notification_channels/notify.py): a `send` on the owner's partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(cluster), acks="all")
    await producer.start()
    try:
        for message in messages:
            body = orjson.dumps({"kind": "send", "owner": owner, "at": time.time(), **message})
            await producer.send_and_wait("notification-deliveries", body, key=entity_key(owner),
                                         partition=partition_for(owner, cluster.partitions))
    finally:
        await producer.stop()


def test_every_type_is_verified_through_itself_then_told_in_priority_order_once(
        cluster: Cluster, org: tuple[str, Client], smtp_server: Mailbox, http_receiver: HttpReceiver) -> None:
    team_id, api = org
    base = f"/v1/team/{team_id}/notification-channels"
    tag = uuid.uuid4().hex[:8]
    address, sms_phone, voice_phone = f"oncall.{tag}@example.com", new_phone(), new_phone()
    hook, json_path, ntfy_topic = f"/hook-{tag}", f"/apprise-{tag}", f"alerts-{tag}"
    apprise_json = http_receiver.url(json_path, "json")
    email = create(api, base, type="email", address=address, priority=1)
    webhook = create(api, base, type="webhook", url=http_receiver.url(hook), priority=2)
    sms = create(api, base, type="sms", phone=sms_phone, priority=3)
    voice = create(api, base, type="voice", phone=voice_phone, priority=4)
    chat = create(api, base, type="apprise", url=apprise_json, priority=5)
    push = create(api, base, type="apprise", url=f"ntfy://{http_receiver.host}:{http_receiver.port}/{ntfy_topic}",
                  priority=6)
    quiet = create(api, base, type="email", address=f"quiet.{tag}@example.com", priority=7)
    # a webhook's signing secret is shown once; an apprise URL never whole
    assert webhook["secret"].startswith("whsec_") and "secret" not in api.get(f"{base}/{webhook['id']}").body["data"]
    for listed in api.get(base).body["data"]:
        assert apprise_json not in json.dumps(listed) and ntfy_topic not in json.dumps(listed)
    assert chat["url"].startswith("json://****") and push["url"].startswith("ntfy://****")

    # each code comes through the channel itself
    assert api.post(f"{base}/{email['id']}/verify", {"code": "000000"}).status == 422
    verified(api, base, email, code_of(smtp_server.wait_for_mail(address)))
    headers, body = one_request(http_receiver, hook, "the webhook's code")[0].headers, \
        http_receiver.seen(hook)[0].body
    assert signed_by(webhook["secret"], headers, body)
    verified(api, base, webhook, json.loads(body)["code"])
    wait_for("the sms code", lambda: http_receiver.sent_to(sms_phone), 30)
    verified(api, base, sms, code_of(http_receiver.sent_to(sms_phone)[0].form["Body"]))
    wait_for("the voice call", lambda: http_receiver.sent_to(voice_phone, "Calls.json"), 30)
    spoken = re.search(r"code is ((?:\d ){5}\d)", http_receiver.sent_to(voice_phone, "Calls.json")[0].form["Twiml"])
    verified(api, base, voice, spoken.group(1).replace(" ", ""))
    verified(api, base, chat, code_of(json.loads(one_request(http_receiver, json_path, "apprise json")[0].body)["message"]))
    wait_for("the ntfy code", lambda: [r for r in http_receiver.requests
                                       if ntfy_topic in (r.path + r.body.decode(errors="replace"))], 30)
    ntfy_seen = [r for r in http_receiver.requests if ntfy_topic in (r.path + r.body.decode(errors="replace"))]
    verified(api, base, push, code_of(ntfy_seen[0].body.decode()))
    # one stays unverified; one is verified then disabled: neither hears anything but its code
    assert api.post(f"{base}/{quiet['id']}/test").status == 409
    assert api.post(f"{base}/{push['id']}/disable").body["data"]["enabled"] is False
    assert api.patch(f"{base}/{chat['id']}", {"priority": 0}).status == 422
    assert api.patch(f"{base}/{chat['id']}", {"priority": 50}).body["data"]["priority"] == 50

    # a message for the team, emitted three times under one id, reaches each channel once
    message_id = f"page-{tag}"
    page = {"id": message_id, "subject": "Checkout is down", "text": "monitor checkout: connection refused",
            "link": "https://example.com/ack"}
    asyncio.run(send_to(cluster, f"team:{team_id}", page, page, page))
    mail = smtp_server.wait_for_mail(address)
    assert "Checkout is down" in mail and "https://example.com/ack" in mail
    hooked = one_request(http_receiver, hook, "the webhook's message", 2)
    assert json.loads(hooked[1].body)["subject"] == "Checkout is down" and signed_by(webhook["secret"],
                                                                                    hooked[1].headers, hooked[1].body)
    wait_for("sms, call and chat", lambda: len(http_receiver.sent_to(sms_phone)) == 2 and len(
        http_receiver.sent_to(voice_phone, "Calls.json")) == 2 and len(http_receiver.seen(json_path)) == 2, 30)
    assert "Checkout is down" in http_receiver.sent_to(sms_phone)[1].form["Body"]
    order = [http_receiver.requests.index(r) for r in (hooked[1], http_receiver.sent_to(sms_phone)[1])]
    assert order == sorted(order)  # priority 2 was sent before priority 3

    def logged(channel: dict) -> list[dict]:
        return api.get(f"{base}/{channel['id']}/deliveries").body["data"]

    wait_for("every delivery logged", lambda: all(
        [d["status"] for d in logged(c) if d["id"] == message_id] == ["delivered"]
        for c in (email, webhook, sms, voice, chat)), 30)
    assert [d["kind"] for d in logged(push)] == ["code"] and [d["kind"] for d in logged(quiet)] == ["code"]
    assert len(http_receiver.seen(hook)) == 2 and len(http_receiver.sent_to(sms_phone)) == 2  # nothing twice

    # a real test message
    sent = api.post(f"{base}/{sms['id']}/test")
    assert sent.status == 202, sent.body
    wait_for("the test sms", lambda: len(http_receiver.sent_to(sms_phone)) == 3, 30)
    assert "test" in http_receiver.sent_to(sms_phone)[2].form["Body"]

    # the apprise URL and the signing secret are sealed everywhere: topics, changelogs, the workers' files
    secrets = (apprise_json.removeprefix("json://").encode(), ntfy_topic.encode(), webhook["secret"].encode())
    records = asyncio.run(every_record(cluster))
    assert not [s for s in secrets for record in records if s in record]
    for path in cluster.root.rglob("*"):
        if path.is_file():
            assert not [s for s in secrets if s in path.read_bytes()], path


def test_a_failing_receiver_is_retried_with_backoff_and_logged(
        org: tuple[str, Client], http_receiver: HttpReceiver) -> None:
    team_id, api = org
    base = f"/v1/team/{team_id}/notification-channels"
    path = f"/flaky-{uuid.uuid4().hex[:8]}"
    http_receiver.script[path] = [503, 200]
    channel = create(api, base, type="webhook", url=http_receiver.url(path))

    def code_delivery() -> dict | None:
        found = api.get(f"{base}/{channel['id']}/deliveries").body["data"]
        return found[0] if found and found[0]["status"] != "pending" else None

    wait_for("the code delivered on the second attempt", code_delivery, 30)
    delivery = code_delivery()
    assert delivery["status"] == "delivered", delivery
    assert [(a["outcome"], a["status_code"]) for a in delivery["attempts"]] == [("failed", 503), ("sent", 200)]
    first, second = http_receiver.seen(path)
    assert second.at - first.at >= 1.5  # the backoff
    assert first.headers["X-Pingstream-Delivery"] == second.headers["X-Pingstream-Delivery"]


def test_personal_channels_belong_to_the_person_and_teams_see_only_their_own(
        cluster: Cluster, org: tuple[str, Client], smtp_server: Mailbox) -> None:
    team_id, api = org
    ada = person(cluster, smtp_server, "ada").client
    mine = create(ada, "/v1/account/notification-channels", type="email", address=f"ada.{uuid.uuid4().hex[:6]}@x.org")
    assert [c["id"] for c in ada.get("/v1/account/notification-channels").body["data"]] == [mine["id"]]
    assert api.get("/v1/account/notification-channels").status == 403  # a program has no person's channels
    team_channel = create(api, f"/v1/team/{team_id}/notification-channels", type="email", address="t@example.org")
    # another team: not its team, not its channels, whatever it names
    other_id, other_key = cluster.new_org()
    other = cluster.client(other_key)
    for attempt in (other.get(f"/v1/team/{team_id}/notification-channels"),
                    other.get(f"/v1/team/{team_id}/notification-channels/{team_channel['id']}"),
                    other.post(f"/v1/team/{team_id}/notification-channels/{team_channel['id']}/test"),
                    other.get(f"/v1/team/{other_id}/notification-channels/{team_channel['id']}"),
                    other.delete(f"/v1/team/{other_id}/notification-channels/{team_channel['id']}"),
                    ada.get(f"/v1/account/notification-channels/{team_channel['id']}"),
                    api.get(f"/v1/team/{team_id}/notification-channels/{mine['id']}")):
        assert attempt.status == 404, attempt.body
    assert other.get(f"/v1/team/{other_id}/notification-channels").body["data"] == []
    assert ada.delete(f"/v1/account/notification-channels/{mine['id']}").status == 204
    assert ada.get(f"/v1/account/notification-channels/{mine['id']}").status == 404
