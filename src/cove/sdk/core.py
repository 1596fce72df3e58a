"""The SDK's one implementation of every call, free of I/O, shared by the sync and async clients.

Each call is described by a `Call`: the HTTP request to make and how to turn the answer into a
result object. A client only sends the request and hands the answer back (`Call.finish`), so the
sync and async clients differ in nothing but `await`, as in httpx.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from cove.sdk.models import (
    Config,
    CreateSessionParams,
    DeleteResult,
    OperationResult,
    Result,
    SessionData,
    SessionInfo,
    SessionListResult,
    SessionMetrics,
    SessionMetricsResult,
    SessionPauseResult,
    SessionResult,
    SessionResumeResult,
    SessionsResult,
    SessionStatusResult,
    SnapshotInfo,
    SnapshotListResult,
    SnapshotResult,
)

ResultT = TypeVar("ResultT", bound=Result)
SessionT = TypeVar("SessionT")

DEFAULT_ENDPOINT = "http://127.0.0.1:9000"
DEFAULT_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class Connection:
    """Everything a client needs to reach a server, resolved once from arguments and environment."""

    endpoint: str
    api_key: str
    timeout_seconds: float

    @property
    def headers(self) -> dict[str, str]:
        from cove import __version__

        return {"Authorization": f"Bearer {self.api_key}", "User-Agent": f"cove-sdk/{__version__}"}


def resolve_connection(api_key: str, cfg: Config | None) -> Connection:
    """Arguments first, then COVE_* and AGENTBAY_* variables, so AgentBay set-ups work unchanged."""
    key = api_key or os.environ.get("COVE_API_KEY") or os.environ.get("AGENTBAY_API_KEY") or ""
    if not key:
        raise ValueError(
            "an API key is required: pass api_key=..., or set COVE_API_KEY (or AGENTBAY_API_KEY)"
        )
    endpoint = (
        (cfg.endpoint if cfg else None)
        or os.environ.get("COVE_ENDPOINT")
        or os.environ.get("AGENTBAY_ENDPOINT")
        or DEFAULT_ENDPOINT
    )
    if "://" not in endpoint:
        endpoint = f"https://{endpoint}"
    timeout_ms = (cfg.timeout_ms if cfg else None) or DEFAULT_TIMEOUT_MS
    return Connection(endpoint=endpoint.rstrip("/"), api_key=key, timeout_seconds=timeout_ms / 1000)


class ClientBase:
    """What the sync and async clients share besides their calls: where to connect, and how."""

    def __init__(self, api_key: str, cfg: Config | None) -> None:
        self._connection = resolve_connection(api_key, cfg)
        self.api_key = self._connection.api_key
        self.endpoint = self._connection.endpoint

    def _http_options(self) -> dict[str, Any]:
        """Arguments for httpx.Client or httpx.AsyncClient."""
        connection = self._connection
        return {
            "base_url": connection.endpoint,
            "headers": connection.headers,
            "timeout": connection.timeout_seconds,
        }


ClientT = TypeVar("ClientT", bound=ClientBase)


class SessionBase(Generic[ClientT]):
    """A handle on one session; `data` is the server's description when the handle was made."""

    def __init__(self, agent_bay: ClientT, data: SessionData) -> None:
        self.agent_bay = agent_bay
        self.data = data
        self.session_id = data.session_id
        self.resource_url = data.resource_url
        self.image_id = data.image_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(session_id={self.session_id!r})"


@dataclass(frozen=True, kw_only=True)
class Call(Generic[ResultT]):
    """One API call: the request, and how a successful answer becomes a result."""

    method: str
    path: str
    result_type: type[ResultT]
    parse: Callable[[dict[str, Any], str], ResultT]
    params: dict[str, str | int] | None = None
    body: dict[str, Any] | None = None
    refusal: str = ""
    """Set when the arguments are wrong: the client answers with it and sends nothing."""
    timeout_s: float | None = None
    """For calls that may take longer than the client's timeout (long commands)."""

    def finish(self, status_code: int, headers: Mapping[str, str], content: bytes) -> ResultT:
        """Turn the server's answer into a result; a failure becomes a result with success=False."""
        try:
            answer = json.loads(content) if content else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        request_id = str(answer.get("request_id") or headers.get("x-request-id") or "")
        if status_code >= 400:
            error = answer.get("error")
            if not isinstance(error, dict):
                error = {}
            return self.result_type(
                request_id=request_id,
                success=False,
                code=str(error.get("code") or f"HTTP{status_code}"),
                error_message=str(error.get("message") or content[:200].decode(errors="replace")),
                http_status_code=status_code,
            )
        result = self.parse(answer, request_id)
        result.http_status_code = status_code
        return result

    def transport_failure(self, error: Exception) -> ResultT:
        """The server could not be reached or did not answer in time."""
        return self.result_type(
            success=False,
            code="ConnectionError",
            error_message=f"{self.method} {self.path} failed: {type(error).__name__}: {error}",
        )

    def refused(self) -> ResultT:
        return self.result_type(success=False, code="InvalidArgument", error_message=self.refusal)


def _session_data(raw: dict[str, Any]) -> SessionData:
    fields = set(SessionData.__dataclass_fields__)
    return SessionData(**{k: v for k, v in raw.items() if k in fields})


def session_path(session_id: str) -> str:
    return f"/v1/sessions/{quote(session_id, safe='')}"


def session_id_refusal(session_id: str) -> str:
    return "" if isinstance(session_id, str) and session_id.strip() else "session_id is required"


def create_session(
    params: CreateSessionParams, bind: Callable[[SessionData], SessionT]
) -> Call[SessionResult[SessionT]]:
    limits = {
        "memory_mb": params.memory_mb,
        "cpus": params.cpus,
        "pids": params.pids,
        "disk_mb": params.disk_mb,
    }
    resources = {name: value for name, value in limits.items() if value is not None}
    body: dict[str, Any] = {"image_id": params.image_id, "labels": params.labels, "resources": resources}
    if params.lifecycle_policy is not None:
        body["idle_timeout_s"], body["max_lifetime_s"] = params.lifecycle_policy.seconds()
    elif params.idle_release_timeout is not None:
        body["idle_timeout_s"] = params.idle_release_timeout
    if params.context_syncs:
        body["context_syncs"] = [sync.to_json() for sync in params.context_syncs]
    if params.network is not None:
        body["network"] = params.network.to_json()
    if params.screen is not None:
        body["screen"] = params.screen.to_json()
    if params.env:
        body["env"] = dict(params.env)
    if params.runtime is not None:
        body["runtime"] = params.runtime
    if params.from_snapshot is not None:
        body["from_snapshot"] = params.from_snapshot
    if params.idle_action is not None:
        body["idle_action"] = params.idle_action
    return Call(
        method="POST",
        path="/v1/sessions",
        body={k: v for k, v in body.items() if v or k.endswith("_s")},
        result_type=SessionResult,
        parse=lambda answer, rid: SessionResult(
            request_id=rid, success=True, session=bind(_session_data(answer["session"]))
        ),
    )


def get_session(session_id: str, bind: Callable[[SessionData], SessionT]) -> Call[SessionResult[SessionT]]:
    return Call(
        method="GET",
        path=session_path(session_id),
        refusal=session_id_refusal(session_id),
        result_type=SessionResult,
        parse=lambda answer, rid: SessionResult(
            request_id=rid, success=True, session=bind(_session_data(answer["session"]))
        ),
    )


def fork_session(session_id: str, bind: Callable[[SessionData], SessionT]) -> Call[SessionResult[SessionT]]:
    """A new session from a running gvisor session (docs/runtimes.md), RUNNING when answered."""
    return Call(
        method="POST",
        path=f"{session_path(session_id)}/fork",
        refusal=session_id_refusal(session_id),
        result_type=SessionResult,
        parse=lambda answer, rid: SessionResult(
            request_id=rid, success=True, session=bind(_session_data(answer["session"]))
        ),
    )


def fork_sessions(
    session_id: str, count: int, bind: Callable[[SessionData], SessionT]
) -> Call[SessionsResult[SessionT]]:
    """`count` new sessions from one checkpoint of a running gvisor session, RUNNING when answered."""
    return Call(
        method="POST",
        path=f"{session_path(session_id)}/fork",
        body={"count": count},
        refusal=session_id_refusal(session_id),
        result_type=SessionsResult,
        parse=lambda answer, rid: SessionsResult(
            request_id=rid, success=True, sessions=[bind(_session_data(s)) for s in answer["sessions"]]
        ),
    )


def _snapshot_info(raw: dict[str, Any]) -> SnapshotInfo:
    fields = set(SnapshotInfo.__dataclass_fields__)
    return SnapshotInfo(**{k: v for k, v in raw.items() if k in fields})


def snapshot_session(session_id: str, name: str) -> Call[SnapshotResult]:
    """A named snapshot of a running gvisor session, which runs on."""
    return Call(
        method="POST",
        path=f"{session_path(session_id)}/snapshots",
        body={"name": name},
        refusal=session_id_refusal(session_id),
        result_type=SnapshotResult,
        parse=lambda answer, rid: SnapshotResult(
            request_id=rid, success=True, snapshot=_snapshot_info(answer["snapshot"])
        ),
    )


def list_snapshots() -> Call[SnapshotListResult]:
    return Call(
        method="GET",
        path="/v1/snapshots",
        result_type=SnapshotListResult,
        parse=lambda answer, rid: SnapshotListResult(
            request_id=rid, success=True, snapshots=[_snapshot_info(s) for s in answer["snapshots"]]
        ),
    )


def delete_snapshot(snapshot_id: str) -> Call[DeleteResult]:
    refused = "" if isinstance(snapshot_id, str) and snapshot_id.strip() else "snapshot_id is required"
    return Call(
        method="DELETE",
        path=f"/v1/snapshots/{quote(snapshot_id, safe='')}",
        refusal=refused,
        result_type=DeleteResult,
        parse=lambda answer, rid: DeleteResult(request_id=rid, success=True),
    )


def list_sessions(
    labels: dict[str, str] | None,
    page: int | None,
    limit: int | None,
    status: str | None,
    image_id: str | None = None,
) -> Call[SessionListResult]:
    params: dict[str, str | int] = {}
    if labels:
        params["labels"] = json.dumps(labels)
    if status:
        params["status"] = status
    if image_id:
        params["image_id"] = image_id
    if page is not None:
        params["page"] = page
    if limit is not None:
        params["limit"] = limit

    def parse(answer: dict[str, Any], request_id: str) -> SessionListResult:
        sessions = [_session_data(raw) for raw in answer["sessions"]]
        next_page = answer.get("next_page")
        return SessionListResult(
            request_id=request_id,
            success=True,
            session_ids=[s.session_id for s in sessions],
            sessions=sessions,
            next_token=str(next_page) if next_page else "",
            max_results=int(answer["limit"]),
            total_count=int(answer["total_count"]),
        )

    return Call(method="GET", path="/v1/sessions", params=params, result_type=SessionListResult, parse=parse)


def delete_session(session_id: str, force: bool = False) -> Call[DeleteResult]:
    """With `force`, the session ends even if a synced folder cannot be uploaded."""
    return Call(
        method="DELETE",
        path=session_path(session_id),
        params={"force": "true"} if force else None,
        refusal=session_id_refusal(session_id),
        result_type=DeleteResult,
        parse=lambda answer, rid: DeleteResult(request_id=rid, success=True),
    )


def session_info(session_id: str) -> Call[OperationResult]:
    def parse(answer: dict[str, Any], request_id: str) -> OperationResult:
        fields = set(SessionInfo.__dataclass_fields__)
        info = SessionInfo(**{k: v for k, v in answer["info"].items() if k in fields})
        return OperationResult(request_id=request_id, success=True, data=info)

    return Call(
        method="GET",
        path=f"{session_path(session_id)}/info",
        refusal=session_id_refusal(session_id),
        result_type=OperationResult,
        parse=parse,
    )


def get_labels(session_id: str) -> Call[OperationResult]:
    return Call(
        method="GET",
        path=f"{session_path(session_id)}/labels",
        refusal=session_id_refusal(session_id),
        result_type=OperationResult,
        parse=lambda answer, rid: OperationResult(request_id=rid, success=True, data=answer["labels"]),
    )


def set_labels(session_id: str, labels: dict[str, str]) -> Call[OperationResult]:
    return Call(
        method="PUT",
        path=f"{session_path(session_id)}/labels",
        refusal=session_id_refusal(session_id),
        body={"labels": labels},
        result_type=OperationResult,
        parse=lambda answer, rid: OperationResult(request_id=rid, success=True, data=answer["labels"]),
    )


def get_status(session_id: str) -> Call[SessionStatusResult]:
    return Call(
        method="GET",
        path=session_path(session_id),
        refusal=session_id_refusal(session_id),
        result_type=SessionStatusResult,
        parse=lambda answer, rid: SessionStatusResult(
            request_id=rid, success=True, status=answer["session"]["status"]
        ),
    )


def pause_session(session_id: str) -> Call[SessionPauseResult]:
    """The server answers once the session is frozen (or with 409 if it cannot be paused)."""
    return _status_change(session_id, "pause", SessionPauseResult)


def resume_session(session_id: str) -> Call[SessionResumeResult]:
    return _status_change(session_id, "resume", SessionResumeResult)


StatusResultT = TypeVar("StatusResultT", SessionPauseResult, SessionResumeResult)


def _status_change(session_id: str, action: str, result_type: type[StatusResultT]) -> Call[StatusResultT]:
    """POST /v1/sessions/{id}/{action}; the result carries the session's status afterwards."""
    return Call(
        method="POST",
        path=f"{session_path(session_id)}/{action}",
        refusal=session_id_refusal(session_id),
        result_type=result_type,
        parse=lambda answer, rid: result_type(
            request_id=rid, success=True, status=answer["session"]["status"]
        ),
    )


def session_metrics(session_id: str) -> Call[SessionMetricsResult]:
    def parse(answer: dict[str, Any], request_id: str) -> SessionMetricsResult:
        raw = answer["metrics"]
        fields = set(SessionMetrics.__dataclass_fields__)
        metrics = SessionMetrics(**{k: v for k, v in raw.items() if k in fields})
        return SessionMetricsResult(request_id=request_id, success=True, metrics=metrics, raw=raw)

    return Call(
        method="GET",
        path=f"{session_path(session_id)}/metrics",
        refusal=session_id_refusal(session_id),
        result_type=SessionMetricsResult,
        parse=parse,
    )


def url_answer(answer: dict[str, Any], request_id: str) -> OperationResult:
    """An answer `{"url"}` as AgentBay's OperationResult, the URL in `data`."""
    return OperationResult(request_id=request_id, success=True, data=answer["url"])


def session_link(session_id: str, protocol_type: str | None, port: int | None) -> Call[OperationResult]:
    """`data` is the URL; the server checks the port (without one it answers the browser's CDP URL)."""
    params: dict[str, str | int] = {}
    if port is not None:
        params["port"] = port
    if protocol_type:
        params["protocol_type"] = protocol_type
    return Call(
        method="GET",
        path=f"{session_path(session_id)}/link",
        params=params,
        refusal=session_id_refusal(session_id),
        result_type=OperationResult,
        parse=url_answer,
    )


def session_desktop_url(session_id: str, interactive: bool) -> Call[OperationResult]:
    """`data` is the URL of the live viewer page."""
    return Call(
        method="GET",
        path=f"{session_path(session_id)}/desktop_url",
        params={"interactive": "true" if interactive else "false"},
        refusal=session_id_refusal(session_id),
        result_type=OperationResult,
        parse=url_answer,
    )


def keep_alive(session_id: str) -> Call[OperationResult]:
    return Call(
        method="POST",
        path=f"{session_path(session_id)}/keep_alive",
        refusal=session_id_refusal(session_id),
        result_type=OperationResult,
        parse=lambda answer, rid: OperationResult(request_id=rid, success=True, data=True),
    )
