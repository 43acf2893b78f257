"""Signed outbound webhooks: a receiver on 127.0.0.1 verifies every signature and sees the retries."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.broker import free_port
from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.integration.test_dead_letters import dead_letters
from tests.integration.test_monitors import create, post_results


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> bool:
    """What a receiver does (the README's Python snippet)."""
    delivery, timestamp = headers["X-Pingstream-Delivery"], headers["X-Pingstream-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), f"{delivery}.{timestamp}.".encode() + body,
                                    hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance
    return fresh and hmac.compare_digest(expected, headers["X-Pingstream-Signature"])


class Receiver:
    """Records every request; answers each path with its scripted statuses (the last one repeats)."""

    def __init__(self, script: dict[str, list[int]]) -> None:
        self.script = script
        self.requests: list[tuple[str, dict[str, str], bytes, float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers), body, time.time()))
                statuses = receiver.script[self.path]
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def seen(self, path: str) -> list[tuple[dict[str, str], bytes, float]]:
        return [(headers, body, at) for p, headers, body, at in self.requests if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver({"/flaky": [500, 500, 200], "/down": [500], "/monitors": [200]})
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


def channel(api: Client, url: str, **spec: object) -> dict:
    response = api.post("/v1/alerts", {"name": "receiver", "url": url, **spec})
    assert response.status == 201, response.body
    assert response.body["data"]["secret"].startswith("whsec_")
    return response.body["data"]


def test_deliveries_are_signed_retried_with_backoff_and_recorded(api: Client, receiver: Receiver) -> None:
    flaky = channel(api, receiver.url("/flaky"), events=["incident.created"], initial_backoff_seconds=1)
    assert "secret" not in api.get(f"/v1/alerts/{flaky['id']}").body["data"]
    opened = api.post("/v1/incidents", {"name": "Payments down", "urgency": "critical"}).body["data"]

    attempts = wait_for("three attempts: 500, 500, then 200", lambda: len(receiver.seen("/flaky")) >= 3 and
                        receiver.seen("/flaky"), 30)
    assert len(attempts) == 3
    for headers, body, _ in attempts:
        assert verify(flaky["secret"], headers, body), headers
        assert not verify("whsec_wrong", headers, body)
        assert not verify(flaky["secret"], {**headers, "X-Pingstream-Delivery": "another id"}, body)
        assert headers["X-Pingstream-Event"] == "incident.created"
    assert len({headers["X-Pingstream-Delivery"] for headers, _, _ in attempts}) == 1
    assert len({body for _, body, _ in attempts}) == 1  # the same body each time, signed afresh
    sent = json.loads(attempts[0][1])
    assert sent["event"] == "incident.created" and sent["data"]["id"] == opened["id"]
    assert sent["timestamp"].endswith("Z") and sent["data"]["urgency"] == "critical"
    gaps = [b[2] - a[2] for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # backoff 1 s, then 2 s

    record = wait_for("the delivery to be recorded as delivered", lambda: (
        d := api.get(f"/v1/alerts/{flaky['id']}/deliveries").body["data"]) and d[0]["status"] == "delivered" and d[0], 15)
    assert [a["status_code"] for a in record["attempts"]] == [500, 500, 200]
    assert [a["attempt"] for a in record["attempts"]] == [1, 2, 3]

    rotated = api.post(f"/v1/alerts/{flaky['id']}/rotate-secret")
    assert rotated.status == 200 and rotated.body["data"]["secret"] != flaky["secret"]
    receiver.script["/flaky"] = [200]
    api.post("/v1/incidents", {"name": "Second"})
    headers, body, _ = wait_for("the next delivery", lambda: len(receiver.seen("/flaky")) >= 4 and
                                receiver.seen("/flaky")[3], 20)
    assert verify(rotated.body["data"]["secret"], headers, body) and not verify(flaky["secret"], headers, body)


def test_monitor_events_reach_subscribed_channels_and_failures_are_dead_lettered(
        cluster: Cluster, api: Client, receiver: Receiver) -> None:
    monitors = channel(api, receiver.url("/monitors"), events=["monitor.down", "monitor.recovered"])
    down = channel(api, receiver.url("/down"), events=["monitor.down"], max_attempts=2, initial_backoff_seconds=1)
    monitor = create(api, regions=[])
    post_results(api, [{"monitor_id": monitor["id"], "status": "down", "cause": "timeout", "checked_at": time.time()}])

    headers, body, _ = wait_for("monitor.down at the subscribed channel", lambda: receiver.seen("/monitors") and
                                receiver.seen("/monitors")[0], 20)
    assert verify(monitors["secret"], headers, body)
    sent = json.loads(body)
    assert sent["event"] == "monitor.down" and sent["data"]["monitor_id"] == monitor["id"]
    assert sent["data"]["cause"] == "timeout"

    failed = wait_for("the failing delivery to be given up", lambda: (
        d := api.get(f"/v1/alerts/{down['id']}/deliveries").body["data"]) and d[0]["status"] == "failed" and d[0], 30)
    assert [a["status_code"] for a in failed["attempts"]] == [500, 500]
    assert len(receiver.seen("/down")) == 2
    letters = wait_for("the dead letter", lambda: [
        letter for letter in asyncio.run(dead_letters(cluster))
        if letter["topic"] == "notifications" and down["id"] in letter["reason"]], 20, interval=0.5)
    assert "gave up after 2 attempts" in letters[0]["reason"]


def test_without_the_operator_s_allowance_a_channel_to_127_0_0_1_is_refused_and_logged_generically(
        tmp_path: Path, receiver: Receiver) -> None:
    """SSRF: a tenant's channel cannot make a worker reach loopback (or any internal address), nor map its ports."""
    with running_cluster(tmp_path, env={"PINGSTREAM_OUTBOUND_ALLOW": ""}) as strict:
        org_id, key = strict.new_org()
        api = ready_client(strict, key)
        internal = channel(api, receiver.url("/monitors"), max_attempts=2, initial_backoff_seconds=1)
        closed_port = channel(api, f"http://127.0.0.1:{free_port()}/x", max_attempts=1)
        metadata = channel(api, "http://169.254.169.254/latest/meta-data/", max_attempts=1)
        api.post("/v1/incidents", {"name": "probe the inside"})

        def given_up(alert: dict) -> dict:
            deliveries = api.get(f"/v1/alerts/{alert['id']}/deliveries").body["data"]
            return deliveries and deliveries[0]["status"] == "failed" and deliveries[0]

        for alert, attempts in ((internal, 2), (closed_port, 1), (metadata, 1)):
            failed = wait_for(f"the delivery to {alert['url']} to be given up", lambda: given_up(alert), 30)
            assert [(a["status_code"], a["error"]) for a in failed["attempts"]] == \
                [(None, "refused: not a public address")] * attempts
    assert receiver.seen("/monitors") == []


async def every_record(cluster: Cluster) -> list[bytes]:
    """Every key and value on every topic of the cluster's broker (changelogs, commands, replies included)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=cluster.broker_url.removeprefix("kafka://"), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for topic in await consumer.topics()
               for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: list[bytes] = []
        while batch := await consumer.getmany(timeout_ms=1000):
            seen += [(r.key or b"") + b" " + (r.value or b"") for records in batch.values() for r in records]
        return seen
    finally:
        await consumer.stop()


def test_signing_secrets_are_sealed_in_tables_and_topics(cluster: Cluster, api: Client, receiver: Receiver) -> None:
    made = channel(api, receiver.url("/monitors"), events=["incident.created"])
    api.post("/v1/incidents", {"name": "sealed"})
    headers, body, _ = wait_for("a delivery signed with the secret", lambda: receiver.seen("/monitors") and
                                receiver.seen("/monitors")[0], 20)
    assert verify(made["secret"], headers, body)
    assert api.get(f"/v1/alerts/{made['id']}").body["data"]["secret_prefix"] == made["secret"][:12]
    secret = made["secret"].encode()
    records = asyncio.run(every_record(cluster))
    assert any(b"sealed:v1:" in record for record in records)   # the sealed form is there to be seen
    assert not any(secret in record for record in records)
    for path in cluster.root.rglob("*"):   # the workers' RocksDB files (and logs)
        if path.is_file():
            assert secret not in path.read_bytes(), path
