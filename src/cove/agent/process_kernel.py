"""What the Bash and R kernels of the `run_code` tool share: each drives one process of its program
(bash, R), which keeps the state from cell to cell and writes to the kernel's fds 1 and 2 itself.

kernel.py's `main` serves them with its protocol and output capture, and loads this module beside
theirs (`load_beside`). Each cell is written to a file in the kernel's private folder; a line on the
program's stdin tells it to run the cell, and the program answers a line on a pipe of its own once
the cell is done. SIGINT during a cell goes to the kernel's process group, as a terminal's Ctrl-C. A
cell that ends the program ends the kernel, and the next cell gets a new one.
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


class ProcessKernel:
    """The folder, the program's process and the cell's round trip; a subclass says how to start
    the program, how to ask it to run a cell and what the cell left."""

    NAME = ""
    """In the private folder's name."""
    CELL_SUFFIX = ""
    """The cell file's extension."""
    CELL_ERRORS = "strict"
    """How a cell's text that UTF-8 cannot encode (a lone surrogate) is written to its file."""

    def __init__(self, capture: Any, results_limit: int) -> None:
        self.capture = capture
        self.results_limit = results_limit
        self.execution_count = 0
        self.running = False
        self.folder = tempfile.mkdtemp(prefix=f"cove-{self.NAME}-")
        answer_read, self.answer_fd = os.pipe()
        self.process = subprocess.Popen(
            self.command(self.answer_fd),
            stdin=subprocess.PIPE,
            pass_fds=(self.answer_fd,),
        )
        os.close(self.answer_fd)  # the program's, by the same number
        self.answers = os.fdopen(answer_read, "rb")

    def command(self, answer_fd: int) -> list[str]:
        """The program's command line; it answers each cell with a line on `answer_fd`."""
        raise NotImplementedError

    def request(self, number: int, path: str) -> str:
        """The line on the program's stdin that runs cell `number`, written to `path`."""
        raise NotImplementedError

    def outcome(self, number: int, answer: bytes) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """The cell's results and error, from the program's answer and what it left in the folder."""
        raise NotImplementedError

    def tell(self, text: str) -> None:
        """Hand the program a line; if it is gone (a cell ended it), the kernel ends as it did."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(text.encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            self.end()

    def end(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        code = self.process.wait()
        os._exit(code if code >= 0 else 128 - code)

    def on_interrupt(self, signum: int, frame: types.FrameType | None) -> None:
        """SIGINT from the agent: a Ctrl-C to the running cell's foreground commands, once."""
        if self.running:
            self.running = False
            os.killpg(os.getpgrp(), signal.SIGINT)  # reaches this process too, now as a no-op

    def run_cell(self, code: str) -> dict[str, Any]:
        self.execution_count += 1
        number = self.execution_count
        path = os.path.join(self.folder, f"cell-{number}{self.CELL_SUFFIX}")
        with open(path, "w", encoding="utf-8", errors=self.CELL_ERRORS) as cell:
            cell.write(code)
        started = time.perf_counter()
        self.running = True
        self.tell(self.request(number, path))
        answer = self.answers.readline()
        self.running = False
        elapsed = time.perf_counter() - started
        if not answer:
            self.end()
        results, error = self.outcome(number, answer)
        os.unlink(path)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        return {
            "execution_count": number,
            "execution_time": elapsed,
            "results": bounded(results, self.results_limit),
            **self.capture.take(),
            "error": error,
        }


def bounded(results: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """kernel.py's `bounded` (loaded as the module cove_kernel, as the agent loads it)."""
    return sys.modules["cove_kernel"].bounded(results, limit)  # type: ignore[no-any-return]
