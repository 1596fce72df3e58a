"""`cove session shell`: an interactive terminal on a pseudo-terminal inside a session.

The shell runs as a background process on a PTY in the sandbox (the `process_*` tools). This side
puts the local terminal in raw mode and forwards keystrokes as they are typed; a second thread
long-polls the output and writes it out; a window resize is passed on. Ctrl-C is just the byte
0x03, which the sandbox's terminal turns into SIGINT for whatever runs in the foreground there.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import shutil
import signal
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from types import FrameType
from typing import Any

OUTPUT_WAIT_MS = 20_000
READ_BYTES = 4096
INPUT_POLL_S = 0.1
"""How often the input loop looks whether the remote process has ended."""


@contextlib.contextmanager
def raw_terminal(descriptor: int) -> Iterator[None]:
    """Raw mode while inside, when `descriptor` is a terminal; the old settings come back after."""
    if not os.isatty(descriptor):
        yield
        return
    saved = termios.tcgetattr(descriptor)
    tty.setraw(descriptor, termios.TCSADRAIN)  # keeps what was typed ahead
    try:
        yield
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


def run_shell(session: Any, command: str = "bash -l") -> int:
    """Attach this terminal to `command` on a PTY in `session` (a sync SDK Session) until it exits.

    Answers the remote exit code.
    """
    size = shutil.get_terminal_size()
    started = session.command.start(command, pty=True, cols=size.columns, rows=size.lines)
    if not started.success:
        raise RuntimeError(started.error_message)
    process_id = started.process_id
    finished = threading.Event()
    exit_code = [1]

    def copy_output() -> None:
        offset = 0
        out = sys.stdout.buffer
        while True:
            polled = session.command.output(process_id, stdout_offset=offset, wait_ms=OUTPUT_WAIT_MS)
            if not polled.success:
                break
            if polled.stdout:
                out.write(polled.stdout.encode())
                out.flush()
            offset = polled.stdout_offset
            if not polled.running:
                exit_code[0] = polled.exit_code if polled.exit_code is not None else 1
                break
        finished.set()

    def resized(_signal: int, _frame: FrameType | None) -> None:
        if not finished.is_set():
            size = shutil.get_terminal_size()
            session.command.resize(process_id, size.columns, size.lines)

    previous = signal.signal(signal.SIGWINCH, resized)
    threading.Thread(target=copy_output, daemon=True).start()
    stdin = sys.stdin.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        with raw_terminal(stdin):
            while not finished.is_set():
                if not select.select([stdin], [], [], INPUT_POLL_S)[0]:
                    continue
                data = os.read(stdin, READ_BYTES)
                if not data:
                    session.command.send_stdin(process_id, "\x04")  # local EOF: end the remote shell
                    finished.wait(OUTPUT_WAIT_MS / 1000)
                    break
                session.command.send_stdin(process_id, decoder.decode(data))
    finally:
        signal.signal(signal.SIGWINCH, previous)
        if not finished.is_set():
            session.command.kill(process_id, "HUP")
    return exit_code[0]
