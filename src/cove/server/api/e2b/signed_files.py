"""Signed `/files` URLs, the SDK's `download_url()` and `upload_url()`: usable with no headers.

The SDK signs a URL itself with the sandbox's envdAccessToken (which Cove derives from the
server's secret, sessions/links.py `sandbox_token`), so the server checks the signature by making
it again. A URL carries no sandbox id when the SDK reaches Cove through E2B_SANDBOX_URL, so the
sandbox is the running session whose token reproduces the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from cove.errors import CoveError
from cove.sessions import links
from cove.sessions.manager import SessionManager

OPERATIONS = {"GET": "read", "POST": "write"}


class BadSignature(CoveError):
    code = "InvalidSignature"
    http_status = 401

    def __init__(self, message: str = "the URL's signature is not valid for this file and sandbox") -> None:
        super().__init__(message)


def file_signature(path: str, operation: str, user: str, token: str, expiration: str | None) -> str:
    """E2B's v1 signature (the SDK's e2b/sandbox/signature.py)."""
    raw = f"{path}:{operation}:{user}:{token}" + (f":{expiration}" if expiration else "")
    digest = hashlib.sha256(raw.encode()).digest()
    return "v1_" + base64.b64encode(digest).rstrip(b"=").decode()


def signed_session(
    manager: SessionManager, method: str, query: Mapping[str, str], session_id: str | None
) -> tuple[str, str]:
    """The session a signed URL is for, and its access token; BadSignature if none signed it or it
    has expired. `session_id`: the one the request names, else every running session is tried."""
    expiration = query.get("signature_expiration")
    if expiration is not None:
        if not expiration.isdigit():
            raise BadSignature("signature_expiration must be a Unix time in seconds")
        if int(expiration) < time.time():
            raise BadSignature("the URL has expired; ask the SDK for a new one")
    operation = OPERATIONS.get(method)
    if operation is None:
        raise BadSignature(f"a signed URL is for GET or POST, not {method}")
    given = query.get("signature", "").encode(errors="surrogateescape")
    if session_id:
        candidates = [session_id]
    else:
        running, _ = manager.store.list_sessions(statuses=["RUNNING"])
        candidates = [record.session_id for record in running]
    path, user = query.get("path", ""), query.get("username", "")
    for candidate in candidates:
        token = links.sandbox_token(manager.settings.data_dir, candidate)
        if hmac.compare_digest(file_signature(path, operation, user, token, expiration).encode(), given):
            return candidate, token
    raise BadSignature()
