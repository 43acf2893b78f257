"""What a probe tells workers of the certificates it sees (probe/certificates.py): changes at once, the rest rarely."""
from __future__ import annotations

import asyncio

import orjson

from probe.certificates import REFRESH_EVERY, CertificateReports, verification
from probe.outcome import Certificate, Outcome, down
from schemas.certificate import CertificateObservation

ENTRY = {"id": "mon_a", "org_id": "org_a", "spec": {"type": "smtp", "host": "mail.example.com", "tls": "starttls"}}


def certificate(fingerprint: str) -> Certificate:
    return Certificate(subject="CN=mail.example.com", issuer="CN=Test CA", sans=("mail.example.com",),
                       not_before=1_790_000_000.0, not_after=1_800_000_000.0, fingerprint_sha256=fingerprint * 64,
                       serial="1a2b")


class Producer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, dict, bytes, int]] = []
        self.fail = fail

    async def send_and_wait(self, topic: str, value: bytes, key: bytes, partition: int) -> None:
        if self.fail:
            raise ConnectionError("broker gone")
        self.sent.append((topic, orjson.loads(value), key, partition))


def test_verification_follows_the_check() -> None:
    assert verification(ENTRY["spec"], Outcome("up", certificate=certificate("a"))) == (True, None)
    refused = down("TLS: certificate expired on 2026-10-01", certificate=certificate("a"))
    assert verification(ENTRY["spec"], refused) == (False, "TLS: certificate expired on 2026-10-01")
    assert verification({**ENTRY["spec"], "skip_ssl_error": True}, refused) == (None, None)


async def test_a_certificate_is_sent_when_it_changes_and_again_only_after_a_while(monkeypatch) -> None:
    reports, producer, clock = CertificateReports(), Producer(), [1000.0]
    monkeypatch.setattr("probe.certificates.time.monotonic", lambda: clock[0])

    def check(outcome: Outcome) -> None:
        reports.saw(producer, "mon_a", ("certificates", 2), ENTRY, "eu", outcome, 1_795_000_000.0)

    check(Outcome("up", certificate=certificate("a")))
    check(Outcome("up", certificate=certificate("a")))                 # the same: not again
    check(Outcome("up"))                                                # no certificate: nothing
    check(down("TLS: certificate expired on 2027-01-15", certificate=certificate("a")))  # no longer verifies
    check(Outcome("up", certificate=certificate("b")))                 # another certificate
    clock[0] += REFRESH_EVERY + 1
    check(Outcome("up", certificate=certificate("b")))                 # a while later: again
    await asyncio.gather(*reports.sends)
    assert [(m["observations"][0]["certificate"]["fingerprint_sha256"][0], m["observations"][0]["verified"])
            for _, m, _, _ in producer.sent] == [("a", True), ("a", False), ("b", True), ("b", True)]
    topic, message, key, partition = producer.sent[0]
    assert (topic, key, partition, message["org_id"]) == ("certificates", b'"mon_a"', 2, "org_a")
    observed = CertificateObservation.model_validate(message["observations"][0])  # what the worker accepts
    assert observed.certificate.serial == "1a2b" and observed.region == "eu"


async def test_a_send_kafka_did_not_take_is_made_again_by_the_next_check() -> None:
    reports, failing = CertificateReports(), Producer(fail=True)
    reports.saw(failing, "mon_a", ("certificates", 2), ENTRY, "eu", Outcome("up", certificate=certificate("a")), 1_795_000_000.0)
    await asyncio.gather(*reports.sends)
    working = Producer()
    reports.saw(working, "mon_a", ("certificates", 2), ENTRY, "eu", Outcome("up", certificate=certificate("a")), 1_795_000_060.0)
    await asyncio.gather(*reports.sends)
    assert len(working.sent) == 1
