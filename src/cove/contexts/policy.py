"""A context sync's checked settings, from AgentBay's SyncPolicy in its camelCase JSON.

Every part of the SDK's SyncPolicy is read with AgentBay's names and defaults (`uploadPolicy`,
`downloadPolicy`, `deletePolicy`, `extractPolicy`, `recyclePolicy`, `bwList`, `mappingPolicy`).
Bad values answer 400 naming the field; values Cove cannot honour (uploads after each file close,
) answer 501 rather than being ignored. Paths in a policy are relative to the
synced folder (a leading "/" is its top) and may not leave it.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass, field
from typing import Any

from cove.contexts.file_filter import WhiteList, check_relative, check_white_lists
from cove.errors import CoveError, InvalidArgument

MAX_SYNCS = 16
SYSTEM_FOLDERS = (
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/boot",
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/.cove",
)
"""Folders (and what is below them) a sync may not use: the kernel's, the system's, and Cove's own.
Any other absolute path works; its missing folders are made for the session user."""
RELEASE = "UploadBeforeResourceRelease"
PERIODIC = "PeriodicUpload"
UPLOAD_STRATEGIES = {RELEASE: RELEASE, PERIODIC: PERIODIC, "PERIODIC_UPLOAD": PERIODIC}
"""Accepted uploadStrategy values; older SDKs spelled the periodic one PERIODIC_UPLOAD."""
DOWNLOAD_STRATEGIES = ("DownloadAsync", "DownloadSync")
DEFAULT_PERIOD_MINUTES = 30.0
MIN_PERIOD_MINUTES = 1 / 60
MAX_PERIOD_MINUTES = 7 * 24 * 60.0
LIFECYCLE_DAYS = {
    "Lifecycle_1Day": 1,
    "Lifecycle_3Days": 3,
    "Lifecycle_5Days": 5,
    "Lifecycle_10Days": 10,
    "Lifecycle_15Days": 15,
    "Lifecycle_30Days": 30,
    "Lifecycle_90Days": 90,
    "Lifecycle_180Days": 180,
    "Lifecycle_360Days": 360,
    "Lifecycle_Forever": 0,
}
"""AgentBay's lifecycles, as days a context file is kept after its last change (0: forever)."""
_PARTS = {
    "uploadPolicy": ("autoUpload", "uploadStrategy", "uploadMode", "period", "archiveExcludePaths"),
    "downloadPolicy": ("autoDownload", "downloadStrategy"),
    "deletePolicy": ("syncLocalFile",),
    "extractPolicy": ("extract", "deleteSrcFile", "extractToCurrentFolder"),
    "recyclePolicy": ("lifecycle", "paths"),
    "bwList": ("whiteLists",),
    "mappingPolicy": ("path",),
}


class NotImplementedPolicy(CoveError):
    code = "NotSupported"
    http_status = 501


@dataclass(frozen=True)
class ContextSync:
    """One checked sync of a session; stored as JSON in its row (`policy_json`, `from_row`)."""

    context_id: str
    path: str
    auto_download: bool = True
    auto_upload: bool = True
    sync_deletions: bool = True
    periodic: bool = False
    """uploadStrategy PeriodicUpload: every `period_minutes` while running, and before release."""
    period_minutes: float = DEFAULT_PERIOD_MINUTES
    extract: bool = True
    delete_archive: bool = True
    extract_here: bool = False
    lifecycle: str = "Lifecycle_Forever"
    recycle_paths: tuple[str, ...] = ("",)
    archive: bool = False
    """uploadMode Archive: the folder's files are kept in the context as one zip (sync.py)."""
    archive_excludes: tuple[str, ...] = ()
    """archiveExcludePaths: files at or below these (relative) paths are kept one by one."""
    white_lists: tuple[WhiteList, ...] = ()
    """Empty: every file; otherwise only files some white list admits (file_filter.py)."""
    mapping_path: str = field(default="", compare=False)
    """AgentBay's mappingPolicy.path: another name of the folder when listing the context's files
    (ContextService.context_path); the files follow the sync to any path without it."""
    download_strategy: str = field(default="DownloadAsync", compare=False)
    """Kept for reporting: both strategies download before create or bind answers."""

    def policy_json(self) -> str:
        return json.dumps(asdict(self))

    def sync_policy(self) -> dict[str, Any]:
        """This sync as AgentBay's SyncPolicy JSON (DescribeSessionContexts, list_bindings): every part,
        paths as checked, so that giving it back makes the same sync."""
        return {
            "uploadPolicy": {
                "autoUpload": self.auto_upload,
                "uploadStrategy": PERIODIC if self.periodic else RELEASE,
                "uploadMode": "Archive" if self.archive else "File",
                "period": self.period_minutes,
                **({"archiveExcludePaths": list(self.archive_excludes)} if self.archive_excludes else {}),
            },
            "downloadPolicy": {
                "autoDownload": self.auto_download,
                "downloadStrategy": self.download_strategy,
            },
            "deletePolicy": {"syncLocalFile": self.sync_deletions},
            "extractPolicy": {
                "extract": self.extract,
                "deleteSrcFile": self.delete_archive,
                "extractToCurrentFolder": self.extract_here,
            },
            "recyclePolicy": {"lifecycle": self.lifecycle, "paths": list(self.recycle_paths)},
            "bwList": {
                "whiteLists": [
                    {
                        "path": white.path,
                        "excludePaths": list(white.exclude_paths),
                        "isPathRegex": white.is_path_regex,
                        "isExcludeRegex": white.is_exclude_regex,
                    }
                    for white in self.white_lists or (WhiteList(),)
                ]
            },
            "mappingPolicy": {"path": self.mapping_path},
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ContextSync:
        saved = json.loads(row["policy"])
        saved["recycle_paths"] = tuple(saved.get("recycle_paths", ("",)))
        saved["archive_excludes"] = tuple(saved.get("archive_excludes", ()))
        saved["white_lists"] = tuple(
            WhiteList(**{**item, "exclude_paths": tuple(item["exclude_paths"])})
            for item in saved.get("white_lists", ())
        )
        return cls(**saved)

    def archived(self, relative: str) -> bool:
        """Whether the file at `relative` goes into the archive (uploadMode Archive, not excluded)."""
        return self.archive and not any(
            relative == excluded or relative.startswith(excluded + "/") for excluded in self.archive_excludes
        )

    def admits(self, relative: str) -> bool:
        """Whether the file at `relative` (from the synced folder's top, no leading "/") is synced."""
        return not self.white_lists or any(white.admits(relative) for white in self.white_lists)


def check_sync_path(raw: object, field: str) -> str:
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise InvalidArgument(f"{field} must be an absolute path in the session, such as '/home/user/data'")
    if "\0" in raw or ".." in raw.split("/"):
        raise InvalidArgument(f"{field} {raw!r} must not contain '..' or NUL characters")
    path = posixpath.normpath(raw)
    if path == "/" or any(path == root or path.startswith(root + "/") for root in SYSTEM_FOLDERS):
        raise InvalidArgument(
            f"{field} {raw!r} is a system folder; use any other absolute path (such as /home/user/data "
            f"or /data/work), not / nor below {', '.join(SYSTEM_FOLDERS)}"
        )
    return path


def _policy_object(raw: object, field: str) -> dict[str, Any]:
    policy = raw or {}
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            raise InvalidArgument(f"{field} is not valid JSON") from None
    if not isinstance(policy, dict):
        raise InvalidArgument(f"{field} must be a SyncPolicy object")
    for name in policy:
        if name not in _PARTS:
            raise InvalidArgument(f"{field}.{name} is not a part of SyncPolicy ({', '.join(_PARTS)})")
    return policy


def _part(policy: dict[str, Any], name: str, field: str) -> dict[str, Any]:
    """The part `name`, without null values (the SDK sends null for what it leaves unset)."""
    value = policy.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field}.{name} must be an object")
    for key in value:
        if key not in _PARTS[name]:
            raise InvalidArgument(
                f"{field}.{name}.{key} is not a setting of {name} ({', '.join(_PARTS[name])})"
            )
    return {key: item for key, item in value.items() if item is not None}


def _flag(part: dict[str, Any], key: str, default: bool, field: str) -> bool:
    value = part.get(key, default)
    if not isinstance(value, bool):
        raise InvalidArgument(f"{field}.{key} must be true or false")
    return value


def _choice(part: dict[str, Any], key: str, allowed: Any, default: str, field: str) -> str:
    value = part.get(key, default)
    if value not in allowed:
        raise InvalidArgument(f"{field}.{key} must be one of {', '.join(allowed)}, not {json.dumps(value)}")
    return str(value)


@dataclass(frozen=True)
class _Upload:
    auto: bool
    periodic: bool
    period: float
    archive: bool
    archive_excludes: tuple[str, ...]


def _upload(part: dict[str, Any], field: str) -> _Upload:
    strategy = part.get("uploadStrategy", RELEASE)
    if strategy == "UploadAfterFileClose":
        raise NotImplementedPolicy(
            f"{field}.uploadStrategy UploadAfterFileClose is not supported by Cove; use {PERIODIC} with "
            f"a short period, or {RELEASE}"
        )
    strategy = UPLOAD_STRATEGIES[_choice(part, "uploadStrategy", list(UPLOAD_STRATEGIES), RELEASE, field)]
    archive = _choice(part, "uploadMode", ("File", "Archive"), "File", field) == "Archive"
    excludes = part.get("archiveExcludePaths", [])
    if not isinstance(excludes, list):
        raise InvalidArgument(f"{field}.archiveExcludePaths must be a list of paths in the synced folder")
    if excludes and not archive:
        raise InvalidArgument(f"{field}.archiveExcludePaths applies only with uploadMode Archive")
    period = part.get("period", DEFAULT_PERIOD_MINUTES)
    if (
        isinstance(period, bool)
        or not isinstance(period, int | float)
        or not MIN_PERIOD_MINUTES <= period <= MAX_PERIOD_MINUTES
    ):
        raise InvalidArgument(
            f"{field}.period must be a number of minutes from {MIN_PERIOD_MINUTES:.4f} (one second) "
            f"to {MAX_PERIOD_MINUTES:.0f}, not {json.dumps(period)}"
        )
    return _Upload(
        _flag(part, "autoUpload", True, field),
        strategy == PERIODIC,
        float(period),
        archive,
        tuple(
            check_relative(path, f"{field}.archiveExcludePaths[{n}]", wildcards=False)
            for n, path in enumerate(excludes)
        ),
    )


def _recycle(part: dict[str, Any], field: str) -> tuple[str, tuple[str, ...]]:
    lifecycle = _choice(part, "lifecycle", list(LIFECYCLE_DAYS), "Lifecycle_Forever", field)
    paths = part.get("paths", [""])
    if not isinstance(paths, list) or not paths:
        raise InvalidArgument(f"{field}.paths must be a list of paths in the context ('' means all)")
    return lifecycle, tuple(
        check_relative(path, f"{field}.paths[{n}]", wildcards=False) for n, path in enumerate(paths)
    )


def _mapping(part: dict[str, Any], field: str) -> str:
    path = part.get("path", "")
    if not isinstance(path, str) or "\0" in path or len(path) > 1024:
        raise InvalidArgument(f"{field}.path must be a path of up to 1024 characters")
    return path


def check_sync(raw: object, field: str) -> ContextSync:
    """One sync from its JSON (`context_id`, `path`, `policy`: a SyncPolicy object or its JSON string)."""
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{field} must be an object with context_id, path and policy")
    context_id = raw.get("context_id")
    if not isinstance(context_id, str) or not context_id:
        raise InvalidArgument(f"{field}.context_id is required: the id of one of your contexts")
    path = check_sync_path(raw.get("path"), f"{field}.path")
    where = f"{field}.policy"
    policy = _policy_object(raw.get("policy"), where)
    upload = _upload(_part(policy, "uploadPolicy", where), f"{where}.uploadPolicy")
    download = _part(policy, "downloadPolicy", where)
    extract = _part(policy, "extractPolicy", where)
    lifecycle, recycle_paths = _recycle(_part(policy, "recyclePolicy", where), f"{where}.recyclePolicy")
    white_lists = _part(policy, "bwList", where).get("whiteLists", [])
    return ContextSync(
        context_id=context_id,
        path=path,
        auto_download=_flag(download, "autoDownload", True, f"{where}.downloadPolicy"),
        auto_upload=upload.auto,
        sync_deletions=_flag(
            _part(policy, "deletePolicy", where), "syncLocalFile", True, f"{where}.deletePolicy"
        ),
        periodic=upload.periodic,
        period_minutes=upload.period,
        archive=upload.archive,
        archive_excludes=upload.archive_excludes,
        extract=_flag(extract, "extract", True, f"{where}.extractPolicy"),
        delete_archive=_flag(extract, "deleteSrcFile", True, f"{where}.extractPolicy"),
        extract_here=_flag(extract, "extractToCurrentFolder", False, f"{where}.extractPolicy"),
        lifecycle=lifecycle,
        recycle_paths=recycle_paths,
        white_lists=check_white_lists(white_lists, f"{where}.bwList.whiteLists"),
        mapping_path=_mapping(_part(policy, "mappingPolicy", where), f"{where}.mappingPolicy"),
        download_strategy=_choice(
            download, "downloadStrategy", DOWNLOAD_STRATEGIES, "DownloadAsync", f"{where}.downloadPolicy"
        ),
    )


def check_syncs(raw: object, field: str = "context_syncs") -> list[ContextSync]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidArgument(f"{field} must be a list of {{context_id, path, policy}}")
    if len(raw) > MAX_SYNCS:
        raise InvalidArgument(f"{field} has more than {MAX_SYNCS} items")
    syncs = [check_sync(item, f"{field}[{n}]") for n, item in enumerate(raw)]
    paths = [sync.path for sync in syncs]
    for n, path in enumerate(paths):
        if any(path == other or path.startswith(other + "/") for m, other in enumerate(paths) if m != n):
            raise InvalidArgument(f"{field}[{n}].path {path!r} overlaps another sync's path")
    return syncs
