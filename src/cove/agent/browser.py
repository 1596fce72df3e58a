"""The session's browser: Debian's Chromium, headful on the session's display, debugged on a port
that only the session's own network reaches (the server relays clients to it, server/api/cdp.py).

One browser per session. As with the display, nothing is remembered in the agent: Chromium's
`/json/version` answering on `PORT` is the truth, so a later call (or a later agent, after this one
left idle) finds a running browser and reuses it, and finds a killed one gone and starts a new one.
What a later agent needs to stop it, its process tree, is written to `TREE_PATH`.

Options are AgentBay's BrowserOption keys (docs/browser.md says which are honoured); they apply when
the browser starts, and a call on a running browser keeps it as it is.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from . import browser_proxy, display, process_trees
from .cdp import CdpConnection, CdpError
from .tools import ToolError

PORT = 9222
VERSION_URL = f"http://127.0.0.1:{PORT}/json/version"
STATE_DIR = "/tmp/.cove-browser"
LOG_PATH = f"{STATE_DIR}/browser.log"
TREE_PATH = f"{STATE_DIR}/tree.json"
DEFAULT_PROFILE = "~/.config/cove-browser"
START_TIMEOUT_S = 45.0
"""How long Chromium gets to answer on its port after it was started (a cold start on a busy
machine takes seconds)."""
STOP_WAIT_S = 5.0
"""How long a stopped Chromium gets to write its profile and leave, after Browser.close and again
after SIGTERM, before it is killed."""
SINGLETON_FILES = ("SingletonLock", "SingletonSocket", "SingletonCookie")
"""What a killed Chromium leaves in its profile; a new one would take them for a live browser's."""
FLAGS = (
    f"--remote-debugging-port={PORT}",
    "--remote-debugging-address=127.0.0.1",
    "--test-type",  # no infobar warning about --no-sandbox over every page
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-dev-shm-usage",  # /dev/shm in a session is small; shared memory goes to /tmp instead
    "--disable-gpu",  # no GPU in a session; software rendering only
    "--password-store=basic",
    "--disable-features=Translate,MediaRouter",
    "--window-position=0,0",
)
NO_SANDBOX = "--no-sandbox"
"""Chromium's own sandbox (namespaces and seccomp-bpf around each renderer) needs user namespaces
for the session's user. runc's seccomp filter refuses them, and the session is then the sandbox; a
gvisor session's kernel gives them, and there Chromium keeps its sandbox as a layer of its own."""

_starting = threading.Lock()


@functools.cache
def user_namespaces() -> bool:
    """Whether the session's user can make a user namespace (asked once: the runtime never changes)."""
    try:
        made = subprocess.run(
            ["unshare", "--user", "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return made.returncode == 0


def version() -> dict[str, Any] | None:
    """Chromium's `/json/version` answer, or None if nothing answers on the port."""
    try:
        with urllib.request.urlopen(VERSION_URL, timeout=2.0) as answer:
            found = json.loads(answer.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return found if isinstance(found, dict) and "webSocketDebuggerUrl" in found else None


def describe(found: dict[str, Any], started: bool) -> dict[str, Any]:
    """What a start answers: the port, the browser-level CDP path, and whether it was started now."""
    url = str(found["webSocketDebuggerUrl"])
    path = "/devtools/" + url.split("/devtools/", 1)[1] if "/devtools/" in url else ""
    return {"port": PORT, "path": path, "browser": found.get("Browser", ""), "started": started}


def running_path() -> str:
    """The running browser's CDP WebSocket path; a ToolError saying why if none runs. Tools that
    drive pages do not start a browser: one that died (crashed, or killed when the session ran out of
    memory) is reported, so the caller knows its pages are gone, and the next start makes a new one."""
    if (found := version()) is not None:
        return str(describe(found, started=False)["path"])
    if os.path.exists(TREE_PATH):
        raise ToolError(
            "the browser is not running: it exited (it crashed, or was killed, as when the session "
            "runs out of memory); start a new one with InitBrowser (browser.initialize)"
        )
    raise ToolError("the browser is not running; start it with InitBrowser (browser.initialize) first")


def ensure(option: dict[str, Any], profile: str | None) -> dict[str, Any]:
    """The running browser, started with `option` and `profile` (its user-data-dir) if none runs."""
    if (found := version()) is not None:
        return describe(found, started=False)
    with _starting:
        if (found := version()) is not None:
            return describe(found, started=False)
        return describe(_start(option, os.path.expanduser(profile or DEFAULT_PROFILE)), started=True)


def command(option: dict[str, Any], profile: str) -> list[str]:
    """Chromium's command line for AgentBay's BrowserOption keys."""
    argv = ["chromium", *FLAGS, f"--user-data-dir={profile}"]
    if not user_namespaces():
        argv.append(NO_SANDBOX)
    viewport = option.get("viewport") or {}
    screen_width, screen_height = display.screen_size()
    width = viewport.get("width") or screen_width
    height = viewport.get("height") or screen_height
    argv.append(f"--window-size={width},{height}")
    if user_agent := option.get("userAgent"):
        argv.append(f"--user-agent={user_agent}")
    if extensions := _extensions(option.get("extensionPath")):
        argv.append(f"--load-extension={','.join(extensions)}")
    argv += browser_proxy.switches(option.get("proxies"))
    argv += [str(arg) for arg in option.get("cmdArgs") or ()]
    argv.append(option.get("defaultNavigateUrl") or "about:blank")
    return argv


def _extensions(folder: Any) -> list[str]:
    """The unpacked extensions in `folder`: its sub-folders that hold a manifest.json."""
    if not isinstance(folder, str) or not os.path.isdir(folder):
        return []
    return sorted(
        entry.path
        for entry in os.scandir(folder)
        if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "manifest.json"))
    )


def _start(option: dict[str, Any], profile: str) -> dict[str, Any]:
    display.ensure()
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    os.makedirs(profile, mode=0o700, exist_ok=True)
    for name in SINGLETON_FILES:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(profile, name))
    with open(LOG_PATH, "wb") as log:
        try:
            process, tree = process_trees.popen(
                "browser",
                command(option, profile),
                env=display.environment(),
                cwd=os.path.expanduser("~"),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        except FileNotFoundError:
            raise ToolError(
                "chromium is not installed in this image; the browser needs browser_latest "
                "(`cove image build browser_latest`)"
            ) from None
    display.release_when_done(process, tree)
    with open(TREE_PATH, "w") as saved:
        json.dump({"cgroup": tree.cgroup, "leader": tree.leader}, saved)
    deadline = time.monotonic() + START_TIMEOUT_S
    while (found := version()) is None:
        if process.poll() is not None:
            raise ToolError(f"the browser exited at start (code {process.returncode}): {_log_tail()}")
        if time.monotonic() > deadline:
            tree.kill()
            raise ToolError(f"the browser did not answer within {START_TIMEOUT_S:.0f} s: {_log_tail()}")
        time.sleep(0.05)
    return found


def stop() -> bool:
    """Stop the browser: SIGTERM so it writes its profile, then kill its tree. False if none ran."""
    browser_proxy.stop_chain()
    try:
        with open(TREE_PATH) as saved:
            state = json.load(saved)
    except (OSError, ValueError):
        return False
    os.unlink(TREE_PATH)
    tree = process_trees.ProcessTree(state.get("cgroup"))
    tree.leader = state.get("leader") if _is_browser(state.get("leader")) else None
    if tree.cgroup is None and tree.leader is None:
        return False
    if tree.leader is not None:
        _close(tree.leader)
    tree.kill()
    tree.release()
    return True


def _close(leader: int) -> None:
    """Close the browser as its user would, with CDP's Browser.close, so it writes its profile: a
    SIGTERM'd Chromium leaves its latest cookies unwritten. SIGTERM only if that does not end it."""
    with contextlib.suppress(CdpError, ToolError), CdpConnection(PORT, running_path(), STOP_WAIT_S) as cdp:
        cdp.call("Browser.close")
    if not _ended(leader):
        with contextlib.suppress(ProcessLookupError):
            os.kill(leader, signal.SIGTERM)
        _ended(leader)


def _ended(pid: int) -> bool:
    """Whether the browser `pid` left within STOP_WAIT_S."""
    deadline = time.monotonic() + STOP_WAIT_S
    while _is_browser(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _is_browser(pid: Any) -> bool:
    """Whether `pid` is a live Chromium (a pid written down earlier may be reused by now)."""
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)
    except OSError:
        return False
    return "chrom" in fields[0] and fields[1].split()[0] != "Z"


def _log_tail() -> str:
    try:
        with open(LOG_PATH, "rb") as log:
            return log.read()[-1500:].decode(errors="replace").strip() or "no output"
    except OSError:
        return "no output"
