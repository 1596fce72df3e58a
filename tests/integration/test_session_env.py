"""A session's own environment variables (`env` at create): every command, background process,
kernel and desktop program starts with them, beneath a call's own `envs`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.computer_tools import tool_caller
from tests.integration.runtimes import BOTH_RUNTIMES


@BOTH_RUNTIMES
def test_every_process_starts_with_the_session_env(
    api: httpx.Client, new_session: Callable[..., dict[str, Any]]
) -> None:
    session = new_session(env={"GREETING": "hello there", "SHADOWED": "session"})
    call = tool_caller(api, session["session_id"])
    assert "hello there" in call("shell", command="echo $GREETING")
    assert "call" in call("shell", command="echo $SHADOWED", envs={"SHADOWED": "call"})
    cell = call("run_code", code="import os; print(os.environ['GREETING'][::-1])", language="python")
    assert "ereht olleh" in cell
    started = json.loads(call("process_start", command="echo ${GREETING^^}"))
    output = json.loads(call("process_output", process_id=started["process_id"], wait_ms=5000))
    assert output["stdout"] == "HELLO THERE\n"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"COVE_TOKEN": "x"}, "COVE_"),
        ({"1BAD": "x"}, "'1BAD' is not a variable name"),
        ({"A": 1}, "env.A: Input should be a valid string"),
        ({"A": "x" * 40_000}, "at most 32768"),
    ],
)
def test_a_bad_env_is_refused_naming_it(api: httpx.Client, env: dict[str, Any], words: str) -> None:
    refused = api.post("/v1/sessions", json={"env": env})
    assert refused.status_code == 400, refused.text
    assert words in refused.text
