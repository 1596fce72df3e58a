"""Calling the computer tools through the native API, for the desktop's tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.runtimes import both_runtimes

Call = Callable[..., Any]


XTERM_ON_GVISOR = pytest.mark.xfail(
    reason="runsc 20240729 answers EIO to every open of /dev/tty, which xterm needs once it has "
    "opened its terminal: it tries terminal after terminal and shows no window (docs/runtimes.md)",
    strict=True,
)
XTERM_RUNTIMES = both_runtimes(gvisor=XTERM_ON_GVISOR)
"""For the tests whose app is xterm, the one X app linux_latest has."""


class ToolFailed(Exception):
    pass


def tool_caller(api: httpx.Client, session_id: str) -> Call:
    """A `call(tool, **arguments)` that answers the tool's text, or raises ToolFailed."""

    def call(name: str, **arguments: Any) -> str:
        response = api.post(f"/v1/sessions/{session_id}/tools/{name}", json={"arguments": arguments})
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        text: str = result["content"][0]["text"] if result["content"] else ""
        if result["isError"]:
            raise ToolFailed(text)
        return text

    return call


def until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value
