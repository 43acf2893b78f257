"""The README's curl walk-through, run as written against a real API, gives the answers it shows."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import running_cluster

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("### A walk through with curl"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl")
def test_the_walkthrough_answers_as_documented(tmp_path: Path) -> None:
    """From sign-up, with the code read from the outbox as `make up` (no SMTP server) writes it."""
    script = walkthrough()
    first_line = "API=http://127.0.0.1:8080; OUTBOX=.pingstream/outbox; EMAIL=ada@example.com"
    assert script.startswith(first_line)
    with running_cluster(tmp_path / "walk") as cluster:  # its own: the shared one mails over SMTP
        api = cluster.client(None).base
        cluster.start_probe("default")  # as `make up` starts one
        script = script.replace(first_line, f"API={api}; OUTBOX={cluster.settings().outbox}; EMAIL=ada@example.com", 1)
        for name in ("monitor", "auth", "key", "self"):
            script = script.replace(f"/tmp/{name}.json", str(tmp_path / f"{name}.json"))
        run = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert '"message":"We sent a mail to this address' in out and '"role":"root"' in out and '"token_type":"Bearer"' in out
    assert '"scopes":["checks:write"]' in out and '"secret":"psk_' in out
    assert '"status":"down"' in out and '"regions_status":{"eu-west":"up","us-east":"down","ap-south":"down"}' in out
    assert '"uptime_30d":{"uptime_percentage":20.0,"total_checks":5,"up_checks":1,"down_checks":4}' in out
    assert '"event":"monitor.down"' in out and '"cause":"timeout"' in out and '"previous_status":"up"' in out
    assert '"period":"24h","uptime_percentage":20.0,"total_checks":5,"up_checks":1,"down_checks":4' in out
    assert '"avg_response_time_ms":120.0' in out and '"p95_response_time_ms":120.0' in out
    assert '"status":"paused"' in out
    assert re.search(r"}204\n", out)  # DELETE answered 204 (curl -w prints it after the list)
    assert '"status":"ok"' in out
    assert re.search(r'"status":"up","region":"default"|"region":"default"[^}]*"status":"up"', out)
    assert '"region":"default","host":' in out and '"schedule_lag_p99_ms":' in out  # GET /v1/probes
