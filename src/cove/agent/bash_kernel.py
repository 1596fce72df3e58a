"""A Bash kernel for the `run_code` tool: one bash whose working directory, variables, functions and
aliases persist from cell to cell, as a terminal's do.

kernel.py's `main` makes it (on process_kernel.py's `ProcessKernel`) for language "bash" and serves it
with kernel.py's protocol and output capture: bash writes to the kernel's fds 1 and 2 itself. Each cell
is written to a private file and sourced (`.`) by a function the kernel defined, with stdin from
/dev/null (the shell's own stdin is the kernel's line to it), which then writes the cell's exit status
to a pipe. A status other than 0 is the cell's error, as a terminal would show it. SIGINT during a cell
goes to the kernel's process group, as a terminal's Ctrl-C: the foreground command stops and the cell
returns; background jobs (which a non-interactive shell starts with SIGINT ignored) keep running. A cell
that ends the shell (`exit`) ends the kernel, and the next cell gets a new one.
"""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .process_kernel import ProcessKernel
else:  # loaded by its path, as kernel.py loads this module
    ProcessKernel = sys.modules["cove_kernel"].load_beside("process_kernel.py").ProcessKernel

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


class BashKernel(ProcessKernel):
    NAME = "bash"
    CELL_SUFFIX = ".sh"

    def __init__(self, capture: Any, results_limit: int) -> None:
        super().__init__(capture, results_limit)
        self.tell(PRELUDE.format(fd=self.answer_fd))

    def command(self, answer_fd: int) -> list[str]:
        return [shutil.which("bash") or "bash", "--noprofile", "--norc"]

    def request(self, number: int, path: str) -> str:
        return f"__cove_cell {path}\n"

    def outcome(self, number: int, answer: bytes) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """No results; a status other than 0 is the cell's error."""
        status = int(answer)
        if status == 0:
            return [], None
        value = f"the cell's last command exited with status {status}"
        return [], {"name": "ExitStatus", "value": value, "traceback": ""}
