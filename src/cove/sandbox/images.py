"""Read-only root filesystems that sessions run on, stored once under DATA_DIR/images.

Each image is `images/<image_id>/rootfs` plus `image.json`. Its files are owned by the sandboxes'
shifted IDs (sandbox root = host `subordinate_id_start`), so every session sees a normal root-owned
system through its user namespace without copying anything.
"""

from __future__ import annotations

import builtins
import ctypes
import json
import os
import re
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cove.config import Settings
from cove.errors import InvalidArgument, InvalidState
from cove.sandbox.debian_build import DebianSource, build_debian_rootfs, cache_lock
from cove.sandbox.host_image import LINUX_LATEST_PACKAGES, build_host_rootfs
from cove.sandbox.image_archive import unpack_image
from cove.sandbox.mounts import mount_points_under, overlays_over, unmount
from cove.sandbox.oci_spec import SANDBOX_PATH
from cove.sandbox.recipes import RECIPES, buildable_recipe
from cove.sandbox.sandbox_files import write_sandbox_files

IMAGE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
SANDBOX_USER = "user"
SANDBOX_UID = 1000
SANDBOX_HOME = f"/home/{SANDBOX_USER}"
# Built from the host on first use, so a fresh install works offline.
HOST_BUILT_IMAGES = {"linux_latest": LINUX_LATEST_PACKAGES}
SYMLINK_HOPS = 40
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Image:
    image_id: str
    rootfs: Path
    source: str
    size_bytes: int
    created_at: float
    python3: str | None
    """Where the image's python3 is on the sandbox's PATH; sessions need it (their init is Python)."""


def image_store(settings: Settings) -> ImageStore:
    """The store a server (or the CLI, for the same server) uses, from its settings."""
    debian = DebianSource.for_host(settings.image_cache_path, settings.debian_mirror, settings.debian_suite)
    return ImageStore(settings.images_path, settings.subordinate_id_start, debian)


def _shift_ownership(root: Path, offset: int) -> None:
    """Move every file's owner from host IDs into the sandbox range (uid -> uid + offset)."""

    def shift(path: str) -> None:
        info = os.lstat(path)
        os.lchown(path, info.st_uid + offset, info.st_gid + offset)

    shift(str(root))
    for directory, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            shift(os.path.join(directory, name))


def _tree_size(root: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(root) for f in files)


def resolve_in_root(root: Path, path: str) -> Path | None:
    """`path` as the sandbox sees it: symlinks followed inside `root`, never out; None if missing."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current[:-1]
            continue
        candidate = root.joinpath(*current, part)
        try:
            info = candidate.lstat()
        except OSError:
            return None
        if stat.S_ISLNK(info.st_mode):
            hops += 1
            if hops > SYMLINK_HOPS:
                return None
            target = os.readlink(candidate)
            current = [] if target.startswith("/") else current
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
        else:
            current.append(part)
    return root.joinpath(*current)


def find_python3(rootfs: Path) -> str | None:
    """The first executable python3 on the sandbox's PATH, as the sandbox would find it."""
    for directory in SANDBOX_PATH.split(":"):
        found = resolve_in_root(rootfs, f"{directory}/python3")
        if found is not None and found.is_file() and os.stat(found).st_mode & 0o111:
            return f"{directory}/python3"
    return None


def dpkg_packages(rootfs: Path) -> list[str]:
    """The packages dpkg says are installed in the image (none for images without dpkg)."""
    status = resolve_in_root(rootfs, "/var/lib/dpkg/status")
    if status is None or not status.is_file():
        return []
    names = []
    for stanza in status.read_text(errors="replace").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line[:80])
        if fields.get("Status") == "install ok installed":
            names.append(fields["Package"])
    return sorted(names)


_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> None:
    """Swap two directories in one step (renameat2), so a replaced image is never missing."""
    result = _libc.renameat2(AT_FDCWD, bytes(first), AT_FDCWD, bytes(second), RENAME_EXCHANGE)
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"exchange {first} and {second}: {os.strerror(errno)}")


def _remove_tree(path: Path) -> None:
    """Remove a scratch tree, first detaching anything a killed debootstrap left mounted in it."""
    for point in mount_points_under(path):
        unmount(point)
    shutil.rmtree(path, ignore_errors=True)


class ImageStore:
    """Finds images by id; builds, imports and removes them, each change appearing in one step."""

    def __init__(self, root: Path, id_offset: int, debian: DebianSource) -> None:
        self.root = root
        self.id_offset = id_offset
        self.debian = debian
        self._loaded: dict[str, tuple[int, Image]] = {}  # by the image.json's mtime
        root.mkdir(parents=True, exist_ok=True)

    def _meta_path(self, image_id: str) -> Path:
        return self.root / image_id / "image.json"

    def _check_id(self, image_id: str) -> None:
        if not IMAGE_ID_PATTERN.match(image_id):
            raise InvalidArgument(
                f"image_id {image_id!r} is not a valid image id (lower-case letters, digits, '._-')"
            )

    def exists(self, image_id: str) -> bool:
        self._check_id(image_id)
        return self._meta_path(image_id).exists()

    def get(self, image_id: str) -> Image:
        self._check_id(image_id)
        try:
            changed = self._meta_path(image_id).stat().st_mtime_ns
        except FileNotFoundError:
            if image_id in HOST_BUILT_IMAGES:
                return self.build_from_host(image_id)
            raise self._missing(image_id) from None
        cached = self._loaded.get(image_id)
        if cached is not None and cached[0] == changed:
            return cached[1]
        data = self.record(image_id)
        rootfs = self.root / image_id / "rootfs"
        image = Image(
            image_id=image_id,
            rootfs=rootfs,
            source=data["source"],
            size_bytes=data["size_bytes"],
            created_at=data["created_at"],
            python3=find_python3(rootfs),
        )
        self._loaded[image_id] = (changed, image)
        return image

    def record(self, image_id: str) -> dict[str, Any]:
        """The image's image.json: source, size, creation time, packages, and what its kind adds."""
        self._check_id(image_id)
        try:
            data: dict[str, Any] = json.loads(self._meta_path(image_id).read_text())
        except FileNotFoundError:
            raise self._missing(image_id) from None
        return data

    def for_session(self, image_id: str) -> Image:
        """The image, if a session can run on it: the sandbox's tool agent runs its python3."""
        image = self.get(image_id)
        if image.python3 is None:
            raise InvalidArgument(
                f"image {image_id!r} has no python3 on its PATH; Cove's tools run with the image's "
                "own python3, so install python3 in the image (or import an image that has it, like "
                "debian or python:3-slim)"
            )
        return image

    def _missing(self, image_id: str) -> InvalidArgument:
        available = ", ".join(i.image_id for i in self.list()) or "none"
        recipe = RECIPES.get(image_id)
        if recipe is not None and recipe.not_buildable_because:
            how = f"{image_id} {recipe.not_buildable_because}"
        elif recipe is not None:
            how = f"build it with 'cove image build {image_id}'"
        else:
            how = f"import it with 'cove image import {image_id} PATH' (a docker save tarball or OCI layout)"
        return InvalidArgument(f"image {image_id!r} is not on this server; {how} (available: {available})")

    def list(self) -> list[Image]:
        """Stored images; scratch folders (".build-*", ".rm-*") are not images yet, or any more."""
        names = sorted(meta.parent.name for meta in self.root.glob("*/image.json"))
        return [self.get(name) for name in names if IMAGE_ID_PATTERN.match(name)]

    def in_use(self, image_id: str) -> builtins.list[Path]:
        """Session root filesystems on this machine that have the image as their lower layer."""
        return overlays_over(self.root / image_id / "rootfs")

    def _refuse_if_in_use(self, image_id: str, action: str) -> None:
        users = self.in_use(image_id)
        if users:
            raise InvalidState(
                f"cannot {action} image {image_id!r}: {len(users)} sandbox(es) on this machine run on it "
                "(sessions, or a server's warm pool); delete those sessions or stop the server first"
            )

    def remove(self, image_id: str) -> None:
        """Delete an image no sandbox uses; it disappears in one rename, then its files go."""
        if not self.exists(image_id):
            raise self._missing(image_id)
        self._refuse_if_in_use(image_id, "remove")
        doomed = self.root / f".rm-{image_id}-{os.getpid()}"
        (self.root / image_id).rename(doomed)
        self._loaded.pop(image_id, None)
        _remove_tree(doomed)

    def build_from_host(self, image_id: str, roots: Iterable[str] | None = None) -> Image:
        """Assemble an image from the host's installed packages (no download), by default those of a
        host-built image; `roots` (with their dependencies) instead make one of a test's own. A
        concurrent builder's result is as good."""
        with self._scratch(image_id) as scratch:
            chosen = HOST_BUILT_IMAGES[image_id] if roots is None else roots
            packages = build_host_rootfs(scratch / "rootfs", chosen, SANDBOX_USER, SANDBOX_UID)
            try:
                return self._install(scratch, image_id, "built from the host's packages", packages, {})
            except InvalidState:
                return self.get(image_id)  # lost a race to another builder: fine

    def build(self, image_id: str, on_progress: Progress | None = None, force: bool = False) -> Image:
        """Build a recipe's image from the Debian mirror; `force` replaces an existing one in one step."""
        recipe = buildable_recipe(image_id)
        progress = on_progress or (lambda _line: None)
        with cache_lock(self.debian):
            self._check_replaceable(image_id, force)
            with self._scratch(image_id) as scratch:
                build_debian_rootfs(
                    scratch / "rootfs", recipe.packages, self.debian, SANDBOX_USER, SANDBOX_UID, progress
                )
                progress("storing the image")
                source = f"recipe {image_id}: Debian {self.debian.suite} from {self.debian.mirror}"
                details = {"recipe": list(recipe.packages)}
                packages = dpkg_packages(scratch / "rootfs")
                return self._install(scratch, image_id, source, packages, details, replace=force)

    def import_image(
        self, image_id: str, archive: Path, on_progress: Progress | None = None, force: bool = False
    ) -> Image:
        """Unpack a docker save tarball or an OCI layout (folder or tar) as the image `image_id`."""
        progress = on_progress or (lambda _line: None)
        self._check_replaceable(image_id, force)
        with self._scratch(image_id) as scratch:
            unpacked = unpack_image(archive, scratch / "rootfs", progress)
            write_sandbox_files(scratch / "rootfs", SANDBOX_USER, SANDBOX_UID)
            progress("storing the image")
            source = f"import of {archive.resolve()} ({unpacked.digest})"
            details = {"digest": unpacked.digest, "config": unpacked.config}
            packages = dpkg_packages(scratch / "rootfs")
            return self._install(scratch, image_id, source, packages, details, replace=force)

    def _check_replaceable(self, image_id: str, force: bool) -> None:
        if not self.exists(image_id):
            return
        if not force:
            raise InvalidState(f"image {image_id!r} already exists; pass --force to replace it")
        self._refuse_if_in_use(image_id, "replace")

    @contextmanager
    def _scratch(self, image_id: str) -> Iterator[Path]:
        """A private folder beside the images; whatever happens, it is gone afterwards."""
        scratch = self.root / f".build-{image_id}-{os.getpid()}-{threading.get_ident()}"
        _remove_tree(scratch)
        scratch.mkdir()
        try:
            yield scratch
        finally:
            _remove_tree(scratch)

    def _install(
        self,
        scratch: Path,
        image_id: str,
        source: str,
        packages: builtins.list[str],
        details: dict[str, Any],
        replace: bool = False,
    ) -> Image:
        """Shift the scratch image's owners into the sandbox range and move it in place in one step."""
        rootfs = scratch / "rootfs"
        _shift_ownership(rootfs, self.id_offset)
        record = {
            "source": source,
            "size_bytes": _tree_size(rootfs),
            "created_at": time.time(),
            "packages": packages,
            **details,
        }
        (scratch / "image.json").write_text(json.dumps(record, indent=2))
        target = self.root / image_id
        if replace and target.exists():
            self._refuse_if_in_use(image_id, "replace")  # again: a session may have started meanwhile
            _exchange(scratch, target)  # the old image is now in scratch, removed with it
        else:
            try:
                scratch.rename(target)
            except OSError as exc:
                if self.exists(image_id):
                    raise InvalidState(f"image {image_id!r} was stored meanwhile by another build") from exc
                raise
        return self.get(image_id)
