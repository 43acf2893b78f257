"""The README's curl walk-through, run as written against a real API, gives the answers it shows."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.cluster import Client, Cluster

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("### A walk through with curl"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl")
def test_the_walkthrough_answers_as_documented(cluster: Cluster, org: tuple[str, Client], tmp_path: Path) -> None:
    api = org[1]
    script = walkthrough()
    first_line = "KEY=$(cat .pingstream/admin-key); API=http://127.0.0.1:8080"
    assert script.startswith(first_line)
    script = script.replace(first_line, f"KEY={api.key}; API={api.base}", 1).replace("/tmp/monitor.json", str(tmp_path / "m.json"))
    run = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert '"status":"down"' in out and '"regions_status":{"eu-west":"up","us-east":"down","ap-south":"down"}' in out
    assert '"uptime_30d":{"uptime_percentage":20.0,"total_checks":5,"up_checks":1,"down_checks":4}' in out
    assert '"event":"monitor.down"' in out and '"cause":"timeout"' in out and '"previous_status":"up"' in out
    assert '"period":"24h","uptime_percentage":20.0,"total_checks":5,"up_checks":1,"down_checks":4' in out
    assert '"avg_response_time_ms":120.0' in out and '"p95_response_time_ms":120.0' in out
    assert '"status":"paused"' in out
    assert re.search(r"}204\n", out)  # DELETE answered 204 (curl -w prints it after the list)
    assert '"status":"ok"' in out
