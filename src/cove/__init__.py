"""Cove: self-hosted sandboxes for AI agents. This module is the SDK, named as AgentBay's Python SDK.

from cove import AgentBay, CreateSessionParams

with AgentBay(api_key="...") as agent_bay:
    session = agent_bay.create(CreateSessionParams(labels={"team": "a"})).session
"""

from cove.sdk.async_client import AsyncAgentBay, AsyncCommand, AsyncSession
from cove.sdk.models import (
    ApiResponse,
    CommandResult,
    Config,
    CreateSessionParams,
    DeleteResult,
    McpTool,
    McpToolResult,
    McpToolsResult,
    OperationResult,
    SessionData,
    SessionInfo,
    SessionListResult,
    SessionResult,
    SessionStatusResult,
)
from cove.sdk.sync_client import AgentBay, Command, Session

__version__ = "0.1.0"

__all__ = [
    "AgentBay",
    "ApiResponse",
    "AsyncAgentBay",
    "AsyncCommand",
    "AsyncSession",
    "Command",
    "CommandResult",
    "Config",
    "CreateSessionParams",
    "DeleteResult",
    "McpTool",
    "McpToolResult",
    "McpToolsResult",
    "OperationResult",
    "Session",
    "SessionData",
    "SessionInfo",
    "SessionListResult",
    "SessionResult",
    "SessionStatusResult",
    "__version__",
]
