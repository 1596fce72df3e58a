"""The background-process tools, called directly on the host as the agent calls them.

Nothing here asserts on timings: long-polls are shown to return what arrived by processes that wait
for input before they print more, and every wait has a generous safety deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cove.agent.tools import ToolError, all_tools, processes

TOOLS = all_tools()
DEADLINE_S = 30.0
"""Only a guard against a hanging test; no test comes near it."""

Start = Callable[..., str]


def call(name: str, **arguments: Any) -> Any:
    tool = TOOLS[name]
    return json.loads(tool.run(tool.check(arguments)))


@pytest.fixture
def start() -> Iterator[Start]:
    """Starts processes for one test and kills them when it ends, passed or failed."""
    started: list[str] = []

    def start_process(command: str, **arguments: Any) -> str:
        process_id: str = call("process_start", command=command, **arguments)["process_id"]
        started.append(process_id)
        return process_id

    yield start_process
    for process_id in started:
        with contextlib.suppress(ToolError):  # a test may have had it evicted
            call("process_kill", process_id=process_id)
            call("process_wait", process_id=process_id, timeout_ms=10_000)


def read_until(process_id: str, done: Callable[[str], bool], stdout_offset: int = 0) -> str:
    """Long-poll stdout from `stdout_offset` until `done` holds for what came."""
    text, deadline = "", time.monotonic() + DEADLINE_S
    while not done(text):
        assert time.monotonic() < deadline, f"still waiting, after {text!r}"
        answer = call("process_output", process_id=process_id, stdout_offset=stdout_offset, wait_ms=1000)
        text += answer["stdout"]
        stdout_offset = answer["stdout_offset"]
    return text


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, pgrp, session, tty_nr, tpgid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def foreground_command(pid: int) -> str:
    """The command of the foreground process group of `pid`'s terminal (its leader's name)."""
    try:
        return Path(f"/proc/{stat_fields(pid)[5]}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):  # no foreground group, or it is ending
        return ""


def test_output_is_long_polled_with_offsets(start: Start) -> None:
    process_id = start('echo first; read answer; echo "second $answer"')
    first = call("process_output", process_id=process_id, wait_ms=60_000)
    assert first == {
        "stdout": "first\n",
        "stderr": "",
        "stdout_offset": 6,
        "stderr_offset": 0,
        "running": True,
        "exit_code": None,
        "stdout_skipped": 0,
        "stderr_skipped": 0,
    }
    nothing_new = call("process_output", process_id=process_id, stdout_offset=6)
    assert (nothing_new["stdout"], nothing_new["stdout_offset"], nothing_new["running"]) == ("", 6, True)
    call("process_write", process_id=process_id, data="go\n")
    second = call("process_output", process_id=process_id, stdout_offset=6, wait_ms=60_000)
    assert (second["stdout"], second["stdout_offset"]) == ("second go\n", 16)
    assert call("process_wait", process_id=process_id)["exit_code"] == 0


def test_lines_printed_with_pauses_arrive_in_order(start: Start) -> None:
    process_id = start("for i in 1 2 3; do echo line$i; sleep 0.1; done; exit 5")
    text, offset, answer = "", 0, {"running": True}
    while answer["running"]:
        answer = call("process_output", process_id=process_id, stdout_offset=offset, wait_ms=60_000)
        text += answer["stdout"]
        assert answer["stdout_offset"] == len(text.encode()), "offsets count the bytes returned"
        offset = answer["stdout_offset"]
    assert text == "line1\nline2\nline3\n" and answer["exit_code"] == 5


def test_stderr_is_separate_and_the_exit_code_is_kept(start: Start) -> None:
    process_id = start("echo out; echo err >&2; exit 3")
    assert call("process_wait", process_id=process_id) == {
        "running": False,
        "exit_code": 3,
        "stdout": "out\n",
        "stderr": "err\n",
        "stdout_truncated_bytes": 0,
        "stderr_truncated_bytes": 0,
    }
    answer = call("process_output", process_id=process_id, stdout_offset=4)
    assert (answer["stdout"], answer["stderr"], answer["stderr_offset"]) == ("", "err\n", 4)
    with pytest.raises(ToolError, match="has exited"):
        call("process_write", process_id=process_id, data="late")


def test_cwd_and_environment(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVE_SECRET", "agent setting")
    process_id = start(
        "pwd; echo $GREETING; env | grep -c ^COVE_ || true", cwd="/tmp", envs={"GREETING": "hi"}
    )
    assert call("process_wait", process_id=process_id)["stdout"] == "/tmp\nhi\n0\n"
    with pytest.raises(ToolError, match="cwd '/nowhere' does not exist"):
        call("process_start", command="true", cwd="/nowhere")


def test_input_is_written_and_closed(start: Start) -> None:
    process_id = start("cat; echo cat ended; exec sleep 100")
    written = call("process_write", process_id=process_id, data="héllo ")
    assert written == {"process_id": process_id, "bytes_written": 7, "eof": False}
    call("process_write", process_id=process_id, data="world\n", eof=True)
    assert read_until(process_id, lambda text: "ended" in text) == "héllo world\ncat ended\n"
    with pytest.raises(ToolError, match=r"the input of p-\d+ was closed \(eof\)"):
        call("process_write", process_id=process_id, data="more")


def test_a_large_write_goes_through_in_pieces(start: Start) -> None:
    process_id = start("wc -c")
    call("process_write", process_id=process_id, data="x" * 1_000_000, eof=True)
    assert call("process_wait", process_id=process_id)["stdout"].strip() == "1000000"


def test_a_write_to_a_process_that_does_not_read_gives_up(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "WRITE_TIMEOUT_S", 0.2)
    process_id = start("sleep 100")
    with pytest.raises(ToolError, match=r"read \d+ of 1000000 bytes .* it is not reading its input"):
        call("process_write", process_id=process_id, data="x" * 1_000_000)


@pytest.mark.parametrize(("signal", "exit_code"), [("INT", 130), ("KILL", 137), ("TERM", 143)])
def test_a_signal_ends_a_process_as_a_shell_reports_it(start: Start, signal: str, exit_code: int) -> None:
    process_id = start("sleep 100")
    killed = call("process_kill", process_id=process_id, signal=signal)
    assert killed == {"process_id": process_id, "signal": signal, "had_exited": False, "exit_code": None}
    assert call("process_wait", process_id=process_id)["exit_code"] == exit_code
    again = call("process_kill", process_id=process_id)
    assert (again["had_exited"], again["exit_code"]) == (True, exit_code)


def test_a_wait_that_times_out_leaves_the_process_running(start: Start) -> None:
    process_id = start("echo started; sleep 100")
    read_until(process_id, lambda text: text == "started\n")
    waited = call("process_wait", process_id=process_id, timeout_ms=50)
    assert (waited["running"], waited["exit_code"], waited["stdout"]) == (True, None, "started\n")
    call("process_kill", process_id=process_id)
    assert call("process_wait", process_id=process_id)["exit_code"] == 137


def test_kill_reaches_the_whole_process_group(start: Start) -> None:
    process_id = start("sleep 100 & echo $!; wait")
    child = int(read_until(process_id, lambda text: text.endswith("\n")))
    call("process_kill", process_id=process_id, signal="TERM")
    call("process_wait", process_id=process_id)

    def child_ended() -> bool:
        try:
            return stat_fields(child)[0] == "Z"
        except FileNotFoundError:
            return True

    eventually(child_ended)


def test_output_of_children_left_behind_is_still_read(start: Start, tmp_path: Path) -> None:
    go = tmp_path / "go"
    process_id = start(f"(until [ -e {go} ]; do sleep 0.01; done; echo late) & echo early")
    waited = call("process_wait", process_id=process_id)
    assert (waited["running"], waited["stdout"]) == (False, "early\n")
    go.touch()
    assert read_until(process_id, lambda text: text != "", stdout_offset=6) == "late\n"


def test_a_pty_has_the_requested_size_and_can_be_resized(start: Start) -> None:
    process_id = start("tty; echo $TERM; stty size; read line; stty size", pty=True, cols=100, rows=30)
    text = read_until(process_id, lambda text: "30 100\r\n" in text)
    lines = text.splitlines()
    assert lines[0].startswith("/dev/pts/") and lines[1:3] == ["xterm-256color", "30 100"]
    assert call("process_resize", process_id=process_id, cols=120, rows=40) == {
        "process_id": process_id,
        "cols": 120,
        "rows": 40,
    }
    call("process_write", process_id=process_id, data="\r")
    assert "40 120\r\n" in read_until(process_id, lambda text: "40 120" in text, stdout_offset=len(text))
    answer = call("process_wait", process_id=process_id)
    assert answer["exit_code"] == 0 and answer["stderr"] == "", "a pty's output is all on stdout"


def test_ctrl_c_on_a_pty_interrupts_its_program(start: Start) -> None:
    process_id = start("cat", pty=True)
    call("process_write", process_id=process_id, data="hello\n")
    read_until(process_id, lambda text: text.count("hello") == 2)  # the terminal's echo, then cat's
    call("process_write", process_id=process_id, data="\x03")
    assert call("process_wait", process_id=process_id)["exit_code"] == 130


def test_ctrl_c_in_an_interactive_shell_interrupts_the_foreground_job(start: Start) -> None:
    process_id = start("bash --norc --noprofile -i", pty=True, envs={"PS1": "$ "})
    pid = next(entry["pid"] for entry in call("process_list") if entry["process_id"] == process_id)
    call("process_write", process_id=process_id, data="sleep 100\r")
    eventually(lambda: foreground_command(pid) == "sleep")
    call("process_write", process_id=process_id, data="\x03")
    eventually(lambda: foreground_command(pid) == "bash")
    call("process_write", process_id=process_id, data="echo alive-$((2+3))\r")
    read_until(process_id, lambda text: "alive-5\r\n" in text)
    assert call("process_output", process_id=process_id)["running"], "the shell itself lives on"


def test_a_character_written_in_two_pieces_is_never_split(start: Start) -> None:
    process_id = start(r"printf 'a\xc3'; read line; printf '\xa9b'")
    first = call("process_output", process_id=process_id, wait_ms=60_000)
    assert (first["stdout"], first["stdout_offset"], first["running"]) == ("a", 1, True)
    assert call("process_output", process_id=process_id, stdout_offset=1)["stdout"] == ""
    call("process_write", process_id=process_id, data="\n")
    rest = call("process_output", process_id=process_id, stdout_offset=1, wait_ms=60_000)
    assert (rest["stdout"], rest["stdout_offset"]) == ("éb", 4)


def test_an_incomplete_character_at_the_exit_is_replaced(start: Start) -> None:
    process_id = start(r"printf 'x\xe2\x82'")
    assert call("process_wait", process_id=process_id)["stdout"] == "x\ufffd"
    answer = call("process_output", process_id=process_id)
    assert (answer["stdout"], answer["stdout_offset"]) == ("x\ufffd", 3)


def test_the_buffer_keeps_the_most_recent_bytes(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "OUTPUT_LIMIT_BYTES", 10)
    process_id = start("printf 0123456789; printf abcdef; printf XY >&2")
    waited = call("process_wait", process_id=process_id)
    assert (waited["stdout"], waited["stdout_truncated_bytes"]) == ("6789abcdef", 6)
    assert (waited["stderr"], waited["stderr_truncated_bytes"]) == ("XY", 0)
    from_start = call("process_output", process_id=process_id)
    assert (from_start["stdout"], from_start["stdout_offset"], from_start["stdout_skipped"]) == (
        "6789abcdef",
        16,
        6,
    )
    within = call("process_output", process_id=process_id, stdout_offset=8, stderr_offset=2)
    assert (within["stdout"], within["stdout_skipped"], within["stderr"]) == ("89abcdef", 0, "")
    with pytest.raises(ToolError, match="stdout_offset 17 is beyond the 16 bytes"):
        call("process_output", process_id=process_id, stdout_offset=17)


def test_processes_are_listed(start: Start) -> None:
    process_id = start("sleep 100", pty=True)
    listed = next(entry for entry in call("process_list") if entry["process_id"] == process_id)
    assert listed.keys() == {"process_id", "pid", "command", "pty", "running", "exit_code", "started_at"}
    assert (listed["command"], listed["pty"], listed["running"], listed["exit_code"]) == (
        "sleep 100",
        True,
        True,
        None,
    )
    started_at = datetime.fromisoformat(listed["started_at"])
    assert started_at.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - started_at).total_seconds()) < 3600


def test_the_oldest_finished_processes_are_evicted(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "MAX_FINISHED", 2)
    running = start("sleep 100")
    finished = []
    for number in range(3):
        finished.append(start(f"exit {number}"))
        call("process_wait", process_id=finished[-1])
    listed = [entry["process_id"] for entry in call("process_list")]
    assert running in listed and finished[1:] == [p for p in listed if p in finished]
    with pytest.raises(ToolError, match=f"no process '{finished[0]}'"):
        call("process_output", process_id=finished[0])


def test_running_processes_are_limited(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    already = sum(entry["running"] for entry in call("process_list"))
    monkeypatch.setattr(processes, "MAX_RUNNING", already + 2)
    start("sleep 100")
    start("sleep 100")
    with pytest.raises(ToolError, match="running already"):
        start("sleep 100")


def test_exits_are_noticed_without_a_pidfd(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "open_pidfd", lambda pid: None)
    process_id = start("echo polled; exit 4")
    answer = call("process_wait", process_id=process_id)
    assert (answer["stdout"], answer["exit_code"]) == ("polled\n", 4)


def test_mistakes_are_tool_errors_that_say_what_to_do(start: Start) -> None:
    with pytest.raises(ToolError, match=r"^no process 'p-9999999'; process_list shows the session's"):
        call("process_output", process_id="p-9999999")
    on_pipes = start("sleep 100")
    with pytest.raises(ToolError, match="wait_ms is 60001; the most is 60000"):
        call("process_output", process_id=on_pipes, wait_ms=60_001)
    with pytest.raises(ToolError, match="no terminal"):
        call("process_resize", process_id=on_pipes, cols=10, rows=10)
    on_pty = start("sleep 100", pty=True)
    with pytest.raises(ToolError, match="Ctrl-D"):
        call("process_write", process_id=on_pty, data="", eof=True)
    with pytest.raises(ToolError, match="pty true"):
        call("process_start", command="true", cols=100)
    with pytest.raises(ToolError, match="at most 65535"):
        call("process_resize", process_id=on_pty, cols=70_000, rows=10)


def test_no_descriptor_is_left_open(start: Start) -> None:
    call("process_wait", process_id=start("true"))  # the reader thread's own descriptors exist now
    before = len(os.listdir("/proc/self/fd"))
    for arguments in ({}, {"pty": True}):
        process_id = start("echo done", **arguments)
        call("process_wait", process_id=process_id)
    eventually(lambda: len(os.listdir("/proc/self/fd")) == before)
