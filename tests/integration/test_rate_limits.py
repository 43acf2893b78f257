"""Rate limits: per key by the team's plan, per address without credentials, held across API processes."""
from __future__ import annotations

import http.client
import json
import math
import random
import time

from api.rate_limits import PUBLISH_INTERVAL
from tables.plans import plan_named
from tests.integration.cluster import Client, Cluster, Process, Response

FREE = plan_named("free").requests_per_minute
ERROR = {"error": "rate_limit_exceeded"}


def limit_remaining_reset(response: Response) -> tuple[int, int, int]:
    headers = response.headers
    return (int(headers["X-RateLimit-Limit"]), int(headers["X-RateLimit-Remaining"]),
            int(headers["X-RateLimit-Reset"]))


def until_refused(client: Client, path: str, most: int) -> list[Response]:
    """Requests until the first 429 (included), at most `most`."""
    responses = []
    while len(responses) < most and (not responses or responses[-1].status != 429):
        responses.append(client.get(path))
    return responses


def assert_refused(response: Response, limit: int) -> None:
    assert response.status == 429, response.body
    retry_after = int(response.headers["Retry-After"])
    assert response.body == {**ERROR, "message": f"Rate limit exceeded. Retry after {retry_after} seconds."}
    assert 1 <= retry_after <= 61
    assert limit_remaining_reset(response) == (limit, 0, retry_after)


def test_a_free_key_gets_sixty_requests_a_minute_then_429(cluster: Cluster) -> None:
    _, key = cluster.new_org(plan="free", name="rate-limited team")
    responses = until_refused(cluster.client(key), "/v1/monitors", FREE + 1)
    *accepted, refused = responses
    assert {r.status for r in accepted} == {200}
    remaining = [limit_remaining_reset(r)[1] for r in accepted]
    used_before = FREE - 1 - remaining[0]  # new_org's check that the key works, once the key was known
    assert 0 <= used_before <= 3
    assert len(accepted) + used_before == FREE
    assert remaining == list(range(remaining[0], -1, -1))
    assert all(limit_remaining_reset(r)[0] == FREE and 1 <= limit_remaining_reset(r)[2] <= 61 for r in accepted)
    assert_refused(refused, FREE)
    again = cluster.client(key).get("/v1/monitors")  # the refused one did not count: still the same wait
    assert_refused(again, FREE)
    assert int(again.headers["Retry-After"]) <= int(refused.headers["Retry-After"])


def test_error_responses_carry_the_headers_too(cluster: Cluster) -> None:
    _, key = cluster.new_org(plan="free", name="rate-limited team")
    api = cluster.client(key)
    for path, status in (("/v1/monitors/mon_nope", 404), ("/v1/no-such-thing", 404),
                         ("/v1/monitors?per_page=1000", 422)):
        response = api.get(path)
        assert response.status == status
        assert limit_remaining_reset(response)[0] == FREE


def test_the_limit_holds_across_api_processes(cluster: Cluster) -> None:
    """The same key through the API process and a worker (which serves the API too), alternately.

    Each process alone would accept FREE; together they accept FREE plus at most
    what the other accepted within one publish interval and the delivery time.
    """
    _, key = cluster.new_org(plan="free", name="rate-limited team")
    worker = next(p for p in cluster.processes if p.name.startswith("worker"))
    processes = [cluster.client(key), Client(worker.url, key)]
    per_second = 10
    slack = math.ceil(per_second * (PUBLISH_INTERVAL + 0.5))  # 0.5 s: delivery, generously
    accepted, refused_in_a_row, sent = [0, 0], [0, 0], 0
    used_before = None
    while min(refused_in_a_row) < 5 and sent < 2 * FREE + 20:
        started = time.monotonic()
        which = sent % 2
        response = processes[which].get("/v1/monitors")
        sent += 1
        if response.status == 200:
            accepted[which] += 1
            refused_in_a_row[which] = 0
            if used_before is None:
                used_before = FREE - 1 - limit_remaining_reset(response)[1]
        else:
            assert_refused(response, FREE)
            refused_in_a_row[which] += 1
        time.sleep(max(0.0, 1 / per_second - (time.monotonic() - started)))  # pacing the client, not waiting
    assert min(refused_in_a_row) >= 5, (accepted, sent)
    # both refuse although each accepted far fewer than FREE itself: they count each other's
    assert max(accepted) < FREE - 10, accepted
    assert FREE <= used_before + sum(accepted) <= FREE + slack, (used_before, accepted, slack)


def from_address(source: str, process: Process, path: str, key: str | None = None, method: str = "GET") -> Response:
    """A request from the loopback address `source` (any 127.x.y.z): no other test shares its count."""
    connection = http.client.HTTPConnection("127.0.0.1", process.port, timeout=30, source_address=(source, 0))
    try:
        connection.request(method, path, body=b"{}" if method == "POST" else None,
                           headers={"Authorization": f"Bearer {key}"} if key else {})
        response = connection.getresponse()
        body = response.read()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return Response(response.status, json.loads(body) if is_json else body.decode(), dict(response.getheaders()))
    finally:
        connection.close()


def test_requests_without_valid_credentials_are_limited_per_address(cluster: Cluster) -> None:
    limited = cluster.start_api("api-ip-limit", PINGSTREAM_IP_RATE_LIMIT="5")
    try:
        cluster.wait_serving(limited)
        address, other_address = random.sample([f"127.{n // 250}.{n % 250}.9" for n in range(1, 60_000)], 2)
        responses = [from_address(address, limited, "/v1/monitors", key) for key in [None, "psk_" + "x" * 43] * 3]
        *unauthorized, refused = responses
        assert [r.status for r in unauthorized] == [401] * 5  # no credentials, or a key that is not valid
        assert [limit_remaining_reset(r)[:2] for r in unauthorized] == [(5, n) for n in range(4, -1, -1)]
        assert_refused(refused, 5)
        assert_refused(from_address(address, limited, "/v1/no-such-thing"), 5)

        # a valid key counts against itself, not the address
        _, key = cluster.new_org(name="another team")
        with_key = from_address(address, limited, "/v1/monitors", key)
        assert with_key.status == 200
        assert limit_remaining_reset(with_key)[0] == plan_named("self-hosted").requests_per_minute
        # another address has its own count
        assert from_address(other_address, limited, "/v1/monitors").status == 401
        # not limited here: health, the OpenAPI document, check-in and webhook ingest URLs (limits of their own)
        for method, path, status in (("GET", "/v1/health-check", 200), ("GET", "/v1/openapi.json", 200),
                                     ("GET", "/ping/3f1d8a52-6c1e-4b8e-9a53-0d7c2f6a9b10", 404),
                                     ("GET", "/api/push/nope", 404),
                                     ("POST", "/v1/heartbeats/3f1d8a52-6c1e-4b8e-9a53-0d7c2f6a9b10/events", 404),
                                     ("POST", "/v1/webhooks/whk_AAAAAAAAAAAAAAAAAAAAAAAA/events", 404)):
            response = from_address(address, limited, path, method=method)  # the address is over its limit
            assert response.status == status, (path, response.body)
            assert "X-RateLimit-Limit" not in response.headers, path
    finally:
        limited.stop()
        cluster.processes.remove(limited)


def test_more_keys_do_not_multiply_a_team_s_share(cluster: Cluster) -> None:
    _, key = cluster.new_org(plan="free", name="many keys")
    first = cluster.client(key)
    keys = [cluster.client(first.post("/v1/keys", {"name": f"k{n}", "scopes": ["monitors:read"]})
                           .body["data"]["secret"]) for n in range(7)]
    team_limit = plan_named("free").team_requests_per_minute
    made = {n: 0 for n in range(len(keys))}
    for n in range(team_limit + 10):
        answer = keys[n % len(keys)].get("/v1/monitors")
        if answer.status == 429:
            break
        made[n % len(keys)] += 1
    assert answer.status == 429 and limit_remaining_reset(answer)[0] == team_limit
    assert max(made.values()) < FREE and sum(made.values()) <= team_limit


def test_a_known_webhook_id_cannot_flood_the_workers(cluster: Cluster) -> None:
    _, key = cluster.new_org(plan="free", name="webhook flood")
    webhook = cluster.client(key).post("/v1/webhooks", {"name": "flooded"}).body["data"]
    anonymous = cluster.client(None)
    quota = plan_named("free").webhook_events_per_minute
    for n in range(quota + 1):
        answer = anonymous.post(f"/v1/webhooks/{webhook['id']}/events", {"n": n})
        if answer.status != 202:
            break
    assert n == quota and answer.status == 429 and answer.body["error"] == "ingest_rate_exceeded", (n, answer.body)
    assert 1 <= int(answer.headers["Retry-After"]) <= 61
