"""Session folders as btrfs subvolumes, each with a byte limit the kernel enforces (a qgroup).

A session's writable layer, the overlay's work folder, its /.cove/run and its init.log all live in
its folder, so one limit bounds everything a sandbox can write: past it, writes in the sandbox fail
with EDQUOT ("Disk quota exceeded"). btrfs counts metadata against the limit too, and so bounds the
number of files as well (it has no inode quota): an empty file costs about 360 bytes, so a limit of
N MiB admits at most about 2,900 * N files.

Why btrfs: ext4 and xfs project quotas need kernel options many hosts lack, while btrfs is in nearly
every kernel. When DATA_DIR/sessions is not on btrfs already, it is the mount point of a sparse image
file, DATA_DIR/sessions.btrfs, made on the first start and loop-mounted on every start (with
discard, so that space a session frees goes back to the host). There the kernel's simple quotas
count use (no back-reference walks, and the qgroup of a deleted subvolume goes with it); elsewhere,
and on kernels before 6.7, full quotas do, and this class removes the qgroups of deleted subvolumes
once the kernel has freed their space.

Everything is done by ioctl on file descriptors opened without following symlinks: creating a
session's folder and setting its limit cost well under a millisecond, deleting it a few tens of
microseconds (the kernel frees the space in the background).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from cove.errors import SandboxError


def _ioctl_number(direction: int, number: int, size: int) -> int:
    """Linux's _IOC(direction, BTRFS_IOCTL_MAGIC, number, size)."""
    return direction << 30 | size << 16 | 0x94 << 8 | number


_WRITE, _READ = 1, 2
VOLUME_ARGS_SIZE = 4096
"""struct btrfs_ioctl_vol_args (and its _v2): an fd and a name, 4096 bytes in all."""
SUBVOL_CREATE = _ioctl_number(_WRITE, 14, VOLUME_ARGS_SIZE)
SNAP_DESTROY = _ioctl_number(_WRITE, 15, VOLUME_ARGS_SIZE)
INO_LOOKUP = _ioctl_number(_WRITE | _READ, 18, 4096)
FS_INFO = _ioctl_number(_READ, 31, 1024)
QUOTA_CTL = _ioctl_number(_WRITE | _READ, 40, 16)
QGROUP_CREATE = _ioctl_number(_WRITE, 42, 16)
QGROUP_LIMIT = _ioctl_number(_READ, 43, 48)
VOLUME_IOCTLS = _ioctl_number(_WRITE, 0, VOLUME_ARGS_SIZE)
VOLUME_IOCTLS_MASK = 0xFFFFFFE0
"""_IOW(0x94, 0..31, struct btrfs_ioctl_vol_args(_v2)): making subvolumes and snapshots, device and
balance commands. Any user may make a subvolume in a folder it can write, such as /.cove/run, and a
new subvolume has a qgroup of its own, without limit: sandboxes must not use these (seccomp.py)."""

QUOTA_ENABLE, QUOTA_ENABLE_SIMPLE = 1, 4
LIMIT_REFERENCED = 1
"""BTRFS_QGROUP_LIMIT_MAX_RFER: a limit on every byte the subvolume refers to."""
FIRST_INODE = 256
"""The inode number of every subvolume's root folder (BTRFS_FIRST_FREE_OBJECTID)."""
MOUNT_OPTIONS = "loop,discard=async,noatime"
IMAGE_SHARE_OF_FREE_SPACE = 0.9
COMMAND_TIMEOUT_S = 120


def _volume_args(name: str) -> bytearray:
    encoded = name.encode()
    if "/" in name or len(encoded) >= VOLUME_ARGS_SIZE - 8:
        raise ValueError(f"not a session folder name: {name!r}")
    args = bytearray(VOLUME_ARGS_SIZE)
    args[8 : 8 + len(encoded)] = encoded
    return args


@contextlib.contextmanager
def _opened(path: Path, dir_fd: int | None = None) -> Iterator[int]:
    """A folder opened for ioctls; a symlink in its last component is refused, not followed."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _subvolume_id(fd: int) -> int:
    """The id of the subvolume that holds the open folder `fd` (its qgroup is 0/id)."""
    args = bytearray(4096)
    struct.pack_into("=QQ", args, 0, 0, FIRST_INODE)
    fcntl.ioctl(fd, INO_LOOKUP, args)
    subvolume: int = struct.unpack_from("=Q", args)[0]
    return subvolume


def _simple_quotas(fd: int) -> bool:
    """Whether the filesystem of `fd` counts with simple quotas (sysfs has no mode before 6.7)."""
    args = bytearray(1024)
    fcntl.ioctl(fd, FS_INFO, args)
    mode = Path(f"/sys/fs/btrfs/{uuid.UUID(bytes=bytes(args[16:32]))}/qgroups/mode")
    return mode.exists() and mode.read_text().strip() == "squota"


def filesystem_type(path: Path) -> str:
    """The type of the filesystem `path` is on, from the deepest mount that holds it."""
    target = os.path.realpath(path)
    best, kind = "", ""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields, _, filesystem = line.partition(" - ")
            point = fields.split()[4].encode().decode("unicode_escape")
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, filesystem.split()[0]
    return kind


def _run(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except FileNotFoundError as exc:
        raise SandboxError(f"{argv[0]} not found; install btrfs-progs (scripts/install.sh does)") from exc
    if result.returncode != 0:
        raise SandboxError(f"could not {what}: {(result.stderr or result.stdout).strip()}")


class SessionVolumes:
    """The btrfs filesystem at DATA_DIR/sessions, and one subvolume with a byte limit per session."""

    def __init__(self, sessions_dir: Path, image: Path, image_mb: int = 0) -> None:
        """Mount the sessions' filesystem if it is not (first start, or after a reboot).

        `image` is the sparse file made when `sessions_dir` is not on btrfs, of `image_mb` MiB
        (0: 90% of the free space where it lies).
        """
        self.sessions_dir = sessions_dir
        self._dropped: set[int] = set()
        """Qgroups of deleted subvolumes, which full quotas keep until the kernel has freed the space."""
        sessions_dir.mkdir(parents=True, exist_ok=True)
        if filesystem_type(sessions_dir) == "btrfs":
            # Full quotas: simple ones would make someone else's filesystem unmountable by older kernels.
            self._enable_quotas(QUOTA_ENABLE)
        else:
            self._mount_image(image, image_mb)
            self._enable_quotas(QUOTA_ENABLE_SIMPLE)
        with _opened(sessions_dir) as fd:
            self._full_quotas = not _simple_quotas(fd)

    def _mount_image(self, image: Path, image_mb: int) -> None:
        """Mount the image at the sessions folder, made first if there is none; never over sessions
        of an older Cove, which would vanish under the mount."""
        if not image.exists():
            if any(self.sessions_dir.iterdir()):
                raise SandboxError(
                    f"{self.sessions_dir} holds the sessions of a Cove without disk limits: stop that "
                    "server, delete its sessions, unmount and empty that folder (docs/security.md, "
                    "'Disk and inodes'), then start again; Cove then mounts a filesystem with limits there"
                )
            self._make_image(image, image_mb)
        _run(["mount", "-o", MOUNT_OPTIONS, str(image), str(self.sessions_dir)], f"mount {image}")

    @staticmethod
    def _make_image(image: Path, image_mb: int) -> None:
        """A sparse file with an empty btrfs filesystem, complete or not there at all."""
        size = image_mb * 1024 * 1024 or int(shutil.disk_usage(image.parent).free * IMAGE_SHARE_OF_FREE_SPACE)
        partial = image.with_name(image.name + ".new")
        with open(partial, "wb") as file:
            file.truncate(size)
        try:
            # -K: a new sparse file has nothing to discard.
            _run(["mkfs.btrfs", "-q", "-K", "-L", "cove-sessions", str(partial)], f"format {image}")
            partial.rename(image)
        finally:
            partial.unlink(missing_ok=True)

    def _enable_quotas(self, mode: int) -> None:
        """Turn quotas on (nothing changes if they are on); kernels before 6.7 know only full quotas."""
        with _opened(self.sessions_dir) as fd:
            try:
                fcntl.ioctl(fd, QUOTA_CTL, bytearray(struct.pack("=QQ", mode, 0)))
            except OSError as exc:
                if mode != QUOTA_ENABLE_SIMPLE or exc.errno != errno.EINVAL:
                    raise SandboxError(
                        f"could not enable btrfs quotas on {self.sessions_dir}: {exc}"
                    ) from exc
                fcntl.ioctl(fd, QUOTA_CTL, bytearray(struct.pack("=QQ", QUOTA_ENABLE, 0)))

    def create(self, name: str, limit_mb: int) -> Path:
        """A new, empty session folder that may hold at most `limit_mb` MiB (data and metadata)."""
        with _opened(self.sessions_dir) as parent:
            fcntl.ioctl(parent, SUBVOL_CREATE, _volume_args(name))
        self.set_limit(name, limit_mb)
        return self.sessions_dir / name

    def set_limit(self, name: str, limit_mb: int) -> None:
        """Change a session folder's limit; below what it holds already, it only stops new writes."""
        limit = struct.pack("=6Q", 0, LIMIT_REFERENCED, limit_mb * 1024 * 1024, 0, 0, 0)
        with _opened(self.sessions_dir) as parent, _opened(Path(name), dir_fd=parent) as volume:
            # Qgroup 0 means the subvolume of the descriptor.
            fcntl.ioctl(volume, QGROUP_LIMIT, bytearray(limit))

    def remove(self, name: str) -> None:
        """Delete a session folder and everything in it, if it exists; its mounts must be gone."""
        with _opened(self.sessions_dir) as parent:
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return
            if not (stat.S_ISDIR(info.st_mode) and info.st_ino == FIRST_INODE):
                # Not a subvolume: a folder of a Cove without disk limits on a btrfs data directory.
                shutil.rmtree(self.sessions_dir / name)
                return
            with _opened(Path(name), dir_fd=parent) as volume:
                subvolume = _subvolume_id(volume)
            fcntl.ioctl(parent, SNAP_DESTROY, _volume_args(name))
            if self._full_quotas:
                self._dropped.add(subvolume)
                self._remove_dropped_qgroups(parent)

    def _remove_dropped_qgroups(self, parent: int) -> None:
        """Remove the qgroups of deleted subvolumes whose space the kernel has freed (busy until then),
        which full quotas would keep forever (simple quotas remove them themselves)."""
        for subvolume in sorted(self._dropped):
            try:
                fcntl.ioctl(parent, QGROUP_CREATE, bytearray(struct.pack("=QQ", 0, subvolume)))
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    continue
            self._dropped.discard(subvolume)
