"""Applying image layers: whiteouts, and members that must never write outside the image."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove.errors import InvalidArgument
from cove.sandbox.layers import Budget, UnsafeLayer, apply_layer, safe_name


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def layer(*entries: tuple) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    buffer.seek(0)
    return buffer


def apply(rootfs: Path, *entries: tuple) -> list[str]:
    said: list[str] = []
    apply_layer(layer(*entries), rootfs, said.append)
    return said


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    path = tmp_path / "rootfs"
    path.mkdir()
    return path


def test_layers_add_replace_and_white_out(rootfs: Path) -> None:
    apply(
        rootfs,
        entry("etc", tarfile.DIRTYPE),
        entry("etc/motd", data=b"lower"),
        entry("etc/gone", data=b"x"),
        entry("opt/app/old.txt", data=b"old"),
        entry("opt/app/sub/deep.txt", data=b"deep"),
        entry("usr/bin/tool", data=b"#!/bin/sh\n", mode=0o755, uid=0, gid=0),
        entry("usr/bin/alias", tarfile.SYMTYPE, linkname="tool"),
        entry("usr/bin/hard", tarfile.LNKTYPE, linkname="usr/bin/tool"),
    )
    apply(
        rootfs,
        entry("etc/motd", data=b"upper"),
        entry("etc/.wh.gone"),
        entry("opt/app", tarfile.DIRTYPE),
        entry("opt/app/new.txt", data=b"new"),
        entry("opt/app/.wh..wh..opq"),
    )
    assert (rootfs / "etc/motd").read_bytes() == b"upper"
    assert not (rootfs / "etc/gone").exists()
    assert sorted(os.listdir(rootfs / "opt/app")) == ["new.txt"]  # opaque: lower gone, this layer's kept
    assert os.readlink(rootfs / "usr/bin/alias") == "tool"
    assert (rootfs / "usr/bin/hard").stat().st_ino == (rootfs / "usr/bin/tool").stat().st_ino
    assert (rootfs / "usr/bin/tool").stat().st_mode & 0o777 == 0o755


def test_a_file_replaces_a_folder_and_a_folder_keeps_its_contents(rootfs: Path) -> None:
    apply(rootfs, entry("data/inside.txt", data=b"x"), entry("thing/a", data=b"a"))
    apply(rootfs, entry("thing", data=b"now a file"), entry("data", tarfile.DIRTYPE, mode=0o700))
    assert (rootfs / "thing").read_bytes() == b"now a file"
    assert (rootfs / "data/inside.txt").exists()
    assert (rootfs / "data").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "bad",
    [
        entry("/etc/passwd", data=b"x"),
        entry("../escape", data=b"x"),
        entry("a/../../escape", data=b"x"),
        entry("evil", tarfile.LNKTYPE, linkname="../outside"),
        entry("evil", tarfile.LNKTYPE, linkname="/etc/passwd"),
    ],
)
def test_members_reaching_outside_are_refused(rootfs: Path, bad: tuple) -> None:
    with pytest.raises(UnsafeLayer):
        apply(rootfs, bad)
    assert not (rootfs.parent / "escape").exists()


def test_nothing_is_written_through_a_symlink(rootfs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    apply(rootfs, entry("link", tarfile.SYMTYPE, linkname=str(outside)))
    with pytest.raises(UnsafeLayer, match="symlink"):
        apply(rootfs, entry("link/planted", data=b"x"))
    # A member at the link's own path replaces the link instead of writing where it points.
    apply(rootfs, entry("file-link", tarfile.SYMTYPE, linkname=str(outside / "target")))
    apply(rootfs, entry("file-link", data=b"replaced"))
    assert os.listdir(outside) == []
    assert (rootfs / "file-link").read_bytes() == b"replaced"


def test_devices_are_skipped_and_foreign_owners_become_nobody(rootfs: Path) -> None:
    said = apply(
        rootfs,
        entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
        entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
        entry("big-uid", data=b"x", uid=200000, gid=1000),
        entry("pipe", tarfile.FIFOTYPE),
    )
    assert not (rootfs / "dev/sda").exists() and not (rootfs / "dev/null").exists()
    assert any("/dev/sda" in line for line in said)
    info = (rootfs / "big-uid").stat()
    assert (info.st_uid, info.st_gid) == (65534, 1000)
    assert (rootfs / "pipe").is_fifo()


@given(st.text(alphabet="/.ab", max_size=12))
def test_safe_names_never_leave_the_root(name: str) -> None:
    try:
        relative = safe_name(name)
    except UnsafeLayer:
        return
    assert not relative.startswith("/")
    assert ".." not in relative.split("/")


@pytest.mark.parametrize("whiteout", [".wh..", ".wh...", ".wh.", "sub/.wh..", "sub/.wh..."])
def test_a_whiteout_of_dot_or_dot_dot_removes_nothing(rootfs: Path, whiteout: str) -> None:
    """`.wh..` names `..`: removing it would delete the folder that holds the image (or the image)."""
    sibling = rootfs.parent / "sibling.txt"
    sibling.write_text("keep")
    apply(rootfs, entry("sub/kept.txt", data=b"x"))
    with pytest.raises(UnsafeLayer, match="whites out"):
        apply(rootfs, entry(whiteout))
    assert sibling.read_text() == "keep"
    assert (rootfs / "sub/kept.txt").exists()


@pytest.mark.parametrize("link", ["../../..", "/", "sub/../.."])
@pytest.mark.parametrize(
    "through",
    [
        entry("a/x", data=b"planted"),
        entry("a/.wh.victim"),
        entry("a/.wh..wh..opq"),
        entry("hard", tarfile.LNKTYPE, linkname="a/victim"),
    ],
)
def test_a_later_layer_never_acts_through_a_symlinked_folder(
    rootfs: Path, tmp_path: Path, link: str, through: tuple
) -> None:
    """Layer 1 makes `a` a link out of the image; layer 2 writes, whites out or links below it."""
    victim = tmp_path / "victim"
    victim.write_text("host file")
    apply(rootfs, entry("sub", tarfile.DIRTYPE), entry("a", tarfile.SYMTYPE, linkname=link))
    with pytest.raises(UnsafeLayer, match="symlink"):
        apply(rootfs, through)
    assert victim.read_text() == "host file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs", "victim"]
    # A folder at the link's own path replaces the link; it never changes where the link pointed.
    apply(rootfs, entry("a", tarfile.DIRTYPE, mode=0o777))
    assert not (rootfs / "a").is_symlink() and tmp_path.stat().st_mode & 0o777 != 0o777


def test_setuid_and_setgid_bits_are_dropped_from_files(rootfs: Path) -> None:
    """Sandboxes run with no_new_privs, so the bits grant nothing there; on the host they would."""
    apply(
        rootfs,
        entry("bin/su", data=b"\x7fELF", mode=0o4755, uid=0, gid=0),
        entry("bin/wall", data=b"\x7fELF", mode=0o2755, uid=0, gid=5),
        entry("shared", tarfile.DIRTYPE, mode=0o2775),
    )
    assert (rootfs / "bin/su").stat().st_mode & 0o7777 == 0o755
    assert (rootfs / "bin/wall").stat().st_mode & 0o7777 == 0o755
    assert (rootfs / "shared").stat().st_mode & 0o7777 == 0o2775  # a folder's setgid only sets groups


def test_a_layer_larger_than_the_budget_is_refused(rootfs: Path) -> None:
    big = layer(entry("big", data=b"x" * 10_000))
    with pytest.raises(InvalidArgument, match="decompression bomb"):
        apply_layer(big, rootfs, lambda _line: None, Budget(max_bytes=4096))
    many = layer(*(entry(f"f{n}") for n in range(20)))
    with pytest.raises(InvalidArgument, match="decompression bomb"):
        apply_layer(many, rootfs, lambda _line: None, Budget(max_entries=10))
    assert not (rootfs / "big").exists()
