"""Folders a context sync needs in a session, made from the host so that any absolute path works.

The session user may write only below its home and /tmp, but AgentBay's clients sync into folders
such as /home/wuying/... or /data/...: the host makes the missing folders of such a path in the
session's root filesystem, owned by the session user. The root filesystem is the session's (its
image may come from anyone), so no symlink in it is followed: each folder is opened relative to
its parent with O_NOFOLLOW, and a path through a symlink is refused.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from cove.errors import InvalidArgument

FOLDER_MODE = 0o755


def make_user_folder(rootfs: Path, path: str, owner: tuple[int, int]) -> None:
    """Make the absolute `path` (checked: no '..') below `rootfs`, each missing folder owned by `owner`."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    current = os.open(rootfs, flags)
    try:
        for name in (part for part in path.split("/") if part):
            try:
                os.mkdir(name, FOLDER_MODE, dir_fd=current)
                made = True
            except FileExistsError:
                made = False
            try:
                child = os.open(name, flags, dir_fd=current)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InvalidArgument(
                        f"{path} is not a folder in the session: {name} is a file or a symbolic link"
                    ) from None
                raise
            os.close(current)
            current = child
            if made:
                os.fchown(current, *owner)
                os.fchmod(current, FOLDER_MODE)  # not narrowed by the server's umask
    finally:
        os.close(current)
