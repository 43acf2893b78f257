from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.broker import EmbeddedBroker
from tests.integration.cluster import Client, Cluster, wait_for
from tests.mailbox import Mailbox
from tests.receivers import HttpReceiver


@contextmanager
def broker_for_cluster(root: Path) -> Iterator[tuple[str, bool]]:
    """(kafka:// URL, is it Tansu) of the broker a test cluster uses.

    KAFKA_BOOTSTRAP=host:port: that Kafka. PINGSTREAM_TEST_BROKER=kafka-container:
    a throwaway Apache Kafka from testcontainers (needs a Docker engine).
    Otherwise an embedded Tansu, started for this cluster alone.
    """
    external = os.environ.get("KAFKA_BOOTSTRAP")
    if external:
        yield f"kafka://{external}", False
    elif os.environ.get("PINGSTREAM_TEST_BROKER") == "kafka-container":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield f"kafka://{kafka.get_bootstrap_server()}", False
    else:
        with EmbeddedBroker(log_path=root / "broker.log") as broker:
            yield broker.url, True


@contextmanager
def running_cluster(root: Path, workers: int = 1, api: bool = True,
                    env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """Its own broker (see broker_for_cluster), workers and an API; all stopped after.

    `env`: more PINGSTREAM_* settings for every process (e.g. SMTP_HOST).
    """
    with broker_for_cluster(root) as (url, on_tansu):
        cluster = Cluster(broker_url=url, on_tansu=on_tansu, root=root, app_id=f"pingstream-test-{root.name}",
                          extra_env=dict(env or {}))
        try:
            for n in range(workers):
                cluster.start_worker(f"worker-{n}")
            if api:
                cluster.wait_serving(cluster.start_api())
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1 that the shared cluster sends all its mail to.

    `smtp_server.wait_for_mail("ada@example.com")` returns the next mail to that address as text.
    """
    with Mailbox() as mailbox:
        yield mailbox


@pytest.fixture(scope="session")
def http_receiver() -> Iterator[HttpReceiver]:
    """A real HTTP server on 127.0.0.1: the shared cluster's SMS and voice provider (Twilio's REST shape), and a
    webhook, json:// and ntfy:// target for any path."""
    with HttpReceiver() as running:
        yield running


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, smtp_server: Mailbox,
            http_receiver: HttpReceiver) -> Iterator[Cluster]:
    """One broker, one worker and the API, shared by the tests that do not kill anything."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), env={**smtp_server.env, **http_receiver.env}) as running:
        yield running


def ready_client(cluster: Cluster, key: str) -> Client:
    client = cluster.client(key)
    wait_for("the new API key to be known", lambda: client.get("/v1/monitors").status == 200, 30)
    return client


@pytest.fixture
def org(cluster: Cluster) -> tuple[str, Client]:
    """A fresh organisation with an all-scopes key, so tests never see each other's data."""
    org_id, key = cluster.new_org()
    return org_id, ready_client(cluster, key)


@pytest.fixture
def api(org: tuple[str, Client]) -> Client:
    return org[1]
