"""Building linux_latest from this host's packages (real dpkg, a real folder)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cove.sandbox.host_image import (
    HostImageError,
    _dependency_names,
    build_host_rootfs,
    resolve_packages,
)


def test_dependency_field_parsing() -> None:
    field = "libc6 (>= 2.34), awk | mawk:any, python3.11 (>= 3.11.2-1~)"
    assert _dependency_names(field) == [["libc6"], ["awk", "mawk"], ["python3.11"]]
    assert _dependency_names("") == []


def test_closure_includes_dependencies() -> None:
    packages = resolve_packages(["python3"])
    assert {"python3", "libc6"} <= set(packages)


def test_missing_package_says_how_to_install_it() -> None:
    with pytest.raises(HostImageError, match="apt-get install no-such-package-cove"):
        resolve_packages(["no-such-package-cove"])


def test_rootfs_runs_python_in_a_chroot(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    build_host_rootfs(rootfs, ["bash", "python3"], "user", 1000)
    assert os.readlink(rootfs / "bin") == "usr/bin"
    assert "user:x:1000:1000" in (rootfs / "etc/passwd").read_text()
    result = subprocess.run(
        ["chroot", str(rootfs), "/bin/bash", "-c", "python3 -c 'print(6 * 7)'"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "42", result.stderr
