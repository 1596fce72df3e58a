"""`cove session exec | cp | shell` against a real server and real sandboxes."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cove.cli import main
from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import KEY_A, CoveServer


def cove(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def target(server: CoveServer, runtime: str | None) -> Iterator[tuple[list[str], str]]:
    """Client options and the id of a session made for the test on `runtime` (deleted after it)."""
    options = ["--endpoint", server.url, "--api-key", KEY_A]
    created = cove("session", "create", *options, *(["--runtime", runtime] if runtime else []))
    assert created.exit_code == 0, created.output
    session_id = created.output.strip()
    yield options, session_id
    cove("session", "rm", *options, session_id)


@BOTH_RUNTIMES
def test_exec_streams_output_and_exits_with_the_command_code(target: tuple[list[str], str]) -> None:
    options, session_id = target
    ran = cove("session", "exec", *options, "--env", "WHO=cove", session_id, "--", "echo hi $WHO; exit 7")
    assert (ran.exit_code, ran.stdout) == (7, "hi cove\n")
    words = cove("session", "exec", *options, "--cwd", "/tmp", session_id, "--", "ls", "-d", "a b", ".")
    assert words.exit_code == 2 and "'a b'" in words.stderr and words.stdout == ".\n", "argv is quoted"
    timed_out = cove("session", "exec", *options, "--timeout-ms", "500", session_id, "--", "sleep 30")
    assert timed_out.exit_code == 124 and "timed out" in timed_out.stderr
    missing = cove("session", "exec", *options, "session-nope", "--", "true")
    assert missing.exit_code == 1 and "session-nope" in missing.stderr


@BOTH_RUNTIMES
def test_cp_both_ways(target: tuple[list[str], str], data_root: Path) -> None:
    options, session_id = target
    local = data_root / "in.txt"
    local.write_bytes(b"to the session\n" * 1000)
    up = cove("session", "cp", *options, str(local), f"{session_id}:/tmp/in.txt")
    assert up.exit_code == 0 and f"15000 bytes to {session_id}:/tmp/in.txt" in up.output
    down = cove("session", "cp", *options, f"{session_id}:/tmp/in.txt", str(data_root))
    assert down.exit_code == 0, down.output
    assert (data_root / "in.txt").read_bytes() == local.read_bytes()
    renamed = cove("session", "cp", *options, f"{session_id}:/tmp/in.txt", str(data_root / "out.txt"))
    assert renamed.exit_code == 0 and (data_root / "out.txt").read_bytes() == local.read_bytes()
    neither = cove("session", "cp", *options, str(local), str(data_root / "x"))
    assert neither.exit_code == 1 and "SESSION_ID:PATH" in neither.stderr
    missing = cove("session", "cp", *options, f"{session_id}:/tmp/none", str(data_root / "none"))
    assert missing.exit_code == 1 and "/tmp/none" in missing.stderr


@BOTH_RUNTIMES
def test_shell_is_an_interactive_terminal(target: tuple[list[str], str]) -> None:
    """A real local terminal: keystrokes go in raw, Ctrl-C interrupts inside, exit code comes back."""
    options, session_id = target
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cove",
            "session",
            "shell",
            *options,
            "--command",
            "bash --norc -i",
            session_id,
        ],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    seen = b""

    def read_until(marker: bytes, seconds: float = 30) -> None:
        """Read until the terminal shows `marker` and then a prompt, in what it shows from now on:
        each line is typed at the prompt (input typed ahead of the shell is not kept reliably on
        gvisor: docs/runtimes.md)."""
        nonlocal seen
        start = len(seen)

        def shown() -> bool:
            new = seen[start:]
            return marker in new and b"$ " in new[new.index(marker) + len(marker) :]

        deadline = time.monotonic() + seconds
        while not shown() and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.2)[0]:
                try:
                    seen += os.read(controller, 4096)
                except OSError:
                    return
        assert shown(), seen.decode(errors="replace")

    try:
        read_until(b"")  # the remote prompt: the local terminal is in raw mode now
        os.write(controller, b"echo $((6*7))x\r")
        read_until(b"42x")
        os.write(controller, b"sleep 600\r")
        deadline = time.monotonic() + 30
        while cove("session", "exec", *options, session_id, "--", "pgrep -x sleep").exit_code != 0:
            assert time.monotonic() < deadline, "sleep did not start"
        os.write(controller, b"\x03")
        read_until(b"")  # Ctrl-C reached the foreground sleep: the shell prompts again
        os.write(controller, b"echo status=$?\r")
        read_until(b"status=130")
        os.write(controller, b"exit 3\r")
        assert process.wait(timeout=30) == 3
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
