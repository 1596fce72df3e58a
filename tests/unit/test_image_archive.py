"""Reading docker save tarballs and OCI layouts: layer order, compression, digests, bad archives."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from cove.errors import InvalidArgument
from cove.sandbox.image_archive import unpack_image
from tests.image_layouts import write_docker_save, write_oci_layout


def layer(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


LAYERS = [
    layer({"etc/os-release": b"ID=test\n", "bin/old": b"old"}),
    layer({"etc/os-release": b"ID=upper\n", "bin/.wh.old": b""}),
]


def check_unpacked(rootfs: Path) -> None:
    assert (rootfs / "etc/os-release").read_bytes() == b"ID=upper\n"
    assert not (rootfs / "bin/old").exists()


def test_docker_save_tarball(tmp_path: Path) -> None:
    write_docker_save(tmp_path / "image.tar", LAYERS, Env=["PATH=/usr/bin"], WorkingDir="/srv")
    unpacked = unpack_image(tmp_path / "image.tar", tmp_path / "rootfs", lambda _: None)
    check_unpacked(tmp_path / "rootfs")
    assert unpacked.digest.startswith("sha256:")
    assert unpacked.config == {"Env": ["PATH=/usr/bin"], "WorkingDir": "/srv"}


@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_oci_layout_folder(tmp_path: Path, compression: str) -> None:
    manifest = write_oci_layout(tmp_path / "layout", LAYERS, compression)
    unpacked = unpack_image(tmp_path / "layout", tmp_path / "rootfs", lambda _: None)
    check_unpacked(tmp_path / "rootfs")
    assert unpacked.digest == manifest


def test_oci_layout_as_a_tar_of_dot(tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "layout", LAYERS)
    with tarfile.open(tmp_path / "layout.tar", "w") as tar:
        tar.add(tmp_path / "layout", arcname=".")
    unpack_image(tmp_path / "layout.tar", tmp_path / "rootfs", lambda _: None)
    check_unpacked(tmp_path / "rootfs")


def test_a_layer_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "layout", LAYERS, "")
    index = json.loads((tmp_path / "layout/index.json").read_text())
    manifest_blob = tmp_path / "layout/blobs/sha256" / index["manifests"][0]["digest"][7:]
    first_layer = json.loads(manifest_blob.read_text())["layers"][0]["digest"][7:]
    (tmp_path / "layout/blobs/sha256" / first_layer).write_bytes(LAYERS[1])
    with pytest.raises(InvalidArgument, match="does not match its digest"):
        unpack_image(tmp_path / "layout", tmp_path / "rootfs", lambda _: None)


def test_what_is_not_an_image_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgument, match="neither a docker save tarball"):
        unpack_image(tmp_path / "empty", tmp_path / "rootfs", lambda _: None)
    (tmp_path / "text").write_text("hello")
    with pytest.raises(InvalidArgument, match="not a tar archive"):
        unpack_image(tmp_path / "text", tmp_path / "rootfs2", lambda _: None)


def test_a_layer_path_outside_the_layout_is_refused(tmp_path: Path) -> None:
    write_docker_save(tmp_path / "image.tar", LAYERS)
    with tarfile.open(tmp_path / "image.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    manifest[0]["Layers"] = ["../../etc/passwd"]
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with tarfile.open(tmp_path / "image.tar") as tar:
        config = tar.extractfile(manifest[0]["Config"])
        assert config is not None
        (folder / manifest[0]["Config"]).write_bytes(config.read())
    with pytest.raises(InvalidArgument, match=r"\.\."):
        unpack_image(folder, tmp_path / "rootfs", lambda _: None)


def test_an_index_naming_a_blob_outside_the_layout_is_refused(tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "layout", LAYERS)
    secret = tmp_path / "secret.json"
    secret.write_text('{"schemaVersion": 2}')
    index = json.loads((tmp_path / "layout/index.json").read_text())
    for bad in ["sha256:../../secret.json", "../../secret.json", "sha512:" + "0" * 128]:
        index["manifests"][0]["digest"] = bad
        (tmp_path / "layout/index.json").write_text(json.dumps(index))
        with pytest.raises(InvalidArgument, match="digest"):
            unpack_image(tmp_path / "layout", tmp_path / "rootfs", lambda _: None)
        (tmp_path / "rootfs").rmdir()


def test_a_blob_that_is_a_symlink_out_of_the_layout_folder_is_refused(tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "layout", LAYERS)
    index = json.loads((tmp_path / "layout/index.json").read_text())
    blob = tmp_path / "layout/blobs/sha256" / index["manifests"][0]["digest"][7:]
    outside = tmp_path / "outside.json"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(outside)
    with pytest.raises(InvalidArgument, match="inside it"):
        unpack_image(tmp_path / "layout", tmp_path / "rootfs", lambda _: None)


def test_an_oversized_manifest_is_refused_before_it_fills_memory(tmp_path: Path) -> None:
    write_docker_save(tmp_path / "image.tar", LAYERS)
    huge = b"[" + b" " * (17 << 20) + b"]"
    with tarfile.open(tmp_path / "big.tar", "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(huge)
        tar.addfile(info, io.BytesIO(huge))
    with pytest.raises(InvalidArgument, match="larger than"):
        unpack_image(tmp_path / "big.tar", tmp_path / "rootfs", lambda _: None)


def test_a_gzip_bomb_layer_is_refused_by_the_budget(tmp_path: Path) -> None:
    """A small gzip layer that claims a huge file: refused before its bytes are written."""
    info = tarfile.TarInfo("zeros")
    info.size = 80 << 30  # more than MAX_IMPORT_BYTES; the header alone is enough to refuse it
    header = info.tobuf(tarfile.GNU_FORMAT)
    write_oci_layout(tmp_path / "layout", [header + b"\0" * (1 << 20)], "gzip")
    with pytest.raises(InvalidArgument, match="decompression bomb"):
        unpack_image(tmp_path / "layout", tmp_path / "rootfs", lambda _: None)
    assert not (tmp_path / "rootfs/zeros").exists()
