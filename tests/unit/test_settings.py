"""PINGSTREAM_* environment variables: defaults, typed values, and errors that say what to fix."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.settings import Settings, SettingsError


def test_without_variables_every_default_applies():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.broker == ""
    assert settings.app_id == "pingstream"
    assert settings.data_dir == Path(".pingstream")
    assert settings.partitions == 4
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8080)
    assert (settings.worker_host, settings.worker_port) == ("127.0.0.1", 6066)
    assert settings.retention_days == 90
    assert settings.flush_interval == 0.5
    assert settings.standby_replicas == 1


def test_variables_of_other_programs_are_ignored():
    assert Settings.from_env({"PATH": "/usr/bin", "PINGSTREAM": "x", "PINGSTREAM_UNKNOWN": "1"}) == Settings()


@pytest.mark.parametrize("name, raw, field, value", [
    ("PINGSTREAM_PARTITIONS", "12", "partitions", 12),
    ("PINGSTREAM_API_PORT", "9000", "api_port", 9000),
    ("PINGSTREAM_RETENTION_DAYS", " 30 ", "retention_days", 30),
    ("PINGSTREAM_SESSION_TIMEOUT", "6.5", "session_timeout", 6.5),
    ("PINGSTREAM_FLUSH_INTERVAL", "1", "flush_interval", 1.0),
    ("PINGSTREAM_DATA_DIR", "/var/lib/pingstream", "data_dir", Path("/var/lib/pingstream")),
    ("PINGSTREAM_APP_ID", "staging", "app_id", "staging"),
    ("PINGSTREAM_BROKER", "kafka://k1:9092,k2:9092", "broker", "kafka://k1:9092,k2:9092"),
    ("PINGSTREAM_INTERNAL_TOKEN", "s3cret", "internal_token", "s3cret"),
])
def test_each_variable_is_read_as_its_type(name, raw, field, value):
    settings = Settings.from_env({name: raw})
    assert getattr(settings, field) == value
    assert type(getattr(settings, field)) is type(value)


def test_an_empty_variable_means_the_default():
    assert Settings.from_env({"PINGSTREAM_PARTITIONS": "", "PINGSTREAM_APP_ID": ""}) == Settings()


@pytest.mark.parametrize("name, raw", [
    ("PINGSTREAM_PARTITIONS", "four"),
    ("PINGSTREAM_PARTITIONS", "4.0"),
    ("PINGSTREAM_WORKER_PORT", "6066/tcp"),
    ("PINGSTREAM_REQUEST_TIMEOUT", "15s"),
    ("PINGSTREAM_RETENTION_DAYS", "90d"),
])
def test_a_value_of_the_wrong_type_names_the_variable(name, raw):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: raw})
    message = str(caught.value)
    assert message.startswith(f"{name}={raw!r} is not a valid ")
    assert "unset it or give e.g." in message


def test_a_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


@pytest.mark.parametrize("broker", ["localhost:9092", "http://kafka:9092", "KAFKA://k:9092", "tansu://x"])
def test_the_broker_must_be_a_kafka_url(broker):
    with pytest.raises(SettingsError, match="PINGSTREAM_BROKER=.* must look like kafka://host:9092"):
        Settings.from_env({"PINGSTREAM_BROKER": broker})


@pytest.mark.parametrize("partitions", ["0", "-3"])
def test_there_is_at_least_one_partition(partitions):
    with pytest.raises(SettingsError, match="PINGSTREAM_PARTITIONS must be at least 1"):
        Settings.from_env({"PINGSTREAM_PARTITIONS": partitions})


def test_bootstrap_servers_drop_the_scheme():
    settings = Settings.from_env({"PINGSTREAM_BROKER": "kafka://k1:9092,k2:9093"})
    assert settings.bootstrap_servers == "k1:9092,k2:9093"


@pytest.mark.parametrize("broker, kind, on_tansu", [
    ("", "", True),                      # embedded broker: Tansu
    ("", "tansu", True),
    ("", "kafka", False),                # embedded slot, but told it is something else
    ("kafka://k:9092", "", False),       # an existing cluster is Kafka unless told
    ("kafka://tansu:9092", "tansu", True),
])
def test_tansu_workarounds_apply_to_the_embedded_broker_or_when_asked(broker, kind, on_tansu):
    env = {"PINGSTREAM_BROKER": broker, "PINGSTREAM_BROKER_KIND": kind}
    assert Settings.from_env(env).on_tansu is on_tansu


@pytest.mark.parametrize("env, url", [
    ({}, "http://127.0.0.1:6066"),
    ({"PINGSTREAM_WORKER_HOST": "0.0.0.0", "PINGSTREAM_WORKER_PORT": "7000"}, "http://0.0.0.0:7000"),
    ({"PINGSTREAM_WORKER_HOST": "0.0.0.0", "PINGSTREAM_WORKER_URL": "http://worker-1:6066"}, "http://worker-1:6066"),
    ({"PINGSTREAM_WORKER_URL": ""}, "http://127.0.0.1:6066"),
])
def test_the_advertised_worker_url_defaults_to_host_and_port(env, url):
    assert Settings.from_env(env).advertised_worker_url == url


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().partitions = 8  # type: ignore[misc]


def test_without_an_explicit_mapping_the_process_environment_is_read(monkeypatch):
    monkeypatch.setenv("PINGSTREAM_PARTITIONS", "8")
    monkeypatch.setenv("PINGSTREAM_WORKER_URL", "http://w:1")
    settings = Settings.from_env()
    assert (settings.partitions, settings.advertised_worker_url) == (8, "http://w:1")


STRONG = "Jq3vQy0bX9kP2mN7wR4tL8sZ1cF6hD5gA0eB3uV7yK2"   # 43 base64 characters: 256 bits


OTHER = "Zt8pW2nQ5rX1vB7mK4cL9sD3fH6gJ0aE2yU5iO8wR1q"


@pytest.mark.parametrize("token, jwt_secret, secrets_key, says", [
    ("", STRONG, OTHER, "PINGSTREAM_INTERNAL_TOKEN must be at least 32 random bytes"),
    (STRONG, "", OTHER, "PINGSTREAM_JWT_SECRET must be at least 32 random bytes"),
    (STRONG, OTHER, "", "PINGSTREAM_SECRETS_KEY must be at least 32 random bytes"),
    ("change-me" * 8, STRONG, OTHER, "PINGSTREAM_INTERNAL_TOKEN"),          # long but not random
    (STRONG, "0123456789abcdef" * 3, OTHER, "PINGSTREAM_JWT_SECRET"),      # 48 hex digits: 192 bits
    (STRONG, STRONG, OTHER, "PINGSTREAM_JWT_SECRET must differ from PINGSTREAM_INTERNAL_TOKEN"),
    (STRONG, OTHER, OTHER, "PINGSTREAM_SECRETS_KEY must differ from PINGSTREAM_JWT_SECRET"),
])
def test_weak_missing_or_shared_secrets_are_refused(token, jwt_secret, secrets_key, says):
    settings = Settings.from_env({"PINGSTREAM_INTERNAL_TOKEN": token, "PINGSTREAM_JWT_SECRET": jwt_secret,
                                  "PINGSTREAM_SECRETS_KEY": secrets_key})
    with pytest.raises(SettingsError, match=says):
        settings.require_secrets()


def test_strong_separate_secrets_are_accepted():
    import secrets

    Settings(internal_token=secrets.token_urlsafe(32), jwt_secret=secrets.token_hex(32),
             secrets_key=secrets.token_urlsafe(40)).require_secrets()


def test_up_stores_its_secrets_created_private(tmp_path):
    """Created with mode 0600, so not even a permissive umask leaves a moment when others could read them."""
    import os

    from pingstream.cli import stored_secret

    permissive = os.umask(0)
    try:
        first = stored_secret(tmp_path, "jwt-secret")
    finally:
        os.umask(permissive)
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600
    assert stored_secret(tmp_path, "jwt-secret") == first and len(first) >= 43
    assert stored_secret(tmp_path, "internal-token") != first


def test_replicas_share_one_worker_url_template_and_each_advertises_its_own_address() -> None:
    import socket

    settings = Settings.from_env({"PINGSTREAM_BROKER": "kafka://127.0.0.1:9092", "PINGSTREAM_WORKER_PORT": "6070",
                                  "PINGSTREAM_WORKER_URL": "http://{ip}:{port}"})
    assert settings.advertised_worker_url == "http://127.0.0.1:6070"
    named = Settings.from_env({"PINGSTREAM_BROKER": "kafka://127.0.0.1:9092",
                               "PINGSTREAM_WORKER_URL": "http://{hostname}:6066"})
    assert named.advertised_worker_url == f"http://{socket.gethostname()}:6066"
