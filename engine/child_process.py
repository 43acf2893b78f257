"""Server processes a pingstream process owns (the embedded broker and its storage): they die with it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the parent dies, even by SIGKILL."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for Popen that ties the child's life to this process, where that works.

    PDEATHSIG fires when the spawning *thread* exits, so only use it from the main thread.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    return _die_with_parent if sys.platform == "linux" and on_main_thread else None


def terminate_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, then SIGKILL after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
