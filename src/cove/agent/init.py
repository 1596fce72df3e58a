"""PID 1 of every sandbox: holds the tool agent's socket, starts the agent on demand, reaps orphans.

Runs as `python3 -I -S /.cove/agent/init.py`, so it imports nothing beyond the standard library and
an idle session is this one small process. init listens on the agent's socket itself and starts
the agent (server.py) when the first connection waits there, handing it the listening socket; an
agent that dies, or leaves after being idle, is started again by the next connection, at most once
a second. Pending connections wait in the socket's backlog meanwhile, so none is refused.
"""

import contextlib
import os
import select
import signal
import socket
import stat
import sys
import time

SOCKET_PATH = "/.cove/run/agent.sock"
LISTEN_FD = 3
"""Where the agent finds the listening socket (server.py reads it from there)."""
AGENT_COMMAND = [
    sys.executable,
    "-I",
    "-S",
    "-c",
    "import sys; sys.path.insert(0, '/.cove'); from agent.server import serve; serve()",
]
HANDLED = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT)
RESTART_INTERVAL_S = 1.0
"""An agent that keeps dying is started at most this often."""
CHECK_INTERVAL_S = 2.0
"""How often init makes sure its socket is still in place: code in the session may remove or replace
it (the run folder is the session user's), and the host would then reach no agent. init listens
anew, and the agent serving the lost socket is ended, to be started on the new one."""


def listen(path: str) -> tuple[socket.socket, int]:
    """A listening socket at `path`, and the inode it is bound at (by which init sees it replaced)."""
    with contextlib.suppress(FileNotFoundError):
        try:
            os.unlink(path)
        except IsADirectoryError:  # a folder planted there by code in the session: moved aside
            os.rename(path, f"{path}.{time.time_ns()}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)  # only the session user; the umask stays 022 for everything else
    listener.listen(128)
    return listener, os.lstat(path).st_ino


def in_place(path: str, inode: int) -> bool:
    """Whether the socket init listens on is still the one at `path`."""
    try:
        found = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(found.st_mode) and found.st_ino == inode


def start_agent(listener: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            for number in HANDLED:
                signal.signal(number, signal.SIG_DFL)
            os.dup2(listener.fileno(), LISTEN_FD, inheritable=True)
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
    # Signals wake the select below through this pipe; their handlers themselves do nothing.
    wakeup_read, wakeup_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wakeup_write)
    for number in HANDLED:
        signal.signal(number, lambda *_: None)
    listener, bound = listen(SOCKET_PATH)
    agent_pid: int | None = None
    may_start_at = 0.0
    print("cove-init: ready", flush=True)
    while True:
        watched = [wakeup_read] if agent_pid is not None else [wakeup_read, listener.fileno()]
        delay = max(0.0, may_start_at - time.monotonic())
        ready, _, _ = select.select(
            watched if delay == 0 else [wakeup_read], [], [], delay or CHECK_INTERVAL_S
        )
        if wakeup_read in ready:
            received = os.read(wakeup_read, 512)
            if signal.SIGTERM in received or signal.SIGINT in received:
                return
            if agent_pid in reap_children():
                agent_pid = None
        if agent_pid is None and listener.fileno() in ready:
            agent_pid = start_agent(listener)
            may_start_at = time.monotonic() + RESTART_INTERVAL_S
        if not in_place(SOCKET_PATH, bound):
            listener.close()
            listener, bound = listen(SOCKET_PATH)
            if agent_pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(agent_pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
