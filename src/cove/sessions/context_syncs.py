"""The context syncs of sessions: download at create, upload on demand, periodically, and before
release, each noted as a task (Pending, Running, Success, Failed) that GetContextInfo reports.

Release is crash-safe: the session becomes DELETING and its uploads Pending in one transaction
before anything is uploaded, and its sandbox and writable layer are removed only once every pending
upload has succeeded. A server killed meanwhile finds the pending uploads at startup and finishes
them (`upload_pending`). A sandbox that is not running (its init died) is read from its writable
layer on the host instead of through its agent (sandbox/layer_pack.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from cove.contexts.policy import LIFECYCLE_DAYS, ContextSync
from cove.contexts.recycle import RecycleRules
from cove.contexts.sync import export_tar, import_tar
from cove.contexts.transfer_limits import TransferBudget, TransferLimits
from cove.errors import ContextUploadFailed, CoveError, FileNotFound, InvalidArgument
from cove.sandbox.agent_client import AgentClient
from cove.sandbox.images import ImageStore
from cove.sandbox.layer_pack import pack_from_host
from cove.sandbox.runtime import RuncRuntime
from cove.sandbox.sync_folders import make_user_folder
from cove.sessions.store import SessionRecord, Store, _aware, utc_now

if TYPE_CHECKING:
    from cove.contexts.service import ContextService

log = logging.getLogger(__name__)

PENDING, RUNNING, SUCCESS, FAILED = "Pending", "Running", "Success", "Failed"
UNFINISHED = (PENDING, RUNNING)
TASK_TYPES = ("upload", "download")
PERIODIC_TICK_S = 1.0
"""How often periodic uploads are looked for; periods are whole seconds or more."""
LISTED_NAMES = 20
"""Files a task's error message names at most."""
RECYCLE_INTERVAL_S = 600.0
"""How often context files past their lifecycle are looked for."""


@dataclass(frozen=True)
class Binding:
    """A sync of a session as list_bindings shows it: with its context's name and when it was bound."""

    sync: ContextSync
    context_name: str
    bound_at: datetime


def select_tasks(
    tasks: list[dict[str, Any]], context_id: str = "", path: str = "", task_type: str = ""
) -> list[dict[str, Any]]:
    """The tasks that match every filter given, as GetContextInfo filters them."""
    if task_type and task_type not in TASK_TYPES:
        raise InvalidArgument(f"task_type must be 'upload' or 'download', not {task_type!r}")
    wanted = {"contextId": context_id, "path": path.rstrip("/") or path, "taskType": task_type}
    return [task for task in tasks if all(not value or task[key] == value for key, value in wanted.items())]


class SessionSyncs:
    """Moves the files of sessions' context syncs; one upload or download per session at a time."""

    def __init__(
        self,
        store: Store,
        runtime: RuncRuntime,
        images: ImageStore,
        contexts: Callable[[], ContextService],
        limits: TransferLimits,
    ) -> None:
        self.store = store
        self.limits = limits
        self.runtime = runtime
        self.images = images
        self._contexts = contexts
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.recycle_rules = RecycleRules(store.engine)
        self._recycled_at = 0.0

    @contextmanager
    def lock(self, session_id: str, wait: bool = True) -> Iterator[bool]:
        """The session's sync lock; yields whether it was taken (always, when `wait`)."""
        with self._guard:
            lock = self._locks.setdefault(session_id, threading.Lock())
        taken = lock.acquire(blocking=wait)
        try:
            yield taken
        finally:
            if taken:
                lock.release()

    def forget(self, session_id: str) -> None:
        """Drop the lock of a session that ended."""
        with self._guard:
            self._locks.pop(session_id, None)

    def of(self, session_id: str) -> list[ContextSync]:
        return [ContextSync.from_row(row) for row in self.store.context_syncs(session_id)]

    def chosen(self, session_id: str, context_id: str, path: str) -> list[tuple[int, ContextSync]]:
        """The syncs of `context_id` and/or `path` (all without either), by position; 400 if a filter
        matches none, so that a mistyped id or path is not taken for "nothing to do"."""
        found = [
            (position, sync)
            for position, sync in enumerate(self.of(session_id))
            if (not context_id or sync.context_id == context_id)
            and (not path or sync.path == path.rstrip("/"))
        ]
        if not found and (context_id or path):
            raise InvalidArgument(
                f"session {session_id} syncs no context {context_id or '(any)'} at {path or '(any path)'}; "
                "give a context and path it was created with or bound to"
            )
        return found

    def bindings(self, record: SessionRecord) -> list[Binding]:
        """The session's syncs; those made at create were bound when the session was created."""
        contexts = self._contexts().store
        found = []
        for row in self.store.context_syncs(record.session_id):
            context = contexts.get_by_id(row["context_id"])
            name = context.name if context else ""
            found.append(Binding(ContextSync.from_row(row), name, row["bound_at"] or record.created_at))
        return found

    # Tasks

    def _tasks(
        self,
        session_id: str,
        position: int,
        sync: ContextSync,
        kind: str,
        status: str,
        started: int,
        error: str,
    ) -> str:
        """The sync's task list with its `kind` task replaced, as JSON."""
        row = self.store.context_syncs(session_id)[position]
        tasks = [task for task in json.loads(row["tasks"]) if task["taskType"] != kind]
        tasks.append(
            {
                "contextId": sync.context_id,
                "path": sync.path,
                "errorMessage": error,
                "status": status,
                "startTime": started,
                "finishTime": 0 if status in UNFINISHED else int(time.time()),
                "taskType": kind,
            }
        )
        return json.dumps(tasks)

    def _note(
        self,
        session_id: str,
        position: int,
        sync: ContextSync,
        kind: str,
        status: str,
        started: int,
        error: str = "",
    ) -> None:
        tasks = self._tasks(session_id, position, sync, kind, status, started, error)
        self.store.set_sync_tasks(session_id, position, tasks)

    def tasks(self, session_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for row in self.store.context_syncs(session_id):
            found.extend(json.loads(row["tasks"]))
        return found

    def settle_interrupted(self, session_id: str) -> None:
        """Mark the unfinished tasks of a live session failed: a restart of the server cut them off."""
        for position, row in enumerate(self.store.context_syncs(session_id)):
            tasks = json.loads(row["tasks"])
            if any(task["status"] in UNFINISHED for task in tasks):
                for task in tasks:
                    if task["status"] in UNFINISHED:
                        task.update(status=FAILED, errorMessage="interrupted by a restart of the server")
                self.store.set_sync_tasks(session_id, position, json.dumps(tasks))

    # Moving files

    def on_create(self, session_id: str, syncs: list[ContextSync], first: int = 0) -> None:
        """Set each context's lifecycle (recyclePolicy), make each sync's folder, and unpack each
        sync with autoDownload into it, before create (or bind, whose syncs start at `first`) returns."""
        for sync in syncs:
            self.recycle_rules.set(sync.context_id, LIFECYCLE_DAYS[sync.lifecycle], sync.recycle_paths)
            self.make_folder(session_id, sync.path)
        for position, sync in enumerate(syncs, first):
            if sync.auto_download:
                self.download(session_id, position, sync)

    def make_folder(self, session_id: str, path: str) -> None:
        """Make the folder `path` in the running session, the missing parts owned by its user."""
        rootfs = self.runtime.session_dir(session_id) / "rootfs"
        make_user_folder(rootfs, path, self.runtime.sandbox_user(session_id))

    def download(self, session_id: str, position: int, sync: ContextSync) -> None:
        """Unpack the context's files into `sync.path` in the sandbox (created if missing)."""
        agent = AgentClient(self.runtime.agent_run_dir(session_id), session_id)
        started = int(time.time())
        self._note(session_id, position, sync, "download", RUNNING, started)
        try:
            with self.limits.spool() as spool:
                export_tar(self._contexts().storage, sync, spool, self.limits.spool)
                size = spool.tell()
                spool.seek(0)
                asyncio.run(agent.unpack(sync.path, size, _read_chunks(spool)))
        except CoveError as error:
            self._note(session_id, position, sync, "download", FAILED, started, error.message)
            raise
        self._note(session_id, position, sync, "download", SUCCESS, started)

    def upload(self, session_id: str, position: int, sync: ContextSync, root: Path | None = None) -> None:
        """Pack `sync.path` (in the sandbox, or below `root` on the host) and write it into the context.

        The pack runs under the server's transfer limits: past the per-sync cap or the deadline the
        upload fails (nothing of it written); sparse files and files over the per-file cap are left
        out, named in the task's error message, and their context files kept as they were."""
        started = int(time.time())
        if self._contexts().store.get_by_id(sync.context_id) is None:
            # Deleted meanwhile: writing would bring its folder back as an orphan, and there is
            # nowhere left to put the files, so this is not worth keeping the session for.
            self._note(session_id, position, sync, "upload", FAILED, started, "the context was deleted")
            log.warning(
                "session %s: context %s was deleted; %s not uploaded", session_id, sync.context_id, sync.path
            )
            return
        self._note(session_id, position, sync, "upload", RUNNING, started)
        try:
            with self.limits.spool() as spool:
                try:
                    self._pack(session_id, sync.path, root, spool)
                except FileNotFound:  # the folder is gone: nothing to upload, nothing removed
                    self._note(session_id, position, sync, "upload", SUCCESS, started)
                    return
                spool.seek(0)
                storage = self._contexts().storage
                report = import_tar(storage, sync, spool, self.limits.max_file_bytes, self.limits.spool)
        except Exception as error:
            message = (error.message if isinstance(error, CoveError) else str(error)) or type(error).__name__
            self._note(session_id, position, sync, "upload", FAILED, started, message)
            where = f"{sync.path} of session {session_id} to context {sync.context_id}"
            raise ContextUploadFailed(f"could not upload {where}: {message}") from None
        if report.skipped:
            log.warning(
                "session %s: %d entries of %s not uploaded (links, special files or unsafe names): %s",
                session_id,
                len(report.skipped),
                sync.path,
                report.skipped[:10],
            )
        left_out = _listed("not uploaded", report.left_out)
        if left_out:
            log.warning("session %s: %s %s", session_id, sync.path, left_out)
        self._note(session_id, position, sync, "upload", SUCCESS, started, left_out)

    def _pack(self, session_id: str, path: str, root: Path | None, spool: IO[bytes]) -> None:
        budget = self.limits.start()
        if root is not None:
            user = self.runtime.sandbox_user(session_id)
            counted = cast(IO[bytes], _Counted(spool, budget))  # tarfile only writes and tells
            pack_from_host(root, path, user, counted, self.limits)
            return
        agent = AgentClient(self.runtime.agent_run_dir(session_id), session_id)
        asyncio.run(_receive(agent.pack(path, self.limits.max_file_bytes), spool, budget))

    def sync_now(self, session_id: str, context_id: str, path: str, mode: str) -> list[dict[str, Any]]:
        """Upload (or download) the session's syncs of `context_id` and/or `path` now; answers their
        tasks of that kind, once done."""
        mode = (mode or "upload").lower()
        if mode not in TASK_TYPES:
            raise InvalidArgument(f"mode must be 'upload' or 'download', not {mode!r}")
        chosen = self.chosen(session_id, context_id, path)
        with self.lock(session_id):
            for position, sync in chosen:
                if mode == "upload":
                    self.upload(session_id, position, sync)
                else:
                    self.download(session_id, position, sync)
        return select_tasks(self.tasks(session_id), context_id, path, mode)

    # Release

    def begin_release(self, record: SessionRecord, reason: str) -> bool:
        """DELETING, with an upload Pending for each sync with autoUpload; False if it was not live."""
        started = int(time.time())
        pending = {
            position: self._tasks(record.session_id, position, sync, "upload", PENDING, started, "")
            for position, sync in enumerate(self.of(record.session_id))
            if sync.auto_upload
        }
        return self.store.begin_release(record.session_id, reason, pending, [record.status])

    def pending(self, session_id: str) -> list[tuple[int, ContextSync]]:
        """The syncs whose upload is Pending or was Running."""
        rows = self.store.context_syncs(session_id)
        return [
            (position, ContextSync.from_row(row))
            for position, row in enumerate(rows)
            if any(
                task["taskType"] == "upload" and task["status"] in UNFINISHED
                for task in json.loads(row["tasks"])
            )
        ]

    def retry_later(self, session_id: str) -> None:
        """Note the failed uploads of an ending session Pending again, their error kept: its end waits
        for them, and the next reconcile tries them again."""
        for position, row in enumerate(self.store.context_syncs(session_id)):
            tasks = json.loads(row["tasks"])
            failed = [t for t in tasks if t["taskType"] == "upload" and t["status"] == FAILED]
            for task in failed:
                task.update(status=PENDING, finishTime=0)
            if failed:
                self.store.set_sync_tasks(session_id, position, json.dumps(tasks))

    def upload_pending(self, record: SessionRecord) -> None:
        """Upload every pending sync: through the agent if the sandbox runs (a paused one is thawed,
        and frozen again on failure), from its layer on the host if not. Raises the first failure."""
        pending = self.pending(record.session_id)
        if not pending:
            return
        state = self.runtime.state(record.session_id)
        if state == "paused":
            self.runtime.resume(record.session_id)
        root = None
        if state not in ("running", "paused"):
            root = self.runtime.root_view(record.session_id, self.images.get(record.image_id))
        failures: list[CoveError] = []
        for position, sync in pending:
            try:
                self.upload(record.session_id, position, sync, root)
            except CoveError as error:
                failures.append(error)
        if failures:
            if state == "paused":
                self.runtime.pause(record.session_id)
            raise failures[0]

    def recycle(self) -> None:
        """Delete context files past their lifecycle, at most every RECYCLE_INTERVAL_S."""
        if time.monotonic() - self._recycled_at < RECYCLE_INTERVAL_S and self._recycled_at:
            return
        self._recycled_at = time.monotonic()
        removed = self.recycle_rules.sweep(self._contexts().storage, utc_now())
        if removed:
            log.info("removed %d context files past their lifecycle", removed)

    # Periodic uploads

    def start_periodic(self) -> None:
        self._ticker = threading.Thread(target=self._tick_forever, name="periodic-uploads", daemon=True)
        self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=60)

    def _tick_forever(self) -> None:
        while not self._stop.wait(PERIODIC_TICK_S):
            try:
                self.upload_due()
            except Exception:
                log.exception("periodic uploads failed")

    def upload_due(self) -> None:
        """Upload the syncs with uploadStrategy PeriodicUpload whose period has passed since their
        last upload (or the session's start). A session busy with another sync is left for later."""
        now = time.time()
        for row in self.store.context_syncs_of(["RUNNING"]):
            sync = ContextSync.from_row(row)
            if not (sync.periodic and sync.auto_upload):
                continue
            uploads = [task for task in json.loads(row["tasks"]) if task["taskType"] == "upload"]
            last = max(
                [_aware(row["created_at"]).timestamp()]
                + [task["finishTime"] or task["startTime"] for task in uploads]
            )
            if now - last < sync.period_minutes * 60:
                continue
            session_id = row["session_id"]
            with self.lock(session_id, wait=False) as mine:
                record = self.store.get_session(session_id) if mine else None
                if record is None or record.status != "RUNNING":
                    continue
                try:
                    self.upload(session_id, row["position"], sync)
                except CoveError as error:
                    log.warning(
                        "session %s: periodic upload of %s failed: %s", session_id, sync.path, error.message
                    )


def _listed(what: str, names: list[str]) -> str:
    """`what: a, b, ...` with at most LISTED_NAMES names (a folder may hold millions), or ""."""
    if not names:
        return ""
    more = f" and {len(names) - LISTED_NAMES} more" if len(names) > LISTED_NAMES else ""
    return f"{what}: {', '.join(names[:LISTED_NAMES])}{more}"


async def _read_chunks(source: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := source.read(1024 * 1024):
        yield chunk


async def _receive(stream: Any, target: IO[bytes], budget: TransferBudget) -> None:
    """Write a stream the agent sends (an awaitable of an async iterator of bytes) into `target`,
    within `budget`: a stream that trickles is cut at the deadline, not only when it stalls."""

    async def copy() -> None:
        async for chunk in budget.count(await stream):
            target.write(chunk)

    await budget.within(copy())


class _Counted:
    """A writable file that counts what is written to it against a transfer's budget."""

    def __init__(self, target: IO[bytes], budget: TransferBudget) -> None:
        self._target, self._budget = target, budget

    def write(self, data: bytes) -> int:
        self._budget.take(len(data))
        return self._target.write(data)

    def tell(self) -> int:
        return self._target.tell()
