"""Write container images the way `docker save` and OCI tools do, from layer tars, for import tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

LAYER_TYPES = {
    "": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def image_config(layers: list[bytes], **settings: Any) -> bytes:
    rootfs = {"type": "layers", "diff_ids": [digest(layer) for layer in layers]}
    config = {"architecture": "amd64", "os": "linux", "config": settings, "rootfs": rootfs}
    return json.dumps(config).encode()


def write_docker_save(path: Path, layers: list[bytes], **settings: Any) -> None:
    """A `docker save` tarball: manifest.json, the config, and one layer.tar per layer."""
    config = image_config(layers, **settings)
    files = {f"{digest(config)[7:]}.json": config}
    names = []
    for number, data in enumerate(layers):
        names.append(f"{number:064x}/layer.tar")
        files[names[-1]] = data
    manifest = [{"Config": f"{digest(config)[7:]}.json", "RepoTags": ["test:latest"], "Layers": names}]
    files["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def write_oci_layout(folder: Path, layers: list[bytes], compression: str = "gzip", **settings: Any) -> str:
    """An OCI image layout in `folder` (index.json, blobs/sha256/...); answers the manifest digest."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media_type: str) -> dict[str, Any]:
        (blobs / digest(data)[7:]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest(data), "size": len(data)}

    compress = {"": bytes, "gzip": gzip.compress, "zstd": zstandard.ZstdCompressor().compress}[compression]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(image_config(layers, **settings), "application/vnd.oci.image.config.v1+json"),
        "layers": [blob(compress(layer), LAYER_TYPES[compression]) for layer in layers],
    }
    described = blob(json.dumps(manifest).encode(), manifest["mediaType"])
    index = {"schemaVersion": 2, "manifests": [described]}
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return str(described["digest"])


def rootfs_layers(
    rootfs: Path, id_offset: int, in_second: Callable[[str], bool], extras: tuple[dict[str, bytes], ...]
) -> list[bytes]:
    """Two layer tars of a stored image (owners shifted back), split by `in_second(relative path)`,
    each ending with its `extras` (name: contents), such as a whiteout in the second."""
    buffers = [io.BytesIO(), io.BytesIO()]
    with (
        tarfile.open(fileobj=buffers[0], mode="w") as first,
        tarfile.open(fileobj=buffers[1], mode="w") as second,
    ):
        for directory, dirnames, filenames in os.walk(rootfs):
            for name in sorted([*dirnames, *filenames]):
                path = Path(directory, name)
                relative = str(path.relative_to(rootfs))
                info = first.gettarinfo(path, relative)
                info.uid, info.gid, info.uname, info.gname = (
                    info.uid - id_offset,
                    info.gid - id_offset,
                    "",
                    "",
                )
                target = second if in_second(relative) else first
                if info.isreg():
                    with path.open("rb") as contents:
                        target.addfile(info, contents)
                else:
                    target.addfile(info)
        for tar, added in zip((first, second), extras, strict=True):
            for name, data in added.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return [buffer.getvalue() for buffer in buffers]
