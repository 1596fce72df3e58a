"""Code cells: the `run_code` call, and the reading of its answer into an EnhancedCodeExecutionResult.

The tool answers the JSON AgentBay's SDK parses (`result` holds a JSON string per mime bundle;
`stdout`, `stderr`, `executionError`, `execution_count`, `execution_time`) with Cove's fields beside
it (`error`, `kernel_restarted`, `timed_out`, `kernel_died`); an exception is an error answer with
the same JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cove.sdk.core import Call
from cove.sdk.models import EnhancedCodeExecutionResult, ExecutionError, ExecutionLogs, ExecutionResult
from cove.sdk.tool_calls import ANSWER_MARGIN_S, tool_call

DEFAULT_CODE_TIMEOUT_S = 60
LANGUAGE_ALIASES = {
    "py": "python",
    "python3": "python",
    "js": "javascript",
    "node": "javascript",
    "nodejs": "javascript",
}
"""As AgentBay's SDK maps them; the server says which languages a session has."""
FIELDS = {
    "text": "text/plain",
    "html": "text/html",
    "markdown": "text/markdown",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "svg": "image/svg+xml",
    "json": "application/json",
    "latex": "text/latex",
    "pdf": "application/pdf",
    "javascript": "application/javascript",
}
CHART_TYPES = ("chart", "application/vnd.vegalite.v5+json", "application/vnd.vegalite.v4+json")
"""Where a chart comes: Cove's kernels give a figure's data as `chart`; AgentBay's may give Vega-Lite."""
OutputCallback = Callable[[str], None]


def run_code(session_id: str, code: str, language: str, timeout_s: int) -> Call[EnhancedCodeExecutionResult]:
    language = str(language or "python").strip().lower()
    arguments = {"code": code, "language": LANGUAGE_ALIASES.get(language, language), "timeout_s": timeout_s}
    return tool_call(
        session_id,
        "run_code",
        arguments,
        EnhancedCodeExecutionResult,
        read_code_answer,
        timeout_s=timeout_s + ANSWER_MARGIN_S,
    )


def read_code_answer(text: str, is_error: bool) -> EnhancedCodeExecutionResult:
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("result"), list):
        if is_error:  # refused before it ran: a language this session lacks, say
            return EnhancedCodeExecutionResult(success=False, error_message=text)
        return EnhancedCodeExecutionResult(
            success=True,
            results=[ExecutionResult(text=text, is_main_result=True)],
            logs=ExecutionLogs(stdout=[text]),
        )
    raw_error = answer.get("error")
    execution_error = str(answer.get("executionError") or "")
    error = None
    if isinstance(raw_error, dict):
        error = ExecutionError(
            name=str(raw_error.get("name", "")),
            value=str(raw_error.get("value", "")),
            traceback=str(raw_error.get("traceback", "")),
        )
    elif execution_error:
        error = ExecutionError(name="ExecutionError", value=execution_error)
    failed = is_error or error is not None
    count = answer.get("execution_count", answer.get("executionCount"))
    seconds = answer.get("execution_time", answer.get("executionTime"))
    return EnhancedCodeExecutionResult(
        success=not failed,
        error_message=(execution_error or text) if failed else "",
        execution_count=count if isinstance(count, int) else None,
        execution_time=float(seconds) if isinstance(seconds, int | float) else 0.0,
        logs=ExecutionLogs(stdout=_texts(answer.get("stdout")), stderr=_texts(answer.get("stderr"))),
        results=[_execution_result(item) for item in answer["result"]],
        error=error,
        kernel_restarted=bool(answer.get("kernel_restarted", False)),
        timed_out=bool(answer.get("timed_out", False)),
        kernel_died=bool(answer.get("kernel_died", False)),
    )


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else []


def _execution_result(item: Any) -> ExecutionResult:
    """One mime bundle, given as a JSON string (as AgentBay sends it) or as an object."""
    bundle = item
    if isinstance(item, str):
        try:
            bundle = json.loads(item)
        except ValueError:
            bundle = item
    if not isinstance(bundle, dict):
        return ExecutionResult(text=str(bundle))
    known = set(FIELDS.values()) | set(CHART_TYPES) | {"isMainResult"}
    chart = next((bundle[mime] for mime in CHART_TYPES if mime in bundle), None)
    return ExecutionResult(
        **{name: bundle.get(mime) for name, mime in FIELDS.items()},
        chart=chart,
        is_main_result=bool(bundle.get("isMainResult", False)),
        extra={mime: value for mime, value in bundle.items() if mime not in known},
    )


def hand_out(
    result: EnhancedCodeExecutionResult,
    on_stdout: OutputCallback | None,
    on_stderr: OutputCallback | None,
    on_error: Callable[[Any], None] | None,
) -> EnhancedCodeExecutionResult:
    """AgentBay's streaming callbacks get the cell's output and error once it has ended."""
    for chunks, callback in ((result.logs.stdout, on_stdout), (result.logs.stderr, on_stderr)):
        if callback is not None:
            for chunk in chunks:
                callback(chunk)
    if on_error is not None and not result.success:
        on_error(result.error or result.error_message)
    return result
