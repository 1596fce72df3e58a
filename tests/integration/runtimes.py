"""Tests on both runtimes: runc and gVisor's runsc (docs/runtimes.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

BOTH_RUNTIMES = pytest.mark.parametrize("session", ["runc", "gvisor"], indirect=True)
"""Runs a test that takes `session` once on a runc session and once on a gvisor one."""


def ensure_runsc() -> None:
    """runsc comes from the install script, as on a real host; a host where that fails fails here."""
    if shutil.which("runsc") is None:
        subprocess.run(
            ["bash", str(REPO / "scripts" / "install.sh"), "--runsc-only"], check=True, timeout=600
        )
    assert shutil.which("runsc") is not None, "scripts/install.sh --runsc-only did not install runsc"
