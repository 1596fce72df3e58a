"""The blocking client: `AgentBay` and the `Session` objects it hands out."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from cove.sdk import core, tool_calls
from cove.sdk.core import ResultT
from cove.sdk.models import (
    CommandResult,
    Config,
    CreateSessionParams,
    DeleteResult,
    McpToolResult,
    McpToolsResult,
    OperationResult,
    SessionData,
    SessionListResult,
    SessionResult,
    SessionStatusResult,
)


class AgentBay(core.ClientBase):
    """A connection to a Cove server. Use it as a context manager, or call `close()`."""

    def __init__(self, api_key: str = "", cfg: Config | None = None) -> None:
        super().__init__(api_key, cfg)
        self._http = httpx.Client(**self._http_options())

    def _send(self, call: core.Call[ResultT]) -> ResultT:
        if call.refusal:
            return call.refused()
        try:
            response = self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.body,
                timeout=call.timeout_s or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as error:
            return call.transport_failure(error)
        return call.finish(response.status_code, response.headers, response.content)

    def _bind(self, data: SessionData) -> Session:
        return Session(self, data)

    def create(self, params: CreateSessionParams | None = None) -> SessionResult[Session]:
        """Create a session; it is RUNNING when this returns successfully."""
        return self._send(core.create_session(params or CreateSessionParams(), self._bind))

    def get(self, session_id: str) -> SessionResult[Session]:
        return self._send(core.get_session(session_id, self._bind))

    def list(
        self,
        labels: dict[str, str] | None = None,
        page: int | None = None,
        limit: int | None = None,
        status: str | None = None,
    ) -> SessionListResult:
        """One page of this key's sessions matching all `labels`; without `status`, the live ones."""
        return self._send(core.list_sessions(labels, page, limit, status))

    def delete(self, session: Session | str) -> DeleteResult:
        """Delete a session (or a session id); deleting one twice succeeds."""
        session_id = session if isinstance(session, str) else session.session_id
        return self._send(core.delete_session(session_id))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentBay:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class Session(core.SessionBase[AgentBay]):
    """A handle on one session, for calls that concern it alone."""

    def info(self) -> OperationResult:
        """`data` is a SessionInfo."""
        return self.agent_bay._send(core.session_info(self.session_id))

    def get_labels(self) -> OperationResult:
        """`data` is the labels as a dict."""
        return self.agent_bay._send(core.get_labels(self.session_id))

    def set_labels(self, labels: dict[str, str]) -> OperationResult:
        """Replace all labels; `data` is the labels now set."""
        return self.agent_bay._send(core.set_labels(self.session_id, labels))

    def get_status(self) -> SessionStatusResult:
        return self.agent_bay._send(core.get_status(self.session_id))

    def delete(self) -> DeleteResult:
        return self.agent_bay.delete(self)

    @property
    def command(self) -> Command:
        return Command(self)

    def list_mcp_tools(self) -> McpToolsResult:
        return self.agent_bay._send(tool_calls.list_mcp_tools(self.session_id))

    def call_mcp_tool(self, tool_name: str, args: dict[str, Any]) -> McpToolResult:
        """Run any of the session's tools; `data` is its answer's text."""
        return self.agent_bay._send(tool_calls.call_mcp_tool(self.session_id, tool_name, args))


class Command:
    """`session.command`: shell commands, run by the session's `shell` tool."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def execute_command(
        self,
        command: str,
        timeout_ms: int = tool_calls.DEFAULT_COMMAND_TIMEOUT_MS,
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run `command` with bash as the session user; success means it exited 0."""
        call = tool_calls.execute_command(self.session.session_id, command, timeout_ms, cwd, envs)
        return self.session.agent_bay._send(call)

    run = execute_command
    exec = execute_command
