"""Cove: self-hosted sandboxes for AI agents, with a Python SDK shaped like AgentBay's.

from cove import AgentBay, CreateSessionParams

with AgentBay(api_key="...") as agent_bay:
    session = agent_bay.create(CreateSessionParams(labels={"team": "a"})).session
"""

from cove.sdk.async_client import AsyncAgentBay, AsyncCommand, AsyncFileSystem, AsyncSession
from cove.sdk.models import (
    ApiResponse,
    BinaryFileContentResult,
    BoolResult,
    CommandResult,
    Config,
    CreateSessionParams,
    DeleteResult,
    DirectoryEntry,
    DirectoryListResult,
    DownloadResult,
    FileChangeEvent,
    FileChangeResult,
    FileContentResult,
    FileInfoResult,
    FileSearchResult,
    McpTool,
    McpToolResult,
    McpToolsResult,
    MultipleFileContentResult,
    OperationResult,
    ProcessInfo,
    ProcessListResult,
    ProcessOutputResult,
    ProcessResult,
    SessionData,
    SessionInfo,
    SessionListResult,
    SessionPauseResult,
    SessionResult,
    SessionResumeResult,
    SessionStatusResult,
    UploadResult,
)
from cove.sdk.sync_client import AgentBay, Command, FileSystem, Session

__version__ = "0.1.0"

__all__ = [
    "AgentBay",
    "ApiResponse",
    "AsyncAgentBay",
    "AsyncCommand",
    "AsyncFileSystem",
    "AsyncSession",
    "BinaryFileContentResult",
    "BoolResult",
    "Command",
    "CommandResult",
    "Config",
    "CreateSessionParams",
    "DeleteResult",
    "DirectoryEntry",
    "DirectoryListResult",
    "DownloadResult",
    "FileChangeEvent",
    "FileChangeResult",
    "FileContentResult",
    "FileInfoResult",
    "FileSearchResult",
    "FileSystem",
    "McpTool",
    "McpToolResult",
    "McpToolsResult",
    "MultipleFileContentResult",
    "OperationResult",
    "ProcessInfo",
    "ProcessListResult",
    "ProcessOutputResult",
    "ProcessResult",
    "Session",
    "SessionData",
    "SessionInfo",
    "SessionListResult",
    "SessionPauseResult",
    "SessionResult",
    "SessionResumeResult",
    "SessionStatusResult",
    "UploadResult",
]
