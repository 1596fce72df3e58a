"""An R kernel for the `run_code` tool: one R process whose global environment persists from cell to
cell, as in R's console.

kernel.py's `main` makes it (on process_kernel.py's `ProcessKernel`) for language "r" and serves it with
kernel.py's protocol and output capture, as it does bash_kernel.py's: R cannot take an inherited socket
by its number, and, single threaded, it could not drain its own output pipes while a cell runs. R
(kernel.R) writes to the kernel's fds 1 and 2 itself. Each cell is written to a private file whose
number goes to R's stdin; R runs it and leaves the cell's value (as its console prints it), error and
plots (PNG files) in a folder of the cell, then writes the number back on a pipe of its own. SIGINT
during a cell goes to the kernel's process group, as a terminal's Ctrl-C: R interrupts the cell and
keeps its state. A cell that ends R (`quit()`) ends the kernel, and the next cell gets a new one.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .process_kernel import ProcessKernel
else:  # loaded by its path, as kernel.py loads this module
    ProcessKernel = sys.modules["cove_kernel"].load_beside("process_kernel.py").ProcessKernel

KERNEL_R = os.path.join(os.path.dirname(__file__), "kernel.R")
ERROR_FIELDS = ("name", "value", "traceback")


class RKernel(ProcessKernel):
    NAME = "r"
    CELL_SUFFIX = ".R"
    CELL_ERRORS = "replace"  # a lone surrogate: "?"

    def command(self, answer_fd: int) -> list[str]:
        options = ["--no-echo", "--no-restore", "--no-save", "-f", KERNEL_R, "--args"]
        return [shutil.which("R") or "R", *options, self.folder, str(answer_fd)]

    def request(self, number: int, path: str) -> str:
        return f"{number}\n"

    def outcome(self, number: int, answer: bytes) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """What R left in the cell's folder, which then goes."""
        outcome = os.path.join(self.folder, f"cell-{number}")
        results, error = self.results(outcome), self.error(outcome)
        shutil.rmtree(outcome, ignore_errors=True)
        return results, error

    def results(self, outcome: str) -> list[dict[str, Any]]:
        """The value of the cell's last expression, if visible, then its plots."""
        results: list[dict[str, Any]] = []
        value = read_text(os.path.join(outcome, "value.txt"))
        if value is not None:
            results.append({"text/plain": value, "isMainResult": True})
        plots = sorted(name for name in os.listdir(outcome) if name.endswith(".png"))
        for name in plots:
            with open(os.path.join(outcome, name), "rb") as plot:
                image = plot.read()
            if image:
                encoded = base64.b64encode(image).decode("ascii")
                results.append({"image/png": encoded, "text/plain": "<R plot>", "isMainResult": False})
        return results

    def error(self, outcome: str) -> dict[str, str] | None:
        fields = {field: read_text(os.path.join(outcome, f"error-{field}.txt")) for field in ERROR_FIELDS}
        if fields["name"] is None:
            return None
        return {field: text or "" for field, text in fields.items()}


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except FileNotFoundError:
        return None
