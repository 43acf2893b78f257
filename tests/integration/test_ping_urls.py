"""Healthchecks and Uptime Kuma URLs, called exactly as their real clients call them (curl, runitor, Kuma scripts)."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from api.checkins import RATE_LIMIT
from tests.integration.cluster import Client, Cluster, wait_for
from tests.integration.test_heartbeats import create_heartbeat, events_named, history, status_of

RUNITOR = "runitor/v1.4.1 (+https://bdd.fi/x/runitor)"


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", *args], capture_output=True, timeout=60)


def status_and_body(*args: str) -> tuple[int, str]:
    """HTTP status and body of one request, curl without -f."""
    done = curl("-sS", "-m", "10", "-w", "\n%{http_code}", *args)
    body, _, status = done.stdout.decode().rpartition("\n")
    return int(status), body


@pytest.fixture
def heartbeat(api: Client) -> dict:
    return create_heartbeat(api, name="cron job", interval=3600, grace=600)


def test_cron_style_curl_pings(cluster: Cluster, api: Client, heartbeat: dict) -> None:
    url = heartbeat["checkin_urls"]["healthchecks"]
    # the line Healthchecks tells people to put in their crontab, unchanged but for the host
    assert curl("-fsS", "-m", "10", "--retry", "5", "-o", "/dev/null", url).returncode == 0
    assert curl("-fsS", "-m", "10", "--retry", "5", url).stdout == b"OK"
    head = curl("-fsS", "-m", "10", "-I", url)
    assert head.returncode == 0 and b"200 OK" in head.stdout and b"Ping-Body-Limit: 10000" in head.stdout
    assert curl("-fsS", "-m", "10", "--retry", "5", "--data-raw", "all good", url).stdout == b"OK"
    rows = wait_for("four pings", lambda: (h := history(api, heartbeat["id"])) and len(h) == 4 and h, 15)
    assert [r["result"] for r in rows] == ["tick"] * 4  # HEAD, GET and POST alike
    assert rows[0]["body"] == "all good" and rows[0]["source_ip"] == "127.0.0.1"
    assert status_of(api, heartbeat["id"]) == "up"


def test_start_fail_log_and_exit_statuses(cluster: Cluster, api: Client, heartbeat: dict) -> None:
    url = heartbeat["checkin_urls"]["healthchecks"]
    hid = heartbeat["id"]
    assert curl("-fsS", "-m", "10", f"{url}/start").stdout == b"OK"
    wait_for("the start", lambda: len(history(api, hid)) == 1, 15)
    assert status_of(api, hid) == "new"  # start does not count as a success
    assert curl("-fsS", "-m", "10", f"{url}/fail").stdout == b"OK"
    wait_for("the failure", lambda: status_of(api, hid) == "down", 15)
    assert curl("-fsS", "-m", "10", "--data-raw", "a note", f"{url}/log").stdout == b"OK"
    assert curl("-fsS", "-m", "10", f"{url}/0").stdout == b"OK"
    wait_for("exit status 0 to count as success", lambda: status_of(api, hid) == "up", 15)
    assert curl("-fsS", "-m", "10", f"{url}/1").stdout == b"OK"
    assert curl("-fsS", "-m", "10", f"{url}/255").stdout == b"OK"
    assert status_and_body(f"{url}/256") == (400, "invalid url format")
    assert status_and_body(f"{url}/-1") == (404, "not found")
    assert status_and_body(f"{url}/restart") == (404, "not found")
    rows = wait_for("every ping", lambda: (h := history(api, hid)) and len(h) == 6 and h, 15)
    assert [(r["result"], r["exit_status"]) for r in rows] == [
        ("fail", 255), ("fail", 1), ("tick", 0), ("log", None), ("fail", None), ("run", None)]
    assert rows[3]["body"] == "a note"
    assert rows[4]["duration"] is not None and rows[2]["duration"] is None  # /fail ended the run, not /0
    assert events_named(cluster, hid) == ["heartbeat.down", "heartbeat.recovered", "heartbeat.down"]


def test_runitor_style_runs_paired_by_rid(api: Client, heartbeat: dict) -> None:
    hid = heartbeat["id"]
    base = f"{api.base}/{hid}"  # runitor's default is hc-ping.com's form, <host>/<uuid>/...: only the host changes
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    post = ["-fsS", "-m", "10", "--retry", "2", "-A", RUNITOR, "-H", "Content-Type: text/plain", "-X", "POST"]
    assert curl(*post, f"{base}/start?rid={first}").stdout == b"OK"
    assert curl(*post, f"{base}/start?rid={second}").stdout == b"OK"  # an overlapping second run
    output = "".join(f"line {n}\n" for n in range(100))
    # runitor streams the command's output as a chunked body, then the exit status in the path
    assert curl(*post, "-H", "Transfer-Encoding: chunked", "--data-binary", output, f"{base}/0?rid={second}").stdout == b"OK"
    assert curl(*post, "--data-binary", "boom\n", f"{base}/3?rid={first}").stdout == b"OK"
    rows = wait_for("both runs", lambda: (h := history(api, hid)) and len(h) == 4 and h, 15)
    assert [(r["result"], r["rid"], r["exit_status"]) for r in rows] == [
        ("fail", first, 3), ("complete", second, 0), ("run", second, None), ("run", first, None)]
    assert rows[1]["body"] == output and rows[0]["body"] == "boom\n"
    assert rows[0]["duration"] > rows[1]["duration"] > 0  # each end measured against its own start
    assert status_and_body("-X", "POST", f"{base}/start?rid=not-a-uuid") == (400, "invalid uuid format")
    assert len(history(api, hid)) == 4


def test_unknown_and_malformed_ids_are_404(api: Client) -> None:
    base = api.base
    for path in (f"/ping/{uuid.uuid4()}", f"/ping/{uuid.uuid4()}/start", f"/ping/{uuid.uuid4()}/0", "/ping/not-a-uuid",
                 "/ping/5bf66975-d4c7-4bf5-bcc8", f"/{uuid.uuid4()}", f"/{uuid.uuid4()}/fail"):
        assert status_and_body(base + path) == (404, "not found"), path
    assert curl("-fsS", "-m", "10", "-o", "/dev/null", f"{base}/ping/{uuid.uuid4()}").returncode == 22  # curl -f fails


def test_bodies_keep_their_first_10000_bytes(api: Client, heartbeat: dict) -> None:
    url, hid = heartbeat["checkin_urls"]["healthchecks"], heartbeat["id"]
    big = ("0123456789" * 6000).encode()
    done = subprocess.run(["curl", "-fsS", "-m", "10", "--data-binary", "@-", url], input=big, capture_output=True,
                          timeout=60)
    assert done.stdout == b"OK"
    broken = subprocess.run(["curl", "-fsS", "-m", "10", "--data-binary", "@-", f"{url}/log"],
                            input=b"caf\xe9 \xff", capture_output=True, timeout=60)
    assert broken.stdout == b"OK"
    rows = wait_for("both pings", lambda: (h := history(api, hid)) and len(h) == 2 and h, 15)
    assert rows[1]["body"] == big[:10_000].decode() and rows[1]["body_bytes"] == 10_000
    assert rows[0]["body"] == "caf\ufffd \ufffd"  # not UTF-8: kept, with replacement characters


def test_uptime_kuma_push_urls(cluster: Cluster, api: Client, heartbeat: dict) -> None:
    push = heartbeat["checkin_urls"]["uptime_kuma"].split("?")[0]
    hid = heartbeat["id"]
    # what Kuma shows people to put in a script, unchanged but for the host
    assert curl("-fsS", "-m", "10", "--retry", "5", f"{push}?status=up&msg=OK&ping=").stdout == b'{"ok":true}'
    assert curl("-fsS", "-m", "10", "-X", "POST", f"{push}?status=up&msg=fine&ping=123.5").stdout == b'{"ok":true}'
    assert curl("-fsS", "-m", "10", f"{push}?status=down&msg=disk%20full").stdout == b'{"ok":true}'
    assert curl("-fsS", "-m", "10", push).stdout == b'{"ok":true}'  # no parameters: up, "OK"
    rows = wait_for("four pushes", lambda: (h := history(api, hid)) and len(h) == 4 and h, 15)
    assert [(r["result"], r["message"]) for r in rows] == [
        ("tick", "OK"), ("fail", "disk full"), ("tick", "fine"), ("tick", "OK")]
    assert rows[2]["duration"] == 0.1235
    assert events_named(cluster, hid) == ["heartbeat.down", "heartbeat.recovered"]
    missing = status_and_body(f"{api.base}/api/push/NoSuchToken42?status=up&msg=OK&ping=")
    assert missing == (404, '{"ok":false,"msg":"Monitor not found or not active."}')
    assert status_and_body(f"{api.base}/api/push/x") == missing  # too short to be a token


def test_a_disabled_heartbeat_is_not_active_for_kuma_but_healthchecks_pings_are_kept(api: Client, heartbeat: dict) -> None:
    paused = api.request("PUT", f"/v1/heartbeats/{heartbeat['id']}", {"enabled": False})
    assert paused.status == 200 and paused.body["data"]["status"] == "paused"
    push = heartbeat["checkin_urls"]["uptime_kuma"]
    assert status_and_body(push)[0] == 404
    assert curl("-fsS", "-m", "10", f"{heartbeat['checkin_urls']['healthchecks']}/fail").stdout == b"OK"
    wait_for("the ping in the history", lambda: len(history(api, heartbeat["id"])) == 1, 15)
    assert status_of(api, heartbeat["id"]) == "paused"


def test_check_ins_are_rate_limited_per_heartbeat(api: Client, heartbeat: dict) -> None:
    url = heartbeat["checkin_urls"]["healthchecks"]
    other = create_heartbeat(api, name="other")["checkin_urls"]["healthchecks"]
    done = curl("-sS", "-m", "30", "-w", "%{http_code}\n", *["-o", "/dev/null", url] * (RATE_LIMIT + 5))
    codes = done.stdout.decode().split()
    assert codes[:RATE_LIMIT] == ["200"] * RATE_LIMIT and set(codes[RATE_LIMIT:]) == {"429"}
    limited = curl("-sS", "-m", "10", "-i", url).stdout.decode()
    assert "429" in limited.splitlines()[0] and "Retry-After:" in limited
    assert curl("-fsS", "-m", "10", other).stdout == b"OK"  # another heartbeat is not affected


def test_a_forwarded_address_counts_only_from_a_trusted_proxy(cluster: Cluster, api: Client, heartbeat: dict) -> None:
    """By default X-Forwarded-For is the client's own word: ignored. Behind a trusted proxy, it names the client."""
    path = heartbeat["checkin_urls"]["healthchecks"].split("/", 3)[3]
    assert status_and_body("-H", "X-Forwarded-For: 6.6.6.6", f"{api.base}/{path}") == (200, "OK")
    rows = wait_for("the spoofed ping", lambda: (h := history(api, heartbeat["id"])) and h, 15)
    assert rows[0]["source_ip"] == "127.0.0.1"
    behind_proxy = cluster.start_api("api-behind-proxy", PINGSTREAM_TRUSTED_PROXIES="127.0.0.1/32")
    try:
        cluster.wait_serving(behind_proxy)
        forwarded = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7", "X-Forwarded-Proto": "https",
                     "X-Forwarded-Host": "status.example.org"}
        as_curl = [arg for name, value in forwarded.items() for arg in ("-H", f"{name}: {value}")]
        assert status_and_body(*as_curl, f"{behind_proxy.url}/{path}") == (200, "OK")
        rows = wait_for("the forwarded ping", lambda: (h := history(api, heartbeat["id"])) and len(h) == 2 and h, 15)
        assert rows[0]["source_ip"] == "198.51.100.7"
        shown = Client(behind_proxy.url, api.key).get(f"/v1/heartbeats/{heartbeat['id']}", headers=forwarded)
        assert shown.body["data"]["checkin_urls"]["healthchecks"].startswith("https://status.example.org/ping/")
    finally:
        behind_proxy.stop()
