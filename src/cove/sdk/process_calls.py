"""Background processes in a session, and commands whose output streams as it is produced.

Streaming is long polling: `process_output` answers as soon as the process writes (or after
`wait_ms`), with offsets to ask from next time. `stream_command` is that loop, written once as a
generator of calls that the sync and async clients drive (see `drive` in each client).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from typing import Any

from cove.sdk.core import Call, ResultT
from cove.sdk.models import (
    BoolResult,
    CommandResult,
    KillAllResult,
    ProcessInfo,
    ProcessInfoListResult,
    ProcessOutputResult,
    ProcessResult,
    Result,
)
from cove.sdk.tool_calls import ANSWER_MARGIN_S, read_call

POLL_WAIT_MS = 20_000
"""How long one output poll may wait for the process to write."""
OutputCallback = Callable[[str], None]
CallPlan = Generator[Call[Any], Result, ResultT]
"""A sequence of calls, each chosen from the result of the one before, ending in a result."""


def _json_call(
    session_id: str,
    tool: str,
    arguments: dict[str, Any],
    result_type: type[ResultT],
    read: Callable[[Any], ResultT],
    timeout_s: float | None = None,
) -> Call[ResultT]:
    return read_call(session_id, tool, arguments, result_type, lambda text: read(json.loads(text)), timeout_s)


def _given(**arguments: Any) -> dict[str, Any]:
    return {name: value for name, value in arguments.items() if value is not None}


def start(
    session_id: str,
    command: str,
    cwd: str | None = None,
    envs: dict[str, str] | None = None,
    pty: bool = False,
    cols: int | None = None,
    rows: int | None = None,
) -> Call[ProcessResult]:
    arguments = _given(command=command, cwd=cwd, envs=envs or None, pty=pty or None, cols=cols, rows=rows)
    return _json_call(
        session_id,
        "process_start",
        arguments,
        ProcessResult,
        lambda answer: ProcessResult(success=True, process_id=answer["process_id"], pid=answer["pid"]),
    )


def output(
    session_id: str, process_id: str, stdout_offset: int = 0, stderr_offset: int = 0, wait_ms: int = 0
) -> Call[ProcessOutputResult]:
    arguments = {
        "process_id": process_id,
        "stdout_offset": stdout_offset,
        "stderr_offset": stderr_offset,
        "wait_ms": wait_ms,
    }
    fields = set(ProcessOutputResult.__dataclass_fields__)
    return _json_call(
        session_id,
        "process_output",
        arguments,
        ProcessOutputResult,
        lambda answer: ProcessOutputResult(success=True, **{k: v for k, v in answer.items() if k in fields}),
        timeout_s=wait_ms / 1000 + ANSWER_MARGIN_S,
    )


def _done(_: Any) -> BoolResult:
    return BoolResult(success=True, data=True)


def write_stdin(session_id: str, process_id: str, data: str, eof: bool = False) -> Call[BoolResult]:
    arguments = _given(process_id=process_id, data=data, eof=eof or None)
    return _json_call(session_id, "process_write", arguments, BoolResult, _done)


def resize(session_id: str, process_id: str, cols: int, rows: int) -> Call[BoolResult]:
    arguments = {"process_id": process_id, "cols": cols, "rows": rows}
    return _json_call(session_id, "process_resize", arguments, BoolResult, _done)


def kill(session_id: str, process_id: str, signal: str = "KILL") -> Call[BoolResult]:
    arguments = {"process_id": process_id, "signal": signal}
    return _json_call(session_id, "process_kill", arguments, BoolResult, _done)


def wait(session_id: str, process_id: str, timeout_ms: int) -> Call[CommandResult]:
    """`success` when it has exited with 0; `timed_out` when it is still running at the timeout."""

    def read(answer: dict[str, Any]) -> CommandResult:
        running, code = bool(answer["running"]), answer.get("exit_code")
        stdout, stderr = str(answer.get("stdout", "")), str(answer.get("stderr", ""))
        return CommandResult(
            success=not running and code == 0,
            output=stdout + stderr,
            stdout=stdout,
            stderr=stderr,
            exit_code=code if isinstance(code, int) else 0,
            timed_out=running,
            error_message="still running at the timeout" if running else (stderr if code else ""),
            stdout_truncated_bytes=int(answer.get("stdout_truncated_bytes", 0)),
            stderr_truncated_bytes=int(answer.get("stderr_truncated_bytes", 0)),
        )

    arguments = {"process_id": process_id, "timeout_ms": timeout_ms}
    return _json_call(
        session_id,
        "process_wait",
        arguments,
        CommandResult,
        read,
        timeout_s=timeout_ms / 1000 + ANSWER_MARGIN_S,
    )


def list_processes(session_id: str) -> Call[ProcessInfoListResult]:
    fields = set(ProcessInfo.__dataclass_fields__)

    def read(answer: list[dict[str, Any]]) -> ProcessInfoListResult:
        processes = [ProcessInfo(**{k: v for k, v in raw.items() if k in fields}) for raw in answer]
        return ProcessInfoListResult(success=True, processes=processes)

    return _json_call(session_id, "process_list", {}, ProcessInfoListResult, read)


def kill_all(session_id: str) -> Call[KillAllResult]:
    """Kill every process of the session but its agent, a fork bomb included."""
    return _json_call(
        session_id,
        "kill_all_processes",
        {},
        KillAllResult,
        lambda answer: KillAllResult(success=True, killed=int(answer["killed"])),
    )


def _failure(result: Result) -> CommandResult:
    return CommandResult(
        request_id=result.request_id,
        success=False,
        code=result.code,
        error_message=result.error_message,
        http_status_code=result.http_status_code,
        exit_code=1,
    )


def stream_command(
    session_id: str,
    command: str,
    timeout_ms: int,
    cwd: str | None,
    envs: dict[str, str] | None,
    on_stdout: OutputCallback | None,
    on_stderr: OutputCallback | None,
) -> CallPlan[CommandResult]:
    """Run `command` as a background process, handing its output to the callbacks as it comes.

    The answer is shaped like a plain `execute_command`'s: at the timeout the process is killed with
    every process it started and `timed_out` is set.
    """
    started = yield start(session_id, command, cwd, envs)
    if not isinstance(started, ProcessResult) or not started.success:
        return _failure(started)
    deadline = time.monotonic() + timeout_ms / 1000
    stdout: list[str] = []
    stderr: list[str] = []
    offsets = (0, 0)
    while True:
        wait_ms = max(0, min(POLL_WAIT_MS, int((deadline - time.monotonic()) * 1000)))
        polled = yield output(session_id, started.process_id, *offsets, wait_ms=wait_ms)
        if not isinstance(polled, ProcessOutputResult) or not polled.success:
            return _failure(polled)
        for text, sink, callback in ((polled.stdout, stdout, on_stdout), (polled.stderr, stderr, on_stderr)):
            if text:
                sink.append(text)
                if callback:
                    callback(text)
        offsets = (polled.stdout_offset, polled.stderr_offset)
        if not polled.running:
            break
        if time.monotonic() >= deadline:
            yield kill(session_id, started.process_id)
            break
    out, err = "".join(stdout), "".join(stderr)
    timed_out = polled.running
    code = 124 if timed_out else (polled.exit_code or 0)
    message = (
        f"command timed out after {timeout_ms} ms; it was killed with every process it started"
        if timed_out
        else err
    )
    return CommandResult(
        request_id=polled.request_id,
        success=code == 0,
        output=out + err,
        stdout=out,
        stderr=err,
        exit_code=code,
        timed_out=timed_out,
        error_message="" if code == 0 else message,
    )
