"""A Bash kernel for the `run_code` tool: one bash whose working directory, variables, functions and
aliases persist from cell to cell, as a terminal's do.

kernel.py's `main` makes it for language "bash" and serves it with kernel.py's protocol and output
capture: bash writes to the kernel's fds 1 and 2 itself. Each cell is written to a private file and
sourced (`.`) by a function the kernel defined, with stdin from /dev/null (the shell's own stdin is
the kernel's line to it), which then writes the cell's exit status to a pipe. A status other than 0
is the cell's error, as a terminal would show it. SIGINT during a cell goes to the kernel's process
group, as a terminal's Ctrl-C: the foreground command stops and the cell returns; background jobs
(which a non-interactive shell starts with SIGINT ignored) keep running. A cell that ends the shell
(`exit`) ends the kernel, and the next cell gets a new one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from typing import Any

PRELUDE = """
__cove_cell() {{
    trap 'return 130' INT
    . "$1" </dev/null
    local status=$?
    trap - INT
    printf '%d\\n' "$status" >&{fd}
}}
"""
"""Defines the function that runs a cell; `return 130` in its trap ends the sourced cell at SIGINT."""


class BashKernel:
    def __init__(self, capture: Any, results_limit: int) -> None:
        self.capture = capture
        self.execution_count = 0
        self.running = False
        self.folder = tempfile.mkdtemp(prefix="cove-bash-")
        status_read, status_write = os.pipe()
        self.shell = subprocess.Popen(
            [shutil.which("bash") or "bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            pass_fds=(status_write,),
        )
        os.close(status_write)
        self.statuses = os.fdopen(status_read, "rb")
        self.command(PRELUDE.format(fd=status_write))

    def command(self, text: str) -> None:
        """Hand the shell a line; if it is gone (a cell ran `exit`), the kernel ends as it did."""
        try:
            assert self.shell.stdin is not None
            self.shell.stdin.write(text.encode())
            self.shell.stdin.flush()
        except BrokenPipeError:
            self.end()

    def end(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        code = self.shell.wait()
        os._exit(code if code >= 0 else 128 - code)

    def on_interrupt(self, signum: int, frame: types.FrameType | None) -> None:
        """SIGINT from the agent: a Ctrl-C to the running cell's foreground commands, once."""
        if self.running:
            self.running = False
            os.killpg(os.getpgrp(), signal.SIGINT)  # reaches this process too, now as a no-op

    def run_cell(self, code: str) -> dict[str, Any]:
        self.execution_count += 1
        path = os.path.join(self.folder, f"cell-{self.execution_count}.sh")
        with open(path, "w", encoding="utf-8") as cell:
            cell.write(code)
        started = time.perf_counter()
        self.running = True
        self.command(f"__cove_cell {path}\n")
        line = self.statuses.readline()
        self.running = False
        elapsed = time.perf_counter() - started
        os.unlink(path)
        if not line:
            self.end()
        status = int(line)
        error = None
        if status != 0:
            value = f"the cell's last command exited with status {status}"
            error = {"name": "ExitStatus", "value": value, "traceback": ""}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        return {
            "execution_count": self.execution_count,
            "execution_time": elapsed,
            "results": [],
            **self.capture.take(),
            "error": error,
        }
