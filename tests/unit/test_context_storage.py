"""The context storage backends, local folder and S3 (against a real moto server): paths never leave the
context, files and folders keep to their places, writes appear whole; links are never followed in a
local folder; and the service's file-URL tokens."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove.config import Settings
from cove.contexts.s3_storage import PART_BYTES, S3Storage
from cove.contexts.service import ContextService, FileUrlNotValid
from cove.contexts.storage import LocalFolderStorage, StorageBackend, clean_path
from cove.contexts.store import ContextStore
from cove.errors import ContextExists, ContextNotFound, FileNotFound, InvalidArgument, InvalidState
from cove.sessions.store import Store
from tests.s3 import S3Server

CONTEXT = "ctx-test"


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalFolderStorage:
    return LocalFolderStorage(tmp_path / "contexts")


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    """Each backend in turn; the S3 one in a bucket of its own on the moto server."""
    if request.param == "local":
        return LocalFolderStorage(tmp_path / "contexts")
    s3_server: S3Server = request.getfixturevalue("s3_server")
    return S3Storage(s3_server.client(), s3_server.new_bucket(), prefix="cove/contexts")


def leftovers(storage: StorageBackend) -> list[Any]:
    """What a write in progress left behind: temporary files, or S3 multipart uploads."""
    if isinstance(storage, LocalFolderStorage):
        return [name for name in os.listdir(storage.root / CONTEXT) if name.startswith(".cove-upload-")]
    assert isinstance(storage, S3Storage)
    return list(storage.client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", []))


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
def test_bad_paths_are_refused(storage: StorageBackend, raw: str) -> None:
    with pytest.raises(InvalidArgument):
        storage.put(CONTEXT, raw, [b"x"])


def test_put_get_list_delete(storage: StorageBackend) -> None:
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


@pytest.mark.parametrize("written", [3, 2 * PART_BYTES + 5], ids=["small", "multipart"])
def test_a_failed_write_leaves_nothing(storage: StorageBackend, written: int) -> None:
    storage.put(CONTEXT, "kept.txt", [b"old"])

    def chunks() -> Iterator[bytes]:
        yield b"n" * written
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        storage.put(CONTEXT, "kept.txt", chunks())
    with pytest.raises(RuntimeError):
        storage.put(CONTEXT, "new.txt", chunks())
    assert b"".join(storage.open_download(CONTEXT, "kept.txt")[1]) == b"old"
    assert [f.name for f in storage.list(CONTEXT, "/")] == ["kept.txt"]
    assert leftovers(storage) == []


def test_a_file_appears_only_on_commit(storage: StorageBackend) -> None:
    pending = storage.open_upload(CONTEXT, "file.bin")
    piece = os.urandom(1024 * 1024)
    for _ in range(PART_BYTES // len(piece) * 2 + 1):  # past two parts: a multipart upload in S3
        pending.write(piece)
    assert storage.list(CONTEXT, "/") == []
    with pytest.raises(FileNotFound):
        storage.open_download(CONTEXT, "file.bin")
    assert pending.commit() == 2 * PART_BYTES + len(piece)
    size, chunks = storage.open_download(CONTEXT, "file.bin")
    assert size == 2 * PART_BYTES + len(piece)
    assert sum(len(chunk) for chunk in chunks) == size and leftovers(storage) == []


def test_files_and_folders_keep_their_places(storage: StorageBackend) -> None:
    storage.put(CONTEXT, "dir/file.txt", [b"x"])
    with pytest.raises(InvalidState):
        storage.put(CONTEXT, "dir", [b"over a folder"])
    with pytest.raises(InvalidArgument):
        storage.put(CONTEXT, "dir/file.txt/below", [b"under a file"])
    with pytest.raises(InvalidArgument):
        storage.list(CONTEXT, "dir/file.txt")
    with pytest.raises(FileNotFound):
        storage.list(CONTEXT, "missing")
    with pytest.raises(FileNotFound):
        storage.open_download(CONTEXT, "dir")
    with pytest.raises(FileNotFound):
        storage.delete(CONTEXT, "missing.txt")
    assert [(f.name, f.is_folder, f.size) for f in storage.list(CONTEXT, "/")] == [("dir", True, 0)]


def test_deleting_a_folder_or_a_context(storage: StorageBackend) -> None:
    for path in ("a/1.txt", "a/b/2.txt", "c.txt"):
        storage.put(CONTEXT, path, [path.encode()])
    storage.put("ctx-other", "a/1.txt", [b"other"])
    storage.delete(CONTEXT, "a")
    assert [f.path for f in storage.list(CONTEXT, "/")] == ["/c.txt"]
    storage.delete_all(CONTEXT)
    assert storage.list(CONTEXT, "/") == []
    assert b"".join(storage.open_download("ctx-other", "a/1.txt")[1]) == b"other"
    with pytest.raises(InvalidArgument):
        storage.delete_all("../x")


def test_symlinks_are_never_followed(local_storage: LocalFolderStorage, tmp_path: Path) -> None:
    storage = local_storage
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


def test_a_linked_context_folder_is_not_followed(local_storage: LocalFolderStorage, tmp_path: Path) -> None:
    storage = local_storage
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
