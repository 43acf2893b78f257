"""dns monitors against a real nameserver on 127.0.0.1 (dnslib answering over UDP)."""
from __future__ import annotations

import asyncio

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord, MX

from probe import run_check
from tests.probes.conftest import TIMEOUT

ZONE = {("up.pingstream.test.", "A"): [RR("up.pingstream.test.", QTYPE.A, rdata=A("127.0.0.1"), ttl=60),
                                       RR("up.pingstream.test.", QTYPE.A, rdata=A("127.0.0.2"), ttl=60)],
        ("pingstream.test.", "MX"): [RR("pingstream.test.", QTYPE.MX, rdata=MX("mail.pingstream.test.", 10))]}


class Nameserver(asyncio.DatagramProtocol):
    """Answers from ZONE; NXDOMAIN for unknown names; SERVFAIL for broken.test; silence for silent.test."""

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        query = DNSRecord.parse(data)
        name, kind = str(query.q.qname), QTYPE[query.q.qtype]
        if name == "silent.test.":
            return
        reply = query.reply()
        if name == "broken.test.":
            reply.header.rcode = RCODE.SERVFAIL
        elif (name, kind) in ZONE:
            for record in ZONE[(name, kind)]:
                reply.add_answer(record)
        elif not any(known == name for known, _ in ZONE):
            reply.header.rcode = RCODE.NXDOMAIN
        self.transport.sendto(reply.pack(), addr)


@pytest.fixture
async def nameserver():
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Nameserver,
                                                                             local_addr=("127.0.0.1", 0))
    yield transport.get_extra_info("sockname")[1]
    transport.close()


def dns(name: str, port: int, **fields) -> dict:
    return {"name": "dns", "type": "dns", "host": name, "dns_nameserver": "127.0.0.1", "port": port,
            "timeout_seconds": TIMEOUT, **fields}


async def test_a_records_are_found_and_checked(session, nameserver):
    outcome = await run_check(dns("up.pingstream.test", nameserver, conditions=[
        {"type": "dns_record", "operator": "equal", "values": ["127.0.0.2"]}]), session)
    assert (outcome.status, outcome.cause) == ("up", None)
    assert 0 < outcome.response_time_ms == outcome.timings.dns_ms <= outcome.timings.total_ms
    wrong = await run_check(dns("up.pingstream.test", nameserver, conditions=[
        {"type": "dns_record", "operator": "equal", "values": ["10.0.0.1"]}]), session)
    assert wrong.status == "down"
    assert wrong.cause == 'condition failed: dns_record ["127.0.0.1", "127.0.0.2"] not equal to "10.0.0.1"'
    mx = await run_check(dns("pingstream.test", nameserver, dns_record_type="MX", conditions=[
        {"type": "dns_record", "operator": "contains", "values": ["mail.pingstream.test"]}]), session)
    assert mx.status == "up", mx.cause


async def test_nxdomain_no_answer_servfail_and_silence(session, nameserver):
    nxdomain = await run_check(dns("example.invalid", nameserver), session)
    assert (nxdomain.status, nxdomain.cause) == ("down", "DNS: NXDOMAIN for example.invalid")
    no_aaaa = await run_check(dns("up.pingstream.test", nameserver, dns_record_type="AAAA"), session)
    assert no_aaaa.cause == "DNS: no AAAA record for up.pingstream.test"
    servfail = await run_check(dns("broken.test", nameserver), session)
    assert servfail.status == "down" and servfail.cause.startswith("DNS: no nameserver answered for broken.test")
    assert "SERVFAIL" in servfail.cause
    silent = await run_check(dns("silent.test", nameserver, timeout_seconds=1), session)
    assert silent.cause == f"timeout after 1 s (no answer from 127.0.0.1:{nameserver})"
    assert 1000 <= silent.timings.total_ms < (1 + TIMEOUT) * 1000
