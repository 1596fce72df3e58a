"""The session lifecycle: every API surface calls this, and this alone drives the store and runtime.

A row is written before its sandbox exists (status CREATING, never shown to clients) and removed
again if the sandbox cannot start, so a crash at any point leaves something `reconcile` can finish.
"""

from __future__ import annotations

import builtins
import json
import logging
import secrets
import shutil
import string
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cove.agent.tools import all_tools
from cove.config import Settings
from cove.contexts.policy import ContextSync, check_syncs
from cove.errors import (
    ContextUploadFailed,
    CoveError,
    InvalidArgument,
    InvalidState,
    QuotaExceeded,
    SessionNotFound,
    SnapshotNotFound,
)
from cove.paging import Page, check_page
from cove.sandbox.accounting import SessionMetrics
from cove.sandbox.agent_client import AgentClient
from cove.sandbox.images import ImageStore
from cove.sandbox.network_policy import NetworkState
from cove.sandbox.oci_spec import Limits
from cove.sandbox.runtime import GVISOR, RUNC, CleanupReport, RuncRuntime
from cove.sandbox.screen import DEFAULT_SCREEN, Screen
from cove.sessions import browser
from cove.sessions.context_syncs import Binding, SessionSyncs, select_tasks
from cove.sessions.oss import OSS_TOOL_NAMES, OSS_TOOLS, ObjectStorageTools
from cove.sessions.screenshots import SCREENSHOT_TOOL, Screenshots
from cove.sessions.store import SessionRecord, SnapshotRecord, Store, utc_now
from cove.sessions.tenant_limits import TenantToolCalls
from cove.sessions.validation import (
    STATUSES,
    check_env,
    check_idle_action,
    check_labels,
    check_limits,
    check_runtime,
    check_screen,
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
EXPIRY_WORKERS = 4
"""Expired sessions ended at once: each end may upload synced folders, so one slow upload must not
hold up the others."""
EXPIRY_WAIT_S = 10.0
"""How long a sweep waits for its ends; those still uploading finish on their own, and the reconcile
loop goes on."""
AUTO_RESUME_WAIT_S = 300.0
"""How long a call waits for a resume another call began (a restore moves the session's memory)."""
SANDBOX_LOCK_STRIPES = 64
MAX_FORKS = 10
"""The most sessions one fork makes from its one checkpoint."""
_ID_ALPHABET = string.ascii_lowercase + string.digits


HOST_TOOLS: list[dict[str, Any]] = [
    {
        "name": "get_metrics",
        "description": (
            "The session's resource use, read by the host from the kernel's accounting: CPU (count, "
            "percent of its limit, seconds), memory, disk written, processes, network bytes and rates."
        ),
        "inputSchema": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
    },
    *OSS_TOOLS,
    SCREENSHOT_TOOL,
]
"""Tools the server itself serves, beside the agent's: they need the host's view of the session, a
network the session may not have (sessions/oss.py), or a URL on the server (sessions/screenshots.py)."""


def tool_catalogue() -> list[dict[str, Any]]:
    """Every tool a session serves, described without asking a sandbox (the agent's code is here too)."""
    return [tool.describe() for tool in all_tools().values()] + HOST_TOOLS


def _past_lifetime(record: SessionRecord, now: datetime) -> bool:
    return bool(record.max_lifetime_s) and (now - record.created_at).total_seconds() > record.max_lifetime_s


def _expiry(record: SessionRecord, now: datetime) -> str:
    """Why the session should end now, or "" if it may live on. A paused session is never idle."""
    if _past_lifetime(record, now):
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


def _is_text(value: str) -> bool:
    """Valid Unicode text (no lone surrogate) without NUL, as the database takes it."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def new_snapshot_id() -> str:
    return "snapshot-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


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
    disk_mb: Any = None
    idle_timeout_s: Any = None
    max_lifetime_s: Any = None
    context_syncs: Any = None
    """A list of {context_id, path, policy} (contexts/sync.py)."""
    network: Any = None
    """{mode, allow_out, deny_out} (sandbox/network_policy.py)."""
    screen: Any = None
    """{width, height} of the desktop in pixels."""
    env: Any = None
    """Environment variables every process of the session starts with."""
    runtime: Any = None
    """What runs the sandbox: "runc" or "gvisor" (docs/runtimes.md); None: the server's default."""
    from_snapshot: Any = None
    """A snapshot's id: the session starts from it (its image, limits, processes, memory, files)."""
    idle_action: Any = None
    """What becomes of it once idle past its idle timeout: "delete" or "pause"; None: the server's."""


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
        self._sandbox_locks = [threading.Lock() for _ in range(SANDBOX_LOCK_STRIPES)]
        """Held while a session's sandbox is paused, resumed, forked or snapshotted (by its id's hash):
        each freezes and thaws the sandbox, so two at once would thaw it under the other."""
        self.warm_pool: WarmPool | None = None
        self.observer = Observer()
        self.contexts: ContextService | None = None
        """Set by the server: the contexts that sessions sync (create and release)."""
        limits = settings.transfer_limits
        self.syncs = SessionSyncs(store, runtime, images, self._context_service, limits)
        self.oss = ObjectStorageTools(limits, settings.oss_private_networks)
        self.screenshots = Screenshots(settings.data_dir, settings.base_url)
        self.tool_calls = TenantToolCalls(settings.tenant_tool_calls)
        self._expiry_pool = ThreadPoolExecutor(EXPIRY_WORKERS, thread_name_prefix="cove-expire")
        self._expiring: dict[str, Future[Any]] = {}
        """Ends (or pauses) of expired sessions under way, by session id: a later sweep does not start
        them again."""

    def start_warm_pool(self) -> None:
        """Keep `settings.warm_pool` sandboxes prepared for creates with the default image and limits
        (runc sandboxes: none when the default runtime is another)."""
        if self.settings.default_runtime != RUNC:
            return
        image = self.images.get(self.settings.default_image)
        limits = check_limits(self.settings)
        self.warm_pool = WarmPool(
            self.runtime,
            image,
            limits,
            self.settings.warm_pool,
            new_session_id,
            max(self.settings.warm_pool, self.settings.warm_pool_max),
        )
        self.warm_pool.start()

    def close(self) -> None:
        if self.warm_pool is not None:
            self.warm_pool.close()
        self._expiry_pool.shutdown(cancel_futures=True)  # ends not begun are swept at the next start
        self.syncs.close()

    def create(self, tenant_id: str, request: CreateRequest) -> SessionRecord:
        if request.from_snapshot is not None:
            return self._create_from_snapshot(tenant_id, request)
        started = time.perf_counter()
        labels = check_labels(request.labels)
        limits = check_limits(self.settings, request.memory_mb, request.cpus, request.pids, request.disk_mb)
        idle_timeout_s, max_lifetime_s = check_timeouts(
            self.settings, request.idle_timeout_s, request.max_lifetime_s
        )
        idle_action = check_idle_action(self.settings, request.idle_action)
        syncs = check_syncs(request.context_syncs)
        network = self.runtime.networks.policy(request.network)
        screen = check_screen(request.screen)
        env = check_env(request.env)
        runtime = check_runtime(self.settings, request.runtime)
        self.runtime.check_available(runtime)
        for sync in syncs:
            self._context_service().get(tenant_id, sync.context_id)  # 404 unless it is the caller's
        image = self.images.for_session(request.image_id or self.settings.default_image)
        # The warm pool's sandboxes are runc's.
        prepared = self.warm_pool.take(image) if self.warm_pool and runtime == RUNC else None
        row_written = False
        try:
            record = self._new_row(
                tenant_id,
                prepared or new_session_id(),
                image_id=image.image_id,
                limits=limits,
                labels=labels,
                idle_timeout_s=idle_timeout_s,
                max_lifetime_s=max_lifetime_s,
                screen=screen,
                runtime=runtime,
                idle_action=idle_action,
            )
            row_written = True
        finally:
            # Until its row exists, a taken sandbox is still the pool's, untouched: it goes back.
            if prepared and self.warm_pool and not row_written:
                self.warm_pool.give_back(prepared)
        try:
            self.store.add_context_syncs(
                record.session_id,
                [{"context_id": s.context_id, "path": s.path, "policy": s.policy_json()} for s in syncs],
            )
            if prepared and self.warm_pool:
                self.runtime.start(
                    prepared,
                    network,
                    None if limits == self.warm_pool.limits else limits,
                    None if screen == DEFAULT_SCREEN else screen,
                    env,
                )
            else:
                self.runtime.create(record.session_id, image, limits, network, screen, env, runtime)
        except BaseException:
            self.runtime.destroy(record.session_id)  # a prepared sandbox is the row's now
            self.store.delete_session_row(record.session_id)
            raise
        try:
            self.syncs.on_create(record.session_id, syncs)
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

    def delete(self, tenant_id: str, session_id: str, force: bool = False) -> SessionRecord:
        """End a session; deleting one that is already gone succeeds. With `force`, a synced folder
        that cannot be uploaded does not keep the session: it ends all the same, the loss reported."""
        record = self.get(tenant_id, session_id)
        if record.status != "DELETED":
            try:
                self._end(session_id, REASON_USER, force)
            except ContextUploadFailed as error:
                raise ContextUploadFailed(
                    f"the session's context upload failed: {error.message}; the session is kept: delete "
                    "it again to retry, or with force=true to end it without the upload"
                ) from None
        return self.get(tenant_id, session_id)

    def _end(self, session_id: str, reason: str, force: bool = False) -> bool:
        """Remove a live session's sandbox and mark it DELETED with `reason`; False if it was not live.

        Synced folders are uploaded to their contexts first (syncs.begin_release notes them pending,
        so a crash meanwhile is finished at startup); if an upload fails the session is kept as it
        was and the error raised, so no work is lost silently, unless `force`: then it ends anyway,
        keeping what was synced before, the failure in its reason and in the sync's upload task.
        """
        with self.syncs.lock(session_id):
            record = self.store.get_session(session_id)
            if record is None or record.status not in LIVE_STATUSES:
                return False
            if not self.syncs.begin_release(record, reason):
                return False
            try:
                self._close_browser(record)
                self.syncs.upload_pending(record)
            except ContextUploadFailed as error:
                if not force:
                    self.store.set_status(
                        session_id, record.status, record.status_reason, only_from=["DELETING"]
                    )
                    raise
                log.warning("session %s ended without its context upload: %s", session_id, error.message)
                reason = f"{reason}; its context upload was lost: {error.message}"
            except BaseException:
                self.store.set_status(session_id, record.status, record.status_reason, only_from=["DELETING"])
                raise
            self._release(session_id, reason)
        return True

    def _close_browser(self, record: SessionRecord) -> None:
        """Before a running session's folders are uploaded, its browser (if one runs) is closed, so
        that it writes its profile (cookies, storage) first. The session ends all the same if this
        fails. Only on an image with a browser: there a session whose agent does not answer delays
        its own end by STOP_TIMEOUT_S, elsewhere not at all."""
        session_id = record.session_id
        if not self.syncs.pending(session_id) or self.runtime.state(session_id) != "running":
            return
        if not self._has_browser(record.image_id):
            return
        agent = AgentClient(self.runtime.agent_run_dir(session_id), session_id)
        try:
            agent.call("tools/call", {"name": browser.STOP_TOOL, "arguments": {}}, browser.STOP_TIMEOUT_S)
        except CoveError as error:
            log.warning(
                "session %s: its browser was not closed before the upload: %s", session_id, error.message
            )

    def _has_browser(self, image_id: str) -> bool:
        """Whether the image has Chromium (a host-side look at its read-only root filesystem)."""
        try:
            rootfs = self.images.get(image_id).rootfs
        except CoveError:
            return False
        return (rootfs / browser.CHROMIUM_PATH.lstrip("/")).exists()

    def _finish_release(self, record: SessionRecord) -> bool:
        """Finish an end cut off by a crash of the server (or whose upload failed after its sandbox
        died): upload what is pending, then release. False if it must wait (uploads failed, or this
        server is ending it right now); past its maximum lifetime it waits no more, and the reason
        says what was lost."""
        with self.syncs.lock(record.session_id, wait=False) as mine:
            current = self.store.get_session(record.session_id) if mine else None
            if current is None or current.status != "DELETING":
                return not mine
            reason = current.status_reason or REASON_USER
            try:
                self.syncs.upload_pending(current)
            except CoveError as error:
                log.warning("session %s: pending uploads failed again: %s", current.session_id, error.message)
                if not _past_lifetime(current, utc_now()):
                    self.syncs.retry_later(current.session_id)
                    return False
                reason = f"{reason}; its context upload was lost: {error.message}"
            self._release(current.session_id, reason)
        return True

    def _release(self, session_id: str, reason: str) -> None:
        """The last step of an end: the sandbox and its layer go, the row becomes DELETED."""
        self.runtime.destroy(session_id)
        self.store.set_status(session_id, "DELETED", reason, only_from=["DELETING"])
        self.syncs.forget(session_id)
        self.oss.forget(session_id)
        self.screenshots.forget(session_id)
        if self.contexts is not None:
            self.contexts.drop_session_context(session_id)

    # Context syncs (contexts/sync.py)

    def _context_service(self) -> ContextService:
        if self.contexts is None:
            raise InvalidArgument("context syncs are not available on this server")
        return self.contexts

    def sync_contexts(
        self, tenant_id: str, session_id: str, context_id: str = "", path: str = "", mode: str = ""
    ) -> builtins.list[dict[str, Any]]:
        """Sync the session's contexts now (all, or those of `context_id` and/or `path`); answers their
        tasks once done.

        `mode` is "upload" (the default: the folder into the context) or "download".
        """
        self.agent(tenant_id, session_id)  # a RUNNING session of the caller's
        self._known_context(tenant_id, context_id)
        return self.syncs.sync_now(session_id, context_id, path, mode)

    def _known_context(self, tenant_id: str, context_id: str) -> None:
        """404 for an id that is none of the caller's contexts, rather than "not synced here" (400)."""
        if context_id:
            self._context_service().get(tenant_id, context_id)

    def bind_contexts(self, tenant_id: str, session_id: str, raw: Any) -> builtins.list[ContextSync]:
        """Add context syncs to a RUNNING session, downloading each (with autoDownload) before it answers.

        If a download fails, the syncs of this call are forgotten again and the error raised. It holds
        the session's sync lock, so that a failed bind removes only its own syncs.
        """
        added = check_syncs(raw)
        if not added:
            raise InvalidArgument("context_syncs must name at least one context to bind")
        for sync in added:
            self._context_service().get(tenant_id, sync.context_id)  # 404 unless it is the caller's
        with self.syncs.lock(session_id):
            self.agent(tenant_id, session_id)  # a RUNNING session of the caller's
            present = [ContextSync.from_row(row) for row in self.store.context_syncs(session_id)]
            # Checked again beside the present ones, which come after: for overlaps and the count.
            check_syncs([*raw, *({"context_id": s.context_id, "path": s.path} for s in present)])
            first = len(present)
            self.store.add_context_syncs(
                session_id,
                [{"context_id": s.context_id, "path": s.path, "policy": s.policy_json()} for s in added],
                first,
            )
            try:
                self.syncs.on_create(session_id, added, first)
            except BaseException:
                self.store.remove_context_syncs(session_id, first)
                raise
        return added

    def context_bindings(self, tenant_id: str, session_id: str) -> builtins.list[Binding]:
        """The session's context syncs, made at create or by bind_contexts."""
        return self.syncs.bindings(self.get(tenant_id, session_id))

    def context_tasks(
        self, tenant_id: str, session_id: str, context_id: str = "", path: str = "", task_type: str = ""
    ) -> builtins.list[dict[str, Any]]:
        """The download and upload tasks of the session's context syncs (AgentBay's GetContextInfo),
        those matching every filter given."""
        self.get(tenant_id, session_id)
        self._known_context(tenant_id, context_id)
        self.syncs.chosen(session_id, context_id, path)  # 400 if the session syncs no such context
        return select_tasks(self.syncs.tasks(session_id), context_id, path, task_type)

    def keep_alive(self, tenant_id: str, session_id: str) -> SessionRecord:
        """Count as activity now: the idle timeout starts again."""
        record = self.get(tenant_id, session_id)
        if record.status not in LIVE_STATUSES:
            raise InvalidState(f"session {session_id} is {record.status}")
        self.store.mark_active(session_id, utc_now())
        return record

    def set_lifetime(self, tenant_id: str, session_id: str, max_lifetime_s: int) -> SessionRecord:
        """Change a live session's maximum lifetime (seconds from its creation; 0: none)."""
        _, checked = check_timeouts(self.settings, 0, max_lifetime_s)
        record = self.get(tenant_id, session_id)
        if record.status not in LIVE_STATUSES:
            raise InvalidState(f"session {session_id} is {record.status}; only a live session has a lifetime")
        self.store.set_max_lifetime(session_id, checked)
        return self.get(tenant_id, session_id)

    def _touch(self, record: SessionRecord) -> None:
        """Note activity for the idle timeout; at most every few seconds, to spare the database."""
        now = utc_now()
        resolution = min(ACTIVITY_RESOLUTION_S, record.idle_timeout_s / 4)
        if record.idle_timeout_s and (now - record.active_at).total_seconds() >= resolution:
            self.store.mark_active(record.session_id, now)

    def expire(self) -> builtins.list[str]:
        """Delete the sessions past their idle timeout or maximum lifetime, but pause instead those
        idle whose idle action is "pause"; answers the ids of those ended within EXPIRY_WAIT_S.

        The ends and pauses run side by side (EXPIRY_WORKERS at once), so one session's slow upload
        delays neither the others' ends nor, past the wait, the next sweep, which leaves it be meanwhile.
        """
        now = utc_now()
        records, _ = self.store.list_sessions(statuses=LIVE_STATUSES)
        self._expiring = {session_id: end for session_id, end in self._expiring.items() if not end.done()}
        started = {}
        for record in records:
            reason = _expiry(record, now)
            if reason and record.session_id not in self._expiring:
                # Past its lifetime a session ends even if its upload fails: a session must not
                # outlive its maximum lifetime by breaking its own sync.
                force = _past_lifetime(record, now)
                if record.idle_action == "pause" and not force:
                    pause = self._expiry_pool.submit(self._pause_idle, record, reason)
                    self._expiring[record.session_id] = pause
                    continue
                end = self._expiry_pool.submit(self._end_expired, record.session_id, reason, force)
                self._expiring[record.session_id] = started[record.session_id] = end
        done, _ = wait(started.values(), timeout=EXPIRY_WAIT_S)
        return [session_id for session_id, end in started.items() if end in done and end.result()]

    def _end_expired(self, session_id: str, reason: str, force: bool) -> bool:
        """End one expired session; an upload that fails keeps it, to be tried again by the next sweep,
        unless `force`."""
        try:
            if self._end(session_id, reason, force):
                log.info("session %s ended: %s", session_id, reason)
                return True
        except CoveError as error:
            log.warning("session %s not ended (%s): %s", session_id, reason, error.message)
        except Exception:
            log.exception("session %s not ended (%s)", session_id, reason)
        return False

    def _pause_idle(self, record: SessionRecord, reason: str) -> None:
        """Pause an idle session instead of ending it. One that cannot be paused runs on, its idle
        time counted again from now, so that the next sweep does not at once try again."""
        current = self.store.get_session(record.session_id)
        if current is None or not _expiry(current, utc_now()):
            return  # used again since the sweep looked
        try:
            self.pause(record.tenant_id, record.session_id)
            log.info("session %s paused: %s", record.session_id, reason)
            return
        except CoveError as error:
            log.warning("session %s not paused (%s): %s", record.session_id, reason, error.message)
        except Exception:
            log.exception("session %s not paused (%s)", record.session_id, reason)
        self.store.mark_active(record.session_id, utc_now())

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

    def fork(self, tenant_id: str, session_id: str, count: int = 1) -> builtins.list[SessionRecord]:
        """`count` new sessions (1 to MAX_FORKS) from one checkpoint of a RUNNING gvisor session: its
        processes, memory and files as they are now, each session going on its own, with its own
        hostname (docs/runtimes.md). Same image, limits, labels, timeouts and network policy; counted
        against the key's quota, all or none."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_FORKS:
            raise InvalidArgument(f"count: from 1 to {MAX_FORKS} forks at once")
        source = self.get(tenant_id, session_id)
        if source.runtime != GVISOR:
            raise InvalidArgument(f"session {session_id} runs on {source.runtime}; only gvisor sessions fork")
        if source.status != "RUNNING":
            raise InvalidState(
                f"session {session_id} is {source.status}; only a RUNNING session can be forked"
            )
        image = self.images.for_session(source.image_id)
        limits = check_limits(self.settings, source.memory_mb, source.cpus, source.pids, source.disk_mb)
        records: builtins.list[SessionRecord] = []
        try:
            for _ in range(count):
                record = self._new_row(
                    tenant_id,
                    new_session_id(),
                    image_id=source.image_id,
                    limits=limits,
                    labels=source.labels,
                    idle_timeout_s=source.idle_timeout_s,
                    max_lifetime_s=source.max_lifetime_s,
                    screen=source.screen,
                    runtime=source.runtime,
                    idle_action=source.idle_action,
                )
                records.append(record)
            with self._sandbox_lock(session_id):
                self._still_running(tenant_id, session_id, "forked")
                self.runtime.fork(session_id, [r.session_id for r in records], image, limits)
        except BaseException:
            for record in records:
                self.runtime.destroy(record.session_id)
                self.store.delete_session_row(record.session_id)
            raise
        for record in records:
            self.store.set_status(record.session_id, "RUNNING", only_from=[CREATING])
            record.status = "RUNNING"
        return records

    def _snapshot_folder(self, snapshot: SnapshotRecord) -> Path:
        return self.settings.data_dir / "snapshots" / snapshot.tenant_id / snapshot.snapshot_id

    def snapshot(self, tenant_id: str, session_id: str, name: Any) -> SnapshotRecord:
        """A named snapshot of a RUNNING gvisor session (its checkpoint and files), which runs on;
        within the key's snapshot disk quota (COVE_SNAPSHOT_QUOTA_MB)."""
        if not isinstance(name, str) or not 1 <= len(name) <= 128 or not _is_text(name):
            raise InvalidArgument("name: a snapshot's name, 1 to 128 characters of text without NUL")
        source = self.get(tenant_id, session_id)
        if source.runtime != GVISOR:
            raise InvalidArgument(
                f"session {session_id} runs on {source.runtime}; snapshots need a gvisor session "
                '(create it with runtime "gvisor")'
            )
        if source.status != "RUNNING":
            raise InvalidState(
                f"session {session_id} is {source.status}; only a RUNNING session can be snapshotted"
            )
        quota = self.settings.snapshot_quota_mb * 1024 * 1024
        used = self.store.snapshot_bytes(tenant_id)
        if used >= quota:
            raise QuotaExceeded(self._snapshot_quota_message(used))
        record = SnapshotRecord(
            snapshot_id=new_snapshot_id(),
            tenant_id=tenant_id,
            name=name,
            source_session_id=session_id,
            image_id=source.image_id,
            memory_mb=source.memory_mb,
            cpus=source.cpus,
            pids=source.pids,
            disk_mb=source.disk_mb,
            size_bytes=0,
            created_at=utc_now(),
        )
        folder = self._snapshot_folder(record)
        with self._sandbox_lock(session_id):
            self._still_running(tenant_id, session_id, "snapshotted")
            record.size_bytes = self.runtime.snapshot(session_id, folder)
        with self._quota_lock:
            used = self.store.snapshot_bytes(tenant_id)
            if used + record.size_bytes > quota:
                shutil.rmtree(folder, ignore_errors=True)
                raise QuotaExceeded(self._snapshot_quota_message(used, record.size_bytes))
            self.store.insert_snapshot(record)
        return record

    def _still_running(self, tenant_id: str, session_id: str, done: str) -> None:
        """Refuse a session that stopped RUNNING while the call waited for its sandbox."""
        status = self.get(tenant_id, session_id).status
        if status != "RUNNING":
            raise InvalidState(f"session {session_id} is {status}; only a RUNNING session can be {done}")

    def _snapshot_quota_message(self, used: int, more: int = 0) -> str:
        needing = f", and this one needs {more} bytes more" if more else ""
        return (
            f"this API key's snapshots take {used} bytes{needing}; the quota is "
            f"{self.settings.snapshot_quota_mb} MiB (COVE_SNAPSHOT_QUOTA_MB); delete a snapshot first"
        )

    def get_snapshot(self, tenant_id: str, snapshot_id: Any) -> SnapshotRecord:
        known = isinstance(snapshot_id, str) and len(snapshot_id) <= 64 and _is_text(snapshot_id)
        found = self.store.get_snapshot(snapshot_id) if known else None
        if found is None or found.tenant_id != tenant_id:
            raise SnapshotNotFound(f"snapshot {snapshot_id!r} not found")
        return found

    def list_snapshots(self, tenant_id: str) -> builtins.list[SnapshotRecord]:
        return self.store.list_snapshots(tenant_id)

    def delete_snapshot(self, tenant_id: str, snapshot_id: str) -> SnapshotRecord:
        found = self.get_snapshot(tenant_id, snapshot_id)
        self.store.delete_snapshot_row(snapshot_id)
        shutil.rmtree(self._snapshot_folder(found), ignore_errors=True)
        return found

    def _sweep_snapshots(self) -> None:
        """Remove snapshot folders without a row: snapshots a stopped server was still writing."""
        root = self.settings.data_dir / "snapshots"
        if not root.is_dir():
            return
        for tenant_folder in root.iterdir():
            for folder in tenant_folder.iterdir():
                found = self.store.get_snapshot(folder.name)
                if found is None or found.tenant_id != tenant_folder.name:
                    log.warning("removing the unfinished snapshot %s", folder)
                    shutil.rmtree(folder, ignore_errors=True)

    def _create_from_snapshot(self, tenant_id: str, request: CreateRequest) -> SessionRecord:
        """A new session from a snapshot: its image and limits, the request's labels and timeouts;
        the snapshot stays as it was, whether the restore works or not."""
        snapshot = self.get_snapshot(tenant_id, request.from_snapshot)
        if request.runtime not in (None, GVISOR):
            raise InvalidArgument("runtime: a session from a snapshot runs on gvisor")
        fixed = {
            "image_id": request.image_id,
            "resources": [request.memory_mb, request.cpus, request.pids, request.disk_mb],
            "network": request.network,
            "screen": request.screen,
            "env": request.env,
            "context_syncs": request.context_syncs,
        }
        given = [name for name, value in fixed.items() if value not in (None, [None] * 4, {}, [])]
        if given:
            raise InvalidArgument(
                f"{', '.join(given)}: a session from a snapshot has the snapshot's image, limits, "
                "network, screen, environment and files; give only labels and timeouts"
            )
        labels = check_labels(request.labels)
        idle_timeout_s, max_lifetime_s = check_timeouts(
            self.settings, request.idle_timeout_s, request.max_lifetime_s
        )
        idle_action = check_idle_action(self.settings, request.idle_action)
        self.runtime.check_available(GVISOR)
        image = self.images.for_session(snapshot.image_id)
        limits = check_limits(
            self.settings, snapshot.memory_mb, snapshot.cpus, snapshot.pids, snapshot.disk_mb
        )
        record = self._new_row(
            tenant_id,
            new_session_id(),
            image_id=snapshot.image_id,
            limits=limits,
            labels=labels,
            idle_timeout_s=idle_timeout_s,
            max_lifetime_s=max_lifetime_s,
            screen=DEFAULT_SCREEN,
            runtime=GVISOR,
            idle_action=idle_action,
        )
        try:
            self.runtime.from_snapshot(self._snapshot_folder(snapshot), record.session_id, image, limits)
        except BaseException as error:
            self.runtime.destroy(record.session_id)
            self.store.delete_session_row(record.session_id)
            if isinstance(error, CoveError):
                raise type(error)(
                    f"could not start a session from snapshot {snapshot.snapshot_id}, which is kept as "
                    f"it was: {error.message}"
                ) from error
            raise
        self.store.set_status(record.session_id, "RUNNING", only_from=[CREATING])
        record.status = "RUNNING"
        return record

    def _new_row(
        self,
        tenant_id: str,
        session_id: str,
        *,
        image_id: str,
        limits: Limits,
        labels: Mapping[str, str],
        idle_timeout_s: int,
        max_lifetime_s: int,
        screen: Screen,
        runtime: str,
        idle_action: str,
    ) -> SessionRecord:
        """The CREATING row of a new session (created, from a snapshot or forked), within the key's
        session quota."""
        now = utc_now()
        record = SessionRecord(
            session_id=session_id,
            tenant_id=tenant_id,
            image_id=image_id,
            status=CREATING,
            memory_mb=limits.memory_mb,
            cpus=limits.cpus,
            pids=limits.pids,
            disk_mb=limits.disk_mb,
            created_at=now,
            updated_at=now,
            labels=dict(labels),
            idle_timeout_s=idle_timeout_s,
            max_lifetime_s=max_lifetime_s,
            screen=screen,
            runtime=runtime,
            idle_action=idle_action,
        )
        with self._quota_lock:
            live = self.store.insert_session_within_quota(record, self.settings.session_quota)
        if live is not None:
            raise QuotaExceeded(
                f"this API key already has {live} live sessions, the quota is "
                f"{self.settings.session_quota}; delete a session first"
            )
        return record

    def _sandbox_lock(self, session_id: str) -> threading.Lock:
        return self._sandbox_locks[hash(session_id) % SANDBOX_LOCK_STRIPES]

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
            with self._sandbox_lock(session_id):
                act(session_id)
        except BaseException:
            self.store.set_status(session_id, before, only_from=[during])
            raise
        self.store.set_status(session_id, after, only_from=[during])
        return self.get(tenant_id, session_id)

    def network(self, tenant_id: str, session_id: str) -> NetworkState:
        """A session's network policy, address and the connections it was lately refused."""
        record = self.get(tenant_id, session_id)
        if record.status not in LIVE_STATUSES:
            raise InvalidState(f"session {session_id} is {record.status}; only live sessions have a network")
        return self.runtime.network_state(session_id)

    def set_network(self, tenant_id: str, session_id: str, raw: Any) -> NetworkState:
        """Change a session's network policy; it holds from the session's next connection on."""
        policy = self.runtime.networks.policy(raw)
        record = self.get(tenant_id, session_id)
        if record.status not in ("RUNNING", "PAUSED"):
            raise InvalidState(
                f"session {session_id} is {record.status}; its network can change when it runs"
            )
        self.runtime.set_network(session_id, policy)
        return self.runtime.network_state(session_id)

    def metrics(self, tenant_id: str, session_id: str) -> SessionMetrics:
        """CPU, memory, disk, processes and network of a live session, over a short window."""
        record = self.get(tenant_id, session_id)
        if record.status not in LIVE_STATUSES:
            raise InvalidState(f"session {session_id} is {record.status}; only live sessions have metrics")
        first = self.runtime.usage(session_id)
        time.sleep(METRICS_WINDOW_S)
        second = self.runtime.usage(session_id)
        if record.disk_mb is None:
            disk_total = shutil.disk_usage(self.runtime.sessions_dir).total
        else:
            disk_total = record.disk_mb * 1024 * 1024
        return SessionMetrics.between(first, second, record.cpus, disk_total)

    def agent(self, tenant_id: str, session_id: str) -> AgentClient:
        """The client of a RUNNING session's tool agent (for calls and streamed transfers)."""
        record = self.get(tenant_id, session_id)
        if record.status in ("PAUSED", "RESUMING") and self.settings.auto_resume:
            record = self._resumed(tenant_id, session_id)
        if record.status != "RUNNING":
            advice = "; resume it first" if record.status in ("PAUSED", "PAUSING") else ""
            raise InvalidState(
                f"session {session_id} is {record.status}; tools run only in a RUNNING session{advice}"
            )
        self._touch(record)
        return AgentClient(self.runtime.agent_run_dir(session_id), session_id)

    def _resumed(self, tenant_id: str, session_id: str) -> SessionRecord:
        """Resume a PAUSED session for a call (COVE_AUTO_RESUME), or wait for the resume another
        call began; answers the session as it then is."""
        try:
            return self.resume(tenant_id, session_id)
        except InvalidState:
            deadline = time.monotonic() + AUTO_RESUME_WAIT_S
            record = self.get(tenant_id, session_id)
            while record.status == "RESUMING" and time.monotonic() < deadline:
                time.sleep(0.1)
                record = self.get(tenant_id, session_id)
            return record

    def list_tools(self, tenant_id: str, session_id: str) -> builtins.list[dict[str, Any]]:
        """The session's tools, as MCP describes them (name, description, inputSchema)."""
        tools: builtins.list[dict[str, Any]] = self.agent(tenant_id, session_id).call("tools/list", {})[
            "tools"
        ]
        return tools + HOST_TOOLS

    def call_tool(self, tenant_id: str, session_id: str, name: str, arguments: Any) -> dict[str, Any]:
        """Run one tool in the session; answers MCP's result ({"content": [...], "isError": bool}).

        Past the tenant's `tenant_tool_calls` calls in flight it is refused (QuotaExceeded, 429).
        """
        with self.tool_calls.slot(tenant_id):
            started, outcome = time.perf_counter(), "failed"
            try:
                result = self._call_tool(tenant_id, session_id, name, arguments)
                outcome = "error" if result.get("isError") else "ok"
                return result
            except InvalidArgument:
                outcome = "invalid"
                raise
            finally:
                known = name if name in TOOL_NAMES else "other"  # client-chosen names must not grow labels
                self.observer.tool_called(known, outcome, time.perf_counter() - started)

    def _call_tool(self, tenant_id: str, session_id: str, name: str, arguments: Any) -> dict[str, Any]:
        timeout_s = check_tool_call(self.settings, name, arguments)
        if name == "get_metrics":
            if arguments:
                raise InvalidArgument("get_metrics: it takes no arguments")
            metrics = asdict(self.metrics(tenant_id, session_id))
            return {"content": [{"type": "text", "text": json.dumps(metrics)}], "isError": False}
        if name in OSS_TOOL_NAMES:
            return self.oss.call(session_id, self.agent(tenant_id, session_id), name, arguments)
        if name == SCREENSHOT_TOOL["name"]:
            if arguments:
                raise InvalidArgument("system_screenshot: it takes no arguments")
            return self.screenshots.take(session_id, self.agent(tenant_id, session_id))
        params = {"name": name, "arguments": arguments}
        return self.agent(tenant_id, session_id).call("tools/call", params, timeout_s)

    def reconcile(self, *, at_startup: bool = False) -> RecoveryReport:
        """Match the database with the sandboxes that really exist.

        At startup (no request is under way) it also finishes interrupted creates and deletes and
        sweeps containers, mounts, cgroups and folders that no session owns. Later it only notices
        sandboxes that died on their own.
        """
        watched = LIVE_STATUSES + ["DELETING"] + ([CREATING] if at_startup else [])
        records, _ = self.store.list_sessions(statuses=watched)
        # Rows first, then containers: a session created in between is simply not looked at.
        states = self.runtime.states()
        kept, ended = [], []
        for record in records:
            if record.status == CREATING:
                self.runtime.destroy(record.session_id)
                self.store.delete_session_row(record.session_id)
            elif record.status == "DELETING":
                if not self._finish_release(record):
                    kept.append(record.session_id)  # its pending uploads need its sandbox or layer
            elif states.get(record.session_id) in ("running", "paused"):
                kept.append(record.session_id)
                if at_startup:
                    self.runtime.settle_interrupted(record.session_id, record.status == "RUNNING")
                    self.syncs.settle_interrupted(record.session_id)
                if at_startup and record.status in ("PAUSING", "RESUMING"):
                    # A pause or resume cut off midway: the sandbox's state, read again once settled,
                    # says how far it got (a restore the server left running may have finished since).
                    settled = "PAUSED" if self.runtime.state(record.session_id) == "paused" else "RUNNING"
                    self.store.set_status(record.session_id, settled, only_from=[record.status])
            else:
                reason = REASON_DIED_WHILE_DOWN if at_startup else REASON_DIED
                try:  # its synced folders are uploaded from its writable layer first
                    if self._end(record.session_id, reason):
                        ended.append(record.session_id)
                        log.warning("session %s ended: %s", record.session_id, reason)
                except CoveError as error:
                    kept.append(record.session_id)
                    log.warning(
                        "session %s: its sandbox is gone and its synced folders are not uploaded yet (%s); "
                        "its layer is kept and the upload tried again at the next reconcile",
                        record.session_id,
                        error.message,
                    )
        leftovers = (
            self.runtime.cleanup_leftovers(keep=set(kept))
            if at_startup
            else CleanupReport([], [], [], [], [])
        )
        if at_startup:
            self.screenshots.sweep(kept)
            self._sweep_snapshots()
        expired = self.expire()
        if self.contexts is not None:
            self.syncs.recycle()
            # Internal file-transfer contexts of sessions that ended otherwise than by `_end`.
            self.contexts.sweep_session_contexts(LIVE_STATUSES)
        return RecoveryReport(
            kept=[k for k in kept if k not in expired], ended=ended + expired, leftovers=leftovers
        )
