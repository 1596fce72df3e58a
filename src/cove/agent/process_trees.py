"""The session user's process trees: everything the agent starts for the user (a command, a background
process, a code kernel) is one tree, which keeps the session's reserve of processes and is ended whole.

Reserve. The session's cgroup caps its tasks (threads included) at its pids limit, and a fork bomb
would take all of them, leaving the agent unable to fork a shell. So every tree runs with
RLIMIT_NPROC, soft and hard, at the limit less a reserve (`user_process_limit`). Each session has its
own user namespace and host uid, so the kernel counts that limit over the session user's tasks in
the sandbox alone (init's and the agent's among them); the user cannot raise a hard limit without
capabilities, and the agent and init run without one, so they may always fork up to the cgroup's
limit: the last `reserve` tasks are theirs. The agent learns the limit from `limits.json` in its run
folder (host_files.py) each time it starts a process tree; the host writes it before the sandbox
runs (and again when a prepared sandbox is given to a session with other limits): it is the only
place that has the current limit (v1 hides the session's pids.max from the sandbox). Only a file
the session user cannot have written counts. Anything in the session can still end the agent on
purpose (it is the same user); the reserve is against programs that run away.

Trees. The host delegates a cgroup, mounted at /.cove/cgroup (sandbox/cgroups.py `delegate`); each
tree gets a child cgroup there, joined by its first process before it runs anything, so a tree is
killed by cgroup, with the processes that called setsid or forked twice. Ending the first process does
not end the rest: what a command starts in the background keeps running until the tree is killed (a
timeout, process_kill) or kill_all. Without the folder (older hosts) a tree is its process group.
"""

from __future__ import annotations

import _thread
import os
import resource
import sys
import time

from . import host_files

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: `typing` is a large part of a small agent
    import subprocess
    from collections.abc import Callable
    from typing import Any, TypeVar

    Started = TypeVar("Started")

try:  # the C module under `signal`: the same calls and numbers, without the enums `signal` builds
    _signal: Any = __import__("_signal")
except ImportError:
    _signal = __import__("signal")

CGROUP_ROOT = "/.cove/cgroup"
LIMITS_PATH = f"{host_files.RUN_DIR}/limits.json"
MAX_RESERVE = 32
"""The most tasks kept for the agent and init: enough for a shell, its command and the agent's threads."""
PID_MAX_LIMIT = 1 << 22
"""The kernel's largest pid: no pids limit is larger."""
KILL_WAIT_S = 5.0
"""How long a kill keeps at a tree (or kill_all at the session) until every process has gone."""
KILL_ROUND_S = 0.005
"""The pause between two rounds of a kill, for the processes just killed to leave."""


def reserve(pids: int) -> int:
    """The tasks the agent and init keep out of a pids limit: a quarter, at most MAX_RESERVE."""
    return min(MAX_RESERVE, pids // 4)


def user_process_limit(pids: int) -> int:
    """RLIMIT_NPROC for the session user's trees under a pids limit of `pids`."""
    return max(pids - reserve(pids), 1)


def read_pids_limit(path: str = LIMITS_PATH) -> int | None:
    """The session's pids limit as the host wrote it, or None if there is no file to trust."""
    limits = host_files.read_json(path)
    return host_files.whole_number(limits.get("pids"), 1, PID_MAX_LIMIT) if isinstance(limits, dict) else None


def members(cgroup: str) -> list[int]:
    """The processes in a cgroup; none once it is gone."""
    try:
        with open(f"{cgroup}/cgroup.procs") as procs:
            return [int(pid) for pid in procs.read().split()]
    except OSError:
        return []


def signal_members(cgroup: str, number: int) -> None:
    for pid in members(cgroup):
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass


def kill_cgroup(cgroup: str) -> None:
    """Kill every process in a cgroup and wait, boundedly, until it is empty.

    v2 kills a cgroup in one write (cgroup.kill); v1 has no such file, so its members are killed
    round after round, for those forked meanwhile.
    """
    try:
        with open(f"{cgroup}/cgroup.kill", "w") as kill:
            kill.write("1")
    except OSError:
        pass
    deadline = time.monotonic() + KILL_WAIT_S
    while members(cgroup) and time.monotonic() < deadline:
        signal_members(cgroup, _signal.SIGKILL)
        time.sleep(KILL_ROUND_S)


class ProcessTree:
    """One started process and all it starts: its cgroup, or its process group where there is none."""

    def __init__(self, cgroup: str | None) -> None:
        self.cgroup = cgroup
        self.leader: int | None = None
        """The first process's pid, and its process group's id."""

    def signal(self, number: int) -> None:
        """Send a signal to every process of the tree. Without a cgroup call it only while the first
        process has not been reaped, so that its group id cannot have been reused."""
        if self.cgroup is not None:
            signal_members(self.cgroup, number)
        elif self.leader is not None:
            try:
                os.killpg(self.leader, number)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """Kill the whole tree (as `signal`, but it waits until a cgroup is empty)."""
        if self.cgroup is not None:
            kill_cgroup(self.cgroup)
        else:
            self.signal(_signal.SIGKILL)

    def release(self) -> None:
        """The first process has ended: remove the cgroup now if it is empty, else a later sweep will."""
        if self.cgroup is not None:
            TREES.release(self.cgroup)


class Trees:
    """The child cgroups of the delegated folder; one lock orders making them against sweeping them,
    so a sweep never removes a cgroup its process has not joined yet."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.usable = os.access(root, os.W_OK)
        self.lock = _thread.allocate_lock()
        self.unreleased: set[str] = set()

    def new(self, label: str) -> str | None:
        """A new empty cgroup for a tree, after removing the empty ones of trees that ended."""
        if not self.usable:
            return None
        with self.lock:
            self.sweep_locked()
            while True:
                path = f"{self.root}/{label}-{os.urandom(4).hex()}"
                try:
                    os.mkdir(path)
                except FileExistsError:
                    continue
                except OSError as error:
                    self.disable(f"mkdir: {error}")
                    return None
                self.unreleased.add(path)
                return path

    def release(self, path: str) -> None:
        with self.lock:
            self.unreleased.discard(path)
            try:
                os.rmdir(path)
            except OSError:  # processes it left behind still run there
                pass

    def sweep(self) -> None:
        with self.lock:
            self.sweep_locked()

    def sweep_locked(self) -> None:
        try:
            with os.scandir(self.root) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False) and entry.path not in self.unreleased:
                        try:
                            os.rmdir(entry.path)
                        except OSError:
                            pass
        except OSError:
            pass

    def disable(self, reason: str) -> None:
        print(f"cove-agent: cannot start trees in cgroups ({reason}); using process groups", file=sys.stderr)
        self.usable = False


TREES = Trees(CGROUP_ROOT)


def enter(procs: int | None, process_limit: int | None, then: Callable[[], None] | None) -> None:
    """Runs in the child between fork and exec, after setsid: join the tree's cgroup, take the
    session's process limit, then what the caller asked for."""
    if procs is not None:
        os.write(procs, b"0")
    if process_limit is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (process_limit, process_limit))
    if then is not None:
        then()


def popen(
    label: str, argv: list[str], preexec_fn: Callable[[], None] | None = None, **options: Any
) -> tuple[subprocess.Popen[bytes], ProcessTree]:
    """subprocess.Popen as a new tree, in a session of its own; `label` names its cgroup."""
    import subprocess  # only here: with what it imports, over 1 MiB (`spawn` does without)

    process_limit = session_process_limit()

    def launch(procs: int | None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            start_new_session=True,
            preexec_fn=lambda: enter(procs, process_limit, preexec_fn),
            **options,
        )

    return in_new_tree(label, launch, subprocess.SubprocessError)


class Child:
    """A process `spawn` started: the part of subprocess.Popen the shell tool needs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code (minus the signal's number if killed by one) once the process has ended."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, after at most `timeout` seconds (None: the process still runs then)."""
        if timeout is None:
            if self.returncode is None:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            return self.returncode
        deadline, delay = time.monotonic() + timeout, 0.0005
        while self.poll() is None and (left := deadline - time.monotonic()) > 0:
            delay = min(delay * 2, left, 0.05)  # subprocess.Popen.wait's polling
            time.sleep(delay)
        return self.returncode


class EntryError(Exception):
    """The child could not take its place in the tree (its cgroup, its limits) before exec."""


def spawn(
    label: str, argv: list[str], cwd: str, env: dict[bytes, bytes], fds: tuple[int, int, int]
) -> tuple[Child, ProcessTree]:
    """`argv` started as a new tree, as `popen` starts it (start_new_session, close_fds, the default
    signal dispositions back), with `fds` as its stdin, stdout and stderr, without `subprocess` and
    without copying the agent: init's launcher (`init --launch`) enters the tree and runs `argv`.

    An error before exec comes back as Popen raises it: an OSError naming the cwd or the program.
    """
    process_limit = session_process_limit()

    def launch(procs: int | None) -> Child:
        return Child(launched(argv, cwd, env, fds, procs, process_limit))

    return in_new_tree(label, launch, EntryError)


LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "init")
"""init (agent/init.c), beside the agent: `init --launch` starts the agent's commands."""


def launched(
    argv: list[str],
    cwd: str,
    env: dict[bytes, bytes],
    fds: tuple[int, int, int],
    procs: int | None,
    process_limit: int | None,
) -> int:
    """The pid of `argv` started in a new session by init's launcher: standard streams, signals,
    setsid here; joining the cgroup (`procs`), the process limit, cwd, closing the other
    descriptors and exec there. posix_spawn does not copy the agent's address space, which a fork
    does (about 30 ms under gVisor)."""
    errors_read, errors_write = os.pipe()  # the launcher closes it on exec: a success leaves it empty
    kept = [errors_write] if procs is None else [errors_write, procs]
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)]
    actions += [(os.POSIX_SPAWN_DUP2, fd, fd) for fd in kept]  # the same number: inherited
    options = [str(errors_write), str(-1 if procs is None else procs), str(process_limit or 0), cwd]
    try:
        pid = os.posix_spawn(
            LAUNCHER,
            [LAUNCHER, "--launch", *options, *argv],
            env,
            file_actions=actions,
            setsid=True,
            setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ),
        )
    except OSError as error:  # not the command's cwd or program: the launcher itself
        os.close(errors_read)
        raise RuntimeError(f"the agent's launcher {LAUNCHER} could not start: {error.strerror}") from None
    finally:
        os.close(errors_write)
    with open(errors_read, "rb") as errors:
        failure = errors.read()
    if not failure:
        return pid
    os.waitpid(pid, 0)
    stage, number = failure.decode().split()
    if stage == "enter":
        raise EntryError(f"the child could not enter its tree (error {number})")
    raise OSError(int(number), os.strerror(int(number)), cwd if stage == "chdir" else argv[0])


def session_process_limit() -> int | None:
    """RLIMIT_NPROC for a new tree, from the pids limit the host wrote; None without one."""
    pids = read_pids_limit(LIMITS_PATH)
    return None if pids is None else user_process_limit(pids)


def in_new_tree(
    label: str, launch: Callable[[int | None], Started], entry_error: type[Exception]
) -> tuple[Started, ProcessTree]:
    """What `launch` starts, given the descriptor of its cgroup's procs file (or None), as a tree.

    The cgroup is joined by the child itself, before exec, so nothing the program does escapes it. If
    the child cannot start in its cgroup but can without one (a host that delegated the folder but
    not the right to move into it), the agent says so once and uses process groups from then on.
    """

    def start(cgroup: str | None) -> tuple[Started, ProcessTree]:
        tree = ProcessTree(cgroup)
        try:
            procs = None if cgroup is None else os.open(f"{cgroup}/cgroup.procs", os.O_WRONLY)
            try:
                process = launch(procs)
            finally:
                if procs is not None:
                    os.close(procs)
        except BaseException:
            tree.release()
            raise
        tree.leader = process.pid  # type: ignore[attr-defined]
        return process, tree

    cgroup = TREES.new(label)
    if cgroup is None:
        return start(None)
    try:
        return start(cgroup)
    except entry_error as error:
        started = start(None)  # raises again if the cgroup was not the trouble
        TREES.disable(str(error))
        return started


def other_processes() -> set[int]:
    """The session user's live processes but init and this agent (zombies are no longer running)."""
    found, spared, uid = set(), (1, os.getpid()), os.getuid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in spared:
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as status:
                state = status.read().rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if state not in (b"Z", b"X"):
            found.add(int(name))
    return found


def kill_all() -> tuple[int, int]:
    """End every process of the session user but init and this agent; answers how many were ended,
    and how many still ran after KILL_WAIT_S.

    One kill(-1, SIGKILL), repeated until /proc shows no one left, rather than a kill per tree cgroup:
    it reaches exactly the processes the agent may signal, all of the session's but init (pid 1, which
    the kernel spares) and the agent itself, wherever they are (in a tree's cgroup, moved out of it,
    started by `runc exec`, or on a host without cgroups for trees), and the kernel makes it atomic
    against fork, so a fork bomb cannot outrun it. The agent's threads (calls in flight, link relays)
    are the agent and carry on; what it started ends like the rest: a command in flight answers
    exit code 137, a background process is listed as ended by signal 9, and a code kernel is started
    again by the next run_code, whose answer says kernel_restarted.
    """
    ended: set[int] = set()
    deadline = time.monotonic() + KILL_WAIT_S
    while (alive := other_processes()) and time.monotonic() < deadline:
        ended |= alive
        try:
            os.kill(-1, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(KILL_ROUND_S)
    TREES.sweep()
    return len(ended), len(alive)
