"""API keys: each key is one tenant. Only a key's SHA-256 is ever stored."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cove.errors import Unauthorized
from cove.sessions.store import Store

KEY_PREFIX = "cove_"
DEFAULT_KEY_FILE = "api_key"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def tenant_of(api_key: str) -> str:
    """The tenant a key stands for: a hash, so the database never holds a usable key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


def create_api_key(store: Store, name: str = "") -> str:
    """Make a key, record its tenant, and return the key (shown once, never stored)."""
    key = new_api_key()
    store.add_api_key(tenant_of(key), name)
    return key


def ensure_default_key(data_dir: Path, store: Store) -> str:
    """With no key configured anywhere, make one and keep it in DATA_DIR/api_key (mode 0600)."""
    path = data_dir / DEFAULT_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    key = create_api_key(store, name="default")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


class KeyRing:
    """Answers which tenant a bearer key belongs to, or refuses it."""

    def __init__(self, store: Store, configured_keys: str) -> None:
        self.store = store
        self.configured = {tenant_of(k.strip()) for k in configured_keys.split(",") if k.strip()}
        self._known: set[str] = set()  # tenants already found in the store; keys are never revoked yet

    def is_empty(self) -> bool:
        return not self.configured and not self.store.list_api_keys()

    def authenticate(self, authorization: str | None) -> str:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("missing API key: send 'Authorization: Bearer KEY'")
        tenant = tenant_of(key.strip())
        if tenant in self.configured or tenant in self._known:
            return tenant
        if self.store.has_api_key(tenant):
            self._known.add(tenant)
            return tenant
        raise Unauthorized("unknown API key: create one with 'cove key create'")

    def is_key(self, authorization: bytes) -> bool:
        """Whether an Authorization value carries a key of any tenant (links never pass one on)."""
        try:
            self.authenticate(authorization.decode("latin-1"))
        except Unauthorized:
            return False
        return True
