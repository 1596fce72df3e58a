"""The blocking client: `AgentBay` and the `Session` objects it hands out.

Generated from async_client.py by scripts/unasync.py: edit that file, then run the script.
"""

from __future__ import annotations

import builtins
import functools
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Literal, overload

import httpx

from cove.sdk import (
    browser_calls,
    code_calls,
    computer_calls,
    context_calls,
    core,
    file_calls,
    network_calls,
    oss_calls,
    process_calls,
    session_context_calls,
    tool_calls,
)
from cove.sdk.core import ResultT
from cove.sdk.file_calls import DirectoryWatcher, LocalDownload, LocalUpload, ProgressCallback
from cove.sdk.models import (
    AppOperationResult,
    BinaryFileContentResult,
    BoolResult,
    BrowserError,
    BrowserOption,
    ClearContextResult,
    CommandResult,
    Config,
    Context,
    ContextBindingsResult,
    ContextBindResult,
    ContextFileListResult,
    ContextInfoResult,
    ContextListParams,
    ContextListResult,
    ContextResult,
    ContextSync,
    ContextSyncResult,
    CreateSessionParams,
    DeleteResult,
    DirectoryListResult,
    DownloadResult,
    EnhancedCodeExecutionResult,
    FileChangeEvent,
    FileChangeResult,
    FileContentResult,
    FileInfoResult,
    FileSearchResult,
    FileUrlResult,
    InstalledAppListResult,
    KillAllResult,
    McpToolResult,
    McpToolsResult,
    MouseButton,
    MultipleFileContentResult,
    NetworkPolicy,
    NetworkResult,
    OperationResult,
    OSSClientResult,
    OSSDownloadResult,
    OSSUploadResult,
    ProcessInfoListResult,
    ProcessListResult,
    ProcessOutputResult,
    ProcessResult,
    ScreenshotResult,
    ScrollDirection,
    SessionData,
    SessionListResult,
    SessionMetricsResult,
    SessionPauseResult,
    SessionResult,
    SessionResumeResult,
    SessionsResult,
    SessionStatusResult,
    SnapshotListResult,
    SnapshotResult,
    UploadResult,
    WindowInfoResult,
    WindowListResult,
)


class AgentBay(core.ClientBase):
    """A connection to a Cove server. Use it as a context manager (`with`), or call `close()`."""

    def __init__(self, api_key: str = "", cfg: Config | None = None) -> None:
        super().__init__(api_key, cfg)
        self._http = httpx.Client(**self._http_options())
        self.context = ContextService(self)

    def _send(
        self,
        call: core.Call[ResultT],
        content: Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ResultT:
        """Send the call's request (with `content` as a streamed body, for uploads) and read the answer."""
        if call.refusal:
            return call.refused()
        try:
            response = self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.body,
                content=content if content is not None else None,
                headers=headers,
                timeout=call.timeout_s or httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.HTTPError, OSError) as error:
            return call.transport_failure(error)
        return call.finish(response.status_code, response.headers, response.content)

    def _drive(self, plan: process_calls.CallPlan[ResultT]) -> ResultT:
        """Make a plan's calls one after another, each chosen from the result of the last."""
        try:
            call = next(plan)
            while True:
                call = plan.send(self._send(call))
        except StopIteration as done:
            result: ResultT = done.value
            return result

    def _download(self, download: LocalDownload) -> DownloadResult:
        call = download.call
        if call.refusal:
            return call.refused()
        try:
            with self._http.stream(call.method, call.path, params=call.params) as response:
                if response.status_code >= 400:
                    return call.finish(response.status_code, response.headers, response.read())
                download.open()
                try:
                    for chunk in response.iter_raw(file_calls.CHUNK_BYTES):
                        download.write(chunk)
                except BaseException:
                    download.abort()
                    raise
                return download.finish(response.headers)
        except (httpx.HTTPError, OSError) as error:
            return call.transport_failure(error)

    def _bind(self, data: SessionData) -> Session:
        return Session(self, data)

    def create(self, params: CreateSessionParams | None = None) -> SessionResult[Session]:
        """Create a session; it is RUNNING when this returns successfully."""
        return self._send(core.create_session(params or CreateSessionParams(), self._bind))

    def get(self, session_id: str) -> SessionResult[Session]:
        return self._send(core.get_session(session_id, self._bind))

    def list(
        self,
        labels: dict[str, str] | None = None,
        page: int | None = None,
        limit: int | None = None,
        status: str | None = None,
        image_id: str | None = None,
    ) -> SessionListResult:
        """One page of this key's sessions matching all `labels`; without `status`, the live ones."""
        return self._send(core.list_sessions(labels, page, limit, status, image_id))

    def list_snapshots(self) -> SnapshotListResult:
        """Cove's addition: this key's snapshots, oldest first, with their sizes on disk."""
        return self._send(core.list_snapshots())

    def delete_snapshot(self, snapshot_id: str) -> DeleteResult:
        """Cove's addition: delete a snapshot and its files."""
        return self._send(core.delete_snapshot(snapshot_id))

    def beta_pause(
        self, session: Session, timeout: float = 600, poll_interval: float = 2.0
    ) -> SessionPauseResult:
        """Pause `session` (see `Session.beta_pause`)."""
        return session.beta_pause(timeout, poll_interval)

    def beta_resume(
        self, session: Session, timeout: float = 600, poll_interval: float = 2.0
    ) -> SessionResumeResult:
        return session.beta_resume(timeout, poll_interval)

    def delete(self, session: Session | str, sync_context: bool = False, force: bool = False) -> DeleteResult:
        """Delete a session (or a session id); deleting one twice succeeds.

        With `sync_context`, every synced folder is uploaded first (whatever its policy), and the
        session is kept if that fails. Uploads that its policies ask for happen either way. With
        `force`, a failed upload keeps nothing: the session ends, the loss in its status reason.
        """
        session_id = session if isinstance(session, str) else session.session_id
        if sync_context:
            synced = self._send(session_context_calls.sync(session_id, None, None, "upload", 150, 500))
            refused = session_context_calls.delete_refused(session_id, synced)
            if refused is not None and not force:
                return refused
        return self._send(core.delete_session(session_id, force))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentBay:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class Session(core.SessionBase[AgentBay]):
    """A handle on one session, for calls that concern it alone."""

    def info(self) -> OperationResult:
        """`data` is a SessionInfo."""
        return self.agent_bay._send(core.session_info(self.session_id))

    def get_labels(self) -> OperationResult:
        """`data` is the labels as a dict."""
        return self.agent_bay._send(core.get_labels(self.session_id))

    def set_labels(self, labels: dict[str, str]) -> OperationResult:
        """Replace all labels; `data` is the labels now set."""
        return self.agent_bay._send(core.set_labels(self.session_id, labels))

    def get_status(self) -> SessionStatusResult:
        return self.agent_bay._send(core.get_status(self.session_id))

    def delete(self, sync_context: bool = False, force: bool = False) -> DeleteResult:
        return self.agent_bay.delete(self, sync_context, force)

    def keep_alive(self) -> OperationResult:
        """Count as activity now: the session's idle timeout starts again."""
        return self.agent_bay._send(core.keep_alive(self.session_id))

    def get_link(
        self, protocol_type: str | None = None, port: int | None = None, options: str | None = None
    ) -> OperationResult:
        """A URL reaching `port` (30100-30199) in the session with no API key; `data` is the URL.

        "https"/"http" give an HTTP link, "wss"/"ws" (the default) a WebSocket one; the scheme follows
        the server's. `options` is AgentBay's and not needed. No port: the browser's CDP URL, as
        `browser.get_endpoint_url()` answers it.
        """
        return self.agent_bay._send(core.session_link(self.session_id, protocol_type, port))

    def get_desktop_url(self, interactive: bool = False) -> OperationResult:
        """A URL of a page showing the session's desktop live in a browser, with no API key; `data`
        is the URL. View-only unless `interactive`, which lets the viewer use mouse and keyboard."""
        return self.agent_bay._send(core.session_desktop_url(self.session_id, interactive))

    def get_metrics(
        self, read_timeout: int | None = None, connect_timeout: int | None = None
    ) -> SessionMetricsResult:
        """CPU, memory, disk, processes and network, read by the server from the kernel's accounting."""
        return self.agent_bay._send(core.session_metrics(self.session_id))

    def beta_pause(self, timeout: float = 600, poll_interval: float = 2.0) -> SessionPauseResult:
        """Freeze the session: its processes, memory and files stay, it uses no CPU.

        Cove answers once the session is PAUSED, so `timeout` and `poll_interval` (AgentBay's, for
        its polling) are accepted and not needed. Tool calls answer 409 until `beta_resume`.
        """
        return self.agent_bay._send(core.pause_session(self.session_id))

    def beta_resume(self, timeout: float = 600, poll_interval: float = 2.0) -> SessionResumeResult:
        """Let a paused session run again, exactly where it stopped."""
        return self.agent_bay._send(core.resume_session(self.session_id))

    def snapshot(self, name: str) -> SnapshotResult:
        """Cove's addition: a named snapshot of this running gvisor session (processes, memory and
        files), which runs on; `CreateSessionParams(from_snapshot=...)` starts sessions from it."""
        return self.agent_bay._send(core.snapshot_session(self.session_id, name))

    @overload
    def beta_fork(self, count: None = None) -> SessionResult[Session]: ...

    @overload
    def beta_fork(self, count: int) -> SessionsResult[Session]: ...

    def beta_fork(self, count: int | None = None) -> SessionResult[Session] | SessionsResult[Session]:
        """Cove's addition: a new session with this gvisor session's processes, memory and files as
        they are now; each goes on on its own from then on. With `count` (1 to 10), that many from
        one checkpoint, as a list in `sessions`."""
        if count is None:
            return self.agent_bay._send(core.fork_session(self.session_id, self.agent_bay._bind))
        return self.agent_bay._send(core.fork_sessions(self.session_id, count, self.agent_bay._bind))

    def beta_pause_async(self) -> SessionPauseResult:
        """Ask for the pause; with Cove it is done when this returns, as with `beta_pause`."""
        return self.agent_bay._send(core.pause_session(self.session_id))

    def beta_resume_async(self) -> SessionResumeResult:
        return self.agent_bay._send(core.resume_session(self.session_id))

    @property
    def command(self) -> Command:
        return Command(self)

    @property
    def file_system(self) -> FileSystem:
        return FileSystem(self)

    fs = files = filesystem = file_system

    @property
    def code(self) -> Code:
        return Code(self)

    @property
    def oss(self) -> Oss:
        return Oss(self)

    @property
    def context(self) -> ContextManager:
        return ContextManager(self)

    @property
    def network(self) -> Network:
        return Network(self)

    @property
    def computer(self) -> Computer:
        return Computer(self)

    @functools.cached_property
    def browser(self) -> Browser:
        """One per session handle, as AgentBay's: it remembers whether `initialize` succeeded."""
        return Browser(self)

    def list_mcp_tools(self) -> McpToolsResult:
        return self.agent_bay._send(tool_calls.list_mcp_tools(self.session_id))

    def call_mcp_tool(self, tool_name: str, args: dict[str, Any]) -> McpToolResult:
        """Run any of the session's tools; `data` is its answer's text."""
        return self.agent_bay._send(tool_calls.call_mcp_tool(self.session_id, tool_name, args))


class Command:
    """`session.command`: shell commands, and background processes (optionally on a terminal)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._send = session.agent_bay._send
        self._id = session.session_id

    def execute_command(
        self,
        command: str,
        timeout_ms: int = tool_calls.DEFAULT_COMMAND_TIMEOUT_MS,
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        on_stdout: process_calls.OutputCallback | None = None,
        on_stderr: process_calls.OutputCallback | None = None,
    ) -> CommandResult:
        """Run `command` with bash as the session user; success means it exited 0.

        With `on_stdout` or `on_stderr`, output is handed to them as the command produces it.
        """
        if on_stdout or on_stderr:
            plan = process_calls.stream_command(
                self._id, command, timeout_ms, cwd, envs, on_stdout, on_stderr
            )
            return self.session.agent_bay._drive(plan)
        return self._send(tool_calls.execute_command(self._id, command, timeout_ms, cwd, envs))

    run = execute_command
    exec = execute_command

    def start(
        self,
        command: str,
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        pty: bool = False,
        cols: int | None = None,
        rows: int | None = None,
    ) -> ProcessResult:
        """Start `command` in the background (on a terminal with `pty=True`) and return at once."""
        return self._send(process_calls.start(self._id, command, cwd, envs, pty, cols, rows))

    def output(
        self, process_id: str, stdout_offset: int = 0, stderr_offset: int = 0, wait_ms: int = 0
    ) -> ProcessOutputResult:
        """Output after the offsets; waits up to `wait_ms` for some if there is none yet."""
        return self._send(process_calls.output(self._id, process_id, stdout_offset, stderr_offset, wait_ms))

    def send_stdin(self, process_id: str, data: str, eof: bool = False) -> BoolResult:
        return self._send(process_calls.write_stdin(self._id, process_id, data, eof))

    def resize(self, process_id: str, cols: int, rows: int) -> BoolResult:
        return self._send(process_calls.resize(self._id, process_id, cols, rows))

    def kill(self, process_id: str, signal: str = "KILL") -> BoolResult:
        """Send `signal` to the process and every process it started."""
        return self._send(process_calls.kill(self._id, process_id, signal))

    def kill_all(self) -> KillAllResult:
        """Kill every process of the session but its agent (which keeps serving); `killed` counts them."""
        return self._send(process_calls.kill_all(self._id))

    def wait(self, process_id: str, timeout_ms: int = tool_calls.DEFAULT_COMMAND_TIMEOUT_MS) -> CommandResult:
        return self._send(process_calls.wait(self._id, process_id, timeout_ms))

    def list_processes(self) -> ProcessInfoListResult:
        return self._send(process_calls.list_processes(self._id))


class Code:
    """`session.code`: Python cells in the session's kernel, which keeps its state between calls."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._send = session.agent_bay._send
        self._id = session.session_id

    def run_code(
        self,
        code: str,
        language: str = "python",
        timeout_s: int = code_calls.DEFAULT_CODE_TIMEOUT_S,
        stream_beta: bool = False,
        on_stdout: code_calls.OutputCallback | None = None,
        on_stderr: code_calls.OutputCallback | None = None,
        on_error: Callable[[Any], None] | None = None,
    ) -> EnhancedCodeExecutionResult:
        """Run a cell; `result` is the value of its final expression, `logs` what it printed.

        At `timeout_s` the cell is interrupted and the kernel keeps its state. AgentBay's
        `stream_beta` is accepted; the callbacks get the output once the cell has ended.
        """
        result = self._send(code_calls.run_code(self._id, code, language, timeout_s))
        return code_calls.hand_out(result, on_stdout, on_stderr, on_error)

    run = execute = run_code


class Oss:
    """`session.oss`: files between the session and an S3-compatible store, or a URL.

    The server moves the bytes (a session's network may be shut). `env_init` keeps the credentials in the
    server's memory for this session; call it before `upload` and `download`.
    """

    def __init__(self, session: Session) -> None:
        self._send = session.agent_bay._send
        self._id = session.session_id

    def env_init(
        self,
        access_key_id: str,
        access_key_secret: str,
        security_token: str = "",
        endpoint: str | None = None,
        region: str | None = None,
    ) -> OSSClientResult:
        """`endpoint`: an S3-compatible store's URL or host name (AWS S3 if none)."""
        call = oss_calls.env_init(
            self._id, access_key_id, access_key_secret, security_token, endpoint, region
        )
        return self._send(call)

    def upload(self, bucket: str, object: str, path: str) -> OSSUploadResult:
        """Upload the session's file at `path` to `object` in `bucket`."""
        return self._send(oss_calls.upload(self._id, bucket, object, path))

    def download(self, bucket: str, object: str, path: str) -> OSSDownloadResult:
        """Download `object` to `path` in the session (a path ending in / gets the object's name)."""
        return self._send(oss_calls.download(self._id, bucket, object, path))

    def upload_anonymous(self, url: str, path: str) -> OSSUploadResult:
        """PUT the session's file at `path` to `url`, such as a presigned upload URL."""
        return self._send(oss_calls.upload_anonymous(self._id, url, path))

    def download_anonymous(self, url: str, path: str) -> OSSDownloadResult:
        """GET `url`, such as a presigned download URL, into `path` in the session."""
        return self._send(oss_calls.download_anonymous(self._id, url, path))


class Network:
    """`session.network` (Cove's own): what the session may reach, and what it was refused."""

    def __init__(self, session: Session) -> None:
        self._send = session.agent_bay._send
        self._id = session.session_id

    def get(self) -> NetworkResult:
        """The policy (mode filled in), the session's address and gateway, and recent denials."""
        return self._send(network_calls.get(self._id))

    def update(self, policy: NetworkPolicy) -> NetworkResult:
        """Replace the whole policy; it applies from the session's next connection."""
        return self._send(network_calls.update(self._id, policy))


class Computer:
    """`session.computer`: the session's X desktop (mouse, keyboard, screen, windows, apps), as AgentBay's.

    Its display starts with the first call. Every method is one tool call (computer_calls.py);
    only wrong arguments raise (ValueError), and `beta_take_screenshot` (AgentBayError).
    """

    def __init__(self, session: Session) -> None:
        self._send = session.agent_bay._send
        self._id = session.session_id

    def click_mouse(self, x: int, y: int, button: MouseButton | str = MouseButton.LEFT) -> BoolResult:
        """`button`: left, right, middle or double_left."""
        return self._send(computer_calls.click_mouse(self._id, x, y, button))

    def move_mouse(self, x: int, y: int) -> BoolResult:
        return self._send(computer_calls.move_mouse(self._id, x, y))

    def drag_mouse(
        self, from_x: int, from_y: int, to_x: int, to_y: int, button: MouseButton | str = MouseButton.LEFT
    ) -> BoolResult:
        """Press `button` (left, right or middle) at the start, move, release at the end."""
        return self._send(computer_calls.drag_mouse(self._id, from_x, from_y, to_x, to_y, button))

    def scroll(
        self, x: int, y: int, direction: ScrollDirection | str = ScrollDirection.UP, amount: int = 1
    ) -> BoolResult:
        return self._send(computer_calls.scroll(self._id, x, y, direction, amount))

    def get_cursor_position(self) -> OperationResult:
        """`data` is the JSON text {"x": ..., "y": ...}, unparsed as in AgentBay."""
        return self._send(computer_calls.get_cursor_position(self._id))

    def input_text(self, text: str) -> BoolResult:
        """Type `text` (any Unicode) into the focused window."""
        return self._send(computer_calls.input_text(self._id, text))

    def press_keys(self, keys: builtins.list[str], hold: bool = False) -> BoolResult:
        """Press the keys together ("ctrl", "c"); with `hold`, they stay down until `release_keys`."""
        return self._send(computer_calls.press_keys(self._id, keys, hold))

    def release_keys(self, keys: builtins.list[str]) -> BoolResult:
        return self._send(computer_calls.release_keys(self._id, keys))

    def get_screen_size(self) -> OperationResult:
        """`data` is {"width", "height", "dpiScalingFactor"}."""
        return self._send(computer_calls.get_screen_size(self._id))

    def screenshot(self) -> OperationResult:
        """`data` is the URL of a PNG of the screen on the server: no API key needed, valid an hour."""
        return self._send(computer_calls.screenshot(self._id))

    def beta_take_screenshot(self, format: str = "png") -> ScreenshotResult:
        """The screen as image bytes (`data`), "png" or "jpeg" ("jpg"); raises AgentBayError on failure.

        AgentBay offers it only on sessions with a LinkUrl; Cove's sessions all have it.
        """
        result = self._send(computer_calls.beta_take_screenshot(self._id, format))
        return computer_calls.image_or_raise(result)

    def list_root_windows(self, timeout_ms: int = 3000) -> WindowListResult:
        return self._send(computer_calls.list_root_windows(self._id, timeout_ms))

    def get_active_window(self) -> WindowInfoResult:
        """`window` is None when no window is active."""
        return self._send(computer_calls.get_active_window(self._id))

    def activate_window(self, window_id: int) -> BoolResult:
        return self._send(computer_calls.window_action(self._id, "activate_window", window_id))

    def close_window(self, window_id: int) -> BoolResult:
        return self._send(computer_calls.window_action(self._id, "close_window", window_id))

    def maximize_window(self, window_id: int) -> BoolResult:
        return self._send(computer_calls.window_action(self._id, "maximize_window", window_id))

    def minimize_window(self, window_id: int) -> BoolResult:
        return self._send(computer_calls.window_action(self._id, "minimize_window", window_id))

    def restore_window(self, window_id: int) -> BoolResult:
        return self._send(computer_calls.window_action(self._id, "restore_window", window_id))

    def resize_window(self, window_id: int, width: int, height: int) -> BoolResult:
        """The window manager rounds to the app's size steps (a terminal's character cells)."""
        return self._send(computer_calls.resize_window(self._id, window_id, width, height))

    def fullscreen_window(self, window_id: int) -> BoolResult:
        return self._send(computer_calls.window_action(self._id, "fullscreen_window", window_id))

    def focus_mode(self, on: bool) -> BoolResult:
        """On: every window but the active one is minimized; off: they come back."""
        return self._send(computer_calls.focus_mode(self._id, on))

    def get_installed_apps(
        self, start_menu: bool = True, desktop: bool = False, ignore_system_apps: bool = True
    ) -> InstalledAppListResult:
        """Apps from .desktop files; each one's `start_cmd` is what `start_app` takes."""
        return self._send(
            computer_calls.get_installed_apps(self._id, start_menu, desktop, ignore_system_apps)
        )

    def start_app(self, start_cmd: str, work_directory: str = "", activity: str = "") -> ProcessListResult:
        """Start an app on the desktop; `data` is its processes (`activity` is Android's: ignored)."""
        return self._send(computer_calls.start_app(self._id, start_cmd, work_directory, activity))

    def list_visible_apps(self) -> ProcessListResult:
        """The processes that own a window."""
        return self._send(computer_calls.list_visible_apps(self._id))

    def stop_app_by_pname(self, pname: str) -> AppOperationResult:
        """Stop every process of that name (SIGTERM, then SIGKILL after 2 s)."""
        return self._send(computer_calls.stop_app(self._id, "stop_app_by_pname", {"pname": pname}))

    def stop_app_by_pid(self, pid: int) -> AppOperationResult:
        return self._send(computer_calls.stop_app(self._id, "stop_app_by_pid", {"pid": pid}))

    def stop_app_by_cmd(self, stop_cmd: str) -> AppOperationResult:
        """Run `stop_cmd` in the session; success if it exits 0."""
        return self._send(computer_calls.stop_app(self._id, "stop_app_by_cmd", {"stop_cmd": stop_cmd}))


class Browser:
    """`session.browser`: the session's Chromium (browser_latest), driven over CDP by Playwright's
    `connect_over_cdp(get_endpoint_url())` or Puppeteer's `connect`; as AgentBay's Browser, the
    one family that raises (BrowserError) rather than answering a result."""

    def __init__(self, session: Session) -> None:
        self._send = session.agent_bay._send
        self._id = session.session_id
        self._option: BrowserOption | None = None
        self.operator = BrowserOperator(self)

    def initialize(self, option: BrowserOption) -> bool:
        """Start the browser with `option` if it is not running (a running one is kept as it is);
        False if it could not be started. Once it succeeded, later calls answer True at once."""
        if self._option is not None:
            return True
        result = self._send(browser_calls.start(self._id, option))
        if result.success:
            self._option = option
        return result.success

    def init(self, option: BrowserOption) -> bool:
        return self.initialize(option)

    def is_initialized(self) -> bool:
        return self._option is not None

    def get_option(self) -> BrowserOption | None:
        return self._option

    def get_endpoint_url(self) -> str:
        """The browser-level CDP WebSocket URL, needing no API key. Unlike AgentBay's, it works
        before `initialize` too: the server starts the browser with default options."""
        result = self._send(browser_calls.cdp_url(self._id))
        if not result.success:
            raise BrowserError(f"Failed to get endpoint URL from session: {result.error_message}")
        url: str = result.data
        return url

    def destroy(self) -> None:
        """Stop the browser, letting it write its profile first; the next `initialize` starts a new one."""
        result = self._send(browser_calls.stop(self._id))
        self._option = None
        if not result.success:
            raise BrowserError(f"Failed to stop the browser: {result.error_message}")


class BrowserOperator:
    """`session.browser.operator`: AgentBay's page-use calls that need no LLM, on the running browser.
    act, observe and extract are not here: they need an LLM endpoint, which Cove does not have (its
    tools answer NotSupported to AgentBay's SDK)."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self._send = browser._send
        self._id = browser._id

    def _check(self, method: str) -> None:
        if not self._browser.is_initialized():
            raise BrowserError(f"Browser must be initialized before calling {method}.")

    def navigate(self, url: str) -> str:
        """Open `url` in the tab the browser shows; the tool's answer, or "Navigation failed: ..."."""
        self._check("navigate")
        result = self._send(tool_calls.call_mcp_tool(self._id, "page_use_navigate", {"url": url}))
        return str(result.data) if result.success else f"Navigation failed: {result.error_message}"

    def screenshot(
        self,
        page: Any = None,
        full_page: bool = True,
        quality: int = 80,
        clip: dict[str, float] | None = None,
        timeout: int | None = None,
    ) -> str:
        """A PNG data URL of `page` (a Playwright page on this browser; the shown tab if None), or
        "Screenshot failed: ..."."""
        self._check("screenshot")
        arguments: dict[str, Any] = {"context_id": 0, "full_page": full_page, "quality": quality}
        if page is not None:
            cdp = page.context.new_cdp_session(page)
            arguments["page_id"] = (cdp.send("Target.getTargetInfo"))["targetInfo"]["targetId"]
            cdp.detach()
            arguments["context_id"] = page.context.browser.contexts.index(page.context)
        arguments |= {
            key: value for key, value in (("clip", clip), ("timeout", timeout)) if value is not None
        }
        result = self._send(tool_calls.call_mcp_tool(self._id, "page_use_screenshot", arguments))
        return str(result.data) if result.success else f"Screenshot failed: {result.error_message}"

    def close(self) -> bool:
        """Stop the browser, letting it write its profile; False if the call failed."""
        result = self._send(tool_calls.call_mcp_tool(self._id, "page_use_close_session", {}))
        return result.success


class ContextManager:
    """`session.context`: the session's context syncs, as AgentBay's session ContextManager.

    Each call answers once the server has done it; AgentBay's polling arguments (`max_retries`,
    `retry_interval`, `wait_for_completion`) only bound how long the one request may take.
    """

    def __init__(self, session: Session) -> None:
        self._send = session.agent_bay._send
        self._id = session.session_id

    def sync(
        self,
        context_id: str | None = None,
        path: str | None = None,
        mode: str | None = None,
        max_retries: int = 150,
        retry_interval: int = 500,
    ) -> ContextSyncResult:
        """Upload (mode "download": download) the session's synced folders now, all or those of
        `context_id` and/or `path`; `success` only if every task succeeded."""
        call = session_context_calls.sync(self._id, context_id, path, mode, max_retries, retry_interval)
        return self._send(call)

    def info(
        self, context_id: str | None = None, path: str | None = None, task_type: str | None = None
    ) -> ContextInfoResult:
        """The last download and upload task of each sync, filtered by any of the arguments."""
        return self._send(session_context_calls.info(self._id, context_id, path, task_type))

    def bind(self, *contexts: ContextSync, wait_for_completion: bool = True) -> ContextBindResult:
        """Sync more contexts into the running session; their files are there when it returns."""
        return self._send(session_context_calls.bind(self._id, contexts))

    def list_bindings(self) -> ContextBindingsResult:
        """The session's syncs, made at create or bound later, each with its policy as JSON."""
        return self._send(session_context_calls.list_bindings(self._id))


class FileSystem:
    """`session.file_system` (also `fs`, `files`): files in the session, by the session user's rights."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._send = session.agent_bay._send
        self._id = session.session_id

    def create_directory(self, path: str) -> BoolResult:
        """Create a directory and its missing parents."""
        return self._send(file_calls.create_directory(self._id, path))

    def delete_file(self, path: str, recursive: bool = False) -> BoolResult:
        """Delete a file, a symlink or an empty directory (any directory with `recursive`)."""
        return self._send(file_calls.delete_file(self._id, path, recursive))

    delete = remove = rm = delete_file

    def edit_file(self, path: str, edits: builtins.list[dict[str, str]], dry_run: bool = False) -> BoolResult:
        """Replace, in order, the first occurrence of each edit's `oldText` with its `newText`."""
        return self._send(file_calls.edit_file(self._id, path, edits, dry_run))

    def get_file_info(self, path: str) -> FileInfoResult:
        return self._send(file_calls.get_file_info(self._id, path))

    def list_directory(self, path: str) -> DirectoryListResult:
        return self._send(file_calls.list_directory(self._id, path))

    list = ls = list_directory

    def move_file(self, source: str, destination: str) -> BoolResult:
        return self._send(file_calls.move_file(self._id, source, destination))

    @overload
    def read_file(self, path: str, *, format: Literal["text"] = "text") -> FileContentResult: ...

    @overload
    def read_file(self, path: str, *, format: Literal["bytes"]) -> BinaryFileContentResult: ...

    def read_file(self, path: str, *, format: str = "text") -> FileContentResult | BinaryFileContentResult:
        """The whole file, as text (UTF-8) or, with format="bytes", as bytes (up to 32 MiB)."""
        if format == "bytes":
            return self._send(file_calls.read_file_bytes(self._id, path))
        return self._send(file_calls.read_file(self._id, path))

    read = read_file

    def read_multiple_files(self, paths: builtins.list[str]) -> MultipleFileContentResult:
        return self._send(file_calls.read_multiple_files(self._id, paths))

    def search_files(
        self, path: str, pattern: str, exclude_patterns: builtins.list[str] | None = None
    ) -> FileSearchResult:
        """Paths under `path` whose names match the wildcard `pattern` ("*.py", "test_*")."""
        return self._send(file_calls.search_files(self._id, path, pattern, exclude_patterns))

    def write_file(self, path: str, content: str | bytes, mode: str = "overwrite") -> BoolResult:
        """Write text or bytes (mode "overwrite" or "append"); missing parents are created."""
        return self._send(file_calls.write_file(self._id, path, content, mode))

    write = write_file

    def upload_file(
        self, local_path: str, remote_path: str, *, progress_cb: ProgressCallback | None = None, **_: Any
    ) -> UploadResult:
        """Stream a local file of any size into the session; it appears there only when complete.

        AgentBay's `wait`, `wait_timeout`, `poll_interval` and `content_type` are accepted and
        not needed: the upload is done when this returns.
        """
        upload = LocalUpload.of(self._id, local_path, remote_path, progress_cb)
        return self._send(upload.call, upload.chunks(), upload.headers)

    def download_file(
        self,
        remote_path: str,
        local_path: str,
        *,
        overwrite: bool = True,
        progress_cb: ProgressCallback | None = None,
        **_: Any,
    ) -> DownloadResult:
        """Stream a file of any size out of the session; `local_path` is written only when complete."""
        download = LocalDownload(self._id, remote_path, local_path, overwrite, progress_cb)
        return self.session.agent_bay._download(download)

    def get_file_change(self, path: str) -> FileChangeResult:
        """Changes under `path` since the previous call for it; the first call sets the baseline."""
        return self._send(file_calls.get_file_change(self._id, path))

    def watch_directory(
        self,
        path: str,
        callback: Callable[[builtins.list[FileChangeEvent]], None],
        interval: float = 0.5,
        stop_event: threading.Event | None = None,
    ) -> DirectoryWatcher:
        """A thread that calls `callback` with each batch of changes under `path`, as AgentBay's.

        It is not started: call `start()`, wait on its `ready_event` (set once the baseline is
        taken), and set its `stop_event` to end it. It polls with a blocking client of its own: in
        the asyncio client it must never wait for the event loop, which may be waiting on it.
        """
        connection = self.session.agent_bay._connection
        config = Config(endpoint=connection.endpoint, timeout_ms=int(connection.timeout_seconds * 1000))
        client = AgentBay(api_key=connection.api_key, cfg=config)
        call = file_calls.get_file_change(self._id, path)
        return DirectoryWatcher(lambda: client._send(call), callback, interval, stop_event, client.close)


class ContextService:
    """`agent_bay.context`: this key's contexts (named persistent storage) and their files, as in
    AgentBay's ContextService. File bytes move through `get_file_upload_url`/`get_file_download_url`:
    URLs that need no key, for an hour (PUT the bytes, or GET them; plain curl works)."""

    def __init__(self, agent_bay: AgentBay) -> None:
        self._send = agent_bay._send

    def get(
        self, name: str | None = None, create: bool = False, context_id: str | None = None
    ) -> ContextResult:
        """The context named `name` (made first when `create`), or the one with `context_id`."""
        return self._send(context_calls.get_context(name, create, context_id))

    def create(self, name: str) -> ContextResult:
        return self._send(context_calls.create_context(name))

    def list(self, params: ContextListParams | None = None) -> ContextListResult:
        return self._send(context_calls.list_contexts(params))

    def update(self, context: Context) -> OperationResult:
        """Rename the context to `context.name`."""
        return self._send(context_calls.update_context(context))

    def delete(self, context: Context) -> OperationResult:
        """Delete the context and every file in it."""
        return self._send(context_calls.delete_context(context.id))

    def clear(self, context_id: str, timeout: int = 60, poll_interval: float = 2.0) -> ClearContextResult:
        """Remove every file of the context; done (state "available") when it returns."""
        return self._send(context_calls.clear_context(context_id))

    def list_files(
        self, context_id: str, parent_folder_path: str = "/", page_number: int = 1, page_size: int = 50
    ) -> ContextFileListResult:
        return self._send(context_calls.list_files(context_id, parent_folder_path, page_number, page_size))

    def delete_file(self, context_id: str, file_path: str) -> OperationResult:
        return self._send(context_calls.delete_file(context_id, file_path))

    def get_file_upload_url(self, context_id: str, file_path: str) -> FileUrlResult:
        return self._send(context_calls.file_url(context_id, file_path, "upload_url"))

    def get_file_download_url(self, context_id: str, file_path: str) -> FileUrlResult:
        return self._send(context_calls.file_url(context_id, file_path, "download_url"))
