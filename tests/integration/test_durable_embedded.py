"""`pingstream up` on its default, durable embedded broker: the data outlives the processes.

One `up` is started through the command line, as `make up` does, on a data
directory of its own: the same monitors, statistics and admin key after a stop
and a start; the broker SIGKILLed while results stream in, started again by
`up` on the same port, and every accepted result counted once.
"""
from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.broker import free_port
from tests.integration.cluster import ROOT, Client, wait_for
from tests.integration.crash_scenario import make_batches, post_all

BANNER_END = "Ctrl-C stops everything"


@dataclass
class Up:
    """A running `pingstream up` and what its banner said."""

    popen: subprocess.Popen
    output: Path
    api: str
    key: str

    def banner(self) -> str:
        return self.output.read_text(errors="replace")

    def child_pid(self, program: str) -> int:
        """The process of `program` (tansu: the broker, weed: its storage) that `up` started."""
        children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text().split()
        for pid in children:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if Path(argv0).name == program:
                return int(pid)
        raise AssertionError(f"no {program} process among the children of `pingstream up`")

    def stop(self) -> None:
        self.popen.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            self.popen.wait(60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            raise AssertionError("`pingstream up` did not stop within 60 s of Ctrl-C") from None


def start_up(data_dir: Path, api_port: int, worker_port: int, run: int) -> Up:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGSTREAM_")}
    env.update(PINGSTREAM_DATA_DIR=str(data_dir), PINGSTREAM_API_PORT=str(api_port),
               PINGSTREAM_WORKER_PORT=str(worker_port), PINGSTREAM_PROBE_REGIONS=",",
               PINGSTREAM_SESSION_TIMEOUT="6", PINGSTREAM_HEARTBEAT_INTERVAL="0.5",
               PINGSTREAM_IP_RATE_LIMIT="100000", PINGSTREAM_LOG_LEVEL="info", PYTHONPATH=str(ROOT))
    output = data_dir.parent / f"up-{run}.out"
    with open(output, "wb") as out:
        popen = subprocess.Popen([sys.executable, "-m", "pingstream.cli", "up"], cwd=ROOT, env=env,
                                 stdout=out, stderr=subprocess.STDOUT)

    def banner() -> str | None:
        text = output.read_text(errors="replace")
        return text if BANNER_END in text or popen.poll() is not None else None

    text = wait_for("`pingstream up` to say it is up", banner, 180, 0.25)
    assert popen.poll() is None, f"`pingstream up` exited with {popen.returncode}:\n{text}"
    key = re.search(r"admin API key (\S+)", text).group(1)
    return Up(popen, output, f"http://127.0.0.1:{api_port}", key)


@pytest.fixture(scope="module")
def durable_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """An `up` on a fresh data directory; `state["up"]` is the one running now (tests may restart it)."""
    data_dir = tmp_path_factory.mktemp("durable") / ".pingstream"
    ports = (free_port(), free_port())
    state = {"up": start_up(data_dir, *ports, run=1), "data_dir": data_dir, "ports": ports, "runs": 1}
    try:
        yield state
    finally:
        state["up"].stop()


def test_up_after_up_shows_the_same_monitors_statistics_and_key(durable_up: dict) -> None:
    first: Up = durable_up["up"]
    assert "kept across restarts" in first.banner() and "resumed" not in first.banner()
    api = Client(first.api, first.key)
    created = api.post("/v1/monitors", {"name": "Homepage", "url": "https://example.com",
                                        "regions": ["eu-west", "us-east"], "interval_seconds": 86400})
    assert created.status == 201, created.body
    mid = created.body["data"]["id"]
    now = time.time()
    results = [{"monitor_id": mid, "region": region, "status": status, "checked_at": now - 60 + n,
                "response_time_ms": 100 + n, **({"cause": "timeout"} if status == "down" else {})}
               for n, (region, status) in enumerate([("eu-west", "up"), ("us-east", "down"),
                                                     ("eu-west", "up"), ("us-east", "up")])]
    assert api.post("/v1/checks", {"results": results}).status == 202
    uptime = f"/v1/monitors/{mid}/uptime?period=24h"
    wait_for("the results to be counted", lambda: api.get(uptime).body["data"]["total_checks"] == 4, 30)
    before = {path: api.get(path).body["data"] for path in
              (f"/v1/monitors/{mid}", uptime, f"/v1/monitors/{mid}/checks", f"/v1/monitors/{mid}/state-changes",
               "/v1/monitors")}

    first.stop()
    durable_up["runs"] += 1
    second = durable_up["up"] = start_up(durable_up["data_dir"], *durable_up["ports"], run=durable_up["runs"])

    assert second.key == first.key and "resumed" in second.banner()
    api = Client(second.api, second.key)
    after = {path: api.get(path).body["data"] for path in before}
    assert after == before
    # the stream goes on from where it stopped: one more result is counted once, nothing before it again
    assert api.post("/v1/checks", {"monitor_id": mid, "region": "eu-west", "status": "up"}).status == 202
    wait_for("the new result to be counted", lambda: api.get(uptime).body["data"]["total_checks"] == 5, 30)


@pytest.mark.parametrize("program", ["tansu", "weed"])  # the broker, then the storage under it
def test_a_broker_killed_under_load_comes_back_with_every_result_counted_once(durable_up: dict, program: str) -> None:
    up: Up = durable_up["up"]
    api = Client(up.api, up.key)
    monitors = []
    for n in range(10):
        created = api.post("/v1/monitors", {"name": f"load {n}", "url": "https://example.com",
                                            "regions": ["eu-west", "us-east", "ap-south"],
                                            "interval_seconds": 86400})
        assert created.status == 201, created.body
        monitors.append(created.body["data"]["id"])
    results = 9_000
    batches = make_batches(monitors, results, 300, random.Random(7))
    killed: list[int] = []

    def kill_when_busy() -> None:
        time.sleep(2.0)  # posting all along: results are in flight through the API and the worker
        pid = up.child_pid(program)
        os.kill(pid, signal.SIGKILL)
        wait_for(f"`up` to start {program} again", lambda: up.child_pid(program) != pid, 30, 0.1)
        killed.append(pid)

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    accepted, up_counts = asyncio.run(post_all(up.api, up.key, batches, concurrency=2, rate=results / 6))
    killer.join(60)
    assert killed
    assert sum(accepted.values()) == results

    def counts() -> dict[str, tuple[int, int]]:
        return {mid: (data["total_checks"], data["up_checks"]) for mid in monitors
                for data in [api.get(f"/v1/monitors/{mid}/uptime?period=24h").body["data"]]}

    want = {mid: (accepted[mid], up_counts[mid]) for mid in monitors}
    try:
        wait_for("every accepted result to be counted", lambda: counts() == want, 90, 1.0)
    except AssertionError:
        got = counts()
        lost = sum(max(0, want[m][0] - got[m][0]) for m in monitors)
        twice = sum(max(0, got[m][0] - want[m][0]) for m in monitors)
        raise AssertionError(f"after a SIGKILL of {program}: {lost} lost, {twice} counted twice") from None
    assert up.popen.poll() is None
