"""The console's browser code from npm: xterm.js and its fit addon, pinned by version and SHA-256,
fetched at install time by server/npm_packages.py and served under /console/vendor/."""

from __future__ import annotations

from cove.server.npm_packages import NpmPackage

XTERM = NpmPackage(
    name="@xterm/xterm",
    version="6.0.0",
    sha256="908e66e04af6c8dc6b00dd3b54de088e2e81e5ed866284fd6c2fb3c2d1c7a3f6",
    kept=("package/lib/xterm.mjs", "package/css/xterm.css", "package/LICENSE"),
    marker="lib/xterm.mjs",
)
XTERM_FIT = NpmPackage(
    name="@xterm/addon-fit",
    version="0.11.0",
    sha256="26003b4517a132b64e4ff228fd88a5fda3fff5e606c76093f6dcff772e9ecec0",
    kept=("package/lib/addon-fit.mjs", "package/LICENSE"),
    marker="lib/addon-fit.mjs",
)
PACKAGES = [XTERM, XTERM_FIT]


def installed() -> bool:
    return all(package.installed() for package in PACKAGES)
