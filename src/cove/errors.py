"""Errors every layer raises and every API surface translates: a stable code and an HTTP status."""

from __future__ import annotations


class CoveError(Exception):
    """Base of Cove's expected failures; `code` is stable, `message` says what to do."""

    code = "InternalError"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(CoveError):
    code = "InvalidArgument"
    http_status = 400


class Unauthorized(CoveError):
    code = "Unauthorized"
    http_status = 401


class SessionNotFound(CoveError):
    code = "SessionNotFound"
    http_status = 404

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} not found")
        self.session_id = session_id


class FileNotFound(CoveError):
    code = "FileNotFound"
    http_status = 404


class InvalidState(CoveError):
    code = "InvalidState"
    http_status = 409


class LengthRequired(CoveError):
    code = "LengthRequired"
    http_status = 411


class RequestTimeout(CoveError):
    """A request body arrived too slowly; the connection is closed with this answer."""

    code = "RequestTimeout"
    http_status = 408


class PayloadTooLarge(CoveError):
    code = "PayloadTooLarge"
    http_status = 413


class QuotaExceeded(CoveError):
    code = "QuotaExceeded"
    http_status = 429


class CapacityExceeded(CoveError):
    """The host has no room for another sandbox now (a server-wide limit, not the caller's quota)."""

    code = "CapacityExceeded"
    http_status = 503


class RuntimeUnavailable(CoveError):
    """The runtime a create asks for is not installed on this server (gVisor's runsc)."""

    code = "RuntimeUnavailable"
    http_status = 503


class SandboxError(CoveError):
    """The sandbox runtime failed; whatever it had started is already cleaned up."""

    code = "SandboxError"
    http_status = 500


class UpstreamError(CoveError):
    """A link's port inside the session could not be reached, or did not answer in HTTP."""

    code = "UpstreamError"
    http_status = 502


class ContextUploadFailed(CoveError):
    """A synced folder could not be packed from the session and written into its context."""

    code = "ContextUploadFailed"
    http_status = 502


class ContextNotFound(CoveError):
    """No context of the caller's by that id or name (another tenant's answers the same)."""

    code = "ContextNotFound"
    http_status = 404


class ContextExists(CoveError):
    """A context name is unique per API key."""

    code = "ContextExists"
    http_status = 409


class SnapshotNotFound(CoveError):
    """No snapshot of the caller's by that id (another tenant's answers the same)."""

    code = "SnapshotNotFound"
    http_status = 404
