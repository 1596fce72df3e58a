"""Read-only root filesystems that sessions run on, stored once under DATA_DIR/images.

Each image is `images/<image_id>/rootfs` plus `image.json`. Its files are owned by the sandboxes'
shifted IDs (sandbox root = host `subordinate_id_start`), so every session sees a normal root-owned
system through its user namespace without copying anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cove.errors import InvalidArgument
from cove.sandbox.host_image import LINUX_LATEST_PACKAGES, build_host_rootfs

IMAGE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
SANDBOX_USER = "user"
SANDBOX_UID = 1000
SANDBOX_HOME = f"/home/{SANDBOX_USER}"
# Built from the host on first use, so a fresh install works offline.
HOST_BUILT_IMAGES = {"linux_latest": LINUX_LATEST_PACKAGES}


@dataclass(frozen=True)
class Image:
    image_id: str
    rootfs: Path
    source: str
    size_bytes: int
    created_at: float


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


class ImageStore:
    """Finds images by id and builds the host-derived default when it is missing."""

    def __init__(self, root: Path, id_offset: int) -> None:
        self.root = root
        self.id_offset = id_offset
        self._loaded: dict[str, Image] = {}  # images are immutable once stored
        root.mkdir(parents=True, exist_ok=True)

    def _meta_path(self, image_id: str) -> Path:
        return self.root / image_id / "image.json"

    def get(self, image_id: str) -> Image:
        if not IMAGE_ID_PATTERN.match(image_id):
            raise InvalidArgument(
                f"image_id {image_id!r} is not a valid image id (lower-case letters, digits, '._-')"
            )
        if image_id in self._loaded:
            return self._loaded[image_id]
        meta = self._meta_path(image_id)
        if not meta.exists():
            if image_id in HOST_BUILT_IMAGES:
                return self.build_from_host(image_id)
            available = ", ".join(i.image_id for i in self.list()) or "none"
            raise InvalidArgument(
                f"image_id {image_id!r} is not available on this server (available: {available}); "
                "list images with 'cove image ls'"
            )
        data = json.loads(meta.read_text())
        self._loaded[image_id] = Image(
            image_id=image_id,
            rootfs=self.root / image_id / "rootfs",
            source=data["source"],
            size_bytes=data["size_bytes"],
            created_at=data["created_at"],
        )
        return self._loaded[image_id]

    def list(self) -> list[Image]:
        return [self.get(meta.parent.name) for meta in sorted(self.root.glob("*/image.json"))]

    def build_from_host(self, image_id: str) -> Image:
        """Assemble a host-built image in a scratch folder, then move it in place atomically."""
        scratch = self.root / f".build-{image_id}-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            rootfs = scratch / "rootfs"
            rootfs.mkdir(parents=True)
            packages = build_host_rootfs(rootfs, HOST_BUILT_IMAGES[image_id], SANDBOX_USER, SANDBOX_UID)
            _shift_ownership(rootfs, self.id_offset)
            image = Image(
                image_id=image_id,
                rootfs=self.root / image_id / "rootfs",
                source=f"host packages: {' '.join(packages)}",
                size_bytes=_tree_size(rootfs),
                created_at=time.time(),
            )
            record = {k: v for k, v in asdict(image).items() if k not in ("rootfs", "image_id")}
            (scratch / "image.json").write_text(json.dumps(record, indent=2))
            try:
                scratch.rename(self.root / image_id)
            except OSError:
                if not self._meta_path(image_id).exists():  # lost a race to another builder: fine
                    raise
            return image
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
