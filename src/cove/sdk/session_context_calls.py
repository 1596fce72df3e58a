"""Calls of `session.context` (a session's context syncs), for the sync and async clients.

Named and shaped as AgentBay's session ContextManager. AgentBay's `sync` starts the sync and then
polls `info` until every task has ended; Cove's server answers once the sync is done, so one request
does it, allowed as long as AgentBay's polling would have waited.
"""

from __future__ import annotations

import json
from typing import Any

from cove.sdk.core import Call, session_id_refusal, session_path
from cove.sdk.models import (
    ContextBinding,
    ContextBindingsResult,
    ContextBindResult,
    ContextInfoResult,
    ContextStatusData,
    ContextSync,
    ContextSyncResult,
    DeleteResult,
)

MAX_POLL_INTERVAL_S = 5.0
POLL_BACKOFF = 1.1


def polling_budget_s(max_retries: int, retry_interval_ms: int) -> float:
    """How long AgentBay's sync polls at most: `max_retries` waits, from `retry_interval_ms` growing
    by 1.1 up to 5 s (about 11 minutes with its defaults), and at least one second."""
    total, interval = 0.0, retry_interval_ms / 1000
    for _ in range(max_retries):
        total += interval
        interval = min(interval * POLL_BACKOFF, MAX_POLL_INTERVAL_S)
    return max(total, 1.0)


BIND_TIMEOUT_S = polling_budget_s(150, 500)
"""AgentBay's bind polls for the downloads as long as its sync does by default."""


def _status(raw: dict[str, Any]) -> ContextStatusData:
    return ContextStatusData(
        context_id=raw["context_id"],
        path=raw["path"],
        error_message=raw["error_message"],
        status=raw["status"],
        start_time=raw["start_time"],
        finish_time=raw["finish_time"],
        task_type=raw["task_type"],
    )


def _given(**fields: str | None) -> dict[str, str | int]:
    return {name: value for name, value in fields.items() if value}


def sync(
    session_id: str,
    context_id: str | None,
    path: str | None,
    mode: str | None,
    max_retries: int,
    retry_interval: int,
) -> Call[ContextSyncResult]:
    def parse(answer: dict[str, Any], request_id: str) -> ContextSyncResult:
        failed = [task for task in answer["tasks"] if task["status"] == "Failed"]
        return ContextSyncResult(
            request_id=request_id,
            success=not failed,
            error_message="; ".join(f"{task['path']}: {task['error_message']}" for task in failed),
        )

    return Call(
        method="POST",
        path=f"{session_path(session_id)}/contexts/sync",
        body=_given(context_id=context_id, path=path, mode=mode),
        refusal=session_id_refusal(session_id),
        timeout_s=polling_budget_s(max_retries, retry_interval),
        result_type=ContextSyncResult,
        parse=parse,
    )


def delete_refused(session_id: str, synced: ContextSyncResult) -> DeleteResult | None:
    """What `delete(sync_context=True)` answers when the upload before it failed: the session is kept.

    AgentBay deletes it anyway; Cove does not, so that no work is lost without the caller knowing.
    """
    if synced.success:
        return None
    return DeleteResult(
        request_id=synced.request_id,
        code=synced.code,
        http_status_code=synced.http_status_code,
        error_message=f"session {session_id} was kept: its contexts did not upload ({synced.error_message})",
    )


def info(
    session_id: str, context_id: str | None, path: str | None, task_type: str | None
) -> Call[ContextInfoResult]:
    return Call(
        method="GET",
        path=f"{session_path(session_id)}/contexts/tasks",
        params=_given(context_id=context_id, path=path, task_type=task_type),
        refusal=session_id_refusal(session_id),
        result_type=ContextInfoResult,
        parse=lambda answer, rid: ContextInfoResult(
            request_id=rid, success=True, context_status_data=[_status(raw) for raw in answer["tasks"]]
        ),
    )


def bind(session_id: str, contexts: tuple[ContextSync, ...]) -> Call[ContextBindResult]:
    return Call(
        method="POST",
        path=f"{session_path(session_id)}/contexts",
        body={"context_syncs": [sync.to_json() for sync in contexts]},
        refusal=session_id_refusal(session_id) or ("" if contexts else "No contexts provided"),
        timeout_s=BIND_TIMEOUT_S,
        result_type=ContextBindResult,
        parse=lambda answer, rid: ContextBindResult(request_id=rid, success=True),
    )


def list_bindings(session_id: str) -> Call[ContextBindingsResult]:
    def binding(raw: dict[str, Any]) -> ContextBinding:
        return ContextBinding(
            context_id=raw["context_id"],
            context_name=raw["context_name"],
            path=raw["path"],
            policy=json.dumps(raw["policy"]),
            bind_time=raw["bound_at"],
        )

    return Call(
        method="GET",
        path=f"{session_path(session_id)}/contexts",
        refusal=session_id_refusal(session_id),
        result_type=ContextBindingsResult,
        parse=lambda answer, rid: ContextBindingsResult(
            request_id=rid, success=True, bindings=[binding(raw) for raw in answer["bindings"]]
        ),
    )
