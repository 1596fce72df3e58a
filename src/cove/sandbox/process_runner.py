"""Running a host command with a time limit, for the runtime's runc, ip and nsenter calls."""

from __future__ import annotations

import subprocess
import threading
from typing import Any


def run_bounded(
    argv: list[str], timeout: float, input: str | None = None, **streams: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command, killing it after `timeout` seconds.

    subprocess.run(timeout=...) polls with growing sleeps, which costs a create ~15 ms; a timer
    thread lets us block in waitpid and still never hang.
    """
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **streams}
    options["stdin"] = subprocess.DEVNULL if input is None else subprocess.PIPE
    timed_out = threading.Event()
    with subprocess.Popen(argv, text=True, **options) as process:

        def kill() -> None:
            timed_out.set()
            process.kill()

        watchdog = threading.Timer(timeout, kill)
        watchdog.start()
        try:
            stdout, stderr = process.communicate(input)
        finally:
            watchdog.cancel()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(argv, timeout)
    return subprocess.CompletedProcess(argv, process.returncode, stdout or "", stderr or "")
