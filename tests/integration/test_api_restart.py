"""An API process killed while results stream through it: a 202 always means stored, never a false one.

`POST /v1/checks` answers 202 only once Kafka holds the results (acks=all); a
client whose request was in flight when its API process died gets an error
(the connection closes) and knows to send again. Each request here carries
1,000 results for a monitor of its own, so afterwards each monitor's count says
what that request stored: all of it for every 202, all or nothing for an error.
"""
from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.integration.cluster import Client, Cluster, wait_for

REQUESTS = 24
PER_REQUEST = 1000


def test_an_api_killed_mid_request_answered_202_only_for_stored_results(cluster: Cluster,
                                                                         org: tuple[str, Client]) -> None:
    _, api = org
    monitors = []
    for n in range(REQUESTS):
        created = api.post("/v1/monitors", {"name": f"mid-request {n}", "url": "https://example.com",
                                            "interval_seconds": 86400})
        assert created.status == 201, created.body
        monitors.append(created.body["data"]["id"])
    doomed = cluster.start_api("api-killed-mid-request")
    cluster.wait_serving(doomed)
    via = Client(doomed.url, api.key)
    wait_for("the new API process to know the monitors",
             lambda: via.post("/v1/checks", {"monitor_id": monitors[0], "status": "up"}).status == 202, 30)
    now = time.time()
    answers: dict[str, str] = {}
    accepted = threading.Semaphore(0)

    def post(mid: str) -> None:
        body = {"results": [{"monitor_id": mid, "status": "up", "checked_at": now - 3600 + n * 0.5}
                            for n in range(PER_REQUEST)]}
        try:
            status = via.post("/v1/checks", body).status
            answers[mid] = str(status)
            if status == 202:
                accepted.release()
        except OSError as exc:  # the connection closed or was refused: the client sees an error
            answers[mid] = f"error: {type(exc).__name__}"

    with ThreadPoolExecutor(3) as pool:
        for mid in monitors[1:]:
            pool.submit(post, mid)
        for _ in range(4):  # a few requests through; the next ones are in flight
            assert accepted.acquire(timeout=60), f"no 202 within 60 s: {answers}"
        doomed.stop(signal.SIGKILL)
    stored = [mid for mid in monitors[1:] if answers[mid] == "202"]
    failed = [mid for mid in monitors[1:] if answers[mid] != "202"]
    assert len(stored) >= 4 and failed, answers
    assert all(answers[mid].startswith("error") for mid in failed), answers  # never another answer
    # some were in flight (their connection was reset), the rest found nobody listening (URLError: refused)
    assert any(answers[mid] != "error: URLError" for mid in failed), answers

    restarted = cluster.start_api("api-restarted", port=doomed.port)
    cluster.wait_serving(restarted)
    reads = Client(restarted.url, api.key)

    def total(mid: str) -> int:
        return reads.get(f"/v1/monitors/{mid}/uptime?period=24h").body["data"]["total_checks"]

    wait_for("every 202 to be counted", lambda: all(total(mid) == PER_REQUEST for mid in stored), 60, 0.5)
    assert {total(mid) for mid in failed} <= {0, PER_REQUEST}  # a closed connection stored all or nothing
    assert all(total(mid) == PER_REQUEST for mid in stored)
    restarted.stop()
