"""The local-folder context storage: paths never leave the context's folder, links are never followed,
writes appear whole; and the service's file-URL tokens."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove.config import Settings
from cove.contexts.service import ContextService, FileUrlNotValid
from cove.contexts.storage import LocalFolderStorage, clean_path
from cove.contexts.store import ContextStore
from cove.errors import ContextExists, ContextNotFound, FileNotFound, InvalidArgument
from cove.sessions.store import Store

CONTEXT = "ctx-test"


@pytest.fixture
def storage(tmp_path: Path) -> LocalFolderStorage:
    return LocalFolderStorage(tmp_path / "contexts")


@given(st.lists(st.sampled_from(["a", "b", ".", "..", "", "/", "x y", "é"]), max_size=8).map("/".join))
def test_clean_path_never_climbs(raw: str) -> None:
    try:
        names = clean_path(raw)
    except InvalidArgument as error:
        assert "path" in error.message
        assert ".." in raw.split("/") or not [n for n in raw.split("/") if n not in ("", ".")]
        return
    assert names and ".." not in names and "" not in names and "." not in names
    root = Path("/context")
    assert root.joinpath(*names).resolve().is_relative_to(root)


@given(st.text(max_size=40))
def test_clean_path_accepts_or_names_the_field(raw: str) -> None:
    try:
        names = clean_path(raw, "FilePath")
    except InvalidArgument as error:
        assert error.message.startswith("FilePath")
        return
    assert all(name not in ("", ".", "..") and "/" not in name and "\0" not in name for name in names)


@pytest.mark.parametrize("raw", ["../x", "a/../../x", "/../etc/passwd", "..", "", "/", "a\0b", "x" * 2000])
def test_bad_paths_are_refused(storage: LocalFolderStorage, raw: str) -> None:
    with pytest.raises(InvalidArgument):
        storage.put(CONTEXT, raw, [b"x"])


def test_put_get_list_delete(storage: LocalFolderStorage) -> None:
    assert storage.put(CONTEXT, "/a/b/c.txt", [b"he", b"llo"]) == 5
    size, chunks = storage.open_download(CONTEXT, "a/b/c.txt")
    assert size == 5 and b"".join(chunks) == b"hello"
    assert [(f.path, f.is_folder) for f in storage.list(CONTEXT, "/")] == [("/a", True)]
    assert [(f.path, f.size) for f in storage.list(CONTEXT, "a/b")] == [("/a/b/c.txt", 5)]
    storage.delete(CONTEXT, "a/b/c.txt")
    with pytest.raises(FileNotFound):
        storage.open_download(CONTEXT, "a/b/c.txt")
    storage.delete_all(CONTEXT)
    assert storage.list(CONTEXT, "/") == []


def test_a_failed_write_leaves_nothing(storage: LocalFolderStorage) -> None:
    storage.put(CONTEXT, "kept.txt", [b"old"])

    def chunks() -> Iterator[bytes]:
        yield b"new"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        storage.put(CONTEXT, "kept.txt", chunks())
    assert b"".join(storage.open_download(CONTEXT, "kept.txt")[1]) == b"old"
    assert os.listdir(storage.root / CONTEXT) == ["kept.txt"]


def test_symlinks_are_never_followed(storage: LocalFolderStorage, tmp_path: Path) -> None:
    storage.put(CONTEXT, "seed", [b""])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    folder = storage.root / CONTEXT
    (folder / "dir").symlink_to(outside)
    (folder / "file").symlink_to(outside / "secret")
    with pytest.raises(FileNotFound):
        storage.open_download(CONTEXT, "file")
    with pytest.raises(InvalidArgument):
        storage.open_download(CONTEXT, "dir/secret")
    with pytest.raises(InvalidArgument):
        storage.put(CONTEXT, "dir/new", [b"x"])
    with pytest.raises(InvalidArgument):
        storage.list(CONTEXT, "dir")
    assert sorted(f.name for f in storage.list(CONTEXT, "/")) == ["seed"]
    storage.delete(CONTEXT, "dir")  # the link goes, not what it points to
    storage.put(CONTEXT, "file", [b"mine"])  # replaces the link itself
    assert (outside / "secret").read_text() == "secret" and not (outside / "new").exists()


def test_a_linked_context_folder_is_not_followed(storage: LocalFolderStorage, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (storage.root / CONTEXT).symlink_to(outside)
    with pytest.raises(InvalidArgument):
        storage.put(CONTEXT, "x", [b"x"])
    storage.delete_all(CONTEXT)
    assert outside.exists() and not (storage.root / CONTEXT).exists()


def test_service_names_and_tokens(tmp_path: Path) -> None:
    data_dir = Path(tempfile.mkdtemp(dir=tmp_path))
    settings = Settings(data_dir=data_dir)
    store = Store(f"sqlite:///{data_dir / 'cove.db'}")
    service = ContextService(settings, ContextStore(store.engine), LocalFolderStorage(data_dir / "contexts"))
    made = service.create("tenant-a", "  work ")
    assert made.name == "work" and made.context_id.startswith("ctx-")
    with pytest.raises(ContextExists):
        service.create("tenant-a", "work")
    assert service.create("tenant-b", "work").context_id != made.context_id
    with pytest.raises(ContextNotFound):
        service.get("tenant-b", made.context_id)
    for bad in ("", "a/b", "x\n", "y" * 256):
        with pytest.raises(InvalidArgument, match="name"):
            service.create("tenant-a", bad)

    url = service.upload_url("tenant-a", made.context_id, "/dir/f.txt")
    token = url.url.rsplit("/", 1)[1]
    grant = service.open_grant(token, "PUT")
    assert (grant.context_id, grant.path) == (made.context_id, "dir/f.txt")
    with pytest.raises(FileUrlNotValid):
        service.open_grant(token, "GET")
    with pytest.raises(FileUrlNotValid):
        service.open_grant(token[:-1] + ("A" if token[-1] != "A" else "B"), "PUT")
    service.delete("tenant-a", made.context_id)
    with pytest.raises(ContextNotFound):
        service.open_grant(token, "PUT")
    store.close()
