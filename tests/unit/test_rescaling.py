"""Where a table record lives under another partition count (tables/rescaling.py), and the deployment's states."""
from __future__ import annotations

import orjson
import pytest

from engine import topics
from engine.deployment import ACTIVE, COPYING, MOVING, Deployment
from tables import certificates, incidents, monitor_data, notification_channels, org_index, pages, status_pages, usage
from tables.alert_channels import delivery_key as alert_delivery_key, due_key as alert_due_key
from tables.entity_keys import chunk_key, runtime_key
from tables.heartbeat_data import DEADLINE_INDEX, bucket_key as heartbeat_bucket_key
from tables.rescaling import Unroutable, directory_home, home_of, merge, merger_of

MONITOR, ORG, HEARTBEAT = "mon_0123456789abcdef0123", "org_abcdef", "0b6e0c3a-1111-2222-3333-444455556666"


@pytest.mark.parametrize("table, key, home", [
    ("monitors", orjson.dumps(MONITOR), MONITOR),
    ("monitors", usage.active_key(ORG), ORG),
    ("monitor_data", runtime_key(MONITOR), MONITOR),
    ("monitor_data", chunk_key(MONITOR, 7), MONITOR),
    ("monitor_data", monitor_data.bucket_key(MONITOR, 1_795_000_000), MONITOR),
    ("monitor_data", monitor_data.change_key(MONITOR, 1_795_000_000.5, 12 << 20), MONITOR),
    ("monitor_data", monitor_data.DUE_INDEX.key(1_795_000_000_000, MONITOR), MONITOR),
    ("monitor_data", usage.checks_key(ORG), ORG),
    ("org_index", org_index.entry_key(ORG, "monitors", MONITOR, 1_795_000_000.0), ORG),
    ("org_index", org_index.count_key(ORG, "monitors"), ORG),
    ("heartbeat_data", heartbeat_bucket_key(HEARTBEAT, 1_795_000_000), HEARTBEAT),
    ("heartbeat_data", DEADLINE_INDEX.key(1_795_000_000_000, HEARTBEAT), HEARTBEAT),
    ("deliveries", alert_delivery_key("ach_1", 1_795_000_000.0, "dlv_1"), "ach_1"),
    ("deliveries", alert_due_key(1_795_000_000.0, alert_delivery_key("ach_1", 1_795_000_000.0, "dlv_1")), "ach_1"),
    ("notification_deliveries", notification_channels.delivery_key("user:u1", "nch_1", 1.0, "m1"), "user:u1"),
    ("notification_deliveries", notification_channels.due_key(
        2.0, notification_channels.delivery_key("team:t1", "nch_1", 1.0, "m1")), "team:t1"),
    ("incidents", incidents.route_key("inc_0123456789abcdef0123"), "inc_0123456789abcdef0123"),
    ("incidents", incidents.incident_key("inc_0123456789abcdef0123-3"), "inc_0123456789abcdef0123"),
    ("incidents", incidents.timeline_key("inc_0123456789abcdef0123-3", 9), "inc_0123456789abcdef0123"),
    ("certificates", certificates.naming_key(MONITOR), MONITOR),
    ("certificates", certificates.domain_key("example.com"), "example.com"),
    ("certificates", certificates.due_key(1_795_000_000_000, MONITOR), MONITOR),
    ("certificates", certificates.lookup_key(1_795_000_000_000, "example.com"), "example.com"),
    ("status_pages", status_pages.claim_key("sub:status"), "sub:status"),
    ("status_pages", status_pages.binding_key(f"monitor:{MONITOR}"), MONITOR),
    ("status_pages", status_pages.model_key("sp_1"), "sp_1"),
    ("status_pages", status_pages.subscriber_key("sp_1", "sub_1"), "sp_1"),
    ("status_pages", status_pages.subscribed_key("sp_1", "Ada@Example.com"), "sp_1"),
    ("pages", pages.page_key(ORG, "pg_1"), ORG),
    ("pages", pages.DUE.key(1_795_000_000_000, pages.due_ref(ORG, "pg_1")), ORG),
])
def test_every_layout_names_the_id_whose_partition_holds_it(table: str, key: bytes, home: str) -> None:
    assert home_of(table, key) == home


def test_a_layout_the_rules_do_not_know_stops_the_move() -> None:
    with pytest.raises(Unroutable):
        home_of("monitor_data", b"\x00zsomething new")
    with pytest.raises(Unroutable):
        home_of("monitors", b"\x00")
    with pytest.raises(Unroutable):
        directory_home(b"no-kind")
    assert directory_home(f"heartbeat:{HEARTBEAT}".encode()) == HEARTBEAT


def test_per_partition_counters_are_summed_and_nothing_else_merges() -> None:
    hours = merge("monitor_data", usage.checks_key(ORG), orjson.dumps({"pos": 5, "hours": [[3600, 2], [7200, 1]]}),
                  orjson.dumps({"pos": 9, "hours": [[7200, 4], [10800, 1]]}))
    assert orjson.loads(hours) == {"pos": 9, "hours": [[3600, 2], [7200, 5], [10800, 1]]}
    active = merge("monitors", usage.active_key(ORG), orjson.dumps({"active": 3, "pos": 1}),
                   orjson.dumps({"active": -1, "pos": 4}))
    assert orjson.loads(active) == {"active": 2, "pos": 4}
    assert merger_of("monitor_data", runtime_key(MONITOR)) is None
    with pytest.raises(Unroutable):
        merge("monitors", orjson.dumps(MONITOR), b"{}", b"{}")


def test_a_move_goes_active_moving_copying_active_and_says_where_ingest_goes() -> None:
    start = Deployment(0, 4)
    assert start.ingest == (0, 4) and not start.moving
    moving = start.moving_to(8)
    assert (moving.state, moving.ingest, moving.partitions) == (MOVING, (1, 8), 4)
    copying = moving.copying()
    assert (copying.state, copying.ingest) == (COPYING, (1, 8))
    done = copying.moved()
    assert (done.state, done.generation, done.partitions, done.ingest) == (ACTIVE, 1, 8, (1, 8))
    assert Deployment.from_json(done.to_json()) == done


def test_topic_names_and_offsets_of_a_generation() -> None:
    assert topics.named("check-results", 0) == "check-results"
    assert topics.named("check-results.g1", 2) == "check-results.g2"
    assert topics.named("workers", 3) == "workers"  # registries belong to no generation
    # positions (offset << 20 | index) stay within 64 bits up to the last generation
    assert ((topics.MAX_GENERATION * topics.OFFSET_SPAN + topics.OFFSET_SPAN - 1) << 20 | (1 << 20) - 1) < 2 ** 64
