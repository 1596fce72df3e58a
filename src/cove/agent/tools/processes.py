"""Background processes: start a command, read its output while it runs, write to it, signal it.

A process runs with its output on pipes, or on a pseudo-terminal for interactive programs (a shell,
an editor). One reader thread drains every process's output into buffers that keep the most recent
bytes, addressed by absolute offsets, so a client streams output by long-polling `process_output`
with the offsets of its last answer. Finished processes stay listed, so their output can still be
read, until newer ones push them out.
"""

import collections
import contextlib
import fcntl
import functools
import json
import os
import select
import selectors
import signal
import struct
import subprocess
import termios
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..answer_size import WIRE_BUDGET_BYTES, cut_to_fit
from ..process_trees import ProcessTree, kill_all
from . import Tool, ToolError
from .shell import OUTPUT_LIMIT_BYTES, spawn

MAX_RUNNING = 256
MAX_FINISHED = 64
"""Finished processes kept for their output; the one that finished first goes first."""
MAX_WAIT_MS = 60_000
"""Longest long-poll of process_output; the host gives a tool call about this long."""
DEFAULT_WAIT_TIMEOUT_MS = 50_000
MAX_TERMINAL_SIDE = 65_535
"""A terminal's columns and rows are unsigned shorts in the kernel."""
WRITE_TIMEOUT_S = 10.0
"""How long process_write waits for a process that does not read its input."""
READ_CHUNK_BYTES = 65_536
EXIT_DRAIN_BYTES = 1024 * 1024
"""What a process wrote before it exited is in its pipe (at most 1 MiB, Linux's largest pipe for a
user); reading this much at its exit gets all of it, even while a child it left behind keeps writing."""
EXIT_POLL_INTERVAL_S = 0.1
"""How often exits are looked for where the kernel has no pidfd (before Linux 5.3)."""
STREAMS = ("stdout", "stderr")
SIGNALS = ("TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2")
TERMINAL_TYPE = "xterm-256color"


class OutputBuffer:
    """The most recent bytes of one output stream; offsets count bytes since the process started."""

    def __init__(self) -> None:
        self.start = 0
        self.data = bytearray()

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        excess = len(self.data) - OUTPUT_LIMIT_BYTES
        if excess > 0:
            del self.data[:excess]  # cheap: a bytearray drops its front without moving the rest
            self.start += excess

    def readable_end(self, complete: bool) -> int:
        """The end of what can be returned: before a character still being written, unless complete."""
        return self.end if complete else self.end - incomplete_tail(self.data)

    def read(self, offset: int, complete: bool, keep_end: bool = False) -> tuple[str, int, int]:
        """The text after `offset`, the offset where it starts and the offset after it.

        As much as fits an answer once escaped: its start (the offset after it says where to go on),
        or with keep_end its end (for an answer that has no next read).
        """
        begin = max(offset, self.start)
        stop = max(self.readable_end(complete), begin)
        text, cut = cut_to_fit(
            bytes(self.data[begin - self.start : stop - self.start]), WIRE_BUDGET_BYTES, keep_end
        )
        return (text, begin + cut, stop) if keep_end else (text, begin, stop - cut)


def incomplete_tail(data: bytearray) -> int:
    """How many bytes at the end start a UTF-8 character whose remaining bytes have not come yet."""
    for back in range(1, min(len(data), 4) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the last character starts here
            length = (
                2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
            )
            return back if back < length else 0
    return 0


@dataclass(eq=False)
class ManagedProcess:
    """A started process, what it printed, its input, and its exit code once it has been reaped."""

    process_id: str
    command: str
    pty: bool
    popen: subprocess.Popen[bytes]
    tree: ProcessTree
    input_fd: int | None
    """stdin's pipe, or a duplicate of the pty master; closed under the table's lock, at eof or exit."""
    output_fds: dict[str, int]
    """Owned by the reader thread, which closes each at the end of its stream."""
    pidfd: int | None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    buffers: dict[str, OutputBuffer] = field(
        default_factory=lambda: {stream: OutputBuffer() for stream in STREAMS}
    )
    exit_code: int | None = None
    evicted: bool = False
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    """Keeps two writes from interleaving."""

    @property
    def running(self) -> bool:
        return self.exit_code is None

    def close_input(self) -> None:
        if self.input_fd is not None:
            os.close(self.input_fd)
            self.input_fd = None

    def describe(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id,
            "pid": self.popen.pid,
            "command": self.command,
            "pty": self.pty,
            "running": self.running,
            "exit_code": self.exit_code,
            "started_at": self.started_at,
        }


class ProcessTable:
    """The session's processes; one lock guards them, and `changed` wakes whoever waits for output."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.processes: dict[str, ManagedProcess] = {}
        self.finished: collections.deque[str] = collections.deque()
        self.next_number = 1
        self.reader: OutputReader | None = None

    def get(self, process_id: str) -> ManagedProcess:
        """Call with the lock held."""
        record = self.processes.get(process_id)
        if record is None:
            raise ToolError(f"no process '{process_id}'; process_list shows the session's processes")
        return record

    def start(
        self, command: str, cwd: str | None, envs: dict[str, str], size: tuple[int, int] | None
    ) -> dict[str, Any]:
        """Start `command` on pipes, or on a pty of `size` (cols, rows); answers its process_id and pid.

        The lock is held while forking, so the limit on running processes is exact.
        """
        with self.lock:
            if sum(record.running for record in self.processes.values()) >= MAX_RUNNING:
                raise ToolError(
                    f"{MAX_RUNNING} processes are running already, the most a session may have; "
                    "end one with process_kill first"
                )
            try:
                if size is None:
                    popen, tree, input_fd, output_fds = spawn_with_pipes(command, cwd, envs)
                else:
                    popen, tree, input_fd, output_fds = spawn_on_terminal(command, cwd, envs, size)
            except OSError as error:
                raise ToolError(f"cannot start a process: {error.strerror}") from None
            process_id = f"p-{self.next_number}"
            self.next_number += 1
            record = ManagedProcess(
                process_id,
                command,
                size is not None,
                popen,
                tree,
                input_fd,
                output_fds,
                open_pidfd(popen.pid),
            )
            self.processes[process_id] = record
            if self.reader is None:
                self.reader = OutputReader(self)
            self.reader.watch(record)
            return {"process_id": process_id, "pid": popen.pid}

    def append(self, record: ManagedProcess, stream: str, data: bytes) -> None:
        with self.lock:
            if not record.evicted:
                record.buffers[stream].add(data)
                self.changed.notify_all()

    def finish(self, record: ManagedProcess) -> None:
        """Reap a process whose output has been read to its exit, wake its waiters, evict the oldest."""
        with self.lock:
            record.exit_code = exit_status(record.popen.wait())
            record.close_input()
            record.tree.release()
            self.finished.append(record.process_id)
            while len(self.finished) > MAX_FINISHED:
                evicted = self.processes.pop(self.finished.popleft())
                evicted.evicted = True
                evicted.buffers = {stream: OutputBuffer() for stream in evicted.buffers}  # frees its memory
            self.changed.notify_all()

    def output(self, process_id: str, offsets: dict[str, int], wait_ms: int) -> dict[str, Any]:
        """The output after `offsets`; waits up to wait_ms for some while there is none and it runs."""
        deadline = time.monotonic() + wait_ms / 1000
        with self.lock:
            record = self.get(process_id)
            for stream, offset in offsets.items():
                end = record.buffers[stream].end
                if offset > end:
                    raise ToolError(
                        f"{stream}_offset {offset} is beyond the {end} bytes {process_id} has printed "
                        "there; pass the offsets of the previous answer"
                    )
            while record.running and not has_new_output(record, offsets):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.changed.wait(remaining)
            out, err = (
                record.buffers[stream].read(offsets[stream], not record.running) for stream in STREAMS
            )
            return {
                "stdout": out[0],
                "stderr": err[0],
                "stdout_offset": out[2],
                "stderr_offset": err[2],
                "running": record.running,
                "exit_code": record.exit_code,
                "stdout_skipped": out[1] - offsets["stdout"],
                "stderr_skipped": err[1] - offsets["stderr"],
            }

    def wait(self, process_id: str, timeout_ms: int) -> dict[str, Any]:
        """Everything still buffered, once the process has exited or the timeout has passed."""
        with self.lock:
            record = self.get(process_id)
            self.changed.wait_for(lambda: not record.running, timeout_ms / 1000)
            answer: dict[str, Any] = {"running": record.running, "exit_code": record.exit_code}
            for stream, buffer in record.buffers.items():
                answer[stream], begin, _ = buffer.read(buffer.start, not record.running, keep_end=True)
                answer[f"{stream}_truncated_bytes"] = begin
            return answer

    def write(self, process_id: str, data: bytes, eof: bool) -> None:
        with self.lock:
            record = self.get(process_id)
            if eof and record.pty:
                raise ToolError("eof is for processes on pipes; on a pty write '\\u0004' (Ctrl-D) instead")
            self.writable_input(record)
        with record.write_lock:
            self.write_all(record, data)
            if eof:
                with self.lock:
                    record.close_input()

    def writable_input(self, record: ManagedProcess) -> int:
        """Call with the lock held: the input's descriptor, or why there is none."""
        if not record.running:
            raise ToolError(
                f"{record.process_id} has exited (exit code {record.exit_code}); it reads no input"
            )
        if record.input_fd is None:
            raise ToolError(f"the input of {record.process_id} was closed (eof)")
        return record.input_fd

    def write_all(self, record: ManagedProcess, data: bytes) -> None:
        """Write in non-blocking pieces, each under the lock, so the input cannot be closed under a write;
        between pieces wait, without the lock, for the process to read."""
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        rest = memoryview(data)
        while True:
            with self.lock:
                fd = self.writable_input(record)
                try:
                    rest = rest[os.write(fd, rest) :]
                except BlockingIOError:
                    pass
                except OSError as error:
                    raise ToolError(f"cannot write to {record.process_id}: {error.strerror}") from None
            if not rest:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ToolError(
                    f"{record.process_id} read {len(data) - len(rest)} of {len(data)} bytes in "
                    f"{WRITE_TIMEOUT_S:g} s and no more; it is not reading its input"
                )
            writable = select.poll()
            writable.register(fd, select.POLLOUT)
            writable.poll(min(remaining, 0.1) * 1000)  # short: the input may be closed meanwhile

    def resize(self, process_id: str, cols: int, rows: int) -> None:
        with self.lock:
            record = self.get(process_id)
            if not record.pty:
                raise ToolError(f"{process_id} has no terminal to resize; start it with pty true")
            set_window_size(self.writable_input(record), cols, rows)

    def kill(self, process_id: str, name: str) -> dict[str, Any]:
        """Signal a process's tree: by cgroup even after the process itself has exited, by process group
        only while it runs, under the lock, so that a reaped pid is never signalled."""
        with self.lock:
            record = self.get(process_id)
            if record.running or record.tree.cgroup is not None:
                if name == "KILL":
                    record.tree.kill()
                else:
                    record.tree.signal(signal.Signals[f"SIG{name}"])
            return {
                "process_id": process_id,
                "signal": name,
                "had_exited": not record.running,
                "exit_code": record.exit_code,
            }

    def describe_all(self) -> list[dict[str, Any]]:
        with self.lock:
            return [record.describe() for record in self.processes.values()]


def has_new_output(record: ManagedProcess, offsets: dict[str, int]) -> bool:
    return any(
        record.buffers[stream].readable_end(complete=False) > offset for stream, offset in offsets.items()
    )


def exit_status(returncode: int) -> int:
    """As a shell reports it: 128 plus the signal for a process a signal ended."""
    return 128 - returncode if returncode < 0 else returncode


class OutputReader:
    """One thread that reads every process's output and notices every exit, so a process costs no thread
    (threads count against the session's process limit)."""

    def __init__(self, table: ProcessTable) -> None:
        self.table = table
        self.selector = selectors.DefaultSelector()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        self.selector.register(self.wake_read, selectors.EVENT_READ, self.take_new)
        self.new: list[ManagedProcess] = []
        """Handed over under the table's lock; only this thread touches the selector."""
        self.polled: list[ManagedProcess] = []
        """Processes without a pidfd, whose exit is looked for every EXIT_POLL_INTERVAL_S."""
        threading.Thread(target=self.run, name="cove-process-output", daemon=True).start()

    def watch(self, record: ManagedProcess) -> None:
        """Call with the table's lock held."""
        self.new.append(record)
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes the thread as well
            os.write(self.wake_write, b"\0")

    def run(self) -> None:
        while True:
            timeout = EXIT_POLL_INTERVAL_S if self.polled else None
            for key, _ in self.selector.select(timeout):
                self.call(key.data)
            for record in [record for record in self.polled if has_exited(record)]:
                self.polled.remove(record)
                self.call(functools.partial(self.exited, record))

    @staticmethod
    def call(callback: Callable[[], object]) -> None:
        try:
            callback()
        except Exception:  # a bug must not stop the output of every process
            traceback.print_exc()

    def take_new(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_read, 4096):
                pass
        with self.table.lock:
            new, self.new = self.new, []
        for record in new:
            for stream, fd in record.output_fds.items():
                self.selector.register(fd, selectors.EVENT_READ, functools.partial(self.read, record, stream))
            if record.pidfd is None:
                self.polled.append(record)
            else:
                self.selector.register(
                    record.pidfd, selectors.EVENT_READ, functools.partial(self.exited, record)
                )

    def read(self, record: ManagedProcess, stream: str) -> int:
        """Read what `stream` has now; answers how many bytes (0 if none yet, or at its end)."""
        fd = record.output_fds.get(stream)
        if fd is None:
            return 0  # ended earlier in this round
        try:
            data = os.read(fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return 0
        except OSError:  # EIO: a pty whose last process closed it
            data = b""
        if not data:
            self.selector.unregister(fd)
            os.close(record.output_fds.pop(stream))
            return 0
        self.table.append(record, stream, data)
        return len(data)

    def exited(self, record: ManagedProcess) -> None:
        """Read what the process wrote before it exited, then report it ended."""
        if record.pidfd is not None:
            self.selector.unregister(record.pidfd)
            os.close(record.pidfd)
        for stream in list(record.output_fds):
            drained = 0
            while drained < EXIT_DRAIN_BYTES and (count := self.read(record, stream)):
                drained += count
        self.table.finish(record)


def open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits, so exits need no polling; None if the kernel
    has none (before Linux 5.3)."""
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def has_exited(record: ManagedProcess) -> bool:
    """Without reaping it: only the table reaps, under its lock, so a signal never reaches a reused pid."""
    return os.waitid(os.P_PID, record.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def spawn_with_pipes(
    command: str, cwd: str | None, envs: dict[str, str]
) -> tuple[subprocess.Popen[bytes], ProcessTree, int, dict[str, int]]:
    """Start `command` with pipes for stdin, stdout and stderr; answers it, its tree, stdin and the
    outputs."""
    with contextlib.ExitStack() as on_failure:
        stdin_read, stdin_write = pipe(on_failure)
        stdout_read, stdout_write = pipe(on_failure)
        stderr_read, stderr_write = pipe(on_failure)
        popen, tree = spawn(
            command, cwd, envs, stdin=stdin_read, stdout=stdout_write, stderr=stderr_write, label="process"
        )
        on_failure.pop_all()
    for fd in (stdin_read, stdout_write, stderr_write):
        os.close(fd)
    for fd in (stdin_write, stdout_read, stderr_read):
        os.set_blocking(fd, False)
    return popen, tree, stdin_write, {"stdout": stdout_read, "stderr": stderr_read}


def pipe(on_failure: contextlib.ExitStack) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    on_failure.callback(os.close, read_end)
    on_failure.callback(os.close, write_end)
    return read_end, write_end


def spawn_on_terminal(
    command: str, cwd: str | None, envs: dict[str, str], size: tuple[int, int]
) -> tuple[subprocess.Popen[bytes], ProcessTree, int, dict[str, int]]:
    """Start `command` on a new pty, as its controlling terminal; answers it, its tree, the input and
    the output.

    The master is read by the reader thread and written through a duplicate, so closing one never
    pulls the descriptor from under the other.
    """
    with contextlib.ExitStack() as on_failure:
        master, terminal = os.openpty()
        on_failure.callback(os.close, master)
        on_failure.callback(os.close, terminal)
        input_fd = os.dup(master)
        on_failure.callback(os.close, input_fd)
        set_window_size(master, *size)
        popen, tree = spawn(
            command,
            cwd,
            {"TERM": TERMINAL_TYPE, **envs},
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            label="terminal",
            preexec_fn=take_terminal,
        )
        on_failure.pop_all()
    os.close(terminal)
    os.set_blocking(master, False)  # the duplicate shares this flag
    return popen, tree, input_fd, {"stdout": master}


def take_terminal() -> None:
    """Runs in the child between fork and exec, after setsid: make its stdin, the pty, the controlling
    terminal of its new session, so Ctrl-C, job control and SIGWINCH reach its foreground group."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_window_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


PROCESSES = ProcessTable()


def holds_state() -> bool:
    """A process, running or finished with output still to read, keeps the agent alive."""
    with PROCESSES.lock:
        return bool(PROCESSES.processes)


def process_start(arguments: dict[str, Any]) -> str:
    size = None
    if arguments.get("pty", False):
        size = (arguments.get("cols", 80), arguments.get("rows", 24))
        check_terminal_size(*size)
    elif "cols" in arguments or "rows" in arguments:
        raise ToolError("cols and rows are the size of a terminal; pass pty true to get one")
    answer = PROCESSES.start(arguments["command"], arguments.get("cwd"), arguments.get("envs") or {}, size)
    return json.dumps(answer)


def check_terminal_size(cols: int, rows: int) -> None:
    if cols > MAX_TERMINAL_SIDE or rows > MAX_TERMINAL_SIDE:
        raise ToolError(f"cols and rows are at most {MAX_TERMINAL_SIDE}")


def process_output(arguments: dict[str, Any]) -> str:
    wait_ms = arguments.get("wait_ms", 0)
    if wait_ms > MAX_WAIT_MS:
        raise ToolError(
            f"wait_ms is {wait_ms}; the most is {MAX_WAIT_MS}: call process_output again to wait longer"
        )
    offsets = {stream: arguments.get(f"{stream}_offset", 0) for stream in STREAMS}
    return json.dumps(PROCESSES.output(arguments["process_id"], offsets, wait_ms), ensure_ascii=False)


def process_write(arguments: dict[str, Any]) -> str:
    try:
        data = arguments["data"].encode()
    except UnicodeEncodeError:
        raise ToolError("data must be valid Unicode text (it has a lone surrogate)") from None
    eof = arguments.get("eof", False)
    PROCESSES.write(arguments["process_id"], data, eof)
    return json.dumps({"process_id": arguments["process_id"], "bytes_written": len(data), "eof": eof})


def process_resize(arguments: dict[str, Any]) -> str:
    cols, rows = arguments["cols"], arguments["rows"]
    check_terminal_size(cols, rows)
    PROCESSES.resize(arguments["process_id"], cols, rows)
    return json.dumps({"process_id": arguments["process_id"], "cols": cols, "rows": rows})


def process_kill(arguments: dict[str, Any]) -> str:
    return json.dumps(PROCESSES.kill(arguments["process_id"], arguments.get("signal", "KILL")))


def process_wait(arguments: dict[str, Any]) -> str:
    answer = PROCESSES.wait(arguments["process_id"], arguments.get("timeout_ms", DEFAULT_WAIT_TIMEOUT_MS))
    return json.dumps(answer, ensure_ascii=False)


def process_list(arguments: dict[str, Any]) -> str:
    return json.dumps(PROCESSES.describe_all(), ensure_ascii=False)


def kill_all_processes(arguments: dict[str, Any]) -> str:
    killed, remaining = kill_all()
    if remaining:
        raise ToolError(f"{killed} processes were killed, but {remaining} still ran after the kill")
    return json.dumps({"killed": killed})


PROCESS_ID = {"type": "string", "description": "the process_id that process_start answered, e.g. p-1"}
TERMINAL_SIDE = {"type": "integer", "minimum": 1}

TOOLS = [
    Tool(
        name="process_start",
        description=(
            "Start a command with bash in the background and answer at once with its process_id; read "
            "its output with process_output, write to it with process_write, end it with process_kill. "
            "With pty true it runs on a terminal, for interactive programs such as a shell."
        ),
        run=process_start,
        properties={
            "command": {"type": "string", "description": "the command line, run by bash -c"},
            "cwd": {"type": "string", "description": "working directory, default the home directory"},
            "envs": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "extra environment variables",
            },
            "pty": {
                "type": "boolean",
                "description": "run on a pseudo-terminal (TERM=xterm-256color); stdout has all output",
            },
            "cols": TERMINAL_SIDE | {"description": "terminal width, default 80 (pty only)"},
            "rows": TERMINAL_SIDE | {"description": "terminal height, default 24 (pty only)"},
        },
        required=("command",),
    ),
    Tool(
        name="process_output",
        description=(
            "Read a background process's output after the given byte offsets; pass the stdout_offset and "
            "stderr_offset of the previous answer to get only what is new. With wait_ms it waits until "
            "there is new output or the process exits. An answer holds what fits the wire (about 32 MiB "
            "per stream once JSON-escaped); the offsets then say where the rest begins."
        ),
        run=process_output,
        properties={
            "process_id": PROCESS_ID,
            "stdout_offset": {"type": "integer", "minimum": 0, "description": "default 0"},
            "stderr_offset": {"type": "integer", "minimum": 0, "description": "default 0"},
            "wait_ms": {
                "type": "integer",
                "minimum": 0,
                "description": f"how long to wait for new output, default 0, at most {MAX_WAIT_MS}",
            },
        },
        required=("process_id",),
    ),
    Tool(
        name="process_write",
        description=(
            "Write text to a background process's standard input, or type it on its terminal "
            "(\\r is Enter, \\u0003 is Ctrl-C, \\u0004 is Ctrl-D). eof true closes standard input "
            "afterwards (not on a pty)."
        ),
        run=process_write,
        properties={
            "process_id": PROCESS_ID,
            "data": {"type": "string", "description": "the text to write, as UTF-8"},
            "eof": {"type": "boolean", "description": "close standard input after writing, default false"},
        },
        required=("process_id", "data"),
    ),
    Tool(
        name="process_resize",
        description="Change the terminal size of a process started with pty true; its program gets SIGWINCH.",
        run=process_resize,
        properties={
            "process_id": PROCESS_ID,
            "cols": TERMINAL_SIDE | {"description": "terminal width"},
            "rows": TERMINAL_SIDE | {"description": "terminal height"},
        },
        required=("process_id", "cols", "rows"),
    ),
    Tool(
        name="process_kill",
        description=(
            "Send a signal to a background process and every process it started (its process tree, "
            "setsid and double forks included), default KILL; the tree is signalled even after the "
            "process itself has exited. A process that had already exited is not an error: the "
            "answer says had_exited."
        ),
        run=process_kill,
        properties={
            "process_id": PROCESS_ID,
            "signal": {"type": "string", "enum": list(SIGNALS), "description": "default KILL"},
        },
        required=("process_id",),
    ),
    Tool(
        name="process_wait",
        description=(
            "Wait up to timeout_ms for a background process to exit; answers running, exit_code and all "
            "of its output still kept (its newest part, where more would not fit the wire once "
            "JSON-escaped; stdout_truncated_bytes / stderr_truncated_bytes count what is left out "
            "before it). Still running at the timeout is not an error."
        ),
        run=process_wait,
        properties={
            "process_id": PROCESS_ID,
            "timeout_ms": {"type": "integer", "minimum": 1, "description": "default 50000"},
        },
        required=("process_id",),
    ),
    Tool(
        name="process_list",
        description=(
            "List the session's background processes, running and recently finished, with their "
            "process_id, command, exit_code and start time."
        ),
        run=process_list,
    ),
    Tool(
        name="kill_all_processes",
        description=(
            "Kill every process of the session user at once (commands, background processes, code "
            "kernels, and whatever they started, a fork bomb included), all but the session's own "
            "agent, which goes on serving. Answers how many processes were killed."
        ),
        run=kill_all_processes,
    ),
]
