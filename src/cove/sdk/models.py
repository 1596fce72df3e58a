"""The SDK's parameter and result objects, named and shaped as in AgentBay's Python SDK.

Results never raise for a failed call: `success` is False and `error_message`, `code` and
`http_status_code` say why, so code written against AgentBay ports by changing one import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Generic, TypeVar

SessionT = TypeVar("SessionT")

SESSION_STATUSES = ("RUNNING", "PAUSING", "PAUSED", "RESUMING", "DELETING", "DELETED")


@dataclass(kw_only=True)
class Config:
    """Where the server is and how long to wait for it.

    `endpoint` is a URL such as "http://127.0.0.1:9000"; one without a scheme is taken as HTTPS,
    as AgentBay does. Unset fields fall back to COVE_ENDPOINT / AGENTBAY_ENDPOINT and 60 s.
    """

    endpoint: str | None = None
    timeout_ms: int | None = None
    region_id: str | None = None


@dataclass(kw_only=True)
class LifecyclePolicy:
    """AgentBay's lifecycle policy, in MINUTES: released after `idle_release_timeout` minutes unused
    (default 5) or `max_runtime` minutes after creation (default 30); `manual_release` disables both."""

    idle_release_timeout: int | None = None
    max_runtime: int | None = None
    manual_release: bool = False

    def seconds(self) -> tuple[int, int]:
        """(idle timeout, maximum lifetime) in seconds; 0 means none."""
        if self.manual_release:
            return 0, 0
        return (self.idle_release_timeout or 5) * 60, (self.max_runtime or 30) * 60


class UploadStrategy(Enum):
    UPLOAD_BEFORE_RESOURCE_RELEASE = "UploadBeforeResourceRelease"
    PERIODIC_UPLOAD = "PeriodicUpload"
    """Every `UploadPolicy.period` minutes while the session runs, and before it is released."""


class UploadMode(Enum):
    FILE = "File"
    ARCHIVE = "Archive"
    """Refused by Cove (NotSupported): files are stored one by one."""


class DownloadStrategy(Enum):
    """Either way, Cove's create returns once the files are in the session."""

    DOWNLOAD_ASYNC = "DownloadAsync"
    DOWNLOAD_SYNC = "DownloadSync"


class Lifecycle(Enum):
    """How long a context's files are kept after their last change (RecyclePolicy)."""

    LIFECYCLE_1DAY = "Lifecycle_1Day"
    LIFECYCLE_3DAYS = "Lifecycle_3Days"
    LIFECYCLE_5DAYS = "Lifecycle_5Days"
    LIFECYCLE_10DAYS = "Lifecycle_10Days"
    LIFECYCLE_15DAYS = "Lifecycle_15Days"
    LIFECYCLE_30DAYS = "Lifecycle_30Days"
    LIFECYCLE_90DAYS = "Lifecycle_90Days"
    LIFECYCLE_180DAYS = "Lifecycle_180Days"
    LIFECYCLE_360DAYS = "Lifecycle_360Days"
    LIFECYCLE_FOREVER = "Lifecycle_Forever"


@dataclass
class UploadPolicy:
    """AgentBay's UploadPolicy: when the folder is written into the context."""

    auto_upload: bool = True
    upload_strategy: UploadStrategy = UploadStrategy.UPLOAD_BEFORE_RESOURCE_RELEASE
    upload_mode: UploadMode = UploadMode.FILE
    period: float = 30
    """Minutes between uploads with PERIODIC_UPLOAD (Cove takes fractions, down to one second)."""


@dataclass
class DownloadPolicy:
    """AgentBay's DownloadPolicy: unpack the context into the folder when the session is created."""

    auto_download: bool = True
    download_strategy: DownloadStrategy = DownloadStrategy.DOWNLOAD_ASYNC


@dataclass
class DeletePolicy:
    """AgentBay's DeletePolicy: files deleted from the folder are removed from the context on upload."""

    sync_local_file: bool = True


@dataclass
class ExtractPolicy:
    """AgentBay's ExtractPolicy: archives in the context are unpacked into the folder on download."""

    extract: bool = True
    delete_src_file: bool = True
    extract_current_folder: bool = False


@dataclass
class RecyclePolicy:
    """AgentBay's RecyclePolicy: the context's files below `paths` ("" is all) are deleted
    `lifecycle` after their last change."""

    lifecycle: Lifecycle = Lifecycle.LIFECYCLE_FOREVER
    paths: list[str] = field(default_factory=lambda: [""])


@dataclass
class WhiteList:
    """Files synced: those at or below `path` (relative to the synced folder), except `exclude_paths`
    (wildcards allowed); either may be a regular expression (docs/contexts.md)."""

    path: str = ""
    exclude_paths: list[str] = field(default_factory=list)
    is_path_regex: bool = False
    is_exclude_regex: bool = False


@dataclass
class BWList:
    white_lists: list[WhiteList] = field(default_factory=list)


@dataclass
class MappingPolicy:
    """Accepted and without effect on Cove: a context's files are stored relative to the synced
    folder, so they follow it to any path already."""

    path: str = ""


@dataclass
class SyncPolicy:
    """AgentBay's SyncPolicy, every part with its names and defaults."""

    upload_policy: UploadPolicy | None = None
    download_policy: DownloadPolicy | None = None
    delete_policy: DeletePolicy | None = None
    extract_policy: ExtractPolicy | None = None
    recycle_policy: RecyclePolicy | None = None
    bw_list: BWList | None = None
    mapping_policy: MappingPolicy | None = None

    @classmethod
    def default(cls) -> SyncPolicy:
        return cls()

    def to_json(self) -> dict[str, Any]:
        """The camelCase JSON of AgentBay's wire (and Cove's `context_syncs[].policy`)."""
        upload, download = self.upload_policy or UploadPolicy(), self.download_policy or DownloadPolicy()
        extract, recycle = self.extract_policy or ExtractPolicy(), self.recycle_policy or RecyclePolicy()
        white_lists = (self.bw_list or BWList([WhiteList()])).white_lists
        return {
            "uploadPolicy": {
                "autoUpload": upload.auto_upload,
                "uploadStrategy": upload.upload_strategy.value,
                "uploadMode": upload.upload_mode.value,
                "period": upload.period,
            },
            "downloadPolicy": {
                "autoDownload": download.auto_download,
                "downloadStrategy": download.download_strategy.value,
            },
            "deletePolicy": {"syncLocalFile": (self.delete_policy or DeletePolicy()).sync_local_file},
            "extractPolicy": {
                "extract": extract.extract,
                "deleteSrcFile": extract.delete_src_file,
                "extractToCurrentFolder": extract.extract_current_folder,
            },
            "recyclePolicy": {"lifecycle": recycle.lifecycle.value, "paths": recycle.paths},
            "bwList": {
                "whiteLists": [
                    {
                        "path": white.path,
                        "excludePaths": white.exclude_paths,
                        "isPathRegex": white.is_path_regex,
                        "isExcludeRegex": white.is_exclude_regex,
                    }
                    for white in white_lists
                ]
            },
            "mappingPolicy": {"path": (self.mapping_policy or MappingPolicy()).path},
        }


@dataclass
class ContextSync:
    """A context synced into a session at `path` (absolute, in the session): AgentBay's ContextSync."""

    context_id: str
    path: str
    policy: SyncPolicy | None = None

    @classmethod
    def new(cls, context_id: str, path: str, policy: SyncPolicy | None = None) -> ContextSync:
        return cls(context_id, path, policy)

    def to_json(self) -> dict[str, Any]:
        return {
            "context_id": self.context_id,
            "path": self.path,
            "policy": (self.policy or SyncPolicy()).to_json(),
        }


@dataclass
class NetworkPolicy:
    """What a session may reach: `mode` "egress" or "none" (None: the server's default), and
    destinations as CIDRs, addresses, domain names or wildcards (`*.example.com`). Allow wins
    over deny; what neither lists is allowed, so `deny_out=["0.0.0.0/0"]` makes `allow_out` an allow-list."""

    mode: str | None = None
    allow_out: list[str] = field(default_factory=list)
    deny_out: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The wire's policy object; without a mode the server applies its default."""
        body: dict[str, Any] = {"allow_out": list(self.allow_out), "deny_out": list(self.deny_out)}
        if self.mode is not None:
            body["mode"] = self.mode
        return body


@dataclass
class Screen:
    """Cove's addition: the size of a session's desktop in pixels, which the computer tools and
    screenshots follow; width 320 to 7680, height 240 to 4320."""

    width: int = 1280
    height: int = 800

    def to_json(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height}


class AgentBayError(Exception):
    """Raised where AgentBay's SDK raises rather than answering a failed result
    (`computer.beta_take_screenshot`), so `except AgentBayError` ports too."""


class BrowserError(AgentBayError):
    """The session's browser failed (`session.browser`); as AgentBay's BrowserError, the one call
    family that raises rather than answering a result."""


BROWSER_TYPES = ("chrome", "chromium")


@dataclass
class BrowserViewport:
    width: int = 1920
    height: int = 1080

    def to_map(self) -> dict[str, int]:
        return {"width": self.width, "height": self.height}


@dataclass
class BrowserScreen(BrowserViewport):
    """The size `window.screen` reports (accepted; it is the session's screen, docs/browser.md)."""


@dataclass(kw_only=True)
class BrowserOption:
    """How the session's browser starts, as AgentBay's BrowserOption; docs/browser.md says which
    fields Cove honours (viewport, user_agent, cmd_args, default_navigate_url, extension_path,
    browser_type) and which it accepts and ignores."""

    use_stealth: bool = False
    user_agent: str | None = None
    viewport: BrowserViewport | None = None
    screen: BrowserScreen | None = None
    fingerprint: Any = None
    fingerprint_persistent: bool = False
    solve_captchas: bool = False
    proxies: list[Any] | None = None
    extension_path: str = "/tmp/extensions/"
    cmd_args: list[str] | None = None
    default_navigate_url: str | None = None
    browser_type: str | None = None

    def __post_init__(self) -> None:
        if self.browser_type is not None and self.browser_type not in BROWSER_TYPES:
            raise ValueError("browser_type must be 'chrome' or 'chromium'")
        if self.cmd_args is not None and not isinstance(self.cmd_args, list):
            raise ValueError("cmd_args must be a list of command-line switches")
        if not self.extension_path:
            raise ValueError("extension_path must be a non-empty string")

    def to_map(self) -> dict[str, Any]:
        """The keys AgentBay's SDK sends in InitBrowser's BrowserOption, as Cove's API takes them."""
        mapped: dict[str, Any] = {"useStealth": self.use_stealth, "solveCaptchas": self.solve_captchas}
        optional = {
            "userAgent": self.user_agent,
            "viewport": self.viewport.to_map() if self.viewport else None,
            "screen": self.screen.to_map() if self.screen else None,
            "fingerprintPersistPath": "/tmp/browser_fingerprint/fingerprint.json"
            if self.fingerprint_persistent
            else None,
            "proxies": self.proxies,
            "extensionPath": self.extension_path,
            "cmdArgs": self.cmd_args,
            "defaultNavigateUrl": self.default_navigate_url,
            "browserType": self.browser_type,
        }
        return mapped | {key: value for key, value in optional.items() if value is not None}


@dataclass(kw_only=True)
class CreateSessionParams:
    """What to create: AgentBay's `labels`, `image_id`, `idle_release_timeout` (SECONDS, as in
    AgentBay) and `lifecycle_policy` (minutes), plus Cove's per-session resource limits.

    Without either timeout the server's defaults apply (out of the box: none, the session lives
    until it is deleted).
    """

    labels: dict[str, str] | None = None
    image_id: str | None = None
    memory_mb: int | None = None
    cpus: float | None = None
    pids: int | None = None
    disk_mb: int | None = None
    idle_release_timeout: int | None = None
    lifecycle_policy: LifecyclePolicy | None = None
    context_syncs: list[ContextSync] = field(default_factory=list)
    """Contexts unpacked into their paths before create returns, uploaded back before release."""
    network: NetworkPolicy | None = None
    """Cove's addition: what the session may reach; None leaves it to the server's default."""
    screen: Screen | None = None
    """Cove's addition: the desktop's size; None is 1280x800."""
    env: dict[str, str] | None = None
    """Cove's addition: environment variables every command, process and kernel starts with."""
    runtime: str | None = None
    """Cove's addition: what runs the sandbox, "runc" or "gvisor"; None: the server's default."""
    from_snapshot: str | None = None
    """Cove's addition: a snapshot's id; the session starts from it (its image, limits, processes,
    memory and files)."""
    idle_action: str | None = None
    """Cove's addition: what becomes of the session once idle past its idle timeout, "delete" or
    "pause" (a paused session is resumed by `beta_resume`, or by a call when the server auto-resumes);
    None: the server's default."""


@dataclass(kw_only=True)
class SessionData:
    """A session as the server last described it."""

    session_id: str
    status: str = ""
    status_reason: str = ""
    image_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    screen: dict[str, int] = field(default_factory=dict)
    """The desktop's width and height in pixels."""
    runtime: str = ""
    """What runs the sandbox: "runc" or "gvisor"."""
    resource_url: str = ""
    created_at: str = ""
    updated_at: str = ""
    idle_timeout_s: int = 0
    idle_action: str = ""
    """What becomes of it once idle past its idle timeout: "delete" or "pause"."""
    max_lifetime_s: int = 0
    last_active_at: str = ""


@dataclass(kw_only=True)
class SessionInfo:
    """AgentBay's SessionInfo; the desktop fields stay empty on Cove, which adds what it knows."""

    session_id: str = ""
    resource_url: str = ""
    app_id: str = ""
    auth_code: str = ""
    connection_properties: str = ""
    resource_id: str = ""
    resource_type: str = ""
    ticket: str = ""
    image_id: str = ""
    status: str = ""
    hostname: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    screen: dict[str, int] = field(default_factory=dict)
    created_at: str = ""


@dataclass(kw_only=True)
class ApiResponse:
    request_id: str = ""


@dataclass(kw_only=True)
class Result(ApiResponse):
    """What every call answers: success, or why not."""

    success: bool = False
    error_message: str = ""
    code: str = ""
    http_status_code: int = 0


@dataclass(kw_only=True)
class SessionResult(Result, Generic[SessionT]):
    session: SessionT | None = None


@dataclass(kw_only=True)
class SnapshotInfo:
    """A named snapshot of a gvisor session (Cove's addition)."""

    snapshot_id: str = ""
    name: str = ""
    source_session_id: str = ""
    image_id: str = ""
    size_bytes: int = 0
    created_at: str = ""


@dataclass(kw_only=True)
class SnapshotResult(Result):
    snapshot: SnapshotInfo | None = None


@dataclass(kw_only=True)
class SnapshotListResult(Result):
    snapshots: list[SnapshotInfo] = field(default_factory=list)


@dataclass(kw_only=True)
class SessionsResult(Result, Generic[SessionT]):
    """Sessions made by one call (a fork with a count), in order."""

    sessions: list[SessionT] = field(default_factory=list)


@dataclass(kw_only=True)
class SessionListResult(Result):
    """One page of sessions: `session_ids` as AgentBay has it, `sessions` with each one's details.

    `next_token` is the next page's number as a string, empty on the last page.
    """

    session_ids: list[str] = field(default_factory=list)
    sessions: list[SessionData] = field(default_factory=list)
    next_token: str = ""
    max_results: int = 0
    total_count: int = 0


@dataclass(kw_only=True)
class DeleteResult(Result):
    pass


@dataclass(kw_only=True)
class OperationResult(Result):
    data: Any = None


@dataclass(kw_only=True)
class SessionStatusResult(Result):
    status: str = ""


@dataclass(kw_only=True)
class SessionPauseResult(Result):
    """`status` is the session's status once the call is done: PAUSED on success."""

    status: str = ""


@dataclass(kw_only=True)
class SessionResumeResult(Result):
    """`status` is the session's status once the call is done: RUNNING on success."""

    status: str = ""


@dataclass(kw_only=True)
class SessionMetrics:
    """AgentBay's SessionMetrics (its names), plus Cove's `processes` and `cpu_seconds`.

    `cpu_used_pct` is a share of the session's CPU limit, measured over 0.1 s; memory and disk in
    bytes (disk_used: what the session wrote on top of its image); network in KiB, loopback included.
    """

    cpu_count: float = 0.0
    cpu_used_pct: float = 0.0
    cpu_seconds: float = 0.0
    mem_total: int = 0
    mem_used: int = 0
    disk_total: int = 0
    disk_used: int = 0
    processes: int = 0
    rx_rate_kbyte_per_s: float = 0.0
    tx_rate_kbyte_per_s: float = 0.0
    rx_used_kbyte: float = 0.0
    tx_used_kbyte: float = 0.0
    timestamp: str = ""


@dataclass(kw_only=True)
class SessionMetricsResult(Result):
    metrics: SessionMetrics | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class McpTool:
    """A tool the session serves; `server` is AgentBay's grouping, Cove serves them all as "cove"."""

    name: str
    server: str = "cove"
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class McpToolsResult(Result):
    tools: list[McpTool] = field(default_factory=list)


@dataclass(kw_only=True)
class McpToolResult(Result):
    """`data` is the text the tool answered; when the tool failed it is `error_message` too."""

    data: str = ""


@dataclass(kw_only=True)
class CommandResult(Result):
    """A command's outcome: success means it ran and exited 0; `output` is stdout then stderr."""

    output: str = ""
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    trace_id: str = ""
    timed_out: bool = False
    stdout_truncated_bytes: int = 0
    stderr_truncated_bytes: int = 0


@dataclass(kw_only=True)
class BoolResult(Result):
    data: bool | None = None


@dataclass(kw_only=True)
class FileInfoResult(Result):
    """`file_info` holds the tool's `key: value` lines, numbers and booleans already converted."""

    file_info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_file(self) -> bool:
        return bool(self.file_info.get("isFile", False))

    @property
    def is_directory(self) -> bool:
        return bool(self.file_info.get("isDirectory", False))

    @property
    def size(self) -> int:
        return int(self.file_info.get("size", 0))

    @property
    def permissions(self) -> str:
        return str(self.file_info.get("permissions", ""))


@dataclass(kw_only=True)
class DirectoryEntry:
    name: str
    is_directory: bool

    @property
    def is_file(self) -> bool:
        return not self.is_directory


@dataclass(kw_only=True)
class DirectoryListResult(Result):
    entries: list[DirectoryEntry] = field(default_factory=list)


@dataclass(kw_only=True)
class FileContentResult(Result):
    content: str = ""


@dataclass(kw_only=True)
class BinaryFileContentResult(Result):
    content: bytes = b""
    content_type: str | None = None
    size: int | None = None


@dataclass(kw_only=True)
class MultipleFileContentResult(Result):
    """`contents` maps each path to its text; a file that could not be read maps to its error."""

    contents: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class FileSearchResult(Result):
    matches: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class FileChangeEvent:
    event_type: str = ""
    """"create", "modify" or "delete"."""
    path: str = ""
    path_type: str = ""
    """"file" or "directory"."""


@dataclass(kw_only=True)
class FileChangeResult(Result):
    events: list[FileChangeEvent] = field(default_factory=list)
    raw_data: str = ""

    def has_changes(self) -> bool:
        return bool(self.events)

    def _files(self, event_type: str) -> list[str]:
        return [e.path for e in self.events if e.event_type == event_type and e.path_type == "file"]

    def get_modified_files(self) -> list[str]:
        return self._files("modify")

    def get_created_files(self) -> list[str]:
        return self._files("create")

    def get_deleted_files(self) -> list[str]:
        return self._files("delete")


@dataclass(kw_only=True)
class UploadResult(Result):
    """A streamed upload; the file exists in the session, complete, only when `success`."""

    path: str = ""
    bytes_sent: int = 0


@dataclass(kw_only=True)
class DownloadResult(Result):
    """A streamed download; `local_path` holds the whole file only when `success`."""

    path: str = ""
    local_path: str = ""
    bytes_received: int = 0


@dataclass(kw_only=True)
class ProcessResult(Result):
    """A background process started in the session: pass `process_id` to the other process calls."""

    process_id: str = ""
    pid: int = 0


@dataclass(kw_only=True)
class ProcessInfo:
    process_id: str
    pid: int
    command: str
    pty: bool
    running: bool
    exit_code: int | None
    started_at: str


@dataclass(kw_only=True)
class ProcessInfoListResult(Result):
    """`session.command.list_processes()`: the background processes started with `command.start`.

    (AgentBay's name ProcessListResult is the computer's list of app processes.)
    """

    processes: list[ProcessInfo] = field(default_factory=list)


@dataclass(kw_only=True)
class KillAllResult(Result):
    """What `session.command.kill_all()` ended: every process of the session but its agent."""

    killed: int = 0
    """How many processes were killed."""


@dataclass(kw_only=True)
class ProcessOutputResult(Result):
    """Output after the offsets asked for; pass the new offsets to the next call to stream."""

    stdout: str = ""
    stderr: str = ""
    stdout_offset: int = 0
    stderr_offset: int = 0
    running: bool = False
    exit_code: int | None = None
    stdout_skipped: int = 0
    stderr_skipped: int = 0


@dataclass(kw_only=True)
class ExecutionResult:
    """One result of a code cell, in each format it came in: images as base64 text, `json` as itself.

    The main result is the value of the cell's final expression; display() adds others.
    """

    text: str | None = None
    html: str | None = None
    markdown: str | None = None
    png: str | None = None
    jpeg: str | None = None
    svg: str | None = None
    json: Any = None
    latex: str | None = None
    chart: Any = None
    """A matplotlib figure's data: its `type` (line, scatter, bar, pie, box_and_whisker,
    composite_chart or unknown), `title` and `elements`, in E2B's shape (docs/tools.md)."""
    pdf: str | None = None
    """Cove's addition, as E2B names it: base64 text."""
    javascript: str | None = None
    """Cove's addition, as E2B names it."""
    is_main_result: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    """Cove's addition: formats without a field of their own, by mime type."""

    def formats(self) -> list[str]:
        """The formats it has, as AgentBay's ExecutionResult names them (and Cove's pdf, javascript)."""
        names = (
            "text",
            "html",
            "markdown",
            "png",
            "jpeg",
            "svg",
            "json",
            "latex",
            "chart",
            "pdf",
            "javascript",
        )
        return [name for name in names if getattr(self, name) is not None]


@dataclass(kw_only=True)
class ExecutionLogs:
    """What a cell printed, as the chunks it came in."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class ExecutionError:
    """The exception that ended a cell (or `TimeoutError`, `KernelDied`), with the cell's traceback."""

    name: str = ""
    value: str = ""
    traceback: str = ""


@dataclass(kw_only=True)
class EnhancedCodeExecutionResult(Result):
    """A code cell's outcome, as AgentBay's: `success` unless it raised, timed out or lost its kernel.

    Cove adds `kernel_restarted` (this call started a new kernel: earlier state is gone),
    `timed_out` and `kernel_died`.
    """

    execution_count: int | None = None
    execution_time: float = 0.0
    logs: ExecutionLogs = field(default_factory=ExecutionLogs)
    results: list[ExecutionResult] = field(default_factory=list)
    error: ExecutionError | None = None
    kernel_restarted: bool = False
    timed_out: bool = False
    kernel_died: bool = False

    @property
    def result(self) -> str:
        """The main result's text; else the first result's; else everything printed to stdout."""
        for item in self.results:
            if item.is_main_result and item.text:
                return item.text
        if self.results and self.results[0].text:
            return self.results[0].text
        return "".join(self.logs.stdout)


@dataclass(kw_only=True)
class Context:
    """A context: named persistent storage of this API key (AgentBay's `Context`)."""

    id: str
    name: str
    created_at: str | None = None
    last_used_at: str | None = None
    state: str = "available"


@dataclass(kw_only=True)
class ContextResult(Result):
    context_id: str = ""
    context: Context | None = None


@dataclass(kw_only=True)
class ContextListParams:
    """A page of `list`: `next_token` is the `next_token` of the page before."""

    max_results: int | None = None
    next_token: str | None = None
    session_id: str | None = None


@dataclass(kw_only=True)
class ContextListResult(Result):
    contexts: list[Context] = field(default_factory=list)
    next_token: str | None = None
    max_results: int | None = None
    total_count: int | None = None


@dataclass(kw_only=True)
class ContextFileEntry:
    """A file or folder of a context; `file_path` starts with "/"."""

    file_id: str
    file_name: str
    file_path: str
    file_type: str | None = None
    """"file" or "folder"."""
    gmt_create: str | None = None
    gmt_modified: str | None = None
    size: int | None = None
    status: str | None = None


@dataclass(kw_only=True)
class ContextFileListResult(Result):
    entries: list[ContextFileEntry] = field(default_factory=list)
    count: int | None = None
    """How many entries the folder has in all."""
    next_token: str | None = None


@dataclass(kw_only=True)
class FileUrlResult(Result):
    """A URL that needs no key, for an hour: PUT the file's bytes to it, or GET them (plain curl works)."""

    url: str = ""
    expire_time: int | None = None


@dataclass(kw_only=True)
class ClearContextResult(OperationResult):
    status: str | None = None
    context_id: str | None = None


@dataclass(kw_only=True)
class ContextStatusData:
    """The last download or upload task of one sync of a session (`session.context.info()`)."""

    context_id: str = ""
    path: str = ""
    error_message: str = ""
    status: str = ""
    """Pending, Running, Success or Failed."""
    start_time: int = 0
    finish_time: int = 0
    """Unix seconds; 0 while unfinished."""
    task_type: str = ""
    """upload or download."""


@dataclass(kw_only=True)
class ContextInfoResult(Result):
    context_status_data: list[ContextStatusData] = field(default_factory=list)


@dataclass(kw_only=True)
class ContextSyncResult(Result):
    """`success` only if every task of the sync succeeded."""


@dataclass(kw_only=True)
class ContextBindResult(Result):
    pass


@dataclass(kw_only=True)
class ContextBinding:
    """A context synced into a session; `policy` is its SyncPolicy as JSON text, as AgentBay's."""

    context_id: str = ""
    context_name: str = ""
    path: str = ""
    policy: str = ""
    bind_time: str = ""


@dataclass(kw_only=True)
class ContextBindingsResult(Result):
    bindings: list[ContextBinding] = field(default_factory=list)


@dataclass(kw_only=True)
class OSSClientResult(Result):
    """`client_config`: the endpoint and region `session.oss.env_init` keeps (never the keys)."""

    client_config: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class OSSUploadResult(Result):
    content: str = ""
    """What the upload did, such as "Upload success: 5 bytes from /home/user/a.txt to bucket/a.txt"."""


@dataclass(kw_only=True)
class OSSDownloadResult(Result):
    content: str = ""


@dataclass(kw_only=True)
class DeniedConnection:
    """A connection the session's policy refused; `name` is the host name asked for, if known."""

    destination: str
    port: int | None = None
    protocol: str = ""
    name: str | None = None
    at: str = ""
    """When, as ISO 8601 text (UTC)."""


@dataclass(kw_only=True)
class NetworkResult(Result):
    """A session's network: its policy (mode filled in), its address and gateway (None with mode
    none), and the connections refused: `denied_count` in all, `denied` the latest of them."""

    policy: NetworkPolicy | None = None
    address: str | None = None
    gateway: str | None = None
    denied_count: int = 0
    denied: list[DeniedConnection] = field(default_factory=list)


class MouseButton(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    MIDDLE = "middle"
    DOUBLE_LEFT = "double_left"
    """Click only: `drag_mouse` refuses it."""


class ScrollDirection(StrEnum):
    UP = "up"
    DOWN = "down"
    LEFT = "left"
    RIGHT = "right"


@dataclass(kw_only=True)
class Window:
    """A top-level window; its tool answers the title as `window_title`."""

    window_id: int = 0
    title: str = ""
    absolute_upper_left_x: int | None = None
    absolute_upper_left_y: int | None = None
    width: int | None = None
    height: int | None = None
    pid: int | None = None
    pname: str | None = None
    child_windows: list[Window] = field(default_factory=list)


@dataclass(kw_only=True)
class WindowListResult(Result):
    windows: list[Window] = field(default_factory=list)


@dataclass(kw_only=True)
class WindowInfoResult(Result):
    """`window` is None when no window is active."""

    window: Window | None = None


@dataclass(kw_only=True)
class InstalledApp:
    """An app from a .desktop file: `start_cmd` is what `computer.start_app` takes."""

    name: str = ""
    start_cmd: str = ""
    stop_cmd: str | None = None
    work_directory: str | None = None


@dataclass(kw_only=True)
class InstalledAppListResult(Result):
    data: list[InstalledApp] = field(default_factory=list)


@dataclass(kw_only=True)
class Process:
    """A process of an app on the desktop (`start_app`, `list_visible_apps`)."""

    pname: str = ""
    pid: int = 0
    cmdline: str | None = None


@dataclass(kw_only=True)
class ProcessListResult(Result):
    """AgentBay's name: the app processes `computer.start_app` and `list_visible_apps` answer."""

    data: list[Process] = field(default_factory=list)


@dataclass(kw_only=True)
class AppOperationResult(Result):
    pass


@dataclass(kw_only=True)
class ScreenshotResult(Result):
    """`computer.beta_take_screenshot()`: the image itself, decoded, with its size in pixels."""

    type: str = ""
    data: bytes = b""
    mime_type: str = ""
    width: int | None = None
    height: int | None = None


@dataclass(kw_only=True)
class BrowserStartResult(Result):
    """`port` is Chromium's port inside the session (unreachable from outside it); `cdp_url` the
    session's CDP WebSocket URL; `started` whether this call started the browser."""

    port: int | None = None
    started: bool = False
    cdp_url: str = ""
