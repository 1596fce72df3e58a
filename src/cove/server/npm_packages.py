"""Browser code from the npm registry, fetched at install time (`python -m cove.server.npm_packages`,
which scripts/install.sh runs), each tarball checked against a pinned SHA-256 and unpacked beside the
Python environment. Nothing is fetched while the server runs: pages serve these files from disk.

The packages: noVNC for the desktop viewer (server/novnc.py), xterm.js and its fit addon for the
web console (console/assets.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cove.install_paths import SHARE_DIR

DOWNLOAD_TIMEOUT_S = 60
ASSETS_DIR_VARIABLE = "COVE_WEB_ASSETS_DIR"
"""Where the packages are unpacked, if not beside the Python environment (share/cove)."""


def assets_root() -> Path:
    """The folder every package is unpacked under, one folder each."""
    given = os.environ.get(ASSETS_DIR_VARIABLE)
    return Path(given) if given else SHARE_DIR


@dataclass(frozen=True)
class NpmPackage:
    """One pinned version of an npm package, and which of its files are kept."""

    name: str
    """The registry's name, scope included: "@xterm/xterm"."""
    version: str
    sha256: str
    """Of the registry's tarball."""
    kept: tuple[str, ...]
    """Prefixes of the tarball's member names kept ("package/lib/"); nothing else is written."""
    marker: str
    """A file, relative to the unpacked folder, whose presence means the package is installed."""
    max_bytes: int = 4 * 1024 * 1024

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def folder(self) -> Path:
        return assets_root() / f"{self.short_name}-{self.version}"

    def installed(self) -> bool:
        return (self.folder() / self.marker).is_file()

    def tarball_url(self) -> str:
        """The tarball on the npm registry (NPM_CONFIG_REGISTRY names a mirror, as for npm)."""
        registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
        return f"{registry}/{self.name}/-/{self.short_name}-{self.version}.tgz"

    def install(self) -> Path:
        """Fetch, check and unpack the package, unless it is there already."""
        target = self.folder()
        if self.installed():
            return target
        with urllib.request.urlopen(self.tarball_url(), timeout=DOWNLOAD_TIMEOUT_S) as answer:
            tarball = answer.read(self.max_bytes + 1)
        if len(tarball) > self.max_bytes:
            raise SystemExit(f"{self.name}: the tarball is larger than {self.max_bytes} bytes")
        digest = hashlib.sha256(tarball).hexdigest()
        if digest != self.sha256:
            raise SystemExit(f"{self.name}: the tarball's SHA-256 is {digest}, not {self.sha256}")
        target.parent.mkdir(parents=True, exist_ok=True)
        unpacked = Path(tempfile.mkdtemp(dir=target.parent))
        try:
            unpack(tarball, unpacked, self.kept)
            shutil.rmtree(target, ignore_errors=True)  # a part left by an older, interrupted install
            (unpacked / "package").rename(target)
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
        return target


def unpack(tarball: bytes, folder: Path, kept: tuple[str, ...]) -> None:
    """The `kept` regular files only, each written anew (no link, no path outside `folder`)."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.isfile() or not member.name.startswith(kept) or ".." in member.name.split("/"):
                continue
            source = archive.extractfile(member)
            assert source is not None  # a regular file always has contents
            path = folder / member.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(source.read())


def all_packages() -> list[NpmPackage]:
    from cove.console.assets import PACKAGES
    from cove.server.novnc import PACKAGE

    return [PACKAGE, *PACKAGES]


if __name__ == "__main__":
    for package in all_packages():
        print(f"{package.name}: {package.install()}")
