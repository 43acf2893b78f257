"""https monitors with trustme certificates: the certificate is recorded, and a refused one says why."""
from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from probe import run_check
from probe.outcome import day
from schemas.check_result import CheckResult
from tests.probes.conftest import TIMEOUT, Target, days_from_now, server_context


def app() -> web.Application:
    application = web.Application()
    application.router.add_get("/", lambda request: web.Response(text="secure pinghome"))
    return application


def monitor(url: str, **fields) -> dict:
    return {"name": "tls", "url": url, "timeout_seconds": TIMEOUT, **fields}


async def test_a_valid_certificate_is_recorded_with_the_handshake_time(session, ca):
    cert = ca.issue_cert("localhost", "127.0.0.1", common_name="localhost", not_after=days_from_now(90))
    async with Target(app(), server_context(cert)) as target:
        outcome = await run_check(monitor(target.url("/"), conditions=[
            {"type": "ssl_expiry", "operator": "greater", "values": [30]}]), session)
    assert (outcome.status, outcome.status_code, outcome.cause) == ("up", 200, None)
    assert outcome.timings.tls_ms > 0 and outcome.timings.connect_ms > 0 and outcome.timings.ttfb_ms > 0
    certificate = outcome.certificate
    assert certificate.subject.startswith("CN=localhost,")
    assert "O=pingstream test CA" in certificate.issuer
    assert set(certificate.sans) == {"localhost", "127.0.0.1"}
    assert 89 < certificate.days_left(time.time()) <= 90
    assert certificate.not_before < time.time() < certificate.not_after
    result = outcome.as_result("mon_1", "eu-west", time.time())
    assert result["certificate"]["not_after"] == time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                               time.gmtime(certificate.not_after))
    assert len(result["certificate"]["fingerprint_sha256"]) == 64
    assert CheckResult.model_validate(result).certificate.sans == ["localhost", "127.0.0.1"]


async def test_an_expired_certificate_says_when_it_expired(session, ca):
    cert = ca.issue_cert("127.0.0.1", not_before=days_from_now(-60), not_after=days_from_now(-3))
    async with Target(app(), server_context(cert)) as target:
        outcome = await run_check(monitor(target.url("/")), session)
        skipped = await run_check(monitor(target.url("/"), skip_ssl_error=True, conditions=[
            {"type": "ssl_expiry", "operator": "greater_or_equal", "values": [14]}]), session)
    expired_on = day(days_from_now(-3).timestamp())
    assert (outcome.status, outcome.cause) == ("down", f"TLS: certificate expired on {expired_on}")
    assert outcome.certificate is not None and day(outcome.certificate.not_after) == expired_on
    assert outcome.status_code is None
    # skip_ssl_error: the page answers, but the expiry condition still reads the certificate
    assert skipped.status == "down" and skipped.status_code == 200
    assert skipped.cause.startswith("condition failed: ssl_expiry: certificate expires in -3 days")
    assert skipped.failed_condition.actual == pytest.approx(-3, abs=0.1)


async def test_a_certificate_for_another_host_names_the_hosts_it_is_for(session, ca):
    cert = ca.issue_cert("other.example")
    async with Target(app(), server_context(cert)) as target:
        outcome = await run_check(monitor(target.url("/")), session)
        skipped = await run_check(monitor(target.url("/"), skip_ssl_error=True), session)
    assert (outcome.status, outcome.cause) == (
        "down", "TLS: certificate is not valid for 127.0.0.1 (it names other.example)")
    assert outcome.certificate.sans == ("other.example",)
    assert skipped.status == "up" and skipped.certificate.sans == ("other.example",)


async def test_self_signed_and_unknown_issuer_certificates(session, stranger_ca):
    async with Target(app(), server_context(stranger_ca)) as target:
        self_signed = await run_check(monitor(target.url("/")), session)
    assert self_signed.status == "down"
    assert self_signed.cause.startswith("TLS: self-signed certificate (")
    assert "O=stranger CA" in self_signed.cause and self_signed.certificate.subject == self_signed.certificate.issuer
    async with Target(app(), server_context(stranger_ca.issue_cert("127.0.0.1"))) as target:
        unknown = await run_check(monitor(target.url("/")), session)
    assert unknown.status == "down"
    assert unknown.cause.startswith("TLS: certificate issued by an unknown authority")
    assert "O=stranger CA" in unknown.cause and "O=stranger CA" in unknown.certificate.issuer


async def test_a_target_that_never_answers_the_handshake_times_out_in_it(session):
    async def mute(reader, writer):   # accepts, then says nothing
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        outcome = await run_check(monitor(f"https://127.0.0.1:{port}/", timeout_seconds=1), session)
        tcp = await run_check({"name": "t", "type": "tcp", "host": "127.0.0.1", "port": port, "timeout_seconds": 1,
                               "body": "hello?"}, session)
    finally:
        server.close()
    assert (outcome.status, outcome.cause) == ("down", "timeout after 1 s (TLS handshake)")
    assert outcome.timings.connect_ms is not None and outcome.certificate is None
    assert (tcp.status, tcp.cause) == ("down", "timeout after 1 s (no reply)")
