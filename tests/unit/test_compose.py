"""docker-compose.yml scales: `docker compose up --scale worker=3` gives three workers, each at its own URL.

There is no Docker engine here, so the file's structure is checked: what would
make replicas collide (a fixed name, a fixed host port, one named volume for
all their RocksDB directories, one URL for all) is absent, and the URL template
every replica shares becomes each one's own address.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.mark.parametrize("service", ["worker", "probe"])
def test_a_scaled_service_has_nothing_its_replicas_would_fight_over(compose: dict, service: str) -> None:
    spec = compose["services"][service]
    assert "container_name" not in spec and "ports" not in spec and "hostname" not in spec
    named = set(compose.get("volumes") or {})
    mounted = [str(volume).split(":")[0] for volume in spec.get("volumes", [])]
    assert not named & set(mounted), f"{service} replicas would share the named volume(s) {named & set(mounted)}"
    assert spec["environment"]["PINGSTREAM_BROKER"] == "kafka://kafka:9092"


def test_each_worker_replica_advertises_its_own_address_and_keeps_state_in_its_own_volume(compose: dict) -> None:
    env = compose["services"]["worker"]["environment"]
    assert env["PINGSTREAM_WORKER_HOST"] == "0.0.0.0"
    template = env["PINGSTREAM_WORKER_URL"]
    assert "{ip}" in template or "{hostname}" in template, template
    # the template as one replica fills it in (here the broker is this host's loopback)
    settings = Settings.from_env({"PINGSTREAM_BROKER": "kafka://127.0.0.1:9092", "PINGSTREAM_WORKER_URL": template})
    assert settings.advertised_worker_url == "http://127.0.0.1:6066"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "VOLUME /data" in dockerfile and "ENV PINGSTREAM_DATA_DIR=/data" in dockerfile


def test_the_api_and_kafka_are_single_services_every_pingstream_process_is_built_from_the_repository(
        compose: dict) -> None:
    services = compose["services"]
    assert services["api"]["ports"] == ["8080:8080"] and services["api"]["command"] == ["pingstream", "api"]
    assert services["worker"]["command"] == ["pingstream", "worker"]
    for name in ("worker", "api", "probe"):
        assert services[name]["build"] == "." and services[name]["depends_on"]["kafka"]["condition"] == \
            "service_healthy"


def test_prometheus_finds_every_replica_of_every_role_by_its_service_name(compose: dict) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    found = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"]}
    ports = {"worker": 6066, "api": 8080, "probe": 9464}
    for role, port in ports.items():
        sd = found[f"pingstream-{role}"]
        assert sd["names"] == [role] and role in compose["services"] and sd["port"] == port
    assert Settings().worker_port == 6066 and Settings().api_port == 8080 and Settings().probe_port == 9464
    assert compose["services"]["probe"]["environment"]["PINGSTREAM_PROBE_HOST"] == "0.0.0.0"
    mounted = compose["services"]["prometheus"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == (ROOT / "deploy" / "prometheus" / "prometheus.yml").resolve()
