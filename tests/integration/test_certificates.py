"""Certificate and domain expiry end to end: probes, RDAP, reminders, events, incidents and alert deliveries.

Real processes throughout: a broker, a worker, the API and a probe of region
"tls" trusting the test CA (PINGSTREAM_PROBE_CA_FILE); HTTPS targets on
127.0.0.1 whose certificates end in 5, 20 and -1 days; an RDAP server on
127.0.0.1 (PINGSTREAM_RDAP_URL) answering RFC 9083 domain objects and counting
how often each domain is asked for.
"""
from __future__ import annotations

import asyncio
import datetime
import json
import signal
import threading
from collections.abc import Iterator

import pytest
import trustme
from aiohttp import web

from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.conftest import ready_client, running_cluster
from tests.integration.test_alert_channels import Receiver, channel
from tests.probes.conftest import Target, days_from_now, server_context

INTERVAL = 10   # the shortest a monitor may have
REGION = "tls"  # the probe's region; monitors of domains only name a region no probe serves
DAY = 86400


def rdap_domain(name: str, expires_in_days: float) -> dict:
    """An RFC 9083 domain object, as a registry's RDAP server answers it."""
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=expires_in_days)
    return {
        "objectClassName": "domain", "ldhName": name.upper(), "rdapConformance": ["rdap_level_0"],
        "status": ["client transfer prohibited", "active"],
        "events": [{"eventAction": "registration", "eventDate": "2001-05-04T10:00:00Z"},
                   {"eventAction": "expiration", "eventDate": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}],
        "entities": [{"objectClassName": "entity", "roles": ["registrar"], "handle": "1234",
                      "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                               ["fn", {}, "text", "Pingstream Test Registrar"]]]}],
        "nameservers": [{"objectClassName": "nameserver", "ldhName": "ns1.registrar.example"},
                        {"objectClassName": "nameserver", "ldhName": "ns2.registrar.example"}],
    }


class Servers:
    """HTTPS targets and an RDAP server on 127.0.0.1, served from a thread of their own."""

    def __init__(self, ca: trustme.CA) -> None:
        self.ca = ca
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.targets: dict[str, Target] = {}
        self.asked: dict[str, int] = {}       # domain -> RDAP requests
        self.domains = {"expiry-test.co.uk": rdap_domain("expiry-test.co.uk", 10)}

    def __enter__(self) -> Servers:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(15)
        return self

    def __exit__(self, *exc_info: object) -> None:
        async def stop() -> None:
            for target in [*self.targets.values(), self.rdap]:
                await target.__aexit__(None, None, None)
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _start(self) -> None:
        for name, days in (("in5", 5), ("in20", 20), ("expired", -1)):
            cert = self.ca.issue_cert("127.0.0.1", common_name=f"{name}.pingstream.test",
                                      not_before=days_from_now(-30), not_after=days_from_now(days))
            app = web.Application()
            app.router.add_get("/", lambda _: web.Response(text="hello"))
            self.targets[name] = await Target(app, server_context(cert)).__aenter__()
        rdap = web.Application()
        rdap.router.add_get("/domain/{name}", self.answer)
        self.rdap = await Target(rdap).__aenter__()

    async def answer(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.asked[name] = self.asked.get(name, 0) + 1
        if name not in self.domains:   # as rdap.org answers for a registry without RDAP
            return web.json_response({"errorCode": 404, "title": "Not Found"}, status=404)
        return web.json_response(self.domains[name], content_type="application/rdap+json")

    def url(self, name: str) -> str:
        return self.targets[name].url("/")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with Servers(trustme.CA(organization_name="pingstream expiry CA")) as running:
        yield running


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory, servers: Servers) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("certificates")
    servers.ca.cert_pem.write_to_path(str(root / "ca.pem"))
    env = {"PINGSTREAM_PROBE_CA_FILE": str(root / "ca.pem"), "PINGSTREAM_RDAP_URL": servers.rdap.url("")}
    with running_cluster(root, env=env) as cluster:
        cluster.start_probe(REGION)
        yield cluster


def events_of(cluster: Cluster, monitor_id: str, kind: str) -> list[dict]:
    return [e for e in asyncio.run(cluster.records("monitor-events")) if e.get("monitor_id") == monitor_id and e["event"] == kind]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver({"/expiry": [200]})
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


def create(api: Client, **spec: object) -> str:
    response = api.post("/v1/monitors", {"interval_seconds": INTERVAL, "timeout_seconds": 5, **spec})
    assert response.status == 201, response.body
    return response.body["data"]["id"]


def test_certificates_are_seen_reminded_once_and_an_expiring_one_is_a_down_cause(
        probed: Cluster, servers: Servers, receiver: Receiver) -> None:
    _, key = probed.new_org()
    api = ready_client(probed, key)
    expiring_only = [{"type": "json-check", "key": "event", "operator": "matches", "values": ["_expiring$"]}]
    assert api.post("/v1/rulesets", {"rule_type": "state-change", "name": "expiry", "urgency": "high",
                                     "conditions": expiring_only}).status == 201
    channel(api, receiver.url("/expiry"), events=["monitor.certificate_expiring", "incident.created"])
    at_least_14_days = [{"type": "ssl_expiry", "operator": "greater", "values": [14]}]
    monitors = {name: create(api, name=name, url=servers.url(name), regions=[REGION], conditions=at_least_14_days)
                for name in ("in5", "in20", "expired")}
    for name in ("in5", "in20"):
        reminder = api.post(f"/v1/monitors/{monitors[name]}/ssl/reminder", {"days_before": [7, 30, 14, 1]})
        assert reminder.status == 201, reminder.body
        assert reminder.body["data"]["days_before"] == [30, 14, 7, 1]

    def seen(name: str) -> dict | None:
        data = api.get(f"/v1/monitors/{monitors[name]}/ssl").body["data"]
        return data if data["certificate"] else None
    in5 = wait_for("the certificate ending in 5 days to be seen", lambda: seen("in5"), 4 * INTERVAL, 0.5)
    certificate = in5["certificate"]
    assert certificate["days_left"] in (4, 5) and not certificate["expired"]
    assert certificate["verified"] is True and certificate["verify_error"] is None
    assert certificate["subject"].startswith("CN=in5.pingstream.test,") and "127.0.0.1" in certificate["sans"]
    assert "pingstream expiry CA" in certificate["issuer"]
    assert len(certificate["fingerprint_sha256"]) == 64 and certificate["serial"]
    assert in5["region"] == REGION and in5["reminder"]["days_before"] == [30, 14, 7, 1]
    expired = wait_for("the expired certificate to be seen", lambda: seen("expired"), 4 * INTERVAL, 0.5)
    assert expired["certificate"]["expired"] and expired["certificate"]["days_left"] <= -1
    assert expired["certificate"]["verified"] is False
    assert expired["certificate"]["verify_error"].startswith("TLS: certificate expired on")
    assert api.get(f"/v1/resource/{monitors['in20']}/ssl").status == 200

    def status(name: str) -> dict:
        return api.get(f"/v1/monitors/{monitors[name]}").body["data"]
    wait_for("5 days left to fail `ssl_expiry greater 14`, 20 days to pass, an expired one to fail", lambda: (
        status("in5")["status"] == "down" and status("in20")["status"] == "up" and status("expired")["status"] == "down"),
        4 * INTERVAL, 0.5)
    changes = api.get(f"/v1/monitors/{monitors['in5']}/state-changes").body["data"]
    assert "ssl_expiry" in changes[-1]["cause"], changes
    assert "expired" in api.get(f"/v1/monitors/{monitors['expired']}/state-changes").body["data"][-1]["cause"]

    def expiring(name: str) -> list[dict]:
        return events_of(probed, monitors[name], "monitor.certificate_expiring")
    told = {name: wait_for(f"the reminder of {name}", lambda: expiring(name), 30, 0.5)[0] for name in ("in5", "in20")}
    assert (told["in5"]["threshold_days"], told["in5"]["days_left"]) in ((7, 4), (7, 5))
    assert (told["in20"]["threshold_days"], told["in20"]["days_left"]) in ((30, 19), (30, 20))
    assert told["in5"]["org_id"] and told["in5"]["name"] == "in5"

    incident = wait_for("an incident for the certificate ending in 5 days", lambda: [
        i for i in api.get(f"/v1/incidents?monitor_id={monitors['in5']}").body["data"]
        if "certificate" in i["name"]], 30, 0.5)[0]
    assert incident["urgency"] == "high" and "expires in" in incident["name"]
    delivered = wait_for("the reminder and the incident at the alert channel", lambda: {
        json.loads(body)["event"] for _, body, _ in receiver.seen("/expiry")} >= {
        "monitor.certificate_expiring", "incident.created"}, 30, 0.5)
    assert delivered

    assert not [i for i in api.get("/v1/incidents").body["data"] if i["name"].endswith("is down")]  # not expiring

    # a worker SIGKILLed and restarted from its data: the state is there, nothing is told twice
    worker = next(p for p in probed.processes if p.name.startswith("worker"))
    worker.stop(signal.SIGKILL)
    restarted = probed.start_worker("worker-restarted", port=worker.port)  # same port: same data directory
    probed.wait_serving(restarted)
    assert api.get(f"/v1/monitors/{monitors['in5']}/ssl").body["data"]["certificate"]["serial"] == certificate["serial"]
    checks_now = len(api.get(f"/v1/monitors/{monitors['in5']}/checks").body["data"])
    wait_for("two more checks", lambda: len(api.get(f"/v1/monitors/{monitors['in5']}/checks").body["data"]) >=
             checks_now + 2, 6 * INTERVAL, 0.5)
    assert len(expiring("in5")) == 1 and len(expiring("in20")) == 1


def test_reminders_are_written_read_and_deleted_through_the_api_for_their_team_only(probed: Cluster) -> None:
    _, key = probed.new_org()
    api = ready_client(probed, key)
    monitor = create(api, name="shop", url="https://shop.example.org/", regions=["nowhere"])
    path = f"/v1/monitors/{monitor}/domain/reminder"
    assert api.get(path).status == 404
    assert api.post(path, {"days_before": [30, 30]}).status == 422
    assert api.post(path, {"days_before": [0]}).status == 422
    assert api.post(path, {"days_before": list(range(1, 12))}).status == 422
    assert api.post(path, {"days_before": [30]}).status == 201
    assert api.post(path, {"days_before": [14]}).status == 409
    replaced = api.request("PUT", path, {"days_before": [7, 60]})
    assert replaced.status == 200 and replaced.body["data"]["days_before"] == [60, 7]
    assert api.get(path).body["data"]["days_before"] == [60, 7]
    assert api.get(f"/v1/monitors/{monitor}/domain").body["data"]["reminder"]["days_before"] == [60, 7]

    _, stranger_key = probed.new_org(name="stranger")
    stranger = ready_client(probed, stranger_key)
    for method, route in (("GET", path), ("DELETE", path), ("GET", f"/v1/monitors/{monitor}/ssl"),
                          ("GET", f"/v1/monitors/{monitor}/domain"), ("GET", f"/v1/resource/{monitor}/tld")):
        assert stranger.request(method, route).status == 404, (method, route)
    assert stranger.request("PUT", path, {"days_before": [1]}).status == 404
    assert api.delete(path).status == 204
    assert api.get(path).status == 404 and api.delete(path).status == 404


def test_a_domain_is_looked_up_once_for_every_team_naming_it_and_reminds_before_it_expires(
        probed: Cluster, servers: Servers) -> None:
    _, key = probed.new_org()
    api = ready_client(probed, key)
    _, other_key = probed.new_org(name="other team")
    other = ready_client(probed, other_key)
    shop = create(api, name="shop", url="https://www.expiry-test.co.uk/", regions=["nowhere"])
    reminder = api.request("PUT", f"/v1/monitors/{shop}/domain/reminder", {"days_before": [30, 7]})
    assert reminder.status == 200, reminder.body
    blog = create(other, name="blog", url="https://blog.expiry-test.co.uk/", regions=["nowhere"])
    unknown = create(api, name="no registry", type="tcp", host="mail.noregistry.test", port=25, regions=["nowhere"])
    by_ip = create(api, name="by address", url="https://127.0.0.1/", regions=["nowhere"])

    def looked_up(client: Client, monitor_id: str, path: str = "monitors", view: str = "domain") -> dict | None:
        data = client.get(f"/v1/{path}/{monitor_id}/{view}").body["data"]
        return data if data["source"] not in ("pending",) else None
    domain = wait_for("the domain to be looked up", lambda: looked_up(api, shop), 30, 0.5)
    assert domain["domain"] == "expiry-test.co.uk" and domain["source"] == "rdap"
    assert domain["registrar"] == "Pingstream Test Registrar" and domain["days_left"] in (9, 10)
    assert domain["created"] == "2001-05-04T10:00:00Z" and domain["expires"].endswith("Z")
    assert domain["name_servers"] == ["ns1.registrar.example", "ns2.registrar.example"]
    assert domain["status"] == ["client transfer prohibited", "active"]
    assert domain["reminder"]["days_before"] == [30, 7]
    assert wait_for("the other team's monitor to know it", lambda: looked_up(other, blog, "resource", "tld"), 30, 0.5)[
        "expires"] == domain["expires"]
    none = wait_for("the domain without RDAP to say so", lambda: looked_up(api, unknown), 30, 0.5)
    assert none["source"] == "unavailable" and "no RDAP" in none["reason"] and none["expires"] is None
    assert api.get(f"/v1/monitors/{by_ip}/domain").body["data"]["source"] == "none"

    told = wait_for("the domain reminder", lambda: events_of(probed, shop, "monitor.domain_expiring"), 30, 0.5)
    assert len(told) == 1 and told[0]["threshold_days"] == 30 and told[0]["days_left"] in (9, 10)
    assert told[0]["domain"] == "expiry-test.co.uk" and told[0]["registrar"] == "Pingstream Test Registrar"
    assert events_of(probed, blog, "monitor.domain_expiring") == []   # the other team set no reminder
    # one lookup served both teams' monitors: another monitor naming it later asks nobody
    later = create(other, name="docs", url="https://docs.expiry-test.co.uk/", regions=["nowhere"])
    wait_for("the later monitor to know its domain", lambda: looked_up(other, later), 30, 0.5)
    assert servers.asked["expiry-test.co.uk"] == 1
