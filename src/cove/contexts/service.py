"""The context service: a tenant's named contexts, their files, and expiring URLs to move files.

A file URL is `{base_url}/v1/context-files/{token}`. The token carries what it allows (PUT to one
path, or GET of it), the context and the expiry, signed with HMAC-SHA256 under a key derived from
the server's secret in DATA_DIR (the one links use, sessions/links.py), so it needs no API key,
works with plain curl, and cannot be stretched to another path, context, method or time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from cove.config import Settings
from cove.contexts.storage import StorageBackend, StoredFile, clean_path
from cove.contexts.store import ContextRecord, ContextStore, NameTaken
from cove.errors import ContextExists, ContextNotFound, CoveError, InvalidArgument
from cove.paging import Page, check_page
from cove.server_secret import server_secret
from cove.sessions.store import utc_now

URL_LIFETIME_S = 3600
MAX_NAME_CHARS = 255
MAX_PAGE_SIZE = 1000
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class FileUrlNotValid(CoveError):
    """A context-file token that is forged, for another method, or expired."""

    code = "FileUrlNotValid"
    http_status = 403


def new_context_id() -> str:
    return "ctx-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def check_name(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidArgument("name is required: a context's name, such as 'my-project'")
    name = raw.strip()
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"name is longer than {MAX_NAME_CHARS} characters")
    if "/" in name or any(ord(character) < 32 or ord(character) == 127 for character in raw):
        raise InvalidArgument("name must not contain '/' or control characters")
    return name


@dataclass(frozen=True)
class FileUrl:
    url: str
    expire_time: int
    """Seconds since the epoch."""


@dataclass(frozen=True)
class FileGrant:
    """What a good token allows."""

    method: str
    context_id: str
    path: str


class ContextService:
    """Every operation on contexts; each checks that the context is the caller's."""

    def __init__(self, settings: Settings, store: ContextStore, storage: StorageBackend) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self._key = hmac.new(server_secret(settings.data_dir), b"cove context files", hashlib.sha256).digest()

    # Contexts

    def get(self, tenant_id: str, context_id: str) -> ContextRecord:
        record = self.store.get(tenant_id, context_id) if context_id else None
        if record is None:
            raise ContextNotFound(f"context {context_id!r} not found")
        return record

    def get_by_name(self, tenant_id: str, name: str, create: bool = False) -> ContextRecord:
        clean = check_name(name)
        record = self.store.get_by_name(tenant_id, clean)
        if record is not None:
            return record
        if not create:
            raise ContextNotFound(f"no context named {clean!r}; create it, or pass create=true")
        try:
            return self.create(tenant_id, clean)
        except ContextExists:  # made by a concurrent call meanwhile
            found = self.store.get_by_name(tenant_id, clean)
            if found is None:
                raise
            return found

    def create(self, tenant_id: str, name: str) -> ContextRecord:
        now = utc_now()
        record = ContextRecord(new_context_id(), tenant_id, check_name(name), "available", now, now)
        try:
            self.store.insert(record)
        except NameTaken:
            raise ContextExists(f"a context named {record.name!r} exists already; get it by name") from None
        return record

    def list(self, tenant_id: str, page: int = 1, limit: int = 10) -> Page[ContextRecord]:
        page, limit = check_page(page, limit, MAX_PAGE_SIZE)
        records, total = self.store.list(tenant_id, (page - 1) * limit, limit)
        return Page(records, total, page, limit)

    def rename(self, tenant_id: str, context_id: str, name: str) -> ContextRecord:
        record = self.get(tenant_id, context_id)
        clean = check_name(name)
        try:
            self.store.change(record.context_id, name=clean)
        except NameTaken:
            raise ContextExists(f"a context named {clean!r} exists already") from None
        return replace(record, name=clean)

    def delete(self, tenant_id: str, context_id: str) -> None:
        self._remove(self.get(tenant_id, context_id).context_id)

    def _remove(self, context_id: str) -> None:
        self.storage.delete_all(context_id)
        self.store.delete(context_id)

    def clear(self, tenant_id: str, context_id: str) -> ContextRecord:
        """Remove every file; the context is `clearing` meanwhile and `available` after."""
        record = self.get(tenant_id, context_id)
        self.store.change(record.context_id, state="clearing")
        try:
            self.storage.delete_all(record.context_id)
        finally:
            self.store.change(record.context_id, state="available")
        return replace(record, state="available")

    # Sessions' internal contexts (contexts/transfers.py)

    def session_context(self, tenant_id: str, session_id: str) -> ContextRecord:
        """The session's internal file-transfer context, made on first use; `list` does not show it.

        Its name holds a '/', which names given by clients may not, so it never takes a name of theirs.
        """
        record = self.store.get_for_session(session_id)
        if record is not None:
            return record
        now = utc_now()
        record = ContextRecord(
            new_context_id(), tenant_id, f"file_transfer/{session_id}", "available", now, now, session_id
        )
        try:
            self.store.insert(record)
        except NameTaken:  # made by a concurrent call meanwhile
            found = self.store.get_for_session(session_id)
            if found is None:
                raise
            return found
        return record

    def drop_session_context(self, session_id: str) -> None:
        """Delete the session's internal context (and its files): the session has ended."""
        found = self.store.get_for_session(session_id)
        if found is not None:
            self._remove(found.context_id)

    def sweep_session_contexts(self, live_statuses: Sequence[str]) -> None:
        """Delete internal contexts whose session ended otherwise (a sandbox that died, a crash)."""
        for context_id in self.store.ended_sessions_contexts(live_statuses):
            self._remove(context_id)

    # Files

    def list_files(
        self, tenant_id: str, context_id: str, parent_path: str = "/", page: int = 1, limit: int = 50
    ) -> Page[StoredFile]:
        record = self.get(tenant_id, context_id)
        page, limit = check_page(page, limit, MAX_PAGE_SIZE)
        found = self.storage.list(record.context_id, self.context_path(record.context_id, parent_path or "/"))
        return Page(found[(page - 1) * limit : page * limit], len(found), page, limit)

    def delete_file(self, tenant_id: str, context_id: str, path: str) -> None:
        record = self.get(tenant_id, context_id)
        self.storage.delete(record.context_id, self.context_path(record.context_id, path))
        self._used(record)

    def upload_url(self, tenant_id: str, context_id: str, path: str) -> FileUrl:
        return self._url(tenant_id, context_id, path, "PUT")

    def download_url(self, tenant_id: str, context_id: str, path: str) -> FileUrl:
        return self._url(tenant_id, context_id, path, "GET")

    def _url(self, tenant_id: str, context_id: str, path: str, method: str) -> FileUrl:
        record = self.get(tenant_id, context_id)
        clean = "/".join(clean_path(self.context_path(record.context_id, path)))
        expires = int(time.time()) + URL_LIFETIME_S
        payload = _b64(json.dumps([method, record.context_id, clean, expires]).encode())
        signature = _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
        self._used(record)
        return FileUrl(f"{self.settings.base_url}/v1/context-files/{payload}.{signature}", expires)

    def open_grant(self, token: str, method: str) -> FileGrant:
        """What a file URL's token allows, once its signature, method, expiry and context are checked."""
        payload, _, signature = token.partition(".")
        expected = _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
        refused = FileUrlNotValid(
            "this file URL is not valid (forged, expired, or for another method); ask for a new one"
        )
        if not hmac.compare_digest(expected.encode(), signature.encode(errors="surrogateescape")):
            raise refused
        try:
            granted_method, context_id, path, expires = json.loads(base64.urlsafe_b64decode(payload + "=="))
        except ValueError:
            raise refused from None
        if granted_method != method or not isinstance(expires, int) or expires < time.time():
            raise refused
        record = self.store.get_by_id(str(context_id))
        if record is None:
            raise ContextNotFound(f"context {context_id!r} no longer exists")
        self._used(record)
        return FileGrant(method, record.context_id, str(path))

    def context_path(self, context_id: str, path: str) -> str:
        """The context's own path for `path`. A context keeps a synced folder's files relative to the
        folder, while AgentBay's clients name them by their path in the session (DescribeContextFiles
        of "/tmp/data" after syncing /tmp/data), or by the path a sync's mappingPolicy gives for the
        folder on another system ("C:\\Users\\me\\data"): a path at or below one of these names the
        file below the context's top, unless the context has a folder of that name itself."""
        names = clean_path(path, "path", allow_top=True)
        if not names or any(entry.name == names[0] for entry in self.storage.list(context_id, "/")):
            return path
        full = _folder_key(path)
        for folder in map(_folder_key, self.store.sync_paths(context_id)):
            if full == folder or full.startswith(folder + "/"):
                return full[len(folder) :] or "/"
        return path

    def _used(self, record: ContextRecord) -> None:
        self.store.change(record.context_id, last_used_at=utc_now())


def _folder_key(path: str) -> str:
    """`path` as "/a/b", with Windows' separators read as "/", so that a mapped folder's path
    compares with the paths a client names under it."""
    return "/" + "/".join(name for name in path.replace("\\", "/").split("/") if name not in ("", "."))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
