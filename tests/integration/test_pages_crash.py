"""A page's timers fire once across a worker SIGKILL: no escalation step is sent twice, none is skipped.

Twelve pages, each with three escalation steps two seconds apart, go to one
person's webhook channel; the only worker is SIGKILLed while steps are due and
restarted from the same data directory (a rebalance: the new member takes the
partitions). Every page ends with all its steps fired; each message (page,
step) reaches the receiver at most once and is in the channel's delivery log
exactly once (delivered, or `unknown` if the kill cut its request short).
"""
from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.integration.accounts import person
from tests.integration.cluster import Cluster, Process, wait_for
from tests.integration.conftest import running_cluster
from tests.integration.paging import PERSONAL, pages_seen, webhook_channel
from tests.mailbox import Mailbox
from tests.receivers import HttpReceiver

PAGES, STEPS = 12, 3


@pytest.fixture
def crash_cluster(tmp_path, smtp_server: Mailbox, http_receiver: HttpReceiver) -> Iterator[Cluster]:
    with running_cluster(tmp_path, workers=1, env={**smtp_server.env, **http_receiver.env}) as cluster:
        yield cluster


def test_escalation_steps_fire_once_each_across_a_worker_sigkill(crash_cluster: Cluster, smtp_server: Mailbox,
                                                                 http_receiver: HttpReceiver) -> None:
    cluster = crash_cluster
    ada = person(cluster, smtp_server, "ada")
    hook = webhook_channel(ada, http_receiver)
    steps = [{"delay_seconds": 2, "target_user_id": ada.user_id}] * STEPS
    page_ids = []
    for n in range(PAGES):
        sent = ada.client.post("/v1/pages", {"subject": f"page {n}", "target_user_id": ada.user_id,
                                             "escalation": steps})
        assert sent.status == 201, sent.body
        page_ids.append(sent.body["page_id"])
    wait_for("first escalation steps", lambda: any(m["data"]["label"] == "s1"
                                                   for m in pages_seen(http_receiver, hook)), 30)
    worker: Process = next(p for p in cluster.processes if p.name == "worker-0")
    worker.stop(signal.SIGKILL)
    restarted = cluster.start_worker("worker-0-restarted", port=worker.port)  # same port: same data directory
    cluster.wait_serving(restarted)

    expected = {f"page:{page_id}:{ada.user_id}:s{k}" for page_id in page_ids for k in range(STEPS + 1)}
    channel_id = ada.client.get(PERSONAL).body["data"][0]["id"]

    def logged() -> Counter:
        answer = ada.client.get(f"{PERSONAL}/{channel_id}/deliveries?per_page=100")
        if answer.status != 200:
            return Counter()
        return Counter(d["id"] for d in answer.body["data"] if d["kind"] == "message" and d["status"] != "pending")

    wait_for("every step of every page logged", lambda: set(logged()) >= expected, 60, interval=0.5)
    assert set(logged()) == expected and all(count == 1 for count in logged().values())   # none missed, none twice
    received = Counter(m["id"] for m in pages_seen(http_receiver, hook))
    assert set(received) <= expected and all(count == 1 for count in received.values()), received
    for page_id in page_ids:
        assert ada.client.get(f"/v1/pages/{page_id}").body["data"]["escalation_step"] == STEPS
