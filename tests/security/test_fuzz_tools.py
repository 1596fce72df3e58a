"""Every tool of a live session, called with arguments generated from its own input schema.

Arguments of the right types and of wrong ones, missing required ones and unknown extra ones,
strings with NUL, lone surrogates, long text and hostile paths: a call answers 200 (the tool ran,
maybe with isError) or 4xx (bad arguments), never 5xx. What could harm the test run itself is
bounded: commands and code are harmless, waits are short.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.integration.server import CoveServer, scratch_server

EXAMPLES_PER_TOOL = 40
TEST_BUDGET_S = 60.0
HOSTILE_PATHS = ("../../etc/passwd", "/.cove/run/agent.sock", "/.cove", "/proc/self/mem", "~", "/", "", ".")
HARMLESS_COMMANDS = ("true", "false", "echo hi", "exit 3", "printf 'a\\0b'", "cat /etc/hostname")
WAIT_ARGUMENTS = {"timeout_ms": 2000, "wait_ms": 500, "timeout_s": 3}
"""Arguments that make a call wait, and the most generated for each."""
CHANGING_TOOLS = ("write_file", "edit_file", "delete_file", "move_file", "create_directory")
PATH_NAMES = ("path", "source", "destination")
"""Tools that change files are kept out of /.cove: the session user can remove its own agent's socket
there (/.cove/run is the sandbox's to write), which leaves the session without an agent until init
puts it back, within a few seconds (tests/security/test_agent_socket.py)."""

texts = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["\0", "a\0b", "\ud800", "x\udfffy", "é😀", "\u202e", "x" * 100_000]),
    st.sampled_from(HOSTILE_PATHS),
)
"""Strings as hostile as JSON carries them (lone surrogates included, sent as \\ud800 escapes)."""
commands = st.one_of(
    st.sampled_from(HARMLESS_COMMANDS),
    texts.map(lambda text: "echo " + shlex.quote(text)),
    texts.map(lambda text: "# " + text.replace("\n", " ").replace("\r", " ")),
)
code_cells = st.one_of(
    st.sampled_from(["1 + 1", "print('hi')", "raise ValueError('x')", ""]), texts.map(repr)
)
languages = st.one_of(st.sampled_from(["python", "py", "cobol", "r", ""]), texts).filter(
    lambda name: name.strip().lower() not in ("java", "javascript", "js", "node", "nodejs")
)  # a JVM or Node start would take the test's time, not test more
wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    texts,
    st.lists(st.integers(), max_size=3),
)


def value_for(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for one argument of its own type, bounded where it could harm the run."""
    if name == "command":
        return commands
    if name == "code":
        return code_cells
    if name == "language":
        return languages
    if name in WAIT_ARGUMENTS:
        return st.integers(-1, WAIT_ARGUMENTS[name])
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), texts)
    return of_type(schema)


def of_type(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if kind == "string":
        return texts
    if kind == "integer":
        return st.one_of(st.integers(-3, 100_000), st.integers(-(2**70), 2**70))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(of_type(schema.get("items", {"type": "string"})), max_size=4)
    if kind == "object":
        return st.dictionaries(texts, texts, max_size=3)
    return wrong_values


def arguments_for(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments of the schema; now and then one of a wrong type, required ones left out, or unknown
    ones added."""
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    right = st.fixed_dictionaries(
        {name: value_for(name, spec) for name, spec in properties.items() if name in required},
        optional={name: value_for(name, spec) for name, spec in properties.items() if name not in required},
    )
    names = sorted(properties) or ["x"]
    return st.one_of(
        *[right] * 6,
        st.tuples(right, st.sampled_from(names), wrong_values).map(
            lambda triple: {**triple[0], triple[1]: triple[2]}
        ),
        st.tuples(right, st.sets(st.sampled_from(sorted(required)) if required else st.nothing())).map(
            lambda pair: {key: value for key, value in pair[0].items() if key not in pair[1]}
        ),
        st.tuples(right, st.dictionaries(texts, wrong_values, min_size=1, max_size=2)).map(
            lambda pair: {**pair[1], **pair[0]}
        ),
    )


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[CoveServer]:
    """A server of this test's own, so that what the fuzzing does cannot disturb the shared one."""
    with scratch_server() as started:
        yield started


def test_no_tool_call_answers_5xx(fuzz_server: CoveServer) -> None:
    deadline = time.monotonic() + TEST_BUDGET_S
    with fuzz_server.client() as api:
        created = api.post("/v1/sessions", json={})
        assert created.status_code == 201, created.text
        session_id = created.json()["session"]["session_id"]
        try:
            tools = api.get(f"/v1/sessions/{session_id}/tools").json()["tools"]
            assert tools
            failures: list[str] = []
            for tool in tools:
                if time.monotonic() > deadline:
                    break
                failures += fuzz_tool(api, session_id, tool, deadline)
            assert not failures, "\n".join(failures)
            alive = api.post(
                f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": "true"}}
            )
            assert alive.status_code == 200, alive.text
        finally:
            api.delete(f"/v1/sessions/{session_id}")


def fuzz_tool(api: httpx.Client, session_id: str, tool: dict[str, Any], deadline: float) -> list[str]:
    """Call one tool with generated arguments; answers the calls that got a 5xx."""
    failures: list[str] = []
    url = f"/v1/sessions/{session_id}/tools/{tool['name']}"

    @settings(
        max_examples=EXAMPLES_PER_TOOL,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(arguments=arguments_for(tool["inputSchema"]))
    def call(arguments: dict[str, Any]) -> None:
        if time.monotonic() > deadline:
            return
        if tool["name"] in CHANGING_TOOLS:
            assume(not any(str(arguments.get(name, "")).startswith("/.cove") for name in PATH_NAMES))
        body = json.dumps({"arguments": arguments}).encode()  # lone surrogates as \ud800 escapes
        response = api.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
        if response.status_code >= 500:
            failures.append(f"{tool['name']} {body[:300]!r} -> {response.status_code} {response.text[:300]}")

    call()
    return failures
