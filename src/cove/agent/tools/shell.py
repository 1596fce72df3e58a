"""The `shell` tool: run a command with bash, bounded in time and in output.

A command that never ends is killed with its whole process tree at the timeout (../process_trees.py);
a command that prints without end is cut at the output limit while it keeps being drained, so it
cannot block on a full pipe; background children that keep the pipes open do not hold the answer
back, and keep running after it.
"""

from __future__ import annotations

import _thread
import os
import select
import time

from .. import process_trees, wire_json
from ..answer_size import WIRE_BUDGET_BYTES, cut_to_fit
from ..environment import user_environment
from . import Tool, ToolError

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: `typing` and `subprocess` are most of a small agent
    import subprocess
    from collections.abc import Callable
    from typing import Any

DEFAULT_TIMEOUT_MS = 50_000
OUTPUT_LIMIT_BYTES = int(os.environ.get("COVE_OUTPUT_LIMIT_BYTES", 10 * 1024 * 1024))
LINGER_SECONDS = 0.05
"""How long to keep reading after the command exited, for output its children still write."""
TIMEOUT_EXIT_CODE = 124


class Capture:
    """One output stream, kept up to the limit and counted beyond it."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.kept = 0
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = max(OUTPUT_LIMIT_BYTES - self.kept, 0)
        self.chunks.append(data[:room])
        self.kept += min(len(data), room)
        self.dropped += max(len(data) - room, 0)

    def text(self) -> str:
        """What was kept, cut further where its escaped form would not fit WIRE_BUDGET_BYTES."""
        text, cut = cut_to_fit(b"".join(self.chunks), WIRE_BUDGET_BYTES)
        self.dropped += cut
        return text


def drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    finally:
        os.close(fd)


def shell_argv(command: str) -> list[str]:
    return ["/bin/bash", "-c", command] if os.path.exists("/bin/bash") else ["/bin/sh", "-c", command]


def start_error(error: OSError, cwd: str | None) -> OSError | ToolError:
    """What the caller sees of a command that could not start: the words for a bad cwd."""
    if isinstance(error, FileNotFoundError):
        return ToolError(f"cwd '{cwd}' does not exist")
    if isinstance(error, NotADirectoryError):
        return ToolError(f"cwd '{cwd}' is not a directory")
    if isinstance(error, PermissionError):
        return ToolError(f"cannot run in '{cwd}': {error.strerror}")
    return error


def spawn(
    command: str,
    cwd: str | None,
    envs: dict[str, str],
    stdin: int,
    stdout: int,
    stderr: int,
    label: str,
    preexec_fn: Callable[[], None] | None = None,
) -> tuple[subprocess.Popen[bytes], process_trees.ProcessTree]:
    """Start `command` with bash as a process tree of its own, whose cgroup is named after `label`.

    Shared by every tool that runs commands but `shell` (which starts its own without `subprocess`),
    so they agree on the shell, the working directory, the environment and on the words for a bad cwd.
    """
    try:
        return process_trees.popen(
            label,
            shell_argv(command),
            cwd=cwd or os.environ.get("HOME") or "/",
            env=user_environment(envs),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=preexec_fn,
        )
    except OSError as error:
        raise start_error(error, cwd) from None


def exec_environment(argv: list[str], env: dict[str, str]) -> dict[bytes, bytes]:
    """`env` for execve, refused here, as subprocess refuses it, if execve could not take it."""
    encoded = {os.fsencode(name): os.fsencode(value) for name, value in env.items()}
    if any(b"=" in name for name in encoded):
        raise ValueError("illegal environment variable name")
    if any(b"\0" in part for pair in encoded.items() for part in pair) or any("\0" in a for a in argv):
        raise ValueError("embedded null byte")
    return encoded


def run_command(command: str, timeout_ms: int, cwd: str | None, envs: dict[str, str]) -> dict[str, Any]:
    """Run `command`; the answer has exit_code, stdout, stderr and what was cut or timed out."""
    argv = shell_argv(command)
    env = exec_environment(argv, user_environment(envs))
    stdout_fd, stdout_end = os.pipe()
    stderr_fd, stderr_end = os.pipe()
    stdin = os.open(os.devnull, os.O_RDONLY)
    try:
        process, tree = process_trees.spawn(
            "shell", argv, cwd or os.environ.get("HOME") or "/", env, (stdin, stdout_end, stderr_end)
        )
    except BaseException as error:
        os.close(stdout_fd)
        os.close(stderr_fd)
        if isinstance(error, OSError):
            raise start_error(error, cwd) from None
        raise
    finally:
        for fd in (stdin, stdout_end, stderr_end):
            os.close(fd)
    captures = {stdout_fd: Capture(), stderr_fd: Capture()}
    still_open = set(captures)
    deadline = time.monotonic() + timeout_ms / 1000
    timed_out = False
    exited_at: float | None = None
    poller = select.poll()
    for fd in captures:
        poller.register(fd, select.POLLIN)
    while still_open:
        now = time.monotonic()
        if exited_at is None and process.poll() is not None:
            exited_at = now
        if exited_at is not None and now - exited_at > LINGER_SECONDS:
            break
        if now >= deadline:
            timed_out = True
            break
        for fd, _ in poller.poll(min(deadline - now, LINGER_SECONDS) * 1000):
            data = os.read(fd, 65536)
            if data:
                captures[fd].add(data)
            else:
                poller.unregister(fd)
                still_open.discard(fd)
    if (timed_out or process.poll() is None) and process.wait(max(deadline - time.monotonic(), 0)) is None:
        timed_out = True
    if timed_out:
        tree.kill()
        process.wait()
    tree.release()
    for fd in captures:
        if fd in still_open:
            # Children still hold this pipe: keep draining it, so they neither block nor die of SIGPIPE.
            _thread.start_new_thread(drain, (fd,))
        else:
            os.close(fd)
    out, err = captures[stdout_fd], captures[stderr_fd]
    answer: dict[str, Any] = {
        "exit_code": TIMEOUT_EXIT_CODE if timed_out else process.returncode,
        "stdout": out.text(),
        "stderr": err.text(),
    }
    if timed_out:
        answer["timed_out"] = True
        answer["error"] = (
            f"command timed out after {timeout_ms} ms; it was killed with every process it started"
        )
    for name, capture in (("stdout", out), ("stderr", err)):
        if capture.dropped:
            answer[f"{name}_truncated_bytes"] = capture.dropped
    return answer


def shell(arguments: dict[str, Any]) -> str:
    answer = run_command(
        arguments["command"],
        arguments.get("timeout_ms", DEFAULT_TIMEOUT_MS),
        arguments.get("cwd"),
        arguments.get("envs") or {},
    )
    text = wire_json.dumps(answer, ensure_ascii=False)
    if answer["exit_code"] != 0:
        raise ToolError(text)
    return text


TOOLS = [
    Tool(
        name="shell",
        description=(
            "Run a command with bash as the session user. Answers JSON with exit_code, stdout and "
            "stderr; a non-zero exit code is an error. Output beyond the limit is cut and counted in "
            "stdout_truncated_bytes / stderr_truncated_bytes; at the timeout the command is killed with "
            "every process it started and timed_out is true; what it starts in the background and "
            "leaves running when it exits keeps running."
        ),
        run=shell,
        properties={
            "command": {"type": "string", "description": "the command line, run by bash -c"},
            "timeout_ms": {"type": "integer", "minimum": 1, "description": "default 50000"},
            "cwd": {"type": "string", "description": "working directory, default the home directory"},
            "envs": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "extra environment variables",
            },
        },
        required=("command",),
    )
]
