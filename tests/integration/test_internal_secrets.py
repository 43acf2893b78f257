"""No default or forged secret opens the internals: strong secrets, token on every /internal/ route, live sessions."""
from __future__ import annotations

import subprocess
import sys
import time

import jwt

from tests.integration.accounts import person
from tests.integration.cluster import ROOT, Client, Cluster
from tests.mailbox import Mailbox


def test_processes_refuse_to_start_without_strong_secrets(cluster: Cluster) -> None:
    for role, weak in (("worker", {"PINGSTREAM_INTERNAL_TOKEN": ""}),
                       ("api", {"PINGSTREAM_JWT_SECRET": "change-me-too"}),
                       ("api", {"PINGSTREAM_JWT_SECRET": cluster.token})):
        started = subprocess.run([sys.executable, "-m", "pingstream.cli", role], cwd=ROOT, env=cluster.env(**weak),
                                 capture_output=True, text=True, timeout=60)
        assert started.returncode != 0 and "PINGSTREAM_" in started.stderr, (role, weak, started.stderr)


def test_every_internal_route_needs_the_token(cluster: Cluster, api: Client) -> None:
    worker = next(p for p in cluster.processes if p.name.startswith("worker"))
    routes = ("/internal/health", "/internal/heartbeats/health", "/internal/incident-engine",
              "/internal/partitions/0/accounts/ada@example.com", "/internal/partitions/0/monitors/x?org=y")
    for path in routes:
        for headers in ({}, {"X-Pingstream-Internal": ""}, {"X-Pingstream-Internal": "change-me"},
                        {"X-Pingstream-Internal": cluster.token[:-1]}):
            answer = Client(worker.url).get(path, headers=headers)
            assert answer.status == 403, (path, headers, answer.status, answer.body)
    for path in routes[:3]:
        assert Client(worker.url).get(path, headers={"X-Pingstream-Internal": cluster.token}).status == 200, path


def test_a_token_for_a_session_never_opened_is_refused(cluster: Cluster, smtp_server: Mailbox) -> None:
    """Even signed with the real key, a made-up session id buys nothing; a real session still works."""
    ada = person(cluster, smtp_server, "ada")
    now = int(time.time())
    for sid in ("ses_madeup", "x" * 32):
        forged = jwt.encode({"sub": ada.user_id, "eml": ada.email, "sid": sid, "typ": "access", "team": ada.team_id,
                             "iat": now, "exp": now + 300}, cluster.jwt_secret, algorithm="HS256")
        answer = Client(ada.base, forged).get("/v1/monitors")
        assert answer.status == 401 and answer.body["error"] == "unauthorized", answer.body
        assert Client(ada.base, forged).post("/v1/keys", {"name": "backdoor"}).status == 401
    claims = jwt.decode(ada.access_token, cluster.jwt_secret, algorithms=["HS256"])
    stolen_sid = jwt.encode({**claims, "sub": "usr_someoneelse"}, cluster.jwt_secret, algorithm="HS256")
    assert Client(ada.base, stolen_sid).get("/v1/monitors").status == 401
    assert ada.client.get("/v1/monitors").status == 200
