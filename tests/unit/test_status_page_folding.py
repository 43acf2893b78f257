"""The status pages fold against in-memory tables: bindings, live models, refreshes and subscribers' mail."""
from __future__ import annotations

import secrets
import time

import orjson

from agents.alert_channels.fold import AlertChannelFold
from agents.status_pages.fold import IncidentWatch, PageFolder
from engine import topics
from engine.dead_letters import DeadLetters
from engine.sealing import seal
from tables import alert_channels as layout
from tables import status_pages as rules
from tables.monitor_data import SealedBucket, bucket_key
from tables.uptime import UptimeBucket, bucket_start
from tests.unit.memory_tables import MemoryTable, memory_engine

PAGE = "sp_0123456789abcdef0123"


class Pipeline:
    """The fold, with what it sends on `status-pages` folded again until nothing is left, as the worker would."""

    def __init__(self) -> None:
        self.engine = memory_engine()
        self.engine.status_pages = MemoryTable("status_pages")
        self.engine.heartbeat_data = MemoryTable("heartbeat_data")
        self.engine.org_config = type("Channels", (), {"channels_for": staticmethod(lambda org, event: []),
                                                         "people_for": staticmethod(lambda org, event: [])})()
        self.folder = PageFolder(self.engine, DeadLetters(self.engine.state))
        self.offset = 0
        self.folded = 0

    def send(self, partition: int, message: dict) -> None:
        self.folder.fold_message(partition, self.offset, orjson.dumps(message))
        self.offset += 1
        self.drain()

    def drain(self) -> None:
        while len(self.engine.state.on(topics.STATUS_PAGES)) > self.folded:
            sent = self.engine.state.on(topics.STATUS_PAGES)[self.folded]
            self.folded += 1
            self.folder.fold_message(sent.partition, self.offset, sent.value)
            self.offset += 1

    def views(self) -> list[dict]:
        return [sent.body for sent in self.engine.state.on(topics.STATUS_PAGE_VIEWS)]

    def mails(self) -> list[dict]:
        return [sent.body for sent in self.engine.state.on(topics.MAIL)]


def configure(pipeline: Pipeline, pos: int = 1) -> None:
    config = {"org_id": "org", "password_hash": None, "created_at": 1.0, "updated_at": 1.0, "spec": {
        "name": "Acme", "subdomain": "acme", "type": "public",
        "components": [{"id": "cmp_api", "name": "API", "monitor_id": "mon_1"}, {"id": "cmp_web", "name": "Web"}]}}
    pipeline.send(0, {"kind": "config", "page_id": PAGE, "config": config, "pos": pos, "at": 1.0})


def test_a_tick_refreshes_the_bars_and_a_page_publishes_only_a_change() -> None:
    pipeline = Pipeline()
    configure(pipeline)
    published = len(pipeline.views())
    assert published == 2  # the configuration, then what the monitor said when bound
    pipeline.send(0, {"kind": "tick", "at": time.time()})
    pipeline.send(1, {"kind": "tick", "at": time.time()})
    assert len(pipeline.views()) == published  # nothing new: nothing published
    now = time.time()
    today = UptimeBucket(start=bucket_start(now))
    for status in ("up", "up", "up", "down"):
        today.add(status, 20.0)
    partition = next(p for p in range(4) if pipeline.engine.status_pages.get(p, rules.binding_key("monitor:mon_1")))
    pipeline.engine.monitor_data.put(partition, bucket_key("mon_1", today.start), SealedBucket(1, today))
    pipeline.send(partition, {"kind": "tick", "at": now})
    [api, web] = pipeline.views()[-1]["components"]
    assert api["daily"]["values"][-1] == 75.0 and api["uptime_percentage"] == 75.0
    assert web["daily"] is None
    assert len(pipeline.views()) == published + 1


def test_an_update_heard_twice_mails_each_confirmed_subscriber_once() -> None:
    pipeline = Pipeline()
    configure(pipeline)
    page_partition = next(p for p in range(4) if pipeline.engine.status_pages.get(p, rules.model_key(PAGE)))
    for n, confirmed in enumerate((True, False)):
        pipeline.engine.status_pages.put(page_partition, rules.subscriber_key(PAGE, f"sub_{n}"), {
            "id": f"sub_{n}", "email": f"reader{n}@example.com", "token": "t", "confirmed": confirmed,
            "page_url": "https://status.acme.test/s/acme", "created_at": 1.0})
    watch = IncidentWatch(pipeline.folder, DeadLetters(pipeline.engine.state))
    event = {"at": 10.0, "message": "checkout errors", "incident": {
        "id": "inc_1", "name": "Checkout errors", "description": None, "status": "investigating", "impact": "major",
        "source": "manual", "actions": [], "monitor_id": "mon_1", "heartbeat_id": None, "component_ids": ["cmp_web"],
        "created_at": "2026-01-01T00:00:10Z", "updated_at": "2026-01-01T00:00:10Z", "resolved_at": None}}
    for _ in range(2):  # redelivered, and heard through both the monitor and the component
        watch.fold_message(3, 7, orjson.dumps(event))
        pipeline.drain()
    [mailed] = pipeline.mails()
    assert mailed["to"] == "reader0@example.com" and mailed["template"] == "status_update"
    assert mailed["data"]["body"] == "checkout errors" and mailed["data"]["title"] == "Checkout errors"
    assert mailed["data"]["unsubscribe_url"] == "https://status.acme.test/s/acme/subscriptions/sub_0/unsubscribe?token=t"
    [shown] = pipeline.views()[-1]["incidents"]
    assert shown["component_ids"] == ["cmp_api", "cmp_web"] and len(shown["updates"]) == 1
    # a rule's incident without trigger-statuspage-update is not posted
    watch.fold_message(3, 8, orjson.dumps({**event, "incident": {**event["incident"], "id": "inc_2",
                                                                 "source": "monitor", "actions": ["trigger-alerts"]}}))
    pipeline.drain()
    assert [i["id"] for i in pipeline.views()[-1]["incidents"]] == ["inc_1"]


def test_a_webhook_subscriber_gets_one_signed_delivery_per_update_through_the_alert_channels_fold() -> None:
    pipeline = Pipeline()
    pipeline.engine.settings = memory_engine(secrets_key=secrets.token_urlsafe(40)).settings
    configure(pipeline)
    page_partition = next(p for p in range(4) if pipeline.engine.status_pages.get(p, rules.model_key(PAGE)))
    sealed = seal(pipeline.engine.settings.secrets_key, "whsec_test")
    pipeline.engine.status_pages.put(page_partition, rules.subscriber_key(PAGE, "sub_hook"), {
        "id": "sub_hook", "webhook": "https://hooks.acme.test/status?token=x", "secret": sealed, "confirmed": True,
        "created_at": 1.0, "pos": 0})
    watch = IncidentWatch(pipeline.folder, DeadLetters(pipeline.engine.state))
    event = {"at": 10.0, "message": "checkout errors", "incident": {
        "id": "inc_1", "name": "Checkout errors", "description": None, "status": "investigating", "impact": "major",
        "source": "manual", "actions": [], "monitor_id": "mon_1", "heartbeat_id": None, "component_ids": ["cmp_web"],
        "created_at": "2026-01-01T00:00:10Z", "updated_at": "2026-01-01T00:00:10Z", "resolved_at": None}}
    for _ in range(2):  # redelivered: the page tells the subscriber once
        watch.fold_message(3, 7, orjson.dumps(event))
        pipeline.drain()
    [sent] = pipeline.engine.state.on(topics.ALERT_CHANNEL_DELIVERIES)
    target = rules.webhook_target(PAGE, "sub_hook")
    delivery = orjson.loads(sent.value)
    assert sent.partition == page_partition and delivery["channel_id"] == target
    assert orjson.loads(delivery["body"])["data"]["status"] == "investigating"
    # the delivery fold reads the subscriber as a channel, and a delivery emitted again is the same one
    pipeline.engine.alert_channel_deliveries = MemoryTable("deliveries")
    pipeline.engine.alert_channels = MemoryTable("alert_channels")
    deliveries = AlertChannelFold(pipeline.engine, DeadLetters(pipeline.engine.state))
    channel = deliveries.target(page_partition, target)
    assert channel["spec"]["url"] == "https://hooks.acme.test/status?token=x"
    assert deliveries.signing_secret(channel) == "whsec_test"
    for offset in (1, 2):
        deliveries.fold_message(page_partition, offset, sent.value)
    assert deliveries.counts["queued"] == 1 and deliveries.counts["duplicates"] == 1
    # a failed attempt is retried with backoff, as an alert channel's, until its attempts run out
    tried = {"attempts": [], "status": "pending"}
    assert layout.record_attempt(tried, {"status_code": 500, "at": 20.0}, channel) == "pending"
    assert tried["next_attempt_at"] == 20.0 + rules.WEBHOOK_DELIVERY["initial_backoff_seconds"]
    for n in range(rules.WEBHOOK_DELIVERY["max_attempts"] - 1):
        status = layout.record_attempt(tried, {"status_code": None, "error": "refused", "at": 30.0 + n}, channel)
    assert status == "failed" and tried["reason"] == f"gave up after {rules.WEBHOOK_DELIVERY['max_attempts']} attempts"
    # removed: nobody to deliver to any more
    pipeline.engine.status_pages.delete(page_partition, rules.subscriber_key(PAGE, "sub_hook"))
    assert deliveries.target(page_partition, target) is None
