"""Calls that run a tool inside the session, and the reading of each tool's answer into a result.

The server answers MCP's `{"content": [{"type": "text", "text": ...}], "isError": ...}`; the text
has the formats AgentBay's tools use, so these readers also serve Cove's AgentBay surface's users.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from cove.sdk.core import Call, ResultT, session_id_refusal, session_path
from cove.sdk.key_names import normalize_keys
from cove.sdk.models import CommandResult, McpTool, McpToolResult, McpToolsResult

DEFAULT_COMMAND_TIMEOUT_MS = 50_000
ANSWER_MARGIN_S = 30.0
"""How much longer than a command's own timeout the client waits for its answer."""


def list_mcp_tools(session_id: str) -> Call[McpToolsResult]:
    def parse(answer: dict[str, Any], request_id: str) -> McpToolsResult:
        tools = [
            McpTool(
                name=t["name"], description=t.get("description", ""), input_schema=t.get("inputSchema", {})
            )
            for t in answer["tools"]
        ]
        return McpToolsResult(request_id=request_id, success=True, tools=tools)

    return Call(
        method="GET",
        path=f"{session_path(session_id)}/tools",
        refusal=session_id_refusal(session_id),
        result_type=McpToolsResult,
        parse=parse,
    )


def tool_call(
    session_id: str,
    name: str,
    arguments: dict[str, Any],
    result_type: type[ResultT],
    read: Callable[[str, bool], ResultT],
    timeout_s: float | None = None,
) -> Call[ResultT]:
    """Call tool `name`; `read(text, is_error)` turns its answer into the result."""

    def parse(answer: dict[str, Any], request_id: str) -> ResultT:
        outcome = answer["result"]
        texts = [item.get("text", "") for item in outcome.get("content", []) if item.get("type") == "text"]
        result = read(texts[0] if texts else "", bool(outcome.get("isError")))
        result.request_id = request_id
        return result

    refusal = session_id_refusal(session_id) or ("" if name else "a tool name is required")
    return Call(
        method="POST",
        path=f"{session_path(session_id)}/tools/{quote(name, safe='')}",
        body={"arguments": arguments},
        refusal=refusal,
        result_type=result_type,
        parse=parse,
        timeout_s=timeout_s,
    )


def read_call(
    session_id: str,
    name: str,
    arguments: dict[str, Any],
    result_type: type[ResultT],
    read: Callable[[str], ResultT],
    timeout_s: float | None = None,
) -> Call[ResultT]:
    """Call tool `name`; its error fails the result with its text, any other answer goes to `read`."""

    def read_answer(text: str, is_error: bool) -> ResultT:
        if is_error:
            return result_type(success=False, error_message=text or f"{name} failed")
        return read(text)

    return tool_call(session_id, name, arguments, result_type, read_answer, timeout_s)


def _read_mcp(text: str, is_error: bool) -> McpToolResult:
    return McpToolResult(success=not is_error, data=text, error_message=text if is_error else "")


def call_mcp_tool(session_id: str, name: str, arguments: dict[str, Any]) -> Call[McpToolResult]:
    """`press_keys` keys are spelled as AgentBay's session spells them (key_names.py)."""
    if name == "press_keys" and isinstance(arguments, dict) and "keys" in arguments:
        arguments = {**arguments, "keys": normalize_keys(arguments["keys"])}
    return tool_call(session_id, name, arguments, McpToolResult, _read_mcp)


def _read_command(text: str, is_error: bool) -> CommandResult:
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or "stdout" not in answer:
        return CommandResult(
            success=not is_error, stdout=text, output=text, error_message=text if is_error else ""
        )
    stdout, stderr = str(answer.get("stdout", "")), str(answer.get("stderr", ""))
    raw_code = answer.get("exit_code", answer.get("errorCode"))
    exit_code = raw_code if isinstance(raw_code, int) else (1 if is_error else 0)
    failed = is_error or exit_code != 0
    return CommandResult(
        success=not failed,
        output=stdout + stderr,
        stdout=stdout,
        stderr=stderr,
        exit_code=max(exit_code, 1) if failed else exit_code,
        error_message=(str(answer.get("error") or stderr or text)) if failed else "",
        trace_id=str(answer.get("traceId", "")),
        timed_out=bool(answer.get("timed_out", False)),
        stdout_truncated_bytes=int(answer.get("stdout_truncated_bytes", 0)),
        stderr_truncated_bytes=int(answer.get("stderr_truncated_bytes", 0)),
    )


def execute_command(
    session_id: str, command: str, timeout_ms: int, cwd: str | None, envs: dict[str, str] | None
) -> Call[CommandResult]:
    arguments: dict[str, Any] = {"command": command, "timeout_ms": timeout_ms}
    if cwd is not None:
        arguments["cwd"] = cwd
    if envs:
        arguments["envs"] = envs
    return tool_call(
        session_id,
        "shell",
        arguments,
        CommandResult,
        _read_command,
        timeout_s=timeout_ms / 1000 + ANSWER_MARGIN_S,
    )
