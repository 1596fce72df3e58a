"""The browser's proxy, from AgentBay's BrowserOption `proxies`: Chromium's `--proxy-server`.

Only the `custom` type means something here (`wuying` and `managed` are AgentBay's own proxy
services). A custom proxy with a username and password is reached through a local chaining proxy
(proxy_chain.py) that adds them, since Chromium takes none on its command line. Connections to the
proxy go out under the session's network policy like any other.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
from typing import Any

from . import display, process_trees
from .tools import InvalidArguments, ToolError

CHAIN_PORT = 9223
CHAIN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy_chain.py")
CHAIN_STATE_PATH = "/tmp/.cove-browser/proxy-chain.json"
CHAIN_START_TIMEOUT_S = 5.0
SERVER = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}")
"""host:port or [IPv6]:port: nothing else may reach Chromium's command line."""


def switches(proxies: Any) -> list[str]:
    """Chromium's switches for `proxies` (none, or a list of one), starting the chaining proxy if
    the proxy has credentials; InvalidArguments naming what is wrong otherwise."""
    stop_chain()
    if not proxies:
        return []
    if not isinstance(proxies, list) or len(proxies) != 1 or not isinstance(proxies[0], dict):
        raise InvalidArguments("proxies must be a list of one proxy, as in AgentBay")
    proxy = proxies[0]
    kind = proxy.get("type")
    if kind != "custom":
        raise InvalidArguments(
            f"proxy type {kind!r} is AgentBay's own proxy service, which Cove has not; "
            "use type 'custom' with your proxy's server (host:port)"
        )
    server = proxy.get("server")
    if not isinstance(server, str) or not SERVER.fullmatch(server):
        raise InvalidArguments(f"a custom proxy's server must be host:port, not {server!r}")
    username, password = proxy.get("username") or "", proxy.get("password") or ""
    if username or password:
        server = f"127.0.0.1:{start_chain(server, f'{username}:{password}')}"
    return [f"--proxy-server=http://{server}"]


def start_chain(upstream: str, credentials: str) -> int:
    """Start the chaining proxy towards `upstream`; answers its local port once it listens."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "COVE_PROXY_UPSTREAM": upstream,
        "COVE_PROXY_AUTH": base64.b64encode(credentials.encode()).decode(),
        "COVE_PROXY_PORT": str(CHAIN_PORT),
    }
    process, tree = process_trees.popen(
        "browser-proxy",
        [sys.executable, "-I", "-S", CHAIN_SCRIPT],
        env=environment,
        cwd="/tmp",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    display.release_when_done(process, tree)
    with open(CHAIN_STATE_PATH, "w") as saved:
        json.dump({"cgroup": tree.cgroup, "leader": tree.leader}, saved)
    deadline = time.monotonic() + CHAIN_START_TIMEOUT_S
    while not _listening():
        if process.poll() is not None or time.monotonic() > deadline:
            raise ToolError("the browser's proxy with credentials could not start")
        time.sleep(0.02)
    return CHAIN_PORT


def stop_chain() -> None:
    """Stop a chaining proxy an earlier browser start left (its credentials may not be wanted now)."""
    try:
        with open(CHAIN_STATE_PATH) as saved:
            state = json.load(saved)
        os.unlink(CHAIN_STATE_PATH)
    except (OSError, ValueError):
        return
    if not isinstance(state, dict):
        return
    tree = process_trees.ProcessTree(state.get("cgroup"))
    leader = state.get("leader")
    tree.leader = leader if isinstance(leader, int) and _is_chain(leader) else None
    tree.kill()
    tree.release()


def _is_chain(pid: int) -> bool:
    """Whether `pid` still runs the chaining proxy (not a process that reused its pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return CHAIN_SCRIPT.encode() in cmdline.read()
    except OSError:
        return False


def _listening() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", CHAIN_PORT)) == 0
