"""Changes under a watched directory, as inotify reports them: each change once, in order.

A poll that compares two listings misses what happens between polls (a file made and removed, a
file made then changed), so each watched directory keeps an inotify descriptor, and the kernel
queues its events until the next poll reads them. Inotify reports a change as several events (a
new file: create, modify, close; one write: modify per block), so they are folded by path and kind:
a file's modifications count as one change from its first modification (or its creation) until it
is closed, and a file renamed over one that was there is modified, not created (write_file and
uploads replace files so, through a temporary file whose own events are left out). A directory
made under the watch is watched too, and what it already holds is reported as created.
"""

import ctypes
import errno
import os
import re
import struct
from typing import Any

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCHED = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
HEADER = struct.Struct("iIII")
READ_BYTES = 64 * 1024

TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.tmp|\.cove-upload-\w+")
"""The names of write_file's temporary file (files.py) and an upload's (transfers.py
UPLOAD_PREFIX), each renamed over the file it writes."""

_libc = ctypes.CDLL(None, use_errno=True)


class WatchError(Exception):
    """The directory cannot be watched (too many folders, or the kernel's watch limit)."""


class DirectoryWatch:
    """The inotify watches of one directory tree and the changes read from them since the last poll."""

    def __init__(self, root: str, max_folders: int) -> None:
        self.max_folders = max_folders
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise WatchError(f"cannot watch {root}: {os.strerror(ctypes.get_errno())}")
        self.folders: dict[int, str] = {}
        self.known: set[str] = set()
        """The files and folders under the watch, to tell a file replaced from a file made."""
        self.writing: set[str] = set()
        """Files written since they were created or first modified, and not closed yet."""
        try:
            self._watch_tree(root, None)
        except BaseException:
            os.close(self.fd)
            raise

    def changes(self) -> list[dict[str, Any]]:
        """The changes since the previous call, oldest first (AgentBay's get_file_change entries)."""
        found: list[dict[str, Any]] = []
        while True:
            try:
                data = os.read(self.fd, READ_BYTES)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                descriptor, mask, _, size = HEADER.unpack_from(data, offset)
                name = data[offset + HEADER.size : offset + HEADER.size + size].split(b"\0", 1)[0]
                offset += HEADER.size + size
                self._fold(descriptor, mask, os.fsdecode(name), found)

    def close(self) -> None:
        os.close(self.fd)

    def _fold(self, descriptor: int, mask: int, name: str, found: list[dict[str, Any]]) -> None:
        if mask & IN_IGNORED:
            self.folders.pop(descriptor, None)
            return
        folder = self.folders.get(descriptor)
        if folder is None or not name or TEMPORARY.fullmatch(name):
            return  # the watch's own folder changed (its parent's watch reports that), or a temporary
        path = os.path.join(folder, name)
        kind = "directory" if mask & IN_ISDIR else "file"
        if mask & IN_MOVED_TO and kind == "file" and path in self.known:
            found.append(_event("modify", path, kind))
        elif mask & (IN_CREATE | IN_MOVED_TO):
            self.known.add(path)
            found.append(_event("create", path, kind))
            if kind == "directory":
                self._watch_tree(path, found)
            elif mask & IN_CREATE:
                self.writing.add(path)
        elif mask & (IN_DELETE | IN_MOVED_FROM):
            self.writing.discard(path)
            self.known.discard(path)
            found.append(_event("delete", path, kind))
            if mask & IN_MOVED_FROM and kind == "directory":
                self._forget_tree(path)
        elif mask & IN_CLOSE_WRITE:
            self.writing.discard(path)
        elif mask & (IN_MODIFY | IN_ATTRIB) and path not in self.writing:
            found.append(_event("modify", path, kind))
            if mask & IN_MODIFY:
                self.writing.add(path)

    def _watch_tree(self, root: str, found: list[dict[str, Any]] | None) -> None:
        """Watch `root` and the folders below it; what they hold goes into `found` as created
        (None: the baseline, nothing reported)."""
        pending = [root]
        while pending:
            folder = pending.pop()
            if len(self.folders) >= self.max_folders:
                raise WatchError(f"more than {self.max_folders} folders under it, too many to watch")
            descriptor = _libc.inotify_add_watch(
                self.fd, os.fsencode(folder), WATCHED | IN_ONLYDIR | IN_DONT_FOLLOW
            )
            if descriptor < 0:
                code = ctypes.get_errno()
                if code == errno.ENOSPC:
                    raise WatchError("the kernel's limit of watches is reached; watch a smaller directory")
                if found is None and folder == root:
                    raise OSError(code, os.strerror(code), folder)
                continue  # gone, or unreadable, since it was listed
            self.folders[descriptor] = folder
            try:
                with os.scandir(folder) as entries:
                    listed = list(entries)
            except OSError:
                continue
            for entry in listed:
                is_folder = entry.is_dir(follow_symlinks=False)
                self.known.add(entry.path)
                if found is not None:
                    found.append(_event("create", entry.path, "directory" if is_folder else "file"))
                if is_folder:
                    pending.append(entry.path)

    def _forget_tree(self, root: str) -> None:
        """Stop watching a folder moved away, and those below it."""
        for descriptor, folder in list(self.folders.items()):
            if folder == root or folder.startswith(root + "/"):
                _libc.inotify_rm_watch(self.fd, descriptor)
                del self.folders[descriptor]
        self.known = {path for path in self.known if not path.startswith(root + "/")}


def _event(kind: str, path: str, path_type: str) -> dict[str, Any]:
    return {"eventType": kind, "path": path, "pathType": path_type}
