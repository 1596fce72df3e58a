"""Contexts in Cove's REST API under /v1/contexts, and the key-less file URLs under /v1/context-files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cove.contexts.service import ContextService, iso
from cove.contexts.storage import StoredFile
from cove.contexts.store import ContextRecord
from cove.server.api.native import Tenant
from cove.server.sandbox_calls import in_sandbox
from cove.sessions.context_syncs import Binding

router = APIRouter(tags=["contexts"])

ContextPath = Annotated[str, Query(description="a path in the context, such as 'data/notes.txt'")]


class NameBody(BaseModel):
    name: str


class ContextOut(BaseModel):
    id: str
    name: str
    state: str
    created_at: str
    last_used_at: str


class ContextAnswer(BaseModel):
    request_id: str
    context: ContextOut


class ContextListAnswer(BaseModel):
    request_id: str
    contexts: list[ContextOut]
    total_count: int
    page: int
    limit: int
    next_page: int | None


class FileOut(BaseModel):
    path: str
    name: str
    type: str
    size: int
    created_at: str
    modified_at: str


class FileListAnswer(BaseModel):
    request_id: str
    files: list[FileOut]
    total_count: int
    page: int
    limit: int
    next_page: int | None


class UrlAnswer(BaseModel):
    request_id: str
    url: str
    expire_time: int


class DoneAnswer(BaseModel):
    request_id: str


class StoredAnswer(BaseModel):
    request_id: str
    path: str
    size: int


def service(request: Request) -> ContextService:
    found: ContextService = request.app.state.services.contexts
    return found


def context_out(record: ContextRecord) -> ContextOut:
    return ContextOut(
        id=record.context_id,
        name=record.name,
        state=record.state,
        created_at=iso(record.created_at),
        last_used_at=iso(record.last_used_at),
    )


def file_out(stored: StoredFile) -> FileOut:
    return FileOut(
        path=stored.path,
        name=stored.name,
        type="folder" if stored.is_folder else "file",
        size=stored.size,
        created_at=iso(stored.created_at),
        modified_at=iso(stored.modified_at),
    )


def _answer(request: Request, record: ContextRecord) -> ContextAnswer:
    return ContextAnswer(request_id=request.state.request_id, context=context_out(record))


@router.post("/v1/contexts", status_code=201, response_model=ContextAnswer)
def create_context(request: Request, tenant_id: Tenant, body: NameBody) -> ContextAnswer:
    return _answer(request, service(request).create(tenant_id, body.name))


@router.get("/v1/contexts", response_model=ContextListAnswer)
def list_contexts(request: Request, tenant_id: Tenant, page: int = 1, limit: int = 10) -> ContextListAnswer:
    found = service(request).list(tenant_id, page, limit)
    return ContextListAnswer(
        request_id=request.state.request_id,
        contexts=[context_out(record) for record in found.items],
        total_count=found.total_count,
        page=found.page,
        limit=found.limit,
        next_page=found.next_page,
    )


@router.get("/v1/contexts/by-name/{name}", response_model=ContextAnswer)
def get_context_by_name(
    request: Request, tenant_id: Tenant, name: str, create: bool = False
) -> ContextAnswer:
    return _answer(request, service(request).get_by_name(tenant_id, name, create))


@router.get("/v1/contexts/{context_id}", response_model=ContextAnswer)
def get_context(request: Request, tenant_id: Tenant, context_id: str) -> ContextAnswer:
    return _answer(request, service(request).get(tenant_id, context_id))


@router.patch("/v1/contexts/{context_id}", response_model=ContextAnswer)
def rename_context(request: Request, tenant_id: Tenant, context_id: str, body: NameBody) -> ContextAnswer:
    return _answer(request, service(request).rename(tenant_id, context_id, body.name))


@router.delete("/v1/contexts/{context_id}", response_model=DoneAnswer)
def delete_context(request: Request, tenant_id: Tenant, context_id: str) -> DoneAnswer:
    service(request).delete(tenant_id, context_id)
    return DoneAnswer(request_id=request.state.request_id)


@router.post("/v1/contexts/{context_id}/clear", response_model=ContextAnswer)
def clear_context(request: Request, tenant_id: Tenant, context_id: str) -> ContextAnswer:
    return _answer(request, service(request).clear(tenant_id, context_id))


@router.get("/v1/contexts/{context_id}/files", response_model=FileListAnswer)
def list_files(
    request: Request, tenant_id: Tenant, context_id: str, path: str = "/", page: int = 1, limit: int = 50
) -> FileListAnswer:
    found = service(request).list_files(tenant_id, context_id, path, page, limit)
    return FileListAnswer(
        request_id=request.state.request_id,
        files=[file_out(stored) for stored in found.items],
        total_count=found.total_count,
        page=found.page,
        limit=found.limit,
        next_page=found.next_page,
    )


@router.delete("/v1/contexts/{context_id}/files", response_model=DoneAnswer)
def delete_file(request: Request, tenant_id: Tenant, context_id: str, path: ContextPath) -> DoneAnswer:
    service(request).delete_file(tenant_id, context_id, path)
    return DoneAnswer(request_id=request.state.request_id)


@router.post("/v1/contexts/{context_id}/upload_url", response_model=UrlAnswer)
def upload_url(request: Request, tenant_id: Tenant, context_id: str, path: ContextPath) -> UrlAnswer:
    found = service(request).upload_url(tenant_id, context_id, path)
    return UrlAnswer(request_id=request.state.request_id, url=found.url, expire_time=found.expire_time)


@router.post("/v1/contexts/{context_id}/download_url", response_model=UrlAnswer)
def download_url(request: Request, tenant_id: Tenant, context_id: str, path: ContextPath) -> UrlAnswer:
    found = service(request).download_url(tenant_id, context_id, path)
    return UrlAnswer(request_id=request.state.request_id, url=found.url, expire_time=found.expire_time)


class BindBody(BaseModel):
    context_syncs: list[Any] = Field(
        description="contexts to bind: [{context_id, path, policy?}], as `context_syncs` of a create"
    )


class BindingOut(BaseModel):
    context_id: str
    context_name: str
    path: str
    policy: dict[str, Any] = Field(description="the sync's whole SyncPolicy, in AgentBay's camelCase JSON")
    bound_at: str


class BindingsAnswer(BaseModel):
    request_id: str
    bindings: list[BindingOut]


def _bindings(request: Request, tenant_id: str, session_id: str) -> BindingsAnswer:
    found: list[Binding] = request.app.state.services.manager.context_bindings(tenant_id, session_id)
    return BindingsAnswer(
        request_id=request.state.request_id,
        bindings=[
            BindingOut(
                context_id=binding.sync.context_id,
                context_name=binding.context_name,
                path=binding.sync.path,
                policy=binding.sync.sync_policy(),
                bound_at=iso(binding.bound_at),
            )
            for binding in found
        ],
    )


@router.post("/v1/sessions/{session_id}/contexts", response_model=BindingsAnswer, tags=["sessions"])
async def bind_contexts(
    request: Request, tenant_id: Tenant, session_id: str, body: BindBody
) -> BindingsAnswer:
    """Sync more contexts into a running session: their files are there when it answers."""
    manager = request.app.state.services.manager
    await in_sandbox(manager.bind_contexts, tenant_id, session_id, body.context_syncs)
    return await run_in_threadpool(_bindings, request, tenant_id, session_id)


@router.get("/v1/sessions/{session_id}/contexts", response_model=BindingsAnswer, tags=["sessions"])
def list_bindings(request: Request, tenant_id: Tenant, session_id: str) -> BindingsAnswer:
    """The session's context syncs, made at create or bound later."""
    return _bindings(request, tenant_id, session_id)


class SyncBody(BaseModel):
    context_id: str = Field(default="", description="only the syncs of this context (default: all)")
    path: str = Field(default="", description="only the sync at this path of the session (default: all)")
    mode: str = Field(
        default="upload", description="upload (the session's folders into their contexts) or download"
    )


class TaskOut(BaseModel):
    context_id: str
    path: str
    task_type: str = Field(description="upload or download")
    status: str = Field(description="Pending, Running, Success or Failed")
    error_message: str
    start_time: int = Field(description="Unix seconds")
    finish_time: int = Field(description="Unix seconds; 0 while unfinished")


class TasksAnswer(BaseModel):
    request_id: str
    tasks: list[TaskOut]


def _tasks(request: Request, tasks: list[dict[str, Any]]) -> TasksAnswer:
    return TasksAnswer(
        request_id=request.state.request_id,
        tasks=[
            TaskOut(
                context_id=task["contextId"],
                path=task["path"],
                task_type=task["taskType"],
                status=task["status"],
                error_message=task["errorMessage"],
                start_time=task["startTime"],
                finish_time=task["finishTime"],
            )
            for task in tasks
        ],
    )


@router.post("/v1/sessions/{session_id}/contexts/sync", response_model=TasksAnswer, tags=["sessions"])
async def sync_contexts(
    request: Request, tenant_id: Tenant, session_id: str, body: SyncBody | None = None
) -> TasksAnswer:
    """Upload (or download) the session's synced folders now; answers their tasks once done."""
    body = body or SyncBody()
    tasks = await in_sandbox(
        request.app.state.services.manager.sync_contexts,
        tenant_id,
        session_id,
        body.context_id,
        body.path,
        body.mode,
    )
    return _tasks(request, tasks)


@router.get("/v1/sessions/{session_id}/contexts/tasks", response_model=TasksAnswer, tags=["sessions"])
def context_tasks(
    request: Request,
    tenant_id: Tenant,
    session_id: str,
    context_id: str = "",
    path: str = "",
    task_type: str = "",
) -> TasksAnswer:
    """The last download and upload task of each of the session's syncs (AgentBay's GetContextInfo)."""
    manager = request.app.state.services.manager
    return _tasks(request, manager.context_tasks(tenant_id, session_id, context_id, path, task_type))


@router.put("/v1/context-files/{token}", response_model=StoredAnswer)
async def put_context_file(request: Request, token: str) -> StoredAnswer:
    """Stream the body into the file the token names; it appears whole, once complete. No API key."""
    contexts = service(request)
    grant = await run_in_threadpool(contexts.open_grant, token, "PUT")
    pending = await run_in_threadpool(contexts.storage.open_upload, grant.context_id, grant.path)
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(pending.write, chunk)
    except BaseException:
        pending.abort()
        raise
    size = await run_in_threadpool(pending.commit)
    return StoredAnswer(request_id=request.state.request_id, path="/" + grant.path, size=size)


@router.get(
    "/v1/context-files/{token}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_context_file(request: Request, token: str) -> StreamingResponse:
    """Stream out the file the token names. No API key."""
    contexts = service(request)
    grant = await run_in_threadpool(contexts.open_grant, token, "GET")
    size, body = await run_in_threadpool(contexts.storage.open_download, grant.context_id, grant.path)
    return StreamingResponse(
        body, media_type="application/octet-stream", headers={"Content-Length": str(size)}
    )
