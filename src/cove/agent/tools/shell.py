"""The `shell` tool: run a command with bash, bounded in time and in output.

A command that never ends is killed with its whole process tree at the timeout (../process_trees.py);
a command that prints without end is cut at the output limit while it keeps being drained, so it
cannot block on a full pipe; background children that keep the pipes open do not hold the answer
back, and keep running after it.
"""

import json
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import process_trees
from ..answer_size import WIRE_BUDGET_BYTES, cut_to_fit
from ..environment import user_environment
from . import Tool, ToolError

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


def drain(stream: Any) -> None:
    with stream:
        while stream.read1(65536):
            pass


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

    Shared by every tool that runs commands, so they agree on the shell, the working directory, the
    environment and on the words for a bad cwd.
    """
    try:
        return process_trees.popen(
            label,
            ["/bin/bash", "-c", command] if os.path.exists("/bin/bash") else ["/bin/sh", "-c", command],
            cwd=cwd or os.environ.get("HOME") or "/",
            env=user_environment(envs),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=preexec_fn,
        )
    except FileNotFoundError:
        raise ToolError(f"cwd '{cwd}' does not exist") from None
    except NotADirectoryError:
        raise ToolError(f"cwd '{cwd}' is not a directory") from None
    except PermissionError as error:
        raise ToolError(f"cannot run in '{cwd}': {error.strerror}") from None


def run_command(command: str, timeout_ms: int, cwd: str | None, envs: dict[str, str]) -> dict[str, Any]:
    """Run `command`; the answer has exit_code, stdout, stderr and what was cut or timed out."""
    process, tree = spawn(
        command,
        cwd,
        envs,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        label="shell",
    )
    assert process.stdout is not None and process.stderr is not None
    stdout_fd, stderr_fd = process.stdout.fileno(), process.stderr.fileno()
    pipes = {stdout_fd: process.stdout, stderr_fd: process.stderr}
    captures = {fd: Capture() for fd in pipes}
    deadline = time.monotonic() + timeout_ms / 1000
    timed_out = False
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in pipes:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > LINGER_SECONDS:
                break
            if now >= deadline:
                timed_out = True
                break
            for key, _ in selector.select(min(deadline - now, LINGER_SECONDS)):
                data = os.read(key.fd, 65536)
                if data:
                    captures[key.fd].add(data)
                else:
                    selector.unregister(key.fd)
        still_open = set(selector.get_map())
    if timed_out or process.poll() is None:
        remaining = max(deadline - time.monotonic(), 0)
        try:
            process.wait(remaining)
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out:
        tree.kill()
        process.wait()
    tree.release()
    for fd, pipe in pipes.items():
        if fd in still_open:
            # Children still hold this pipe: keep draining it, so they neither block nor die of SIGPIPE.
            threading.Thread(target=drain, args=(pipe,), daemon=True).start()
        else:
            pipe.close()
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
    text = json.dumps(answer, ensure_ascii=False)
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
