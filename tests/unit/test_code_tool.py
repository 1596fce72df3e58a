"""The `run_code` tool's kernel run on this machine (no sandbox), and the SDK's reading of its answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cove.agent.tools import ToolError, code
from cove.config import Settings
from cove.errors import InvalidArgument
from cove.sdk.code_calls import read_code_answer
from cove.sessions.validation import check_tool_call


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[code.KernelSlot]:
    """A kernel of its own for the test, ended afterwards."""
    slot = code.KernelSlot()
    monkeypatch.setattr(code, "KERNELS", {"python": slot})
    yield slot
    slot.forget()


def run(source: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    """(failed, the answer's JSON)."""
    try:
        return False, json.loads(code.run_code({"code": source, **arguments}))
    except ToolError as error:
        return True, json.loads(str(error))


def bundles(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(item) for item in answer["result"]]


def test_results_come_in_order_displays_then_the_main_result(kernel: code.KernelSlot) -> None:
    failed, answer = run("display(1)\nprint('out')\n'main'")
    assert not failed
    assert bundles(answer) == [
        {"text/plain": "1", "isMainResult": False},
        {"text/plain": "'main'", "isMainResult": True},
    ]
    assert answer["stdout"] == ["out\n"] and answer["executionCount"] == 1


def test_a_failing_repr_method_is_skipped_and_told(kernel: code.KernelSlot) -> None:
    failed, answer = run("class A:\n    def _repr_html_(self):\n        raise ValueError('no')\nA()")
    assert not failed
    [main] = bundles(answer)
    assert set(main) == {"text/plain", "isMainResult"}
    assert "_repr_html_() failed" in "".join(answer["stderr"])


def test_top_level_await_and_its_traceback(kernel: code.KernelSlot) -> None:
    assert run("import asyncio\nawait asyncio.sleep(0)\n3")[1]["result"] == [
        '{"text/plain": "3", "isMainResult": true}'
    ]
    failed, answer = run("async def f():\n    raise KeyError('k')\nawait f()")
    assert failed and answer["error"]["name"] == "KeyError"
    trace = answer["error"]["traceback"]
    assert trace.startswith("Traceback") and "asyncio" not in trace and "kernel.py" not in trace


def test_output_and_results_are_bounded(kernel: code.KernelSlot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code, "OUTPUT_LIMIT_BYTES", 1000)
    failed, answer = run("print('x' * 1500)\n'y' * 2000")
    assert not failed
    assert len("".join(answer["stdout"])) == 1000 and answer["stdout_truncated_bytes"] == 501
    [main] = bundles(answer)
    assert main["isMainResult"] and "left out" in main["text/plain"]


def test_a_lone_surrogate_does_not_break_the_answer(kernel: code.KernelSlot) -> None:
    failed, answer = run("class A:\n    def __repr__(self):\n        return '\\ud800'\nA()")
    assert not failed and bundles(answer)[0]["text/plain"] == "\ud800"


def test_a_kernel_that_cannot_start_says_why(
    kernel: code.KernelSlot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(code, "KERNEL_FILE", Path("/nonexistent/kernel.py"))
    with pytest.raises(ToolError, match=r"(?s)could not start \(exit code 1; it said: .*No such file"):
        code.run_code({"code": "1"})


def test_the_sdk_reads_answers_and_plain_text() -> None:
    answer = {
        "executionError": "",
        "result": [
            json.dumps({"text/plain": "1", "text/html": "<b>1</b>", "isMainResult": True}),
            {"application/vnd.vegalite.v5+json": {"mark": "bar"}, "application/x-other": "o"},
        ],
        "stdout": ["a\n", "b\n"],
        "stderr": [],
        "executionCount": 3,
        "executionTime": 0.5,
    }
    result = read_code_answer(json.dumps(answer), False)
    assert result.success and result.result == "1" and result.execution_count == 3
    assert result.results[0].html == "<b>1</b>" and result.results[1].chart == {"mark": "bar"}
    assert result.results[1].extra == {"application/x-other": "o"} and result.logs.stdout == ["a\n", "b\n"]
    plain = read_code_answer("just text", False)
    assert plain.success and plain.result == "just text"
    refused = read_code_answer("only python is available", True)
    assert not refused.success and refused.error_message == "only python is available"
    failed = read_code_answer(json.dumps({**answer, "executionError": "Boom: x"}), True)
    assert not failed.success and failed.error is not None and failed.error.value == "Boom: x"
    assert failed.error_message == "Boom: x"


def test_the_server_bounds_a_cell_by_timeout_s() -> None:
    settings = Settings()
    assert check_tool_call(settings, "run_code", {"code": "1", "timeout_s": 600}) == 600
    assert check_tool_call(settings, "run_code", {"code": "1"}) == 60
    with pytest.raises(InvalidArgument, match="timeout_s is 3601; this server's maximum is 3600"):
        check_tool_call(settings, "run_code", {"code": "1", "timeout_s": 3601})
