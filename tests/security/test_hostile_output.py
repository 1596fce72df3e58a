"""Output a session controls never breaks the agent's wire, whatever it escapes to.

10 MiB of NUL is within every raw byte limit but escapes to 60 MiB or more in an answer line; each
tool that carries such output answers 200 with it cut (and says so) or with a clear tool error, and
the session goes on working.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cove import Session
from cove.agent import answer_size, protocol, server, tools
from cove.agent.tools import code, processes

TEN_MIB = 10 * 1024 * 1024


def call(api: httpx.Client, session: Session, tool: str, **arguments: Any) -> dict[str, Any]:
    """The tool's result; the call must answer 200, never 5xx."""
    response = api.post(
        f"/v1/sessions/{session.session_id}/tools/{tool}", json={"arguments": arguments}, timeout=120
    )
    assert response.status_code == 200, response.text[:500]
    result: dict[str, Any] = response.json()["result"]
    return result


def text_of(result: dict[str, Any]) -> str:
    text: str = result["content"][0]["text"]
    return text


def still_works(api: httpx.Client, session: Session) -> None:
    result = call(api, session, "shell", command="echo alive")
    assert json.loads(text_of(result))["stdout"] == "alive\n"


def test_background_output_of_nul_is_cut_and_read_on(api: httpx.Client, session: Session) -> None:
    started = json.loads(text_of(call(api, session, "process_start", command=f"head -c {TEN_MIB} /dev/zero")))
    process_id = started["process_id"]
    waited = json.loads(text_of(call(api, session, "process_wait", process_id=process_id, timeout_ms=30_000)))
    assert waited["exit_code"] == 0
    assert waited["stdout_truncated_bytes"] > 0
    assert len(waited["stdout"]) + waited["stdout_truncated_bytes"] == TEN_MIB
    read, offset = 0, 0
    for _ in range(10):  # each answer holds what fits; its offset says where the rest begins
        answer = json.loads(
            text_of(call(api, session, "process_output", process_id=process_id, stdout_offset=offset))
        )
        assert answer["stdout_skipped"] == 0
        read += len(answer["stdout"])
        offset = answer["stdout_offset"]
        if offset == TEN_MIB:
            break
    assert read == TEN_MIB
    still_works(api, session)


def test_terminal_output_of_nul_is_cut(api: httpx.Client, session: Session) -> None:
    command = f"head -c {TEN_MIB} /dev/zero; sleep 0.5"
    started = json.loads(text_of(call(api, session, "process_start", command=command, pty=True)))
    waited = json.loads(
        text_of(call(api, session, "process_wait", process_id=started["process_id"], timeout_ms=60_000))
    )
    assert waited["running"] is False
    assert len(waited["stdout"]) + waited["stdout_truncated_bytes"] > 0
    still_works(api, session)


def test_run_code_output_of_nul_is_cut(api: httpx.Client, session: Session) -> None:
    code = f"import sys\nsys.stdout.write('\\0' * {TEN_MIB})\nsys.stderr.write('\\0' * {TEN_MIB})\nNone"
    answer = json.loads(text_of(call(api, session, "run_code", code=code)))
    for stream in ("stdout", "stderr"):
        assert answer[f"{stream}_truncated_bytes"] > 0
        assert len("".join(answer[stream])) + answer[f"{stream}_truncated_bytes"] == TEN_MIB
    still_works(api, session)


def test_run_code_rich_results_and_errors_of_nul_are_cut(api: httpx.Client, session: Session) -> None:
    html = (
        f"class Page:\n    def _repr_html_(self):\n        return '\\0' * {TEN_MIB}\n"
        "display(Page(), Page())\nPage()"
    )
    answer = json.loads(text_of(call(api, session, "run_code", code=html)))
    bundles = [json.loads(result) for result in answer["result"]]
    assert any("left out" in bundle["text/plain"] for bundle in bundles)
    error = call(api, session, "run_code", code=f"raise ValueError('\\0' * {TEN_MIB})")
    assert error["isError"] is True
    assert json.loads(text_of(error))["error"]["name"] == "ValueError"
    still_works(api, session)


def test_reading_a_file_of_nul_answers_or_says_why_not(api: httpx.Client, session: Session) -> None:
    call(api, session, "shell", command=f"head -c {2 * TEN_MIB} /dev/zero > /tmp/zeros")
    result = call(api, session, "read_file", path="/tmp/zeros")
    assert result["isError"] is True
    assert "in parts" in text_of(result)
    part = call(api, session, "read_file", path="/tmp/zeros", offset=0, length=TEN_MIB // 2)
    assert text_of(part) == "\0" * (TEN_MIB // 2)
    assert call(api, session, "read_multiple_files", paths=["/tmp/zeros"])["isError"] is True
    binary = call(api, session, "read_file", path="/tmp/zeros", format="binary")
    assert binary["isError"] is False
    still_works(api, session)


# The same bounds without a sandbox, at the edge of the line limit.

NUL_FLOOD = "\0" * (protocol.MAX_LINE_BYTES // 4)
"""Output that escapes to several times the protocol's line limit."""


def fits_a_line(text: str, is_error: bool = False) -> None:
    line = protocol.encode(
        protocol.result(1, {"content": [{"type": "text", "text": text}], "isError": is_error})
    )
    assert len(line) <= protocol.MAX_LINE_BYTES


def test_a_process_buffer_is_read_in_answers_that_fit() -> None:
    buffer = processes.OutputBuffer()
    buffer.data += NUL_FLOOD.encode()  # beyond the raw limit on purpose: escaping alone must be bounded
    text, begin, stop = buffer.read(0, complete=True)
    assert (begin, stop) == (0, len(text)) and 0 < stop < len(NUL_FLOOD)
    assert answer_size.wire_size(text) <= answer_size.WIRE_BUDGET_BYTES
    tail, begin, stop = buffer.read(0, complete=True, keep_end=True)
    assert stop == len(NUL_FLOOD) and begin == len(NUL_FLOOD) - len(tail)


def test_a_run_code_answer_of_floods_fits_a_line() -> None:
    flood_bundle = {"text/html": NUL_FLOOD, "text/plain": "x", "isMainResult": True}
    error = {"name": NUL_FLOOD, "value": NUL_FLOOD, "traceback": NUL_FLOOD}
    outcome = code.CellOutcome(
        {"stdout": [NUL_FLOOD, "more"], "stderr": [NUL_FLOOD], "results": [flood_bundle], "error": error}
    )
    text, failed = code.answer_text(outcome, code.PYTHON, False, 60, 0.1)
    assert failed
    fits_a_line(text, is_error=True)
    answer = json.loads(text)
    assert answer["stdout_truncated_bytes"] > len(NUL_FLOOD) // 2
    assert "left out" in json.loads(answer["result"][0])["text/plain"]


def test_any_answer_too_large_for_its_line_is_a_tool_error(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = server.Agent()
    flood = tools.Tool(name="flood", description="", run=lambda arguments: NUL_FLOOD)
    monkeypatch.setattr(agent, "_tools", {"flood": flood})
    answer = agent.call_tool(1, {"name": "flood", "arguments": {}})
    assert answer["result"]["isError"] is True
    assert "ask for less" in answer["result"]["content"][0]["text"]
    fits_a_line(answer["result"]["content"][0]["text"], is_error=True)


def test_a_lone_surrogate_in_an_answer_is_replaced() -> None:
    agent = server.Agent()
    agent._tools = {"name": tools.Tool(name="name", description="", run=lambda arguments: "a\udcffb")}
    answer = agent.call_tool(1, {"name": "name", "arguments": {}})
    assert answer["result"]["content"][0]["text"].encode()  # valid UTF-8 for every client
