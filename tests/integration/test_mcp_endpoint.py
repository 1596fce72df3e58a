"""A session's tools over MCP's Streamable HTTP transport, driven by the official `mcp` client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp import types
from mcp.client import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from cove import Session
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, KEY_B, CoveServer


def mcp_url(server: CoveServer, session_id: str) -> str:
    return f"{server.url}/v1/sessions/{session_id}/mcp"


@asynccontextmanager
async def connected(url: str, key: str = KEY_A) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session (the initialize handshake, as most MCP apps connect)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=120) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as client,
    ):
        await client.initialize()
        yield client


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent)
    return result.content[0].text


@pytest.fixture
def session_id(session: Session) -> str:
    """A session of tenant A (conftest's `session`, on `runtime`), deleted after the test."""
    return session.session_id


@BOTH_RUNTIMES
async def test_the_session_tools_over_mcp(server: CoveServer, session_id: str) -> None:
    async with connected(mcp_url(server, session_id)) as client:
        assert client.server_info is not None and client.server_info.name == "cove"
        assert client.server_capabilities is not None and client.server_capabilities.tools is not None

        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"shell", "read_file", "write_file"} <= set(tools)
        assert tools["shell"].input_schema["required"] == ["command"]
        assert {"command", "timeout_ms", "cwd", "envs"} <= set(tools["shell"].input_schema["properties"])
        assert set(tools["write_file"].input_schema["required"]) == {"path", "content"}
        assert tools["read_file"].input_schema["required"] == ["path"]

        shell = await client.call_tool("shell", {"command": "echo hi; whoami"})
        assert shell.is_error is False
        assert json.loads(text_of(shell)) == {"exit_code": 0, "stdout": "hi\nuser\n", "stderr": ""}

        written = await client.call_tool("write_file", {"path": "/tmp/by-mcp.txt", "content": "from mcp\n"})
        assert written.is_error is False and "/tmp/by-mcp.txt" in text_of(written)
        inside = server.sandbox(session_id, "cat /tmp/by-mcp.txt; stat -c %U /tmp/by-mcp.txt")
        assert inside.stdout == "from mcp\nuser\n", inside.stderr
        read = await client.call_tool("read_file", {"path": "/tmp/by-mcp.txt"})
        assert (read.is_error, text_of(read)) == (False, "from mcp\n")

        failed = await client.call_tool("shell", {"command": "echo partial; echo bad >&2; exit 3"})
        assert failed.is_error is True, "a failing command is a result, not a protocol error"
        assert json.loads(text_of(failed)) == {"exit_code": 3, "stdout": "partial\n", "stderr": "bad\n"}

        missing = await client.call_tool("read_file", {"path": "/nowhere"})
        assert missing.is_error is True and "/nowhere" in text_of(missing)


@BOTH_RUNTIMES
async def test_an_unknown_tool_or_bad_arguments_are_results_that_name_the_problem(
    server: CoveServer, session_id: str
) -> None:
    async with connected(mcp_url(server, session_id)) as client:
        unknown = await client.call_tool("no_such_tool", {})
        assert unknown.is_error is True and "no_such_tool" in text_of(unknown)
        assert "shell" in text_of(unknown), "it lists the tools there are"

        bad = await client.call_tool("shell", {"command": 42})
        assert bad.is_error is True and "command" in text_of(bad)

        too_long = await client.call_tool("shell", {"command": "true", "timeout_ms": 10**12})
        assert too_long.is_error is True and "timeout_ms" in text_of(too_long)

        assert (await client.call_tool("shell", {"command": "echo still here"})).is_error is False


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic x"}])
def test_a_missing_or_wrong_key_is_a_401_before_any_mcp(
    server: CoveServer, session_id: str, headers: dict[str, str]
) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    response = httpx.post(mcp_url(server, session_id), json=initialize, headers={**accept, **headers})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Unauthorized"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_only_post_is_served(server: CoveServer, session_id: str, method: str) -> None:
    """Stateless: no stream for a GET to hold open, no MCP session to DELETE."""
    with server.client(KEY_A) as api:
        response = api.request(method, mcp_url(server, session_id), timeout=10)
    assert response.status_code == 405


async def test_a_wrong_key_fails_the_mcp_clients_initialize(server: CoveServer, session_id: str) -> None:
    failed = pytest.RaisesExc(MCPError, match="error response")
    with pytest.RaisesGroup(failed, flatten_subgroups=True):
        async with connected(mcp_url(server, session_id), key="wrong-key"):
            pass


async def not_found(url: str, key: str = KEY_A) -> MCPError:
    async with connected(url, key) as client:
        with pytest.raises(MCPError) as listing:
            await client.list_tools()
        with pytest.raises(MCPError) as calling:
            await client.call_tool("shell", {"command": "echo hi"})
    assert str(listing.value) == str(calling.value)
    return listing.value


async def test_another_tenants_session_does_not_exist(server: CoveServer, session_id: str) -> None:
    error = await not_found(mcp_url(server, session_id), key=KEY_B)
    assert str(error) == f"session {session_id!r} not found"
    assert error.data == {"code": "SessionNotFound", "http_status": 404}


async def test_an_unknown_session_does_not_exist(server: CoveServer) -> None:
    error = await not_found(mcp_url(server, "session-doesnotexist12345"))
    assert str(error) == "session 'session-doesnotexist12345' not found"
    assert error.data == {"code": "SessionNotFound", "http_status": 404}


async def test_a_deleted_session_is_not_running(
    server: CoveServer, new_session: Callable[..., dict[str, Any]]
) -> None:
    session_id = new_session()["session_id"]
    with server.client(KEY_A) as api:
        assert api.delete(f"/v1/sessions/{session_id}").status_code == 200
    async with connected(mcp_url(server, session_id)) as client:
        with pytest.raises(MCPError) as error:
            await client.call_tool("shell", {"command": "echo hi"})
    assert "DELETED" in str(error.value) and "RUNNING" in str(error.value)
    assert error.value.data == {"code": "InvalidState", "http_status": 409}


@BOTH_RUNTIMES
async def test_a_client_of_the_newest_protocol_without_a_handshake(
    server: CoveServer, session_id: str
) -> None:
    """mcp's `Client` probes `server/discover` and speaks 2026-07-28: one POST per call, no initialize."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY_A}"}, timeout=120)
    async with http, Client(streamable_http_client(mcp_url(server, session_id), http_client=http)) as client:
        assert client.protocol_version not in types.version.HANDSHAKE_PROTOCOL_VERSIONS
        assert "shell" in {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("shell", {"command": "echo modern; exit 3"})
        assert result.is_error is True
        assert json.loads(text_of(result)) == {"exit_code": 3, "stdout": "modern\n", "stderr": ""}
