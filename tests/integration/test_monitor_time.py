"""Time in monitors through the API and Kafka: maintenance windows and regions whose probe went quiet."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.partitioning import partition_for
from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client
from tests.integration.test_monitors import create, post_results


def monitor_events(cluster: Cluster, monitor_id: str) -> list[dict]:
    """Events on monitor-events about this monitor, in the order its partition holds them."""
    async def read() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=cluster.broker_url.removeprefix("kafka://"), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            tp = TopicPartition("monitor-events", partition_for(monitor_id, cluster.partitions))
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            found: list[dict] = []
            deadline = time.monotonic() + 10
            # until nothing more comes (Tansu's end offsets cannot be trusted)
            while (batch := await consumer.getmany(tp, timeout_ms=400)) and time.monotonic() < deadline:
                for record in batch.get(tp, []):
                    event = orjson.loads(record.value)
                    if event.get("monitor_id") == monitor_id:
                        found.append(event)
            return found
        finally:
            await consumer.stop()
    return asyncio.run(read())


def kinds(cluster: Cluster, monitor_id: str) -> list[str]:
    return [event["event"] for event in monitor_events(cluster, monitor_id)]


def monitor(api: Client, monitor_id: str) -> dict:
    response = api.get(f"/v1/monitors/{monitor_id}")
    assert response.status == 200, response.body
    return response.body["data"]


def cron_at(moment: float) -> str:
    """A daily cron expression firing at the UTC minute holding `moment`."""
    utc = time.gmtime(moment)
    return f"{utc.tm_min} {utc.tm_hour} * * *"


# -- maintenance windows ---------------------------------------------------------------------


def test_results_inside_a_window_are_shown_as_maintenance_and_left_out_of_uptime(cluster: Cluster,
                                                                                  api: Client) -> None:
    start = (int(time.time()) // 60) * 60 - 2 * 3600          # a window two hours ago, for ten minutes
    mid = create(api, regions=["eu-west"], maintenance_cron_expression=cron_at(start),
                 maintenance_duration=600)["id"]
    post_results(api, [
        {"monitor_id": mid, "region": "eu-west", "status": "up", "checked_at": start - 60, "probe": "p:1"},
        {"monitor_id": mid, "region": "eu-west", "status": "down", "cause": "deploying", "checked_at": start},
        {"monitor_id": mid, "region": "eu-west", "status": "down", "cause": "deploying", "checked_at": start + 599},
        {"monitor_id": mid, "region": "eu-west", "status": "up", "checked_at": start + 600},  # the end is outside
    ])
    stats = wait_for("the four results to be folded", lambda: (
        u := api.get(f"/v1/monitors/{mid}/uptime?period=24h").body["data"])["total_checks"]
        + u["maintenance_checks"] == 4 and u, 20)
    assert (stats["total_checks"], stats["up_checks"], stats["down_checks"]) == (2, 2, 0)
    assert stats["uptime_percentage"] == 100.0 and stats["maintenance_checks"] == 2
    assert stats["maintenance_seconds"] == 600
    checks = api.get(f"/v1/monitors/{mid}/checks").body["data"]
    assert [(c["status"], c["reported_status"]) for c in checks] == [
        ("up", "up"), ("maintenance", "down"), ("maintenance", "down"), ("up", "up")]
    assert checks[-1]["probe"] == "p:1"
    assert monitor(api, mid)["status"] == "up"
    assert api.get(f"/v1/monitors/{mid}/state-changes").body["data"] == []      # no monitor.down: no incident
    assert "monitor.down" not in kinds(cluster, mid)


def test_an_open_window_shows_maintenance_and_is_announced_as_it_starts_and_ends(cluster: Cluster,
                                                                                  api: Client) -> None:
    now = time.time()
    mid = create(api, regions=["eu-west"])["id"]
    post_results(api, [{"monitor_id": mid, "region": "eu-west", "status": "up", "checked_at": now - 5}])
    wait_for("the monitor to be up", lambda: monitor(api, mid)["status"] == "up", 20)
    # a one-minute window: this minute if enough of it is left (it opened already: seen on the next tick),
    # else the next one
    now = time.time()
    opens = (int(now) // 60) * 60 + (0 if now % 60 < 40 else 60)
    patched = api.patch(f"/v1/monitors/{mid}", {"maintenance_cron_expression": cron_at(opens),
                                                "maintenance_duration": 60})
    assert patched.status == 200, patched.body
    shown = wait_for("the window to open", lambda: (m := monitor(api, mid))["status"] == "maintenance" and m,
                     max(20.0, opens + 30 - time.time()))
    assert shown["maintenance"]["ends_at"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(opens + 60))
    assert shown["regions_status"] == {"eu-west": "up"}
    post_results(api, [{"monitor_id": mid, "region": "eu-west", "status": "down", "cause": "deploying",
                        "checked_at": time.time()}])
    wait_for("the window's result to be counted apart",
             lambda: api.get(f"/v1/monitors/{mid}/uptime").body["data"]["maintenance_checks"] == 1, 20)
    wait_for("the window to end", lambda: monitor(api, mid)["status"] == "up", max(20.0, opens + 90 - time.time()))
    events = wait_for("both announcements", lambda: (
        e := [e for e in monitor_events(cluster, mid) if e["event"].startswith("monitor.maintenance")])
        and len(e) == 2 and e, 20)
    assert [(e["event"], e["at"]) for e in events] == [("monitor.maintenance_started", opens),
                                                       ("monitor.maintenance_ended", opens + 60)]
    assert events[0]["window"] == {"start": opens, "end": opens + 60} and events[0]["previous_status"] == "up"
    assert len({e["id"] for e in events}) == 2
    changes = api.get(f"/v1/monitors/{mid}/state-changes").body["data"]
    assert [c["event"] for c in changes] == ["monitor.maintenance_ended", "monitor.maintenance_started"]
    assert "monitor.down" not in kinds(cluster, mid)


# -- stale regions -------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def quiet_region(cluster: Cluster) -> Iterator[dict]:
    """A monitor whose eu-west probe goes quiet at the module's start while us-east's reports every 3 s.

    eu-west turns stale after 3 x 10 s + 1 s = 31 s without a result: started here,
    that wait passes while the module's other tests run, not on its own.
    """
    _, key = cluster.new_org()
    api = ready_client(cluster, key)
    mid = create(api, regions=["eu-west", "us-east"], interval_seconds=10, timeout_seconds=1)["id"]
    posted = time.time()
    post_results(api, [
        {"monitor_id": mid, "region": "eu-west", "status": "up", "checked_at": posted, "probe": "probe-eu:101"},
        {"monitor_id": mid, "region": "us-east", "status": "up", "checked_at": posted, "probe": "probe-us:202"},
    ])
    wait_for("the monitor to be up", lambda: monitor(api, mid)["status"] == "up", 20)
    stop = threading.Event()
    reporter = Client(api.base, key)  # its own client: the test's goes on in the main thread

    def us_east_reports() -> None:  # us-east's probe goes on, eu-west's is gone
        while not stop.wait(3):
            post_results(reporter, [{"monitor_id": mid, "region": "us-east", "status": "up",
                                     "checked_at": time.time(), "probe": "probe-us:202"}])

    thread = threading.Thread(target=us_east_reports, daemon=True)
    thread.start()

    def quiet_us_east() -> None:
        stop.set()
        thread.join(30)

    yield {"api": api, "monitor_id": mid, "posted": posted, "stop_us_east": quiet_us_east}
    quiet_us_east()


def test_a_region_whose_probe_went_quiet_becomes_unknown_and_the_rest_decide(cluster: Cluster,
                                                                             quiet_region: dict) -> None:
    api, mid, posted = quiet_region["api"], quiet_region["monitor_id"], quiet_region["posted"]
    shown = wait_for("eu-west to go stale", lambda: (m := monitor(api, mid))["stale_regions"] and m, 90, interval=1)
    assert shown["regions_status"] == {"eu-west": "unknown", "us-east": "up"} and shown["status"] == "up"
    assert shown["stale_regions"]["eu-west"]["probe"] == "probe-eu:101"
    [stale] = wait_for("the monitor.stale event", lambda: [e for e in monitor_events(cluster, mid)
                                                          if e["event"] == "monitor.stale"], 20)
    assert (stale["region"], stale["probe"], stale["status"]) == ("eu-west", "probe-eu:101", "up")
    # its result arrived within seconds of `posted` (`at` is kept to the millisecond)
    assert posted + 31 - 0.001 <= stale["at"] <= posted + 31 + 5
    assert abs(stale["at"] - stale["last_seen_at"] - 31) < 1e-6

    # us-east alone decides: down is down, although the quiet eu-west last said up
    quiet_region["stop_us_east"]()
    post_results(api, [{"monitor_id": mid, "region": "us-east", "status": "down", "cause": "refused",
                        "checked_at": time.time(), "probe": "probe-us:202"}])
    wait_for("the monitor to go down with the region left", lambda: monitor(api, mid)["status"] == "down", 20)
    # eu-west's probe is back: fresh again, the normal way
    post_results(api, [{"monitor_id": mid, "region": "eu-west", "status": "up", "checked_at": time.time(),
                        "probe": "probe-eu:303"}])
    back = wait_for("eu-west to be fresh", lambda: (m := monitor(api, mid))["regions_status"]["eu-west"] == "up"
                    and m, 20)
    assert back["stale_regions"] == {} and back["status"] == "up"
    changes = api.get(f"/v1/monitors/{mid}/state-changes").body["data"]
    assert [c["event"] for c in changes] == ["monitor.recovered", "monitor.down", "monitor.stale"]  # newest first
    assert changes[-1]["region"] == "eu-west" and changes[-1]["probe"] == "probe-eu:101"
    assert kinds(cluster, mid).count("monitor.stale") == 1
