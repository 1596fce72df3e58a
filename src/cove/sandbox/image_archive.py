"""Read a container image from a `docker save` tarball or an OCI image layout (folder or tar).

Both name a config and an ordered list of layer tars: docker save in `manifest.json`, OCI in
`index.json` -> manifest -> blobs. The layers are applied in order by layers.py; blobs named by
digest are checked against it while they stream. Layers may be uncompressed, gzip or zstd.
The JSON files are read whole, so each may be at most `MAX_JSON_BYTES`; what the layers unpack to
is capped by layers.Budget.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import re
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import zstandard

from cove.errors import InvalidArgument
from cove.sandbox.layers import Budget, apply_layer, safe_name

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}
KEPT_CONFIG = ("Env", "WorkingDir", "User", "Entrypoint", "Cmd")
CHUNK = 1 << 20
MAX_JSON_BYTES = 16 << 20
"""An index, manifest or config larger than this is refused: real ones are a few KiB."""


@dataclass(frozen=True)
class UnpackedImage:
    digest: str
    """The manifest's digest (OCI), or the config's (docker save: the image id)."""
    config: dict[str, Any]
    """Env, WorkingDir, User, Entrypoint and Cmd from the image's config, as recorded, not applied."""


class _Layout:
    """Files of the image, from a folder or a tar, by their relative names."""

    def __init__(self, path: Path, tar: tarfile.TarFile | None) -> None:
        self.path = path
        self.tar = tar
        # Tars made with `tar -C layout -cf x.tar .` name their members "./index.json" and so on.
        self.members = {_normal(m.name): m for m in tar.getmembers()} if tar is not None else {}

    def exists(self, name: str) -> bool:
        return name in self.members if self.tar is not None else (self.path / name).is_file()

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        relative = safe_name(name)
        if self.tar is not None:
            member = self.members.get(relative)
            handle = self.tar.extractfile(member) if member is not None else None
            if handle is None:
                raise InvalidArgument(f"the image archive has no file {name!r}")
            yield handle
            return
        path = (self.path / relative).resolve()
        if not path.is_relative_to(self.path.resolve()) or not path.is_file():
            raise InvalidArgument(f"the image layout has no file {name!r} inside it")
        with path.open("rb") as handle:
            yield handle

    def read(self, name: str) -> bytes:
        """A small file whole (JSON); refused above MAX_JSON_BYTES rather than filling memory."""
        with self.open(name) as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES:
            raise InvalidArgument(f"{name!r} in the image is larger than {MAX_JSON_BYTES} bytes")
        return raw

    def json(self, name: str) -> Any:
        return json.loads(self.read(name))


def _normal(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.hash.update(data)
        return len(data)


def unpack_image(archive: Path, rootfs: Path, progress: Callable[[str], None]) -> UnpackedImage:
    """Apply the image's layers in order into the new folder `rootfs`."""
    if not archive.exists():
        raise InvalidArgument(f"{archive} does not exist")
    rootfs.mkdir()
    tar = None if archive.is_dir() else _open_tar(archive)
    try:
        layout = _Layout(archive, tar)
        if layout.exists("manifest.json"):
            digest, config, layers = _docker_save(layout)
        elif layout.exists("index.json"):
            digest, config, layers = _oci(layout)
        else:
            raise InvalidArgument(
                f"{archive} is neither a docker save tarball (manifest.json) nor an OCI layout (index.json)"
            )
        budget = Budget()
        for number, (name, expected) in enumerate(layers, 1):
            progress(f"layer {number}/{len(layers)}: {expected or name}")
            _apply(layout, name, expected, rootfs, progress, budget)
    finally:
        if tar is not None:
            tar.close()
    settings = config.get("config") or {}
    return UnpackedImage(digest, {key: settings[key] for key in KEPT_CONFIG if settings.get(key)})


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except tarfile.TarError as exc:
        raise InvalidArgument(f"{archive} is not a tar archive nor a folder: {exc}") from exc


def _docker_save(layout: _Layout) -> tuple[str, dict[str, Any], list[tuple[str, str]]]:
    entries = layout.json("manifest.json")
    if not isinstance(entries, list) or len(entries) != 1:
        raise InvalidArgument("the docker save tarball must hold exactly one image (save one tag)")
    raw = layout.read(str(entries[0]["Config"]))
    layers = [(str(name), "") for name in entries[0]["Layers"]]
    return f"sha256:{hashlib.sha256(raw).hexdigest()}", json.loads(raw), layers


def _oci(layout: _Layout) -> tuple[str, dict[str, Any], list[tuple[str, str]]]:
    descriptor = _pick(layout.json("index.json"))
    manifest = _blob_json(layout, descriptor)
    while manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        descriptor = _pick(manifest)
        manifest = _blob_json(layout, descriptor)
    config = _blob_json(layout, manifest["config"])
    layers = [(_blob_name(layer["digest"]), layer["digest"]) for layer in manifest["layers"]]
    return descriptor["digest"], config, layers


def _pick(index: dict[str, Any]) -> dict[str, Any]:
    """The index's one manifest, or the one for this machine's platform."""
    manifests: list[dict[str, Any]] = index.get("manifests", [])
    architecture = ARCHITECTURES.get(platform.machine(), platform.machine())
    if len(manifests) > 1:
        manifests = [
            m for m in manifests if m.get("platform", {}).get("architecture") in (architecture, None)
        ]
    if len(manifests) != 1:
        raise InvalidArgument(
            f"the OCI index lists {len(manifests)} images for {architecture}; export exactly one"
        )
    return manifests[0]


def _blob_name(digest: str) -> str:
    if not DIGEST.match(digest):
        raise InvalidArgument(f"unsupported or malformed digest {digest!r} (sha256 only)")
    return f"blobs/sha256/{digest.removeprefix('sha256:')}"


def _blob_json(layout: _Layout, descriptor: dict[str, Any]) -> dict[str, Any]:
    raw = layout.read(_blob_name(descriptor["digest"]))
    if f"sha256:{hashlib.sha256(raw).hexdigest()}" != descriptor["digest"]:
        raise InvalidArgument(f"blob {descriptor['digest']} does not match its digest")
    parsed: dict[str, Any] = json.loads(raw)
    return parsed


def _apply(
    layout: _Layout,
    name: str,
    expected: str,
    rootfs: Path,
    progress: Callable[[str], None],
    budget: Budget,
) -> None:
    with layout.open(name) as raw:
        hashing = _Hashing(raw)
        stream = io.BufferedReader(hashing, CHUNK)
        magic = stream.peek(4)[:4]
        if magic.startswith(GZIP_MAGIC):
            with gzip.GzipFile(fileobj=stream) as unzipped:
                apply_layer(unzipped, rootfs, progress, budget)
        elif magic == ZSTD_MAGIC:
            with zstandard.ZstdDecompressor().stream_reader(stream, closefd=False) as unzstd:
                apply_layer(unzstd, rootfs, progress, budget)
        else:
            apply_layer(stream, rootfs, progress, budget)
        while stream.read(CHUNK):  # the tar's end padding, for the digest
            pass
        if expected and f"sha256:{hashing.hash.hexdigest()}" != expected:
            raise InvalidArgument(f"layer {expected} does not match its digest")
