"""The API's picture of the directory topic: entries, tombstones, and what counts as unknown."""
from __future__ import annotations

import orjson

from api.directory import Directory
from engine.directory import entry_key, heartbeat_entry, monitor_entry, webhook_entry


def entry(value: dict) -> tuple[bytes, bytes]:
    return entry_key(value["kind"], value["id"]), orjson.dumps(value)


MONITOR = {"id": "mon_1", "org_id": "org_a", "paused": False, "spec": {"name": "x"}, "updated_at": 1.0}
HEARTBEAT = {"id": "hb-1", "org_id": "org_a", "spec": {"enabled": True}}


def test_monitors_are_known_to_their_own_organisation_only() -> None:
    directory = Directory()
    directory.apply(*entry(monitor_entry(MONITOR)))
    assert directory.unknown_monitors("org_a", {"mon_1", "mon_2"}) == {"mon_2"}
    assert directory.unknown_monitors("org_b", {"mon_1"}) == {"mon_1"}


def test_a_tombstone_forgets_the_entity() -> None:
    directory = Directory()
    for value in (monitor_entry(MONITOR), heartbeat_entry(HEARTBEAT), webhook_entry({"id": "whk_1", "org_id": "o"})):
        directory.apply(*entry(value))
    directory.apply(entry_key("monitor", "mon_1"), None)
    directory.apply(entry_key("heartbeat", "hb-1"), None)
    directory.apply(entry_key("webhook", "whk_1"), None)
    assert directory.unknown_monitors("org_a", {"mon_1"}) == {"mon_1"}
    assert directory.heartbeat_enabled("hb-1") is None
    assert directory.webhook_owner("whk_1") is None


def test_the_newest_heartbeat_entry_says_whether_it_takes_check_ins() -> None:
    directory = Directory()
    directory.apply(*entry(heartbeat_entry(HEARTBEAT)))
    assert directory.heartbeat_enabled("hb-1") is True
    directory.apply(*entry(heartbeat_entry({**HEARTBEAT, "spec": {"enabled": False}})))
    assert directory.heartbeat_enabled("hb-1") is False
    assert directory.heartbeat_enabled("hb-2") is None


def test_the_monitor_entry_carries_what_a_probe_needs() -> None:
    value = monitor_entry({**MONITOR, "pos": 7, "created_at": 0.5})
    assert value == {"kind": "monitor", "id": "mon_1", "org_id": "org_a", "paused": False,
                     "spec": {"name": "x"}, "updated_at": 1.0}
