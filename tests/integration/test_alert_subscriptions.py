"""Alert subscriptions naming people: a monitor's events reach the team's channels and the on-call person's,
each once, whatever replays; another team cannot name this team's people."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from engine.partitioning import entity_key, partition_for
from tests.integration.accounts import person
from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.test_alert_channels import verify as signed_by
from tests.integration.test_crash_exactness import bootstrap_of
from tests.integration.test_monitors import create, post_results
from tests.mailbox import Mailbox
from tests.receivers import HttpReceiver


def verified_webhook(api: Client, base: str, receiver: HttpReceiver, path: str) -> dict:
    """A webhook notification channel, verified with the code it received."""
    made = api.post(base, {"name": "ops hook", "type": "webhook", "url": receiver.url(path)})
    assert made.status == 201, made.body
    channel = made.body["data"]
    wait_for(f"the code at {path}", lambda: receiver.seen(path), 30)
    code = json.loads(receiver.seen(path)[0].body)["code"]
    answer = api.post(f"{base}/{channel['id']}/verify", {"code": code})
    assert answer.status == 200 and answer.body["data"]["verified"] is True, answer.body
    return channel


async def replay(cluster: Cluster, monitor_id: str, event: dict) -> None:
    """The monitor's event once more, as a worker re-folding its partition after a crash would emit it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(cluster), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("monitor-events", orjson.dumps(event), key=entity_key(monitor_id),
                                     partition=partition_for(monitor_id, cluster.partitions))
    finally:
        await producer.stop()


def test_a_monitor_going_down_tells_the_team_and_who_is_on_call_once_and_strangers_cannot_be_named(
        cluster: Cluster, org: tuple[str, Client], smtp_server: Mailbox, http_receiver: HttpReceiver) -> None:
    ada = person(cluster, smtp_server, "ada")
    api, tag = ada.client, uuid.uuid4().hex[:8]
    team_hook, own_hook = f"/team-{tag}", f"/ada-{tag}"
    team_channel = verified_webhook(api, f"/v1/team/{ada.team_id}/notification-channels", http_receiver, team_hook)
    own_channel = verified_webhook(api, "/v1/account/notification-channels", http_receiver, own_hook)

    # another team cannot name Ada; her team can, with no URL at all
    _, stranger = org
    refused = stranger.post("/v1/alerts", {"name": "ops", "notify": [f"user:{ada.user_id}"]})
    assert refused.status == 422 and "not a member" in refused.body["message"], refused.body
    assert api.post("/v1/alerts", {"name": "ops", "notify": ["user:usr_nobody"]}).status == 422
    assert api.post("/v1/alerts", {"name": "ops"}).status == 422  # nobody to tell
    named = api.post("/v1/alerts", {"name": "certs", "notify": [f"user:{ada.user_id}"],
                                    "events": ["monitor.certificate_expiring"]})
    assert named.status == 201 and named.body["data"]["notify"] == [f"user:{ada.user_id}"], named.body
    # Ada is on call all day, every day: "on-call" reaches her own channel
    always = {"name": "always", "time_zone": "UTC", "entries": [
        {"user_id": ada.user_id, "start_date": "2020-01-01", "start_time": "00:00", "end_time": "00:00"}]}
    assert api.post(f"/v1/team/{ada.team_id}/schedules", always).status == 201
    made = api.post("/v1/alerts", {"name": "ops", "notify": ["team", "on-call"],
                                   "events": ["monitor.down", "monitor.recovered"]})
    assert made.status == 201, made.body
    subscription = made.body["data"]
    assert subscription["url"] is None and subscription["notify"] == ["team", "on-call"]
    assert api.get(f"/v1/alerts/{subscription['id']}").body["data"]["notify"] == subscription["notify"]

    monitor = create(api, name=f"Checkout {tag}", regions=[])
    post_results(api, [{"monitor_id": monitor["id"], "status": "down", "cause": "timeout",
                        "checked_at": time.time()}])
    wait_for("the down message on both channels", lambda: len(http_receiver.seen(team_hook)) >= 2 and
             len(http_receiver.seen(own_hook)) >= 2, 30)
    told = http_receiver.seen(team_hook)[1]
    assert signed_by(team_channel["secret"], told.headers, told.body)
    message = json.loads(told.body)
    assert message["subject"] == f"[pingstream] Checkout {tag} is down"
    assert "Cause: timeout" in message["text"] and "Status: " in message["text"] and "At: " in message["text"]
    assert message["data"]["alert_id"] == subscription["id"] and message["data"]["event"] == "monitor.down"
    assert json.loads(http_receiver.seen(own_hook)[1].body)["subject"] == message["subject"]
    own = http_receiver.seen(own_hook)[1]
    assert signed_by(own_channel["secret"], own.headers, own.body)

    # the same event again (a replay) tells nobody twice; the recovery after it is told once
    event_id = message["data"]["event_id"].removesuffix(":monitor.down")
    asyncio.run(replay(cluster, monitor["id"], {
        "id": event_id, "event": "monitor.down", "monitor_id": monitor["id"], "org_id": ada.team_id,
        "at": time.time(), "previous_status": "unknown", "status": "down", "cause": "timeout", "regions": []}))
    post_results(api, [{"monitor_id": monitor["id"], "status": "up", "checked_at": time.time()}])
    wait_for("the recovery on both channels", lambda: len(http_receiver.seen(team_hook)) >= 3 and
             len(http_receiver.seen(own_hook)) >= 3, 30)
    for hook in (team_hook, own_hook):
        subjects = [json.loads(seen.body).get("subject") for seen in http_receiver.seen(hook)[1:]]
        assert subjects == [f"[pingstream] Checkout {tag} is down", f"[pingstream] Checkout {tag} is up again"]
