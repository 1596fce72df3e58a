"""The official SDK's `upload_file` and `download_file`: one file between a client and a session.

AgentBay moves such a file through an internal "file_transfer" context of the session. An upload PUTs
the bytes to the context's upload URL, then asks the session to sync that one path down
(SyncContext `Mode=download`, `Path` = the file); a download asks it to sync the path up
(`Mode=upload`), then GETs the download URL. Both poll GetContextInfo for the task of that path.

Here the internal context is a hidden context of the session (ContextService.session_context), its
files named by their absolute path in the session, deleted when the session ends. The bytes stream
between the storage backend and the session's agent and are never held whole.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from cove.contexts.policy import check_sync_path
from cove.contexts.service import ContextService
from cove.contexts.store import ContextRecord
from cove.errors import CoveError, InvalidArgument, SessionNotFound
from cove.sandbox.agent_client import AgentClient
from cove.sessions.manager import SessionManager

TRANSFER_FOLDER = "/tmp/file_transfer"
"""The folder GetAndLoadInternalContext names (`ContextPath`); any absolute path of the session works."""


class FileTransfers:
    """Moves single files between a session and its internal context, and keeps their tasks."""

    def __init__(self, manager: SessionManager, contexts: ContextService) -> None:
        self.manager = manager
        self.contexts = contexts
        self._tasks_lock = threading.Lock()

    def context(self, tenant_id: str, session_id: str) -> ContextRecord:
        """The internal context of a live session of the caller's, made on first use."""
        if self.manager.get(tenant_id, session_id).status == "DELETED":
            raise SessionNotFound(session_id)
        return self.contexts.session_context(tenant_id, session_id)

    def is_transfer_context(self, session_id: str, context_id: str) -> bool:
        found = self.contexts.store.get_for_session(session_id)
        return found is not None and found.context_id == context_id

    def move(self, tenant_id: str, session_id: str, path: str, mode: str) -> None:
        """`download`: the context's file into the session at `path`; `upload`: the other way.

        Done when it answers; the task (Success, or Failed with the error) is kept for GetContextInfo.
        """
        mode = (mode or "upload").lower()
        if mode not in ("upload", "download"):
            raise InvalidArgument(f"Mode must be 'upload' or 'download', not {mode!r}")
        checked = check_sync_path(path, "Path")
        agent = self.manager.agent(tenant_id, session_id)
        context = self.contexts.session_context(tenant_id, session_id)
        started = int(time.time())
        try:
            if mode == "download":
                self.manager.syncs.make_folder(session_id, posixpath.dirname(checked))
                size, chunks = self.contexts.storage.open_download(context.context_id, checked)
                asyncio.run(agent.upload(checked, size, _async(chunks)))
            else:
                asyncio.run(self._receive(agent, context.context_id, checked))
        except CoveError as error:
            self._note(context.context_id, path, mode, started, error.message)
            raise
        self._note(context.context_id, path, mode, started, "")

    async def _receive(self, agent: AgentClient, context_id: str, path: str) -> None:
        """The session's file at `path` into the context, streamed; it appears only whole."""
        _, body = await agent.download(path)
        pending = self.contexts.storage.open_upload(context_id, path)
        try:
            async for chunk in body:
                pending.write(chunk)
        except BaseException:
            pending.abort()
            raise
        pending.commit()

    def _note(self, context_id: str, path: str, kind: str, started: int, error: str) -> None:
        """Keep the task, replacing the last one of the same path and kind."""
        task = {
            "contextId": context_id,
            "path": path,
            "errorMessage": error,
            "status": "Failed" if error else "Success",
            "startTime": started,
            "finishTime": int(time.time()),
            "taskType": kind,
        }
        with self._tasks_lock:
            record = self.contexts.store.get_by_id(context_id)
            if record is None:
                return  # the session ended meanwhile, and its context with it
            kept = [
                other
                for other in json.loads(record.tasks or "[]")
                if (other["path"], other["taskType"]) != (path, kind)
            ]
            self.contexts.store.change(context_id, tasks=json.dumps([*kept, task]))

    def tasks(self, tenant_id: str, session_id: str) -> list[dict[str, Any]]:
        """The file-transfer tasks of the session, as GetContextInfo reports them."""
        self.manager.get(tenant_id, session_id)
        found = self.contexts.store.get_for_session(session_id)
        tasks: list[dict[str, Any]] = json.loads(found.tasks or "[]") if found else []
        return tasks


async def _async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
