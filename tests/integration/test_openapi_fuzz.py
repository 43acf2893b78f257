"""The API answers as /v1/openapi.json says, whatever it is sent: every operation fuzzed from the document.

schemathesis reads the document the API serves and, for each operation, sends
requests made from it (boundary values of every parameter and body field,
then random ones, the same ones on every run) to a real cluster, checking each
answer: not a 5xx, a documented status and content type, a body that fits the
documented schema. Resources of each kind exist beforehand and their ids are
given as examples, so requests reach past "not found"; an API key and, for
people-only operations, a person's access token are the credentials.
Operations that end the credentials in use run last, one by one.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.accounts import log_in, person
from tests.integration.cluster import Client, Cluster, Response
from tests.integration.conftest import ready_client, running_cluster
from tests.mailbox import Mailbox

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
EXAMPLES_PER_OPERATION = 3
KEY_PROCESSES = 3           # schemathesis processes side by side over the operations an API key can reach
#: what ends the credentials in use (a key can revoke itself; a person can sign out, go, or delete their team)
ENDING = ("DELETE /v1/keys/{id}", "DELETE /v1/team/{id}", "DELETE /v1/auth", "DELETE /v1/customer")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, smtp_server: Mailbox) -> Iterator[Cluster]:
    """A cluster of its own: what the fuzzer creates (accounts, channels, incidents) stays out of the shared one.

    People's teams start on the operator's plan, as new_org's do: rate limits out of the fuzzer's way.
    """
    env = {**smtp_server.env, "PINGSTREAM_SIGNUP_PLAN": "self-hosted"}
    with running_cluster(tmp_path_factory.mktemp("fuzzed"), env=env) as cluster:
        yield cluster


def created(response: Response) -> str:
    assert response.status == 201, response.body
    return response.body["data"]["id"]


def seed(api: Client, team_id: str) -> dict[str, str]:
    """One resource of each kind, with some history; path parameter name or kind -> id."""
    monitor = created(api.post("/v1/monitors", {"name": "Homepage", "url": "https://example.com"}))
    assert api.post("/v1/checks", [{"monitor_id": monitor, "status": status, "response_time_ms": 120}
                                   for status in ("up", "down", "up")]).status == 202
    heartbeat = created(api.post("/v1/heartbeats", {"name": "backup", "interval": 60}))
    assert Client(api.base).post(f"/v1/heartbeats/{heartbeat}/events?result=run&rid=r1").status == 202
    webhook = created(api.post("/v1/webhooks", {"name": "alertmanager"}))
    assert Client(api.base).post(f"/v1/webhooks/{webhook}/events", {"status": "firing"}).status == 202
    return {
        "monitors": monitor, "heartbeats": heartbeat, "webhooks": webhook,
        "rulesets": created(api.post("/v1/rulesets", {"rule_type": "webhook", "name": "all"})),
        "incidents": created(api.post("/v1/incidents", {"name": "Checkout slow"})),
        "alerts": created(api.post("/v1/alerts", {"name": "pager", "url": "http://127.0.0.1:9/hook",
                                                  "events": ["monitor.down"]})),
        "team": team_id,
        "invitation": created(api.post(f"/v1/team/{team_id}/invitation", {"email": "later@example.com"})),
        "keys": created(api.post("/v1/keys", {"name": "spare", "scopes": ["monitors:read"]})),
        "schedule": created(api.post(f"/v1/team/{team_id}/schedules", {"name": "rota"})),
        "groups": created(api.post("/v1/groups", {"name": "database"})),
    }


def with_examples(document: dict, ids: dict[str, str]) -> dict:
    """The document with the seeded ids as examples of the path parameters that name them."""
    for path, operations in document["paths"].items():
        kind = path.split("/")[2]  # /v1/monitors/{id} -> monitors
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                name = kind if parameter["name"] == "id" else parameter["name"]
                if parameter["in"] == "path" and name in ids:
                    parameter["example"] = ids[name]
    return document


class Fuzzing:
    """One schemathesis process over some operations, in a folder of its own.

    Single-threaded: several run side by side instead, as processes (threads
    generating at once trip over a CPython 3.11 race in ast.parse, which
    hypothesis calls to describe its strategies). The folder matters too:
    schemathesis keeps the crashes it finds there and replays them next time.
    """

    def __init__(self, folder: Path, who: str, document: dict, ids: dict[str, str], base: str, credentials: str,
                 names: list[str]) -> None:
        self.folder, self.who, self.names = folder, who, names
        folder.mkdir()
        (folder / "openapi.json").write_text(json.dumps(with_examples(copy.deepcopy(document), ids)))
        command = [str(SCHEMATHESIS), "run", "openapi.json", "--url", base, "--checks", CHECKS,
                   "--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES_PER_OPERATION),
                   "--generation-deterministic", "--workers", "1", "--request-timeout", "30", "--no-color",
                   "--header", f"Authorization: Bearer {credentials}", "--report", "ndjson",
                   "--report-ndjson-path", "report.ndjson", *[f"--include-name={name}" for name in names]]
        with open(folder / "output.txt", "w") as output:
            self.process = subprocess.Popen(command, cwd=folder, stdout=output, stderr=subprocess.STDOUT)

    def failure(self) -> str | None:
        """None when every answer was as documented; else what schemathesis said."""
        if self.process.wait(timeout=300) == 0:
            return None
        output = (self.folder / "output.txt").read_text()
        return f"--- with {self.who}, {len(self.names)} operations ({self.names[0]}...):\n{output[-8000:]}"


def test_every_operation_answers_as_the_document_says(fuzzed: Cluster, smtp_server: Mailbox,
                                                      tmp_path: Path) -> None:
    team_id, key = fuzzed.new_org()
    api = ready_client(fuzzed, key)
    document = api.get("/v1/openapi.json").body
    operations = {f"{method.upper()} {path}": operation
                  for path, methods in document["paths"].items() for method, operation in methods.items()}
    people_only = {name for name, operation in operations.items() if operation.get("x-people-only")}
    ids = seed(api, team_id)
    someone = person(fuzzed, smtp_server, "fuzz")
    own_schedule = created(someone.client.post("/v1/account/schedules", {"name": "mine"}))
    mine = {**ids, "team": someone.team_id, "account": own_schedule}  # a person acts in their own team
    keyed = sorted(set(operations) - people_only - set(ENDING))
    assert set(keyed) | people_only | set(ENDING) == set(operations)

    def fuzzing(who: str, ids: dict[str, str], credentials: str, names: list[str]) -> Fuzzing:
        return Fuzzing(tmp_path / f"run-{len(list(tmp_path.iterdir()))}", who, document, ids, api.base, credentials,
                       names)

    side_by_side = [fuzzing("an API key", ids, key, keyed[n::KEY_PROCESSES]) for n in range(KEY_PROCESSES)]
    side_by_side.append(fuzzing("a person", mine, someone.access_token, sorted(people_only - set(ENDING))))
    failures = [run.failure() for run in side_by_side]
    for name in ENDING:  # last, one by one, each with fresh credentials: they end the credentials they use
        if name in people_only:
            run = fuzzing("a person", mine, log_in(fuzzed, someone.email).access_token, [name])
        else:
            run = fuzzing("an API key", ids, key, [name])
        failures.append(run.failure())
    failures = [failure for failure in failures if failure]
    assert not failures, "\n".join(failures)
