"""Context sync input: paths and SyncPolicy JSON (contexts/sync.py), and the agent's unpack checks."""

from __future__ import annotations

import json
import tarfile

import pytest

from cove.agent.transfers import _unsafe_member
from cove.contexts.sync import NotImplementedPolicy, check_sync, check_syncs
from cove.errors import InvalidArgument

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
        {"uploadPolicy": {"uploadStrategy": "PeriodicUpload", "period": 30}},
        {"uploadPolicy": {"uploadMode": "Archive"}},
        {"extractPolicy": {"extract": False}},
        {"bwList": {"whiteLists": [{"path": "/data", "excludePaths": []}]}},
        {"recyclePolicy": {"lifecycle": "Lifecycle_1Day", "paths": [""]}},
        {"mappingPolicy": {"path": "C:\\Users"}},
    ],
)
def test_what_is_not_implemented_is_refused(policy: dict[str, object]) -> None:
    with pytest.raises(NotImplementedPolicy, match="not supported"):
        check_sync({"context_id": "c", "path": "/d", "policy": policy}, "s")


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
