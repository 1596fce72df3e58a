"""noVNC, the desktop viewer's client in the browser: fetched from the npm registry at install time
and checked against a pinned SHA-256 (server/npm_packages.py), served by the link listener under
/viewer/novnc/. Nothing is fetched while the server runs.
"""

from __future__ import annotations

from pathlib import Path

from cove.server.npm_packages import NpmPackage, unpack

VERSION = "1.7.0"
PACKAGE = NpmPackage(
    name="@novnc/novnc",
    version=VERSION,
    sha256="32689f18d6abe96bc6530828a6bd0b9ae33bda07c083a6575ed255b5a8f2e903",
    kept=("package/core/", "package/vendor/", "package/LICENSE.txt", "package/AUTHORS"),
    marker="core/rfb.js",
)
"""What the viewer imports (core/rfb.js and what it imports), and the licences."""


def client_dir() -> Path:
    """Where the client is installed: beside the Python environment Cove runs from."""
    return PACKAGE.folder()


def installed() -> bool:
    return PACKAGE.installed()


def install() -> Path:
    return PACKAGE.install()


def _unpack(tarball: bytes, folder: Path) -> None:
    unpack(tarball, folder, PACKAGE.kept)


if __name__ == "__main__":
    print(f"novnc: {install()}")
