"""Bad input and wrong credentials get the right 4xx, a clear error, and store nothing."""
from __future__ import annotations

import pytest

from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client
from tests.integration.test_monitors import HTTP_MONITOR, create


def assert_error(response, status: int, code: str, *fields: str) -> None:
    assert response.status == status, response.body
    assert response.body["error"] == code and response.body["message"]
    for field in fields:
        assert field in response.body["errors"], response.body


def test_malformed_json_is_a_400(api: Client) -> None:
    assert_error(api.post("/v1/monitors", raw=b'{"name": "x",'), 400, "malformed_json")
    assert_error(api.post("/v1/checks", raw=b"not json"), 400, "malformed_json")
    assert api.get("/v1/monitors").body["meta"]["total"] == 0


@pytest.mark.parametrize("body, fields", [
    ({"name": "x", "url": "ftp://example.com"}, ["url"]),
    ({"name": "", "url": "https://example.com"}, ["name"]),
    ({"name": "x", "url": "https://example.com", "grace_period": "soon"}, ["grace_period"]),
    ({"name": "x", "url": "https://example.com", "regions": ["EU West"]}, ["regions"]),
    ({"name": "x", "type": "tcp", "host": "db.internal"}, ["port"]),
    ({"name": "x", "url": "https://example.com", "maintenance_cron_expression": "every day"}, ["maintenance_cron_expression"]),
    ({"name": "x", "url": "https://example.com", "conditions": [{"type": "status_code", "operator": "equal"}]}, ["conditions.0"]),
    ({"name": "x", "url": "https://example.com", "colour": "red"}, ["colour"]),
])
def test_invalid_monitors_get_per_field_errors(api: Client, body: dict, fields: list[str]) -> None:
    assert_error(api.post("/v1/monitors", body), 422, "validation_error", *fields)
    assert api.get("/v1/monitors").body["meta"]["total"] == 0


def test_invalid_results_are_refused_whole(api: Client) -> None:
    mid = create(api)["id"]
    assert_error(api.post("/v1/checks", {"monitor_id": mid, "status": "sideways"}), 422, "validation_error", "status")
    assert_error(api.post("/v1/checks", {"results": [{"monitor_id": mid, "status": "up"},
                                                      {"monitor_id": mid, "status": "up", "response_time_ms": "fast"}]}),
                 422, "validation_error", "results.1.response_time_ms")
    too_many = [{"monitor_id": mid, "status": "up"}] * 1001
    assert_error(api.post("/v1/checks", {"results": too_many}), 422, "validation_error", "results")
    assert_error(api.post("/v1/checks", {"results": [{"monitor_id": mid, "status": "up"},
                                                      {"monitor_id": "mon_nope", "status": "up"}]}),
                 422, "unknown_monitor", "results.1.monitor_id")
    # a good result sent after them is counted alone: none of the refused ones slipped through
    assert api.post("/v1/checks", {"monitor_id": mid, "status": "up"}).status == 202
    wait_for("the sentinel result", lambda: api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] >= 1, 20)
    assert api.get(f"/v1/monitors/{mid}/uptime").body["data"]["total_checks"] == 1


def test_bad_query_parameters(api: Client) -> None:
    mid = create(api)["id"]
    assert_error(api.get(f"/v1/monitors/{mid}/uptime?period=1y"), 422, "validation_error", "period")
    assert_error(api.get("/v1/monitors?per_page=1000"), 422, "validation_error", "per_page")
    assert_error(api.get(f"/v1/monitors/{mid}/performance?start_date=yesterday"), 422, "validation_error", "start_date")
    assert_error(api.get(f"/v1/monitors/{mid}/checks?per_page=501"), 422, "validation_error", "per_page")


def test_missing_and_unknown_keys_are_401(cluster: Cluster, api: Client) -> None:
    mid = create(api)["id"]
    for client in (cluster.client(None), cluster.client("psk_not-a-real-key")):
        for method, path in (("GET", "/v1/monitors"), ("POST", "/v1/monitors"), ("GET", f"/v1/monitors/{mid}"),
                             ("POST", "/v1/checks"), ("DELETE", f"/v1/monitors/{mid}")):
            assert_error(client.request(method, path, {}), 401, "unauthorized")
    assert api.get(f"/v1/monitors/{mid}").status == 200


def test_x_api_key_header_works(cluster: Cluster, org: tuple[str, Client]) -> None:
    plain = cluster.client(None)
    response = plain.get("/v1/monitors", headers={"X-API-Key": org[1].key})
    assert response.status == 200


def test_scopes_are_enforced(cluster: Cluster, api: Client) -> None:
    mid = create(api)["id"]
    _, key = cluster.new_org(scopes=("monitors:read",))
    reader = ready_client(cluster, key)
    assert_error(reader.post("/v1/monitors", HTTP_MONITOR), 403, "insufficient_scope")
    assert_error(reader.post("/v1/checks", {"monitor_id": mid, "status": "up"}), 403, "insufficient_scope")
    assert_error(reader.delete(f"/v1/monitors/{mid}"), 403, "insufficient_scope")


def test_another_organisations_monitor_is_404_and_untouched(cluster: Cluster, api: Client) -> None:
    mine = create(api)["id"]
    _, key = cluster.new_org()
    stranger = ready_client(cluster, key)
    for method, path in (("GET", f"/v1/monitors/{mine}"), ("GET", f"/v1/monitors/{mine}/uptime"),
                         ("GET", f"/v1/monitors/{mine}/checks"), ("GET", f"/v1/monitors/{mine}/state-changes"),
                         ("PATCH", f"/v1/monitors/{mine}"), ("DELETE", f"/v1/monitors/{mine}"),
                         ("POST", f"/v1/monitors/{mine}/pause")):
        response = stranger.request(method, path, {"name": "stolen"} if method == "PATCH" else None)
        assert response.status == 404, (method, path, response.body)
    assert_error(stranger.post("/v1/checks", {"monitor_id": mine, "status": "down"}), 422, "unknown_monitor")
    assert stranger.get("/v1/monitors").body["data"] == []
    mine_now = api.get(f"/v1/monitors/{mine}").body["data"]
    assert mine_now["name"] == HTTP_MONITOR["name"] and mine_now["paused"] is False


def test_openapi_document_lists_the_endpoints(cluster: Cluster) -> None:
    document = cluster.client(None).get("/v1/openapi.json").body
    assert document["openapi"].startswith("3.")
    assert {"post", "get"} <= set(document["paths"]["/v1/monitors"])
    assert "MonitorSpec" in document["components"]["schemas"]
    assert document["paths"]["/v1/checks"]["post"]["x-scope"] == "checks:write"
