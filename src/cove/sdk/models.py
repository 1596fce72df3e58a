"""The SDK's parameter and result objects, named and shaped as in AgentBay's Python SDK.

Results never raise for a failed call: `success` is False and `error_message`, `code` and
`http_status_code` say why, so code written against AgentBay ports by changing one import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

SessionT = TypeVar("SessionT")

SESSION_STATUSES = ("RUNNING", "PAUSING", "PAUSED", "RESUMING", "DELETING", "DELETED")


@dataclass(kw_only=True)
class Config:
    """Where the server is and how long to wait for it.

    `endpoint` is a URL such as "http://127.0.0.1:9000"; one without a scheme is taken as HTTPS,
    as AgentBay does. Unset fields fall back to COVE_ENDPOINT / AGENTBAY_ENDPOINT and 60 s.
    """

    endpoint: str | None = None
    timeout_ms: int | None = None
    region_id: str | None = None


@dataclass(kw_only=True)
class CreateSessionParams:
    """What to create: AgentBay's `labels` and `image_id`, plus Cove's per-session resource limits."""

    labels: dict[str, str] | None = None
    image_id: str | None = None
    memory_mb: int | None = None
    cpus: float | None = None
    pids: int | None = None


@dataclass(kw_only=True)
class SessionData:
    """A session as the server last described it."""

    session_id: str
    status: str = ""
    status_reason: str = ""
    image_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    resource_url: str = ""
    created_at: str = ""
    updated_at: str = ""


@dataclass(kw_only=True)
class SessionInfo:
    """AgentBay's SessionInfo; the desktop fields stay empty on Cove, which adds what it knows."""

    session_id: str = ""
    resource_url: str = ""
    app_id: str = ""
    auth_code: str = ""
    connection_properties: str = ""
    resource_id: str = ""
    resource_type: str = ""
    ticket: str = ""
    image_id: str = ""
    status: str = ""
    hostname: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""


@dataclass(kw_only=True)
class ApiResponse:
    request_id: str = ""


@dataclass(kw_only=True)
class Result(ApiResponse):
    """What every call answers: success, or why not."""

    success: bool = False
    error_message: str = ""
    code: str = ""
    http_status_code: int = 0


@dataclass(kw_only=True)
class SessionResult(Result, Generic[SessionT]):
    session: SessionT | None = None


@dataclass(kw_only=True)
class SessionListResult(Result):
    """One page of sessions: `session_ids` as AgentBay has it, `sessions` with each one's details.

    `next_token` is the next page's number as a string, empty on the last page.
    """

    session_ids: list[str] = field(default_factory=list)
    sessions: list[SessionData] = field(default_factory=list)
    next_token: str = ""
    max_results: int = 0
    total_count: int = 0


@dataclass(kw_only=True)
class DeleteResult(Result):
    pass


@dataclass(kw_only=True)
class OperationResult(Result):
    data: Any = None


@dataclass(kw_only=True)
class SessionStatusResult(Result):
    status: str = ""


@dataclass(kw_only=True)
class McpTool:
    """A tool the session serves; `server` is AgentBay's grouping, Cove serves them all as "cove"."""

    name: str
    server: str = "cove"
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class McpToolsResult(Result):
    tools: list[McpTool] = field(default_factory=list)


@dataclass(kw_only=True)
class McpToolResult(Result):
    """`data` is the text the tool answered; when the tool failed it is `error_message` too."""

    data: str = ""


@dataclass(kw_only=True)
class CommandResult(Result):
    """A command's outcome: success means it ran and exited 0; `output` is stdout then stderr."""

    output: str = ""
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    trace_id: str = ""
    timed_out: bool = False
    stdout_truncated_bytes: int = 0
    stderr_truncated_bytes: int = 0
