"""Contexts in Cove's REST API under /v1/contexts, and the key-less file URLs under /v1/context-files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cove.contexts.service import ContextService, iso
from cove.contexts.storage import StoredFile
from cove.contexts.store import ContextRecord
from cove.server.api.native import Tenant

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
