"""Packing a dead sandbox's folder on the host: never through a link, never more than its user could read."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from cove.contexts.transfer_limits import TransferLimits
from cove.errors import FileNotFound
from cove.sandbox.layer_pack import pack_from_host

LIMITS = TransferLimits(1 << 30, 1 << 32, 60.0, Path("/nonexistent"))
SESSION_USER = (99999, 99999)
"""Neither the owner nor the group of the test's files: the "other" mode bits decide, as for a stranger."""


def packed(root: Path, path: str) -> dict[str, bytes]:
    buffer = io.BytesIO()
    pack_from_host(root, path, SESSION_USER, buffer, LIMITS)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}  # type: ignore[union-attr]


@pytest.fixture
def host(tmp_path: Path) -> tuple[Path, Path]:
    """A sandbox root view and, beside it, a host folder with a secret the sandbox must not reach."""
    root = tmp_path / "rootfs"
    (root / "home/user/work").mkdir(parents=True)
    (root / "home/user/work/notes.txt").write_text("mine")
    secret = tmp_path / "host-etc"
    secret.mkdir()
    (secret / "shadow").write_text("root:hash")
    return root, secret


def test_a_folder_of_the_session_is_packed(host: tuple[Path, Path]) -> None:
    root, _ = host
    assert packed(root, "/home/user/work") == {"notes.txt": b"mine"}


@pytest.mark.parametrize("linked", ["home/user/work", "home/user", "home"])
def test_a_synced_folder_or_a_folder_above_it_made_a_symlink_is_not_followed(
    host: tuple[Path, Path], linked: str
) -> None:
    """The session replaced /home/user/work (or /home/user, or /home) by a link to a host folder."""
    root, secret = host
    victim = root / linked
    os.rename(victim, root.parent / "moved")
    depth = linked.count("/") + 1
    victim.symlink_to(secret if linked == "home/user/work" else "../" * depth + "host-etc")
    with pytest.raises(FileNotFound):
        packed(root, "/home/user/work")


def test_links_inside_the_folder_are_left_out(host: tuple[Path, Path]) -> None:
    root, secret = host
    work = root / "home/user/work"
    (work / "shadow").symlink_to(secret / "shadow")
    (work / "etc").symlink_to(secret)
    os.link(work / "notes.txt", work / "hard")  # a hard link can only be to the sandbox's own files
    assert packed(root, "/home/user/work") == {"notes.txt": b"mine", "hard": b"mine"}


@pytest.mark.parametrize("path", ["/home/user/work/../../../..", "/home/../../host-etc", "/./.."])
def test_dot_dot_never_climbs_out_of_the_root(host: tuple[Path, Path], path: str) -> None:
    root, _ = host
    with pytest.raises(FileNotFound):
        packed(root, path)


def test_only_what_the_session_user_could_reach_and_read_is_packed(host: tuple[Path, Path]) -> None:
    root, _ = host
    private = root / "root/private"
    private.mkdir(parents=True)
    (private / "key.pem").write_text("secret")
    (private / "key.pem").chmod(0o644)
    (root / "root").chmod(0o700)  # the image's /root: its user cannot pass through it
    with pytest.raises(FileNotFound, match="reach"):
        packed(root, "/root/private")
    (root / "home/user/work").chmod(0o711)
    with pytest.raises(FileNotFound, match="list"):
        packed(root, "/home/user/work")
    (root / "home/user/work").chmod(0o755)
    (root / "home/user/work/unreadable").write_text("no")
    (root / "home/user/work/unreadable").chmod(0o600)
    assert packed(root, "/home/user/work") == {"notes.txt": b"mine"}
