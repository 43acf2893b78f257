from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.broker import EmbeddedBroker
from tests.integration.cluster import Client, Cluster, wait_for


@contextmanager
def running_cluster(root: Path, workers: int = 1, api: bool = True) -> Iterator[Cluster]:
    """Its own broker (embedded Tansu, or KAFKA_BOOTSTRAP), workers and an API; all stopped after."""
    external = os.environ.get("KAFKA_BOOTSTRAP")
    broker = None if external else EmbeddedBroker(log_path=root / "broker.log")
    if broker is not None:
        broker.start()
    cluster = Cluster(broker_url=f"kafka://{external}" if external else broker.url,
                      on_tansu=broker is not None, root=root,
                      app_id=f"pingstream-test-{root.name}")
    try:
        for n in range(workers):
            cluster.start_worker(f"worker-{n}")
        if api:
            cluster.wait_serving(cluster.start_api())
        yield cluster
    finally:
        cluster.stop()
        if broker is not None:
            broker.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One broker, one worker and the API, shared by the tests that do not kill anything."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as running:
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
