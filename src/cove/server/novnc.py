"""noVNC, the desktop viewer's client in the browser: fetched from the npm registry at install time
(`python -m cove.server.novnc`, which scripts/install.sh runs), checked against a pinned SHA-256, and
served by the link listener under /viewer/novnc/. Nothing is fetched while the server runs.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "1.7.0"
SHA256 = "32689f18d6abe96bc6530828a6bd0b9ae33bda07c083a6575ed255b5a8f2e903"
MAX_BYTES = 4 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 60
KEPT = ("package/core/", "package/vendor/", "package/LICENSE.txt", "package/AUTHORS")
"""What the viewer imports (core/rfb.js and what it imports), and the licences."""


def client_dir() -> Path:
    """Where the client is installed: beside the Python environment Cove runs from."""
    return Path(sys.prefix) / "share" / "cove" / f"novnc-{VERSION}"


def installed() -> bool:
    return (client_dir() / "core" / "rfb.js").is_file()


def tarball_url() -> str:
    """The package's tarball on the npm registry (NPM_CONFIG_REGISTRY names a mirror, as for npm)."""
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    return f"{registry}/@novnc/novnc/-/novnc-{VERSION}.tgz"


def install() -> Path:
    """Fetch, check and unpack the client, unless it is there already."""
    target = client_dir()
    if installed():
        return target
    with urllib.request.urlopen(tarball_url(), timeout=DOWNLOAD_TIMEOUT_S) as answer:
        tarball = answer.read(MAX_BYTES + 1)
    if len(tarball) > MAX_BYTES:
        raise SystemExit(f"novnc: the tarball is larger than {MAX_BYTES} bytes")
    digest = hashlib.sha256(tarball).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"novnc: the tarball's SHA-256 is {digest}, not {SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    unpacked = Path(tempfile.mkdtemp(dir=target.parent))
    try:
        _unpack(tarball, unpacked)
        (unpacked / "package").rename(target)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    return target


def _unpack(tarball: bytes, folder: Path) -> None:
    """The KEPT regular files only, each written anew (no link, no path outside `folder`)."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.isfile() or not member.name.startswith(KEPT) or ".." in member.name.split("/"):
                continue
            source = archive.extractfile(member)
            assert source is not None  # a regular file always has contents
            path = folder / member.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(source.read())


if __name__ == "__main__":
    print(f"novnc: {install()}")
