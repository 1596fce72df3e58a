"""PID 1 of every sandbox: holds the tool agent's socket, starts the agent on demand, reaps orphans.

Runs as `python3 -I -S /.cove/agent/init.py`, so it imports nothing beyond the standard library and
an idle session is this one small process. init listens on the agent's socket itself and starts
the agent (server.py) when the first connection waits there, handing it the listening socket; an
agent that dies, or leaves after being idle, is started again by the next connection, at most once
a second. Pending connections wait in the socket's backlog meanwhile, so none is refused.

Checkpoints (gvisor sessions, docs/runtimes.md). The agent's socket is a socket of the host, which
gVisor cannot write into a checkpoint, so before one the host sends init SIGUSR1: init closes its
listening socket and has the agent let go of every host socket it holds (over a socket pair of
their own, CONTROL_FD in the agent), then removes the socket file, which tells the host it may go
on. After the restore (or a checkpoint that failed), SIGUSR2: init listens again and hands the new
socket to the agent, which keeps every process, kernel and state it had.
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
CONTROL_FD = 4
"""The agent's end of its socket pair with init, for letting go of host sockets and taking new ones."""
SUSPEND_SIGNAL = signal.SIGUSR1
"""From the host: let go of every host socket, for a checkpoint."""
RESUME_SIGNAL = signal.SIGUSR2
"""From the host: listen again after a checkpoint."""
RELEASE_WAIT_S = 10.0
"""How long init waits for the agent to let go of its host sockets."""
AGENT_COMMAND = [
    sys.executable,
    "-I",
    "-S",
    "-c",
    "import sys; sys.path.insert(0, '/.cove'); from agent.server import serve; serve()",
]
HANDLED = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)
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


def start_agent(listener: socket.socket) -> tuple[int, socket.socket]:
    """The agent's pid, and init's end of their control socket pair."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            for number in HANDLED:
                signal.signal(number, signal.SIG_DFL)
            os.dup2(listener.fileno(), LISTEN_FD, inheritable=True)
            os.dup2(theirs.fileno(), CONTROL_FD, inheritable=True)
            os.execv(AGENT_COMMAND[0], AGENT_COMMAND)
        finally:
            os._exit(127)
    theirs.close()
    return pid, ours


def release_agent(control: socket.socket | None) -> None:
    """Have the agent let go of its host sockets, and wait (boundedly) until it has."""
    if control is None:
        return
    try:
        control.settimeout(RELEASE_WAIT_S)
        control.sendall(b"S")
        control.recv(1)
    except OSError as error:
        print(f"cove-init: the agent did not confirm it let go of its sockets: {error}", flush=True)


def hand_over(control: socket.socket | None, listener: socket.socket) -> None:
    """Give the agent init's new listening socket, after a checkpoint."""
    if control is None:
        return
    with contextlib.suppress(OSError):
        socket.send_fds(control, [b"L"], [listener.fileno()])


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
    control: socket.socket | None = None
    suspended = False
    may_start_at = 0.0
    print("cove-init: ready", flush=True)
    while True:
        watched = [wakeup_read] if agent_pid is not None or suspended else [wakeup_read, listener.fileno()]
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
                if control is not None:
                    control.close()
                    control = None
            if SUSPEND_SIGNAL in received and not suspended:
                suspended = True
                listener.close()
                release_agent(control)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(SOCKET_PATH)
                print("cove-init: let go of the host's sockets for a checkpoint", flush=True)
            if RESUME_SIGNAL in received and suspended:
                suspended = False
                listener, bound = listen(SOCKET_PATH)
                hand_over(control, listener)
                print("cove-init: listening again", flush=True)
        if suspended:
            continue
        if agent_pid is None and listener.fileno() in ready:
            agent_pid, control = start_agent(listener)
            may_start_at = time.monotonic() + RESTART_INTERVAL_S
        if not in_place(SOCKET_PATH, bound):
            listener.close()
            listener, bound = listen(SOCKET_PATH)
            if agent_pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(agent_pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
