"""The session lifecycle: every API surface calls this, and this alone drives the store and runtime.

A row is written before its sandbox exists (status CREATING, never shown to clients) and removed
again if the sandbox cannot start, so a crash at any point leaves something `reconcile` can finish.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import secrets
import shutil
import string
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from cove.agent.tools import all_tools
from cove.config import Settings
from cove.contexts.sync import ContextSync, check_syncs, export_tar, import_tar
from cove.errors import (
    CoveError,
    FileNotFound,
    InvalidArgument,
    InvalidState,
    QuotaExceeded,
    SandboxError,
    SessionNotFound,
)
from cove.paging import Page, check_page
from cove.sandbox.accounting import SessionMetrics
from cove.sandbox.agent_client import AgentClient
from cove.sandbox.images import ImageStore
from cove.sandbox.runtime import CleanupReport, RuncRuntime
from cove.sessions.store import SessionRecord, Store, utc_now
from cove.sessions.validation import (
    STATUSES,
    check_labels,
    check_limits,
    check_status,
    check_timeouts,
    check_tool_call,
)
from cove.sessions.warm_pool import WarmPool

if TYPE_CHECKING:
    from cove.contexts.service import ContextService

log = logging.getLogger(__name__)

CREATING = "CREATING"  # internal: between the row and a started sandbox
LIVE_STATUSES = ["RUNNING", "PAUSING", "PAUSED", "RESUMING"]
LISTED_BY_DEFAULT = [s for s in STATUSES if s != "DELETED"]
REASON_USER = "deleted by its owner"
REASON_DIED_WHILE_DOWN = "the sandbox process exited while the server was down"
REASON_DIED = "the sandbox process exited"
ACTIVITY_RESOLUTION_S = 5.0
"""Activity is written down at most this often per session (or a quarter of its idle timeout)."""
METRICS_WINDOW_S = 0.1
"""Rates (CPU, network) are measured over this long."""
_ID_ALPHABET = string.ascii_lowercase + string.digits


HOST_TOOLS: list[dict[str, Any]] = [
    {
        "name": "get_metrics",
        "description": (
            "The session's resource use, read by the host from the kernel's accounting: CPU (count, "
            "percent of its limit, seconds), memory, disk written, processes, network bytes and rates."
        ),
        "inputSchema": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
    }
]
"""Tools the server itself serves, beside the agent's: they need the host's view of the session."""


def tool_catalogue() -> list[dict[str, Any]]:
    """Every tool a session serves, described without asking a sandbox (the agent's code is here too)."""
    return [tool.describe() for tool in all_tools().values()] + HOST_TOOLS


def _expiry(record: SessionRecord, now: datetime) -> str:
    """Why the session should end now, or "" if it may live on. A paused session is never idle."""
    if record.max_lifetime_s and (now - record.created_at).total_seconds() > record.max_lifetime_s:
        return f"reached its maximum lifetime of {record.max_lifetime_s} s"
    idle_for = (now - record.active_at).total_seconds()
    if record.status == "RUNNING" and record.idle_timeout_s and idle_for > record.idle_timeout_s:
        return f"idle for more than its idle timeout of {record.idle_timeout_s} s"
    return ""


TOOL_NAMES = frozenset(tool["name"] for tool in tool_catalogue())


class Observer:
    """What the manager reports as it works, for the server's metrics; this one notes nothing."""

    def session_created(self, seconds: float) -> None:
        """A session became RUNNING `seconds` after its create was asked for."""

    def tool_called(self, tool: str, outcome: str, seconds: float) -> None:
        """A tool call ended: "ok", "error" (the tool failed), "invalid" (refused) or "failed"."""


def new_session_id() -> str:
    """AgentBay-style id, also the sandbox hostname: 'session-' and 17 random characters."""
    return "session-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


@dataclass(frozen=True)
class CreateRequest:
    image_id: str | None = None
    labels: Mapping[str, str] | None = None
    memory_mb: Any = None
    cpus: Any = None
    pids: Any = None
    idle_timeout_s: Any = None
    max_lifetime_s: Any = None
    context_syncs: Any = None
    """A list of {context_id, path, policy} (contexts/sync.py)."""


@dataclass(frozen=True)
class RecoveryReport:
    kept: list[str]
    ended: list[str]
    leftovers: CleanupReport


class SessionManager:
    def __init__(self, settings: Settings, store: Store, runtime: RuncRuntime, images: ImageStore) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.images = images
        self._quota_lock = threading.Lock()
        self.warm_pool: WarmPool | None = None
        self.observer = Observer()
        self.contexts: ContextService | None = None
        """Set by the server: the contexts that sessions sync (create and release)."""

    def start_warm_pool(self) -> None:
        """Keep `settings.warm_pool` sandboxes prepared for creates with the default image and limits."""
        image = self.images.get(self.settings.default_image)
        limits = check_limits(self.settings)
        self.warm_pool = WarmPool(self.runtime, image, limits, self.settings.warm_pool, new_session_id)
        self.warm_pool.start()

    def close(self) -> None:
        if self.warm_pool is not None:
            self.warm_pool.close()

    def create(self, tenant_id: str, request: CreateRequest) -> SessionRecord:
        started = time.perf_counter()
        labels = check_labels(request.labels)
        limits = check_limits(self.settings, request.memory_mb, request.cpus, request.pids)
        idle_timeout_s, max_lifetime_s = check_timeouts(
            self.settings, request.idle_timeout_s, request.max_lifetime_s
        )
        syncs = check_syncs(request.context_syncs)
        for sync in syncs:
            self._context_service().get(tenant_id, sync.context_id)  # 404 unless it is the caller's
        image = self.images.get(request.image_id or self.settings.default_image)
        prepared = self.warm_pool.take(image) if self.warm_pool else None
        now = utc_now()
        record = SessionRecord(
            session_id=prepared or new_session_id(),
            tenant_id=tenant_id,
            image_id=image.image_id,
            status=CREATING,
            memory_mb=limits.memory_mb,
            cpus=limits.cpus,
            pids=limits.pids,
            created_at=now,
            updated_at=now,
            labels=labels,
            idle_timeout_s=idle_timeout_s,
            max_lifetime_s=max_lifetime_s,
        )
        with self._quota_lock:
            live = self.store.insert_session_within_quota(record, self.settings.session_quota)
        if live is not None:
            if prepared and self.warm_pool:
                self.warm_pool.give_back(prepared)
            raise QuotaExceeded(
                f"this API key already has {live} live sessions, the quota is "
                f"{self.settings.session_quota}; delete a session first"
            )
        try:
            self.store.add_context_syncs(
                record.session_id,
                [{"context_id": s.context_id, "path": s.path, "policy": s.policy_json()} for s in syncs],
            )
            if prepared and self.warm_pool:
                self.runtime.start(prepared, None if limits == self.warm_pool.limits else limits)
            else:
                self.runtime.create(record.session_id, image, limits)
        except BaseException:
            self.store.delete_session_row(record.session_id)
            raise
        try:
            self._download_contexts(record.session_id, syncs)
        except BaseException:
            self.runtime.destroy(record.session_id)
            self.store.delete_session_row(record.session_id)
            raise
        self.store.set_status(record.session_id, "RUNNING", only_from=[CREATING])
        record.status = "RUNNING"
        self.observer.session_created(time.perf_counter() - started)
        return record

    def get(self, tenant_id: str, session_id: str) -> SessionRecord:
        record = self.store.get_session(session_id)
        if record is None or record.tenant_id != tenant_id or record.status == CREATING:
            raise SessionNotFound(session_id)
        return record

    def list(
        self,
        tenant_id: str,
        *,
        labels: Mapping[str, str] | None = None,
        status: str | None = None,
        image_id: str | None = None,
        page: int = 1,
        limit: int = 10,
    ) -> Page[SessionRecord]:
        page, limit = check_page(page, limit)
        status = check_status(status)
        records, total = self.store.list_sessions(
            tenant_id=tenant_id,
            statuses=[status] if status else LISTED_BY_DEFAULT,
            labels=check_labels(labels),
            image_id=image_id,
            offset=(page - 1) * limit,
            limit=limit,
        )
        return Page(items=records, total_count=total, page=page, limit=limit)

    def set_labels(self, tenant_id: str, session_id: str, labels: Mapping[str, str]) -> SessionRecord:
        checked = check_labels(labels)
        self.get(tenant_id, session_id)
        self.store.replace_labels(session_id, checked)
        return self.get(tenant_id, session_id)

    def delete(self, tenant_id: str, session_id: str) -> SessionRecord:
        """End a session; deleting one that is already gone succeeds."""
        record = self.get(tenant_id, session_id)
        if record.status != "DELETED":
            self._end(session_id, REASON_USER)
        return self.get(tenant_id, session_id)

    def _end(self, session_id: str, reason: str) -> bool:
        """Remove a live session's sandbox and mark it DELETED with `reason`; False if it was not live.

        Synced folders are uploaded to their contexts first; if that fails the session is kept
        as it was and the error raised, so no work is lost silently.
        """
        record = self.store.get_session(session_id)
        if record is None or record.status not in LIVE_STATUSES:
            return False
        self._upload_before_release(record)
        if not self.store.set_status(session_id, "DELETING", only_from=LIVE_STATUSES):
            return False
        self.runtime.destroy(session_id)
        self.store.set_status(session_id, "DELETED", reason, only_from=["DELETING"])
        return True

    # Context syncs (contexts/sync.py)

    def _context_service(self) -> ContextService:
        if self.contexts is None:
            raise InvalidArgument("context syncs are not available on this server")
        return self.contexts

    def _download_contexts(self, session_id: str, syncs: builtins.list[ContextSync]) -> None:
        """Unpack each context with autoDownload into its path, before create returns."""
        for position, sync in enumerate(syncs):
            if sync.auto_download:
                self._download(session_id, position, sync)

    def _download(self, session_id: str, position: int, sync: ContextSync) -> None:
        """Unpack the context's files into `sync.path` in the sandbox (created if missing)."""
        agent = AgentClient(self.runtime.agent_run_dir(session_id), session_id)
        started = int(time.time())
        try:
            with tempfile.TemporaryFile() as spool:
                export_tar(self._context_service().storage, sync.context_id, spool)
                size = spool.tell()
                spool.seek(0)
                asyncio.run(agent.unpack(sync.path, size, _read_chunks(spool)))
        except CoveError as error:
            self._note_task(session_id, position, sync, "download", started, error.message)
            raise
        self._note_task(session_id, position, sync, "download", started, "")

    def sync_contexts(
        self, tenant_id: str, session_id: str, context_id: str = "", path: str = "", mode: str = ""
    ) -> int:
        """Sync the session's contexts now (all, or those of `context_id` and/or `path`); answers how many.

        `mode` is "upload" (the default: the folder into the context) or "download".
        """
        self.agent(tenant_id, session_id)  # a RUNNING session of the caller's
        mode = (mode or "upload").lower()
        if mode not in ("upload", "download"):
            raise InvalidArgument(f"mode must be 'upload' or 'download', not {mode!r}")
        chosen = [
            (position, sync)
            for position, sync in enumerate(
                ContextSync.from_row(row) for row in self.store.context_syncs(session_id)
            )
            if (not context_id or sync.context_id == context_id)
            and (not path or sync.path == path.rstrip("/"))
        ]
        if not chosen and (context_id or path):
            raise InvalidArgument(
                f"session {session_id} syncs no context {context_id or '(any)'} at {path or '(any path)'}; "
                "give a context and path it was created with"
            )
        for position, sync in chosen:
            if mode == "upload":
                self._upload(session_id, position, sync)
            else:
                self._download(session_id, position, sync)
        return len(chosen)

    def _note_task(
        self, session_id: str, position: int, sync: ContextSync, kind: str, started: int, error: str
    ) -> None:
        rows = self.store.context_syncs(session_id)
        tasks = [task for task in json.loads(rows[position]["tasks"]) if task["taskType"] != kind]
        tasks.append(
            {
                "contextId": sync.context_id,
                "path": sync.path,
                "errorMessage": error,
                "status": "Failed" if error else "Success",
                "startTime": started,
                "finishTime": int(time.time()),
                "taskType": kind,
            }
        )
        self.store.set_sync_tasks(session_id, position, json.dumps(tasks))

    def context_tasks(self, tenant_id: str, session_id: str) -> builtins.list[dict[str, Any]]:
        """The download and upload tasks of the session's context syncs (AgentBay's GetContextInfo)."""
        self.get(tenant_id, session_id)
        tasks: builtins.list[dict[str, Any]] = []
        for row in self.store.context_syncs(session_id):
            tasks.extend(json.loads(row["tasks"]))
        return tasks

    def _upload_before_release(self, record: SessionRecord) -> None:
        syncs = [ContextSync.from_row(row) for row in self.store.context_syncs(record.session_id)]
        if not any(sync.auto_upload for sync in syncs):
            return
        if record.status not in ("RUNNING", "PAUSED"):
            raise InvalidState(f"session {record.session_id} is {record.status}; delete it again in a moment")
        if record.status == "PAUSED":
            self.runtime.resume(record.session_id)
        try:
            for position, sync in enumerate(syncs):
                if sync.auto_upload:
                    self._upload(record.session_id, position, sync)
        except BaseException:
            if record.status == "PAUSED":
                self.runtime.pause(record.session_id)
            raise

    def _upload(self, session_id: str, position: int, sync: ContextSync) -> None:
        """Pack `sync.path` in the sandbox and write its files into the context."""
        agent = AgentClient(self.runtime.agent_run_dir(session_id), session_id)
        started = int(time.time())
        if self._context_service().store.get_by_id(sync.context_id) is None:
            # Deleted meanwhile: writing would bring its folder back as an orphan. Not worth keeping
            # the session for, since there is nowhere left to put the files.
            self._note_task(session_id, position, sync, "upload", started, "the context was deleted")
            log.warning(
                "session %s: context %s was deleted; %s not uploaded", session_id, sync.context_id, sync.path
            )
            return
        try:
            with tempfile.TemporaryFile() as spool:
                try:
                    asyncio.run(_receive(agent.pack(sync.path), spool))
                except FileNotFound:
                    return  # the folder is gone from the session: nothing to upload, nothing removed
                spool.seek(0)
                report = import_tar(
                    self._context_service().storage, sync.context_id, spool, sync.sync_deletions
                )
        except Exception as error:
            message = error.message if isinstance(error, CoveError) else str(error)
            self._note_task(session_id, position, sync, "upload", started, message or type(error).__name__)
            raise SandboxError(
                f"could not upload {sync.path} of session {session_id} to context {sync.context_id}: "
                f"{message}; the session is kept, delete it again to retry"
            ) from None
        if report.skipped:
            log.warning(
                "session %s: %d entries of %s not uploaded (links, special files or unsafe names): %s",
                session_id,
                len(report.skipped),
                sync.path,
                report.skipped[:10],
            )
        self._note_task(session_id, position, sync, "upload", started, "")

    def keep_alive(self, tenant_id: str, session_id: str) -> SessionRecord:
        """Count as activity now: the idle timeout starts again."""
        record = self.get(tenant_id, session_id)
        if record.status not in LIVE_STATUSES:
            raise InvalidState(f"session {session_id} is {record.status}")
        self.store.mark_active(session_id, utc_now())
        return record

    def _touch(self, record: SessionRecord) -> None:
        """Note activity for the idle timeout; at most every few seconds, to spare the database."""
        now = utc_now()
        resolution = min(ACTIVITY_RESOLUTION_S, record.idle_timeout_s / 4)
        if record.idle_timeout_s and (now - record.active_at).total_seconds() >= resolution:
            self.store.mark_active(record.session_id, now)

    def expire(self) -> builtins.list[str]:
        """Delete the sessions past their idle timeout or maximum lifetime; answers their ids."""
        now = utc_now()
        ended = []
        records, _ = self.store.list_sessions(statuses=LIVE_STATUSES)
        for record in records:
            reason = _expiry(record, now)
            try:
                if reason and self._end(record.session_id, reason):
                    log.info("session %s ended: %s", record.session_id, reason)
                    ended.append(record.session_id)
            except CoveError as error:  # kept, and tried again on the next sweep
                log.warning("session %s not ended (%s): %s", record.session_id, reason, error.message)
        return ended

    def pause(self, tenant_id: str, session_id: str) -> SessionRecord:
        """Freeze a RUNNING session: its processes keep their memory and files but get no CPU."""
        return self._transition(tenant_id, session_id, ("RUNNING", "PAUSING", "PAUSED"), self.runtime.pause)

    def resume(self, tenant_id: str, session_id: str) -> SessionRecord:
        """Thaw a PAUSED session; its idle timeout starts again from now."""
        record = self._transition(
            tenant_id, session_id, ("PAUSED", "RESUMING", "RUNNING"), self.runtime.resume
        )
        self.store.mark_active(session_id, utc_now())
        return record

    def _transition(
        self,
        tenant_id: str,
        session_id: str,
        statuses: tuple[str, str, str],
        act: Callable[[str], None],
    ) -> SessionRecord:
        """Move from `before` through `during` (while `act` runs) to `after`; back to `before` on failure.

        Asking for the state a session is already in succeeds; any other state answers 409.
        """
        before, during, after = statuses
        record = self.get(tenant_id, session_id)
        if record.status == after:
            return record
        if not self.store.set_status(session_id, during, only_from=[before]):
            raise InvalidState(
                f"session {session_id} is {self.get(tenant_id, session_id).status}; "
                f"only a {before} session can become {after}"
            )
        try:
            act(session_id)
        except BaseException:
            self.store.set_status(session_id, before, only_from=[during])
            raise
        self.store.set_status(session_id, after, only_from=[during])
        return self.get(tenant_id, session_id)

    def metrics(self, tenant_id: str, session_id: str) -> SessionMetrics:
        """CPU, memory, disk, processes and network of a live session, over a short window."""
        record = self.get(tenant_id, session_id)
        if record.status not in LIVE_STATUSES:
            raise InvalidState(f"session {session_id} is {record.status}; only live sessions have metrics")
        first = self.runtime.usage(session_id)
        time.sleep(METRICS_WINDOW_S)
        second = self.runtime.usage(session_id)
        disk_total = shutil.disk_usage(self.runtime.sessions_dir).total
        return SessionMetrics.between(first, second, record.cpus, disk_total)

    def agent(self, tenant_id: str, session_id: str) -> AgentClient:
        """The client of a RUNNING session's tool agent (for calls and streamed transfers)."""
        record = self.get(tenant_id, session_id)
        if record.status != "RUNNING":
            advice = "; resume it first" if record.status in ("PAUSED", "PAUSING") else ""
            raise InvalidState(
                f"session {session_id} is {record.status}; tools run only in a RUNNING session{advice}"
            )
        self._touch(record)
        return AgentClient(self.runtime.agent_run_dir(session_id), session_id)

    def list_tools(self, tenant_id: str, session_id: str) -> builtins.list[dict[str, Any]]:
        """The session's tools, as MCP describes them (name, description, inputSchema)."""
        tools: builtins.list[dict[str, Any]] = self.agent(tenant_id, session_id).call("tools/list", {})[
            "tools"
        ]
        return tools + HOST_TOOLS

    def call_tool(self, tenant_id: str, session_id: str, name: str, arguments: Any) -> dict[str, Any]:
        """Run one tool in the session; answers MCP's result ({"content": [...], "isError": bool})."""
        started, outcome = time.perf_counter(), "failed"
        try:
            result = self._call_tool(tenant_id, session_id, name, arguments)
            outcome = "error" if result.get("isError") else "ok"
            return result
        except InvalidArgument:
            outcome = "invalid"
            raise
        finally:
            known = name if name in TOOL_NAMES else "other"  # client-chosen names must not grow the labels
            self.observer.tool_called(known, outcome, time.perf_counter() - started)

    def _call_tool(self, tenant_id: str, session_id: str, name: str, arguments: Any) -> dict[str, Any]:
        timeout_s = check_tool_call(self.settings, name, arguments)
        if name == "get_metrics":
            if arguments:
                raise InvalidArgument("get_metrics: it takes no arguments")
            metrics = asdict(self.metrics(tenant_id, session_id))
            return {"content": [{"type": "text", "text": json.dumps(metrics)}], "isError": False}
        params = {"name": name, "arguments": arguments}
        return self.agent(tenant_id, session_id).call("tools/call", params, timeout_s)

    def reconcile(self, *, at_startup: bool = False) -> RecoveryReport:
        """Match the database with the sandboxes that really exist.

        At startup (no request is under way) it also finishes interrupted creates and deletes and
        sweeps containers, mounts, cgroups and folders that no session owns. Later it only notices
        sandboxes that died on their own.
        """
        watched = LIVE_STATUSES + ([CREATING, "DELETING"] if at_startup else [])
        records, _ = self.store.list_sessions(statuses=watched)
        # Rows first, then containers: a session created in between is simply not looked at.
        states = self.runtime.states()
        kept, ended = [], []
        for record in records:
            if record.status == CREATING:
                self.runtime.destroy(record.session_id)
                self.store.delete_session_row(record.session_id)
            elif record.status == "DELETING":
                self.runtime.destroy(record.session_id)
                self.store.set_status(record.session_id, "DELETED", REASON_USER)
            elif states.get(record.session_id) in ("running", "paused"):
                kept.append(record.session_id)
                if at_startup and record.status in ("PAUSING", "RESUMING"):
                    # A pause or resume cut off midway: the container's state says how far it got.
                    settled = "PAUSED" if states[record.session_id] == "paused" else "RUNNING"
                    self.store.set_status(record.session_id, settled, only_from=[record.status])
            else:
                reason = REASON_DIED_WHILE_DOWN if at_startup else REASON_DIED
                self.runtime.destroy(record.session_id)
                if self.store.set_status(record.session_id, "DELETED", reason, only_from=LIVE_STATUSES):
                    ended.append(record.session_id)
                    log.warning("session %s ended: %s", record.session_id, reason)
        leftovers = (
            self.runtime.cleanup_leftovers(keep=set(kept)) if at_startup else CleanupReport([], [], [], [])
        )
        expired = self.expire()
        return RecoveryReport(
            kept=[k for k in kept if k not in expired], ended=ended + expired, leftovers=leftovers
        )


async def _read_chunks(source: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := source.read(1024 * 1024):
        yield chunk


async def _receive(stream: Any, target: IO[bytes]) -> None:
    """Write a stream the agent sends (an awaitable of an async iterator of bytes) into `target`."""
    async for chunk in await stream:
        target.write(chunk)
