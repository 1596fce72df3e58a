"""Context sync input: paths and SyncPolicy JSON (contexts/policy.py, file_filter.py), white-list
matching, archives unpacked on download, the Archive upload mode, lifecycles, the folders made for
a sync, and the agent's unpack checks."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cove.agent.transfers import _unsafe_member
from cove.contexts import archives
from cove.contexts.policy import ContextSync, NotImplementedPolicy, check_sync, check_syncs
from cove.contexts.recycle import RecycleRules
from cove.contexts.storage import LocalFolderStorage
from cove.contexts.sync import ARCHIVE_NAME, export_tar, import_tar
from cove.errors import InvalidArgument
from cove.sandbox.sync_folders import make_user_folder
from cove.sessions.store import Store

SDK_DEFAULT = {
    "uploadPolicy": {
        "autoUpload": True,
        "uploadStrategy": "UploadBeforeResourceRelease",
        "uploadMode": "File",
    },
    "downloadPolicy": {"autoDownload": True, "downloadStrategy": "DownloadAsync"},
    "deletePolicy": {"syncLocalFile": True},
    "extractPolicy": {"extract": True, "deleteSrcFile": True, "extractToCurrentFolder": False},
    "recyclePolicy": {"lifecycle": "Lifecycle_Forever", "paths": [""]},
    "bwList": {
        "whiteLists": [{"path": "", "excludePaths": [], "isPathRegex": False, "isExcludeRegex": False}]
    },
}


def test_the_sdk_default_policy_is_accepted_as_a_string_or_object() -> None:
    for policy in (SDK_DEFAULT, json.dumps(SDK_DEFAULT), None):
        sync = check_sync({"context_id": "ctx-1", "path": "/home/user/data/", "policy": policy}, "s")
        assert (sync.path, sync.auto_download, sync.auto_upload, sync.sync_deletions) == (
            "/home/user/data",
            True,
            True,
            True,
        )
    off = check_sync(
        {"context_id": "c", "path": "/d", "policy": {"uploadPolicy": {"autoUpload": False}}}, "s"
    )
    assert not off.auto_upload and off.auto_download


@pytest.mark.parametrize(
    "policy",
    [
        {"uploadPolicy": {"uploadStrategy": "UploadAfterFileClose"}},
    ],
)
def test_what_cove_cannot_honour_is_refused_with_501(policy: dict[str, object]) -> None:
    with pytest.raises(NotImplementedPolicy, match="not supported"):
        check_sync({"context_id": "c", "path": "/d", "policy": policy}, "s")


def test_every_part_is_read_with_agentbays_names() -> None:
    policy = {
        "uploadPolicy": {"autoUpload": True, "uploadStrategy": "PeriodicUpload", "period": 0.5},
        "downloadPolicy": {"autoDownload": False, "downloadStrategy": "DownloadSync"},
        "deletePolicy": {"syncLocalFile": False},
        "extractPolicy": {"extract": True, "deleteSrcFile": False, "extractToCurrentFolder": True},
        "recyclePolicy": {"lifecycle": "Lifecycle_3Days", "paths": ["/logs", "tmp/"]},
        "bwList": {"whiteLists": [{"path": "/Default", "excludePaths": ["/Default/Cache", "*.log"]}]},
        "mappingPolicy": {"path": "C:\\Users\\me\\data"},
    }
    sync = check_sync({"context_id": "c", "path": "/d", "policy": policy}, "s")
    assert (sync.periodic, sync.period_minutes, sync.auto_download, sync.sync_deletions) == (
        True,
        0.5,
        False,
        False,
    )
    assert (sync.extract, sync.delete_archive, sync.extract_here) == (True, False, True)
    assert (sync.lifecycle, sync.recycle_paths) == ("Lifecycle_3Days", ("logs", "tmp"))
    assert (sync.mapping_path, sync.download_strategy) == ("C:\\Users\\me\\data", "DownloadSync")
    assert ContextSync.from_row({"policy": sync.policy_json()}) == sync
    assert sync.admits("Default/Cookies") and sync.admits("Default/Local Storage/x")
    assert not sync.admits("Default/Cache/a") and not sync.admits("Default/debug.log")
    assert not sync.admits("Other/file") and not sync.admits("Defaultx")
    legacy = check_sync(
        {"context_id": "c", "path": "/d", "policy": {"uploadPolicy": {"uploadStrategy": "PERIODIC_UPLOAD"}}},
        "s",
    )
    assert legacy.periodic and legacy.period_minutes == 30


def test_white_list_semantics() -> None:
    def admitted(white_lists: list[dict[str, object]], path: str) -> bool:
        return check_sync(
            {"context_id": "c", "path": "/d", "policy": {"bwList": {"whiteLists": white_lists}}}, "s"
        ).admits(path)

    everything = [{"path": "", "excludePaths": []}]
    assert admitted(everything, "any/file") and admitted([], "any/file")
    assert admitted([{"path": "a"}, {"path": "b/c"}], "b/c/d") and not admitted([{"path": "a"}], "b")
    assert not admitted([{"path": "/", "excludePaths": ["cache/*"]}], "cache/x/y")
    assert admitted([{"path": "/", "excludePaths": ["cache/*"]}], "cache")
    regex = [
        {
            "path": r"/data/.*\.csv",
            "isPathRegex": True,
            "excludePaths": [r"/data/tmp/.*"],
            "isExcludeRegex": True,
        }
    ]
    assert admitted(regex, "data/a.csv") and not admitted(regex, "data/a.txt")
    assert not admitted(regex, "data/tmp/b.csv")


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"uploadPolicy": {"uploadStrategy": "Sometimes"}}, "policy.uploadPolicy.uploadStrategy"),
        ({"uploadPolicy": {"uploadStrategy": "PeriodicUpload", "period": 0}}, "policy.uploadPolicy.period"),
        ({"uploadPolicy": {"period": "5"}}, "policy.uploadPolicy.period"),
        ({"uploadPolicy": {"autoUpload": "yes"}}, "policy.uploadPolicy.autoUpload"),
        ({"downloadPolicy": {"downloadStrategy": "Lazy"}}, "policy.downloadPolicy.downloadStrategy"),
        ({"deletePolicy": {"syncLocalFile": 1}}, "policy.deletePolicy.syncLocalFile"),
        ({"extractPolicy": {"extract": None, "unzip": True}}, "policy.extractPolicy.unzip"),
        ({"recyclePolicy": {"lifecycle": "Lifecycle_2Days"}}, "policy.recyclePolicy.lifecycle"),
        ({"recyclePolicy": {"paths": ["logs/*"]}}, "policy.recyclePolicy.paths[0]"),
        ({"recyclePolicy": {"paths": ["../other"]}}, "policy.recyclePolicy.paths[0]"),
        ({"bwList": {"whiteLists": [{"path": "../../etc"}]}}, "policy.bwList.whiteLists[0].path"),
        ({"bwList": {"whiteLists": [{"path": "a/../.."}]}}, "policy.bwList.whiteLists[0].path"),
        ({"bwList": {"whiteLists": [{"path": "a*"}]}}, "policy.bwList.whiteLists[0].path"),
        ({"bwList": {"whiteLists": [{"path": "a", "excludePaths": ["/"]}]}}, "excludePaths[0]"),
        ({"bwList": {"whiteLists": [{"path": "(", "isPathRegex": True}]}}, "whiteLists[0].path"),
        ({"bwList": {"whiteLists": "all"}}, "policy.bwList.whiteLists"),
        ({"mappingPolicy": {"path": 7}}, "policy.mappingPolicy.path"),
        ({"syncPaths": [""]}, "policy.syncPaths"),
        ({"uploadPolicy": []}, "policy.uploadPolicy"),
    ],
)
def test_bad_policies_are_refused_naming_the_field(policy: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(field)):
        check_syncs([{"context_id": "c", "path": "/d", "policy": policy}])


@pytest.mark.parametrize("path", ["rel", "/", "/proc", "/sys/x", "/a/../b", 3])
def test_bad_paths_are_refused_naming_the_field(path: object) -> None:
    with pytest.raises(InvalidArgument, match=r"context_syncs\[0\]\.path"):
        check_syncs([{"context_id": "c", "path": path}])


def test_overlapping_paths_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="overlaps"):
        check_syncs([{"context_id": "a", "path": "/d"}, {"context_id": "b", "path": "/d/e"}])


def _member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, target
    return member


def test_the_agent_refuses_members_that_leave_the_folder() -> None:
    assert _unsafe_member(_member("a/b.txt"), set()) == ""
    assert _unsafe_member(_member("a/l", tarfile.SYMTYPE, "../b"), set()) == ""
    for member in (
        _member("/etc/passwd"),
        _member("../x"),
        _member("a/l", tarfile.SYMTYPE, "../../x"),
        _member("l", tarfile.SYMTYPE, "/etc"),
        _member("h", tarfile.LNKTYPE, "a/b.txt"),
        _member("dev", tarfile.CHRTYPE),
    ):
        assert _unsafe_member(member, set()), member.name
    assert _unsafe_member(_member("l/x"), {"l"})


def _tar_names(storage: LocalFolderStorage, sync: ContextSync) -> dict[str, bytes]:
    buffer = io.BytesIO()
    export_tar(storage, sync, buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isreg()}  # type: ignore[union-attr]


def test_archives_are_unpacked_on_download_without_escaping(tmp_path: Path) -> None:
    storage = LocalFolderStorage(tmp_path)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("inner/a.txt", "a")
        archive.writestr("../escape.txt", "no")
        archive.writestr("/abs.txt", "no")
    storage.put("ctx-x", "in/data.zip", [zipped.getvalue()])
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w:gz") as archive:
        content = b"t"
        member = tarfile.TarInfo("t.txt")
        member.size = len(content)
        archive.addfile(member, io.BytesIO(content))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    storage.put("ctx-x", "b.tar.gz", [tarred.getvalue()])
    storage.put("ctx-x", "broken.zip", [b"not a zip"])
    storage.put("ctx-x", "plain.txt", [b"p"])

    def sync(**policy: object) -> ContextSync:
        return check_sync({"context_id": "ctx-x", "path": "/d", "policy": {"extractPolicy": policy}}, "s")

    assert _tar_names(storage, sync()) == {
        "in/data/inner/a.txt": b"a",
        "b/t.txt": b"t",
        "broken.zip": b"not a zip",
        "plain.txt": b"p",
    }
    here = _tar_names(storage, sync(extractToCurrentFolder=True, deleteSrcFile=False))
    assert set(here) == {"in/inner/a.txt", "in/data.zip", "t.txt", "b.tar.gz", "broken.zip", "plain.txt"}
    assert set(_tar_names(storage, sync(extract=False))) == {
        "in/data.zip",
        "b.tar.gz",
        "broken.zip",
        "plain.txt",
    }


def test_lifecycles_remove_old_files_below_their_paths(tmp_path: Path) -> None:
    storage = LocalFolderStorage(tmp_path / "contexts")
    rules = RecycleRules(Store(f"sqlite:///{tmp_path / 'cove.db'}").engine)
    for path in ("logs/old.txt", "logs/new.txt", "keep/old.txt"):
        storage.put("ctx-r", path, [b"x"])
    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    for path in ("logs/old.txt", "keep/old.txt"):
        os.utime(tmp_path / "contexts" / "ctx-r" / path, (old, old))
    rules.set("ctx-r", 1, ("logs",))
    assert rules.sweep(storage, datetime.now(UTC)) == 1
    assert {f.name for f in storage.list("ctx-r", "logs")} == {"new.txt"}
    assert {f.name for f in storage.list("ctx-r", "keep")} == {"old.txt"}
    rules.set("ctx-r", 0, ("",))  # Lifecycle_Forever
    os.utime(tmp_path / "contexts" / "ctx-r" / "logs" / "new.txt", (old, old))
    assert rules.sweep(storage, datetime.now(UTC)) == 0


def test_coves_sdk_and_the_official_sdk_send_policies_the_server_reads_alike() -> None:
    from agentbay import SyncPolicy as OfficialPolicy

    from cove import BWList, SyncPolicy, UploadPolicy, UploadStrategy, WhiteList

    def read(policy: object) -> ContextSync:
        return check_sync({"context_id": "c", "path": "/d", "policy": policy}, "s")

    official = json.loads(json.dumps(OfficialPolicy(), default=lambda part: part.__dict__()))
    assert read(SyncPolicy().to_json()) == read(official) == read(None)
    periodic = SyncPolicy(
        upload_policy=UploadPolicy(upload_strategy=UploadStrategy.PERIODIC_UPLOAD, period=5),
        bw_list=BWList([WhiteList(path="/a", exclude_paths=["*.tmp"])]),
    )
    sync = read(periodic.to_json())
    assert sync.periodic and sync.period_minutes == 5 and sync.admits("a/b") and not sync.admits("a/b.tmp")


@pytest.mark.parametrize(
    "policy",
    [
        None,
        SDK_DEFAULT,
        {
            "uploadPolicy": {"autoUpload": False, "uploadStrategy": "PERIODIC_UPLOAD", "period": 0.5},
            "downloadPolicy": {"downloadStrategy": "DownloadSync"},
            "deletePolicy": {"syncLocalFile": False},
            "extractPolicy": {"extract": False, "deleteSrcFile": False, "extractToCurrentFolder": True},
            "recyclePolicy": {"lifecycle": "Lifecycle_3Days", "paths": ["/logs", "tmp/"]},
            "bwList": {
                "whiteLists": [
                    {"path": "/Default", "excludePaths": ["/Default/Cache", "*.log"]},
                    {"path": r"/data/.*\.csv", "isPathRegex": True},
                ]
            },
            "mappingPolicy": {"path": "C:\\Users\\me\\data"},
        },
    ],
)
def test_the_reported_policy_reads_back_as_the_same_sync(policy: dict[str, object] | None) -> None:
    """list_bindings (DescribeSessionContexts) reports `sync_policy()`: every part, read back alike."""
    sync = check_sync({"context_id": "c", "path": "/d", "policy": policy}, "s")
    reported = sync.sync_policy()
    assert set(reported) == {
        "uploadPolicy",
        "downloadPolicy",
        "deletePolicy",
        "extractPolicy",
        "recyclePolicy",
        "bwList",
        "mappingPolicy",
    }
    again = check_sync({"context_id": "c", "path": "/d", "policy": json.dumps(reported)}, "s")
    assert again == sync
    assert (again.mapping_path, again.download_strategy) == (sync.mapping_path, sync.download_strategy)


def test_an_archive_bomb_stops_at_its_allowance_and_goes_in_as_it_is(tmp_path: Path) -> None:
    """A small .zip or .tar.gz of zeros: the host stops spooling at the limit, even if headers lie."""
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("small.txt", "ok")
        archive.writestr("zeros", b"\0" * (8 << 20))
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w:gz") as archive:
        member = tarfile.TarInfo("zeros")
        member.size = 8 << 20
        archive.addfile(member, io.BytesIO(b"\0" * member.size))
    for name, data in (("bomb.zip", zipped.getvalue()), ("bomb.tar.gz", tarred.getvalue())):
        assert len(data) < 64 << 10
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            assert not archives.add_members(io.BytesIO(data), name, "bomb", tar, lambda _: True, 1 << 20)
        out.seek(0)
        with tarfile.open(fileobj=out) as tar:
            assert all(m.size <= 1 << 20 for m in tar.getmembers())
        with tarfile.open(fileobj=io.BytesIO(), mode="w") as tar:
            assert archives.add_members(io.BytesIO(data), name, "bomb", tar, lambda _: True)


def test_an_encrypted_zip_in_a_context_is_downloaded_as_it_is(tmp_path: Path) -> None:
    """zipfile raises RuntimeError for a member that needs a password; the download must not fail."""
    storage = LocalFolderStorage(tmp_path)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("locked.txt", "ciphertext")
    data = bytearray(zipped.getvalue())
    for header, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set bit 0, "encrypted"
        data[data.index(header) + flags_at] |= 0x1
    storage.put("ctx-z", "secret.zip", [bytes(data)])
    sync = check_sync({"context_id": "ctx-z", "path": "/d", "policy": {}}, "s")
    assert _tar_names(storage, sync) == {"secret.zip": bytes(data)}


def _tar_of(files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    buffer.seek(0)
    return buffer


def test_archive_mode_keeps_the_folder_as_one_zip_and_restores_it(tmp_path: Path) -> None:
    policy = {"uploadPolicy": {"uploadMode": "Archive", "archiveExcludePaths": ["keep"]}}
    sync = check_sync({"context_id": "ctx-a", "path": "/data/work", "policy": policy}, "s")
    assert sync.archive and sync.archive_excludes == ("keep",)
    assert sync.sync_policy()["uploadPolicy"]["archiveExcludePaths"] == ["keep"]
    assert ContextSync.from_row({"policy": sync.policy_json()}) == sync
    storage = LocalFolderStorage(tmp_path)
    storage.put("ctx-a", "old.txt", [b"stored one by one before"])
    files = {"a.txt": b"a", "sub/b.txt": b"b" * 5000, "keep/c.txt": b"c"}
    report = import_tar(storage, sync, _tar_of(files))
    assert report.written == 2
    top = sorted(entry.name for entry in storage.list("ctx-a", "/"))
    assert top == ["keep", ARCHIVE_NAME], "old.txt is in no upload: removed"
    _, chunks = storage.open_download("ctx-a", ARCHIVE_NAME)
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as zipped:
        assert sorted(zipped.namelist()) == ["a.txt", "sub/b.txt"]
    no_extract = check_sync(
        {"context_id": "ctx-a", "path": "/d", "policy": {**policy, "extractPolicy": {"extract": False}}}, "s"
    )
    assert _tar_names(storage, no_extract) == files, "restored into the folder's top, whatever extract says"


def test_archive_exclude_paths_need_archive_mode_and_stay_inside() -> None:
    for upload, message in (
        ({"archiveExcludePaths": ["x"]}, "only with uploadMode Archive"),
        ({"uploadMode": "Archive", "archiveExcludePaths": ["../x"]}, "'..'"),
        ({"uploadMode": "Archive", "archiveExcludePaths": "x"}, "must be a list"),
    ):
        with pytest.raises(InvalidArgument, match=re.escape(message)):
            check_sync({"context_id": "c", "path": "/d", "policy": {"uploadPolicy": upload}}, "s")


@pytest.mark.parametrize("path", ["/", "/etc", "/usr/local/x", "/proc/1", "/.cove/run"])
def test_system_folders_are_refused_by_name(path: str) -> None:
    with pytest.raises(InvalidArgument, match="is a system folder"):
        check_sync({"context_id": "c", "path": path}, "s")


@pytest.mark.parametrize("path", ["/home/wuying/data", "/data/x", "/tmp/a", "/opt/work", "/var/data"])
def test_other_absolute_folders_are_accepted(path: str) -> None:
    assert check_sync({"context_id": "c", "path": path}, "s").path == path


def test_missing_folders_are_made_for_the_user_and_links_refused(tmp_path: Path) -> None:
    owner = (os.getuid(), os.getgid())
    make_user_folder(tmp_path, "/home/wuying/data", owner)
    assert (tmp_path / "home/wuying/data").is_dir()
    assert (tmp_path / "home/wuying/data").stat().st_mode & 0o777 == 0o755
    make_user_folder(tmp_path, "/home/wuying/data", owner)  # there already: nothing to do
    (tmp_path / "outside").mkdir()
    (tmp_path / "home/link").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidArgument, match="symbolic link"):
        make_user_folder(tmp_path, "/home/link/x", owner)
    assert not (tmp_path / "outside/x").exists()
