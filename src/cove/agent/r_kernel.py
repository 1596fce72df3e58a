"""An R kernel for the `run_code` tool: one R process whose global environment persists from cell to
cell, as in R's console.

kernel.py's `main` makes it for language "r" and serves it with kernel.py's protocol and output
capture, as it does bash_kernel.py's: R cannot take an inherited socket by its number, and, single
threaded, it could not drain its own output pipes while a cell runs. R (kernel.R) writes to the
kernel's fds 1 and 2 itself. Each cell is written to a private file whose number goes to R's stdin;
R runs it and leaves the cell's value (as its console prints it), error and plots (PNG files) in a
folder of the cell, then writes the number back on a pipe of its own. SIGINT during a cell goes to
the kernel's process group, as a terminal's Ctrl-C: R interrupts the cell and keeps its state. A
cell that ends R (`quit()`) ends the kernel, and the next cell gets a new one.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from typing import Any

KERNEL_R = os.path.join(os.path.dirname(__file__), "kernel.R")
ERROR_FIELDS = ("name", "value", "traceback")


class RKernel:
    def __init__(self, capture: Any, results_limit: int) -> None:
        self.capture = capture
        self.results_limit = results_limit
        self.execution_count = 0
        self.running = False
        self.folder = tempfile.mkdtemp(prefix="cove-r-")
        answer_read, answer_write = os.pipe()
        options = ["--no-echo", "--no-restore", "--no-save", "-f", KERNEL_R, "--args"]
        self.process = subprocess.Popen(
            [shutil.which("R") or "R", *options, self.folder, str(answer_write)],
            stdin=subprocess.PIPE,
            pass_fds=(answer_write,),
        )
        os.close(answer_write)
        self.answers = os.fdopen(answer_read, "rb")

    def end(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        code = self.process.wait()
        os._exit(code if code >= 0 else 128 - code)

    def on_interrupt(self, signum: int, frame: types.FrameType | None) -> None:
        """SIGINT from the agent: a Ctrl-C to R and the running cell's child processes, once."""
        if self.running:
            self.running = False
            os.killpg(os.getpgrp(), signal.SIGINT)  # reaches this process too, now as a no-op

    def run_cell(self, code: str) -> dict[str, Any]:
        self.execution_count += 1
        number = self.execution_count
        path = os.path.join(self.folder, f"cell-{number}.R")
        with open(path, "w", encoding="utf-8", errors="replace") as cell:  # a lone surrogate: "?"
            cell.write(code)
        started = time.perf_counter()
        self.running = True
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(f"{number}\n".encode())
            self.process.stdin.flush()
            line = self.answers.readline()
        except BrokenPipeError:
            line = b""
        self.running = False
        elapsed = time.perf_counter() - started
        if not line:
            self.end()
        outcome = os.path.join(self.folder, f"cell-{number}")
        results, error = self.results(outcome), self.error(outcome)
        os.unlink(path)
        shutil.rmtree(outcome, ignore_errors=True)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        return {
            "execution_count": number,
            "execution_time": elapsed,
            "results": bounded(results, self.results_limit),
            **self.capture.take(),
            "error": error,
        }

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


def bounded(results: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """kernel.py's `bounded` (loaded as the module cove_kernel, as the agent loads it)."""
    return sys.modules["cove_kernel"].bounded(results, limit)  # type: ignore[no-any-return]
