"""The secret a server signs with (links to sessions, URLs of context files), kept in its data
directory; below both the sessions and the contexts, which each sign with it."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

from cove.errors import CoveError

SECRET_FILE = "link_secret"
"""Its name from when links alone used it: kept, so that existing links and URLs stay valid."""
_secrets: dict[Path, bytes] = {}
_secrets_lock = threading.Lock()


def server_secret(data_dir: Path) -> bytes:
    """The server's secret: made (mode 0600) on first use and kept, so what it signed (links,
    context file URLs) outlives restarts."""
    with _secrets_lock:
        if data_dir not in _secrets:
            _secrets[data_dir] = _read_or_make_secret(data_dir / SECRET_FILE)
        return _secrets[data_dir]


def _read_or_make_secret(path: Path) -> bytes:
    if not path.exists():
        # Written whole under another name, then linked into place: no reader ever sees half of it,
        # and of two servers starting at once the first one's secret wins.
        temporary = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink()
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise CoveError(f"{path} holds no usable secret; remove it and a new one is made")
    return secret.encode()
