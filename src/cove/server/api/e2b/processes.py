"""envd's `process.Process` service on the agent's background processes (agent/tools/processes.py).

A process is known to E2B by its pid in the sandbox, to the agent by its process_id; the agent's
process_list pairs them. Output streams by long-polling process_output, as Cove's own SDK does. A
PTY is a process the agent started on a terminal: its output (the agent's stdout) goes to E2B as
`pty` data, and its input is typed on the terminal.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import shlex
from collections.abc import AsyncIterator
from typing import Any

from cove.server.api.e2b.connect import ConnectError, Message
from cove.server.api.e2b.envd import ClientStreaming, Sandbox, Streaming, Unary, selected_pid

POLL_WAIT_MS = 20_000
"""How long one output poll waits for the process to write; an empty poll is sent as a keepalive."""
UTF8 = codecs.getincrementaldecoder("utf-8")
SIGNALS = {"SIGNAL_SIGKILL": "KILL", "SIGNAL_SIGTERM": "TERM", 9: "KILL", 15: "TERM"}


async def _process(target: Sandbox, pid: int) -> dict[str, Any]:
    """The agent's description of the running process with this pid."""
    for process in await target.tool("process_list", {}):
        if process["pid"] == pid and process["running"]:
            return dict(process)
    raise ConnectError("not_found", f"process with pid {pid} not found")


async def _process_id(target: Sandbox, pid: int) -> str:
    return str((await _process(target, pid))["process_id"])


async def _events(target: Sandbox, process_id: str, pid: int, on_terminal: bool) -> AsyncIterator[Message]:
    """start, then the output as it comes (from its first byte), then end with the exit code."""
    yield {"event": {"start": {"pid": pid}}}
    offsets = {"stdout_offset": 0, "stderr_offset": 0}
    while True:
        polled = await target.tool(
            "process_output", {"process_id": process_id, **offsets, "wait_ms": POLL_WAIT_MS}
        )
        for stream in ("stdout", "stderr"):
            if polled[stream]:
                data = base64.b64encode(polled[stream].encode()).decode()
                yield {"event": {"data": {"pty" if on_terminal else stream: data}}}
        moved = any(polled[name] != offset for name, offset in offsets.items())
        offsets = {name: polled[name] for name in offsets}
        if not polled["running"] and not moved:
            break
        if not moved:
            yield {"event": {"keepalive": {}}}
    code = polled["exit_code"]
    end: dict[str, Any] = {"exited": True, "status": f"exit status {code}"}
    if code:
        end |= {"exitCode": code, "error": f"exit status {code}"}
    yield {"event": {"end": end}}


async def start(target: Sandbox, message: Message) -> AsyncIterator[Message]:
    config = message.get("process") or {}
    if not isinstance(config.get("cmd"), str):
        raise ConnectError("invalid_argument", "process.cmd is required")
    arguments: dict[str, Any] = {"command": shlex.join([config["cmd"], *config.get("args", [])])}
    if config.get("cwd"):
        arguments["cwd"] = config["cwd"]
    if config.get("envs"):
        arguments["envs"] = config["envs"]
    on_terminal = "pty" in message
    if on_terminal:
        arguments |= {"pty": True, **_terminal_size(message)}
    started = await target.tool("process_start", arguments)
    if not on_terminal and not message.get("stdin"):
        await _close_input(target, started["process_id"])
    async for event in _events(target, started["process_id"], started["pid"], on_terminal):
        yield event


def _terminal_size(message: Message) -> dict[str, int]:
    """A PTY message's size as the agent's cols and rows (envd's default, 80x24, where absent)."""
    size = (message.get("pty") or {}).get("size") or {}
    return {"cols": size.get("cols") or 80, "rows": size.get("rows") or 24}


async def connect(target: Sandbox, message: Message) -> AsyncIterator[Message]:
    pid = selected_pid(message)
    process = await _process(target, pid)
    async for event in _events(target, process["process_id"], pid, process["pty"]):
        yield event


async def list_processes(target: Sandbox, message: Message) -> Message:
    running = [process for process in await target.tool("process_list", {}) if process["running"]]
    return {
        "processes": [
            {"pid": process["pid"], "config": {"cmd": "/bin/bash", "args": ["-c", process["command"]]}}
            for process in running
        ]
    }


def _input_bytes(given: Any) -> bytes:
    """The bytes of a ProcessInput (`{"stdin": b64}` or `{"pty": b64}`)."""
    stream = next((name for name in ("stdin", "pty") if name in (given or {})), None)
    if stream is None:
        raise ConnectError("invalid_argument", "input must hold stdin or pty")
    try:
        return base64.b64decode(given[stream], validate=True)
    except (binascii.Error, TypeError):
        raise ConnectError("invalid_argument", f"input.{stream} must be base64") from None


def _text(data: bytes, decoder: codecs.IncrementalDecoder, final: bool = False) -> str:
    try:
        return decoder.decode(data, final)
    except UnicodeDecodeError:
        raise ConnectError("invalid_argument", "the input must be UTF-8 text") from None


async def send_input(target: Sandbox, message: Message) -> Message:
    data = _text(_input_bytes(message.get("input")), UTF8(), final=True)
    process_id = await _process_id(target, selected_pid(message))
    await target.tool("process_write", {"process_id": process_id, "data": data})
    return {}


async def stream_input(target: Sandbox, messages: AsyncIterator[Message]) -> Message:
    """`start` names the process, then each `data` is written as it arrives (a character split
    between two messages is written whole with the second); `keepalive`s are skipped."""
    first = await anext(messages, None)
    if first is None or "start" not in first:
        raise ConnectError("invalid_argument", "the input stream must begin with a start message")
    process_id = await _process_id(target, selected_pid(first["start"]))
    decoder = UTF8()
    async for message in messages:
        if "data" in message:
            data = _text(_input_bytes((message["data"] or {}).get("input")), decoder)
            if data:
                await target.tool("process_write", {"process_id": process_id, "data": data})
    _text(b"", decoder, final=True)  # refuses a stream that ends inside a character
    return {}


async def _close_input(target: Sandbox, process_id: str) -> None:
    """End the process's stdin; one that has exited already needs nothing."""
    try:
        await target.tool("process_write", {"process_id": process_id, "data": "", "eof": True})
    except ConnectError as error:
        if error.code != "failed_precondition":
            raise


async def close_stdin(target: Sandbox, message: Message) -> Message:
    await _close_input(target, await _process_id(target, selected_pid(message)))
    return {}


async def send_signal(target: Sandbox, message: Message) -> Message:
    signal = SIGNALS.get(message.get("signal", "SIGNAL_SIGKILL"))
    if signal is None:
        raise ConnectError("invalid_argument", "signal must be SIGNAL_SIGKILL or SIGNAL_SIGTERM")
    process_id = await _process_id(target, selected_pid(message))
    await target.tool("process_kill", {"process_id": process_id, "signal": signal})
    return {}


async def update(target: Sandbox, message: Message) -> Message:
    """A PTY's new size; nothing else of a process can be changed."""
    if not message.get("pty"):
        raise ConnectError("invalid_argument", "pty.size is the one thing Update changes")
    process_id = await _process_id(target, selected_pid(message))
    await target.tool("process_resize", {"process_id": process_id, **_terminal_size(message)})
    return {}


UNARY: dict[str, Unary] = {
    "process.Process/Update": update,
    "process.Process/List": list_processes,
    "process.Process/SendInput": send_input,
    "process.Process/CloseStdin": close_stdin,
    "process.Process/SendSignal": send_signal,
}
STREAMING: dict[str, Streaming] = {"process.Process/Start": start, "process.Process/Connect": connect}
CLIENT_STREAMING: dict[str, ClientStreaming] = {"process.Process/StreamInput": stream_input}
