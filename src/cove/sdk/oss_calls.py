"""`session.oss`'s calls: AgentBay's OSS tools, which the server serves (docs/tools.md#object-storage).

The server moves the bytes between the session's files and the store or URL, so these are plain tool
calls; their answers become AgentBay's OSSClientResult, OSSUploadResult and OSSDownloadResult.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from cove.sdk.core import Call
from cove.sdk.models import OSSClientResult, OSSDownloadResult, OSSUploadResult
from cove.sdk.tool_calls import tool_call

TRANSFER_TIMEOUT_S = 3600.0
"""How long the client waits for an upload or download the server is doing."""
TransferT = TypeVar("TransferT", OSSUploadResult, OSSDownloadResult)


def _read_config(text: str, is_error: bool) -> OSSClientResult:
    if is_error:
        return OSSClientResult(success=False, error_message=text)
    try:
        config = json.loads(text)
    except ValueError:
        config = {"answer": text}
    return OSSClientResult(success=True, client_config=config if isinstance(config, dict) else {})


def _reader(result_type: type[TransferT]) -> Callable[[str, bool], TransferT]:
    """Reads an upload's or download's answer: what it did, or why it failed."""

    def read(text: str, is_error: bool) -> TransferT:
        if is_error:
            return result_type(success=False, error_message=text)
        return result_type(success=True, content=text)

    return read


def env_init(
    session_id: str,
    access_key_id: str,
    access_key_secret: str,
    security_token: str,
    endpoint: str | None,
    region: str | None,
) -> Call[OSSClientResult]:
    arguments: dict[str, Any] = {
        "access_key_id": access_key_id,
        "access_key_secret": access_key_secret,
        "security_token": security_token,
    }
    if endpoint:
        arguments["endpoint"] = endpoint
    if region:
        arguments["region"] = region
    return tool_call(session_id, "oss_env_init", arguments, OSSClientResult, _read_config)


def _transfer(
    session_id: str, tool: str, arguments: dict[str, str], result_type: type[TransferT]
) -> Call[TransferT]:
    return tool_call(session_id, tool, arguments, result_type, _reader(result_type), TRANSFER_TIMEOUT_S)


def upload(session_id: str, bucket: str, key: str, path: str) -> Call[OSSUploadResult]:
    arguments = {"bucket": bucket, "object": key, "path": path}
    return _transfer(session_id, "oss_upload", arguments, OSSUploadResult)


def download(session_id: str, bucket: str, key: str, path: str) -> Call[OSSDownloadResult]:
    arguments = {"bucket": bucket, "object": key, "path": path}
    return _transfer(session_id, "oss_download", arguments, OSSDownloadResult)


def upload_anonymous(session_id: str, url: str, path: str) -> Call[OSSUploadResult]:
    return _transfer(session_id, "oss_upload_annon", {"url": url, "path": path}, OSSUploadResult)


def download_anonymous(session_id: str, url: str, path: str) -> Call[OSSDownloadResult]:
    return _transfer(session_id, "oss_download_annon", {"url": url, "path": path}, OSSDownloadResult)
