"""Check results in: state machine, transitions, history, statistics, exactly as posted."""
from __future__ import annotations

import math
import time

from tests.integration.cluster import Client, wait_for
from tests.integration.test_monitors import create, post_results


def uptime(api: Client, monitor_id: str, period: str = "24h") -> dict:
    response = api.get(f"/v1/monitors/{monitor_id}/uptime?period={period}")
    assert response.status == 200, response.body
    return response.body["data"]


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def test_results_drive_state_history_and_statistics(api: Client) -> None:
    monitor = create(api, regions=["eu-west", "us-east", "ap-south"], grace_period=20, recovery_period=0)
    mid, t0 = monitor["id"], time.time() - 600
    times = [float(10 + 7 * n) for n in range(30)]  # 10 .. 213 ms, all up
    results = [{"monitor_id": mid, "region": region, "status": "up", "response_time_ms": times[n],
                "checked_at": t0 + n, "status_code": 200}
               for n, region in zip(range(30), ["eu-west", "us-east", "ap-south"] * 10)]
    # us-east and ap-south fail; the failure persists 30 s > grace 20 s, so both go down
    for offset, region in ((100, "us-east"), (101, "ap-south"), (130, "us-east"), (131, "ap-south")):
        results.append({"monitor_id": mid, "region": region, "status": "down", "checked_at": t0 + offset,
                        "cause": "connection refused", "response_time_ms": 5000.0})
    post_results(api, results)
    state = wait_for("the monitor to go down", lambda: (
        m := api.get(f"/v1/monitors/{mid}").body["data"])["status"] == "down" and m, 20)
    assert state["regions_status"] == {"eu-west": "up", "us-east": "down", "ap-south": "down"}
    # one region recovers: no majority down any more
    post_results(api, [{"monitor_id": mid, "region": "us-east", "status": "up", "checked_at": t0 + 200,
                        "response_time_ms": 50.0}])
    wait_for("the monitor to recover", lambda: api.get(f"/v1/monitors/{mid}").body["data"]["status"] == "up", 20)

    changes = api.get(f"/v1/monitors/{mid}/state-changes").body["data"]
    assert [c["event"] for c in changes] == ["monitor.recovered", "monitor.down"]  # newest first
    assert changes[1]["cause"] == "connection refused"
    assert changes[1]["regions"] == {"eu-west": "up", "us-east": "down", "ap-south": "down"}

    stats = uptime(api, mid)
    rts = times + [5000.0] * 4 + [50.0]
    assert (stats["total_checks"], stats["up_checks"], stats["down_checks"]) == (35, 31, 4)
    assert stats["uptime_percentage"] == round(100 * 31 / 35, 4)
    assert stats["avg_response_time_ms"] == round(sum(rts) / len(rts), 3)
    assert abs(stats["p95_response_time_ms"] - exact_percentile(rts, 95)) <= 0.025 * exact_percentile(rts, 95)
    assert abs(stats["p50_response_time_ms"] - exact_percentile(rts, 50)) <= 0.025 * exact_percentile(rts, 50)
    assert stats["min_response_time_ms"] == 10.0 and stats["max_response_time_ms"] == 5000.0
    for period in ("7d", "30d", "90d"):
        assert uptime(api, mid, period)["total_checks"] == 35

    checks = api.get(f"/v1/monitors/{mid}/checks?per_page=10").body
    assert checks["meta"]["total"] == 35 and checks["meta"]["total_pages"] == 4
    assert checks["data"][0]["region"] == "us-east" and checks["data"][0]["status"] == "up"
    everything = api.get(f"/v1/monitors/{mid}/checks?per_page=500").body["data"]
    assert len(everything) == 35 and len({c["id"] for c in everything}) == 35

    series = api.get(f"/v1/monitors/{mid}/performance?interval=1h").body["data"]
    assert sum(point["total_checks"] for point in series) == 35


def test_a_single_result_and_plain_arrays_are_accepted(api: Client) -> None:
    mid = create(api, regions=[])["id"]
    single = api.post("/v1/checks", {"monitor_id": mid, "status": "up", "response_time_ms": 12})
    assert single.status == 202 and single.body["data"]["accepted"] == 1
    array = api.post("/v1/checks", [{"monitor_id": mid, "status": "up"}, {"monitor_id": mid, "status": "up"}])
    assert array.status == 202 and array.body["data"]["accepted"] == 2
    wait_for("3 results counted", lambda: uptime(api, mid)["total_checks"] == 3, 20)


def test_a_batch_spanning_many_monitors_counts_each_once(api: Client) -> None:
    ids = [create(api, name=f"m{n}", regions=[])["id"] for n in range(12)]
    now = time.time()
    results = [{"monitor_id": ids[n % 12], "status": "up" if n % 5 else "down", "checked_at": now - 1000 + n,
                "response_time_ms": float(n)} for n in range(1000)]
    post_results(api, results)
    for n, mid in enumerate(ids):
        expected = sum(1 for k in range(1000) if k % 12 == n)
        wait_for(f"{mid} to count {expected}", lambda: uptime(api, mid)["total_checks"] == expected, 30)
        stats = uptime(api, mid)
        assert stats["down_checks"] == sum(1 for k in range(1000) if k % 12 == n and k % 5 == 0)
