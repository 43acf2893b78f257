"""`pingstream up --workers 2` (what `make up WORKERS=2` runs): two workers share the partitions, each at its URL."""
from __future__ import annotations

import json
import os
import socket
import signal
import subprocess
import sys
from pathlib import Path

from engine.broker import free_port
from tests.integration.cluster import ROOT, wait_for


def two_free_ports() -> int:
    """A port p with p + 1 free too: the second worker takes the next port."""
    while True:
        port = free_port()
        if port < 65535 and free_port_is(port + 1):
            return port


def free_port_is(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat, command = (entry / "stat").read_text(), (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), command.replace(b"\0", b" ").decode()))
    return found


def test_up_with_two_workers_shares_the_partitions_shows_both_and_starts_a_dead_one_again(tmp_path: Path) -> None:
    worker_port, api_port = two_free_ports(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PINGSTREAM_")}
    env.update({"PINGSTREAM_DATA_DIR": str(tmp_path), "PINGSTREAM_WORKER_PORT": str(worker_port),
                "PINGSTREAM_API_PORT": str(api_port), "PINGSTREAM_PROBE_REGIONS": "",
                "PINGSTREAM_SESSION_TIMEOUT": "3", "PINGSTREAM_HEARTBEAT_INTERVAL": "0.5",  # quick group joins
                "PINGSTREAM_PARTITIONS": "4", "PYTHONPATH": str(ROOT)})
    output = tmp_path / "up.out"
    with open(output, "wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "pingstream.cli", "up", "--workers", "2"], cwd=ROOT, env=env,
                              stdout=out, stderr=subprocess.STDOUT)
    try:
        def started() -> bool:
            assert up.poll() is None, output.read_text()
            return "pingstream is up." in output.read_text()
        wait_for("pingstream up to say it is up", started, 120, interval=0.25)
        urls = [f"http://127.0.0.1:{worker_port}", f"http://127.0.0.1:{worker_port + 1}"]
        assert f"workers       {', '.join(urls)}" in output.read_text()

        def shared() -> dict | None:
            done = subprocess.run([sys.executable, "-m", "pingstream.cli", "status", "--json", "--interval", "0.1"],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            status = json.loads(done.stdout)
            serving = {w["url"]: w["partitions"] for w in status["workers"] if w["reachable"] and not w["stale"]}
            return status if sorted(serving) == urls and all(serving.values()) else None
        status = wait_for("both workers to serve partitions", shared, 60, interval=0.5)
        assert set(status["owners"].values()) == set(urls)
        owned = sorted(p for w in status["workers"] for p in w["partitions"])
        assert owned == [0, 1, 2, 3]
        # a worker that dies is started again by `up`, on its port, and takes its share back
        victim = next(pid for pid, command in children(up.pid) if "pingstream.cli worker" in command)
        os.kill(victim, signal.SIGKILL)
        wait_for("`up` to start the dead worker again", lambda: any(
            pid != victim and "pingstream.cli worker" in command for pid, command in children(up.pid)) and len(
            [c for c in children(up.pid) if "pingstream.cli worker" in c[1]]) == 2, 30, interval=0.5)
        status = wait_for("both workers to serve partitions again", shared, 90, interval=0.5)
        assert sorted(p for w in status["workers"] for p in w["partitions"]) == [0, 1, 2, 3]
        assert up.poll() is None and "worker" in output.read_text() and "starting it again" in output.read_text()
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(40)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(5)
    assert up.returncode == 0, output.read_text()[-2000:]
