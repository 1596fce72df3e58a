"""E2B's sandbox API (the control plane: `/v2/sandboxes`, `/sandboxes/{id}/...`) onto the session
manager: a sandbox is a session, its metadata the session's labels, its template an image, its
timeout the session's maximum lifetime (E2B sandboxes have no idle timeout).

Keys come as `X-API-KEY` and are Cove's keys, so a tenant's sessions are the same here as through
the native and AgentBay APIs. Errors are E2B's `{"code": <status>, "message"}`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cove.config import Settings
from cove.errors import CoveError, InvalidArgument, InvalidState, SessionNotFound
from cove.paging import MAX_PAGE_SIZE
from cove.server.api.e2b import ids
from cove.sessions import links
from cove.sessions.manager import CreateRequest, SessionManager
from cove.sessions.store import SessionRecord, utc_now

ENVD_VERSION = "0.5.7"
"""The envd version Cove's facade stands for: the SDK turns features on by it (stdin, close_stdin,
octet-stream and gzip uploads); 0.6.2 would have it send file metadata, which Cove does not keep."""
CLIENT_ID = "cove"
DEFAULT_TIMEOUT_S = 300
TEMPLATE_IMAGES = {"base": "linux_latest", "code-interpreter-v1": "code_latest"}
IMAGE_TEMPLATES = {image: template for template, image in TEMPLATE_IMAGES.items()}
STATES = {"running": ["RUNNING", "RESUMING"], "paused": ["PAUSED", "PAUSING"]}
NEVER = datetime(9999, 12, 31, tzinfo=UTC)


class NotSupported(CoveError):
    code = "NotSupported"
    http_status = 501


def error_answer(status: int, message: str) -> JSONResponse:
    """E2B's error body; a 5xx says not to retry, since the SDK retries 502-504 unless told."""
    headers = {"Should-Retry": "false"} if status >= 500 else None
    return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)


class E2BRoute(APIRoute):
    """A route whose errors, bad input and keys included, are answered in E2B's shape. The key is
    checked before the body is read, so a caller without one learns nothing of how it is parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                request.state.tenant_id = await run_in_threadpool(_authenticate, request)
                return await handler(request)
            except CoveError as error:
                return error_answer(error.http_status, error.message)
            except RequestValidationError as error:
                first = error.errors()[0]
                field = ".".join(str(part) for part in first["loc"] if part not in ("body", "query", "path"))
                return error_answer(400, f"{field or 'request'}: {first['msg']}")

        return answer


router = APIRouter(route_class=E2BRoute, tags=["e2b"])


def _authenticate(request: Request) -> str:
    found: str = request.app.state.services.keys.authenticate(
        f"Bearer {request.headers.get('x-api-key', '')}"
    )
    return found


def tenant(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> str:
    """The key's tenant, which the route found before the body was read (`x_api_key` documents it)."""
    found: str = request.state.tenant_id
    return found


Tenant = Annotated[str, Depends(tenant)]


def manager(request: Request) -> SessionManager:
    found: SessionManager = request.app.state.services.manager
    return found


class NetworkBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    allow_out: list[str] | None = Field(default=None, alias="allowOut")
    deny_out: list[str] | None = Field(default=None, alias="denyOut")


class CreateBody(BaseModel):
    template_id: str = Field(default="base", alias="templateID")
    timeout: int = DEFAULT_TIMEOUT_S
    metadata: dict[str, str] | None = None
    env_vars: dict[str, str] | None = Field(default=None, alias="envVars")
    allow_internet_access: bool | None = None
    network: NetworkBody | None = None
    auto_pause: bool = Field(default=False, alias="autoPause")
    secure: bool | None = None
    mcp: dict[str, Any] | None = None
    volume_mounts: list[Any] | None = Field(default=None, alias="volumeMounts")


class TimeoutBody(BaseModel):
    timeout: int


class ConnectBody(BaseModel):
    timeout: int | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _end(record: SessionRecord) -> datetime:
    if not record.max_lifetime_s:
        return NEVER
    return record.created_at + timedelta(seconds=record.max_lifetime_s)


def _template(record: SessionRecord) -> str:
    return IMAGE_TEMPLATES.get(record.image_id, record.image_id)


def _state(record: SessionRecord) -> str:
    return "paused" if record.status in STATES["paused"] else "running"


def _settings(request: Request) -> Settings:
    found: Settings = request.app.state.services.settings
    return found


def _sandbox(request: Request, record: SessionRecord) -> dict[str, Any]:
    """E2B's `Sandbox`, what create and connect answer. `domain` is where the SDK finds the
    sandbox's hosts (`{port}-{id}.{domain}`, for envd and `get_host`): this server."""
    settings = _settings(request)
    return {
        "templateID": _template(record),
        "sandboxID": ids.sandbox_id(settings.data_dir, record.session_id),
        "clientID": CLIENT_ID,
        "envdVersion": ENVD_VERSION,
        "envdAccessToken": links.sandbox_token(settings.data_dir, record.session_id),
        "trafficAccessToken": None,
        "domain": settings.e2b_public_domain,
        "alias": _template(record),
    }


def _listed(request: Request, record: SessionRecord) -> dict[str, Any]:
    """E2B's `ListedSandbox`; `SandboxDetail` adds the access token and the domain."""
    return {
        "templateID": _template(record),
        "alias": _template(record),
        "sandboxID": ids.sandbox_id(_settings(request).data_dir, record.session_id),
        "clientID": CLIENT_ID,
        "startedAt": _iso(record.created_at),
        "endAt": _iso(_end(record)),
        "envdVersion": ENVD_VERSION,
        "cpuCount": math.ceil(record.cpus or 1),
        "memoryMB": record.memory_mb or 0,
        "diskSizeMB": record.disk_mb or 0,
        "state": _state(record),
        "metadata": record.labels,
    }


def _live(request: Request, tenant_id: str, sandbox_id: str) -> SessionRecord:
    """The caller's live session, by its sandbox id (or its Cove session id: ids.py); an ended one
    is gone, as E2B sees it."""
    record = manager(request).get(tenant_id, ids.session_named(_settings(request).data_dir, sandbox_id))
    if record.status == "DELETED":
        raise SessionNotFound(sandbox_id)
    return record


def _network(body: CreateBody) -> dict[str, Any] | None:
    if body.allow_internet_access is False:
        return {"mode": "none"}
    if body.network is None:
        return None
    if body.network.model_extra:
        raise NotSupported("network: only allowOut and denyOut are supported by Cove")
    return body.network.model_dump(exclude_none=True)


def _refuse_unsupported(body: CreateBody) -> None:
    """Asked-for features Cove lacks are refused, never ignored."""
    unsupported = {
        "autoPause": body.auto_pause,
        "mcp": bool(body.mcp),
        "volumeMounts": bool(body.volume_mounts),
    }
    for name, asked in unsupported.items():
        if asked:
            raise NotSupported(f"{name} is not supported by Cove's E2B API yet")


def _create(request: Request, tenant_id: str, body: CreateBody) -> JSONResponse:
    _refuse_unsupported(body)
    create = CreateRequest(
        image_id=TEMPLATE_IMAGES.get(body.template_id, body.template_id),
        labels=body.metadata,
        idle_timeout_s=0,
        max_lifetime_s=body.timeout,
        network=_network(body),
        env=body.env_vars,
    )
    record = manager(request).create(tenant_id, create)
    return JSONResponse(_sandbox(request, record), status_code=201)


@router.post("/v2/sandboxes", status_code=201)
def create_sandbox(request: Request, tenant_id: Tenant, body: CreateBody) -> JSONResponse:
    return _create(request, tenant_id, body)


@router.post("/sandboxes", status_code=201)
def create_sandbox_v1(request: Request, tenant_id: Tenant, body: CreateBody) -> JSONResponse:
    """The spelling SDKs before 2.50 use."""
    return _create(request, tenant_id, body)


def _metadata_query(raw: str | None) -> dict[str, str] | None:
    """`k%3Dv%26app%3Dprod`: a query string of percent-quoted pairs."""
    if not raw:
        return None
    return {unquote(key): unquote(value) for key, value in parse_qsl(raw, keep_blank_values=True)}


def _statuses(raw: str | None) -> str | None:
    """The one Cove status a state filter asks for; None for both states."""
    states = {state.strip() for state in (raw or "").split(",") if state.strip()}
    if states - set(STATES):
        raise InvalidArgument(f"state must be running, paused or both, not {raw!r}")
    if len(states) == 1:
        return STATES[states.pop()][0]
    return None


@router.get("/v2/sandboxes")
def list_sandboxes(
    request: Request,
    response: Response,
    tenant_id: Tenant,
    metadata: str | None = None,
    state: str | None = None,
    limit: int = MAX_PAGE_SIZE,
    next_token: Annotated[str | None, Query(alias="nextToken")] = None,
) -> list[dict[str, Any]]:
    """The caller's sandboxes, a page at a time; the next page's token is in `X-Next-Token`."""
    token = next_token or "1"
    if not token.isdigit() or not 1 <= int(token) <= 10**9:
        raise InvalidArgument(f"nextToken {token[:40]!r} is not one this server gave")
    found = manager(request).list(
        tenant_id, labels=_metadata_query(metadata), status=_statuses(state), page=int(token), limit=limit
    )
    if found.next_page:
        response.headers["X-Next-Token"] = str(found.next_page)
    return [_listed(request, record) for record in found.items]


@router.get("/sandboxes/{sandbox_id}")
def get_sandbox(request: Request, tenant_id: Tenant, sandbox_id: str) -> dict[str, Any]:
    record = _live(request, tenant_id, sandbox_id)
    sandbox = _sandbox(request, record)
    return {
        **_listed(request, record),
        "envdAccessToken": sandbox["envdAccessToken"],
        "domain": sandbox["domain"],
    }


@router.delete("/sandboxes/{sandbox_id}", status_code=204)
def kill_sandbox(request: Request, tenant_id: Tenant, sandbox_id: str) -> Response:
    manager(request).delete(tenant_id, _live(request, tenant_id, sandbox_id).session_id)
    return Response(status_code=204)


def _extend(request: Request, tenant_id: str, record: SessionRecord, timeout_s: int) -> SessionRecord:
    """The sandbox lives `timeout_s` from now: its lifetime counted from its creation."""
    if timeout_s < 0:
        raise InvalidArgument("timeout must be a whole number of seconds, at least 0")
    lived = math.ceil((utc_now() - record.created_at).total_seconds())
    return manager(request).set_lifetime(tenant_id, record.session_id, lived + timeout_s)


@router.post("/sandboxes/{sandbox_id}/timeout", status_code=204)
def set_timeout(request: Request, tenant_id: Tenant, sandbox_id: str, body: TimeoutBody) -> Response:
    _extend(request, tenant_id, _live(request, tenant_id, sandbox_id), body.timeout)
    return Response(status_code=204)


@router.post("/sandboxes/{sandbox_id}/pause", status_code=204)
def pause_sandbox(request: Request, tenant_id: Tenant, sandbox_id: str) -> Response:
    """409 for a sandbox already paused, which the SDK reads as "nothing to do"."""
    record = _live(request, tenant_id, sandbox_id)
    if record.status in STATES["paused"]:
        raise InvalidState(f"sandbox {sandbox_id} is already paused")
    manager(request).pause(tenant_id, record.session_id)
    return Response(status_code=204)


def _connect(request: Request, tenant_id: str, sandbox_id: str, body: ConnectBody) -> JSONResponse:
    """200 for a running sandbox, 201 for one resumed; a timeout only ever extends its life."""
    record = _live(request, tenant_id, sandbox_id)
    status = 200
    if record.status in STATES["paused"]:
        record = manager(request).resume(tenant_id, record.session_id)
        status = 201
    if body.timeout is not None and utc_now() + timedelta(seconds=body.timeout) > _end(record):
        record = _extend(request, tenant_id, record, body.timeout)
    return JSONResponse(_sandbox(request, record), status_code=status)


@router.post("/v2/sandboxes/{sandbox_id}/connect")
def connect_sandbox(request: Request, tenant_id: Tenant, sandbox_id: str, body: ConnectBody) -> JSONResponse:
    return _connect(request, tenant_id, sandbox_id, body)


@router.post("/sandboxes/{sandbox_id}/connect")
def connect_sandbox_v1(
    request: Request, tenant_id: Tenant, sandbox_id: str, body: ConnectBody
) -> JSONResponse:
    return _connect(request, tenant_id, sandbox_id, body)


@router.post("/sandboxes/{sandbox_id}/resume", status_code=201)
def resume_sandbox(request: Request, tenant_id: Tenant, sandbox_id: str, body: ConnectBody) -> JSONResponse:
    """The older resume call: always 201."""
    answer = _connect(request, tenant_id, sandbox_id, body)
    answer.status_code = 201
    return answer


@router.get("/sandboxes/{sandbox_id}/metrics")
def sandbox_metrics(request: Request, tenant_id: Tenant, sandbox_id: str) -> list[dict[str, Any]]:
    """One sample, taken now, whatever `start` and `end` ask: Cove keeps no history of metrics."""
    metrics = manager(request).metrics(tenant_id, _live(request, tenant_id, sandbox_id).session_id)
    moment = datetime.fromisoformat(metrics.timestamp)
    return [
        {
            "timestamp": _iso(moment),
            "timestampUnix": int(moment.timestamp()),
            "cpuCount": math.ceil(metrics.cpu_count),
            "cpuUsedPct": metrics.cpu_used_pct,
            "memUsed": metrics.mem_used,
            "memTotal": metrics.mem_total,
            "memCache": 0,
            "diskUsed": metrics.disk_used,
            "diskTotal": metrics.disk_total,
        }
    ]


@router.api_route("/sandboxes/{sandbox_id}/{action}", methods=["GET", "POST", "PUT", "DELETE"])
def not_supported(tenant_id: Tenant, sandbox_id: str, action: str) -> Response:
    """fork, snapshots, network and the rest: refused plainly (501 is not retried by the SDK)."""
    raise NotSupported(f"{action} is not supported by Cove's E2B API yet")
