"""The session's X display, started on demand: Xvfb on :99 and openbox as its window manager.

An idle session that never used the desktop runs neither. The first computer tool call starts them and
waits until the X socket answers; later calls find the socket answering and reuse the display, also
after the agent itself left and came back (nothing is remembered in the agent, the socket is the
truth). If Xvfb died, its socket no longer answers, and the next call starts a new one.

The screen's size is the session's, which the host writes into the run folder (host_files.py)
before the sandbox runs; without that file (a sandbox made by an older host) it is 1280x800. The
tools ask the X server for the size, so they follow whatever size the display runs at.

Xvfb keeps its framebuffer in an XWD file (`-fbdir`), which `screenshot` reads directly, so a
screenshot needs no X client at all. Every X client the tools run is bounded by a timeout, so a hung
client cannot hang the agent.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time

from . import host_files, process_trees
from .environment import user_environment
from .tools import ToolError

NUMBER = 99
DISPLAY = f":{NUMBER}"
DEFAULT_SIZE = (1280, 800)
DEPTH = 24
SIZE_PATH = f"{host_files.RUN_DIR}/screen.json"
MAX_WIDTH, MAX_HEIGHT = 7680, 4320
"""The largest screen the host accepts (sessions/validation.py), and so the largest taken from the file."""
SOCKET_PATH = f"/tmp/.X11-unix/X{NUMBER}"
LOCK_PATH = f"/tmp/.X{NUMBER}-lock"
FRAMEBUFFER_DIR = "/tmp/.cove-display"
FRAMEBUFFER_PATH = f"{FRAMEBUFFER_DIR}/Xvfb_screen0"
LOG_PATH = f"{FRAMEBUFFER_DIR}/display.log"
START_TIMEOUT_S = 20.0
"""How long Xvfb and the window manager get to answer after they were started. They answer within a
second on runc; on gVisor, where every file they first read goes through its gofer, openbox alone
takes about 3 s (building the session's font cache is half of it), and more on a busy host."""
X_COMMAND_TIMEOUT_S = 10.0
"""The longest an X client the tools run may take, unless the tool gives it more."""

_starting = threading.Lock()


def answering() -> bool:
    """Whether an X server accepts connections on the display's socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(SOCKET_PATH)
        except OSError:
            return False
        return True


def environment() -> dict[str, str]:
    """The environment the display's own programs run with: the user's, plus DISPLAY and a UTF-8
    locale (xdotool types Unicode only under one)."""
    return user_environment({"DISPLAY": DISPLAY, "LC_ALL": "C.UTF-8"})


def screen_size(path: str = SIZE_PATH) -> tuple[int, int]:
    """The width and height the display starts at: the host's, else the default."""
    size = host_files.read_json(path)
    if not isinstance(size, dict):
        return DEFAULT_SIZE
    width = host_files.whole_number(size.get("width"), 1, MAX_WIDTH)
    height = host_files.whole_number(size.get("height"), 1, MAX_HEIGHT)
    return (width, height) if width and height else DEFAULT_SIZE


def ensure() -> None:
    """Make sure the display runs, starting Xvfb and openbox if its socket does not answer."""
    if answering():
        return
    with _starting:
        if not answering():
            _start()


def _start() -> None:
    for stale in (LOCK_PATH, SOCKET_PATH):  # a killed Xvfb leaves both behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)
    os.makedirs(FRAMEBUFFER_DIR, mode=0o700, exist_ok=True)
    if not os.path.isdir(os.path.dirname(SOCKET_PATH)):  # Xvfb makes it only when run as root
        os.mkdir(os.path.dirname(SOCKET_PATH))
        os.chmod(os.path.dirname(SOCKET_PATH), 0o1777)
    width, height = screen_size()
    screen = f"{width}x{height}x{DEPTH}"
    # -noreset: by default X resets when its last client leaves, and a client connecting meanwhile
    # (the next tool call, the window manager) is refused.
    server = _spawn(
        ["Xvfb", DISPLAY, "-screen", "0", screen, "-nolisten", "tcp", "-noreset", "-fbdir", FRAMEBUFFER_DIR]
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answering():
        if server.poll() is not None or time.monotonic() > deadline:
            raise ToolError(f"the display did not start: {_log_tail()}")
        time.sleep(0.02)
    _spawn(["openbox"])
    # Ready once it publishes its client list, which the window tools read.
    while run(["wmctrl", "-l"], check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise ToolError(f"the window manager did not start: {_log_tail()}")
        time.sleep(0.02)


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start a display process as a tree of its own that outlives the call (and the agent)."""
    with open(LOG_PATH, "ab") as log:
        try:
            process, tree = process_trees.popen(
                "display",
                argv,
                env=environment(),
                cwd="/tmp",
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        except FileNotFoundError:
            raise ToolError(
                f"{argv[0]} is not installed in this image; the desktop needs linux_latest"
            ) from None
    release_when_done(process, tree)
    return process


def release_when_done(process: subprocess.Popen[bytes], tree: process_trees.ProcessTree) -> None:
    """Reap the tree's first process when it ends, in the background, and release its cgroup."""

    def reap() -> None:
        process.wait()
        tree.release()

    threading.Thread(target=reap, daemon=True).start()


def _log_tail() -> str:
    try:
        with open(LOG_PATH, "rb") as log:
            return log.read()[-1000:].decode(errors="replace").strip() or "no output"
    except OSError:
        return "no output"


def run(
    argv: list[str], timeout: float = X_COMMAND_TIMEOUT_S, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run an X client on the display, bounded by `timeout`; with `check`, a failure is a ToolError."""
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, env=environment(), timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ToolError(f"{argv[0]} did not answer within {timeout:g} s") from None
    except FileNotFoundError:
        raise ToolError(f"{argv[0]} is not installed in this image; the desktop needs linux_latest") from None
    if check and done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise ToolError(f"{argv[0]} failed: {message}")
    return done
