"""The tool agent's own small filesystem, which every sandbox binds read-only at /.cove/agent.

A bind mount shows, in every /proc/self/mountinfo (the sandbox's own included), the path of its
source within the source's filesystem: binding the installed package would tell a session where Cove
is installed. A copy on a tmpfs of its own is bound from that filesystem's root, which shows as "/".
"""

from __future__ import annotations

import compileall
import os
import shutil
from pathlib import Path

from cove.sandbox.init_binary import init_binary
from cove.sandbox.mounts import mount_tmpfs, remount_read_only, unmount

AGENT_FILES_LIMIT_BYTES = 16 * 1024 * 1024
"""The tmpfs's cap: the agent is a few hundred kilobytes of Python and its bytecode, init one program."""
INIT_NAME = "init"
"""The sandbox's PID 1 (agent/init.c, built by init_binary.py), beside the agent."""


def publish_agent(source: Path, target: Path) -> None:
    """A fresh read-only copy of the agent package `source`, and init, on a tmpfs mounted at `target`.

    The copy's bytecode is compiled here because sandboxes see it read-only and cannot cache it:
    without it, every agent start would compile the agent again (about 0.2 s of a session's first
    tool call). A copy mounted by an earlier server start is detached, not changed: the sandboxes
    that bound it keep the agent they started with.
    """
    program = init_binary()  # before anything is mounted: a host without a compiler fails here
    target.mkdir(mode=0o755, exist_ok=True)
    if os.path.ismount(target):
        unmount(target)
    mount_tmpfs(target, AGENT_FILES_LIMIT_BYTES)
    try:
        copy_agent(source, target, program)
        compileall.compile_dir(target, quiet=1)
        remount_read_only(target)
    except BaseException:
        unmount(target)
        raise


def copy_agent(source: Path, target: Path, program: Path | None = None) -> None:
    """The agent package `source` copied into `target` with init (`program`, built if None) beside
    it, as a sandbox sees them: init also starts the agent's commands (init --launch)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.c"), dirs_exist_ok=True)
    shutil.copy(program or init_binary(), target / INIT_NAME)
