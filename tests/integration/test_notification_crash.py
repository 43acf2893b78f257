"""Nothing is sent twice to a channel for one message across a worker SIGKILL, and nothing is forgotten.

Thirty messages go to a team with three webhook channels, one of whose
receivers answers slowly; the only worker is SIGKILLed while those requests
are in flight, and restarted from the same data directory. Every message ends
on every channel delivered, or `unknown` where the killed worker's request was
cut short (not repeated, since it may have arrived); no receiver sees one
message twice.
"""
from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.integration.cluster import Cluster, Process, wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.integration.test_notification_channels import create, one_request, send_to, verified
from tests.receivers import HttpReceiver

MESSAGES = 30


@pytest.fixture
def crash_cluster(tmp_path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, workers=1) as cluster:
        yield cluster


def test_no_message_reaches_a_channel_twice_across_sigkill(crash_cluster: Cluster,
                                                           http_receiver: HttpReceiver) -> None:
    cluster = crash_cluster
    team_id, key = cluster.new_org()
    api = ready_client(cluster, key)
    base = f"/v1/team/{team_id}/notification-channels"
    tag = uuid.uuid4().hex[:8]
    paths = {name: f"/{name}-{tag}" for name in ("fast", "slow", "other")}
    channels = {}
    for name, path in paths.items():
        channel = create(api, base, type="webhook", url=http_receiver.url(path))
        code = json.loads(one_request(http_receiver, path, f"the {name} code")[0].body)["code"]
        channels[name] = verified(api, base, channel, code)
    http_receiver.slow[paths["slow"]] = 3.0

    asyncio.run(send_to(cluster, f"team:{team_id}", *[{"id": f"m-{tag}-{n}", "subject": f"message {n}", "text": "t"}
                                                      for n in range(MESSAGES)]))
    one_request(http_receiver, paths["slow"], "a slow request in flight", 2)
    worker: Process = next(p for p in cluster.processes if p.name == "worker-0")
    worker.stop(signal.SIGKILL)
    restarted = cluster.start_worker("worker-0-restarted", port=worker.port)  # same port: same data directory
    cluster.wait_serving(restarted)

    def settled(name: str) -> dict[str, str]:
        logged = api.get(f"{base}/{channels[name]['id']}/deliveries?per_page=100")
        if logged.status != 200:
            return {}
        found = {d["id"]: d["status"] for d in logged.body["data"] if d["kind"] == "message"}
        return found if len(found) == MESSAGES and "pending" not in found.values() else {}

    outcomes = {name: wait_for(f"every message settled on {name}", lambda n=name: settled(n), 60, interval=0.5)
                for name in paths}
    for name, path in paths.items():
        seen = Counter(r.headers["X-Pingstream-Delivery"] for r in http_receiver.seen(path)
                       if json.loads(r.body)["event"] == "notification.message")
        assert all(count == 1 for count in seen.values()), f"{name} received a message twice: {seen}"
        for message_id, status in outcomes[name].items():
            assert status in ("delivered", "unknown"), (name, message_id, status)
            if status == "delivered":
                assert seen[f"{channels[name]['id']}:{message_id}"] == 1
    assert "unknown" in outcomes["slow"].values()  # the killed worker's cut-short requests were not repeated
