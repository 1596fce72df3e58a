"""The asyncio client: `AsyncAgentBay` and the `AsyncSession` objects it hands out.

It mirrors sync_client.py line for line; what each call sends and means lives in core.py.
"""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

import httpx

from cove.sdk import core
from cove.sdk.models import (
    Config,
    CreateSessionParams,
    DeleteResult,
    OperationResult,
    Result,
    SessionData,
    SessionListResult,
    SessionResult,
    SessionStatusResult,
)

ResultT = TypeVar("ResultT", bound=Result)


class AsyncAgentBay:
    """A connection to a Cove server. Use it as an async context manager, or await `close()`."""

    def __init__(self, api_key: str = "", cfg: Config | None = None) -> None:
        self._connection = core.resolve_connection(api_key, cfg)
        self.api_key = self._connection.api_key
        self.endpoint = self._connection.endpoint
        self._http = httpx.AsyncClient(
            base_url=self.endpoint, headers=self._connection.headers, timeout=self._connection.timeout_seconds
        )

    async def _send(self, call: core.Call[ResultT]) -> ResultT:
        if call.refusal:
            return call.refused()
        try:
            response = await self._http.request(call.method, call.path, params=call.params, json=call.body)
        except httpx.HTTPError as error:
            return call.transport_failure(error)
        return call.finish(response.status_code, response.headers, response.content)

    def _bind(self, data: SessionData) -> AsyncSession:
        return AsyncSession(self, data)

    async def create(self, params: CreateSessionParams | None = None) -> SessionResult[AsyncSession]:
        """Create a session; it is RUNNING when this returns successfully."""
        return await self._send(core.create_session(params or CreateSessionParams(), self._bind))

    async def get(self, session_id: str) -> SessionResult[AsyncSession]:
        return await self._send(core.get_session(session_id, self._bind))

    async def list(
        self,
        labels: dict[str, str] | None = None,
        page: int | None = None,
        limit: int | None = None,
        status: str | None = None,
    ) -> SessionListResult:
        """One page of this key's sessions matching all `labels`; without `status`, the live ones."""
        return await self._send(core.list_sessions(labels, page, limit, status))

    async def delete(self, session: AsyncSession | str) -> DeleteResult:
        """Delete a session (or a session id); deleting one twice succeeds."""
        session_id = session if isinstance(session, str) else session.session_id
        return await self._send(core.delete_session(session_id))

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncAgentBay:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()


class AsyncSession:
    """A handle on one session; `data` is the server's description when the handle was made."""

    def __init__(self, agent_bay: AsyncAgentBay, data: SessionData) -> None:
        self.agent_bay = agent_bay
        self.data = data
        self.session_id = data.session_id
        self.resource_url = data.resource_url
        self.image_id = data.image_id

    def __repr__(self) -> str:
        return f"AsyncSession(session_id={self.session_id!r})"

    async def info(self) -> OperationResult:
        """`data` is a SessionInfo."""
        return await self.agent_bay._send(core.session_info(self.session_id))

    async def get_labels(self) -> OperationResult:
        """`data` is the labels as a dict."""
        return await self.agent_bay._send(core.get_labels(self.session_id))

    async def set_labels(self, labels: dict[str, str]) -> OperationResult:
        """Replace all labels; `data` is the labels now set."""
        return await self.agent_bay._send(core.set_labels(self.session_id, labels))

    async def get_status(self) -> SessionStatusResult:
        return await self.agent_bay._send(core.get_status(self.session_id))

    async def delete(self) -> DeleteResult:
        return await self.agent_bay.delete(self)
