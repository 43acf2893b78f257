"""Heartbeat bodies and check-in messages: what is accepted, and the error for what is not."""
from __future__ import annotations

import pytest

from schemas.heartbeat import (
    CheckIn, HeartbeatPatch, HeartbeatSpec, id_for_token, new_push_token, parse_heartbeat_id,
)
from schemas.validation import InvalidInput, parse

HC_UUID = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"


def errors_of(body: dict) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse(HeartbeatSpec, body)
    return caught.value.errors


def test_an_interval_heartbeat_gets_defaults() -> None:
    spec = parse(HeartbeatSpec, {"name": "nightly backup", "interval": 86400})
    assert spec.stored() == {"name": "nightly backup", "service_id": None, "interval": 86400, "cron": None,
                             "timezone": "UTC", "grace": 60, "enabled": True}


def test_a_cron_heartbeat_with_a_time_zone() -> None:
    spec = parse(HeartbeatSpec, {"name": "x", "cron": "0 3 * * *", "timezone": "Europe/Berlin", "grace": 600})
    assert (spec.cron, spec.timezone, spec.interval) == ("0 3 * * *", "Europe/Berlin", None)


@pytest.mark.parametrize("body, field, reason", [
    ({"name": "x"}, "interval", "give an interval"),
    ({"name": "x", "interval": 60, "cron": "* * * * *"}, "cron", "not both"),
    ({"name": "x", "cron": "every day"}, "cron", "5-field"),
    ({"name": "x", "cron": "0 0 30 2 *"}, "cron", "never fires"),
    ({"name": "x", "interval": 60, "timezone": "Mars/Base"}, "timezone", "IANA"),
    ({"name": "x", "interval": 0}, "interval", "greater than or equal to 1"),
    ({"name": "x", "interval": 60, "grace": 0}, "grace", "greater than or equal to 1"),
    ({"name": "x", "interval": 60, "service_id": "a b"}, "service_id", "letters, digits"),
    ({"name": "x", "interval": 60, "id": "not-a-uuid"}, "id", "not a UUID"),
    ({"name": "x", "interval": 60, "push_token": "short"}, "push_token", "8-128"),
    ({"name": "x", "interval": 60, "id": HC_UUID, "push_token": "abcdefgh12"}, "push_token", "not both"),
    ({"name": "x", "interval": 60, "colour": "red"}, "colour", "Extra inputs"),
])
def test_invalid_heartbeats_name_the_field(body: dict, field: str, reason: str) -> None:
    errors = errors_of(body)
    assert field in errors and reason in errors[field], errors


def test_an_imported_healthchecks_id_is_kept_in_canonical_form() -> None:
    spec = parse(HeartbeatSpec, {"name": "x", "interval": 60, "id": HC_UUID.upper()})
    assert spec.id == HC_UUID


def test_ids_follow_from_push_tokens() -> None:
    token = new_push_token()
    assert len(token) == 32 and token.isalnum()
    assert id_for_token(token) == id_for_token(token) != id_for_token(token + "x")
    assert parse_heartbeat_id(id_for_token(token)) == id_for_token(token)


def test_heartbeat_ids_are_uuids_dashed_or_not() -> None:
    assert parse_heartbeat_id(HC_UUID) == HC_UUID
    assert parse_heartbeat_id(HC_UUID.replace("-", "")) == HC_UUID
    assert parse_heartbeat_id("{" + HC_UUID + "}") is None
    assert parse_heartbeat_id("mon_123") is None


def test_a_patch_switches_between_interval_and_cron() -> None:
    current = {"name": "x", "interval": 60, "cron": None, "timezone": "UTC", "grace": 60, "enabled": True}
    switched = HeartbeatSpec.model_validate(HeartbeatPatch(cron="0 * * * *").merged_with(current))
    assert (switched.cron, switched.interval) == ("0 * * * *", None)
    back = HeartbeatSpec.model_validate(HeartbeatPatch(interval=30).merged_with(switched.stored()))
    assert (back.cron, back.interval) == (None, 30)
    with pytest.raises(ValueError):
        HeartbeatPatch.model_validate({"push_token": "abcdefgh12"})


def test_a_check_in_message() -> None:
    checkin = CheckIn.model_validate({"heartbeat_id": HC_UUID, "result": "complete", "rid": "r-1",
                                      "received_at": "2026-01-01T00:00:00Z"})
    assert checkin.received_at == 1767225600.0
    for bad in ({"heartbeat_id": HC_UUID.upper()}, {"heartbeat_id": HC_UUID, "rid": "has space"},
                {"heartbeat_id": HC_UUID, "exit_status": 256}, {"heartbeat_id": HC_UUID, "result": "ok"}):
        with pytest.raises(ValueError):
            CheckIn.model_validate(bad)
