"""Cove's own JSON REST API under /v1: thin translation between HTTP and the session manager."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from cove.errors import InvalidArgument, LengthRequired
from cove.sandbox.network_policy import NetworkState
from cove.server.sandbox_calls import in_sandbox
from cove.server.transfer_stalls import StallGuardedResponse, within_stalls
from cove.sessions import browser, links
from cove.sessions.manager import CreateRequest, SessionManager
from cove.sessions.store import SessionRecord, SnapshotRecord
from cove.sessions.validation import MAX_SCREEN, MIN_SCREEN

router = APIRouter()
bearer = HTTPBearer(auto_error=False, description="an API key from `cove key create`")


class Resources(BaseModel):
    memory_mb: int | None = Field(default=None, description="memory limit in MiB")
    cpus: float | None = Field(default=None, description="CPU limit in cores")
    pids: int | None = Field(default=None, description="limit on processes and threads")
    disk_mb: int | None = Field(
        default=None, description="limit in MiB on what the session writes (files count by their metadata)"
    )


class NetworkPolicyBody(BaseModel):
    """A session's network policy; the server checks the entries (sandbox/network_policy.py).

    Unknown fields are refused: a misspelt `allow_out` must not pass as "no rules"."""

    model_config = ConfigDict(extra="forbid")

    mode: str | None = Field(
        default=None, description='"egress" (its own address, egress by the rules) or "none" (only lo)'
    )
    allow_out: list[str] | None = Field(
        default=None,
        description=(
            "destinations allowed: CIDRs or addresses (1.2.3.0/24), domain names (pypi.org) or "
            "wildcards (*.example.com, its sub-domains); allow wins over deny; at most 256"
        ),
    )
    deny_out: list[str] | None = Field(
        default=None, description="destinations denied, as allow_out (0.0.0.0/0: all else); at most 256"
    )


class ScreenBody(BaseModel):
    """The desktop's size in pixels; the server checks the bounds (sessions/validation.py)."""

    model_config = ConfigDict(extra="forbid")

    width: StrictInt = Field(
        description="pixels", json_schema_extra={"minimum": MIN_SCREEN.width, "maximum": MAX_SCREEN.width}
    )
    height: StrictInt = Field(
        description="pixels", json_schema_extra={"minimum": MIN_SCREEN.height, "maximum": MAX_SCREEN.height}
    )


class CreateSessionBody(BaseModel):
    image_id: str | None = None
    labels: dict[str, str] | None = None
    resources: Resources | None = None
    idle_timeout_s: int | None = Field(default=None, description="delete after this long unused; 0: never")
    max_lifetime_s: int | None = Field(default=None, description="delete this long after creation; 0: never")
    idle_action: str | None = Field(
        default=None,
        description='what becomes of the session once idle past idle_timeout_s: "delete", or "pause" '
        "(it is then resumed as any paused session); without it, the server's COVE_IDLE_ACTION",
    )
    context_syncs: list[Any] | None = Field(
        default=None,
        description=(
            "contexts to sync: [{context_id, path, policy?}], policy being AgentBay's SyncPolicy in "
            "camelCase JSON; downloaded into path on create, uploaded back before the session is released"
        ),
    )
    network: NetworkPolicyBody | None = Field(
        default=None, description="what the session may reach; without it, the server's default mode"
    )
    screen: ScreenBody | None = Field(
        default=None, description="the desktop's size (computer tools); without it, 1280x800"
    )
    env: dict[str, str] | None = Field(
        default=None,
        description="environment variables every command, process and kernel of the session starts with",
    )
    runtime: str | None = Field(
        default=None,
        description='what runs the sandbox: "runc", or "gvisor" (gVisor\'s runsc, docs/runtimes.md); '
        "without it, the server's default",
    )
    from_snapshot: str | None = Field(
        default=None,
        description="a snapshot's id: the session starts from it, with its image, limits, processes, "
        "memory and files (docs/runtimes.md)",
    )


class LabelsBody(BaseModel):
    labels: dict[str, str]


class SessionOut(BaseModel):
    session_id: str
    status: str
    status_reason: str
    image_id: str
    labels: dict[str, str]
    resources: Resources
    screen: ScreenBody
    runtime: str
    resource_url: str
    created_at: datetime
    updated_at: datetime
    idle_timeout_s: int
    idle_action: str
    max_lifetime_s: int
    last_active_at: datetime


class SessionAnswer(BaseModel):
    request_id: str
    session: SessionOut


class SessionListAnswer(BaseModel):
    request_id: str
    sessions: list[SessionOut]
    total_count: int
    page: int
    limit: int
    next_page: int | None


class SessionInfoOut(BaseModel):
    session_id: str
    resource_url: str
    image_id: str
    status: str
    hostname: str
    resources: Resources
    screen: ScreenBody
    created_at: datetime


class SessionInfoAnswer(BaseModel):
    request_id: str
    info: SessionInfoOut


class LabelsAnswer(BaseModel):
    request_id: str
    labels: dict[str, str]


class ToolOut(BaseModel):
    name: str
    description: str
    inputSchema: dict[str, Any]


class ToolsAnswer(BaseModel):
    request_id: str
    tools: list[ToolOut]


class BrowserBody(BaseModel):
    option: dict[str, Any] = Field(
        default_factory=dict, description="AgentBay's BrowserOption keys (docs/browser.md says which count)"
    )
    persistent_path: str | None = Field(None, description="Chromium's profile folder in the session")


class BrowserAnswer(BaseModel):
    request_id: str
    port: int
    started: bool
    cdp_url: str


class ToolCallBody(BaseModel):
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResult(BaseModel):
    content: list[dict[str, Any]]
    isError: bool


class ToolCallAnswer(BaseModel):
    request_id: str
    result: ToolResult


class UploadAnswer(BaseModel):
    request_id: str
    path: str
    size: int


class NetworkPolicyOut(BaseModel):
    mode: str
    allow_out: list[str]
    deny_out: list[str]


class DeniedOut(BaseModel):
    destination: str
    port: int | None
    protocol: str
    name: str | None = Field(description="the host name asked for (HTTP Host, TLS SNI), if known")
    at: datetime


class DeniedSummary(BaseModel):
    count: int = Field(description="connections refused since the session started")
    recent: list[DeniedOut] = Field(description="the latest of them, oldest first")


class NetworkAnswer(BaseModel):
    request_id: str
    session_id: str
    policy: NetworkPolicyOut
    address: str | None = Field(description="the session's own address; null with mode none")
    gateway: str | None
    denied: DeniedSummary


class ImageOut(BaseModel):
    image_id: str
    source: str
    size_bytes: int
    created_at: datetime


class ImagesAnswer(BaseModel):
    request_id: str
    images: list[ImageOut]


def tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    header = f"Bearer {credentials.credentials}" if credentials else None
    found: str = request.app.state.services.keys.authenticate(header)
    return found


Tenant = Annotated[str, Depends(tenant)]


def manager(request: Request) -> SessionManager:
    found: SessionManager = request.app.state.services.manager
    return found


def _resource_url(request: Request, session_id: str) -> str:
    return f"{request.app.state.services.settings.base_url}/v1/sessions/{session_id}"


def _resources(record: SessionRecord) -> Resources:
    return Resources(memory_mb=record.memory_mb, cpus=record.cpus, pids=record.pids, disk_mb=record.disk_mb)


def _screen(record: SessionRecord) -> ScreenBody:
    return ScreenBody(width=record.screen.width, height=record.screen.height)


def _session_out(request: Request, record: SessionRecord) -> SessionOut:
    return SessionOut(
        session_id=record.session_id,
        status=record.status,
        status_reason=record.status_reason,
        image_id=record.image_id,
        labels=record.labels,
        resources=_resources(record),
        screen=_screen(record),
        runtime=record.runtime,
        resource_url=_resource_url(request, record.session_id),
        created_at=record.created_at,
        updated_at=record.updated_at,
        idle_timeout_s=record.idle_timeout_s,
        idle_action=record.idle_action,
        max_lifetime_s=record.max_lifetime_s,
        last_active_at=record.active_at,
    )


def _answer(request: Request, record: SessionRecord) -> SessionAnswer:
    return SessionAnswer(request_id=request.state.request_id, session=_session_out(request, record))


def _labels_query(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        labels = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f'labels must be a JSON object such as {{"team": "a"}}: {exc}') from exc
    except RecursionError:
        raise InvalidArgument("labels is nested too deeply") from None
    if not isinstance(labels, dict):
        raise InvalidArgument('labels must be a JSON object such as {"team": "a"}')
    return labels


@router.get("/v1/health", tags=["server"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", tags=["server"], response_class=PlainTextResponse)
def prometheus_metrics(request: Request) -> PlainTextResponse:
    """Prometheus' text format; no key needed (counts only, nothing about any one tenant)."""
    body = request.app.state.services.metrics.render()
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)


@router.post("/v1/sessions", status_code=201, response_model=SessionAnswer, tags=["sessions"])
def create_session(request: Request, tenant_id: Tenant, body: CreateSessionBody) -> SessionAnswer:
    resources = body.resources or Resources()
    create = CreateRequest(
        image_id=body.image_id,
        labels=body.labels,
        memory_mb=resources.memory_mb,
        cpus=resources.cpus,
        pids=resources.pids,
        disk_mb=resources.disk_mb,
        idle_timeout_s=body.idle_timeout_s,
        max_lifetime_s=body.max_lifetime_s,
        context_syncs=body.context_syncs,
        network=body.network.model_dump(exclude_none=True) if body.network else None,
        screen=body.screen.model_dump() if body.screen else None,
        env=body.env,
        runtime=body.runtime,
        from_snapshot=body.from_snapshot,
        idle_action=body.idle_action,
    )
    return _answer(request, manager(request).create(tenant_id, create))


@router.get("/v1/sessions", response_model=SessionListAnswer, tags=["sessions"])
def list_sessions(
    request: Request,
    tenant_id: Tenant,
    labels: Annotated[str | None, Query(description='JSON object, e.g. {"team": "a"}')] = None,
    status: str | None = None,
    image_id: str | None = None,
    page: int = 1,
    limit: int = 10,
) -> SessionListAnswer:
    found = manager(request).list(
        tenant_id,
        labels=_labels_query(labels),
        status=status,
        image_id=image_id,
        page=page,
        limit=limit,
    )
    return SessionListAnswer(
        request_id=request.state.request_id,
        sessions=[_session_out(request, record) for record in found.items],
        total_count=found.total_count,
        page=found.page,
        limit=found.limit,
        next_page=found.next_page,
    )


@router.get("/v1/sessions/{session_id}", response_model=SessionAnswer, tags=["sessions"])
def get_session(request: Request, tenant_id: Tenant, session_id: str) -> SessionAnswer:
    return _answer(request, manager(request).get(tenant_id, session_id))


@router.get("/v1/sessions/{session_id}/info", response_model=SessionInfoAnswer, tags=["sessions"])
def session_info(request: Request, tenant_id: Tenant, session_id: str) -> SessionInfoAnswer:
    record = manager(request).get(tenant_id, session_id)
    info = SessionInfoOut(
        session_id=record.session_id,
        resource_url=_resource_url(request, record.session_id),
        image_id=record.image_id,
        status=record.status,
        hostname=record.session_id,
        resources=_resources(record),
        screen=_screen(record),
        created_at=record.created_at,
    )
    return SessionInfoAnswer(request_id=request.state.request_id, info=info)


@router.get("/v1/sessions/{session_id}/labels", response_model=LabelsAnswer, tags=["sessions"])
def get_labels(request: Request, tenant_id: Tenant, session_id: str) -> LabelsAnswer:
    record = manager(request).get(tenant_id, session_id)
    return LabelsAnswer(request_id=request.state.request_id, labels=record.labels)


@router.put("/v1/sessions/{session_id}/labels", response_model=LabelsAnswer, tags=["sessions"])
def set_labels(request: Request, tenant_id: Tenant, session_id: str, body: LabelsBody) -> LabelsAnswer:
    record = manager(request).set_labels(tenant_id, session_id, body.labels)
    return LabelsAnswer(request_id=request.state.request_id, labels=record.labels)


@router.delete("/v1/sessions/{session_id}", response_model=SessionAnswer, tags=["sessions"])
def delete_session(
    request: Request, tenant_id: Tenant, session_id: str, force: bool = False
) -> SessionAnswer:
    """End the session, uploading its synced folders first; a failed upload keeps it (502
    ContextUploadFailed) unless `force`, which ends it anyway, the loss in its `status_reason`."""
    return _answer(request, manager(request).delete(tenant_id, session_id, force))


@router.post("/v1/sessions/{session_id}/keep_alive", response_model=SessionAnswer, tags=["sessions"])
def keep_alive(request: Request, tenant_id: Tenant, session_id: str) -> SessionAnswer:
    """Count as activity: the session's idle timeout starts again."""
    manager(request).keep_alive(tenant_id, session_id)
    return _answer(request, manager(request).get(tenant_id, session_id))


@router.post("/v1/sessions/{session_id}/pause", response_model=SessionAnswer, tags=["sessions"])
def pause_session(request: Request, tenant_id: Tenant, session_id: str) -> SessionAnswer:
    """Freeze the session (PAUSED): no CPU; its processes, memory and files stay as they are."""
    return _answer(request, manager(request).pause(tenant_id, session_id))


@router.post("/v1/sessions/{session_id}/resume", response_model=SessionAnswer, tags=["sessions"])
def resume_session(request: Request, tenant_id: Tenant, session_id: str) -> SessionAnswer:
    return _answer(request, manager(request).resume(tenant_id, session_id))


class ForkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int | None = Field(
        default=None,
        description="how many sessions to make from the one checkpoint, 1 to 10; "
        "with it the answer lists them under `sessions`",
    )


class ForkAnswer(BaseModel):
    request_id: str
    sessions: list[SessionOut]


@router.post(
    "/v1/sessions/{session_id}/fork",
    status_code=201,
    response_model=SessionAnswer | ForkAnswer,
    tags=["sessions"],
)
def fork_session(
    request: Request, tenant_id: Tenant, session_id: str, body: ForkBody | None = None
) -> SessionAnswer | ForkAnswer:
    """New sessions from a RUNNING gvisor session: its processes, memory and files as they are now."""
    count = body.count if body is not None else None
    records = manager(request).fork(tenant_id, session_id, 1 if count is None else count)
    if count is None:
        return _answer(request, records[0])
    return ForkAnswer(
        request_id=request.state.request_id, sessions=[_session_out(request, r) for r in records]
    )


class SnapshotBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class SnapshotOut(BaseModel):
    snapshot_id: str
    name: str
    source_session_id: str
    image_id: str
    size_bytes: int
    created_at: datetime


class SnapshotAnswer(BaseModel):
    request_id: str
    snapshot: SnapshotOut


class SnapshotListAnswer(BaseModel):
    request_id: str
    snapshots: list[SnapshotOut]


def _snapshot_out(record: SnapshotRecord) -> SnapshotOut:
    return SnapshotOut(
        snapshot_id=record.snapshot_id,
        name=record.name,
        source_session_id=record.source_session_id,
        image_id=record.image_id,
        size_bytes=record.size_bytes,
        created_at=record.created_at,
    )


@router.post(
    "/v1/sessions/{session_id}/snapshots",
    status_code=201,
    response_model=SnapshotAnswer,
    tags=["snapshots"],
)
def snapshot_session(
    request: Request, tenant_id: Tenant, session_id: str, body: SnapshotBody
) -> SnapshotAnswer:
    """A named snapshot of a RUNNING gvisor session (processes, memory, files); the session runs on."""
    record = manager(request).snapshot(tenant_id, session_id, body.name)
    return SnapshotAnswer(request_id=request.state.request_id, snapshot=_snapshot_out(record))


@router.get("/v1/snapshots", response_model=SnapshotListAnswer, tags=["snapshots"])
def list_snapshots(request: Request, tenant_id: Tenant) -> SnapshotListAnswer:
    records = manager(request).list_snapshots(tenant_id)
    return SnapshotListAnswer(
        request_id=request.state.request_id, snapshots=[_snapshot_out(r) for r in records]
    )


@router.delete("/v1/snapshots/{snapshot_id}", response_model=SnapshotAnswer, tags=["snapshots"])
def delete_snapshot(request: Request, tenant_id: Tenant, snapshot_id: str) -> SnapshotAnswer:
    record = manager(request).delete_snapshot(tenant_id, snapshot_id)
    return SnapshotAnswer(request_id=request.state.request_id, snapshot=_snapshot_out(record))


@router.get("/v1/sessions/{session_id}/metrics", tags=["sessions"])
def session_metrics(request: Request, tenant_id: Tenant, session_id: str) -> dict[str, Any]:
    """CPU, memory, disk, processes and network of the session, from the kernel's accounting."""
    metrics = manager(request).metrics(tenant_id, session_id)
    return {"request_id": request.state.request_id, "metrics": asdict(metrics)}


@router.get("/v1/sessions/{session_id}/link", tags=["sessions"])
async def session_link(
    request: Request,
    tenant_id: Tenant,
    session_id: str,
    port: Annotated[str | None, Query(description="a port in [30100, 30199] inside the session")] = None,
    protocol_type: Annotated[str | None, Query(description="https or http; wss or ws (the default)")] = None,
) -> dict[str, str]:
    """A URL that reaches `port` inside the session with no API key (HTTP and WebSocket; docs/links.md);
    without a port, as in AgentBay, the browser's CDP URL (docs/browser.md)."""
    if not port:
        return await browser_cdp_url(request, tenant_id, session_id)
    url = links.link_url(manager(request), tenant_id, session_id, port, protocol_type)
    return {"request_id": request.state.request_id, "url": url}


@router.get("/v1/sessions/{session_id}/desktop_url", tags=["sessions"])
def session_desktop_url(
    request: Request,
    tenant_id: Tenant,
    session_id: str,
    interactive: Annotated[bool, Query(description="let the viewer use the mouse and keyboard")] = False,
) -> dict[str, str]:
    """A page that shows the session's desktop live in a browser, with no API key (docs/computer.md)."""
    url = links.desktop_url(manager(request), tenant_id, session_id, interactive)
    return {"request_id": request.state.request_id, "url": url}


@router.post("/v1/sessions/{session_id}/browser", response_model=BrowserAnswer, tags=["browser"])
async def start_browser(
    request: Request, tenant_id: Tenant, session_id: str, body: BrowserBody
) -> BrowserAnswer:
    """Start the session's Chromium if it is not running (the options apply only then); answers its
    CDP URL, which needs no API key (docs/browser.md)."""
    running = await in_sandbox(
        browser.start, manager(request), tenant_id, session_id, body.option, body.persistent_path
    )
    url = links.cdp_url(manager(request), tenant_id, session_id)
    return BrowserAnswer(
        request_id=request.state.request_id, port=running.port, started=running.started, cdp_url=url
    )


@router.get("/v1/sessions/{session_id}/browser/cdp_url", tags=["browser"])
async def browser_cdp_url(request: Request, tenant_id: Tenant, session_id: str) -> dict[str, str]:
    """The browser-level CDP WebSocket URL of the session, starting the browser if it is not running."""
    await in_sandbox(browser.start, manager(request), tenant_id, session_id)
    return {
        "request_id": request.state.request_id,
        "url": links.cdp_url(manager(request), tenant_id, session_id),
    }


@router.delete("/v1/sessions/{session_id}/browser", tags=["browser"])
async def stop_browser(request: Request, tenant_id: Tenant, session_id: str) -> dict[str, Any]:
    """Stop the session's browser, letting it write its profile first; `stopped` is false if none ran."""
    stopped = await in_sandbox(browser.stop, manager(request), tenant_id, session_id)
    return {"request_id": request.state.request_id, "stopped": stopped}


def _network_answer(request: Request, session_id: str, state: NetworkState) -> NetworkAnswer:
    """The policy as the server holds it (mode filled in, entries normalised), and what it refused."""
    recent = [
        DeniedOut(destination=d.destination, port=d.port, protocol=d.protocol, name=d.name, at=d.at)
        for d in state.denied
    ]
    return NetworkAnswer(
        request_id=request.state.request_id,
        session_id=session_id,
        policy=NetworkPolicyOut(**state.policy.to_wire()),
        address=state.address,
        gateway=state.gateway,
        denied=DeniedSummary(count=state.denied_count, recent=recent),
    )


@router.get("/v1/sessions/{session_id}/network", response_model=NetworkAnswer, tags=["network"])
def get_network(request: Request, tenant_id: Tenant, session_id: str) -> NetworkAnswer:
    """The session's network policy, its address and gateway, and the connections it was refused."""
    return _network_answer(request, session_id, manager(request).network(tenant_id, session_id))


@router.put("/v1/sessions/{session_id}/network", response_model=NetworkAnswer, tags=["network"])
def set_network(
    request: Request, tenant_id: Tenant, session_id: str, body: NetworkPolicyBody
) -> NetworkAnswer:
    """Replace the session's policy (fields left out take their defaults); it applies from the next
    connection. 400 for an invalid entry, or mode egress where the operator forbids egress."""
    state = manager(request).set_network(tenant_id, session_id, body.model_dump(exclude_none=True))
    return _network_answer(request, session_id, state)


@router.get("/v1/images", response_model=ImagesAnswer, tags=["images"])
def list_images(request: Request, tenant_id: Tenant) -> ImagesAnswer:
    images = request.app.state.services.images.list()
    return ImagesAnswer(
        request_id=request.state.request_id,
        images=[
            ImageOut(
                image_id=i.image_id,
                source=i.source,
                size_bytes=i.size_bytes,
                created_at=datetime.fromtimestamp(i.created_at).astimezone(),
            )
            for i in images
        ],
    )


@router.get("/v1/sessions/{session_id}/tools", response_model=ToolsAnswer, tags=["tools"])
def list_tools(request: Request, tenant_id: Tenant, session_id: str) -> ToolsAnswer:
    tools = manager(request).list_tools(tenant_id, session_id)
    return ToolsAnswer(request_id=request.state.request_id, tools=[ToolOut(**tool) for tool in tools])


@router.post("/v1/sessions/{session_id}/tools/{name}", response_model=ToolCallAnswer, tags=["tools"])
async def call_tool(
    request: Request, tenant_id: Tenant, session_id: str, name: str, body: ToolCallBody
) -> ToolCallAnswer:
    """Run a tool in the session. A tool that ran and failed answers 200 with isError true; past the
    key's `tenant_tool_calls` calls in flight, 429 QuotaExceeded."""
    result = await in_sandbox(manager(request).call_tool, tenant_id, session_id, name, body.arguments)
    return ToolCallAnswer(request_id=request.state.request_id, result=ToolResult(**result))


FilePath = Annotated[str, Query(description="the file's path in the sandbox; relative to the home directory")]


@router.put("/v1/sessions/{session_id}/files", response_model=UploadAnswer, tags=["files"])
async def upload_file(request: Request, tenant_id: Tenant, session_id: str, path: FilePath) -> UploadAnswer:
    """Stream the body into a file (parents created); it appears only once complete. A pause of
    `transfer_stall_timeout_s` on either side ends it."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise LengthRequired("an upload needs a Content-Length header (curl -T and the SDK send one)")
    stall_s = manager(request).settings.transfer_stall_timeout_s
    agent = await run_in_threadpool(manager(request).agent, tenant_id, session_id)
    saved = await agent.upload(path, int(length), within_stalls(request.stream(), stall_s), stall_s)
    return UploadAnswer(request_id=request.state.request_id, path=saved["path"], size=saved["size"])


@router.get(
    "/v1/sessions/{session_id}/files",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    tags=["files"],
)
async def download_file(
    request: Request, tenant_id: Tenant, session_id: str, path: FilePath
) -> StreamingResponse:
    """Stream a regular file out of the sandbox, as fast as the client takes it; a pause of
    `transfer_stall_timeout_s` on either side ends it."""
    stall_s = manager(request).settings.transfer_stall_timeout_s
    agent = await run_in_threadpool(manager(request).agent, tenant_id, session_id)
    size, body = await agent.download(path, stall_s)
    return StallGuardedResponse(body, size, stall_s)
