"""A dead letter's reason becomes a bounded label: the kind of problem, never the entity or value it names."""
from __future__ import annotations

from engine.metrics import reason_kind, serve_metrics


def test_a_reason_loses_the_details_that_name_an_entity_a_value_or_an_exception() -> None:
    assert reason_kind("unknown monitor 'mon_1': create it first (POST /v1/monitors)") == "unknown monitor"
    assert reason_kind("not JSON: unexpected character: line 1 column 1 (char 0)") == "not JSON"
    assert reason_kind("failed: ValueError('boom')") == "failed"
    assert reason_kind("invalid check result") == "invalid check result"
    assert reason_kind("unknown command kind 'x.y'") == "unknown command kind"
    assert reason_kind('a message must be a check result object or {"results": [...]}') == \
        "a message must be a check result object or"
    assert reason_kind("checked_at 12 s ahead of the clock") == "checked_at"
    assert reason_kind("") == "other" and reason_kind("'quoted'") == "other"
    assert len(reason_kind("x" * 500)) == 60


async def test_a_metrics_token_closes_the_endpoint_to_scrapers_without_it() -> None:
    from aiohttp import ClientSession, web
    from aiohttp.test_utils import TestServer

    app = web.Application()
    serve_metrics(app, token="scraper-secret")
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as http:
        async with http.get(server.make_url("/metrics")) as refused:
            assert refused.status == 401 and (await refused.json())["error"] == "unauthorized"
        async with http.get(server.make_url("/metrics"), headers={"Authorization": "Bearer wrong"}) as wrong:
            assert wrong.status == 401
        async with http.get(server.make_url("/metrics"), headers={"Authorization": "Bearer scraper-secret"}) as ok:
            assert ok.status == 200 and "pingstream_http_requests_total" in await ok.text()
