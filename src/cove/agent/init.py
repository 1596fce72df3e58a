"""PID 1 of every sandbox: starts the tool agent (again, if it dies), reaps orphans, ends on SIGTERM.

Runs as `python3 -I -S /.cove/agent/init.py`, so it imports nothing beyond the standard library and
keeps an idle session's memory small.
"""

import os
import signal
import sys
import time

HANDLED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
AGENT_COMMAND = [
    sys.executable,
    "-I",
    "-S",
    "-c",
    "import sys; sys.path.insert(0, '/.cove'); from agent.server import serve; serve()",
]
RESTART_INTERVAL_S = 1.0
"""An agent that keeps dying is restarted at most this often."""


def start_agent() -> int:
    pid = os.fork()
    if pid == 0:
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
            os.execv(AGENT_COMMAND[0], AGENT_COMMAND)
        finally:
            os._exit(127)
    return pid


def reap_children() -> set[int]:
    """Collect every exited child; answers their pids."""
    reaped: set[int] = set()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.add(pid)


def main() -> None:
    # Blocked signals are queued for sigwaitinfo even for a namespace's init, so none is missed.
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    agent_pid, started = start_agent(), time.monotonic()
    print("cove-init: ready", flush=True)
    while True:
        received = signal.sigwaitinfo(HANDLED)
        if received.si_signo != signal.SIGCHLD:
            return
        if agent_pid in reap_children():
            time.sleep(max(0.0, started + RESTART_INTERVAL_S - time.monotonic()))
            agent_pid, started = start_agent(), time.monotonic()


if __name__ == "__main__":
    main()
