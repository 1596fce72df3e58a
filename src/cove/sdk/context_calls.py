"""Calls of `agent_bay.context` (contexts: named persistent storage), for the sync and async clients.

Named and shaped as AgentBay's `ContextService`; the REST API they call is under /v1/contexts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from cove.sdk.core import Call
from cove.sdk.models import (
    ClearContextResult,
    Context,
    ContextFileEntry,
    ContextFileListResult,
    ContextListParams,
    ContextListResult,
    ContextResult,
    FileUrlResult,
    OperationResult,
)


def context_path(context_id: str) -> str:
    return f"/v1/contexts/{quote(context_id, safe='')}"


def _required(value: Any, name: str) -> str:
    return "" if isinstance(value, str) and value.strip() else f"{name} is required"


def _context(raw: dict[str, Any]) -> Context:
    return Context(
        id=raw["id"],
        name=raw["name"],
        created_at=raw.get("created_at"),
        last_used_at=raw.get("last_used_at"),
        state=raw.get("state", "available"),
    )


def _context_result(answer: dict[str, Any], request_id: str) -> ContextResult:
    context = _context(answer["context"])
    return ContextResult(request_id=request_id, success=True, context_id=context.id, context=context)


def _done(answer: dict[str, Any], request_id: str) -> OperationResult:
    return OperationResult(request_id=request_id, success=True)


def get_context(name: str | None, create: bool, context_id: str | None) -> Call[ContextResult]:
    if context_id:
        return Call(
            method="GET", path=context_path(context_id), result_type=ContextResult, parse=_context_result
        )
    return Call(
        method="GET",
        path=f"/v1/contexts/by-name/{quote(name or '', safe='')}",
        params={"create": "true"} if create else None,
        refusal=_required(name, "name or context_id"),
        result_type=ContextResult,
        parse=_context_result,
    )


def create_context(name: str) -> Call[ContextResult]:
    return Call(
        method="POST",
        path="/v1/contexts",
        body={"name": name},
        refusal=_required(name, "name"),
        result_type=ContextResult,
        parse=_context_result,
    )


def list_contexts(params: ContextListParams | None) -> Call[ContextListResult]:
    params = params or ContextListParams()
    token = params.next_token or ""
    query: dict[str, str | int] = {"limit": params.max_results or 10}
    if token:
        query["page"] = token

    def parse(answer: dict[str, Any], request_id: str) -> ContextListResult:
        next_page = answer.get("next_page")
        return ContextListResult(
            request_id=request_id,
            success=True,
            contexts=[_context(raw) for raw in answer["contexts"]],
            next_token=str(next_page) if next_page else None,
            max_results=int(answer["limit"]),
            total_count=int(answer["total_count"]),
        )

    return Call(
        method="GET",
        path="/v1/contexts",
        params=query,
        refusal="" if not token or token.isdigit() else f"next_token {token!r} is not one the server gave",
        result_type=ContextListResult,
        parse=parse,
    )


def update_context(context: Context) -> Call[OperationResult]:
    return Call(
        method="PATCH",
        path=context_path(context.id),
        body={"name": context.name},
        refusal=_required(context.id, "context.id") or _required(context.name, "context.name"),
        result_type=OperationResult,
        parse=_done,
    )


def delete_context(context_id: str) -> Call[OperationResult]:
    return Call(
        method="DELETE",
        path=context_path(context_id),
        refusal=_required(context_id, "context.id"),
        result_type=OperationResult,
        parse=_done,
    )


def clear_context(context_id: str) -> Call[ClearContextResult]:
    """Done when it answers: the server removes the files before it does."""

    def parse(answer: dict[str, Any], request_id: str) -> ClearContextResult:
        return ClearContextResult(
            request_id=request_id,
            success=True,
            status=answer["context"]["state"],
            context_id=answer["context"]["id"],
        )

    return Call(
        method="POST",
        path=f"{context_path(context_id)}/clear",
        refusal=_required(context_id, "context_id"),
        result_type=ClearContextResult,
        parse=parse,
    )


def list_files(
    context_id: str, parent_folder_path: str, page_number: int, page_size: int
) -> Call[ContextFileListResult]:
    def parse(answer: dict[str, Any], request_id: str) -> ContextFileListResult:
        next_page = answer.get("next_page")
        return ContextFileListResult(
            request_id=request_id,
            success=True,
            entries=[
                ContextFileEntry(
                    file_id=raw["path"],
                    file_name=raw["name"],
                    file_path=raw["path"],
                    file_type=raw["type"],
                    gmt_create=raw["created_at"],
                    gmt_modified=raw["modified_at"],
                    size=raw["size"],
                    status="available",
                )
                for raw in answer["files"]
            ],
            count=int(answer["total_count"]),
            next_token=str(next_page) if next_page else None,
        )

    return Call(
        method="GET",
        path=f"{context_path(context_id)}/files",
        params={"path": parent_folder_path or "/", "page": page_number, "limit": page_size},
        refusal=_required(context_id, "context_id"),
        result_type=ContextFileListResult,
        parse=parse,
    )


def delete_file(context_id: str, file_path: str) -> Call[OperationResult]:
    return Call(
        method="DELETE",
        path=f"{context_path(context_id)}/files",
        params={"path": file_path},
        refusal=_required(context_id, "context_id") or _required(file_path, "file_path"),
        result_type=OperationResult,
        parse=_done,
    )


def file_url(context_id: str, file_path: str, kind: str) -> Call[FileUrlResult]:
    """`kind` is "upload_url" or "download_url"."""
    return Call(
        method="POST",
        path=f"{context_path(context_id)}/{kind}",
        params={"path": file_path},
        refusal=_required(context_id, "context_id") or _required(file_path, "file_path"),
        result_type=FileUrlResult,
        parse=lambda answer, rid: FileUrlResult(
            request_id=rid, success=True, url=answer["url"], expire_time=int(answer["expire_time"])
        ),
    )
