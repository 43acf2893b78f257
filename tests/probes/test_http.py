"""http monitors against a real aiohttp server on 127.0.0.1: status, redirects, bodies, headers, timeouts."""
from __future__ import annotations

import asyncio
import socket
from time import perf_counter

import pytest
from aiohttp import web

from probe import run_check
from schemas.check_result import CheckResult
from tests.probes.conftest import TIMEOUT, Target

GROUPS = {"groups": {"user": [{"name": "ada", "roles": ["admin", "ops"]}]}, "healthy": True}
MIB = 1 << 20


class Site:
    """The routes every http test can reach; remembers what the huge body sent."""

    def __init__(self) -> None:
        self.huge_bytes_sent = 0
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_get("/json", self.json)
        self.app.router.add_get("/page", self.page)
        self.app.router.add_get("/redirect", self.redirect)
        self.app.router.add_get("/loop", self.loop)
        self.app.router.add_get("/status/{code}", self.status)
        self.app.router.add_get("/slow-headers", self.slow_headers)
        self.app.router.add_get("/huge", self.huge)
        self.app.router.add_route("*", "/echo", self.echo)

    async def json(self, request: web.Request) -> web.Response:
        return web.json_response(GROUPS, headers={"X-Served-By": "pingstream-test", "Cache-Control": "no-store"})

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text="<h1>Welcome to pinghome</h1> build 1234", content_type="text/html")

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/page")

    async def loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="unavailable")

    async def slow_headers(self, request: web.Request) -> web.Response:
        await asyncio.wait_for(self.release.wait(), 60)
        return web.Response(text="too late")

    async def huge(self, request: web.Request) -> web.StreamResponse:
        """2 GB announced and streamed: "pinghome" in the first chunk, "needle" only after 1 MiB."""
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.content_length = 2 * 1024 ** 3
        await response.prepare(request)
        chunk = b"pinghome" + b"x" * (64 * 1024 - 8)
        try:
            for index in range(32 * 1024):
                await response.write(chunk if index < 20 else b"needle" + chunk[6:])
                self.huge_bytes_sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def echo(self, request: web.Request) -> web.Response:
        return web.json_response({"method": request.method, "body": await request.text(),
                                  "token": request.headers.get("X-Token", "")})


@pytest.fixture
async def site():
    served = Site()
    async with Target(served.app) as target:
        yield served, target
        served.release.set()


def monitor(url: str, **fields) -> dict:
    return {"name": "test", "url": url, "timeout_seconds": TIMEOUT, **fields}


def assert_result_shape(outcome) -> dict:
    """The result is a valid check-results message."""
    result = outcome.as_result("mon_1", "eu-west", 1_795_000_000)
    CheckResult.model_validate(result)
    return result


async def test_a_json_endpoint_is_up_with_its_timings(session, site):
    _, target = site
    outcome = await run_check(monitor(target.url("/json", host="localhost")), session)
    assert (outcome.status, outcome.status_code, outcome.cause) == ("up", 200, None)
    timings = outcome.timings
    assert timings.dns_ms is not None and timings.dns_ms >= 0   # "localhost" is looked up
    assert 0 < timings.connect_ms < TIMEOUT * 1000
    assert 0 < timings.ttfb_ms <= timings.total_ms < TIMEOUT * 1000
    assert timings.tls_ms is None and outcome.certificate is None
    assert 0 < outcome.response_time_ms <= timings.total_ms
    result = assert_result_shape(outcome)
    assert result["status"] == "up" and set(result["timings"]) == {"dns_ms", "connect_ms", "ttfb_ms", "total_ms"}
    assert "certificate" not in result and "failed_condition" not in result


async def test_a_server_error_is_down_by_default_and_with_a_status_condition(session, site):
    _, target = site
    outcome = await run_check(monitor(target.url("/status/503")), session)
    assert (outcome.status, outcome.status_code) == ("down", 503)
    assert outcome.cause == "condition failed: status_code 503 not in [200-399]"
    outcome = await run_check(monitor(target.url("/status/503"), conditions=[
        {"type": "status_code", "operator": "equal", "values": [200]}]), session)
    assert outcome.cause == "condition failed: status_code 503 not in [200]"
    assert outcome.failed_condition.actual == 503
    assert assert_result_shape(outcome)["failed_condition"] == {
        "type": "status_code", "key": None, "operator": "equal", "values": [200], "actual": 503}
    up = await run_check(monitor(target.url("/status/503"), conditions=[
        {"type": "status_code", "operator": "equal", "values": ["5xx"]}]), session)
    assert up.status == "up"


async def test_redirects_are_followed_unless_the_monitor_says_not_to(session, site):
    _, target = site
    followed = await run_check(monitor(target.url("/redirect"), conditions=[
        {"type": "keyword", "operator": "contains", "values": ["pinghome"]}]), session)
    assert (followed.status, followed.status_code) == ("up", 200)
    not_followed = await run_check(monitor(target.url("/redirect"), not_follow_redirect=True, conditions=[
        {"type": "status_code", "operator": "equal", "values": [200]}]), session)
    assert (not_followed.status, not_followed.status_code) == ("down", 302)
    assert not_followed.cause == "condition failed: status_code 302 not in [200]"
    looping = await run_check(monitor(target.url("/loop")), session)
    assert (looping.status, looping.cause) == ("down", "too many redirects (more than 10)")


async def test_keyword_regex_header_and_json_path_conditions(session, site):
    _, target = site
    missing = await run_check(monitor(target.url("/page"), conditions=[
        {"type": "keyword", "operator": "contains", "values": ["pingstream"]}]), session)
    assert (missing.status, missing.cause) == ("down", 'keyword "pingstream" not found')
    assert missing.failed_condition.actual.startswith("<h1>Welcome")
    matched = await run_check(monitor(target.url("/page"), conditions=[
        {"type": "regex", "operator": "matches", "values": [r"build \d{4}"]},
        {"type": "header", "key": "content-type", "operator": "contains", "values": ["text/html"]}]), session)
    assert matched.status == "up", matched.cause
    wrong_header = await run_check(monitor(target.url("/json"), conditions=[
        {"type": "header", "key": "X-Served-By", "operator": "equal", "values": ["nginx"]}]), session)
    assert wrong_header.cause == 'condition failed: header X-Served-By "pingstream-test" not equal to "nginx"'
    name = await run_check(monitor(target.url("/json"), conditions=[
        {"type": "response-json-check", "key": "groups.user[0].name", "operator": "equal", "values": ["bob"]}]),
        session)
    assert name.cause == 'condition failed: json_path groups.user[0].name "ada" not equal to "bob"'
    assert name.failed_condition.type == "response-json-check" and name.failed_condition.actual == "ada"
    holds = await run_check(monitor(target.url("/json"), conditions=[
        {"type": "json_path", "key": "$.groups.user[0].roles", "operator": "contains", "values": ["ops"]},
        {"type": "json_path", "key": "healthy", "operator": "equal", "values": ["true"]},
        {"type": "response_time", "operator": "less", "values": [TIMEOUT * 1000]}]), session)
    assert holds.status == "up", holds.cause


async def test_method_headers_and_body_are_sent(session, site):
    _, target = site
    outcome = await run_check(monitor(target.url("/echo"), method="POST", headers={"X-Token": "s3cret"},
                                      body='{"ping": 1}', conditions=[
        {"type": "json_path", "key": "method", "operator": "equal", "values": ["POST"]},
        {"type": "json_path", "key": "token", "operator": "equal", "values": ["s3cret"]},
        {"type": "json_path", "key": "body", "operator": "equal", "values": ['{"ping": 1}']}]), session)
    assert outcome.status == "up", outcome.cause


async def test_a_target_that_never_sends_headers_costs_the_timeout(session, site):
    served, target = site
    started = perf_counter()
    outcome = await run_check(monitor(target.url("/slow-headers"), timeout_seconds=1), session)
    took = perf_counter() - started
    assert (outcome.status, outcome.cause) == ("down", "timeout after 1 s (no response headers)")
    assert 1.0 <= took < 1 + TIMEOUT
    assert 1000 <= outcome.timings.total_ms < (1 + TIMEOUT) * 1000 and outcome.timings.connect_ms is not None


async def test_a_huge_body_is_read_only_up_to_one_mebibyte(session, site):
    served, target = site
    started = perf_counter()
    found = await run_check(monitor(target.url("/huge"), conditions=[
        {"type": "keyword", "operator": "contains", "values": ["pinghome"]}]), session)
    assert found.status == "up", found.cause
    beyond = await run_check(monitor(target.url("/huge"), conditions=[
        {"type": "keyword", "operator": "contains", "values": ["needle"]}]), session)
    assert beyond.cause == 'keyword "needle" not found'   # it starts after the first MiB
    assert perf_counter() - started < 2 * TIMEOUT
    # the server stops once we close: far less than the 2 GB it announced (socket buffers aside)
    assert served.huge_bytes_sent < 256 * MIB


async def test_unreachable_targets_are_down_with_their_cause(session):
    with socket.socket() as placeholder:   # bound, then released: nothing listens there
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    refused = await run_check(monitor(f"http://127.0.0.1:{port}/json"), session)
    assert (refused.status, refused.cause) == ("down", "connection refused")
    assert refused.timings.total_ms is not None
    unknown = await run_check(monitor("http://example.invalid/"), session)
    assert (unknown.status, unknown.cause) == ("down", "DNS: NXDOMAIN for example.invalid")
    invalid = await run_check({"name": "bad", "url": "ftp://example.com"}, session)
    assert invalid.status == "down" and invalid.cause.startswith("monitor configuration invalid: url:")
