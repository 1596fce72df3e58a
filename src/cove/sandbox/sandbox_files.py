"""The folders and /etc files every image needs to run Cove's sandboxes, whatever built the image.

Imported images are untrusted: a symlink in one (`/etc/hosts -> /etc/hosts`) must not make us
write on the host. So nothing here follows a symlink: a link where a file or folder goes is
replaced, and a linked parent folder is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from cove.errors import InvalidArgument

FOLDERS = (
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("tmp", 0o1777),
    ("var/tmp", 0o1777),
    ("run", 0o755),
    ("root", 0o700),
    ("home", 0o755),
)
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _inside(rootfs: Path, relative: str) -> Path:
    """`rootfs/relative`, refusing symlinked parents and removing a symlink at the path itself."""
    path = rootfs
    for part in Path(relative).parent.parts:
        path = path / part
        if path.is_symlink():
            raise InvalidArgument(
                f"the image's /{path.relative_to(rootfs)} is a symlink; Cove needs a folder"
            )
    path = rootfs / relative
    if path.is_symlink():
        path.unlink()
    return path


def write_sandbox_files(rootfs: Path, user: str, uid: int) -> None:
    """Mount points, the user's home, and hosts, hostname and an empty resolv.conf (nothing of the host's)."""
    for relative, mode in (*FOLDERS, (f"home/{user}", 0o750), (".cove", 0o755)):
        path = _inside(rootfs, relative)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    for relative, text in (("etc/hosts", HOSTS), ("etc/resolv.conf", ""), ("etc/hostname", "sandbox\n")):
        path = _inside(rootfs, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.write_text(text)
    os.chown(rootfs / "home" / user, uid, uid, follow_symlinks=False)
